"""Toolbox estimators: ``NeuralNetClassifier`` and ``NeuralNetRegressor``.

Every parameter of scikit-learn's ``MLPClassifier``/``MLPRegressor`` (same
names, same defaults) plus bpcore's toolbox as plain estimator parameters.
They ARE the drop-ins (subclasses of ``bpcore.MLPClassifier`` and
``bpcore.MLPRegressor``): the same fit path, the same stopping rules and the
same random draws, extended through the drop-ins' hooks
(``_network_options``, ``_make_optimizer``, ``_runner_options``,
``_batch_size_for``, ``_validation``, ``_restore_best``), so that with every
toolbox option at its default they give scikit-learn's numbers.
"""
import copy
import time
import warnings
from numbers import Real

import numpy as np
from sklearn.base import is_classifier
from sklearn.metrics import check_scoring
from sklearn.utils import check_array, column_or_1d
from sklearn.utils.class_weight import compute_class_weight
from sklearn.utils.multiclass import type_of_target
from sklearn.utils.validation import check_consistent_length

from ._sklearn_compat import (  # every version-sensitive scikit-learn name
    HasMethods,
    Interval,
    StrOptions,
    _check_optimize_result,
    _check_sample_weight,
    _fit_context,
    validate_data,
)

from .activations import HIDDEN_ACTIVATIONS
from .callbacks import History
from .estimators import MLPClassifier, MLPRegressor, _one_fit_at_a_time
from .initializers import INITIALIZERS
from .optimizers import RPROP, SGD, AdaGrad, Adam, AdamW, NAdam, RMSProp
from .schedules import (
    CosineAnnealingLR,
    CosineAnnealingWarmRestarts,
    ExponentialLR,
    OneCycleLR,
    ReduceLROnPlateau,
    SklearnSchedule,
    StepLR,
)
from .training import Validation

__all__ = ["NeuralNetClassifier", "NeuralNetRegressor"]


def _is_dask_array(X):
    """True for a dask array, without importing dask."""
    return type(X).__module__.split(".")[0] == "dask" and hasattr(X, "chunks")

SOLVERS = ("lbfgs", "sgd", "adam", "adamw", "nadam", "rmsprop", "adagrad", "rprop")
SKLEARN_RATES = ("constant", "invscaling", "adaptive")
SCHEDULE_NAMES = ("step", "exponential", "cosine", "cosine_restarts", "onecycle", "plateau")


def named_schedule(name, *, max_iter, learning_rate_init, n_iter_no_change, steps_per_epoch=1):
    """The schedule a ``learning_rate`` name stands for, with its defaults.

    ============== =========================================================
    name           schedule (``E = max_iter`` epochs)
    ============== =========================================================
    step           ``StepLR(step_size=max(1, E // 3), gamma=0.1)``
    exponential    ``ExponentialLR(gamma=0.01 ** (1 / E))``: 1% at the end
    cosine         ``CosineAnnealingLR(T_max=E, eta_min=0)``
    cosine_restarts ``CosineAnnealingWarmRestarts(T_0=max(1, E // 4))``:
                   four cycles
    onecycle       ``OneCycleLR(max_lr=learning_rate_init, total_steps=E *
                   batches per epoch)``; past the cycle the final rate holds
    plateau        ``ReduceLROnPlateau(factor=0.1, patience=max(1,
                   n_iter_no_change // 2))`` (torch's relative threshold
                   1e-4) on the validation loss when there is validation
                   data, else the training loss
    ============== =========================================================
    """
    E = int(max_iter)
    if name == "step":
        return StepLR(step_size=max(1, E // 3), gamma=0.1)
    if name == "exponential":
        return ExponentialLR(gamma=0.01 ** (1.0 / E))
    if name == "cosine":
        return CosineAnnealingLR(T_max=E)
    if name == "cosine_restarts":
        return CosineAnnealingWarmRestarts(T_0=max(1, E // 4))
    if name == "onecycle":
        return OneCycleLR(learning_rate_init, total_steps=max(2, E * int(steps_per_epoch)))
    if name == "plateau":
        return ReduceLROnPlateau(factor=0.1, patience=max(1, n_iter_no_change // 2))
    raise ValueError(f"unknown schedule name {name!r}; choose one of {SCHEDULE_NAMES}")


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


class _ToolboxMixin:
    """The toolbox's side of the drop-ins' fit hooks (see the module doc)."""

    @property
    def network_(self):
        """The fitted :class:`bpcore.Network`: its ``coefs``/``intercepts``
        are ``coefs_``/``intercepts_``, and it holds what they do not: batch
        norm's scales (``bn_scales``) and running statistics (``bn_means``,
        ``bn_vars``, ``buffers``), ``forward``, ``loss_and_grad``."""
        if "coefs_" not in vars(self):
            raise AttributeError(f"This {type(self).__name__} instance is not fitted yet: "
                                 "network_ exists after fit")
        self._sync_params()
        return self._net

    # -- hooks ----------------------------------------------------------------

    def _network_options(self):
        return {"init": self.init, "dropout": self.dropout, "batch_norm": self.batch_norm,
                "residual": self.residual}

    def _runner_options(self):
        net = self._net
        # Dropout masks need a seed; drawn only when there is dropout, so the
        # shuffles of every other network stay scikit-learn's.
        seed = (int(self._random_state.randint(0, 2**31 - 1))
                if self.solver != "lbfgs" and any(net._dropout) else 0)
        return {"l1": float(self.l1), "max_norm": self.max_norm,
                "clip_norm": self.clip_norm, "clip_value": self.clip_value, "seed": seed}

    def _batch_size_for(self, n_samples):
        if self.solver == "rprop":
            return n_samples        # RPROP uses the sign of the full-batch gradient
        batch_size = super()._batch_size_for(n_samples)
        if any(self._net._batch_norm):
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

    def _make_optimizer(self):
        lr, solver = self.learning_rate_init, self.solver
        if solver == "sgd":
            optimizer = SGD(lr, momentum=self.momentum,
                            nesterov=self.nesterovs_momentum and self.momentum > 0)
        elif solver == "adam":
            optimizer = Adam(lr, beta_1=self.beta_1, beta_2=self.beta_2, epsilon=self.epsilon)
        elif solver == "adamw":
            optimizer = AdamW(lr, beta_1=self.beta_1, beta_2=self.beta_2,
                              epsilon=self.epsilon, weight_decay=self.weight_decay)
        elif solver == "nadam":
            optimizer = NAdam(lr, beta_1=self.beta_1, beta_2=self.beta_2, epsilon=self.epsilon)
        elif solver == "rmsprop":
            optimizer = RMSProp(lr, epsilon=self.epsilon)
        elif solver == "adagrad":
            optimizer = AdaGrad(lr)
        else:
            optimizer = RPROP(lr)
        rate = self.learning_rate
        if isinstance(rate, str) and rate in SKLEARN_RATES:
            # scikit-learn's 'adam' ignores learning_rate; so does this one.
            schedule = SklearnSchedule("constant" if solver == "adam" else rate, lr,
                                       self.power_t)
        elif isinstance(rate, str):
            # ('onecycle' is rebuilt for the number of batches in _bind_schedule)
            schedule = named_schedule(rate, max_iter=self.max_iter, learning_rate_init=lr,
                                      n_iter_no_change=self.n_iter_no_change)
        else:
            schedule = copy.deepcopy(rate)   # the parameter itself stays unbound
        return optimizer, schedule

    def _bind_schedule(self, runner, fresh):
        if fresh and isinstance(self.learning_rate, str) and self.learning_rate == "onecycle":
            self._schedule = named_schedule(
                "onecycle", max_iter=self.max_iter, learning_rate_init=self.learning_rate_init,
                n_iter_no_change=self.n_iter_no_change, steps_per_epoch=runner.n_batches)
        elif not fresh and isinstance(self._schedule, OneCycleLR):
            done = self._epochs_trained - self._schedule_start
            if (done + 1) * runner.n_batches > self._schedule.total_steps:
                # partial_fit past the cycle: the optimizer keeps the cycle's
                # final rate (torch would raise).
                self._schedule = None
                return
        elif self._schedule is None:
            return
        super()._bind_schedule(runner, fresh)

    def _validation(self, X_val, Y_val, y_val, sw_val):
        loss = Validation(self._net, X_val, Y_val, sw_val)
        scorer = self._scorer

        def validate():
            logs = loss()
            if self.scoring == "loss":
                logs["val_score"] = -logs["val_loss"]
            elif scorer is None:
                logs["val_score"] = float(self._score(X_val, y_val, sample_weight=sw_val))
            else:
                with warnings.catch_warnings():
                    # X_val is an array even when fit saw a DataFrame.
                    warnings.filterwarnings("ignore", message="X does not have valid feature")
                    kw = {} if sw_val is None else {"sample_weight": sw_val}
                    logs["val_score"] = float(scorer(self, X_val, y_val, **kw))
            return logs
        return validate

    def _restore_best(self):
        return self.restore_best_weights

    def _history_for(self, incremental):
        if not (incremental and isinstance(getattr(self, "history_", None), History)):
            self.history_ = History()
        return self.history_

    def _check_solver(self):
        if self.solver == "lbfgs":
            raise AttributeError(
                "partial_fit is only available for stochastic"
                " optimizers. %s is not stochastic." % self.solver
            )
        return True

    def _check_validation_data(self, validation_data):
        if not isinstance(validation_data, (tuple, list)) or len(validation_data) not in (2, 3):
            raise ValueError(
                "validation_data must be a tuple (X_val, y_val) or (X_val, y_val, "
                f"sample_weight_val), got {type(validation_data).__name__}"
                + ("" if not isinstance(validation_data, (tuple, list))
                   else f" of length {len(validation_data)}"))
        X_val, y_val = validation_data[:2]
        sw_val = validation_data[2] if len(validation_data) == 3 else None
        X_val = validate_data(self, X_val, accept_sparse=["csr", "csc"], reset=False,
                              dtype=(np.float64, np.float32))
        if is_classifier(self):
            y_val = np.asarray(y_val)
            if y_val.ndim == 2 and y_val.shape[1] == 1:
                y_val = column_or_1d(y_val)
            labels = np.unique(y_val) if y_val.ndim == 1 else None
            if labels is not None and len(np.setdiff1d(labels, self.classes_)):
                raise ValueError(
                    "validation_data's y has labels not seen in fit: "
                    f"{np.setdiff1d(labels, self.classes_)}; classes_ is {self.classes_}")
            Y_val = self._label_binarizer.transform(y_val).astype(bool)
        else:
            y_val = check_array(y_val, ensure_2d=False, dtype=(np.float64, np.float32))
            if y_val.ndim == 2 and y_val.shape[1] == 1:
                y_val = column_or_1d(y_val)
            Y_val = y_val.reshape(-1, 1) if y_val.ndim == 1 else y_val
        check_consistent_length(X_val, y_val)
        if sw_val is not None:
            sw_val = _check_sample_weight(sw_val, X_val)
        return X_val, y_val, Y_val, sw_val

    # -- fitting --------------------------------------------------------------

    def _fit(self, X, y, sample_weight=None, incremental=False, validation_data=None):
        # A second thread is refused here, before it sets (and deletes) _scorer.
        with _one_fit_at_a_time(self):
            return self._fit_toolbox(X, y, sample_weight, incremental, validation_data)

    def _fit_toolbox(self, X, y, sample_weight, incremental, validation_data):
        if _is_dask_array(X):
            return self._fit_dask(X, y, sample_weight, incremental, validation_data)
        if self.solver == "lbfgs" and (np.any(self.dropout) or np.any(self.batch_norm)):
            raise ValueError(
                "solver='lbfgs' trains on the whole data at once, and batch_norm and "
                "dropout are defined by minibatch training; choose a minibatch solver "
                "(e.g. 'adam') or set dropout=0 and batch_norm=False")
        if is_classifier(self) and self.class_weight is not None:
            sample_weight = self._class_sample_weight(y, sample_weight, incremental)
        # Resolved once per fit, and not kept: a fitted model holds no scorer.
        self._scorer = (None if self.scoring in (None, "loss")
                        else check_scoring(self, scoring=self.scoring))
        try:
            super()._fit(X, y, sample_weight=sample_weight, incremental=incremental,
                         validation_data=validation_data)
        finally:
            del self._scorer
        self._check_predictions_finite(X)
        return self

    def _check_predictions_finite(self, X):
        """Report a divergence that dropout hid from training.

        Training sees dropout's masks (and batch norm's batch statistics),
        prediction does not: units that overflow at prediction can be masked
        in every training batch, so every training loss is finite and the
        fitted model predicts inf (issue #27: Poisson loss, dropout=0.95).
        One forward pass over the training data (the inference path, about a
        third of an epoch's work) catches it, only for such networks.
        """
        net = self._net
        if not (any(net._dropout) or any(net._batch_norm)):
            return
        with np.errstate(all="ignore"):
            out = self._forward_pass_fast(X)
        if not np.isfinite(out).all():
            raise ValueError(
                "Training diverged: the fitted network predicts non-finite values (inf or "
                "NaN) on its training data, although every training loss was finite: "
                "dropout or batch norm hid the overflowing units during training. Lower the "
                "learning rate or the dropout, or scale the inputs and targets (e.g. with "
                "sklearn.preprocessing.StandardScaler).")

    def _fit_dask(self, X, y, sample_weight, incremental, validation_data):
        """``solver='lbfgs'`` on dask arrays: ``bpcore.dask.minimize_lbfgs``
        (blockwise loss and gradient summed over the workers); the data never
        come back to the client."""
        if self.solver != "lbfgs" or incremental:
            raise ValueError(
                "dask arrays train with solver='lbfgs' (data-parallel full-batch L-BFGS, "
                f"bpcore.dask) through fit, got solver={self.solver!r}"
                + (" and partial_fit" if incremental else "")
                + "; use solver='lbfgs', or stream blocks through partial_fit with "
                "dask_ml.wrappers.Incremental")
        if validation_data is not None or self._class_weight_or_none() is not None:
            raise ValueError("validation_data and class_weight are not supported with dask "
                             "arrays; pass sample_weight (a dask array) instead")
        from . import dask as bpdask        # names the missing extra
        from sklearn.preprocessing import LabelBinarizer
        from sklearn.utils import check_random_state
        if X.ndim != 2:
            raise ValueError(f"X must be 2-D (n_samples, n_features), got shape {X.shape}")
        dtype = np.float32 if X.dtype == np.float32 else np.float64
        hidden = self.hidden_layer_sizes
        hidden = list(hidden) if hasattr(hidden, "__iter__") else [hidden]
        if is_classifier(self):
            classes = bpdask.compute_classes(y)
            self._label_binarizer = LabelBinarizer().fit(classes)
            self.classes_ = self._label_binarizer.classes_
            Y = bpdask.binarize(y, classes, dtype)
        else:
            Y = y.reshape(-1, 1) if y.ndim == 1 else y
        self.n_features_in_ = X.shape[1]
        self._random_state = check_random_state(self.random_state)
        self._initialize(np.empty((0, Y.shape[1])), [X.shape[1]] + hidden + [Y.shape[1]],
                         np.dtype(dtype))
        t0 = time.perf_counter()
        result = bpdask.minimize_lbfgs(
            self._net, X, Y, sample_weight, alpha=float(self.alpha), l1=float(self.l1),
            options={"maxfun": self.max_fun, "maxiter": self.max_iter, "gtol": self.tol})
        self.n_iter_ = _check_optimize_result("lbfgs", result, self.max_iter)
        self.loss_ = float(result.fun)
        self.history_ = History()
        self.history_.append({"loss": self.loss_, "lr": np.nan,
                              "epoch_time": time.perf_counter() - t0})
        return self

    def _class_weight_or_none(self):
        """The class_weight parameter (the regressor has none)."""
        return getattr(self, "class_weight", None)

    def _fit_lbfgs(self, X, y, sample_weight, cb_data, validation_data=None):
        t0 = time.perf_counter()
        result = super()._fit_lbfgs(X, y, sample_weight, cb_data)
        logs = {"loss": float(result.fun), "lr": np.nan,
                "epoch_time": time.perf_counter() - t0}
        if validation_data is not None:
            X_val, y_val, Y_val, sw_val = self._check_validation_data(validation_data)
            logs.update(self._validation(X_val, Y_val, y_val, sw_val)())
        self.history_ = History()
        self.history_.append(logs)
        return result

    def _class_sample_weight(self, y, sample_weight, incremental):
        if type_of_target(y) not in ("binary", "multiclass"):
            raise ValueError(
                "class_weight supports single-output (binary or multiclass) targets, got "
                f"a {type_of_target(y)!r} target; pass sample_weight instead")
        if incremental and isinstance(self.class_weight, str):
            raise ValueError(
                "class_weight='balanced' is not supported by partial_fit: the class "
                "frequencies of one chunk are not those of the data; pass a dict of "
                "class weights (e.g. computed with "
                "sklearn.utils.class_weight.compute_class_weight) instead")
        y = column_or_1d(np.asarray(y), warn=False)
        classes, inverse = np.unique(y, return_inverse=True)
        weights = compute_class_weight(self.class_weight, classes=classes, y=y)[inverse]
        if sample_weight is not None:
            weights = weights * _check_sample_weight(sample_weight, y.reshape(-1, 1))
        return weights


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
    ``bpcore.toolbox.named_schedule``) or a ``bpcore.schedules`` object (copied
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
    scikit-learn's callbacks are not called). ``history_`` (a ``bpcore.History``) has the
    per-epoch ``loss``, ``lr``, ``epoch_time`` and, with validation data,
    ``val_loss`` and ``val_score``; ``partial_fit`` appends to it.

    scikit-learn's callbacks (``est.set_callbacks(...)``, ``sklearn.callback``)
    see one task per fit and one subtask per epoch (L-BFGS: per iteration);
    a callback returning True from ``on_fit_task_end`` stops training."""


class NeuralNetClassifier(_ToolboxMixin, MLPClassifier):
    __doc__ = """Neural-network classifier with bpcore's whole toolbox as parameters.

    Every parameter of :class:`sklearn.neural_network.MLPClassifier`, same
    names and defaults (see :class:`bpcore.MLPClassifier`): with the toolbox
    options at their defaults the numbers are scikit-learn's. Plus:

    Parameters
    ----------
    solver : {'lbfgs', 'sgd', 'adam', 'adamw', 'nadam', 'rmsprop', 'adagrad', \
'rprop'}, default='adam'
    learning_rate : str or bpcore.schedules.Schedule, default='constant'
        scikit-learn's {'constant', 'invscaling', 'adaptive'}, a schedule
        name {'step', 'exponential', 'cosine', 'cosine_restarts', 'onecycle',
        'plateau'} or a schedule object.""" + _TOOLBOX_PARAMS_DOC + """
    class_weight : dict, 'balanced' or None, default=None
        Weights of the classes (single-output targets): exactly the sample
        weights ``compute_sample_weight(class_weight, y)``, multiplied by
        ``sample_weight`` when both are given. 'balanced' is refused by
        ``partial_fit``.

    Attributes
    ----------
    history_ : bpcore.History
        Per-epoch ``loss``, ``val_loss``, ``val_score``, ``lr``,
        ``epoch_time``.
    network_ : bpcore.Network
        The fitted network (batch norm's scales and running statistics
        included).
    Also every attribute of :class:`bpcore.MLPClassifier`.

    Notes
    -----""" + _TOOLBOX_NOTES + """

    Examples
    --------
    >>> from bpcore import NeuralNetClassifier
    >>> from sklearn.datasets import load_iris
    >>> X, y = load_iris(return_X_y=True)
    >>> clf = NeuralNetClassifier((32, 32), solver="adamw", learning_rate="cosine",
    ...                           batch_norm=True, dropout=0.1, max_iter=50,
    ...                           random_state=0).fit(X, y)
    >>> len(clf.history_.loss) <= 50
    True
    """

    _parameter_constraints: dict = {
        **MLPClassifier._parameter_constraints, **_TOOLBOX_CONSTRAINTS,
        "class_weight": [dict, StrOptions({"balanced"}), None],
    }

    def __init__(self, hidden_layer_sizes=(100,), activation="relu", *, solver="adam",
                 alpha=0.0001, batch_size="auto", learning_rate="constant",
                 learning_rate_init=0.001, power_t=0.5, max_iter=200, shuffle=True,
                 random_state=None, tol=1e-4, verbose=False, warm_start=False,
                 momentum=0.9, nesterovs_momentum=True, early_stopping=False,
                 validation_fraction=0.1, beta_1=0.9, beta_2=0.999, epsilon=1e-8,
                 n_iter_no_change=10, max_fun=15000, init="sklearn", dropout=0.0,
                 batch_norm=False, residual=False, l1=0.0, max_norm=None, clip_norm=None,
                 clip_value=None, weight_decay=0.01, class_weight=None,
                 restore_best_weights=True, scoring=None):
        super().__init__(
            hidden_layer_sizes=hidden_layer_sizes, activation=activation, solver=solver,
            alpha=alpha, batch_size=batch_size, learning_rate=learning_rate,
            learning_rate_init=learning_rate_init, power_t=power_t, max_iter=max_iter,
            shuffle=shuffle, random_state=random_state, tol=tol, verbose=verbose,
            warm_start=warm_start, momentum=momentum,
            nesterovs_momentum=nesterovs_momentum, early_stopping=early_stopping,
            validation_fraction=validation_fraction, beta_1=beta_1, beta_2=beta_2,
            epsilon=epsilon, n_iter_no_change=n_iter_no_change, max_fun=max_fun)
        self.init = init
        self.dropout = dropout
        self.batch_norm = batch_norm
        self.residual = residual
        self.l1 = l1
        self.max_norm = max_norm
        self.clip_norm = clip_norm
        self.clip_value = clip_value
        self.weight_decay = weight_decay
        self.class_weight = class_weight
        self.restore_best_weights = restore_best_weights
        self.scoring = scoring

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None, validation_data=None):
        """Fit the network to (X, y).

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
        y : array-like of shape (n_samples,) or (n_samples, n_classes)
        sample_weight : array-like of shape (n_samples,), default=None
        validation_data : tuple, default=None
            ``(X_val, y_val)`` or ``(X_val, y_val, sample_weight_val)``:
            validated on after every epoch (``history_``) and, with
            ``early_stopping=True``, used for stopping instead of a hold-out.

        Returns
        -------
        self : object
        """
        return self._fit(X, y, sample_weight=sample_weight, incremental=False,
                         validation_data=validation_data)


class NeuralNetRegressor(_ToolboxMixin, MLPRegressor):
    __doc__ = """Neural-network regressor with bpcore's whole toolbox as parameters.

    Every parameter of :class:`sklearn.neural_network.MLPRegressor`, same
    names and defaults (see :class:`bpcore.MLPRegressor`): with the toolbox
    options at their defaults the numbers are scikit-learn's. Plus:

    Parameters
    ----------
    loss : {'squared_error', 'poisson', 'absolute_error', 'huber'}, \
default='squared_error'
        'absolute_error' is the mean of ``|out - y|`` (``torch.nn.L1Loss``);
        'huber' is ``torch.nn.HuberLoss(delta=huber_delta)``; both with an
        identity output.
    solver : {'lbfgs', 'sgd', 'adam', 'adamw', 'nadam', 'rmsprop', 'adagrad', \
'rprop'}, default='adam'
    learning_rate : str or bpcore.schedules.Schedule, default='constant'
        As for :class:`NeuralNetClassifier`.""" + _TOOLBOX_PARAMS_DOC + """
    huber_delta : float, default=1.0
        Huber's delta (> 0), used by ``loss='huber'``.

    Attributes
    ----------
    history_ : bpcore.History
        Per-epoch ``loss``, ``val_loss``, ``val_score``, ``lr``,
        ``epoch_time``.
    network_ : bpcore.Network
        The fitted network (batch norm's scales and running statistics
        included).
    Also every attribute of :class:`bpcore.MLPRegressor`.

    Notes
    -----""" + _TOOLBOX_NOTES + """

    Examples
    --------
    >>> import numpy as np
    >>> from bpcore import NeuralNetRegressor
    >>> from sklearn.datasets import load_diabetes
    >>> X, y = load_diabetes(return_X_y=True)
    >>> reg = NeuralNetRegressor(hidden_layer_sizes=(64, 64), loss="huber", huber_delta=20.0, residual=True,
    ...                          clip_norm=5.0, learning_rate_init=0.01, max_iter=30,
    ...                          random_state=0).fit(X, y)
    >>> reg.predict(X[:2]).shape
    (2,)
    """

    _parameter_constraints: dict = {
        **MLPRegressor._parameter_constraints, **_TOOLBOX_CONSTRAINTS,
        "loss": [StrOptions({"squared_error", "poisson", "absolute_error", "huber"})],
        "huber_delta": [Interval(Real, 0, None, closed="neither")],
    }

    def __init__(self, loss="squared_error", hidden_layer_sizes=(100,), activation="relu", *,
                 solver="adam", alpha=0.0001, batch_size="auto", learning_rate="constant",
                 learning_rate_init=0.001, power_t=0.5, max_iter=200, shuffle=True,
                 random_state=None, tol=1e-4, verbose=False, warm_start=False,
                 momentum=0.9, nesterovs_momentum=True, early_stopping=False,
                 validation_fraction=0.1, beta_1=0.9, beta_2=0.999, epsilon=1e-8,
                 n_iter_no_change=10, max_fun=15000, init="sklearn", dropout=0.0,
                 batch_norm=False, residual=False, l1=0.0, max_norm=None, clip_norm=None,
                 clip_value=None, weight_decay=0.01, restore_best_weights=True,
                 scoring=None, huber_delta=1.0):
        super().__init__(
            loss=loss, hidden_layer_sizes=hidden_layer_sizes, activation=activation,
            solver=solver, alpha=alpha, batch_size=batch_size, learning_rate=learning_rate,
            learning_rate_init=learning_rate_init, power_t=power_t, max_iter=max_iter,
            shuffle=shuffle, random_state=random_state, tol=tol, verbose=verbose,
            warm_start=warm_start, momentum=momentum,
            nesterovs_momentum=nesterovs_momentum, early_stopping=early_stopping,
            validation_fraction=validation_fraction, beta_1=beta_1, beta_2=beta_2,
            epsilon=epsilon, n_iter_no_change=n_iter_no_change, max_fun=max_fun)
        self.init = init
        self.dropout = dropout
        self.batch_norm = batch_norm
        self.residual = residual
        self.l1 = l1
        self.max_norm = max_norm
        self.clip_norm = clip_norm
        self.clip_value = clip_value
        self.weight_decay = weight_decay
        self.restore_best_weights = restore_best_weights
        self.scoring = scoring
        self.huber_delta = huber_delta

    def _network_options(self):
        return {**super()._network_options(), "huber_delta": self.huber_delta}

    def _out_activation_and_loss(self):
        if self.loss in ("absolute_error", "huber"):
            return "identity", self.loss
        return super()._out_activation_and_loss()

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None, validation_data=None):
        """Fit the network to (X, y).

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
        sample_weight : array-like of shape (n_samples,), default=None
        validation_data : tuple, default=None
            ``(X_val, y_val)`` or ``(X_val, y_val, sample_weight_val)``:
            validated on after every epoch (``history_``) and, with
            ``early_stopping=True``, used for stopping instead of a hold-out.

        Returns
        -------
        self : object
        """
        return self._fit(X, y, sample_weight=sample_weight, incremental=False,
                         validation_data=validation_data)
