"""The contenders: one object per (library, dtype) that can run one unit of work.

Every contender exposes ``run(i)`` (one epoch, one L-BFGS fit or one predict
call; ``i`` counts calls, negative during warm-up) and ``accuracy()`` (held-out
accuracy of its current model, or None). Building a contender builds its model
from a fixed seed, so every thread count starts from the same state.

Libraries:

- ``bpcore``  the engine epoch as ``bpcore.train`` and ``MLPClassifier`` run it
  (a ``Network`` + ``Adam`` and one ``EpochRunner``, one kernel call per epoch
  on a reshuffled order), and ``bpcore.MLPClassifier`` for L-BFGS and predict.
- ``floor``   ``FloorRunner``: the same GEMMs and one optimizer pass per
  batch, nothing else, allocated once; bpcore's time is reported as a
  multiple of it. It runs on one thread at every thread count.
- ``sklearn`` ``MLPClassifier.partial_fit``: exactly one shuffled epoch that
  keeps the Adam state between calls (``warm_start`` + ``max_iter=1`` would
  re-create the optimizer each call).
- ``torch``   eager ``nn.Sequential``, ``CrossEntropyLoss``, ``Adam``
  (fused CPU implementation, its fastest), a ``randperm`` minibatch loop,
  from scikit-learn's initial weights (``bpcore.benchmark.contenders``).
- ``jax``     the whole epoch as one jitted ``lax.scan`` (XLA), ``optax.adam``,
  compile time apart (``bpcore.benchmark.contenders.JaxEpoch``).

The epoch contenders of sklearn, torch and JAX are the package's own
(``python -m bpcore.benchmark`` runs the same code on any shape); bpcore's
and the floor's here drive the engine directly (one ``EpochRunner`` per fit),
as ``bpcore.train`` and the estimators do inside.
"""
import contextlib
import importlib
import warnings

import numpy as np
import scipy
import sklearn
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPClassifier as SkMLPClassifier

from workloads import ALPHA, BETA_1, BETA_2, EPSILON, LEARNING_RATE, SEED

try:
    from bpcore.benchmark import contenders as shared
except Exception as exc:  # bpcore missing or broken: its rows are skipped below
    shared, _SHARED_ERROR = None, exc

SHORT_DTYPE = {"float64": "f64", "float32": "f32"}
# Larger than any number of epochs we run: never stop on "no improvement".
NEVER = 1_000_000


# --------------------------------------------------------------------------
# Which libraries are importable, and how bpcore spells its API today.
# --------------------------------------------------------------------------

class Libraries:
    """Import what is available once; record why anything is missing."""

    def __init__(self):
        self.notes = []
        self.bpcore = self._import("bpcore")
        self.torch = self._import("torch")
        self.jax = None
        if shared is None:
            self.notes.append("bpcore.benchmark unavailable: sklearn/torch/jax epoch rows "
                              f"skipped ({type(_SHARED_ERROR).__name__}: {_SHARED_ERROR})")
        else:
            reason = shared.missing_reason("jax")
            if reason:
                self.notes.append(reason)
            else:
                import jax
                self.jax = jax
        self.floor_epoch = self._find_floor() if self.bpcore else None
        if self.bpcore is not None:
            missing = [n for n in ("Network", "Adam", "train") if not hasattr(self.bpcore, n)]
            if missing:
                self.notes.append(
                    f"bpcore lacks {', '.join(missing)}: bpcore epoch rows skipped"
                )
            if not hasattr(self.bpcore, "MLPClassifier"):
                self.notes.append(
                    "bpcore.MLPClassifier not available yet: LBFGS has sklearn rows "
                    "only; PREDICT uses bpcore.Network.forward (+ argmax)"
                )

    def _import(self, name):
        try:
            return importlib.import_module(name)
        except Exception as exc:  # ImportError, or a broken build raising anything
            self.notes.append(f"`import {name}` failed ({type(exc).__name__}: {exc}): "
                              f"{name} rows skipped")
            return None

    def _find_floor(self):
        # bpcore.benchmark.floor since the engine's split (issue 22); older
        # trees keep it in bpcore._engine.
        for name in ("benchmark.floor", "_engine"):
            try:
                mod = importlib.import_module(f"bpcore.{name}")
            except ImportError:
                mod = getattr(self.bpcore, name, None)
            if hasattr(mod, "floor_epoch"):
                return mod.floor_epoch
        self.notes.append("bpcore has no floor_epoch: floor rows skipped")
        return None

    @property
    def bpcore_engine(self):
        b = self.bpcore
        return b is not None and all(hasattr(b, n) for n in ("Network", "Adam", "train"))

    @property
    def bpcore_estimator(self):
        return self.bpcore is not None and hasattr(self.bpcore, "MLPClassifier")

    def versions(self):
        return {
            "numpy": np.__version__,
            "scipy": scipy.__version__,
            "sklearn": sklearn.__version__,
            "torch": getattr(self.torch, "__version__", None),
            "jax": getattr(self.jax, "__version__", None),
            "bpcore": _bpcore_version(self.bpcore),
        }


def _bpcore_version(module):
    if module is None:
        return None
    version = getattr(module, "__version__", None)
    if version is None:
        try:
            from importlib.metadata import version as dist_version
            version = dist_version("bpcore")
        except Exception:
            version = "unknown"
    return version


# --------------------------------------------------------------------------
# Base
# --------------------------------------------------------------------------

class Contender:
    library = None

    def __init__(self, workload, data, dtype):
        self.workload = workload
        self.data = data
        self.dtype = dtype
        self.notes = []

    @property
    def label(self):
        return f"{self.library} {SHORT_DTYPE[self.dtype]}"

    def run(self, i):
        raise NotImplementedError

    def accuracy(self):
        return None

    def extra(self):
        """Per-contender facts worth keeping in results.json (n_iter_, ...)."""
        return {}

    def _score_labels(self, predicted):
        return float(np.mean(np.asarray(predicted) == self.data.y_test))


@contextlib.contextmanager
def quiet():
    """Silence ConvergenceWarning: every fit here stops early on purpose."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        yield


# --------------------------------------------------------------------------
# Epoch contenders
# --------------------------------------------------------------------------

class BpcoreEpoch(Contender):
    library = "bpcore"

    def __init__(self, workload, data, dtype, libs):
        super().__init__(workload, data, dtype)
        bp = libs.bpcore
        self.bp = bp
        self.net = _bpcore_network(bp, workload, dtype)
        self.opt = _bpcore_adam(bp)
        self.X = data.X_train[dtype]
        self.Y = data.Y_train[dtype]

        # The engine epoch as bpcore.train and MLPClassifier run it: one
        # EpochRunner per fit (inputs validated and workspace allocated once),
        # then one kernel call per epoch on a freshly shuffled order.
        from bpcore._engine import EpochRunner, reshuffle
        self._reshuffle = reshuffle
        self.runner = EpochRunner(self.net, self.opt, self.X, self.Y, None,
                                  workload.batch_size, ALPHA)
        self.order = np.arange(self.X.shape[0], dtype=np.intp)
        self.rs = np.random.RandomState(SEED + 1000)

    def run(self, i):
        self.order = self._reshuffle(self.order, self.rs)
        self.runner.run(self.order)

    def accuracy(self):
        P = self.net.forward(self.data.X_test[self.dtype])
        return self._score_labels(self.data.classes[np.argmax(P, axis=1)])


class FloorEpoch(Contender):
    """GEMMs + optimizer pass only, on its own network (it trains nothing useful)."""

    library = "floor"

    def __init__(self, workload, data, dtype, libs):
        super().__init__(workload, data, dtype)
        try:
            from bpcore.benchmark.floor import FloorRunner
        except ImportError:  # a tree from before issue 22
            from bpcore._engine import FloorRunner
        self.net = _bpcore_network(libs.bpcore, workload, dtype)
        self.opt = _bpcore_adam(libs.bpcore)
        self.X = data.X_train[dtype]
        self.Y = data.Y_train[dtype]
        # Allocated once, like the engine's runner: run() times the GEMMs and
        # the optimizer pass only.
        self.runner = FloorRunner(self.net, self.opt, self.X, self.Y, workload.batch_size)

    def run(self, i):
        self.runner.run()


def _task(workload, data, dtype):
    """The workload as a ``bpcore.benchmark`` task (labels are 0..k-1 here)."""
    return shared.Task(data.X_train[dtype], data.y_train, data.X_test[dtype], data.y_test,
                       int(data.classes.size), workload.hidden, workload.batch_size,
                       alpha=ALPHA, learning_rate=LEARNING_RATE, beta_1=BETA_1,
                       beta_2=BETA_2, epsilon=EPSILON, seed=SEED)


class SharedEpoch(Contender):
    """A ``bpcore.benchmark.contenders`` epoch contender (sklearn, torch, jax)."""

    def __init__(self, workload, data, dtype, library):
        super().__init__(workload, data, dtype)
        self.library = library
        self.inner = shared.CONTENDERS[library](_task(workload, data, dtype))
        self.notes = self.inner.notes

    def run(self, i):
        self.inner.run(i)

    def accuracy(self):
        return self.inner.score()

    def extra(self):
        return self.inner.extra()


def epoch_contenders(workload, data, libs, dtypes):
    """Builders ``(library, dtype, build)`` for one workload, in alternation order.

    Building is deferred so that the caller can record a contender whose
    construction fails instead of losing the whole workload.
    """
    specs = []
    for dtype in dtypes:
        if libs.bpcore_engine:
            specs.append(("bpcore", dtype, lambda d=dtype: BpcoreEpoch(workload, data, d, libs)))
        others = ["sklearn"] if shared is not None else []
        if shared is not None and libs.torch is not None:
            others.append("torch")
        if libs.jax is not None:
            others.append("jax")
        for lib in others:
            specs.append((lib, dtype, lambda d=dtype, lib=lib: SharedEpoch(workload, data, d,
                                                                           lib)))
        if libs.bpcore_engine and libs.floor_epoch is not None:
            specs.append(("floor", dtype, lambda d=dtype: FloorEpoch(workload, data, d, libs)))
    return specs


# --------------------------------------------------------------------------
# L-BFGS: seconds per full fit of a fixed number of iterations
# --------------------------------------------------------------------------

class LbfgsFit(Contender):
    def __init__(self, workload, data, dtype, estimator_class, library, max_iter):
        super().__init__(workload, data, dtype)
        self.library = library
        self.estimator_class = estimator_class
        self.max_iter = max_iter
        self.clf = None

    def run(self, i):
        clf = self.estimator_class(
            hidden_layer_sizes=self.workload.hidden, activation="relu", solver="lbfgs",
            alpha=ALPHA, max_iter=self.max_iter, tol=0.0, random_state=SEED,
        )
        with quiet():
            clf.fit(self.data.X_train[self.dtype], self.data.y_train)
        self.clf = clf

    def accuracy(self):
        return self._score_labels(self.clf.predict(self.data.X_test[self.dtype]))

    def extra(self):
        return {"n_iter": int(self.clf.n_iter_), "loss": float(self.clf.loss_)}


def lbfgs_contenders(workload, data, libs, dtypes, max_iter):
    specs = []
    for dtype in dtypes:
        if libs.bpcore_estimator:
            specs.append(("bpcore", dtype, lambda d=dtype: LbfgsFit(
                workload, data, d, libs.bpcore.MLPClassifier, "bpcore", max_iter)))
        specs.append(("sklearn", dtype, lambda d=dtype: LbfgsFit(
            workload, data, d, SkMLPClassifier, "sklearn", max_iter)))
    return specs


# --------------------------------------------------------------------------
# Predict: one call on all rows; reported as rows per second
# --------------------------------------------------------------------------

class Predict(Contender):
    """Train a W3-shaped model for ``train_epochs`` epochs, then time predict.

    Each timed call predicts every row of the workload (train and test
    stacked) in one call, so a call is long enough to time; accuracy is taken
    on the held-out rows only.
    """

    def __init__(self, workload, data, dtype, library, libs, train_epochs):
        super().__init__(workload, data, dtype)
        self.library = library
        X, y = data.X_train[dtype], data.y_train
        self.X_all = np.ascontiguousarray(np.concatenate([X, data.X_test[dtype]]))
        if library == "bpcore" and libs.bpcore_estimator:
            clf = libs.bpcore.MLPClassifier(
                hidden_layer_sizes=workload.hidden, batch_size=workload.batch_size,
                alpha=ALPHA, max_iter=train_epochs, tol=0.0, random_state=SEED,
                n_iter_no_change=NEVER)
            with quiet():
                clf.fit(X, y)
            self._predict = clf.predict
            self.notes.append("bpcore.MLPClassifier.predict")
        elif library == "bpcore":
            trainer = BpcoreEpoch(workload, data, dtype, libs)
            for i in range(train_epochs):
                trainer.run(i)
            net, classes = trainer.net, data.classes
            self._predict = lambda Z: classes[np.argmax(net.forward(Z), axis=1)]
            self.notes.append("Network.forward + argmax (no MLPClassifier yet)")
        elif library == "sklearn":
            trainer = SharedEpoch(workload, data, dtype, "sklearn")
            for i in range(train_epochs):
                trainer.run(i)
            self._predict = trainer.inner.clf.predict
        elif library == "torch":
            trainer = SharedEpoch(workload, data, dtype, "torch")
            for i in range(train_epochs):
                trainer.run(i)
            torch, model, classes = libs.torch, trainer.inner.model, data.classes

            def predict(Z):
                with torch.inference_mode():
                    return classes[model(torch.from_numpy(Z)).argmax(1).numpy()]
            self._predict = predict
        else:
            raise ValueError(f"unknown library {library!r}")

    def run(self, i):
        self.labels = self._predict(self.X_all)

    def accuracy(self):
        return self._score_labels(self._predict(self.data.X_test[self.dtype]))

    def extra(self):
        return {"rows": int(self.X_all.shape[0])}


def predict_contenders(workload, data, libs, dtypes, train_epochs):
    libraries = []
    if libs.bpcore_engine or libs.bpcore_estimator:
        libraries.append("bpcore")
    libraries.append("sklearn")
    if libs.torch is not None:
        libraries.append("torch")
    return [(lib, dtype, lambda d=dtype, lib=lib: Predict(workload, data, d, lib, libs,
                                                         train_epochs))
            for dtype in dtypes for lib in libraries]


# --------------------------------------------------------------------------
# Model builders shared by the contenders
# --------------------------------------------------------------------------

def _bpcore_network(bp, workload, dtype):
    return bp.Network(workload.layer_units(), activation="relu", output="softmax",
                      loss="log_loss", dtype=dtype, random_state=SEED)


def _bpcore_adam(bp):
    return bp.Adam(learning_rate=LEARNING_RATE, beta_1=BETA_1, beta_2=BETA_2,
                   epsilon=EPSILON)
