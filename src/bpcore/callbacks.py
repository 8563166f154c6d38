"""Callbacks run by the training loop between epochs, and the ``History`` it returns.

The one training loop runs them for ``bpcore.train`` and for every
estimator (``est.set_callbacks(...)``, or the toolbox estimators'
``fit(..., callbacks=[...])``). It calls, on every callback in order:
``set_params(params)`` (what is known about the fit, e.g. ``{"epochs":
50}``), ``on_train_begin(net)`` (``model``, the object being trained — the
network in ``train``, the estimator in ``fit`` — is set just before), then
after every epoch ``on_epoch_end(epoch, logs)`` (epochs count from 0; a
callback returning True stops training after that epoch), and finally
``on_train_end(net)``, also when training stopped early or failed. ``logs``
holds at least ``loss``, ``lr`` and ``epoch_time``, and ``val_loss`` with
validation data (an estimator's early stopping adds ``val_score``).

Each ``Callback`` also has the four hooks of scikit-learn's callback protocol
(``sklearn.callback``: ``setup``, ``on_fit_task_begin``, ``on_fit_task_end``,
``teardown``) as no-ops, so that ``est.set_callbacks`` takes bpcore's
callbacks beside scikit-learn's and ``sklearn.base.clone`` carries them.
"""
from __future__ import annotations

import copy
import csv
import logging
import math
import os
from collections.abc import Iterable, Mapping
from typing import IO, TYPE_CHECKING, Any, Literal, TextIO

import numpy as np
from numpy.typing import NDArray

from ._docstrings import docstring
from ._validation import check_positive_int, check_real

if TYPE_CHECKING:  # pragma: no cover - typing only
    from _csv import Writer  # what csv.writer returns

    from .network import Network

__all__ = ["Callback", "CallbackList", "EarlyStopping", "ProgressBar", "CSVLogger",
           "ModelCheckpoint", "History", "check_callbacks"]

#: bpcore's logger: verbose output and warnings worth logging go here too.
#: A library's logger: silent until the application configures logging.
logger = logging.getLogger("bpcore")
logger.addHandler(logging.NullHandler())

#: The docstring of the four scikit-learn protocol hooks of ``Callback``.
_PROTOCOL_HOOK_DOC = """{summary} (scikit-learn's protocol hook).

        Parameters
        ----------
        estimator : estimator instance
            The estimator being fitted.
        context : object
            scikit-learn's callback context of the task.
{returns}"""


class Callback:
    """Base class: override the hooks you need; each does nothing here.

    Examples
    --------
    A callback that stops training once the loss is small enough:

    >>> from bpcore.callbacks import Callback
    >>> class StopBelow(Callback):
    ...     def __init__(self, level):
    ...         self.level = level
    ...     def on_epoch_end(self, epoch, logs):
    ...         return logs["loss"] < self.level
    >>> StopBelow(0.1).on_epoch_end(3, {"loss": 0.05, "lr": 1e-3, "epoch_time": 0.2})
    True
    """

    params: dict[str, int] = {}
    #: The object being trained, set by the loop before ``on_train_begin``:
    #: the ``Network`` in ``bpcore.train``, the estimator in ``fit`` (Keras'
    #: ``Callback.model``).
    model: Any = None

    def set_params(self, params: Mapping[str, int]) -> None:
        """Receive what the loop knows about the fit before it starts.

        Parameters
        ----------
        params : dict
            E.g. ``{"epochs": 50, "steps_per_epoch": 20}``; keys may be missing.
        """
        self.params = dict(params)

    def on_train_begin(self, net: Network) -> None:
        """Called once before the first epoch.

        Parameters
        ----------
        net : Network
            The network being trained; its flat ``params`` (and ``buffers``)
            hold the trained state.
        """

    def on_epoch_end(self, epoch: int, logs: Mapping[str, float]) -> bool | None:
        """Called after every epoch.

        Parameters
        ----------
        epoch : int
            0-based index of the epoch that just ran.
        logs : dict
            ``loss``, ``lr``, ``epoch_time`` and, with validation data,
            ``val_loss`` (floats).

        Returns
        -------
        stop : bool or None
            True stops training after this epoch.
        """

    def on_train_end(self, net: Network) -> None:
        """Called once after the last epoch, also after an early stop.

        Parameters
        ----------
        net : Network
            The network that was trained (the one ``on_train_begin``
            received); its ``params`` hold the final state.
        """

    # scikit-learn's callback protocol (``sklearn.callback.FitCallback``):
    # no-ops, there so that ``est.set_callbacks`` accepts bpcore's callbacks
    # and ``clone`` carries them; the estimators run the hooks above.

    @docstring(_PROTOCOL_HOOK_DOC, summary="Do nothing at the start of ``fit``", returns="")
    def setup(self, estimator: Any, context: Any) -> None:
        pass

    @docstring(_PROTOCOL_HOOK_DOC, summary="Do nothing at the start of a task", returns="")
    def on_fit_task_begin(self, estimator: Any, context: Any) -> None:
        pass

    @docstring(_PROTOCOL_HOOK_DOC, summary="Never stop at the end of a task", returns="""
        Returns
        -------
        stop : bool
            Always False: bpcore's callbacks stop from ``on_epoch_end``.
""")
    def on_fit_task_end(self, estimator: Any, context: Any) -> bool:
        return False

    @docstring(_PROTOCOL_HOOK_DOC, summary="Do nothing at the end of ``fit``", returns="")
    def teardown(self, estimator: Any, context: Any) -> None:
        pass


def check_callbacks(callbacks: Iterable[Callback] | None,
                    name: str = "callbacks") -> list[Callback]:
    """``callbacks`` as a list of bpcore callbacks, or a clear error.

    Parameters
    ----------
    callbacks : iterable of Callback or None
        None is no callbacks.
    name : str, default="callbacks"
        The argument's name, for the messages.

    Returns
    -------
    callbacks : list of Callback

    Raises
    ------
    TypeError
        If ``callbacks`` is a single callback rather than a list of them,
        or holds anything else than bpcore callbacks.

    Examples
    --------
    >>> from bpcore.callbacks import History, check_callbacks
    >>> check_callbacks(History())
    Traceback (most recent call last):
    ...
    TypeError: callbacks must be a list of callbacks, got one History; pass callbacks=[History(...)]
    """
    if callbacks is None:
        return []
    if isinstance(callbacks, Callback) or not isinstance(callbacks, Iterable) or isinstance(
            callbacks, (str, bytes, Mapping)):
        kind = (f"one {type(callbacks).__name__}" if isinstance(callbacks, Callback)
                else f"{type(callbacks).__name__} {callbacks!r}")
        fix = (f"pass {name}=[{type(callbacks).__name__}(...)]"
               if isinstance(callbacks, Callback) else f"pass {name}=[...] or None")
        raise TypeError(f"{name} must be a list of callbacks, got {kind}; {fix}")
    out = list(callbacks)
    for i, cb in enumerate(out):
        if isinstance(cb, type) or not isinstance(cb, Callback):
            hint = ("an instance, e.g. " + cb.__name__ + "()" if isinstance(cb, type)
                    else "a bpcore.callbacks.Callback")
            sklearn_cb = type(cb).__module__.startswith("sklearn.callback")
            raise TypeError(
                f"{name}[{i}] is {cb!r}, not {hint}"
                + ("; scikit-learn's callbacks go through est.set_callbacks(...)"
                   if sklearn_cb else
                   "; write one by subclassing bpcore.callbacks.Callback"))
    return out


class CallbackList:
    """The loop's side of the protocol: every hook on every callback, in order.

    Parameters
    ----------
    callbacks : Callback or iterable of Callback, default=()
        The callbacks, run in this order at every hook; a single callback is
        a list of one.

    Examples
    --------
    >>> from bpcore.callbacks import Callback, CallbackList, History
    >>> class StopAt(Callback):
    ...     def on_epoch_end(self, epoch, logs):
    ...         return epoch == 1
    >>> history = History()
    >>> cbs = CallbackList([StopAt(), history])
    >>> cbs.on_train_begin(None, epochs=5)
    >>> [cbs.on_epoch_end(e, {"loss": 1.0 / (e + 1)}) for e in range(2)]
    [False, True]
    >>> cbs.on_train_end(None)
    >>> history.loss  # every callback saw epoch 1, also after StopAt asked to stop
    [1.0, 0.5]
    """

    def __init__(self, callbacks: Callback | Iterable[Callback] = ()) -> None:
        if isinstance(callbacks, Callback):
            callbacks = [callbacks]
        self.callbacks = list(callbacks)
        for i, cb in enumerate(self.callbacks):
            if not isinstance(cb, Callback):
                raise TypeError(
                    f"callbacks[{i}] is {cb!r}; callbacks must be instances of "
                    "bpcore.callbacks.Callback subclasses")

    def on_train_begin(self, net: Network, **params: int) -> None:
        """``set_params(params)`` then ``on_train_begin(net)`` on each callback.

        Parameters
        ----------
        net : Network
            The object being trained, passed to each ``on_train_begin``.
        **params
            What the loop knows of the fit, e.g. ``epochs=50``.
        """
        for cb in self.callbacks:
            cb.set_params(params)
            cb.on_train_begin(net)

    def on_epoch_end(self, epoch: int, logs: Mapping[str, float]) -> bool:
        """Run every callback's ``on_epoch_end``; True if any asked to stop.

        Parameters
        ----------
        epoch : int
            The epoch that ended, counted from 0.
        logs : dict of str to float
            Its records (``loss``, ``lr``, ``val_loss``, ...).

        Returns
        -------
        stop : bool
            True if any callback returned True.
        """
        stop = False
        for cb in self.callbacks:
            stop = bool(cb.on_epoch_end(epoch, logs)) or stop
        return stop

    def on_train_end(self, net: Network) -> None:
        """Run every callback's ``on_train_end``.

        Parameters
        ----------
        net : Network
            The network that was trained.
        """
        for cb in self.callbacks:
            cb.on_train_end(net)


class _Monitored:
    """What EarlyStopping and ModelCheckpoint share: a key of the epoch
    logs to watch, and whether smaller is better."""

    monitor: str
    mode: str

    def _check_monitor(self, monitor: str, mode: str) -> None:
        if not isinstance(monitor, str):
            raise ValueError(f"monitor must be a log key (str), got {monitor!r}")
        if mode not in ("auto", "min", "max"):
            raise ValueError(f"mode must be 'auto', 'min' or 'max', got {mode!r}")
        self.monitor, self.mode = monitor, mode

    @property
    def _minimize(self) -> bool:
        return self.mode == "min" or (self.mode == "auto" and self.monitor.endswith("loss"))

    def _monitored(self, logs: Mapping[str, float]) -> float:
        if self.monitor not in logs:
            raise ValueError(
                f"{type(self).__name__} monitors {self.monitor!r}, which is not in the epoch "
                f"logs (keys: {', '.join(sorted(logs))}); "
                + ("pass validation data or " if self.monitor.startswith("val_") else "")
                + "set monitor= to one of those keys")
        return float(logs[self.monitor])


class EarlyStopping(_Monitored, Callback):
    """Stop when a monitored value has stopped improving (Keras' ``EarlyStopping``).

    Parameters
    ----------
    monitor : str, default="val_loss"
        Key of the epoch logs to watch.
    patience : int, default=10
        Epochs without improvement after which training stops.
    min_delta : float, default=0.0
        An improvement must be larger than this: ``value + min_delta < best``
        in ``min`` mode, ``value - min_delta > best`` in ``max`` mode.
    restore_best : bool, default=True
        At the end of training, copy the parameters (and buffers) of the best
        epoch back into the network, in place.
    mode : {"auto", "min", "max"}, default="auto"
        ``auto`` is ``min`` for a monitor ending in ``loss``, ``max`` otherwise.

    Attributes
    ----------
    best : float
        Best monitored value (``inf`` / ``-inf`` before the first epoch).
    best_epoch : int or None
        0-based epoch of ``best``.
    stopped_epoch : int or None
        The epoch after which this callback stopped training; None if it did not.

    Notes
    -----
    As in Keras 3: a counter of epochs since the last improvement is raised
    after every epoch and reset by an improvement; training stops after the
    first epoch at which it reaches ``patience`` (never after epoch 0). With
    ``restore_best``, the parameters of the best epoch are restored at the end
    of training whether or not this callback stopped it.

    Departures from Keras: every fit starts afresh (Keras keeps ``best`` from
    a previous fit of the same callback object); a monitor missing from the
    logs is an error, not a warning; a NaN value is never an improvement;
    ``stopped_epoch`` is None, not 0, when training ran to the end.

    Examples
    --------
    >>> import numpy as np
    >>> from types import SimpleNamespace
    >>> from bpcore.callbacks import EarlyStopping
    >>> net = SimpleNamespace(params=np.zeros(2))
    >>> es = EarlyStopping(monitor="loss", patience=2)
    >>> es.on_train_begin(net)
    >>> for epoch, loss in enumerate([3.0, 2.0, 2.5, 2.1, 1.0]):
    ...     net.params += 1.0
    ...     if es.on_epoch_end(epoch, {"loss": loss}):
    ...         break
    >>> es.on_train_end(net)
    >>> es.stopped_epoch, es.best_epoch, es.best, net.params
    (3, 1, 2.0, array([2., 2.]))
    """

    def __init__(self, monitor: str = "val_loss", patience: int = 10, min_delta: float = 0.0,
                 restore_best: bool = True,
                 mode: Literal["auto", "min", "max"] = "auto") -> None:
        self._check_monitor(monitor, mode)
        self.patience = check_positive_int(patience, "patience", minimum=0)
        self.min_delta = abs(check_real(min_delta, "min_delta"))
        self.restore_best = bool(restore_best)
        self._init_state()

    def _init_state(self) -> None:
        self.best = math.inf if self._minimize else -math.inf
        self.best_epoch: int | None = None
        self.stopped_epoch: int | None = None
        self.wait = 0
        self._best_state: tuple[NDArray[Any], NDArray[Any] | None] | None = None
        self._net: Network | None = None

    def on_train_begin(self, net: Network) -> None:
        self._init_state()
        self._net = net

    def on_epoch_end(self, epoch: int, logs: Mapping[str, float]) -> bool:
        current = self._monitored(logs)
        if self.restore_best and self._best_state is None:
            self._best_state, self.best_epoch = self._snapshot(), epoch
        self.wait += 1
        if self._is_improvement(current):
            self.best, self.best_epoch, self.wait = current, epoch, 0
            if self.restore_best:
                self._best_state = self._snapshot()
            return False
        if self.wait >= self.patience and epoch > 0:
            self.stopped_epoch = epoch
            return True
        return False

    def on_train_end(self, net: Network) -> None:
        if self.restore_best and self._best_state is not None:
            params, buffers = self._best_state
            net.params[...] = params
            if buffers is not None:
                net.buffers[...] = buffers
        self._best_state = None  # do not keep a copy of the weights alive
        self._net = None

    def _is_improvement(self, current: float) -> bool:
        # Keras' comparisons, operand for operand (they round differently
        # from current < best - min_delta at the edge).
        if self._minimize:
            return current + self.min_delta < self.best
        return current - self.min_delta > self.best

    def _snapshot(self) -> tuple[NDArray[Any], NDArray[Any] | None]:
        if self._net is None:
            raise RuntimeError("EarlyStopping.on_train_begin(net) was not called")
        buffers = getattr(self._net, "buffers", None)
        return (np.array(self._net.params, copy=True),
                None if buffers is None else np.array(buffers, copy=True))

    def __repr__(self) -> str:
        return (f"EarlyStopping(monitor={self.monitor!r}, patience={self.patience}, "
                f"min_delta={self.min_delta}, restore_best={self.restore_best}, "
                f"mode={self.mode!r})")


class ModelCheckpoint(_Monitored, Callback):
    """Save the model as it trains, with ``bpcore.save`` (Keras' ``ModelCheckpoint``).

    Parameters
    ----------
    path : str or path-like
        Where to write. It may name ``{epoch}`` (the number of epochs done,
        from 1, as in Keras) and any key of the epoch logs, formatted by
        ``str.format``: ``"ckpt-{epoch:03d}-{val_loss:.4f}.bpcore"``.
    monitor : str, default="val_loss"
        Key of the epoch logs that decides what is best.
    save_best_only : bool, default=True
        Save only after an epoch that improves on the best value so far (so
        a fixed ``path`` always holds the best model); False saves after
        every epoch.
    mode : {"auto", "min", "max"}, default="auto"
        ``auto`` is ``min`` for a monitor ending in ``loss``, ``max`` otherwise.

    Attributes
    ----------
    best : float
        Best monitored value of this fit (``inf`` / ``-inf`` before).
    best_epoch : int or None
        0-based epoch of ``best``.
    saved : list of str
        The paths written during the last fit, in order.

    Notes
    -----
    What is saved is the object being trained (``Callback.model``): the
    ``Network`` in ``bpcore.train``, the estimator in ``fit`` —
    ``bpcore.load(path)`` then gives an estimator that predicts as this one
    did after that epoch (its fit state in progress; scikit-learn's
    callbacks are not saved). A NaN value never improves. Every fit starts
    afresh (``best`` is reset), as EarlyStopping does.

    Examples
    --------
    >>> import os, tempfile
    >>> import numpy as np, bpcore
    >>> from bpcore.callbacks import ModelCheckpoint
    >>> X = np.random.default_rng(0).standard_normal((64, 3)); Y = X.sum(1, keepdims=True)
    >>> net = bpcore.Network([3, 8, 1], random_state=0)
    >>> path = os.path.join(tempfile.mkdtemp(), "best.bpcore")
    >>> ckpt = ModelCheckpoint(path, monitor="loss")
    >>> _ = bpcore.train(net, X, Y, optimizer=bpcore.Adam(1e-2), epochs=3, callbacks=[ckpt])
    >>> ckpt.best_epoch, bpcore.load(path).n_params == net.n_params
    (2, True)
    """

    def __init__(self, path: str | os.PathLike[str], monitor: str = "val_loss",
                 save_best_only: bool = True,
                 mode: Literal["auto", "min", "max"] = "auto") -> None:
        if not isinstance(path, (str, os.PathLike)):
            raise TypeError(f"path must be a str or path-like, got {type(path).__name__}")
        self.path = os.fspath(path)
        self._check_monitor(monitor, mode)
        if not isinstance(save_best_only, (bool, np.bool_)):
            raise ValueError(f"save_best_only must be True or False, got {save_best_only!r}")
        self.save_best_only = bool(save_best_only)
        self.best = math.inf if self._minimize else -math.inf
        self.best_epoch: int | None = None
        self.saved: list[str] = []

    def on_train_begin(self, net: Network) -> None:
        self.best = math.inf if self._minimize else -math.inf
        self.best_epoch = None
        self.saved = []

    def on_epoch_end(self, epoch: int, logs: Mapping[str, float]) -> None:
        current = self._monitored(logs) if self.save_best_only else math.nan
        if self.save_best_only:
            if not (current < self.best if self._minimize else current > self.best):
                return None
            self.best, self.best_epoch = current, epoch
        from .persistence import save
        path = self.path.format(epoch=epoch + 1, **logs)
        save(_snapshot(self.model), path)
        self.saved.append(path)
        logger.debug("ModelCheckpoint: epoch %d saved to %s", epoch, path)
        return None

    def __repr__(self) -> str:
        return (f"ModelCheckpoint({self.path!r}, monitor={self.monitor!r}, "
                f"save_best_only={self.save_best_only}, mode={self.mode!r})")


def _snapshot(model: Any) -> Any:
    """``model`` as ``bpcore.save`` takes it mid-fit: an estimator without
    scikit-learn's callback machinery (its callbacks, the fit's context)."""
    if model is None:
        raise RuntimeError("ModelCheckpoint saves Callback.model, which the training "
                           "loop sets; it was not set (on_train_begin called by hand?)")
    if not hasattr(model, "get_params"):
        return model                            # a Network
    snap = copy.copy(model)
    snap.__dict__ = {k: v for k, v in vars(model).items()
                     if not k.startswith(("_skl_callbacks", "_callback_fit_ctx",
                                          "_parent_callback_ctx"))}
    return snap


class ProgressBar(Callback):
    """A tqdm progress bar per fit, one tick per epoch, losses in its postfix.

    Needs the optional extra: ``pip install "bpcore[progress]"`` (tqdm).

    Parameters
    ----------
    file : file-like, optional
        Where to draw (default: ``sys.stderr``, tqdm's).
    desc : str, default="train"
        The bar's label.
    leave : bool, default=True
        Keep the finished bar on screen.

    Notes
    -----
    The total is the loop's ``params["epochs"]`` when known. The postfix
    shows ``loss`` and, with validation data, ``val_loss`` of the last epoch.

    Examples
    --------
    >>> import io
    >>> from bpcore.callbacks import ProgressBar
    >>> out = io.StringIO()
    >>> bar = ProgressBar(file=out)
    >>> bar.set_params({"epochs": 2})
    >>> bar.on_train_begin(None)
    >>> for epoch in range(2):
    ...     _ = bar.on_epoch_end(epoch, {"loss": 0.5 / (epoch + 1), "val_loss": 0.6})
    >>> bar.on_train_end(None)
    >>> "2/2" in out.getvalue() and "loss=0.25" in out.getvalue()
    True
    """

    def __init__(self, file: IO[str] | None = None, desc: str = "train",
                 leave: bool = True) -> None:
        try:
            from tqdm.auto import tqdm
        except ImportError as exc:
            raise ImportError(
                "ProgressBar needs tqdm, the optional extra 'progress': "
                'pip install "bpcore[progress]"') from exc
        self._tqdm = tqdm
        self.file = file
        self.desc = desc
        self.leave = leave
        self._bar: Any = None  # a tqdm bar while training (tqdm ships no types)

    def on_train_begin(self, net: Network) -> None:
        self.on_train_end(net)   # a bar left open by an interrupted fit
        self._bar = self._tqdm(total=self.params.get("epochs"), desc=self.desc, unit="epoch",
                               file=self.file, leave=self.leave, dynamic_ncols=True)

    def on_epoch_end(self, epoch: int, logs: Mapping[str, float]) -> None:
        if self._bar is None:
            return None
        postfix = {k: f"{logs[k]:.4g}" for k in ("loss", "val_loss") if k in logs}
        self._bar.set_postfix(postfix, refresh=False)
        self._bar.update(1)
        return None

    def on_train_end(self, net: Network) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def __getstate__(self) -> dict[str, Any]:  # the bar (and its file) do not pickle
        state = self.__dict__.copy()
        state.update(_bar=None, _tqdm=None, file=None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        from tqdm.auto import tqdm

        self.__dict__.update(state, _tqdm=tqdm)


class CSVLogger(Callback):
    """Write the epoch logs to a CSV file, one row per epoch.

    Parameters
    ----------
    path : str or path-like
        The CSV file to write: created, or overwritten unless ``append``.
    append : bool, default=False
        Append to an existing file (its header is kept) instead of
        overwriting it.
    separator : str, default=","
        The field delimiter, one character.

    Notes
    -----
    The header is ``epoch`` followed by the keys of the first epoch's logs,
    sorted. A key missing from a later epoch is written as ``NA``; keys that
    first appear later are not written. Each row is flushed as it is
    written, so an interrupted fit keeps its rows. Floats are written in full
    precision (``repr``).

    Examples
    --------
    >>> import os, tempfile
    >>> from bpcore.callbacks import CSVLogger
    >>> path = os.path.join(tempfile.mkdtemp(), "log.csv")
    >>> log = CSVLogger(path)
    >>> log.on_train_begin(None)
    >>> log.on_epoch_end(0, {"loss": 0.5, "lr": 0.01, "epoch_time": 0.25})
    >>> log.on_train_end(None)
    >>> print(open(path).read(), end="")
    epoch,epoch_time,loss,lr
    0,0.25,0.5,0.01
    """

    def __init__(self, path: str | os.PathLike[str], append: bool = False,
                 separator: str = ",") -> None:
        self.path = os.fspath(path)
        self.append = bool(append)
        if not isinstance(separator, str) or len(separator) != 1:
            raise ValueError(f"separator must be a single character, got {separator!r}")
        self.separator = separator
        self._file: TextIO | None = None
        self._writer: Writer | None = None
        self._keys: list[str] | None = None

    def on_train_begin(self, net: Network) -> None:
        self.on_train_end(net)
        has_rows = (self.append and os.path.exists(self.path)
                    and os.path.getsize(self.path) > 0)
        self._file = open(self.path, "a" if self.append else "w", newline="", encoding="utf-8")
        self._keys = self._existing_keys() if has_rows else None
        self._writer = csv.writer(self._file, delimiter=self.separator, lineterminator="\n")

    def _existing_keys(self) -> list[str]:
        with open(self.path, newline="", encoding="utf-8") as f:
            header = next(csv.reader(f, delimiter=self.separator), ["epoch"])
        return header[1:]

    def on_epoch_end(self, epoch: int, logs: Mapping[str, float]) -> None:
        if self._writer is None:
            raise RuntimeError("CSVLogger.on_train_begin was not called")
        if self._keys is None:
            self._keys = sorted(logs)
            self._writer.writerow(["epoch"] + self._keys)
        self._writer.writerow([epoch] + [_csv_value(logs.get(k, "NA")) for k in self._keys])
        self._file.flush()  # type: ignore[union-attr]  # open whenever _writer is set

    def on_train_end(self, net: Network) -> None:
        if self._file is not None:
            self._file.close()
        self._file = self._writer = None

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state.update(_file=None, _writer=None)
        return state

    def __repr__(self) -> str:
        return f"CSVLogger({self.path!r}, append={self.append}, separator={self.separator!r})"


def _csv_value(v: float | str) -> float | str:
    return repr(float(v)) if isinstance(v, (float, np.floating)) else v


class History(Callback):
    """Per-epoch record of a fit: what ``bpcore.train`` returns.

    Attributes
    ----------
    loss : list of float
        Training loss of each epoch.
    val_loss : list of float
        Validation loss of each epoch; empty without validation data.
    val_score : list of float
        Validation score of each epoch, where the loop computes one (the
        estimators' early stopping); else empty.
    lr : list of float
        Learning rate of each epoch (for a per-step schedule, that of the
        epoch's first step).
    epoch_time : list of float
        Wall time of each epoch, in seconds.
    extra : dict of str to list
        Any other numeric key of the logs, recorded the same way.

    Examples
    --------
    >>> from bpcore.callbacks import History
    >>> h = History()
    >>> h.append({"loss": 0.9, "lr": 0.01, "epoch_time": 0.5})
    >>> h.append({"loss": 0.4, "lr": 0.01, "epoch_time": 0.5})
    >>> h
    History(epochs=2, loss 0.9 -> 0.4)
    >>> h.loss, h.val_loss, len(h)
    ([0.9, 0.4], [], 2)
    """

    FIELDS = ("loss", "val_loss", "val_score", "lr", "epoch_time")
    # Set in __init__ (setattr over FIELDS).
    loss: list[float]
    val_loss: list[float]
    val_score: list[float]
    lr: list[float]
    epoch_time: list[float]

    def __init__(self) -> None:
        for name in self.FIELDS:
            setattr(self, name, [])
        self.extra: dict[str, list[float]] = {}

    def append(self, logs: Mapping[str, float]) -> None:
        """Record one epoch's logs (``loss`` required; other keys where present).

        Parameters
        ----------
        logs : dict of str to float
            One epoch's records: ``loss`` (required) and any of ``val_loss``,
            ``val_score``, ``lr``, ``epoch_time``; other keys go to ``extra``.
        """
        if "loss" not in logs:
            raise ValueError(
                f"History.append needs the epoch's 'loss' in logs; got keys {sorted(logs)}")
        for key, value in logs.items():
            target = getattr(self, key) if key in self.FIELDS else self.extra.setdefault(key, [])
            target.append(float(value))

    def on_epoch_end(self, epoch: int, logs: Mapping[str, float]) -> None:
        self.append(logs)

    @property
    def epochs(self) -> int:
        """Number of recorded epochs."""
        return len(self.loss)

    def __len__(self) -> int:
        return len(self.loss)

    def as_dict(self) -> dict[str, list[float]]:
        """Every record as ``{name: list of float}`` (copies), extra keys included.

        Returns
        -------
        records : dict of str to list of float
            ``loss``, ``val_loss``, ``val_score``, ``lr``, ``epoch_time`` and
            any extra key, one value per epoch.
        """
        out = {name: list(getattr(self, name)) for name in self.FIELDS}
        out.update((k, list(v)) for k, v in self.extra.items())
        return out

    def __repr__(self) -> str:
        parts = [f"epochs={self.epochs}"]
        for name in ("loss", "val_loss", "val_score"):
            values = getattr(self, name)
            if values:
                parts.append(f"{name} {values[0]:.4g} -> {values[-1]:.4g}")
        return f"History({', '.join(parts)})"
