"""Epoch contenders: one object per (library, dtype) that trains one classification task.

Every contender has ``library``, ``dtype``, ``label``, ``notes`` (a list of
strings), ``run(i)`` (``epochs_per_run`` training epochs; ``i`` counts runs,
negative during warm-up), ``score()`` (held-out accuracy of its current model)
and ``extra()`` (facts worth recording). Building one builds its model from
the task's seed, so every contender starts from scikit-learn's initial
weights for that seed (scikit-learn's, bpcore's, and torch's and JAX's copies
of them) and trains on the same rows with the same Adam and L2:

- ``bpcore``  ``bpcore.train(net, X, Y, optimizer=Adam(...), epochs=k)``.
- ``sklearn`` ``MLPClassifier.partial_fit``: exactly one shuffled epoch that
  keeps the Adam state between calls.
- ``torch``   eager ``nn.Sequential``, ``CrossEntropyLoss``, ``Adam``
  (fused CPU implementation when available, its fastest), a ``randperm``
  minibatch loop. The L2 term is Adam's ``weight_decay = alpha / batch_size``
  on the weights (exact but for a short last batch).
- ``jax``     the whole epoch as one ``jax.jit`` of a ``lax.scan`` over the
  shuffled minibatches (the short last batch as one more step), ``optax.adam``,
  cross-entropy plus ``0.5 * alpha * sum(W**2) / batch_rows``. Compiled
  when built (``compile_seconds``, reported apart), every run blocked on.

XLA's CPU client sizes its thread pool from the CPUs the process may use when
it starts and ignores ``intra_op_parallelism_threads``; :func:`set_xla_threads`
starts it while pinned to ``n`` CPUs, then unpins.
"""
from __future__ import annotations

import contextlib
import importlib
import os
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

LIBRARIES = ("bpcore", "sklearn", "torch", "jax")
SHORT_DTYPE = {"float64": "f64", "float32": "f32"}
# Larger than any number of epochs we run: never stop on "no improvement".
NEVER = 1_000_000
# How to get each optional contender.
INSTALL = {"torch": "pip install torch", "jax": "pip install jax optax"}


@dataclass
class Task:
    """One classification problem at one dtype, and how every contender trains on it.

    ``y_train``/``y_test`` are class codes ``0 .. n_classes-1``; ``X_train``
    and ``X_test`` are C-contiguous arrays of the working dtype. A binary
    problem is the network scikit-learn's ``MLPClassifier`` builds for it, for
    every contender: one logistic output unit and binary cross-entropy (not
    two softmax units), so all of them train the same network.
    """

    X_train: NDArray[Any]
    y_train: NDArray[Any]
    X_test: NDArray[Any]
    y_test: NDArray[Any]
    n_classes: int
    hidden: tuple[int, ...]
    batch_size: int
    alpha: float = 1e-4
    learning_rate: float = 1e-3
    beta_1: float = 0.9
    beta_2: float = 0.999
    epsilon: float = 1e-8
    seed: int = 0
    _cache: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def dtype(self) -> str:
        name: str = self.X_train.dtype.name
        return name

    @property
    def n_train(self) -> int:
        return int(self.X_train.shape[0])

    @property
    def binary(self) -> bool:
        return self.n_classes == 2

    @property
    def output(self) -> str:
        """The output activation: ``"logistic"`` (one unit) for two classes, else softmax."""
        return "logistic" if self.binary else "softmax"

    def layer_units(self) -> list[int]:
        return [self.X_train.shape[1], *self.hidden, 1 if self.binary else self.n_classes]

    @property
    def Y_train(self) -> NDArray[Any]:
        """Training targets of the working dtype: one-hot rows, or the 0/1 column."""
        if "Y" not in self._cache:
            Y: NDArray[Any]
            if self.binary:
                Y = np.ascontiguousarray(self.y_train.reshape(-1, 1), dtype=self.dtype)
            else:
                Y = np.zeros((self.n_train, self.n_classes), dtype=self.dtype)
                Y[np.arange(self.n_train), self.y_train] = 1
            self._cache["Y"] = Y
        Y_train: NDArray[Any] = self._cache["Y"]
        return Y_train

    def initial_weights(self) -> tuple[list[NDArray[np.float64]], list[NDArray[np.float64]]]:
        """scikit-learn's initial ``(coefs, intercepts)`` for ``seed``, float64.

        bpcore's ``init="sklearn"`` draws exactly scikit-learn's numbers; torch
        and JAX start from copies cast to the working dtype.
        """
        if "init" not in self._cache:
            import bpcore
            net = bpcore.Network(self.layer_units(), activation="relu", output=self.output,
                                 loss="log_loss", dtype="float64", random_state=self.seed)
            self._cache["init"] = ([c.copy() for c in net.coefs],
                                   [b.copy() for b in net.intercepts])
        weights: tuple[list[NDArray[np.float64]], list[NDArray[np.float64]]] = self._cache["init"]
        return weights


class Contender:
    library: str | None = None

    def __init__(self, task: Task, epochs_per_run: int = 1) -> None:
        self.task = task
        self.dtype = task.dtype
        self.epochs_per_run = int(epochs_per_run)
        self.notes: list[str] = []

    @property
    def label(self) -> str:
        return f"{self.library} {SHORT_DTYPE[self.dtype]}"

    def run(self, i: int) -> None:
        raise NotImplementedError

    def score(self) -> float:
        """Held-out accuracy of the current model."""
        return float(np.mean(self.predict_codes(self.task.X_test) == self.task.y_test))

    def predict_codes(self, X: NDArray[Any]) -> NDArray[Any]:
        raise NotImplementedError

    def extra(self) -> dict[str, Any]:
        return {}


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Silence ConvergenceWarning: every partial fit here stops early on purpose."""
    from sklearn.exceptions import ConvergenceWarning
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        yield


# --------------------------------------------------------------------------
# bpcore
# --------------------------------------------------------------------------

class BpcoreEpoch(Contender):
    """``bpcore.train`` on a ``Network`` + ``Adam``: one call of ``epochs_per_run`` epochs."""

    library = "bpcore"

    def __init__(self, task: Task, epochs_per_run: int = 1) -> None:
        super().__init__(task, epochs_per_run)
        import bpcore
        self.bp = bpcore
        self.net = bpcore.Network(task.layer_units(), activation="relu", output=task.output,
                                  loss="log_loss", dtype=task.dtype, random_state=task.seed)
        self.opt = bpcore.Adam(learning_rate=task.learning_rate, beta_1=task.beta_1,
                               beta_2=task.beta_2, epsilon=task.epsilon)
        self.Y = task.Y_train
        self.rs = np.random.RandomState(task.seed + 1000)

    def run(self, i: int) -> None:
        self.bp.train(self.net, self.task.X_train, self.Y, optimizer=self.opt,
                      epochs=self.epochs_per_run, batch_size=self.task.batch_size,
                      random_state=self.rs, alpha=self.task.alpha)

    def predict_codes(self, X: NDArray[Any]) -> NDArray[Any]:
        out = self.net.forward(X)
        return (out[:, 0] > 0.5).astype(np.intp) if self.task.binary else np.argmax(out, axis=1)


# --------------------------------------------------------------------------
# scikit-learn
# --------------------------------------------------------------------------

class SklearnEpoch(Contender):
    """``MLPClassifier.partial_fit``, one shuffled epoch per call, Adam state kept."""

    library = "sklearn"

    def __init__(self, task: Task, epochs_per_run: int = 1) -> None:
        super().__init__(task, epochs_per_run)
        from sklearn.neural_network import MLPClassifier
        # A RandomState instance (not an int): partial_fit calls
        # check_random_state every epoch, and an int would replay the same
        # shuffle each epoch. Its first draws are the initial weights, the
        # same as bpcore's for the seed.
        self.clf = MLPClassifier(
            hidden_layer_sizes=task.hidden, activation="relu", solver="adam",
            alpha=task.alpha, batch_size=task.batch_size,
            learning_rate_init=task.learning_rate, beta_1=task.beta_1,
            beta_2=task.beta_2, epsilon=task.epsilon, shuffle=True,
            random_state=np.random.RandomState(task.seed), tol=0.0,
            n_iter_no_change=NEVER, max_iter=1)
        self.classes = np.arange(task.n_classes)

    def run(self, i: int) -> None:
        import sklearn
        # assume_finite skips the per-call NaN scan of X that partial_fit would
        # otherwise repeat every epoch (fit does it once): fairer to sklearn.
        with sklearn.config_context(assume_finite=True), _quiet():
            for _ in range(self.epochs_per_run):
                self.clf.partial_fit(self.task.X_train, self.task.y_train,
                                     classes=self.classes)

    def predict_codes(self, X: NDArray[Any]) -> NDArray[Any]:
        codes: NDArray[Any] = self.clf.predict(X)
        return codes


# --------------------------------------------------------------------------
# PyTorch
# --------------------------------------------------------------------------

def torch_has_fused_adam(torch: Any) -> bool:  # torch: the module
    p = torch.nn.Parameter(torch.zeros(2))
    try:
        torch.optim.Adam([p], fused=True)
        return True
    except (RuntimeError, TypeError, ValueError):
        return False


class TorchEpoch(Contender):
    """Eager PyTorch: ``nn.Sequential``, ``CrossEntropyLoss``, ``Adam``."""

    library = "torch"

    def __init__(self, task: Task, epochs_per_run: int = 1) -> None:
        super().__init__(task, epochs_per_run)
        import torch
        self.torch = torch
        tdtype = getattr(torch, task.dtype)
        coefs, intercepts = task.initial_weights()
        layers = []
        for k, (W, b) in enumerate(zip(coefs, intercepts)):
            lin = torch.nn.Linear(W.shape[0], W.shape[1], dtype=tdtype)
            with torch.no_grad():
                lin.weight.copy_(torch.from_numpy(np.ascontiguousarray(W.T)))
                lin.bias.copy_(torch.from_numpy(b))
            layers.append(lin)
            if k < len(coefs) - 1:
                layers.append(torch.nn.ReLU())
        self.model = torch.nn.Sequential(*layers)
        weights = [p for n, p in self.model.named_parameters() if n.endswith("weight")]
        biases = [p for n, p in self.model.named_parameters() if n.endswith("bias")]
        # scikit-learn adds 0.5 * alpha * sum ||W||^2 / batch_size to each batch
        # loss (weights only). Adam's L2 weight_decay adds wd * W to the
        # gradient, which is exactly that gradient with wd = alpha / batch_size.
        fused = torch_has_fused_adam(torch)
        self.notes.append("torch Adam(fused=True)" if fused else
                          "torch: fused CPU Adam unavailable, default Adam")
        self.opt = torch.optim.Adam(
            [{"params": weights, "weight_decay": task.alpha / task.batch_size},
             {"params": biases, "weight_decay": 0.0}],
            lr=task.learning_rate, betas=(task.beta_1, task.beta_2), eps=task.epsilon,
            **({"fused": True} if fused else {}))
        self.X = torch.from_numpy(task.X_train)  # shares memory, no copy
        if task.binary:  # one logit, as scikit-learn's network for two classes
            self.loss_fn = torch.nn.BCEWithLogitsLoss()
            self.y = torch.from_numpy(task.Y_train)
        else:
            self.loss_fn = torch.nn.CrossEntropyLoss()
            self.y = torch.from_numpy(np.ascontiguousarray(task.y_train, dtype=np.int64))
        self.generator = torch.Generator().manual_seed(task.seed)

    def run(self, i: int) -> None:
        model, opt, loss_fn = self.model, self.opt, self.loss_fn
        X, y, bs = self.X, self.y, self.task.batch_size
        n = X.shape[0]
        for _ in range(self.epochs_per_run):
            perm = self.torch.randperm(n, generator=self.generator)
            for start in range(0, n, bs):
                idx = perm[start:start + bs]
                opt.zero_grad(set_to_none=True)
                loss = loss_fn(model(X[idx]), y[idx])
                loss.backward()
                opt.step()

    def predict_codes(self, X: NDArray[Any]) -> NDArray[Any]:
        with self.torch.inference_mode():
            logits = self.model(self.torch.from_numpy(X))
            codes: NDArray[Any] = ((logits[:, 0] > 0).numpy().astype(np.intp)
                                   if self.task.binary else logits.argmax(1).numpy())
            return codes


# --------------------------------------------------------------------------
# JAX / XLA
# --------------------------------------------------------------------------

_xla_threads: int | None = None  # the pool size set_xla_threads started XLA's client with


def _pinned_threads(cpus: set[int]) -> list[int]:
    """Thread ids of this process whose affinity is exactly ``cpus``."""
    tids = []
    for tid in os.listdir("/proc/self/task"):
        try:
            if os.sched_getaffinity(int(tid)) == cpus:
                tids.append(int(tid))
        except OSError:  # the thread ended meanwhile
            pass
    return tids


def set_xla_threads(n: int | None, restart: bool = False) -> str | None:
    """Start XLA's CPU client with a pool of ``n`` threads.

    XLA's CPU client takes its pool size from the CPUs the process may use
    when it starts (it ignores ``intra_op_parallelism_threads``): start it
    while pinned to ``n`` CPUs, then give every thread pinned that way (the
    pool's threads inherit the mask) all the CPUs back, so the pool keeps its
    size but may run anywhere.

    Parameters
    ----------
    n : int or None
        Threads; None for XLA's default (all usable CPUs).
    restart : bool, default=False
        If XLA already runs with another pool size, restart its client
        (``jax.extend.backend.clear_backends``: every live JAX array of the
        process becomes unusable). Without it, XLA keeps its pool.

    Returns
    -------
    note : str or None
        Why ``n`` could not be honoured, or None.

    Examples
    --------
    >>> set_xla_threads(1)  # doctest: +SKIP
    """
    global _xla_threads
    import jax
    from jax._src import xla_bridge  # backends_are_initialized has no public name

    if not hasattr(os, "sched_setaffinity"):  # macOS, Windows
        return (None if n is None else
                "XLA's threads cannot be limited on this platform: it uses all CPUs")
    cpus = os.sched_getaffinity(0)
    want = None if n is None or n >= len(cpus) else int(n)
    if xla_bridge.backends_are_initialized():
        if want == _xla_threads:
            return None
        if not restart:
            have = "its default pool" if _xla_threads is None else f"{_xla_threads} threads"
            return (f"XLA was already started with {have}; it keeps them "
                    f"(asked for {n})")
        from jax.extend import backend
        backend.clear_backends()
        jax.clear_caches()
    if want is None:
        jax.devices("cpu")
        _xla_threads = None
        return None
    pinned = set(sorted(cpus)[:want])
    os.sched_setaffinity(0, pinned)
    try:
        jax.devices("cpu")
    finally:
        for tid in _pinned_threads(pinned):
            try:
                os.sched_setaffinity(tid, cpus)
            except OSError:
                pass
        os.sched_setaffinity(0, cpus)
    _xla_threads = want
    return None


def thread_ticks() -> dict[str, int]:
    """``{thread id: CPU clock ticks used so far}`` for this process (Linux)."""
    out: dict[str, int] = {}
    try:
        tids = os.listdir("/proc/self/task")
    except OSError:
        return out
    for tid in tids:
        try:
            with open(f"/proc/self/task/{tid}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
            out[tid] = int(fields[11]) + int(fields[12])  # utime + stime
        except (OSError, IndexError, ValueError):
            pass
    return out


def busy_threads(fn: Callable[[], object], seconds: float = 0.5, share: float = 0.25,
                 ) -> tuple[int | None, float]:
    """Call ``fn()`` for about ``seconds``; count the threads that did the work.

    Returns ``(n_busy, cpu_per_wall)``: how many threads used at least
    ``share`` of the CPU time spent meanwhile, and process CPU time over
    wall time (about 1 for one busy core). ``n_busy`` is None off Linux.
    """
    before, c0, t0 = thread_ticks(), time.process_time(), time.perf_counter()
    while True:
        fn()
        if time.perf_counter() - t0 >= seconds:
            break
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    after = thread_ticks()
    used = {t: after[t] - before.get(t, 0) for t in after}
    total = sum(used.values())
    n_busy = sum(1 for v in used.values() if v >= share * total) if total else None
    return n_busy, cpu / wall


class JaxEpoch(Contender):
    """The whole epoch as one jitted ``lax.scan`` over the shuffled minibatches."""

    library = "jax"

    def __init__(self, task: Task, epochs_per_run: int = 1, measure_threads: bool = True,
                 ) -> None:
        super().__init__(task, epochs_per_run)
        import jax
        import optax
        self.jax = jax
        self._x64 = jax.enable_x64(task.dtype == "float64")
        n, bs = task.n_train, task.batch_size
        bs = max(1, min(bs, n))
        self.n_full, self.rest = divmod(n, bs)
        self.bs = bs
        self.rs = np.random.RandomState(task.seed + 2000)
        with self._x64:
            jnp = jax.numpy
            coefs, intercepts = task.initial_weights()
            self.params = [(jnp.asarray(W, dtype=task.dtype), jnp.asarray(b, dtype=task.dtype))
                           for W, b in zip(coefs, intercepts)]
            self.tx = optax.adam(task.learning_rate, b1=task.beta_1, b2=task.beta_2,
                                 eps=task.epsilon)
            self.state = self.tx.init(self.params)
            self.X = jnp.asarray(task.X_train)
            self.Y = jnp.asarray(task.Y_train)
            self._epoch = jax.jit(self._build_epoch(optax))
            perm = self._perm()
            t0 = time.perf_counter()
            self._compiled = self._epoch.lower(self.params, self.state, self.X, self.Y,
                                               perm).compile()
            self.compile_seconds = time.perf_counter() - t0
            out_dtype = self._compiled(self.params, self.state, self.X, self.Y,
                                       perm)[0][0][0].dtype
        if out_dtype != np.dtype(task.dtype):
            raise RuntimeError(f"JAX computed in {out_dtype}, not {task.dtype}")
        self.notes.append(f"compile {self.compile_seconds:.2f} s (not timed)")
        self.threads: dict[str, Any] | None = None
        if measure_threads:
            # On the initial parameters, results dropped: trains nothing.
            p, s = self.params, self.state

            def once() -> None:
                with self._x64:
                    self._compiled(p, s, self.X, self.Y, self._perm())[2].block_until_ready()
            n_busy, cpu_wall = busy_threads(once)
            self.threads = {"busy_threads": n_busy, "cpu_per_wall": round(cpu_wall, 2)}
            self.notes.append(f"XLA busy threads {n_busy}, CPU/wall {cpu_wall:.2f}")

    def _perm(self) -> NDArray[np.int32]:
        return self.rs.permutation(self.task.n_train).astype(np.int32)

    # optax, and the JAX values below: optional libraries, read as untyped.
    def _build_epoch(self, optax: Any) -> Callable[..., Any]:
        jax = self.jax
        jnp = jax.numpy
        alpha, tx = self.task.alpha, self.tx
        n_full, rest, bs = self.n_full, self.rest, self.bs
        # One logit and binary cross-entropy for two classes (scikit-learn's net).
        xent = (optax.sigmoid_binary_cross_entropy if self.task.binary
                else optax.softmax_cross_entropy)

        def batch_loss(params: Any, xb: Any, yb: Any) -> Any:
            a = xb
            for W, b in params[:-1]:
                a = jax.nn.relu(a @ W + b)
            W, b = params[-1]
            data = xent(a @ W + b, yb).mean()
            l2 = sum(jnp.sum(W * W) for W, _ in params)
            return data + (0.5 * alpha / xb.shape[0]) * l2

        grad = jax.value_and_grad(batch_loss)

        def epoch(params: Any, state: Any, X: Any, Y: Any, perm: Any) -> Any:
            def step(carry: Any, idx: Any) -> Any:
                params, state = carry
                loss, g = grad(params, X[idx], Y[idx])
                updates, state = tx.update(g, state, params)
                return (optax.apply_updates(params, updates), state), loss * idx.shape[0]

            full = perm[:n_full * bs].reshape(n_full, bs)
            (params, state), losses = jax.lax.scan(step, (params, state), full)
            total = jnp.sum(losses)
            if rest:
                (params, state), last = step((params, state), perm[n_full * bs:])
                total = total + last
            return params, state, total / perm.shape[0]

        return epoch

    def run(self, i: int) -> None:
        with self._x64:
            for _ in range(self.epochs_per_run):
                self.params, self.state, self.loss = self._compiled(
                    self.params, self.state, self.X, self.Y, self._perm())
            self.jax.block_until_ready((self.params, self.loss))

    def predict_codes(self, X: NDArray[Any]) -> NDArray[Any]:
        with self._x64:
            a = self.jax.numpy.asarray(X)
            for W, b in self.params[:-1]:
                a = self.jax.nn.relu(a @ W + b)
            W, b = self.params[-1]
            logits = np.asarray(a @ W + b)
            codes: NDArray[Any] = ((logits[:, 0] > 0).astype(np.intp) if self.task.binary
                                   else np.argmax(logits, axis=1))
            return codes

    def extra(self) -> dict[str, Any]:
        out: dict[str, Any] = {"compile_seconds": self.compile_seconds}
        if self.threads:
            out.update(self.threads)
        return out


CONTENDERS = {"bpcore": BpcoreEpoch, "sklearn": SklearnEpoch, "torch": TorchEpoch,
              "jax": JaxEpoch}


def missing_reason(library: str) -> str | None:
    """Why ``library``'s contender cannot run here (None if it can)."""
    modules = {"torch": ("torch",), "jax": ("jax", "optax")}.get(library, ())
    for mod in modules:
        try:
            importlib.import_module(mod)
        except Exception as exc:  # ImportError, or a broken install raising anything
            return (f"{library} skipped: `import {mod}` failed ({type(exc).__name__}: "
                    f"{exc}); {INSTALL[library]} (or pip install 'bpcore[bench]')")
    return None
