"""Timing in alternation: A B C A B C ..., warm-up first, median of the rest.

Alternating contenders inside one process means a burst of load from another
tenant of a shared machine hits every contender about equally, so the in-run
ratios stay meaningful even when absolute times drift. ``benchmarks/run.py``
and :func:`bpcore.benchmark.compare` both time through this module.
"""
from __future__ import annotations

import gc
import statistics
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol


class _Runnable(Protocol):
    """What ``time_alternating`` times: ``run(i)``, ``i`` counting from ``-warmup``."""

    def run(self, i: int) -> object: ...


#: ``{id(contender): {"times": [seconds, ...], "error": str or None[, "traceback": str]}}``.
Record = dict[int, dict[str, Any]]

# A contender whose warm-up takes longer than both of these is dropped (for
# example torch's OpenMP threads when another process holds one of two cores:
# 100x slower epochs would otherwise stretch the run by an hour).
DROP_AFTER_SECONDS = 30.0
DROP_AFTER_FACTOR = 10.0  # times the median warm-up of the workload's contenders


def time_alternating(contenders: Sequence[_Runnable], repeats: int, warmup: int = 1,
                     settle: float = 0.0, calls_per_run: int = 1,
                     progress: Callable[[], object] | None = None) -> Record:
    """Run every contender ``warmup + repeats`` times, interleaved.

    Parameters
    ----------
    contenders : sequence of objects with a ``run(i)`` method
        ``i`` counts runs from ``-warmup``; negative runs are not timed.
    repeats : int
        Timed runs per contender.
    warmup : int, default=1
        Untimed runs of each contender before the timed ones (``i < 0``).
    settle : float, default=0.0
        Seconds of sleep before each call, so that worker threads of the
        previous contender (OpenBLAS and OpenMP spin after a parallel region)
        go idle and do not steal a core from the next one.
    calls_per_run : int, default=1
        A run is this many back-to-back calls; its recorded time is per call.
    progress : callable or None
        Called with no argument after every run (a progress bar's update).

    Returns
    -------
    record : dict
        ``{id(contender): {"times": [...], "error": str | None}}``. A
        contender that raises is recorded with its error and dropped from later
        rounds; the others go on. After the warm-up, a contender whose first
        run took over ``DROP_AFTER_SECONDS`` and over ``DROP_AFTER_FACTOR``
        times the median first run is dropped too.

    Examples
    --------
    >>> class Sleeper:
    ...     def run(self, i):
    ...         pass
    >>> a, b = Sleeper(), Sleeper()
    >>> rec = time_alternating([a, b], repeats=3)
    >>> len(rec[id(a)]["times"]), rec[id(b)]["error"]
    (3, None)
    """
    record: Record = {id(c): {"times": [], "error": None} for c in contenders}
    active = list(contenders)
    first: dict[int, float] = {}
    for i in range(-warmup, repeats):
        if i == 0 and first:
            _drop_stragglers(first, active, record)
        for c in list(active):
            try:
                elapsed = _timed_call(c, i, settle, calls_per_run)
            except Exception as exc:
                record[id(c)]["error"] = f"{type(exc).__name__}: {exc}"
                record[id(c)]["traceback"] = traceback.format_exc()
                active.remove(c)
                continue
            finally:
                if progress is not None:
                    progress()
            first.setdefault(id(c), elapsed)
            if i >= 0:
                record[id(c)]["times"].append(elapsed)
    return record


def _timed_call(contender: _Runnable, i: int, settle: float, calls: int = 1) -> float:
    gc.collect()
    if settle:
        time.sleep(settle)
    gc.disable()  # a collection mid-call would be charged to this contender
    try:
        t0 = time.perf_counter()
        for _ in range(calls):
            contender.run(i)
        return (time.perf_counter() - t0) / calls
    finally:
        gc.enable()


def _drop_stragglers(first: Mapping[int, float], active: list[_Runnable],
                     record: Record) -> None:
    typical = statistics.median(first.values())
    for c in list(active):
        t = first.get(id(c))
        if t is not None and t > DROP_AFTER_SECONDS and t > DROP_AFTER_FACTOR * typical:
            record[id(c)]["error"] = (
                f"dropped: its warm-up took {t:.0f} s, {t / typical:.0f}x the median "
                "warm-up (machine overloaded?)")
            active.remove(c)


def summarize(times: Sequence[float]) -> dict[str, float | None]:
    """Median, min and max of a list of seconds (None when empty).

    Examples
    --------
    >>> summarize([3.0, 1.0, 2.0])
    {'median': 2.0, 'min': 1.0, 'max': 3.0}
    """
    if not times:
        return {"median": None, "min": None, "max": None}
    return {"median": statistics.median(times), "min": min(times), "max": max(times)}


def paired_ratio(num_times: Sequence[float], den_times: Sequence[float]) -> float | None:
    """Median over rounds of ``num`` time / ``den`` time in the same round.

    Contenders run in alternation, so the two times of one round were taken
    seconds apart under the same background load; the median of the per-round
    ratios is steadier than the ratio of the two medians when that load drifts.
    None when no round has both times.

    Examples
    --------
    >>> paired_ratio([2.0, 4.0, 9.0], [1.0, 2.0, 3.0])
    2.0
    """
    pairs = [a / b for a, b in zip(num_times, den_times) if b > 0]
    return statistics.median(pairs) if pairs else None
