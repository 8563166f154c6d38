"""Is bpcore faster for *my* network, here? Time it against its peers on this machine.

``python -m bpcore.benchmark --layers 64 100 10 --batch-size 32`` or
:func:`compare` trains the same classifier (ReLU hidden layers, softmax and
cross-entropy, Adam, L2 ``alpha``) with bpcore, scikit-learn's
``MLPClassifier`` and, when installed, PyTorch and JAX, on the same rows from
the same initial weights. The contenders run in alternation (one round: each
trains ``epochs`` epochs in turn), so a burst of load from another program
hits them all alike; the result gives seconds per epoch, each contender's
time over bpcore's (the median of the per-round ratios) and held-out accuracy.

The full benchmark suite of the project (``benchmarks/`` in the source tree)
times through the same machinery (:mod:`bpcore.benchmark.timing`,
:mod:`bpcore.benchmark.contenders`).
"""
from __future__ import annotations

import argparse
import contextlib
import math
import os
import platform
import sys
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .contenders import (CONTENDERS, LIBRARIES, SHORT_DTYPE, Contender, Task, missing_reason,
                         set_xla_threads)
from .timing import paired_ratio, summarize, time_alternating

__all__ = ["ComparisonResult", "compare", "main"]

_DTYPES = ("float64", "float32")
#: ``python -m bpcore.benchmark``'s shape without ``--layers``: 64 features,
#: one hidden layer of 100, 10 classes (workload W1 of ``benchmarks/``).
DEFAULT_LAYERS = (64, 100, 10)


@dataclass
class ComparisonResult:
    """What :func:`compare` measured.

    Attributes
    ----------
    rows : list of dict
        One per contender, in alternation order: ``library``, ``dtype``,
        ``seconds_per_epoch`` (median over rounds), ``min``, ``max``,
        ``times`` (every round, seconds per epoch), ``vs_bpcore`` (its time
        over bpcore's: the median of the per-round ratios; 2.0 means bpcore was
        twice as fast), ``score`` (held-out accuracy), ``extra`` (e.g. JAX's
        ``compile_seconds``), ``notes`` and ``error`` (None, or why it has no
        time).
    config : dict
        The problem and how it was timed (``layers``: features, hidden sizes,
        classes; ``output``: ``"softmax"``, or ``"logistic"`` for one output
        unit on two classes; batch size, dtype, epochs, rounds, threads, rows).
    notes : list of str
        Contenders skipped and why, thread settings that could not be honoured.

    Parameters
    ----------
    rows : list of dict
        The ``rows`` attribute.
    config : dict
        The ``config`` attribute.
    notes : list of str, default=[]
        The ``notes`` attribute.

    Examples
    --------
    >>> from bpcore.benchmark import compare
    >>> result = compare(hidden_layer_sizes=(8,), n_samples=200, n_features=4, n_classes=2,
    ...                  epochs=1, rounds=1, contenders=("bpcore",), progress=False)
    >>> result.config["layers"], result.row("bpcore")["library"]
    ([4, 8, 2], 'bpcore')
    """

    rows: list[dict[str, Any]]
    config: dict[str, Any]
    notes: list[str] = field(default_factory=list)

    def row(self, library: str) -> dict[str, Any]:
        """The row of ``library`` (KeyError if it did not run).

        Parameters
        ----------
        library : str
            ``"bpcore"``, ``"sklearn"``, ``"torch"`` or ``"jax"``.

        Returns
        -------
        row : dict
            See ``rows``.
        """
        for r in self.rows:
            if r["library"] == library:
                return r
        raise KeyError(f"no {library!r} row; contenders were "
                       f"{[r['library'] for r in self.rows]}")

    def as_dict(self) -> dict[str, Any]:
        """Plain Python data (JSON-ready): ``{"config", "rows", "notes"}``.

        Returns
        -------
        data : dict
            Copies of ``config``, ``rows`` and ``notes``.
        """
        return {"config": dict(self.config), "rows": [dict(r) for r in self.rows],
                "notes": list(self.notes)}

    def __str__(self) -> str:
        c = self.config
        head = (f"{c['n_train']:,} x {c['layers'][0]} -> {tuple(c['layers'][1:-1])} -> "
                f"{c['layers'][-1]} classes"
                f"{' (one logistic output unit)' if c.get('output') == 'logistic' else ''}, "
                f"batch {c['batch_size']}, {c['dtype']}, "
                f"{c['threads']} thread{'s' if c['threads'] != 1 else ''}, "
                f"{_plural(c['rounds'], 'round')} x {_plural(c['epochs'], 'epoch')} "
                f"(alternating, after {_plural(c['warmup'], 'warm-up round')})")
        table = [("contender", "s/epoch", "min-max", "vs bpcore", "test acc", "notes")]
        for r in self.rows:
            t = r["seconds_per_epoch"]
            table.append((
                f"{r['library']} {SHORT_DTYPE[r['dtype']]}",
                "-" if t is None else f"{t:.4g}",
                "-" if t is None else f"{r['min']:.3g}-{r['max']:.3g}",
                "-" if r["vs_bpcore"] is None else f"{r['vs_bpcore']:.2f}x",
                "-" if r["score"] is None else f"{r['score']:.3f}",
                "; ".join(([f"FAILED: {r['error']}"] if r["error"] else []) + r["notes"]),
            ))
        widths = [max(len(row[k]) for row in table) for k in range(5)]
        lines = [head, ""]
        for k, row in enumerate(table):
            cells = [row[0].ljust(widths[0])] + [row[j].rjust(widths[j]) for j in range(1, 5)]
            lines.append("  ".join(cells) + ("  " + row[5] if row[5] else ""))
            if k == 0:
                lines.append("  ".join("-" * w for w in widths))
        lines += ["", "vs bpcore: the contender's time over bpcore's, median of the "
                      "per-round ratios (above 1: bpcore is faster)."]
        lines += [f"note: {n}" for n in self.notes]
        return "\n".join(lines)


def _plural(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _check_int(value: object, name: str, low: int = 1) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an int, got {type(value).__name__} {value!r}")
    if value < low:
        raise ValueError(f"{name} must be >= {low}, got {value}")
    return int(value)


def _check_real(value: object, name: str, low: float = 0.0, strict: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__} {value!r}")
    value = float(value)
    if not math.isfinite(value) or value < low or (strict and value == low):
        raise ValueError(f"{name} must be a finite number {'>' if strict else '>='} {low}, "
                         f"got {value}")
    return value


def _check_hidden(hidden: Any) -> tuple[int, ...]:  # anything the user passed
    if isinstance(hidden, (int, np.integer)) and not isinstance(hidden, bool):
        hidden = (hidden,)
    try:
        hidden = tuple(hidden)
    except TypeError:
        raise TypeError("hidden_layer_sizes must be a sequence of positive ints such as "
                        f"(100,) or (256, 256), got {hidden!r}") from None
    if not hidden:
        raise ValueError("hidden_layer_sizes must name at least one hidden layer, e.g. (100,)")
    return tuple(_check_int(h, "every hidden layer size") for h in hidden)


def _check_contenders(contenders: str | Iterable[str]) -> tuple[str, ...]:
    if isinstance(contenders, str):
        contenders = (contenders,)
    contenders = tuple(dict.fromkeys(contenders))
    unknown = [c for c in contenders if c not in LIBRARIES]
    if unknown:
        raise ValueError(f"unknown contender(s) {unknown}; choose among {list(LIBRARIES)}")
    if "bpcore" not in contenders:
        raise ValueError("contenders must include 'bpcore': every ratio is against it")
    return contenders


def synthetic_data(n_samples: int, n_features: int, n_classes: int, random_state: int = 0,
                   ) -> tuple[NDArray[np.float64], NDArray[np.intp]]:
    """Standard-normal rows with a learnable labelling.

    The label of a row is the argmax of ``X @ R`` for a fixed random ``R``
    (plus a little noise), so a network can learn it but not perfectly.

    Examples
    --------
    >>> X, y = synthetic_data(100, 8, 3)
    >>> X.shape, sorted(set(y.tolist()))
    ((100, 8), [0, 1, 2])
    """
    rng = np.random.default_rng(random_state)
    X = rng.standard_normal((n_samples, n_features))
    R = rng.standard_normal((n_features, n_classes))
    y: NDArray[np.intp] = np.argmax(X @ R + 0.5 * rng.standard_normal((n_samples, n_classes)),
                                    axis=1)
    return X, y


# X, y: the user's (anything until check_X_y).
def _prepare(X: Any, y: Any, dtype: str, test_size: float, random_state: int,
             ) -> tuple[NDArray[Any], NDArray[np.intp], NDArray[Any], NDArray[np.intp], int]:
    """Validate, encode the labels as codes, split, cast: (X_tr, y_tr, X_te, y_te, k)."""
    from sklearn.model_selection import train_test_split
    from sklearn.utils.multiclass import type_of_target
    from sklearn.utils.validation import check_X_y

    X, y = check_X_y(X, y, dtype=dtype, order="C")
    kind = type_of_target(y)
    if kind not in ("binary", "multiclass"):
        raise ValueError(
            f"compare times classifiers: y must hold class labels, got a {kind!r} "
            "target (for regression targets, bin them or time a classifier shape)")
    classes, codes = np.unique(y, return_inverse=True)
    counts = np.bincount(codes)
    stratify = codes if counts.min() >= 2 else None
    X_tr, X_te, y_tr, y_te = train_test_split(X, codes, test_size=test_size,
                                              random_state=random_state, stratify=stratify)
    if X_tr.shape[0] < 2 or X_te.shape[0] < 1:
        raise ValueError(f"need at least 3 samples to hold some out, got {X.shape[0]}")
    return (np.ascontiguousarray(X_tr), y_tr.astype(np.intp), np.ascontiguousarray(X_te),
            y_te.astype(np.intp), classes.size)


@contextlib.contextmanager
def _thread_limits(threads: int, use_torch: bool) -> Iterator[None]:
    """BLAS/OpenMP (threadpoolctl) and torch limited to ``threads``, restored after."""
    from threadpoolctl import threadpool_limits
    torch = sys.modules.get("torch") if use_torch else None
    before = torch.get_num_threads() if torch is not None else None
    with threadpool_limits(limits=threads):
        if torch is not None:
            torch.set_num_threads(threads)
        try:
            yield
        finally:
            if torch is not None:
                torch.set_num_threads(before)


def compare(X: ArrayLike | None = None, y: ArrayLike | None = None, *,
            hidden_layer_sizes: int | Sequence[int] = (100,), batch_size: int = 32,
            dtype: str = "float64", epochs: int = 3, rounds: int = 3, threads: int = 1,
            contenders: str | Sequence[str] = LIBRARIES, n_samples: int = 20_000,
            n_features: int = 64, n_classes: int = 10, test_size: float = 0.2,
            alpha: float = 1e-4, learning_rate: float = 1e-3, random_state: int = 0,
            progress: bool = True) -> ComparisonResult:
    """Time bpcore against scikit-learn (and PyTorch, JAX if installed) on one problem.

    Every contender trains the same ReLU network (softmax output and
    cross-entropy; for two classes one logistic unit and binary cross-entropy,
    the network scikit-learn's ``MLPClassifier`` builds), Adam with ``learning_rate`` and scikit-learn's betas and
    epsilon, L2 ``0.5 * alpha * sum(W**2) / batch_size``) on the same rows
    from scikit-learn's initial weights for ``random_state``. After one
    warm-up round, ``rounds`` rounds run each contender for ``epochs`` epochs
    in turn; JAX's compile time is excluded (reported in its row).

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features), optional
        Your data. Without it, ``n_samples`` standard-normal rows of
        ``n_features`` features with a learnable labelling into ``n_classes``.
    y : array-like of shape (n_samples,), optional
        Class labels (required with ``X``).
    hidden_layer_sizes : int or sequence of int, default=(100,)
        Units of each hidden layer (ReLU) of the timed network.
    batch_size : int, default=32
        Minibatch size of every contender (an epoch's last batch may be
        shorter).
    dtype : {"float64", "float32"}, default="float64"
        What every contender computes in: X and the weights are cast to it.
    epochs : int, default=3
        Epochs per contender per round.
    rounds : int, default=3
        Timed rounds after the warm-up round.
    threads : int, default=1
        BLAS/OpenMP threads (threadpoolctl), torch's threads and XLA's pool.
    contenders : sequence of str, default=("bpcore", "sklearn", "torch", "jax")
        Which to run; ``"bpcore"`` is required. One that is not installed is
        skipped with a note.
    n_samples, n_features, n_classes : int
        The synthetic problem's shape (ignored when ``X`` is given).
    test_size : float, default=0.2
        Fraction held out for the accuracy.
    alpha, learning_rate : float, default=1e-4, 1e-3
        L2 strength (scikit-learn's ``alpha``) and Adam's step size.
    random_state : int, default=0
        Seeds the data, the split, the initial weights and the shuffles.
    progress : bool, default=True
        Show a tqdm progress bar (on stderr) if tqdm is installed.

    Returns
    -------
    result : ComparisonResult
        ``print(result)`` shows the table; ``result.as_dict()`` the data.

    Notes
    -----
    On one thread, XLA's CPU client is started pinned to one CPU (it sizes its
    pool from the usable CPUs and ignores ``intra_op_parallelism_threads``).
    If JAX was started earlier in this process, its pool is left as it is and
    the result says so.

    Examples
    --------
    >>> from bpcore.benchmark import compare
    >>> result = compare(hidden_layer_sizes=(16,), n_samples=500, n_features=8,
    ...                  n_classes=3, epochs=1, rounds=1, contenders=("bpcore", "sklearn"),
    ...                  progress=False)
    >>> print(result)  # doctest: +SKIP
    >>> result.row("sklearn")["vs_bpcore"] > 0
    True
    """
    hidden = _check_hidden(hidden_layer_sizes)
    batch_size = _check_int(batch_size, "batch_size")
    epochs = _check_int(epochs, "epochs")
    rounds = _check_int(rounds, "rounds")
    threads = _check_int(threads, "threads")
    random_state = _check_int(random_state, "random_state", low=0)
    alpha = _check_real(alpha, "alpha")
    learning_rate = _check_real(learning_rate, "learning_rate", strict=True)
    test_size = _check_real(test_size, "test_size", strict=True)
    if test_size >= 1:
        raise ValueError(f"test_size must be a fraction in (0, 1), got {test_size}")
    if dtype not in _DTYPES:
        raise ValueError(f"dtype must be 'float64' or 'float32', got {dtype!r}")
    names = _check_contenders(contenders)
    synthetic = X is None
    if synthetic:
        if y is not None:
            raise ValueError("y was given without X: pass both, or neither for synthetic data")
        n_classes = _check_int(n_classes, "n_classes", low=2)
        X, y = synthetic_data(_check_int(n_samples, "n_samples", low=2 * n_classes),
                              _check_int(n_features, "n_features"), n_classes, random_state)
    elif y is None:
        raise ValueError("X was given without y: compare needs the class labels too")
    X_tr, y_tr, X_te, y_te, k = _prepare(X, y, dtype, test_size, random_state)
    task = Task(X_tr, y_tr, X_te, y_te, k, hidden, batch_size, alpha=alpha,
                learning_rate=learning_rate, seed=random_state)

    notes: list[str] = []
    runnable: list[str] = []
    for name in names:
        reason = missing_reason(name)
        if reason:
            notes.append(reason)
        else:
            runnable.append(name)
    if "jax" in runnable:
        note = set_xla_threads(threads)
        if note:
            notes.append(note)

    rows = _timed_rows(task, runnable, dtype, epochs, rounds, threads, progress)
    bp = rows[0]
    if bp["error"]:
        raise RuntimeError(f"bpcore failed: {bp['error']}")
    for r in rows[1:]:
        if r["times"]:
            r["vs_bpcore"] = paired_ratio(r["times"], bp["times"])
    config = {
        "layers": [task.X_train.shape[1], *hidden, k], "output": task.output,
        "batch_size": batch_size, "dtype": dtype,
        "epochs": epochs, "rounds": rounds, "warmup": 1, "threads": threads,
        "n_train": task.n_train, "n_test": int(X_te.shape[0]), "alpha": alpha,
        "learning_rate": learning_rate, "random_state": random_state,
        "data": "synthetic" if synthetic else "user",
        "cpu": _cpu_model(), "usable_cpus": _usable_cpus(),
    }
    return ComparisonResult(rows, config, notes)


def _timed_rows(task: Task, runnable: Sequence[str], dtype: str, epochs: int, rounds: int,
                threads: int, progress: bool) -> list[dict[str, Any]]:
    """One result row per contender in ``runnable`` (bpcore first): built,
    then timed in alternation (``time_alternating``), seconds per epoch."""
    rows: list[dict[str, Any]] = []
    built: list[Contender | None] = []
    with _thread_limits(threads, "torch" in runnable):
        for name in runnable:
            row: dict[str, Any] = {"library": name, "dtype": dtype, "seconds_per_epoch": None,
                   "min": None, "max": None, "times": [], "vs_bpcore": None,
                   "score": None, "extra": {}, "notes": [], "error": None}
            c: Contender | None
            try:
                c = CONTENDERS[name](task, epochs_per_run=epochs)
            except Exception as exc:
                if name == "bpcore":
                    raise
                row["error"] = f"setup failed: {type(exc).__name__}: {exc}"
                c = None
            rows.append(row)
            built.append(c)
        live = [c for c in built if c is not None]
        bar = _progress_bar(progress, (1 + rounds) * len(live))
        try:
            record = time_alternating(live, rounds, warmup=1,
                                      settle=0.12 if threads > 1 else 0.0,
                                      progress=None if bar is None else bar.update)
        finally:
            if bar is not None:
                bar.close()
        for row, c in zip(rows, built):
            if c is None:
                continue
            rec = record[id(c)]
            row["error"] = rec["error"]
            row["notes"] = list(c.notes)
            if rec["error"] is None:
                row["times"] = [t / epochs for t in rec["times"]]
                row["score"] = c.score()
                row["extra"] = c.extra()
            s = summarize(row["times"])
            row["seconds_per_epoch"], row["min"], row["max"] = s["median"], s["min"], s["max"]
    return rows


def _progress_bar(enabled: bool, total: int) -> Any:  # a tqdm bar (tqdm ships no types)
    if not enabled:
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return None
    return tqdm(total=total, desc="bpcore.benchmark", unit="run", leave=False)


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _usable_cpus() -> int | None:
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count()


# --------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------

def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _unwritable(path: str) -> str | None:
    """Why ``path`` cannot be written as a new or replaced file, or None."""
    import os
    folder = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path):
        return "is a directory; give a file name"
    if not os.path.isdir(folder):
        return f"the directory {folder} does not exist; create it first"
    if not os.access(folder, os.W_OK) or (os.path.exists(path)
                                          and not os.access(path, os.W_OK)):
        return "is not writable here"
    return None


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m bpcore.benchmark",
        description="Time bpcore against scikit-learn (and PyTorch, JAX if installed) "
                    "on one network shape, on this machine: seconds per epoch, ratios, "
                    "held-out accuracy.")
    p.add_argument("--layers", type=_positive_int, nargs="+", default=list(DEFAULT_LAYERS),
                   metavar="N",
                   help="input features, hidden layer sizes, classes (default: "
                        f"{' '.join(map(str, DEFAULT_LAYERS))}, the project's workload W1)")
    p.add_argument("--batch-size", type=_positive_int, default=32)
    p.add_argument("--dtype", choices=_DTYPES, default="float64")
    p.add_argument("--epochs", type=_positive_int, default=3,
                   help="epochs per contender per round (default 3)")
    p.add_argument("--rounds", type=_positive_int, default=3,
                   help="timed rounds after one warm-up round (default 3)")
    p.add_argument("--threads", type=_positive_int, default=1)
    p.add_argument("--samples", type=_positive_int, default=20_000,
                   help="synthetic rows, 20%% held out (default 20000)")
    p.add_argument("--contenders", nargs="+", choices=LIBRARIES, default=list(LIBRARIES))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", metavar="PATH", help="also write the result as JSON")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m bpcore.benchmark``; returns the exit status.

    Parameters
    ----------
    argv : list of str or None, default=None
        The command-line arguments (``sys.argv[1:]`` if None); no arguments
        time the default shape, ``DEFAULT_LAYERS``.

    Returns
    -------
    status : int
        0 on success (argparse exits with 2 on bad arguments).

    Examples
    --------
    >>> main(["--layers", "8", "16", "3", "--epochs", "1", "--rounds", "1",
    ...       "--samples", "300", "--contenders", "bpcore", "--no-progress"])  # doctest: +SKIP
    0
    """
    p = _parser()
    args = p.parse_args(argv)
    if len(args.layers) < 3:
        p.error("--layers needs at least three sizes: input features, one or more "
                "hidden layers, classes (e.g. --layers 64 100 10)")
    if args.layers[-1] < 2:
        p.error("--layers: the last size is the number of classes, at least 2")
    if "bpcore" not in args.contenders:
        p.error("--contenders must include bpcore: every ratio is against it")
    if args.samples < 2 * args.layers[-1]:
        p.error(f"--samples must be at least twice the number of classes "
                f"({2 * args.layers[-1]})")
    if args.json:
        # Checked before the run (minutes), not after it.
        problem = _unwritable(args.json)
        if problem:
            p.error(f"--json {args.json}: {problem}")
    result = compare(
        hidden_layer_sizes=tuple(args.layers[1:-1]), batch_size=args.batch_size,
        dtype=args.dtype, epochs=args.epochs, rounds=args.rounds, threads=args.threads,
        contenders=tuple(args.contenders), n_samples=args.samples,
        n_features=args.layers[0], n_classes=args.layers[-1], random_state=args.seed,
        progress=not args.no_progress)
    print(result)
    if args.json:
        import json
        with open(args.json, "w") as fh:
            json.dump(result.as_dict(), fh, indent=2, default=str)
    return 0
