"""The one training loop, and ``train``, the core API's entry to it.

``run_epochs`` is the loop every fit runs — ``train`` and every estimator,
drop-in or toolbox: per epoch it reshuffles, hands the schedule's rates for
every step of the epoch to the kernel as one array, makes ONE kernel call for
the whole epoch (``EpochRunner.run``), evaluates the validation data, and
runs the callbacks, any of which may stop training. scikit-learn's own rules
(its loss curve, stopping on ``tol``/``n_iter_no_change``, ``adaptive`` and
``invscaling``) are callbacks and schedules plugged into this loop by the
estimators, not a loop of their own.
"""
from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import ArrayLike, NDArray
from sklearn.utils import check_random_state

from ._engine import DivergenceError, EpochRunner, blas_for, reshuffle
from ._lbfgs import LBFGS, minimize_lbfgs
from ._scratch import _training_lock
from ._validation import check_positive_int, check_real
from .callbacks import Callback, History, check_callbacks
from .network import Network
from .optimizers import Optimizer
from .schedules import Schedule

if TYPE_CHECKING:  # pragma: no cover - typing only
    from scipy.sparse import sparray, spmatrix  # Any to mypy: SciPy ships no types

_BLOCK_ELEMENTS = 1 << 19
_FLOAT_MAX = sys.float_info.max


class Validation:
    """The validation loss (and optionally a score) of a network, per epoch.

    The loss is the data loss by the inference path (running statistics,
    no dropout, no penalty), computed blockwise in the kernels without the
    GIL; the workspace is allocated once.
    """

    def __init__(self, net: Network, X: ArrayLike | spmatrix | sparray, Y: ArrayLike,
                 sample_weight: ArrayLike | None = None,
                 score: Callable[[], float] | None = None) -> None:
        self.net = net
        self.X, self.Y, self.sample_weight = net.check_xy(X, Y, sample_weight)
        self.score = score
        rows = net._block_rows(self.X.shape[0])
        self.rows = rows
        self.work = np.empty(net.layout.workspace_size(rows), dtype=net.dtype)

    def __call__(self) -> dict[str, float]:
        from . import _kernels
        net = self.net
        # One BLAS thread for small blocks, as in the epoch (blas_threads_pay).
        with blas_for(self.rows * net.layout.macs_per_row):
            logs = {"val_loss": float(_kernels.loss_value(
                net.layout, net.params, self.X, self.Y, self.sample_weight, self.work,
                self.rows, net.buffers))}
        if self.score is not None:
            logs["val_score"] = float(self.score())
        return logs


def run_epochs(runner: EpochRunner, *, epochs: int, shuffle: bool = True,
               random_state: np.random.RandomState | None = None,
               order: NDArray[np.intp] | None = None, schedule: Schedule | None = None,
               validate: Callable[[], dict[str, float]] | None = None,
               callbacks: Sequence[Callback] = (), history: History | None = None,
               first_epoch: int = 0, schedule_first_epoch: int = 0,
               keep_going_after_divergence: bool = False,
               ) -> tuple[History, NDArray[np.intp]]:
    """Run up to ``epochs`` epochs of ``runner`` (an ``EpochRunner``).

    Parameters
    ----------
    runner : EpochRunner
        The network, optimizer, data and workspace of this fit; each epoch
        is one ``runner.run(order)``.
    epochs : int
        Epochs to run at most (callbacks and divergence may stop earlier).
    shuffle : bool
        Reorder the samples before every epoch (``random_state`` must then be
        a ``RandomState``), composing with the previous order exactly as
        scikit-learn's MLP does.
    order : ndarray of intp, optional
        The order to compose with (default ``arange(n)``); the final order is
        returned, so a caller can continue from it.
    schedule : Schedule, optional
        Its ``epoch_rates(epoch)`` gives the rate of every step of each
        epoch (bound by the caller; epochs counted from
        ``schedule_first_epoch``); its ``observe`` sees each epoch's logs.
    validate : callable, optional
        Returns a dict of validation logs (``val_loss``, ``val_score``).
    callbacks : sequence of Callback
        ``on_epoch_end(epoch, logs)`` after each epoch (epochs of this run,
        from 0); True stops.
    history : History, optional
        Receives every epoch's logs (a new one by default).
    first_epoch : int
        Number of epochs this network trained before (dropout masks and
        schedules count on from it).
    keep_going_after_divergence : bool
        scikit-learn's early stopping survives divergence: the remaining
        epochs log a NaN loss without computing (the runner has restored
        finite parameters). Otherwise DivergenceError propagates.

    Returns
    -------
    history, order
    """
    history = History() if history is None else history
    n = runner.n_samples
    fresh = order is None
    diverged = False
    val_keys: tuple[str, ...] = ("val_loss",)
    # One BLAS context for the whole loop (EpochRunner.blas_context): the
    # validation and the callbacks between epochs do not wake BLAS threads
    # that would then compete with the epoch's own threads. A lone epoch
    # with nothing after it has its own (train in a loop: ~2 us less).
    between = epochs > 1 or validate is not None or len(callbacks) > 0
    with runner.blas_context() if between else contextlib.nullcontext():
        for e in range(epochs):
            epoch = first_epoch + e
            if shuffle and fresh:
                # reshuffle(arange(n)) without composing with the identity: the
                # same draws and values, two fewer passes (train in a loop).
                order = np.arange(n, dtype=np.intp)
                # (random_state is a RandomState whenever shuffle is on.)
                random_state.shuffle(order)  # type: ignore[union-attr]
                fresh = False
            elif shuffle:
                # (order is set once fresh is False; random_state as above.)
                order = reshuffle(order, random_state)  # type: ignore[arg-type]
            elif fresh:
                order = np.arange(n, dtype=np.intp)
                fresh = False
            t0 = time.perf_counter()
            if schedule is not None:
                runner.lr_steps = np.ascontiguousarray(
                    schedule.epoch_rates(schedule_first_epoch + e), dtype=np.float64)
                lr = float(runner.lr_steps[0])
            else:
                runner.lr_steps = None
                lr = float(runner.optimizer.learning_rate)
            runner.epoch = epoch
            if diverged:
                loss = np.nan
            else:
                try:
                    loss = runner.run(order if shuffle else None)
                except DivergenceError:
                    if not keep_going_after_divergence:
                        raise
                    diverged = True
                    loss = np.nan
            if schedule is not None:
                # lr_steps: the array set above (schedule is not None).
                runner.optimizer.learning_rate = float(
                    runner.lr_steps[-1])  # type: ignore[index]
            logs = {"loss": loss, "lr": lr, "epoch_time": time.perf_counter() - t0}
            if validate is not None:
                if diverged:
                    # As in scikit-learn: a diverged fit scores NaN from then on.
                    logs.update((k, np.nan) for k in val_keys)
                else:
                    val = validate()
                    val_keys = tuple(val)
                    logs.update(val)
            if schedule is not None:
                schedule.observe(schedule_first_epoch + e, logs)
            history.append(logs)
            stop = False
            for cb in callbacks:
                stop = bool(cb.on_epoch_end(e, logs)) or stop
            if stop:
                break
    if fresh:
        order = np.arange(n, dtype=np.intp)
    # Not None: the caller's, or drawn or set in the loop, or the line above.
    return history, order  # type: ignore[return-value]


def _positive_int(value: int, name: str) -> int:
    # check_positive_int, with the common case first (train in a loop pays
    # these checks on every call).
    if type(value) is int and value >= 1:
        return value
    return check_positive_int(value, name)


def _non_negative(value: float, name: str) -> float:
    # check_real(value, name, low=0.0), with plain finite numbers first.
    if type(value) in (float, int) and 0.0 <= value <= _FLOAT_MAX:
        return float(value)
    return check_real(value, name, low=0.0)


def train(net: Network, X: ArrayLike | spmatrix | sparray, Y: ArrayLike, *,
          optimizer: Optimizer | LBFGS, epochs: int = 1, batch_size: int = 32,
          shuffle: bool = True, random_state: int | np.random.RandomState | None = None,
          sample_weight: ArrayLike | None = None, alpha: float = 0.0, l1: float = 0.0,
          max_norm: float | None = None, clip_norm: float | None = None,
          clip_value: float | None = None, schedule: Schedule | None = None,
          validation_data: tuple[ArrayLike, ArrayLike]
          | tuple[ArrayLike, ArrayLike, ArrayLike | None] | None = None,
          callbacks: Iterable[Callback] = ()) -> History:
    """Train ``net`` in place by minibatch backpropagation (or L-BFGS).

    Parameters
    ----------
    net : Network
        The network to train; its ``params`` (and ``buffers``) change in place.
    X : {array-like, sparse matrix} of shape (n_samples, n_features)
        Training inputs, cast to the network's dtype.
    Y : array-like of shape (n_samples, n_outputs) or (n_samples,)
        Targets. For log loss with a softmax output, one-hot rows or 1-D
        integer class labels in ``[0, n_outputs)`` (trained exactly as their
        one-hot rows); with a single output unit (e.g. logistic for a binary
        problem), a 1-D array is its column.
    optimizer : Optimizer or LBFGS
        ``SGD``, ``Adam``, ``AdamW``, ``NAdam``, ``RMSProp``, ``AdaGrad``,
        ``RPROP``: its state carries over between calls, so calling ``train``
        again continues training. ``LBFGS()`` runs scipy's L-BFGS-B on the
        whole data instead (``epochs``, ``batch_size``, ``shuffle``,
        ``schedule``, ``max_norm`` and clipping do not apply).
    epochs : int, default=1
        Passes over the data (at most: a callback may stop earlier).
    batch_size : int, default=32
        Clipped to the number of samples; the last batch of an epoch may be
        shorter.
    shuffle : bool, default=True
        Reorder the samples before every epoch, composing with the previous
        order exactly as scikit-learn's MLP does.
    random_state : int, RandomState instance or None
        Seeds the shuffling (and the dropout masks).
    sample_weight : array-like of shape (n_samples,), optional
        Per-sample weights (>= 0): each batch loss is a weighted mean. None
        weighs every sample 1.
    alpha : float, default=0.0
        L2 strength: adds ``0.5 * alpha * sum(||W||^2) / batch_weight`` to
        every batch loss.
    l1 : float, default=0.0
        L1 strength: adds ``l1 * sum(|W|) / batch_weight``.
    max_norm : float, optional
        After every update, rescale each column of each weight matrix (the
        incoming weights of one unit) to an L2 norm of at most ``max_norm``.
    clip_norm : float, optional
        Scale the whole gradient (penalties included) to a global L2 norm of
        at most ``clip_norm`` every step (``torch.nn.utils.clip_grad_norm_``).
    clip_value : float, optional
        Clamp every gradient component to ``[-clip_value, clip_value]``
        (``clip_grad_value_``; after ``clip_norm`` if both are given).
    schedule : bpcore.schedules.Schedule, optional
        The learning rate of every step, from the optimizer's rate.
    validation_data : tuple, optional
        ``(X_val, Y_val)`` or ``(X_val, Y_val, sample_weight_val)``: its
        data loss after every epoch is ``history.val_loss``.
    callbacks : list of bpcore.callbacks.Callback, default=()
        Run after every epoch (``bpcore.callbacks``; each one's ``model`` is
        ``net``).

    Returns
    -------
    history : History
        ``loss`` (per-epoch training loss: each batch's loss taken before its
        update, averaged over batches weighted by batch size), ``val_loss``,
        ``lr`` (the rate of each epoch's first step), ``epoch_time``.

    Raises
    ------
    DivergenceError
        If the loss or the parameters become non-finite; ``net`` is left
        with its parameters from the start of that epoch if they are no worse
        than at the start of this call, else with those of the start of this
        call (the message says which; L-BFGS: the start of this call), and
        the optimizer's state is reset.
    KeyboardInterrupt
        On Ctrl-C, within a few milliseconds of work; ``net`` keeps the
        parameters reached so far and stays usable.

    Examples
    --------
    >>> import numpy as np, bpcore
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((200, 4)); Y = X @ np.ones((4, 1))
    >>> net = bpcore.Network([4, 16, 1], random_state=0)
    >>> h = bpcore.train(net, X, Y, optimizer=bpcore.Adam(1e-2), epochs=5,
    ...                  random_state=0, validation_data=(X[:50], Y[:50]))
    >>> len(h.loss), len(h.val_loss)
    (5, 5)
    """
    if not isinstance(net, Network):
        raise TypeError(f"net must be a bpcore.Network, got {type(net).__name__}")
    if not isinstance(optimizer, (Optimizer, LBFGS)):
        raise TypeError(
            "optimizer must be a bpcore optimizer instance (SGD, Adam, AdamW, NAdam, "
            f"RMSProp, AdaGrad, RPROP or LBFGS), got {optimizer!r}"
        )
    epochs = _positive_int(epochs, "epochs")
    batch_size = _positive_int(batch_size, "batch_size")
    alpha = _non_negative(alpha, "alpha")
    l1 = _non_negative(l1, "l1")
    if max_norm is not None:
        max_norm = check_real(max_norm, "max_norm", low=0.0, low_open=True)
    if clip_norm is not None:
        clip_norm = check_real(clip_norm, "clip_norm", low=0.0, low_open=True)
    if clip_value is not None:
        clip_value = check_real(clip_value, "clip_value", low=0.0, low_open=True)
    if schedule is not None and not isinstance(schedule, Schedule):
        raise TypeError(f"schedule must be a bpcore.schedules.Schedule, got {schedule!r}")
    callbacks = check_callbacks(callbacks)
    for cb in callbacks:
        cb.model = net
    X, Y, sample_weight = net.check_xy(X, Y, sample_weight)
    validate = None
    if validation_data is not None:
        if not isinstance(validation_data, (tuple, list)) or len(validation_data) not in (2, 3):
            raise ValueError("validation_data must be (X_val, Y_val) or "
                             "(X_val, Y_val, sample_weight_val)")
        validate = Validation(net, *validation_data)
    rs = check_random_state(random_state)
    history = History()
    if isinstance(optimizer, LBFGS):
        return _train_lbfgs(net, X, Y, sample_weight, optimizer, alpha, l1, validate,
                            callbacks, history)
    # Dropout masks need a seed; drawn only when there is dropout, so the
    # shuffles of every other network stay scikit-learn's.
    seed = int(rs.randint(0, 2**31 - 1)) if any(net._dropout) else 0
    runner = EpochRunner(net, optimizer, X, Y, sample_weight, batch_size, alpha, l1=l1,
                         max_norm=max_norm, clip_norm=clip_norm, clip_value=clip_value,
                         seed=seed)
    first_epoch = getattr(net, "_epochs_trained", 0)
    if schedule is not None:
        schedule.bind(optimizer.learning_rate, runner.n_batches)
    for cb in callbacks:
        cb.set_params({"epochs": epochs, "steps_per_epoch": runner.n_batches})
        cb.on_train_begin(net)
    try:
        history, _ = run_epochs(runner, epochs=epochs, shuffle=shuffle, random_state=rs,
                                schedule=schedule, validate=validate, callbacks=callbacks,
                                history=history, first_epoch=first_epoch)
    finally:
        # The next call on this network reuses the runner's scratch.
        runner.release()
        net._epochs_trained = first_epoch + len(history)
        for cb in callbacks:
            cb.on_train_end(net)
    return history


def _train_lbfgs(net: Network, X: NDArray[np.floating[Any]], Y: NDArray[np.floating[Any]],
                 sample_weight: NDArray[np.floating[Any]] | None, optimizer: LBFGS,
                 alpha: float, l1: float, validate: Validation | None,
                 callbacks: list[Callback], history: History) -> History:
    # L-BFGS writes the parameters at every evaluation: the minibatch
    # epochs' lock (EpochRunner.run) keeps another thread's training out.
    lock = _training_lock(net)
    if not lock.acquire(blocking=False):
        raise RuntimeError(
            "this network is already being trained by another thread; train "
            "one network from one thread at a time (or copy it first)")
    try:
        for cb in callbacks:
            cb.set_params({"epochs": optimizer.max_iter})
            cb.on_train_begin(net)
    except BaseException:
        lock.release()
        raise
    t0 = time.perf_counter()
    start = net.params.copy()
    try:
        result = minimize_lbfgs(net, X, Y, sample_weight, alpha, l1=l1, options={
            "maxiter": optimizer.max_iter, "maxfun": optimizer.max_fun,
            "gtol": optimizer.tol})
        if not (np.isfinite(result.fun) and np.isfinite(net.params).all()):
            # As the minibatch optimizers: an error, and usable parameters.
            what = ("the loss" if np.isfinite(net.params).all() else "the parameters")
            net.params[...] = start
            raise DivergenceError(
                f"Training diverged: {what} became non-finite in L-BFGS (loss "
                f"{float(result.fun)!r} after {result.nit} iterations); the parameters were "
                "restored to their values at the start of this fit. Scale the inputs and "
                "the targets (e.g. with sklearn.preprocessing.StandardScaler) or add L2 "
                "regularization (alpha).", epoch_loss_so_far=float(result.fun))
        logs = {"loss": float(result.fun), "lr": np.nan,
                "epoch_time": time.perf_counter() - t0}
        if validate is not None:
            logs.update(validate())
        history.append(logs)
        optimizer.result_ = result
        for cb in callbacks:
            cb.on_epoch_end(0, logs)
    finally:
        lock.release()
        for cb in callbacks:
            cb.on_train_end(net)
    return history
