"""Threads against one thread, phase by phase of the host's vCPUs.

On the project's 2-vCPU VM the cost of one round of bpcore's barrier
among two idle threads (``barrier_latency``) moves within minutes between
~30 ns and 150-1,000 ns, and 2-thread epochs follow it. A one-shot timing
therefore says little about a thread rule; this script alternates, epoch
by epoch in one process, three ways of running the same workload:

- ``1``        one thread (``threadpool_limits(1)``),
- ``default``  what bpcore picks by itself (``choose_threads``),
- ``2``        two threads forced (the split bpcore would use for 2, or
               with ``--two rows`` the row split),

each on its own copy of the network (same start, same data order), and
reads the barrier round and the load average beside every round of the
three. Rounds are sorted into phases by their barrier round, the worse of
the probes before and after: fast (below ``--slow-ns``, 100 ns), slow (the
host put the vCPUs apart: up to ``--busy-ns``, 2 us) and busy (another
process held the other CPU, so a round waited for a reschedule; on a
shared machine the common case). Each phase is reported apart: the
speed of ``default`` and of ``2`` as a multiple of ``1`` (per-round ratio
``t_1 / t``; median and 10-90% range), with the phase's share of rounds.

Workloads: W1, W2, W3, W5 (``workloads.py``, Adam, scikit-learn's alpha)
W6 (``w6_layers.py``: W1's data through (128, 128) with batch norm,
dropout 0.1 and a skip around the second layer, batch 32) and, on request,
W6-plain (the same network without the layers).

Run: ``python benchmarks/thread_phases.py [--seconds 60] [--workloads W1 W6]
[--dtypes float32 float64] [--two rows] [--out benchmarks/results/thread_phases]``; it
writes ``<out>.md`` (the tables) and ``<out>.json`` (every round).
"""
import argparse
import json
import os
import platform
import sys
import time

import numpy as np
from threadpoolctl import threadpool_limits

import bpcore
from bpcore import _engine, _threads
from bpcore._engine import EpochRunner, choose_threads, reshuffle

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from workloads import ALPHA, LEARNING_RATE, WORKLOADS, make_dataset  # noqa: E402

try:                                     # since the kernels' housekeeping
    from bpcore.benchmark.floor import barrier_latency
except ImportError:                      # before it (e.g. /work/baseline)
    from bpcore._kernels import barrier_latency

MODES = ("1", "default", "2")


class Forced(EpochRunner):
    """An EpochRunner that runs every epoch on all the threads it may use,
    with the split bpcore would choose for them (the unit split where it
    applies, else rows), whatever its thread rule says; with ``rows``
    (``--two rows``) the row split whatever bpcore would choose."""

    rows = False

    def _threads(self):
        n, by_units = super()._threads()
        if n == 1:
            # The rule said one thread: the split it would use for more.
            by_units = (self.unit_split_ok and self.batches.batch_size
                        <= getattr(_engine, "_UNIT_SPLIT_MAX_BATCH", 0))
        return self.n_threads_max, by_units and not self.rows


def _network(sizes, dtype, toolbox):
    kw = dict(batch_norm=True, dropout=0.1, residual=[False, True]) if toolbox else {}
    return bpcore.Network(sizes, activation="relu", output="softmax", loss="log_loss",
                          dtype=dtype, random_state=0, **kw)


def _w6_data(dtype):
    # The same data as benchmarks/w6_layers.py (W1's shape, 10 classes).
    rng = np.random.default_rng(0)
    X = rng.standard_normal((20000, 64)).astype(dtype)
    y = (X[:, :10] @ rng.standard_normal((10, 10))).argmax(1)
    return X, np.eye(10, dtype=dtype)[y]


def problem(name, dtype):
    """``(sizes, X, Y, batch_size, toolbox)`` of workload ``name``."""
    if name in ("W6", "W6-plain"):
        X, Y = _w6_data(dtype)
        return [64, 128, 128, 10], X, Y, 32, name == "W6"
    w = WORKLOADS[name]
    d = make_dataset(w)
    return w.layer_units(), d.X_train[dtype], d.Y_train[dtype], w.batch_size, False


class Contender:
    def __init__(self, mode, sizes, X, Y, batch_size, toolbox, dtype):
        self.mode = mode
        self.net = _network(sizes, dtype, toolbox)
        opt = bpcore.Adam(LEARNING_RATE)
        cls = Forced if mode == "2" else EpochRunner
        limit = 1 if mode == "1" else None
        with threadpool_limits(limit):
            self.runner = cls(self.net, opt, X, Y, None, batch_size, ALPHA, seed=1)
        self.order = np.arange(X.shape[0])
        self.rs = np.random.RandomState(0)

    def threads(self):
        with threadpool_limits(1 if self.mode == "1" else None):
            return self.runner._threads()

    def epoch(self):
        self.order = reshuffle(self.order, self.rs)
        limit = 1 if self.mode == "1" else None
        with threadpool_limits(limit):
            t0 = time.perf_counter()
            self.runner.run(self.order)
            return time.perf_counter() - t0


def measure(name, dtype, seconds, slow_ns, busy_ns):
    sizes, X, Y, bs, toolbox = problem(name, dtype)
    cs = [Contender(m, sizes, X, Y, bs, toolbox, dtype) for m in MODES]
    chosen = {c.mode: c.threads() for c in cs}
    for c in cs:
        c.epoch()                                   # warm-up
    rounds = []
    t_end = time.perf_counter() + seconds
    i = 0
    while time.perf_counter() < t_end:
        # The barrier round beside the epochs; the order of the three
        # rotates so that none always runs first after the probe.
        bar = barrier_latency(2000) * 1e9
        times = {}
        for k in range(len(cs)):
            c = cs[(i + k) % len(cs)]
            times[c.mode] = c.epoch()
        bar_after = barrier_latency(2000) * 1e9
        rounds.append({"barrier_ns": bar, "barrier_after_ns": bar_after,
                       "load1": os.getloadavg()[0], **{f"t_{m}": times[m] for m in MODES}})
        i += 1
    return {"workload": name, "dtype": dtype, "batch_size": bs, "sizes": sizes,
            "toolbox": toolbox, "chosen": {m: list(v) for m, v in chosen.items()},
            "rounds": rounds, "slow_ns": slow_ns, "busy_ns": busy_ns}


def phase_of(barrier_ns, slow_ns, busy_ns):
    """fast (both vCPUs close), slow (the host put them apart) or busy
    (another process held the other CPU: a round waited for a reschedule)."""
    if barrier_ns >= busy_ns:
        return "busy"
    return "slow" if barrier_ns >= slow_ns else "fast"


def phase_rows(res):
    """One table row per phase of ``res``'s rounds (and one for all)."""
    rounds = res["rounds"]
    rows = []
    # A round belongs to the worse of the phases probed before and after it.
    phase = [phase_of(max(r["barrier_ns"], r["barrier_after_ns"]), res["slow_ns"],
                      res["busy_ns"]) for r in rounds]
    for label in ("fast", "slow", "busy", "all"):
        sel = [r for r, p in zip(rounds, phase) if label in (p, "all")]
        if not sel:
            continue
        t = {m: np.array([r[f"t_{m}"] for r in sel]) for m in MODES}
        bar = np.array([r["barrier_ns"] for r in sel])
        load = np.array([r["load1"] for r in sel])

        def ratio(m):
            q = t["1"] / t[m]
            return float(np.median(q)), float(np.percentile(q, 10)), float(np.percentile(q, 90))
        rows.append({"phase": label, "rounds": len(sel), "share": len(sel) / len(rounds),
                     "barrier_ns": (float(np.min(bar)), float(np.median(bar)),
                                    float(np.max(bar))),
                     "load1": (float(np.min(load)), float(np.max(load))),
                     "t_1": float(np.median(t["1"])), "t_default": float(np.median(t["default"])),
                     "t_2": float(np.median(t["2"])),
                     "default_x": ratio("default"), "two_x": ratio("2")})
    return rows


def table(results):
    out = ["| workload | dtype | default picks | phase | rounds (share) | barrier ns "
           "min/med/max | load1 | 1 thread s/epoch | default vs 1 (p10-p90) "
           "| 2 threads vs 1 (p10-p90) |",
           "|---|---|---|---|---:|---|---|---:|---:|---:|"]
    for res in results:
        n, units = res["chosen"]["default"]
        pick = f"{n}" + (" (units)" if units and n > 1 else " (rows)" if n > 1 else "")
        for r in phase_rows(res):
            b, ld = r["barrier_ns"], r["load1"]
            dx, tx = r["default_x"], r["two_x"]
            out.append(
                f"| {res['workload']} | {res['dtype']} | {pick} | {r['phase']} | "
                f"{r['rounds']} ({100 * r['share']:.0f}%) | {b[0]:.0f}/{b[1]:.0f}/{b[2]:.0f} | "
                f"{ld[0]:.1f}-{ld[1]:.1f} | {r['t_1']:.4f} | "
                f"{dx[0]:.2f}x ({dx[1]:.2f}-{dx[2]:.2f}) | {tx[0]:.2f}x ({tx[1]:.2f}-{tx[2]:.2f}) |")
    return "\n".join(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=60.0,
                    help="seconds of alternating rounds per workload and dtype")
    ap.add_argument("--workloads", nargs="+", default=["W1", "W2", "W5", "W6", "W3"])
    ap.add_argument("--dtypes", nargs="+", default=["float32", "float64"])
    ap.add_argument("--slow-ns", type=float, default=100.0,
                    help="barrier round (ns) from which a round counts as slow")
    ap.add_argument("--busy-ns", type=float, default=2000.0,
                    help="barrier round (ns) from which a round counts as busy")
    ap.add_argument("--out", default=None, help="write <out>.md and <out>.json")
    ap.add_argument("--two", choices=("chosen", "rows"), default="chosen",
                    help="the split of the forced '2' column: the one bpcore would use "
                         "for two threads, or the row split")
    args = ap.parse_args()
    Forced.rows = args.two == "rows"
    if _threads.thread_limit() < 2:
        sys.exit("thread_phases needs at least 2 threads (check OMP_NUM_THREADS and "
                 "the CPUs this process may use)")
    results = []
    started = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
    for name in args.workloads:
        for dtype in args.dtypes:
            res = measure(name, dtype, args.seconds, args.slow_ns, args.busy_ns)
            results.append(res)
            print(table([res]).split("\n", 2)[2], flush=True)
    head = (f"Run {started}, {platform.node()}, {os.cpu_count()} CPUs, bpcore "
            f"{bpcore.__version__}, {args.seconds:.0f} s per workload and dtype, "
            f"slow phase from {args.slow_ns:.0f} ns, busy from {args.busy_ns:.0f} ns; "
            f"the forced 2 threads: {'the row split' if Forced.rows else 'the split bpcore would use'}; "
            "load1 = 1-minute load average "
            "during the rounds (other processes on the machine).")
    md = head + "\n\n" + table(results) + "\n"
    print("\n" + md)
    if args.out:
        with open(args.out + ".md", "w") as f:
            f.write(md)
        with open(args.out + ".json", "w") as f:
            json.dump({"header": head, "results": results}, f, indent=1)


if __name__ == "__main__":
    main()
