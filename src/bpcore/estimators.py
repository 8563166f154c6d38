"""Drop-in replacements for scikit-learn's MLPClassifier and MLPRegressor.

Same constructor, validation and error messages, fitted attributes, warnings
and random draws as the installed scikit-learn (1.6 to 1.9; what differs
between releases is in ``_sklearn_compat``), so that for the same data,
parameters and ``random_state`` the results agree up to floating-point rounding; the
training itself runs in bpcore's kernels.

This module is the thin layer of that contract: input validation, labels and
bookkeeping (loss curve, early stopping, learning-rate schedules) live here
in Python; each epoch is ONE engine call (``EpochRunner.run``) on a workspace
allocated once per ``fit``; ``lbfgs`` drives the engine's full-batch loss and
gradient (``bpcore._lbfgs``); inference is ``Network.forward``.

``coefs_`` and ``intercepts_`` are lists of views into the network's flat
parameter buffer. Arrays assigned to them by the user (e.g. custom initial
weights before a ``warm_start`` fit) are copied into the buffer at the next
``fit``, ``partial_fit`` or prediction.
"""
from __future__ import annotations

import contextlib
import copy
import logging
import numbers
import operator
import threading
import time
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal, cast

import numpy as np
from numpy.typing import ArrayLike, DTypeLike, NDArray
import scipy.sparse as sp
from sklearn import get_config
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin, is_classifier
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import accuracy_score, r2_score
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier as _SkMLPClassifier
from sklearn.neural_network import MLPRegressor as _SkMLPRegressor
from sklearn.preprocessing import LabelBinarizer
from sklearn.utils import check_random_state, column_or_1d
from sklearn.utils.multiclass import type_of_target, unique_labels
from sklearn.utils.validation import check_is_fitted

from ._engine import DivergenceError, EpochRunner
from ._typing import MatrixLike, RandomStateLike, Self
from ._sklearn_compat import (  # every version-sensitive scikit-learn name
    CallbackSupportMixin,
    MLPCLASSIFIER_PARAMETER_CONSTRAINTS,
    MLPREGRESSOR_PARAMETER_CONSTRAINTS,
    _check_optimize_result,
    _check_partial_fit_first_call,
    _check_sample_weight,
    _fit_context,
    _get_additional_lbfgs_options_dict,
    available_if,
    callbacks_available,
    classifier_partial_fit_signature,
    regressor_init_signature,
    validate_data,
)
from ._kernels import CSRInput, InferenceHead
from ._lbfgs import minimize_lbfgs
from ._validation import csr_input
from .network import Network
from .callbacks import Callback, CallbackList, check_callbacks, logger
from .optimizers import OPTIMIZERS
from .schedules import SKLEARN_RATES, OneCycleLR, SklearnSchedule, named_schedule
from .training import run_epochs

if TYPE_CHECKING:  # pragma: no cover - typing only
    from .callbacks import History
    from .optimizers import Optimizer
    from .schedules import Schedule

    #: ``(X_val, y_val, sw_val)``, what scikit-learn's early stopping scores.
    _Holdout = tuple[Any, Any, Any]

_STOCHASTIC_SOLVERS = ("sgd", "adam")

# What the short inference path computes after the network (see
# ``_BaseMLP._short_path``): the output itself, a binary classifier's
# [1 - p, p], the argmax, or p > 0.5.
_HEAD_OUTPUT = int(InferenceHead.HEAD_OUTPUT)
_HEAD_BINARY_PROBA = int(InferenceHead.HEAD_BINARY_PROBA)
_HEAD_ARGMAX = int(InferenceHead.HEAD_ARGMAX)
_HEAD_THRESHOLD = int(InferenceHead.HEAD_THRESHOLD)

_NONFINITE_WEIGHTS = (
    "Solver produced non-finite parameter weights. The input data may"
    " contain large values and need to be preprocessed."
)


def _are_views(arrays: object, views: Sequence[NDArray[Any]]) -> bool:
    """True if ``arrays`` is a list holding exactly the arrays ``views``."""
    return (type(arrays) is list and len(arrays) == len(views)
            and all(map(operator.is_, arrays, views)))


def _as_engine_input(X: Any, dtype: DTypeLike) -> Any:  # ndarray or CSRInput (no stub)
    """X as the engine takes it: a C-contiguous array of ``dtype``, or sparse
    X as a CSR ``CSRInput`` whose rows the kernels multiply directly (never
    densified). The one place where the estimators' input meets the engine;
    X has already passed scikit-learn's validation.
    """
    if isinstance(X, CSRInput):
        return X
    if sp.issparse(X):
        return csr_input(X, dtype)
    return np.ascontiguousarray(X, dtype=dtype)


def _say(verbose: bool | int, level: int, msg: str, *args: object) -> None:
    """A message of the fit, ``msg % args``: printed with ``verbose``
    (scikit-learn's output, to the letter) and logged to the ``bpcore``
    logger either way (per-epoch lines at DEBUG, decisions at INFO);
    formatted only when someone reads it."""
    if verbose:
        print(msg % args)
    logger.log(level, msg, *args)


def _warn(msg: str, category: type[Warning] = UserWarning) -> None:
    """scikit-learn's warning, and the same words on the ``bpcore`` logger."""
    warnings.warn(msg, category)
    logger.warning(msg)


def _store_parameters(est: object, arguments: Mapping[str, object], **fixed: object) -> None:
    """scikit-learn's ``__init__``: store every argument as given, under its
    own name. ``arguments`` is the ``__init__``'s ``locals()`` (no validation
    here: it happens in ``fit``); ``fixed`` are attributes a class sets
    without taking them as parameters (the classifiers' ``loss``)."""
    for name, value in {**arguments, **fixed}.items():
        if name not in ("self", "__class__"):
            setattr(est, name, value)


def _class_doc(summary: str, *, parameters: str, attributes: str, notes: str,
               examples: str) -> str:
    """An estimator's docstring from its summary and the bodies of its
    numpydoc sections (indented by four spaces, as in the class body)."""
    sections = {"Parameters": parameters, "Attributes": attributes, "Notes": notes,
                "Examples": examples}
    doc = summary.rstrip() + "\n"
    for title, body in sections.items():
        doc += f"\n    {title}\n    {'-' * len(title)}\n{body.strip(chr(10))}\n"
    return doc + "    "


class _SklearnRules(Callback):
    """scikit-learn's per-epoch bookkeeping and stopping, as a callback of the
    one training loop: the loss curve, ``n_iter_``/``t_``, verbose output,
    the validation score and best weights of early stopping, the
    ``tol``/``n_iter_no_change`` rule (with ``adaptive``'s rate cut through
    the schedule), ``invscaling``'s update and the ConvergenceWarning.
    """

    def __init__(self, est: _BaseMLP, n_samples: int, validation: _Holdout | None,
                 incremental: bool) -> None:
        self.est = est
        self.n_samples = n_samples
        self.validation = validation        # (X_val, y_val, sw_val) or None
        self.incremental = incremental

    def on_epoch_end(self, epoch: int, logs: Mapping[str, float]) -> bool:
        est = self.est
        est.n_iter_ += 1
        # Current at every epoch's end, so that a model saved mid-fit
        # (ModelCheckpoint) is a complete fitted state; the fit's end sets
        # the same value (first epoch + n_iter_).
        est._epochs_trained = getattr(est, "_epochs_trained", 0) + 1
        est.loss_ = logs["loss"]
        est.t_ += self.n_samples
        est.loss_curve_.append(est.loss_)
        _say(est.verbose, logging.DEBUG, "Iteration %d, loss = %.8f", est.n_iter_, est.loss_)
        early_stopping = self.validation is not None
        X_val, y_val, sw_val = self.validation or (None, None, None)
        est._update_no_improvement_count(early_stopping, X_val, y_val, sw_val,
                                         diverged=np.isnan(logs["loss"]),
                                         score=logs.get("val_score"))
        if early_stopping and "val_score" not in logs:
            # For the user's callbacks, which run after this one on the same
            # logs: run_epochs passes a dict (Callback declares a Mapping).
            cast("dict[str, float]", logs)["val_score"] = est.validation_scores_[-1]
        schedule = est._schedule
        if isinstance(schedule, SklearnSchedule):
            schedule.iteration_ends(est.t_)
            # The optimizer holds the rate the next epoch will use, as scikit-learn's.
            est._optimizer.learning_rate = schedule.lr
        if est._no_improvement_count > est.n_iter_no_change:
            msg = ("Validation score did not improve more than tol=%f for %d consecutive "
                   "epochs." if early_stopping else "Training loss did not improve more "
                   "than tol=%f for %d consecutive epochs.") % (est.tol, est.n_iter_no_change)
            # 'adaptive' lowers the rate instead while it can; any other
            # schedule (a torch-style one sets the rates itself) stops.
            lowered = schedule.on_stall() if isinstance(schedule, SklearnSchedule) else None
            if lowered is None or not isinstance(schedule, SklearnSchedule):
                too_small = isinstance(schedule, SklearnSchedule) and schedule.kind == "adaptive"
                _say(est.verbose, logging.INFO, "%s%s Stopping.", msg,
                     " Learning rate too small." if too_small else "")
                return True
            _say(est.verbose, logging.INFO, "%s%s", msg, lowered)
            est._optimizer.learning_rate = schedule.lr
            est._no_improvement_count = 0
        if self.incremental:
            return True
        if est.n_iter_ == est.max_iter:
            _warn("Stochastic Optimizer: Maximum iterations (%d) reached and the "
                  "optimization hasn't converged yet." % est.max_iter, ConvergenceWarning)
        return False


class _SklearnCallbackBridge(Callback):
    """scikit-learn's callback protocol (``sklearn.callback``) on the epochs of
    the one training loop: one subtask per epoch under the fit's task.

    As scikit-learn's ``_LbfgsCallbackBridge`` does for L-BFGS iterations,
    each epoch's subtask begins before the epoch (``on_fit_task_begin``) and
    ends after it (``on_fit_task_end``, with a fitted copy of the estimator
    built only if a callback asks for one); a callback returning True stops
    training. It wraps the estimator's own per-epoch callbacks (scikit-learn's
    stopping rules) so that it knows whether another epoch follows.
    """

    # ctx and the tasks are scikit-learn's CallbackContext (it ships no types).
    def __init__(self, est: _BaseMLP, ctx: Any, epochs: int, inner: Iterable[Callback],
                 X: Any, y: Any, metadata: dict[str, Any] | None) -> None:
        self.est, self.ctx, self.epochs, self.inner = est, ctx, epochs, list(inner)
        self.X, self.y, self.metadata = X, y, metadata
        self.task: Any = None

    def begin(self) -> None:
        self.task = self.ctx.subcontext(task_name="epoch")
        self.task.call_on_fit_task_begin(
            estimator=self.est, X=self.X, y=self.y, metadata=self.metadata,
            reconstruction_attributes=self.est._reconstruction_attributes)

    def on_epoch_end(self, epoch: int, logs: Mapping[str, float]) -> bool:
        stop = False
        for cb in self.inner:
            stop = bool(cb.on_epoch_end(epoch, logs)) or stop
        task, self.task = self.task, None
        stop = task.call_on_fit_task_end(
            estimator=self.est, X=self.X, y=self.y, metadata=self.metadata,
            reconstruction_attributes=self.est._reconstruction_attributes) or stop
        if not stop and epoch + 1 < self.epochs:
            self.begin()
        return bool(stop)

    def close(self) -> None:
        """End a subtask left open by an interrupted epoch, as an empty task."""
        if self.task is not None:
            self.task.call_on_fit_task_end(estimator=self.est)
            self.task = None


class _LbfgsCallbackBridge:
    """scipy's per-iteration ``callback(xk)`` as scikit-learn's callback
    protocol, the way ``sklearn.linear_model.LogisticRegression`` forwards it:
    one subtask per L-BFGS iteration (the last one empty); a callback returning
    True stops the minimization (``StopIteration``, scipy >= 1.11).
    """

    def __init__(self, est: _BaseMLP, ctx: Any, X: Any, y: Any,
                 metadata: dict[str, Any] | None) -> None:
        self.est, self.ctx, self.X, self.y, self.metadata = est, ctx, X, y, metadata
        self.task = self._begin(None)

    def _attributes(self, xk: NDArray[Any] | None) -> Callable[[], dict[str, Any]]:
        return lambda: self.est._reconstruction_attributes(xk)

    def _begin(self, xk: NDArray[Any] | None) -> Any:
        task = self.ctx.subcontext(task_name="lbfgs-iter")
        task.call_on_fit_task_begin(estimator=self.est, X=self.X, y=self.y,
                                    metadata=self.metadata,
                                    reconstruction_attributes=self._attributes(xk))
        return task

    def __call__(self, xk: NDArray[Any]) -> None:
        stop = self.task.call_on_fit_task_end(
            estimator=self.est, X=self.X, y=self.y, metadata=self.metadata,
            reconstruction_attributes=self._attributes(xk))
        self.task = self._begin(xk)
        if stop:
            raise StopIteration

    def close(self) -> None:
        self.task.call_on_fit_task_end(estimator=self.est)


_fits_guard = threading.Lock()
_fits_running: dict[int, int] = {}  # id(estimator) -> the thread fitting it


@contextlib.contextmanager
def _one_fit_at_a_time(est: object) -> Iterator[None]:
    """Refuse a second thread's fit/partial_fit of ``est`` while one runs.

    Refused on entry, before it changes anything: a call refused later (by
    the network's training lock) had already replaced the running fit's
    state (its RandomState, n_outputs_, n_iter_, its network on a fresh
    fit; before the fit plan, the toolbox's scorer, whose cleanup then
    failed the running fit with an AttributeError). Re-entrant for the
    fitting thread.
    """
    me = threading.get_ident()
    with _fits_guard:
        owner = _fits_running.get(id(est))
        if owner is not None and owner != me:
            raise RuntimeError(
                f"this {type(est).__name__} is already being fitted by another thread; fit "
                "one estimator from one thread at a time (or fit a sklearn.base.clone of it)")
        _fits_running[id(est)] = me
    try:
        yield
    finally:
        if owner is None:
            with _fits_guard:
                del _fits_running[id(est)]


class _FitPlan:
    """One fit, decided once from the estimator's parameters.

    ``_BaseMLP._fit`` makes one per ``fit``/``partial_fit`` call and reads it
    top to bottom:

    - what to build: ``hidden_layer_sizes`` and ``network_options`` (the
      ``Network`` arguments beyond scikit-learn's);
    - the data: ``data`` validates X, y and the weights and prepares the
      network's targets ``Y`` — the one place the target is prepared, as
      ``Network.forward`` is the one place predictions come from;
    - how to train: ``lbfgs``, ``optimizer`` (the ``OPTIMIZERS`` registry),
      ``schedule``/``continued_schedule``, ``batch_size`` and ``penalties``
      (the engine's rules beyond ``alpha``);
    - when to stop: ``split`` (the validation data), ``validation`` (what the
      loop logs on it) and ``restore_best``; scikit-learn's ``tol`` /
      ``n_iter_no_change`` rule itself is ``_SklearnRules``, and the user's
      ``callbacks`` (bpcore's) run after it.

    These are scikit-learn's rules, exactly. The toolbox's plan
    (``bpcore.toolbox._ToolboxPlan``) decides more from more parameters;
    the fit stays this one.
    """

    #: Solvers that train by epochs; ``partial_fit`` exists for them only.
    STOCHASTIC_SOLVERS: tuple[str, ...] = _STOCHASTIC_SOLVERS

    def __init__(self, est: _BaseMLP, X: Any, incremental: bool,
                 validation_data: Sequence[Any] | None = None,
                 callbacks: Iterable[Callback] | None = None) -> None:
        self.est = est
        self.incremental = incremental
        self.validation_data = validation_data
        # bpcore's callbacks: those given to set_callbacks, then fit's own.
        self.callbacks = CallbackList(
            [cb for cb in getattr(est, "_skl_callbacks", ()) if isinstance(cb, Callback)]
            + check_callbacks(callbacks))
        for cb in self.callbacks.callbacks:
            cb.model = est
        hidden = est.hidden_layer_sizes
        hidden = list(hidden) if hasattr(hidden, "__iter__") else [hidden]
        # scikit-learn's constraint takes any array-like; what is inside it
        # is checked here (scikit-learn fails inside NumPy on a nested array,
        # a float or a string, with a TypeError that does not name the
        # parameter: the same type, a message that does).
        if not all(isinstance(n, (numbers.Integral, np.integer)) for n in hidden):
            raise TypeError(f"hidden_layer_sizes must be integers, got {hidden}")
        if np.any(np.array(hidden) <= 0):
            raise ValueError("hidden_layer_sizes must be > 0, got %s." % hidden)
        self.hidden_layer_sizes: list[int] = hidden
        self.first_pass: bool = not hasattr(est, "coefs_") or (
            not est.warm_start and not incremental)
        self.lbfgs: bool = est.solver == "lbfgs"
        self.network_options: dict[str, Any] = {}   # Network's keyword arguments
        # EpochRunner's l1, max_norm, clip_norm, clip_value (float or None).
        self.penalties: dict[str, Any] = {}
        self.restore_best: bool = True
        self.history: History | None = None  # the History a fit appends to (None: a throwaway)
        self.dask = False           # X is a dask array (bpcore.dask's L-BFGS)

    def check_predictions(self, net: Network, X: Any) -> None:
        """After training: nothing more for scikit-learn's networks (the
        toolbox's plan checks what dropout and batch norm can hide)."""

    # -- the data -------------------------------------------------------------

    # y and sample_weight: the user's, anything until validated here.
    def data(self, X: MatrixLike, y: Any, sample_weight: Any) -> tuple[Any, Any, Any]:
        """``(X, Y, sample_weight)`` as the engine trains on them; ``Y`` is 2-D."""
        est = self.est
        X, y = est._validate_input(X, y, self.incremental, reset=self.first_pass)
        if sample_weight is not None:
            sample_weight = _check_sample_weight(sample_weight, X)
            if np.any(sample_weight < 0):
                # A minibatch whose weights sum to <= 0 has no weighted mean
                # (scikit-learn divides by it); the core API refuses them too.
                raise ValueError(
                    "Negative values in sample_weight are not supported: a minibatch "
                    "whose weights sum to zero or less has no weighted mean loss; use "
                    "non-negative weights.")
        return X, self.targets(y), sample_weight

    def targets(self, y: NDArray[Any]) -> NDArray[Any]:
        """The network's targets for the estimator's validated ``y``."""
        return y.reshape((-1, 1)) if y.ndim == 1 else y

    # Any: LabelBinarizer's labels (scikit-learn ships no types), or an array.
    def estimator_targets(self, Y: NDArray[Any]) -> Any:
        """The estimator's ``y`` for network targets ``Y`` (what ``score``
        compares predictions with): the labels of a classifier; a regressor's
        targets in y's units (mapped back when it scales its target)."""
        est = self.est
        return (est._label_binarizer.inverse_transform(Y) if is_classifier(est)
                else est._targets_from_outputs(Y))

    def split(self, X: Any, Y: Any, sample_weight: Any, random_state: np.random.RandomState,
              ) -> tuple[tuple[Any, Any, Any], tuple[Any, Any, Any, Any]]:
        """``(X, Y, sample_weight)`` to train on and ``(X_val, y_val, Y_val,
        sw_val)`` to validate on (Nones without validation): the given
        ``validation_data``, else scikit-learn's hold-out with early stopping.
        ``Y_val`` are the network's targets, ``y_val`` the estimator's."""
        est = self.est
        if self.validation_data is not None:
            return (X, Y, sample_weight), self.check_validation_data(self.validation_data)
        if not est.early_stopping:
            return (X, Y, sample_weight), (None,) * 4
        # Stratify like scikit-learn: single-output classification only
        # (i.e. binary targets), never multilabel.
        stratify = Y if (is_classifier(est) and est.n_outputs_ == 1) else None
        arrays = (X, Y) if sample_weight is None else (X, Y, sample_weight)
        parts = train_test_split(*arrays, random_state=random_state,
                                 test_size=est.validation_fraction, stratify=stratify)
        X_train, X_val, Y_train, Y_val = parts[:4]
        sw_train, sw_val = parts[4:] if sample_weight is not None else (None, None)
        if X_val.shape[0] < 2:
            raise ValueError(
                "The validation set is too small. Increase 'validation_fraction' "
                "or the size of your dataset."
            )
        return (X_train, Y_train, sw_train), (X_val, self.estimator_targets(Y_val), Y_val,
                                              sw_val)

    def check_validation_data(self, validation_data: Sequence[Any],
                              ) -> tuple[Any, Any, Any, Any]:
        """``(X_val, y_val, Y_val, sw_val)`` from a ``validation_data`` argument."""
        raise TypeError(f"{type(self.est).__name__} takes no validation_data")

    # -- how to train ---------------------------------------------------------

    def optimizer(self) -> Optimizer:
        """A fresh optimizer for the solver, from the estimator's parameters."""
        est = self.est
        # scikit-learn's Nesterov step needs momentum: at 0 it is plain SGD.
        derived = {"nesterov": est.nesterovs_momentum and est.momentum > 0}
        kwargs = {name: derived[name] if name in derived else getattr(est, name)
                  for name in _SOLVER_ARGUMENTS[est.solver]}
        return OPTIMIZERS[est.solver](est.learning_rate_init, **kwargs)

    def schedule(self, optimizer: Optimizer, n_batches: int) -> Schedule:
        """The schedule of a fresh optimizer, bound to its rate and ``n_batches``."""
        est = self.est
        rate = est.learning_rate
        schedule: Schedule
        if isinstance(rate, str) and rate in SKLEARN_RATES:
            # As in scikit-learn, 'adam' ignores learning_rate.
            kind = cast("Literal['constant', 'invscaling', 'adaptive']", rate)  # checked
            schedule = SklearnSchedule("constant" if est.solver == "adam" else kind,
                                       est.learning_rate_init, est.power_t)
        elif isinstance(rate, str):
            schedule = named_schedule(
                rate, max_iter=est.max_iter, learning_rate_init=est.learning_rate_init,
                n_iter_no_change=est.n_iter_no_change, steps_per_epoch=n_batches)
        else:
            schedule = copy.deepcopy(rate)   # the parameter itself stays unbound
        schedule.bind(optimizer.learning_rate, n_batches)
        return schedule

    def continued_schedule(self, schedule: Schedule | None, epochs_done: int,
                           n_batches: int) -> Schedule | None:
        """``partial_fit`` on a new chunk: the schedule, with rates for its
        ``n_batches`` (scikit-learn's, and the epoch-counting schedules, are
        per epoch); None past the end of a one-cycle schedule, whose final
        rate the optimizer then keeps (torch would raise)."""
        if isinstance(schedule, OneCycleLR) and (
                (epochs_done + 1) * n_batches > schedule.total_steps):
            return None
        if schedule is not None:
            schedule.steps_per_epoch = n_batches
        return schedule

    def batch_size(self, n_samples: int, net: Network) -> int:
        """The minibatch size for ``n_samples`` training samples."""
        est = self.est
        if est.solver == "rprop":
            return n_samples        # RPROP uses the sign of the full-batch gradient
        if est.batch_size == "auto":
            batch_size = min(200, n_samples)
        else:
            if est.batch_size > n_samples:
                warnings.warn(
                    "Got `batch_size` less than 1 or larger than "
                    "sample size. It is going to be clipped"
                )
            batch_size = int(np.clip(est.batch_size, 1, n_samples))
        if any(net._batch_norm):
            if n_samples < 2:
                raise ValueError(
                    "batch_norm needs at least 2 samples per batch to compute a batch "
                    f"variance, but the training data has n_samples = {n_samples}; "
                    "give more samples or set batch_norm=False")
            # Grow the batch until no batch is left with one sample (e.g. 401
            # samples in batches of 200 become 201 + 200).
            while n_samples - batch_size * (-(-n_samples // batch_size) - 1) < 2:
                batch_size += 1
        return batch_size

    # -- when to stop ---------------------------------------------------------

    def validation(self, X_val: Any, Y_val: Any, y_val: Any, sw_val: Any,
                   ) -> Callable[[], dict[str, float]] | None:
        """A per-epoch validation callable for the training loop; None:
        scikit-learn's rule scores the hold-out itself."""
        return None


#: The estimator parameters each solver's optimizer takes (``OPTIMIZERS``
#: names the class); ``nesterov`` is derived, see ``_FitPlan.optimizer``.
_SOLVER_ARGUMENTS = {
    "sgd": ("momentum", "nesterov"),
    "adam": ("beta_1", "beta_2", "epsilon"),
    "adamw": ("beta_1", "beta_2", "epsilon", "weight_decay"),
    "nadam": ("beta_1", "beta_2", "epsilon"),
    "rmsprop": ("epsilon",),
    "adagrad": (),
    "rprop": (),
}


# scikit-learn ships no types: to mypy its base classes are Any.
class _BaseMLP(CallbackSupportMixin, BaseEstimator):  # type: ignore[misc]
    """Shared fit/predict machinery of MLPClassifier and MLPRegressor, and of
    the toolbox estimators (``bpcore.toolbox``), which differ only in the
    plan of their fit (``_Plan``, a ``_FitPlan`` class).
    """

    #: The plan a fit is read from; the toolbox estimators use their own.
    _Plan: type[_FitPlan] = _FitPlan
    #: The network of a fitted estimator (or of one given coefs_ by hand).
    _net: Network

    # scikit-learn's own constraint table: the same checks and, to the
    # letter, the same messages. (A StrOptions message lists its options in
    # the iteration order of its set, which a copy of the literal would not
    # reproduce reliably.)
    _parameter_constraints: dict[str, list[Any]] = dict(MLPCLASSIFIER_PARAMETER_CONSTRAINTS)

    def __init__(self, hidden_layer_sizes: ArrayLike, activation: str, solver: str,
                 alpha: float, batch_size: int | str, learning_rate: str,
                 learning_rate_init: float, power_t: float, max_iter: int, loss: str,
                 shuffle: bool, random_state: RandomStateLike, tol: float, verbose: bool | int,
                 warm_start: bool, momentum: float, nesterovs_momentum: bool,
                 early_stopping: bool, validation_fraction: float, beta_1: float, beta_2: float,
                 epsilon: float, n_iter_no_change: int, max_fun: int) -> None:
        # scikit-learn's BaseMultilayerPerceptron signature. The concrete
        # classes store their own parameters; this declares ``loss`` as a
        # constructor argument of the family, which the classifiers set to
        # "log_loss" without taking it (MLPClassifier().loss, as scikit-learn's),
        # and which scikit-learn's check_no_attributes_set_in_init looks for.
        _store_parameters(self, locals())

    # -- the network and its public views ---------------------------------

    def _out_activation_and_loss(self) -> tuple[str, str]:
        """(output activation, loss) of the network for the fitted target type."""
        if not is_classifier(self):
            return ("exp", "poisson") if self.loss == "poisson" else ("identity", self.loss)
        if self._label_binarizer.y_type_ == "multiclass":
            return "softmax", "log_loss"
        return "logistic", "log_loss"

    def _initialize(self, y: NDArray[Any], layer_units: list[int], dtype: np.dtype[Any],
                    network_options: Mapping[str, Any]) -> None:
        """Fresh network and bookkeeping for a first fit (scikit-learn's draw order)."""
        self.n_iter_: int = 0
        self.t_: int = 0
        self.n_outputs_ = y.shape[1]
        self.n_layers_ = len(layer_units)
        self.out_activation_, loss = self._out_activation_and_loss()

        # Network draws W then b for each layer from self._random_state, with
        # the Glorot factor of the estimator's hidden activation, exactly as
        # scikit-learn's _init_coef does.
        net = Network(layer_units, activation=self.activation, output=self.out_activation_,
                      loss=loss, dtype=dtype, random_state=self._random_state,
                      **network_options)
        # scikit-learn reports multi-output squared error as a mean over
        # outputs but differentiates the sum; reproduce its gradient.
        net._use_sklearn_gradient()
        self._net = net
        self.coefs_ = list(net.coefs)
        self.intercepts_ = list(net.intercepts)
        self._best_params = net.params.copy()
        self._best_buffers = net.buffers.copy()
        self._epochs_trained = 0

        if self.solver != "lbfgs":
            self.loss_curve_: list[float] = []
            self._no_improvement_count = 0
            # With early stopping a list and a float, else None (best_loss_:
            # the reverse), as scikit-learn's; read in that mode only.
            self.validation_scores_: Any
            self.best_validation_score_: Any
            self.best_loss_: Any
            if self.early_stopping:
                self.validation_scores_ = []
                self.best_validation_score_ = -np.inf
                self.best_loss_ = None
            else:
                self.best_loss_ = np.inf
                self.validation_scores_ = None
                self.best_validation_score_ = None

    def _network_from_attributes(self) -> Network:
        """A network shaped like coefs_/intercepts_ set by hand on an unfitted estimator."""
        coefs = [np.asarray(c) for c in self.coefs_]
        units = [c.shape[0] for c in coefs] + [coefs[-1].shape[1]]
        dtype: DTypeLike = np.result_type(*coefs)
        if dtype not in (np.float32, np.float64):
            dtype = np.float64
        if not hasattr(self, "out_activation_"):
            self.out_activation_, _ = self._out_activation_and_loss()
        loss = {"softmax": "log_loss", "logistic": "log_loss", "exp": "poisson"}.get(
            self.out_activation_, "squared_error")
        # The draws of this throwaway initialization are overwritten at once.
        net = Network(units, activation=self.activation, output=self.out_activation_,
                      loss=loss, dtype=dtype, random_state=0)
        net._use_sklearn_gradient()
        self._net = net
        self._best_params = net.params.copy()
        self._best_buffers = net.buffers.copy()
        return net

    def _sync_params(self) -> Network:
        """Copy arrays the user assigned to coefs_/intercepts_ into the flat
        buffer, and give the network the current ``activation``.

        A no-op (identity checks only) while the attributes are the network's
        own views and ``activation`` is the network's.
        """
        net = self._net if hasattr(self, "_net") else self._network_from_attributes()
        for name, views in (("coefs_", net.coefs), ("intercepts_", net.intercepts)):
            current = getattr(self, name)
            if len(current) == len(views) and all(a is b for a, b in zip(current, views)):
                continue
            shapes = [np.shape(a) for a in current]
            expected = [v.shape for v in views]
            if shapes != expected:
                raise ValueError(
                    f"{name} has arrays of shapes {shapes}, but the fitted network "
                    f"needs {expected}; assign arrays of the fitted shapes or refit "
                    "with warm_start=False"
                )
            for view, a in zip(views, current):
                view[...] = a
            setattr(self, name, list(views))
        if net.activation is not self.activation:
            # set_params(activation=...) after a fit: scikit-learn trains
            # (partial_fit, warm start) and exports with the new one too.
            net._set_activation(self.activation)
        return net

    def __getstate__(self) -> dict[str, Any]:
        state = dict(super().__getstate__())
        net = state.get("_net")
        # The views are rebuilt from the network's buffer on load; arrays the
        # user assigned instead are pickled as they are.
        if net is not None:
            for name, views in (("coefs_", net.coefs), ("intercepts_", net.intercepts)):
                current = state.get(name)
                if current is not None and len(current) == len(views) and all(
                        a is b for a, b in zip(current, views)):
                    del state[name]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        super().__setstate__(state)
        net = self.__dict__.get("_net")
        if net is not None:
            if not net.buffers.flags.writeable:
                # Loaded from a read-only memory map (joblib): inference writes
                # nothing, but the kernels take the running statistics as a
                # writable buffer, so keep a private copy.
                net.buffers = net.buffers.copy()
                net._make_views()
            if "coefs_" not in self.__dict__:
                self.coefs_ = list(net.coefs)
            if "intercepts_" not in self.__dict__:
                self.intercepts_ = list(net.intercepts)

    # -- scikit-learn's callback protocol -------------------------------------

    def _has_skl_callbacks(self) -> bool:
        """Whether scikit-learn's own callbacks are set (bpcore's run in the loop)."""
        return any(not isinstance(cb, Callback) for cb in getattr(self, "_skl_callbacks", ()))

    @available_if(callbacks_available)
    def set_callbacks(self: Self, *callbacks: Any) -> Self:
        """Set the callbacks of every later fit and partial_fit (scikit-learn
        >= 1.9, whose callback protocol this is; absent before, with the
        reason as the ``AttributeError``'s cause).

        Takes bpcore's callbacks (:mod:`bpcore.callbacks`: ``EarlyStopping``,
        ``ProgressBar``, ``CSVLogger``, ``ModelCheckpoint``, subclasses of
        ``Callback``), run by the training loop after every epoch, and
        scikit-learn's (``sklearn.callback``), which see one task per fit
        and one subtask per epoch (L-BFGS: per iteration); in any mix.
        ``sklearn.base.clone`` carries them; none replaces them all.

        Parameters
        ----------
        *callbacks : callback instances
            bpcore's and scikit-learn's callbacks, in any mix, as separate
            arguments (not a list).

        Returns
        -------
        self : estimator instance
        """
        if len(callbacks) == 1 and isinstance(callbacks[0], (list, tuple)):
            raise TypeError("set_callbacks takes callbacks as separate arguments: "
                            "est.set_callbacks(cb1, cb2), not a list")
        try:
            return cast("Self", super().set_callbacks(*callbacks))  # untyped scikit-learn
        except TypeError:
            got = ", ".join(repr(cb) for cb in callbacks
                            if isinstance(cb, type) or not isinstance(cb, Callback))
            raise TypeError(
                "set_callbacks takes callback instances: bpcore's (subclasses of "
                "bpcore.callbacks.Callback) or scikit-learn's (sklearn.callback); got "
                f"{got}") from None

    def _reconstruction_attributes(self, params: NDArray[Any] | None = None,
                                   ) -> dict[str, Any]:
        """Attributes of an estimator frozen at the current (or ``params``)
        weights, for callbacks that ask for a ``fitted_estimator``: its own
        copy of the network, so that it never writes into the live one."""
        net = copy.deepcopy(self._net)
        if params is not None:
            net.params[...] = params
        return {"_net": net, "coefs_": list(net.coefs), "intercepts_": list(net.intercepts)}

    # -- fitting ------------------------------------------------------------

    def _fit(self: Self, X: MatrixLike, y: ArrayLike, sample_weight: ArrayLike | None = None,
             incremental: bool = False, validation_data: Sequence[Any] | None = None,
             callbacks: Iterable[Callback] | None = None) -> Self:
        """The one fit: ``fit``, ``partial_fit`` and the toolbox's, every solver."""
        with _one_fit_at_a_time(self):
            return self._fit_unguarded(X, y, sample_weight, incremental, validation_data,
                                       callbacks)

    def _fit_unguarded(self: Self, X: MatrixLike, y: ArrayLike,
                       sample_weight: ArrayLike | None, incremental: bool,
                       validation_data: Sequence[Any] | None,
                       callbacks: Iterable[Callback] | None) -> Self:
        plan = self._Plan(self, X, incremental, validation_data, callbacks)
        y_given = y
        X, Y, sample_weight = plan.data(X, y, sample_weight)
        self.n_outputs_ = Y.shape[1]
        layer_units = [X.shape[1]] + plan.hidden_layer_sizes + [self.n_outputs_]
        dtype = np.dtype(np.float32 if X.dtype == np.float32 else np.float64)

        # A fresh (or the caller's) RandomState at every fit and partial_fit.
        self._random_state = check_random_state(self.random_state)
        if plan.first_pass:
            self._initialize(Y, layer_units, dtype, plan.network_options)
        net = self._sync_params()

        # scikit-learn's callbacks: one task for this fit, one subtask per
        # epoch (or L-BFGS iteration).
        ctx = self._init_callback_context(
            max_subtasks=(max(self.max_iter, 1) + 1 if plan.lbfgs
                          else 1 if incremental else self.max_iter))
        metadata = None if sample_weight is None else {"sample_weight": sample_weight}
        ctx.call_on_fit_task_begin(estimator=self, X=X, y=y_given, metadata=metadata)
        cb_data = (ctx, X, y_given, metadata)

        if plan.lbfgs:
            self._fit_lbfgs(plan, X, Y, sample_weight, cb_data)
        else:
            self._fit_stochastic(plan, X, Y, sample_weight, cb_data)

        if not np.isfinite(net.params).all():
            raise ValueError(_NONFINITE_WEIGHTS)
        plan.check_predictions(net, X)
        ctx.call_on_fit_task_end(estimator=self, X=X, y=y_given, metadata=metadata,
                                 reconstruction_attributes=self._reconstruction_attributes)
        return self

    def _fit_lbfgs(self, plan: _FitPlan, X: Any, Y: Any, sample_weight: Any,
                   cb_data: tuple[Any, Any, Any, Any]) -> None:
        """Full-batch L-BFGS-B on the flat parameters (on dask arrays: the
        blockwise objective of ``bpcore.dask``, on the workers)."""
        net = self._net
        options = {"maxfun": self.max_fun, "maxiter": self.max_iter, "gtol": self.tol}
        l1 = float(plan.penalties.get("l1", 0.0))
        plan.callbacks.on_train_begin(net, epochs=self.max_iter)
        try:
            result = self._minimize_lbfgs(plan, X, Y, sample_weight, cb_data, options, l1)
            self.n_iter_ = _check_optimize_result("lbfgs", result, self.max_iter)
            self.loss_ = result.fun
            if plan.history is not None or plan.callbacks.callbacks:
                self._lbfgs_logs(plan, result)
        finally:
            plan.callbacks.on_train_end(net)

    def _lbfgs_logs(self, plan: _FitPlan, result: Any) -> None:
        """L-BFGS's run as one epoch of logs, for ``history_`` and the callbacks."""
        logs = {"loss": float(result.fun), "lr": np.nan, "epoch_time": result.epoch_time}
        if plan.validation_data is not None:
            X_val, y_val, Y_val, sw_val = plan.check_validation_data(plan.validation_data)
            validate = plan.validation(X_val, Y_val, y_val, sw_val)
            assert validate is not None  # validation_data: every plan that takes it validates
            logs.update(validate())
        if plan.history is not None:
            plan.history.append(logs)
            self.history_ = plan.history
        plan.callbacks.on_epoch_end(0, logs)

    # result: scipy's OptimizeResult (SciPy ships no types).
    def _minimize_lbfgs(self, plan: _FitPlan, X: Any, Y: Any, sample_weight: Any,
                        cb_data: tuple[Any, Any, Any, Any], options: dict[str, Any],
                        l1: float) -> Any:
        net = self._net
        dtype = net.dtype
        t0 = time.perf_counter()
        if plan.dask:
            from . import dask as bpdask        # names the missing extra
            result = bpdask.minimize_lbfgs(net, X, Y, sample_weight, alpha=float(self.alpha),
                                           l1=l1, options=options)
            result.fun = float(result.fun)
        else:
            iprint = 1 if (self.verbose is True or self.verbose >= 1) else -1
            options.update(_get_additional_lbfgs_options_dict("iprint", iprint))
            bridge = (_LbfgsCallbackBridge(self, *cb_data) if self._has_skl_callbacks()
                      else None)
            try:
                result = minimize_lbfgs(
                    net, _as_engine_input(X, dtype), np.ascontiguousarray(Y, dtype=dtype),
                    None if sample_weight is None else np.ascontiguousarray(sample_weight,
                                                                            dtype=dtype),
                    float(self.alpha), options=options, l1=l1, callback=bridge)
            finally:
                if bridge is not None:
                    bridge.close()
        result.epoch_time = time.perf_counter() - t0
        return result

    def _fit_stochastic(self, plan: _FitPlan, X: Any, Y: Any, sample_weight: Any,
                        cb_data: tuple[Any, Any, Any, Any]) -> None:
        """Epochs of minibatch training in the one loop (``run_epochs``), with
        scikit-learn's rules (``_SklearnRules``) as its callback."""
        net = self._net
        incremental = plan.incremental
        fresh = not incremental or not hasattr(self, "_optimizer")
        if fresh:
            self._optimizer = plan.optimizer()
        if self.early_stopping and incremental:
            raise ValueError("partial_fit does not support early_stopping=True")
        early_stopping = self.early_stopping
        (X_train, Y_train, sw_train), (X_val, y_val, Y_val, sw_val) = plan.split(
            X, Y, sample_weight, self._random_state)
        validate = None if X_val is None else plan.validation(X_val, Y_val, y_val, sw_val)
        if X_val is not None:
            X_val = _as_engine_input(X_val, net.dtype)

        n_samples = X_train.shape[0]
        batch_size = plan.batch_size(n_samples, net)
        # Dropout masks need a seed; drawn only when there is dropout, so the
        # shuffles of every other network stay scikit-learn's.
        seed = int(self._random_state.randint(0, 2**31 - 1)) if any(net._dropout) else 0
        runner = EpochRunner(
            net, self._optimizer, _as_engine_input(X_train, net.dtype),
            np.ascontiguousarray(Y_train, dtype=net.dtype),
            None if sw_train is None else np.ascontiguousarray(sw_train, dtype=net.dtype),
            batch_size, float(self.alpha), seed=seed, **plan.penalties)
        first_epoch = getattr(self, "_epochs_trained", 0)
        if fresh:
            self._schedule: Schedule | None = plan.schedule(self._optimizer, runner.n_batches)
            self._schedule_start = first_epoch  # before the epochs: a mid-fit save needs it
        else:
            self._schedule = plan.continued_schedule(
                self._schedule, first_epoch - self._schedule_start, runner.n_batches)
        rules = _SklearnRules(self, n_samples,
                              (X_val, y_val, sw_val) if early_stopping else None, incremental)
        callbacks: list[Callback] = [rules] + plan.callbacks.callbacks
        bridge = None
        epochs = 1 if incremental else self.max_iter
        plan.callbacks.on_train_begin(net, epochs=epochs, steps_per_epoch=runner.n_batches)
        if self._has_skl_callbacks():
            bridge = _SklearnCallbackBridge(self, cb_data[0], epochs, callbacks, *cb_data[1:])
            callbacks = [bridge]
            bridge.begin()
        self.n_iter_ = 0
        if plan.history is not None:
            self.history_ = plan.history
        try:
            self._run_epochs(plan, runner, validate, callbacks, bridge, fresh, first_epoch)
            if early_stopping and plan.restore_best:
                np.copyto(net.params, self._best_params)
                np.copyto(net.buffers, self._best_buffers)
        finally:
            # After scikit-learn's restore: the user's callbacks have the last word.
            plan.callbacks.on_train_end(net)

    def _run_epochs(self, plan: _FitPlan, runner: EpochRunner,
                    validate: Callable[[], dict[str, float]] | None,
                    callbacks: list[Callback], bridge: _SklearnCallbackBridge | None,
                    fresh: bool, first_epoch: int) -> None:
        """The one loop over the epochs, and what a fit keeps when it ends."""
        try:
            run_epochs(
                runner, epochs=self.max_iter, shuffle=self.shuffle,
                random_state=self._random_state, schedule=self._schedule,
                validate=validate, callbacks=callbacks, history=plan.history,
                first_epoch=first_epoch,
                schedule_first_epoch=0 if fresh else first_epoch - self._schedule_start,
                keep_going_after_divergence=self.early_stopping)
        except DivergenceError as exc:
            raise ValueError(_NONFINITE_WEIGHTS) from exc
        except KeyboardInterrupt:
            # The engine has applied the batches finished before Ctrl-C.
            _warn("Training interrupted by user.")
        finally:
            # The next fit / partial_fit of this network reuses the scratch.
            runner.release()
            if bridge is not None:
                bridge.close()
            if fresh:
                self._schedule_start = first_epoch
            self._epochs_trained = first_epoch + self.n_iter_

    def _update_no_improvement_count(self, early_stopping: bool, X_val: Any, y_val: Any,
                                     sw_val: Any, diverged: bool = False,
                                     score: float | None = None) -> None:
        if early_stopping:
            # A diverged network predicts non-finite values, which score NaN.
            if diverged:
                score = np.nan
            elif score is None:
                score = self._score(X_val, y_val, sample_weight=sw_val)
            self.validation_scores_.append(score)
            _say(self.verbose, logging.DEBUG, "Validation score: %f", self.validation_scores_[-1])
            last = self.validation_scores_[-1]
            if last < self.best_validation_score_ + self.tol:
                self._no_improvement_count += 1
            else:
                self._no_improvement_count = 0
            if last > self.best_validation_score_:
                self.best_validation_score_ = last
                np.copyto(self._best_params, self._net.params)
                np.copyto(self._best_buffers, self._net.buffers)
        else:
            if self.loss_curve_[-1] > self.best_loss_ - self.tol:
                self._no_improvement_count += 1
            else:
                self._no_improvement_count = 0
            if self.loss_curve_[-1] < self.best_loss_:
                self.best_loss_ = self.loss_curve_[-1]

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self: Self, X: MatrixLike, y: ArrayLike, sample_weight: ArrayLike | None = None,
            ) -> Self:
        """Fit the model to data matrix X and target(s) y.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Training inputs. float32 input trains in float32, anything else
            in float64.
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            Class labels (classification) or real targets (regression).
        sample_weight : array-like of shape (n_samples,), default=None
            Per-sample weights; losses and gradients are weighted averages.
            Weights that are negative are refused with a ValueError (scikit-learn
            accepts them, but a minibatch whose weights sum to zero or less
            has no weighted mean).

        Returns
        -------
        self : object
            The fitted estimator.
        """
        return self._fit(X, y, sample_weight=sample_weight, incremental=False)

    def _check_solver(self) -> bool:
        if self.solver not in self._Plan.STOCHASTIC_SOLVERS:
            raise AttributeError(
                "partial_fit is only available for stochastic"
                " optimizers. %s is not stochastic." % self.solver
            )
        return True

    # -- inference ----------------------------------------------------------

    def _forward_pass_fast(self, X: MatrixLike, check_input: bool = True,
                           ) -> NDArray[np.floating[Any]]:
        """Network output for X (validated unless ``check_input=False``): the
        general path, for every input ``_short_path`` declines."""
        if check_input:
            X = validate_data(self, X, accept_sparse=["csr", "csc"], reset=False)
        net = self._prediction_network()
        return net.forward(_as_engine_input(X, net.dtype))

    def _prediction_network(self) -> Network:
        """The network as scikit-learn would predict with it now: arrays
        assigned to coefs_/intercepts_ copied in, and the hidden activation
        read from ``activation`` (scikit-learn reads it at every prediction,
        so ``set_params(activation=...)`` after fit changes its predictions).
        """
        net = self._sync_params()
        if net.activation is not self.activation:
            net._set_activation(self.activation)
        return net

    # Any: the kernels' result (an array), or None.
    def _short_path(self, X: MatrixLike, head: int, check_input: bool = True,
                    ) -> NDArray[Any] | None:
        """The network's output for X through ``head``, by the short compiled
        path (``Network._infer``), or None where the general path is needed.

        It takes X only as scikit-learn's validation would pass it through
        unchanged: a NumPy array (no subclass, no DataFrame, no sparse matrix)
        of the network's dtype, 2-D, C-contiguous, of the fitted width, with
        at least one row, finite unless ``assume_finite`` is set, on an
        estimator fitted without feature names (given an array, scikit-learn
        warns about those). The estimator must be fitted (checked by the
        network's presence; ``check_is_fitted`` then passes) with its
        coefs_/intercepts_ the network's own views and its activation the
        network's. Anything else returns None, and the general path converts,
        syncs, warns or raises exactly as scikit-learn does. Nothing is
        cached: the parameters are read at each call.
        """
        d = self.__dict__
        net = d.get("_net")
        if (net is None or type(X) is not np.ndarray
                or (check_input and "feature_names_in_" in d)
                or net.activation is not self.activation
                or not _are_views(d.get("coefs_"), net.coefs)
                or not _are_views(d.get("intercepts_"), net.intercepts)):
            return None
        out: NDArray[Any] = net._infer(X, head, check_input and not get_config()["assume_finite"])
        return out

    def _check_fitted(self) -> None:
        # A network exists only on a fitted estimator (or one given coefs_),
        # where check_is_fitted passes; it scans vars() (~10 us, three times
        # a whole one-row prediction by the short path).
        if "_net" not in self.__dict__:
            check_is_fitted(self)

    def _score_with_function(self, X: MatrixLike, y: ArrayLike,
                             sample_weight: ArrayLike | None,
                             score_function: Callable[..., float]) -> float:
        # Skips input validation (it would drop feature names), as scikit-learn does.
        y_pred = self._predict(X, check_input=False)
        if np.issubdtype(y_pred.dtype, np.floating) and not np.isfinite(y_pred).all():
            return np.nan
        return score_function(y, y_pred, sample_weight=sample_weight)

    def __sklearn_tags__(self) -> Any:  # scikit-learn's Tags
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        return tags


_PARAMS_DOC = """
    hidden_layer_sizes : array-like of shape (n_layers - 2,), default=(100,)
        Units of each hidden layer, input side first.
    activation : {'identity', 'logistic', 'tanh', 'relu'}, default='relu'
        Hidden-layer activation: f(x) = x, 1 / (1 + exp(-x)), tanh(x) or
        max(0, x).
    solver : {'lbfgs', 'sgd', 'adam'}, default='adam'
        'lbfgs': full-batch L-BFGS-B (scipy) on the flat parameter vector;
        'sgd': minibatch gradient descent with (Nesterov) momentum;
        'adam': minibatch Adam, scikit-learn's variant of Kingma & Ba.
    alpha : float, default=0.0001
        L2 strength; the penalty ``0.5 * alpha * sum(||W||^2)`` is divided
        by the (weighted) batch size. Biases are not penalized.
    batch_size : int or 'auto', default='auto'
        Minibatch size for 'sgd' and 'adam'; 'auto' is
        ``min(200, n_samples)``. Larger values are clipped with a warning.
    learning_rate : {'constant', 'invscaling', 'adaptive'}, default='constant'
        Step-size schedule for 'sgd': constant ``learning_rate_init``;
        ``learning_rate_init / (t + 1) ** power_t`` after each epoch, with
        ``t`` the samples seen; or divided by 5 whenever ``n_iter_no_change``
        epochs fail to improve by ``tol`` (stopping once it is <= 1e-6).
    learning_rate_init : float, default=0.001
        Initial step size for 'sgd' and 'adam'.
    power_t : float, default=0.5
        Exponent of the 'invscaling' schedule.
    max_iter : int, default=200
        Maximum number of epochs ('sgd', 'adam') or iterations ('lbfgs').
    shuffle : bool, default=True
        Reshuffle the samples before every epoch ('sgd', 'adam').
    random_state : int, RandomState instance or None, default=None
        Drives the initial weights, the early-stopping split and the
        shuffling, drawing the same numbers as scikit-learn.
    tol : float, default=1e-4
        Training stops when the loss (or the validation score, with early
        stopping) fails to improve by ``tol`` for ``n_iter_no_change``
        consecutive epochs, unless ``learning_rate='adaptive'``; it is also
        L-BFGS's ``gtol``.
    verbose : bool or int, default=False
        Print the loss (and validation score) after every epoch.
    warm_start : bool, default=False
        Continue from the previous solution instead of reinitializing.
    momentum : float, default=0.9
        Momentum of 'sgd', in [0, 1].
    nesterovs_momentum : bool, default=True
        Use Nesterov's momentum ('sgd' with momentum > 0).
    early_stopping : bool, default=False
        Hold out ``validation_fraction`` of the training data (stratified for
        binary classification), stop when its score stops improving and keep
        the weights of the best epoch ('sgd', 'adam').
    validation_fraction : float, default=0.1
        Size of the early-stopping hold-out, in [0, 1).
    beta_1, beta_2 : float, default=0.9, 0.999
        Decay rates of Adam's first and second moment estimates, in [0, 1).
    epsilon : float, default=1e-8
        Adam's denominator offset.
    n_iter_no_change : int, default=10
        Epochs without ``tol`` improvement tolerated ('sgd', 'adam').
    max_fun : int, default=15000
        Maximum number of loss evaluations of 'lbfgs'.
"""

_ATTRIBUTES_DOC = """
    loss_ : float
        Loss at the last epoch (or at the L-BFGS solution).
    best_loss_ : float or None
        Lowest training loss seen ('sgd', 'adam'); None with early stopping.
    loss_curve_ : list of float
        Training loss of every epoch ('sgd', 'adam'): each minibatch's loss,
        taken before its update, weighted by the batch size.
    validation_scores_ : list of float or None
        Validation score of every epoch with early stopping, else None.
    best_validation_score_ : float or None
        Best validation score with early stopping, else None.
    t_ : int
        Number of training samples seen by the stochastic solver.
    coefs_ : list of ndarray
        ``coefs_[i]`` is the ``(fan_in, fan_out)`` weight matrix of layer i,
        a view into the network's flat parameter buffer.
    intercepts_ : list of ndarray
        ``intercepts_[i]`` is the bias vector of layer i + 1 (also a view).
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        Defined only when X has string feature names.
    n_iter_ : int
        Epochs (or L-BFGS iterations) run by the last fit.
    n_layers_ : int
        Number of layers, input and output included.
    n_outputs_ : int
    out_activation_ : str
        'softmax', 'logistic', 'identity' or 'exp'.
"""

_NOTES_DOC = """
    Numbers follow the installed scikit-learn (1.6 to 1.9; on 1.6 with
    1.7's ``sample_weight`` and ``loss='poisson'`` kept) exactly: the same
    initial weights, the same validation split and shuffling for the same
    ``random_state``, the same loss scaling and updates, so results agree up
    to floating-point rounding. Deliberate details:

    - With several regression outputs, the reported squared error is
      ``0.5 * mean`` over samples and outputs while its gradient is taken of
      the ``0.5 * sum`` over outputs, as in scikit-learn.
    - float32 input trains in float32 with every solver, 'lbfgs' included
      (scikit-learn's 'lbfgs' returns float64 weights); prediction casts X
      to the dtype of the weights.
    - If training diverges, scikit-learn's ``ValueError`` is raised at once
      (scikit-learn finishes ``max_iter`` epochs of NaNs first) and the model
      keeps its last finite weights. With early stopping, as in
      scikit-learn, the remaining epochs score NaN and the best weights are
      restored without an error.
    - Ctrl-C stops training within milliseconds with scikit-learn's
      "Training interrupted by user." warning; the model stays usable.
    - ``set_callbacks`` takes bpcore's callbacks (``bpcore.callbacks``, run
      after every epoch) as well as scikit-learn's; the verbose lines and
      the warnings also go to the ``bpcore`` logger (``logging``).

    Where scikit-learn 1.9 has a bug, bpcore does not copy it:

    - A warm-started fit with early stopping that never beats the previous
      best validation score restores that best (scikit-learn keeps the last
      weights: its saved best aliases the live weights after a restore).
    - ``partial_fit`` exists only for 'sgd' and 'adam' in both estimators
      (scikit-learn's MLPRegressor also offers it for 'lbfgs').
    - ``loss='poisson'`` refuses negative targets (scikit-learn trains on a
      NaN loss).
"""


class MLPClassifier(ClassifierMixin, _BaseMLP):  # type: ignore[misc]  # untyped scikit-learn
    __doc__ = _class_doc(
        """Multi-layer perceptron classifier trained by backpropagation in bpcore.

    A drop-in replacement for :class:`sklearn.neural_network.MLPClassifier`
    minimizing the log-loss: softmax outputs for multiclass targets, logistic
    outputs for binary and multilabel targets.""",
        parameters=_PARAMS_DOC,
        attributes="""
    classes_ : ndarray or list of ndarray
        Class labels for each output.""" + _ATTRIBUTES_DOC,
        notes=_NOTES_DOC,
        examples="""
    >>> from bpcore import MLPClassifier
    >>> from sklearn.datasets import make_classification
    >>> X, y = make_classification(n_samples=100, random_state=1)
    >>> clf = MLPClassifier(random_state=1, max_iter=300).fit(X, y)
    >>> clf.predict(X[:3]).shape
    (3,)""")

    def __init__(self, hidden_layer_sizes: ArrayLike = (100,), activation: str = "relu", *,
                 solver: str = "adam", alpha: float = 0.0001, batch_size: int | str = "auto",
                 learning_rate: str = "constant", learning_rate_init: float = 0.001,
                 power_t: float = 0.5, max_iter: int = 200, shuffle: bool = True,
                 random_state: RandomStateLike = None, tol: float = 1e-4,
                 verbose: bool | int = False, warm_start: bool = False, momentum: float = 0.9,
                 nesterovs_momentum: bool = True, early_stopping: bool = False,
                 validation_fraction: float = 0.1, beta_1: float = 0.9, beta_2: float = 0.999,
                 epsilon: float = 1e-8, n_iter_no_change: int = 10, max_fun: int = 15000) -> None:
        _store_parameters(self, locals(), loss="log_loss")

    def _validate_input(self, X: MatrixLike, y: Any, incremental: bool, reset: bool,
                        ) -> tuple[Any, NDArray[Any]]:
        X, y = validate_data(self, X, y, accept_sparse=["csr", "csc"], multi_output=True,
                             dtype=(np.float64, np.float32), reset=reset)
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)

        # Which classes_ to use:
        #   fit (warm_start=False), or no classes_ yet   -> learn them from y
        #   fit with warm_start=True                     -> y must have the same classes
        #   partial_fit                                  -> y may not add classes
        if not hasattr(self, "classes_") or (not self.warm_start and not incremental):
            self._label_binarizer = LabelBinarizer()
            self._label_binarizer.fit(y)
            self.classes_ = self._label_binarizer.classes_
        else:
            classes = unique_labels(y)
            if self.warm_start:
                if set(classes) != set(self.classes_):
                    raise ValueError(
                        "warm_start can only be used where `y` has the same "
                        "classes as in the previous call to fit. Previously "
                        f"got {self.classes_}, `y` has {classes}"
                    )
            elif len(np.setdiff1d(classes, self.classes_, assume_unique=True)):
                raise ValueError(
                    "`y` has classes not in `self.classes_`. "
                    f"`self.classes_` has {self.classes_}. 'y' has {classes}."
                )
        # bool keeps the indicator matrix from upcasting float32 data.
        y = self._label_binarizer.transform(y).astype(bool)
        return X, y

    def predict(self, X: MatrixLike) -> NDArray[Any]:
        """Predict class labels.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The input data.

        Returns
        -------
        y : ndarray of shape (n_samples,) or (n_samples, n_classes)
            Labels; an indicator matrix for multilabel targets.
        """
        self._check_fitted()
        y: NDArray[Any] = self._predict(X)
        return y

    # Any: the labels as LabelBinarizer gives them (sparse for sparse multilabel y).
    def _predict(self, X: MatrixLike, check_input: bool = True) -> Any:
        lb = self.__dict__.get("_label_binarizer")
        if lb is not None and not lb.sparse_input_:
            # LabelBinarizer.inverse_transform in the kernel: classes_ taken
            # at the argmax (multiclass) or at p > 0.5 (binary), or the 0/1
            # indicator matrix itself (multilabel).
            if lb.y_type_ == "multiclass":
                idx = self._short_path(X, _HEAD_ARGMAX, check_input)
                if idx is not None:
                    return lb.classes_.take(idx, mode="clip")
            elif lb.y_type_ == "binary" and len(lb.classes_) == 2:
                idx = self._short_path(X, _HEAD_THRESHOLD, check_input)
                if idx is not None:
                    return lb.classes_[idx]
            elif lb.y_type_ == "multilabel-indicator":
                y_pred = self._short_path(X, _HEAD_THRESHOLD, check_input)
                if y_pred is not None:
                    return y_pred
        y_pred = self._forward_pass_fast(X, check_input=check_input)
        if self.n_outputs_ == 1:
            y_pred = y_pred.ravel()
        return self._label_binarizer.inverse_transform(y_pred)

    def _score(self, X: MatrixLike, y: ArrayLike, sample_weight: ArrayLike | None = None,
               ) -> float:
        return self._score_with_function(X, y, sample_weight, accuracy_score)

    @available_if(lambda est: est._check_solver())
    @_fit_context(prefer_skip_nested_validation=True)
    @classifier_partial_fit_signature
    def partial_fit(self: Self, X: MatrixLike, y: ArrayLike,
                    sample_weight: ArrayLike | None = None,
                    classes: ArrayLike | None = None) -> Self:
        """Train for one epoch over (X, y), keeping the optimizer's state.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The input data.
        y : array-like of shape (n_samples,) or (n_samples, n_classes)
            The class labels (an indicator matrix for multilabel targets).
        sample_weight : array-like of shape (n_samples,), default=None
            Per-sample weights, as in ``fit``; None weighs every sample 1.
        classes : array of shape (n_classes,), default=None
            Every class that will ever be seen; required on the first call.

        Returns
        -------
        self : object
        """
        if _check_partial_fit_first_call(self, classes):
            self._label_binarizer = LabelBinarizer()
            if type_of_target(y).startswith("multilabel"):
                self._label_binarizer.fit(y)
            else:
                self._label_binarizer.fit(classes)
        return self._fit(X, y, sample_weight=sample_weight, incremental=True)

    def predict_log_proba(self, X: MatrixLike) -> NDArray[Any]:
        """Log of ``predict_proba(X)``.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The input data.

        Returns
        -------
        log_y_prob : ndarray of shape (n_samples, n_classes)
        """
        y_prob = self.predict_proba(X)
        log_y_prob: NDArray[Any] = np.log(y_prob, out=y_prob)
        return log_y_prob

    def predict_proba(self, X: MatrixLike) -> NDArray[Any]:
        """Class probabilities, columns in the order of ``classes_``.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The input data.

        Returns
        -------
        y_prob : ndarray of shape (n_samples, n_classes)
        """
        self._check_fitted()
        y_prob = self._short_path(
            X, _HEAD_BINARY_PROBA if self.n_outputs_ == 1 else _HEAD_OUTPUT)
        if y_prob is not None:
            return y_prob
        y_pred = self._forward_pass_fast(X)
        if self.n_outputs_ == 1:
            y_pred = y_pred.ravel()
        if y_pred.ndim == 1:
            binary: NDArray[Any] = np.vstack([1 - y_pred, y_pred]).T
            return binary
        return y_pred

    def __sklearn_tags__(self) -> Any:  # scikit-learn's Tags
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        return tags


class MLPRegressor(RegressorMixin, _BaseMLP):  # type: ignore[misc]  # untyped scikit-learn
    __doc__ = _class_doc(
        """Multi-layer perceptron regressor trained by backpropagation in bpcore.

    A drop-in replacement for :class:`sklearn.neural_network.MLPRegressor`.""",
        parameters="""
    loss : {'squared_error', 'poisson'}, default='squared_error'
        'squared_error' is half the mean squared error with an identity
        output; 'poisson' is half the Poisson deviance with an exp output
        (targets must be >= 0).""" + _PARAMS_DOC,
        attributes=_ATTRIBUTES_DOC,
        notes=_NOTES_DOC,
        examples="""
    >>> from bpcore import MLPRegressor
    >>> from sklearn.datasets import make_regression
    >>> X, y = make_regression(n_samples=200, n_features=20, random_state=1)
    >>> reg = MLPRegressor(random_state=1, max_iter=2000, tol=0.1).fit(X, y)
    >>> reg.predict(X[:2]).shape
    (2,)""")

    _parameter_constraints: dict[str, list[Any]] = dict(MLPREGRESSOR_PARAMETER_CONSTRAINTS)

    @regressor_init_signature
    def __init__(self, loss: str = "squared_error", hidden_layer_sizes: ArrayLike = (100,),
                 activation: str = "relu", *,
                 solver: str = "adam", alpha: float = 0.0001, batch_size: int | str = "auto",
                 learning_rate: str = "constant", learning_rate_init: float = 0.001,
                 power_t: float = 0.5, max_iter: int = 200, shuffle: bool = True,
                 random_state: RandomStateLike = None, tol: float = 1e-4,
                 verbose: bool | int = False, warm_start: bool = False, momentum: float = 0.9,
                 nesterovs_momentum: bool = True, early_stopping: bool = False,
                 validation_fraction: float = 0.1, beta_1: float = 0.9, beta_2: float = 0.999,
                 epsilon: float = 1e-8, n_iter_no_change: int = 10, max_fun: int = 15000) -> None:
        _store_parameters(self, locals())

    def predict(self, X: MatrixLike) -> NDArray[Any]:
        """Predict targets.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The input data.

        Returns
        -------
        y : ndarray of shape (n_samples,) or (n_samples, n_outputs)
        """
        self._check_fitted()
        return self._predict(X)

    def _predict(self, X: MatrixLike, check_input: bool = True) -> NDArray[Any]:
        y_pred = self._short_path(X, _HEAD_OUTPUT, check_input)
        if y_pred is None:
            y_pred = self._forward_pass_fast(X, check_input=check_input)
        y_pred = self._targets_from_outputs(y_pred)
        if y_pred.shape[1] == 1:
            return y_pred.ravel()
        return y_pred

    def _targets_from_outputs(self, y_pred: NDArray[Any]) -> NDArray[Any]:
        """Predicted targets from the network's outputs (a fresh
        (n_samples, n_outputs) array, which may be changed in place): the
        outputs themselves here; a regressor trained on transformed targets
        maps them back here, e.g. ``y_pred * scale + mean``."""
        return y_pred

    def _score(self, X: MatrixLike, y: ArrayLike, sample_weight: ArrayLike | None = None,
               ) -> float:
        return self._score_with_function(X, y, sample_weight, r2_score)

    def _validate_input(self, X: MatrixLike, y: Any, incremental: bool, reset: bool,
                        ) -> tuple[Any, NDArray[Any]]:
        X, y = validate_data(self, X, y, accept_sparse=["csr", "csc"], multi_output=True,
                             y_numeric=True, dtype=(np.float64, np.float32), reset=reset)
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        # scikit-learn's MLP accepts y < 0 here and trains on a NaN loss; the
        # engine stops on a non-finite loss, so say what is wrong up front.
        if self.loss == "poisson" and np.any(y < 0):
            raise ValueError(
                "Some value(s) of y are out of the valid range of the loss 'poisson': "
                "y must be non-negative."
            )
        return X, y

    @available_if(lambda est: est._check_solver())
    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self: Self, X: MatrixLike, y: ArrayLike,
                    sample_weight: ArrayLike | None = None) -> Self:
        """Train for one epoch over (X, y), keeping the optimizer's state.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The input data.
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            The target values.
        sample_weight : array-like of shape (n_samples,), default=None
            Per-sample weights, as in ``fit``; None weighs every sample 1.

        Returns
        -------
        self : object
        """
        return self._fit(X, y, sample_weight=sample_weight, incremental=True)
