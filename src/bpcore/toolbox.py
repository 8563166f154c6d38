"""Toolbox estimators: ``NeuralNetClassifier`` and ``NeuralNetRegressor``.

Every parameter of scikit-learn's ``MLPClassifier``/``MLPRegressor`` (same
names, same defaults) plus bpcore's toolbox as plain estimator parameters.
They ARE the drop-ins (subclasses of ``bpcore.MLPClassifier`` and
``bpcore.MLPRegressor``): the same fit (``_BaseMLP._fit``), the same stopping
rules and the same random draws. What differs is the plan the fit reads
(``_ToolboxPlan``, made once per fit from the parameters), so that with
every toolbox option at its default they give scikit-learn's numbers.
"""
from __future__ import annotations

import inspect
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from numbers import Real
from typing import TYPE_CHECKING, Any, Union

import numpy as np
from numpy.typing import ArrayLike, NDArray
from sklearn.base import is_classifier
from sklearn.metrics import check_scoring
from sklearn.preprocessing import LabelBinarizer
from sklearn.utils import check_array, column_or_1d
from sklearn.utils.class_weight import compute_class_weight
from sklearn.utils.multiclass import type_of_target
from sklearn.utils.validation import check_consistent_length

from . import _target
from ._sklearn_compat import (  # every version-sensitive scikit-learn name
    HasMethods,
    Interval,
    StrOptions,
    _check_sample_weight,
    _fit_context,
    validate_data,
)

from .activations import HIDDEN_ACTIVATIONS
from .callbacks import Callback, History
from ._docstrings import complete_parameters
from ._typing import MatrixLike, RandomStateLike, Self
from .estimators import (_PARAMS_DOC, MLPClassifier, MLPRegressor, _BaseMLP, _class_doc,
                         _FitPlan, _store_parameters)
from .initializers import INITIALIZERS
from .schedules import SCHEDULE_NAMES, SKLEARN_RATES, Schedule
from .schedules import named_schedule  # noqa: F401  (documented as bpcore.toolbox.named_schedule)
from .training import Validation

if TYPE_CHECKING:  # pragma: no cover - typing only
    from .network import Network

__all__ = ["NeuralNetClassifier", "NeuralNetRegressor"]

#: ``scoring=``: a scorer name, a callable ``scorer(est, X, y)``, or None.
Scoring = Union[str, Callable[..., float], None]
#: ``fit(validation_data=...)``: ``(X_val, y_val)`` or ``(X_val, y_val, sample_weight_val)``.
ValidationData = Union[tuple[Any, Any], tuple[Any, Any, Any]]


def _is_dask_array(X: object) -> bool:
    """True for a dask array, without importing dask."""
    return type(X).__module__.split(".")[0] == "dask" and hasattr(X, "chunks")


SOLVERS = ("lbfgs", "sgd", "adam", "adamw", "nadam", "rmsprop", "adagrad", "rprop")
SKLEARN_ACTIVATIONS = ("identity", "logistic", "tanh", "relu")

_TOOLBOX_CONSTRAINTS = {
    "activation": [StrOptions(set(HIDDEN_ACTIVATIONS)), list, tuple],
    "solver": [StrOptions(set(SOLVERS))],
    "learning_rate": [StrOptions(set(SKLEARN_RATES + SCHEDULE_NAMES)),
                      HasMethods(["bind", "epoch_rates", "observe"])],
    "init": [StrOptions(set(INITIALIZERS)), list, tuple],
    "dropout": [Interval(Real, 0, 1, closed="left"), list, tuple],
    "batch_norm": ["boolean", list, tuple],
    "residual": ["boolean"],
    "l1": [Interval(Real, 0, None, closed="left")],
    "max_norm": [Interval(Real, 0, None, closed="neither"), None],
    "clip_norm": [Interval(Real, 0, None, closed="neither"), None],
    "clip_value": [Interval(Real, 0, None, closed="neither"), None],
    "weight_decay": [Interval(Real, 0, None, closed="left")],
    "restore_best_weights": ["boolean"],
    "scoring": [str, callable, None],
}


class _ToolboxPlan(_FitPlan):
    """The drop-ins' fit plan, deciding more from the toolbox's parameters:
    the network's layers, the engine's penalties, the weights of the
    classes, what early stopping scores, whether it restores the best epoch,
    the ``history_`` the fit appends to, and the dask route (``solver='lbfgs'``
    on dask arrays: ``bpcore.dask``'s data-parallel L-BFGS)."""

    STOCHASTIC_SOLVERS = tuple(s for s in SOLVERS if s != "lbfgs")

    def __init__(self, est: _BaseMLP, X: Any, incremental: bool,
                 validation_data: Sequence[Any] | None = None,
                 callbacks: Iterable[Callback] | None = None) -> None:
        super().__init__(est, X, incremental, validation_data, callbacks)
        self.dask = _is_dask_array(X)
        if self.dask:
            self._check_dask(est, incremental, validation_data)
            self.first_pass = True          # a dask fit always starts afresh
        if self.lbfgs and (np.any(est.dropout) or np.any(est.batch_norm)):
            raise ValueError(
                "solver='lbfgs' trains on the whole data at once, and batch_norm and "
                "dropout are defined by minibatch training; choose a minibatch solver "
                "(e.g. 'adam') or set dropout=0 and batch_norm=False")
        self.network_options = {"init": est.init, "dropout": est.dropout,
                                "batch_norm": est.batch_norm, "residual": est.residual}
        if not is_classifier(est):
            self.network_options["huber_delta"] = est.huber_delta
        self.penalties = {"l1": float(est.l1), "max_norm": est.max_norm,
                          "clip_norm": est.clip_norm, "clip_value": est.clip_value}
        self.restore_best = est.restore_best_weights
        # Resolved once per fit and kept by the plan only: a fitted model
        # holds no scorer, and concurrent fits do not share one.
        self.scorer = (None if est.scoring in (None, "loss")
                       else check_scoring(est, scoring=est.scoring))
        previous = getattr(est, "history_", None)
        self.history = (previous if incremental and isinstance(previous, History)
                        else History())

    def check_predictions(self, net: Network, X: Any) -> None:
        """Report a divergence that dropout or batch norm hid from training.

        Training sees dropout's masks (and batch norm's batch statistics),
        prediction does not: units that overflow at prediction can be masked
        in every training batch, so every training loss is finite and the
        fitted model predicts inf (issue #27: Poisson loss, dropout=0.95).
        One forward pass over the training data (the inference path, about a
        third of an epoch's work) catches it, only for such networks.
        """
        if self.dask or not (any(net._dropout) or any(net._batch_norm)):
            return
        with np.errstate(all="ignore"):
            out = net.forward(X)
        if not np.isfinite(out).all():
            raise ValueError(
                "Training diverged: the fitted network predicts non-finite values (inf or "
                "NaN) on its training data, although every training loss was finite: "
                "dropout or batch norm hid the overflowing units during training. Lower the "
                "learning rate or the dropout, or scale the inputs and targets (e.g. with "
                "sklearn.preprocessing.StandardScaler).")

    @staticmethod
    def _check_dask(est: _BaseMLP, incremental: bool,
                    validation_data: Sequence[Any] | None) -> None:
        if est.solver != "lbfgs" or incremental:
            raise ValueError(
                "dask arrays train with solver='lbfgs' (data-parallel full-batch L-BFGS, "
                f"bpcore.dask) through fit, got solver={est.solver!r}"
                + (" and partial_fit" if incremental else "")
                + "; use solver='lbfgs', or stream blocks through partial_fit with "
                "dask_ml.wrappers.Incremental")
        if validation_data is not None or getattr(est, "class_weight", None) is not None:
            raise ValueError("validation_data and class_weight are not supported with dask "
                             "arrays; pass sample_weight (a dask array) instead")

    # -- the data -------------------------------------------------------------

    def data(self, X: MatrixLike, y: Any, sample_weight: Any) -> tuple[Any, Any, Any]:
        if self.dask:
            return self._dask_data(X, y, sample_weight)
        if getattr(self.est, "class_weight", None) is not None:
            sample_weight = self._class_sample_weight(y, sample_weight)
        X, Y, sample_weight = super().data(X, y, sample_weight)
        if not is_classifier(self.est):
            # Target scaling (issue 28): fitted by a first pass, kept after.
            if self.first_pass:
                self.est._set_target_scaling(*_target.numpy_moments(Y, sample_weight))
            Y = self.est._target_to_network(Y)
        return X, Y, sample_weight

    # dask arrays (dask ships no types for them here: Any).
    def _dask_data(self, X: Any, y: Any, sample_weight: Any) -> tuple[Any, Any, Any]:
        """The dask route's data: validated and encoded lazily, never
        brought back to the client (the classes are computed)."""
        from . import dask as bpdask        # names the missing extra
        est = self.est
        if X.ndim != 2:
            raise ValueError(f"X must be 2-D (n_samples, n_features), got shape {X.shape}")
        if is_classifier(est):
            classes = bpdask.compute_classes(y)
            est._label_binarizer = LabelBinarizer().fit(classes)
            est.classes_ = est._label_binarizer.classes_
            Y = bpdask.binarize(y, classes, np.float32 if X.dtype == np.float32
                                else np.float64)
        else:
            Y = y.reshape(-1, 1) if y.ndim == 1 else y
            # Target scaling (issue 28): the moments in one pass over the
            # blocks, Y scaled lazily on the workers.
            est._set_target_scaling(*bpdask.compute_target_moments(Y, sample_weight))
            Y = est._target_to_network(Y)
        est.n_features_in_ = X.shape[1]
        return X, Y, sample_weight

    def _class_sample_weight(self, y: Any, sample_weight: Any) -> NDArray[np.float64]:
        est = self.est
        if type_of_target(y) not in ("binary", "multiclass"):
            raise ValueError(
                "class_weight supports single-output (binary or multiclass) targets, got "
                f"a {type_of_target(y)!r} target; pass sample_weight instead")
        if self.incremental and isinstance(est.class_weight, str):
            raise ValueError(
                "class_weight='balanced' is not supported by partial_fit: the class "
                "frequencies of one chunk are not those of the data; pass a dict of "
                "class weights (e.g. computed with "
                "sklearn.utils.class_weight.compute_class_weight) instead")
        y = column_or_1d(np.asarray(y), warn=False)
        classes, inverse = np.unique(y, return_inverse=True)
        weights: NDArray[np.float64] = compute_class_weight(
            est.class_weight, classes=classes, y=y)[inverse]
        if sample_weight is not None:
            weights = weights * _check_sample_weight(sample_weight, y.reshape(-1, 1))
        return weights

    def check_validation_data(self, validation_data: Sequence[Any],
                              ) -> tuple[Any, Any, Any, Any]:
        est = self.est
        if not isinstance(validation_data, (tuple, list)) or len(validation_data) not in (2, 3):
            raise ValueError(
                "validation_data must be a tuple (X_val, y_val) or (X_val, y_val, "
                f"sample_weight_val), got {type(validation_data).__name__}"
                + ("" if not isinstance(validation_data, (tuple, list))
                   else f" of length {len(validation_data)}"))
        X_val, y_val = validation_data[:2]
        sw_val = validation_data[2] if len(validation_data) == 3 else None
        X_val = validate_data(est, X_val, accept_sparse=["csr", "csc"], reset=False,
                              dtype=(np.float64, np.float32))
        if is_classifier(est):
            y_val = np.asarray(y_val)
            if y_val.ndim == 2 and y_val.shape[1] == 1:
                y_val = column_or_1d(y_val)
            labels = np.unique(y_val) if y_val.ndim == 1 else None
            if labels is not None and len(np.setdiff1d(labels, est.classes_)):
                raise ValueError(
                    "validation_data's y has labels not seen in fit: "
                    f"{np.setdiff1d(labels, est.classes_)}; classes_ is {est.classes_}")
            Y_val = est._label_binarizer.transform(y_val).astype(bool)
        else:
            y_val = check_array(y_val, ensure_2d=False, dtype=(np.float64, np.float32))
            if y_val.ndim == 2 and y_val.shape[1] == 1:
                y_val = column_or_1d(y_val)
            Y_val = est._target_to_network(self.targets(y_val))   # target scaling
        check_consistent_length(X_val, y_val)
        if sw_val is not None:
            sw_val = _check_sample_weight(sw_val, X_val)
        return X_val, y_val, Y_val, sw_val

    # -- when to stop ---------------------------------------------------------

    def validation(self, X_val: Any, Y_val: Any, y_val: Any, sw_val: Any,
                   ) -> Callable[[], dict[str, float]]:
        """The validation loss and score after every epoch: ``val_score`` is
        ``scoring``'s (the estimator's ``score`` by default, the negated loss
        for 'loss'), and drives early stopping."""
        est, scorer = self.est, self.scorer
        loss = Validation(est._net, X_val, Y_val, sw_val)

        def validate() -> dict[str, float]:
            logs = loss()
            if est.scoring == "loss":
                logs["val_score"] = -logs["val_loss"]
            elif scorer is None:
                logs["val_score"] = float(est._score(X_val, y_val, sample_weight=sw_val))
            else:
                with warnings.catch_warnings():
                    # X_val is an array even when fit saw a DataFrame.
                    warnings.filterwarnings("ignore", message="X does not have valid feature")
                    kw = {} if sw_val is None else {"sample_weight": sw_val}
                    logs["val_score"] = float(scorer(est, X_val, y_val, **kw))
            return logs
        return validate


# To mypy the mixin is the estimator base it is mixed into (at run time,
# object: the MRO stays the drop-in's).
if TYPE_CHECKING:
    _MixinBase = _BaseMLP
else:
    _MixinBase = object


class _ToolboxMixin(_MixinBase):
    """The toolbox estimators' side: their fit plan and what a fit returns."""

    _Plan = _ToolboxPlan

    @property
    def network_(self) -> Network:
        """The fitted :class:`bpcore.Network`: its ``coefs``/``intercepts``
        are ``coefs_``/``intercepts_``, and it holds what they do not: batch
        norm's scales (``bn_scales``) and running statistics (``bn_means``,
        ``bn_vars``, ``buffers``), ``forward``, ``loss_and_grad``."""
        if "coefs_" not in vars(self):
            raise AttributeError(f"This {type(self).__name__} instance is not fitted yet: "
                                 "network_ exists after fit")
        self._sync_params()
        return self._net

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self: Self, X: MatrixLike, y: ArrayLike, sample_weight: ArrayLike | None = None,
            validation_data: ValidationData | None = None,
            callbacks: Sequence[Callback] | None = None) -> Self:
        """Fit the network to (X, y).

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Training inputs (with ``solver='lbfgs'``, also dask arrays).
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            Class labels (classifier) or real targets (regressor).
        sample_weight : array-like of shape (n_samples,), default=None
            Per-sample weights (see :meth:`bpcore.MLPClassifier.fit`),
            multiplied by the ``class_weight`` weights when both are given.
        validation_data : tuple, default=None
            ``(X_val, y_val)`` or ``(X_val, y_val, sample_weight_val)``:
            validated on after every epoch (``history_``) and, with
            ``early_stopping=True``, used for stopping instead of a hold-out.
        callbacks : list of bpcore.callbacks.Callback, default=None
            Run after every epoch of this fit, after those given to
            ``set_callbacks`` (see the user guide, "Callbacks").

        Returns
        -------
        self : object
        """
        return self._fit(X, y, sample_weight=sample_weight, incremental=False,
                         validation_data=validation_data, callbacks=callbacks)


_TOOLBOX_PARAMS_DOC = """
    activation : str or list of str, default='relu'
        Hidden-layer activation: scikit-learn's 'identity', 'logistic',
        'tanh', 'relu', and 'leaky_relu' (slope 0.01), 'elu' (alpha 1),
        'gelu' (exact erf form), 'silu', 'softplus', 'selu'; or one name per
        hidden layer.
    init : str or list of str, default='sklearn'
        Weight initialization: 'sklearn' (scikit-learn's draw, biases
        included), 'glorot_uniform', 'glorot_normal', 'he_uniform',
        'he_normal', 'lecun_uniform', 'lecun_normal' (zero biases); or one
        name per layer (hidden and output).
    dropout : float or list of float, default=0.0
        Inverted dropout rate after each hidden layer, in [0, 1) (one value
        per hidden layer in a list). Masks depend only on ``random_state``,
        the epoch, the sample and the unit, a sample being its row's values:
        identical rows share their masks within an epoch, so a row of
        weight w draws the masks its w copies would.
    batch_norm : bool or list of bool, default=False
        Batch-normalize hidden layers (torch's ``BatchNorm1d``, running
        statistics at inference). The batch statistics are weighted by
        ``sample_weight`` (and ``class_weight``): a sample of weight w counts
        as w samples in the mean and variance, so a fit with integer weights
        equals the fit on repeated samples when each batch is the whole
        training set. Every training batch needs >= 2 samples:
        the batch size is raised by the smallest amount that leaves no batch
        of one sample (e.g. 401 samples in batches of 200 become 201 + 200);
        fewer than 2 training samples is a ``ValueError``.
    residual : bool, default=False
        Identity skip around each hidden layer whose width is unchanged.
    l1 : float, default=0.0
        L1 strength: ``l1 * sum(|W|) / batch_weight`` joins the loss.
    max_norm : float or None, default=None
        After every update, rescale the incoming weights of each unit to an
        L2 norm of at most ``max_norm`` (Keras' ``MaxNorm``).
    clip_norm, clip_value : float or None, default=None
        Clip the whole gradient's L2 norm (``clip_grad_norm_``) and/or each
        component (``clip_grad_value_``) at every step.
    weight_decay : float, default=0.01
        Decoupled weight decay of ``solver='adamw'`` (torch's ``AdamW``:
        ``W *= 1 - lr * weight_decay`` before each step, weights only). Every
        other solver ignores it: use ``alpha`` (L2) or ``l1`` there.
    restore_best_weights : bool, default=True
        With early stopping, end on the weights (and batch-norm statistics)
        of the best validation epoch, as scikit-learn does; False keeps the
        last epoch's.
    scoring : str, callable or None, default=None
        What early stopping and ``history_.val_score`` monitor: None is the
        estimator's ``score`` (scikit-learn's rule); any scikit-learn scorer
        name or callable ``scorer(est, X, y)`` (greater is better); 'loss'
        is the negated validation loss."""

_TOOLBOX_NOTES = """
    Solvers beyond scikit-learn's: 'adamw', 'nadam' (``beta_1``,
    ``beta_2``, ``epsilon`` as for Adam), 'rmsprop' (``epsilon``, rho=0.9),
    'adagrad' and 'rprop'. 'rprop' uses the sign of the gradient and is run
    full-batch: its batch size is the number of training samples whatever
    ``batch_size`` says. 'lbfgs' takes ``l1`` but not dropout, batch norm,
    max-norm or clipping. ``learning_rate`` takes scikit-learn's names (with
    its meaning; as in scikit-learn 'adam' ignores them), a schedule name
    ('step', 'exponential', 'cosine', 'cosine_restarts', 'onecycle',
    'plateau', defaults derived from ``max_iter`` in
    ``bpcore.schedules.named_schedule``) or a ``bpcore.schedules`` object (copied
    at every fit), for every minibatch solver, starting from
    ``learning_rate_init``. With a schedule, scikit-learn's ``tol``/
    ``n_iter_no_change`` rule still stops training.

    ``fit(X, y, validation_data=(X_val, y_val[, sw_val]))`` validates on
    the given data instead of holding out ``validation_fraction``; it drives
    early stopping when ``early_stopping=True`` and is logged in
    ``history_`` either way. With ``solver='lbfgs'``, ``fit`` also takes
    dask arrays (``X``, ``y``, ``sample_weight``): bpcore.dask's
    data-parallel L-BFGS on the workers (extra ``bpcore[dask]``; no batch
    norm or dropout, no validation_data or class_weight, always a fresh fit;
    scikit-learn's callbacks see the fit's task only). ``history_`` (a
    ``bpcore.History``) has the
    per-epoch ``loss``, ``lr``, ``epoch_time`` and, with validation data,
    ``val_loss`` and ``val_score``; ``partial_fit`` appends to it.

    Callbacks: bpcore's (``bpcore.callbacks``: ``EarlyStopping``,
    ``ProgressBar``, ``CSVLogger``, ``ModelCheckpoint``, your ``Callback``
    subclasses) through ``est.set_callbacks(...)`` or
    ``fit(..., callbacks=[...])``, run after every epoch; scikit-learn's
    (``est.set_callbacks(...)``, ``sklearn.callback``) see one task per fit
    and one subtask per epoch (L-BFGS: per iteration), and one returning
    True from ``on_fit_task_end`` stops training."""


_TOOLBOX_SOLVER_DOC = """
    solver : {'lbfgs', 'sgd', 'adam', 'adamw', 'nadam', 'rmsprop', 'adagrad', \
'rprop'}, default='adam'
        The optimizer: scikit-learn's three, and the toolbox's (see Notes).
    learning_rate : str or bpcore.schedules.Schedule, default='constant'
        scikit-learn's {'constant', 'invscaling', 'adaptive'}, a schedule
        name {'step', 'exponential', 'cosine', 'cosine_restarts', 'onecycle',
        'plateau'} or a schedule object."""


def _toolbox_doc(kind: str, base: type, parameters: str, examples: str, attributes: str = "",
                 notes: str = "") -> str:
    """The docstring of a toolbox estimator extending ``base`` (a drop-in);
    ``attributes`` and ``notes`` are added to the shared sections."""
    name = base.__name__
    return _class_doc(
        f"""Neural-network {kind} with bpcore's whole toolbox as parameters.

    Every parameter of :class:`sklearn.neural_network.{name}`, same
    names and defaults (see :class:`bpcore.{name}`): with the toolbox
    options at their defaults the numbers are scikit-learn's. Plus:""",
        parameters=parameters,
        attributes=f"""
    history_ : bpcore.History
        Per-epoch ``loss``, ``val_loss``, ``val_score``, ``lr``,
        ``epoch_time``.
    network_ : bpcore.Network
        The fitted network (batch norm's scales and running statistics
        included).{attributes}
    Also every attribute of :class:`bpcore.{name}`.""",
        notes=_TOOLBOX_NOTES + notes, examples=examples)


class NeuralNetClassifier(_ToolboxMixin, MLPClassifier):
    __doc__ = _toolbox_doc("classifier", MLPClassifier, _TOOLBOX_SOLVER_DOC
                           + _TOOLBOX_PARAMS_DOC + """
    class_weight : dict, 'balanced' or None, default=None
        Weights of the classes (single-output targets): exactly the sample
        weights ``compute_sample_weight(class_weight, y)``, multiplied by
        ``sample_weight`` when both are given. 'balanced' is refused by
        ``partial_fit``.""", examples="""
    >>> from bpcore import NeuralNetClassifier
    >>> from sklearn.datasets import load_iris
    >>> X, y = load_iris(return_X_y=True)
    >>> clf = NeuralNetClassifier((32, 32), solver="adamw", learning_rate="cosine",
    ...                           batch_norm=True, dropout=0.1, max_iter=50,
    ...                           random_state=0).fit(X, y)
    >>> len(clf.history_.loss) <= 50
    True""")

    _parameter_constraints: dict[str, list[Any]] = {
        **MLPClassifier._parameter_constraints, **_TOOLBOX_CONSTRAINTS,
        "class_weight": [dict, StrOptions({"balanced"}), None],
    }

    def __init__(self, hidden_layer_sizes: ArrayLike = (100,),
                 activation: str | Sequence[str] = "relu", *,
                 solver: str = "adam", alpha: float = 0.0001, batch_size: int | str = "auto",
                 learning_rate: str | Schedule = "constant", learning_rate_init: float = 0.001,
                 power_t: float = 0.5, max_iter: int = 200, shuffle: bool = True,
                 random_state: RandomStateLike = None, tol: float = 1e-4,
                 verbose: bool | int = False, warm_start: bool = False, momentum: float = 0.9,
                 nesterovs_momentum: bool = True, early_stopping: bool = False,
                 validation_fraction: float = 0.1, beta_1: float = 0.9, beta_2: float = 0.999,
                 epsilon: float = 1e-8, n_iter_no_change: int = 10, max_fun: int = 15000,
                 init: str | Sequence[str] = "sklearn",
                 dropout: float | Sequence[float] = 0.0,
                 batch_norm: bool | Sequence[bool] = False, residual: bool = False,
                 l1: float = 0.0, max_norm: float | None = None, clip_norm: float | None = None,
                 clip_value: float | None = None, weight_decay: float = 0.01,
                 class_weight: Mapping[Any, float] | str | None = None,
                 restore_best_weights: bool = True, scoring: Scoring = None) -> None:
        _store_parameters(self, locals(), loss="log_loss")


class NeuralNetRegressor(_ToolboxMixin, MLPRegressor):
    __doc__ = _toolbox_doc("regressor", MLPRegressor, """
    loss : {'squared_error', 'poisson', 'absolute_error', 'huber'}, \
default='squared_error'
        'absolute_error' is the mean of ``|out - y|`` (``torch.nn.L1Loss``);
        'huber' is ``torch.nn.HuberLoss(delta=huber_delta)``; both with an
        identity output.""" + _TOOLBOX_SOLVER_DOC + _TOOLBOX_PARAMS_DOC + """
    huber_delta : float, default=1.0
        Huber's delta (> 0), used by ``loss='huber'``. When the target is
        scaled (``target_scaling``) delta is in scaled units, i.e. in
        standard deviations of each column: the default 1.0 is then "one
        standard deviation" whatever y's units; unscaled, it is in y's units.
    target_scaling : {'auto', 'standard'} or None, default='auto'
        Train on a scaled target and map the predictions back, so that y
        needs no preprocessing (as ``TransformedTargetRegressor(...,
        transformer=StandardScaler())`` would do, with sample weights):

        - 'standard': each column of y is standardized with its
          ``sample_weight``-weighted mean and standard deviation
          (``loss='poisson'``: divided by its weighted mean, not centered,
          so that y stays >= 0 and the log link keeps its meaning);
        - None: y is used as it is (scikit-learn's behaviour);
        - 'auto': 'standard' as soon as any toolbox option is in use (a
          toolbox parameter away from its default, or a ``solver``,
          ``learning_rate``, ``activation`` or ``loss`` that scikit-learn's
          MLPRegressor lacks; ``weight_decay`` counts with 'adamw' only,
          ``huber_delta`` with 'huber' only), else None: at the defaults
          the numbers stay scikit-learn's, and the toolbox recipes work on
          raw targets. Left unscaled by 'auto', a target far from the
          output's starting range (``|mean| > 3 * max(sd, 1)`` or ``sd >
          10`` in a column; identity-output losses) gets a UserWarning that
          says to set 'standard'; None silences it.

        The scaling is fitted by the first ``fit`` (or ``partial_fit``: on
        its first chunk) and kept by ``warm_start`` and later
        ``partial_fit`` calls. See Notes for the reported losses.""", examples="""
    >>> import numpy as np
    >>> from bpcore import NeuralNetRegressor
    >>> from sklearn.datasets import load_diabetes
    >>> X, y = load_diabetes(return_X_y=True)      # y: mean 152, sd 77, not scaled
    >>> reg = NeuralNetRegressor(hidden_layer_sizes=(64, 64), loss="huber", residual=True,
    ...                          clip_norm=5.0, learning_rate_init=0.01, max_iter=30,
    ...                          random_state=0).fit(X, y)
    >>> reg.predict(X[:2]).shape
    (2,)
    >>> reg.target_offset_.round(1), reg.target_scale_.round(1)   # y is scaled itself
    (array([152.1]), array([77.]))""", attributes="""
    target_offset_, target_scale_ : ndarray of shape (n_outputs,) or None
        The target scaling: the network learns ``(y - target_offset_) /
        target_scale_`` and ``predict`` returns ``output * target_scale_ +
        target_offset_``. None when the target is not scaled.""", notes="""

    With a scaled target, the losses (``loss_``, ``loss_curve_``,
    ``best_loss_``, ``history_.loss`` and ``val_loss``) are those of the
    scaled target, the ones the optimizer minimizes, so that ``tol`` keeps
    one meaning whatever y's units (for one squared-error output, times
    ``target_scale_ ** 2`` gives y's units); scores (``score``,
    ``validation_scores_``, ``history_.val_score``, ``scoring``) compare
    predictions with y in y's units (R^2 is the same in both).""")

    _parameter_constraints: dict[str, list[Any]] = {
        **MLPRegressor._parameter_constraints, **_TOOLBOX_CONSTRAINTS,
        "loss": [StrOptions({"squared_error", "poisson", "absolute_error", "huber"})],
        "huber_delta": [Interval(Real, 0, None, closed="neither")],
        "target_scaling": [StrOptions({"auto", "standard"}), None],
    }

    def __init__(self, loss: str = "squared_error", hidden_layer_sizes: ArrayLike = (100,),
                 activation: str | Sequence[str] = "relu", *,
                 solver: str = "adam", alpha: float = 0.0001, batch_size: int | str = "auto",
                 learning_rate: str | Schedule = "constant", learning_rate_init: float = 0.001,
                 power_t: float = 0.5, max_iter: int = 200, shuffle: bool = True,
                 random_state: RandomStateLike = None, tol: float = 1e-4,
                 verbose: bool | int = False, warm_start: bool = False, momentum: float = 0.9,
                 nesterovs_momentum: bool = True, early_stopping: bool = False,
                 validation_fraction: float = 0.1, beta_1: float = 0.9, beta_2: float = 0.999,
                 epsilon: float = 1e-8, n_iter_no_change: int = 10, max_fun: int = 15000,
                 init: str | Sequence[str] = "sklearn",
                 dropout: float | Sequence[float] = 0.0,
                 batch_norm: bool | Sequence[bool] = False, residual: bool = False,
                 l1: float = 0.0, max_norm: float | None = None, clip_norm: float | None = None,
                 clip_value: float | None = None, weight_decay: float = 0.01,
                 restore_best_weights: bool = True, scoring: Scoring = None,
                 huber_delta: float = 1.0, target_scaling: str | bool = "auto") -> None:
        _store_parameters(self, locals())

    # -- target scaling (issue 28; the maths in bpcore._target) -----------------

    def _toolbox_in_use(self) -> bool:
        """True when a parameter leaves scikit-learn's MLPRegressor: a toolbox
        parameter away from its default (a list of the default counts as the
        default; ``weight_decay`` and ``huber_delta`` only where they apply),
        or a solver, learning_rate, activation or loss it lacks."""
        defaults = {name: p.default for name, p in
                    inspect.signature(NeuralNetRegressor.__init__).parameters.items()}
        toolbox = set(defaults) - set(MLPRegressor._get_param_names()) - {
            "self", "target_scaling"}
        if self.solver != "adamw":
            toolbox.discard("weight_decay")     # ignored: it changes nothing
        if self.loss != "huber":
            toolbox.discard("huber_delta")
        for name in toolbox:
            value, default = getattr(self, name), defaults[name]
            values = value if isinstance(value, (list, tuple)) else [value]
            if not all(v is default or (default is not None and v == default)
                       for v in values):
                return True
        return not (self.solver in ("lbfgs", "sgd", "adam")
                    and isinstance(self.learning_rate, str)
                    and self.learning_rate in SKLEARN_RATES
                    and isinstance(self.activation, str)
                    and self.activation in SKLEARN_ACTIVATIONS
                    and self.loss in ("squared_error", "poisson"))

    def _set_target_scaling(self, mean: NDArray[Any], var: NDArray[Any]) -> None:
        """Fit ``target_offset_``/``target_scale_`` from y's weighted moments
        (or set them to None), warning about a far target 'auto' leaves."""
        scaled = self.target_scaling == "standard" or (
            self.target_scaling == "auto" and self._toolbox_in_use())
        if scaled:
            self.target_offset_: NDArray[np.float64] | None
            self.target_scale_: NDArray[np.float64] | None
            self.target_offset_, self.target_scale_ = _target.scaling_from_moments(
                mean, var, self.loss)
            return
        self.target_offset_ = self.target_scale_ = None
        if (self.target_scaling == "auto" and self.loss != "poisson"
                and _target.far_from_output_range(mean, var)):
            warnings.warn(_target.far_target_message(mean, var), UserWarning)

    def _target_to_network(self, Y: Any) -> Any:  # an array, or a dask array
        return _target.scale_target(Y, getattr(self, "target_offset_", None),
                                    getattr(self, "target_scale_", None))

    def _targets_from_outputs(self, y_pred: NDArray[Any]) -> NDArray[Any]:
        out: NDArray[Any] = _target.unscale_output(
            y_pred, getattr(self, "target_offset_", None), getattr(self, "target_scale_", None))
        return out


# Every inherited parameter documented too, in the signature's order.
complete_parameters(NeuralNetClassifier, _PARAMS_DOC)
complete_parameters(NeuralNetRegressor, _PARAMS_DOC)
