"""bpcore.callbacks: EarlyStopping against Keras' own callback, ProgressBar,
CSVLogger and History.

The callbacks are driven here by a stand-in loop (``run``): each "epoch"
moves the network's parameters to a value that names the epoch, so a restored
state shows which epoch it came from.
"""
import csv
import io
import os
import pickle
import sys

import numpy as np
import pytest

from bpcore import Network
from bpcore.callbacks import (
    Callback,
    CallbackList,
    CSVLogger,
    EarlyStopping,
    History,
    ProgressBar,
)

KERAS_REASON = "keras (an optional oracle for EarlyStopping) is not installed"


def make_net():
    return Network([3, 4, 2], activation="tanh", random_state=0)


def epoch_params(net, epoch):
    """The parameters the stand-in loop leaves after ``epoch``."""
    return np.sin(np.arange(net.params.size) + 10.0 * epoch)


def run(callbacks, values, net, monitor="val_loss"):
    """A stand-in training loop; returns the index of the last epoch run."""
    callbacks = CallbackList(callbacks)
    callbacks.on_train_begin(net, epochs=len(values))
    for epoch, value in enumerate(values):
        net.params[...] = epoch_params(net, epoch)
        if getattr(net, "buffers", None) is not None:
            net.buffers[...] = -epoch
        logs = {"loss": 1.0 + epoch, "lr": 0.01, "epoch_time": 0.5, monitor: value}
        if callbacks.on_epoch_end(epoch, logs):
            break
    callbacks.on_train_end(net)
    return epoch


# --- EarlyStopping ------------------------------------------------------------

SEQUENCES = {
    "down-then-flat": [5.0, 4.0, 3.0, 3.0, 3.0, 3.0, 3.0, 3.0],
    "noisy": [1.0, 0.8, 0.85, 0.79, 0.9, 0.78, 0.781, 0.8, 0.77, 0.9, 0.95, 1.0, 1.1, 1.2],
    "slow": [1.0 - 0.001 * e for e in range(12)],
    "rising": [1.0 + 0.1 * e for e in range(10)],
}
ES_PARAMS = [
    dict(patience=0), dict(patience=1), dict(patience=2), dict(patience=3),
    dict(patience=2, min_delta=0.005), dict(patience=1, min_delta=0.05),
    dict(patience=2, mode="max"), dict(patience=3, restore_best=False),
]


def keras_early_stopping(values, patience=10, min_delta=0.0, restore_best=True, mode="auto",
                         monitor="val_loss"):
    """Keras 3's EarlyStopping on the same stand-in loop: (last epoch, best epoch,
    best, params at the end)."""
    os.environ.setdefault("KERAS_BACKEND", "torch")
    keras = pytest.importorskip("keras", reason=KERAS_REASON)
    net = make_net()

    class Model:  # what Keras' callback touches of a model
        stop_training = False

        def get_weights(self):
            return [net.params.copy()]

        def set_weights(self, weights):
            net.params[...] = weights[0]

    model = Model()
    es = keras.callbacks.EarlyStopping(monitor=monitor, patience=patience, min_delta=min_delta,
                                       restore_best_weights=restore_best, mode=mode)
    es.set_model(model)
    es.on_train_begin()
    for epoch, value in enumerate(values):
        net.params[...] = epoch_params(net, epoch)
        es.on_epoch_end(epoch, {"loss": 1.0 + epoch, monitor: value})
        if model.stop_training:
            break
    es.on_train_end()
    return epoch, es.stopped_epoch, es.best_epoch, float(es.best), net.params.copy()


@pytest.mark.parametrize("kw", ES_PARAMS,
                         ids=lambda kw: "-".join(f"{k}={v}" for k, v in kw.items()))
@pytest.mark.parametrize("name", SEQUENCES)
def test_early_stopping_matches_keras(name, kw):
    values = SEQUENCES[name]
    k_last, k_stopped, k_best_epoch, k_best, k_params = keras_early_stopping(values, **kw)
    net = make_net()
    es = EarlyStopping(**kw)
    last = run([es], values, net)
    assert last == k_last
    assert es.stopped_epoch == (k_stopped or None)  # Keras: 0 when it did not stop
    assert es.best == k_best
    if kw.get("restore_best", True):
        assert es.best_epoch == k_best_epoch
    np.testing.assert_array_equal(net.params, k_params)


@pytest.mark.parametrize("values, kw, last, best_epoch", [
    # patience=2: epochs 3 and 4 do not improve on epoch 2; stop after epoch 4.
    ([5.0, 4.0, 3.0, 3.0, 3.0, 3.0], dict(patience=2), 4, 2),
    # patience=0 stops after the first epoch without improvement (never after epoch 0).
    ([5.0, 4.0, 4.5, 1.0], dict(patience=0), 2, 1),
    ([5.0, 6.0, 7.0], dict(patience=0), 1, 0),
    # an improvement must beat best - min_delta: 4.9 and 4.85 do not beat 5.0 - 0.2.
    ([5.0, 4.9, 4.85, 4.7, 4.6], dict(patience=2, min_delta=0.2), 2, 0),
    # mode max (a score): the best is the largest.
    ([0.1, 0.5, 0.4, 0.45, 0.3, 0.2], dict(patience=3, mode="max"), 4, 1),
    # never stops: each epoch improves.
    ([3.0, 2.0, 1.0], dict(patience=0), 2, 2),
    # NaN is never an improvement (Keras 3 on the torch backend takes a first NaN as
    # the best value, and then nothing improves on it: a quirk not copied here).
    ([float("nan"), 2.0, 1.0, 1.5, 1.5], dict(patience=0), 3, 2),
])
def test_early_stopping_by_hand(values, kw, last, best_epoch):
    net = make_net()
    es = EarlyStopping(**kw)
    assert run([es], values, net) == last
    assert es.best_epoch == best_epoch
    assert es.best == values[best_epoch]
    assert es.stopped_epoch == (last if last < len(values) - 1 else None)
    np.testing.assert_array_equal(net.params, epoch_params(net, best_epoch))


def test_early_stopping_restores_params_and_buffers_in_place():
    net = make_net()
    net.buffers = np.zeros(3)
    params, buffers, coef0 = net.params, net.buffers, net.coefs[0]
    es = EarlyStopping(monitor="val_loss", patience=2)
    run([es], [3.0, 1.0, 2.0, 2.0, 2.0], net)
    assert es.best_epoch == 1 and es.stopped_epoch == 3
    assert net.params is params and net.buffers is buffers  # the same arrays, in place
    np.testing.assert_array_equal(params, epoch_params(net, 1))
    np.testing.assert_array_equal(buffers, -1.0)
    np.testing.assert_array_equal(coef0.ravel(), params[:coef0.size])  # views follow
    net.buffers = np.zeros(0)  # an empty buffer array is fine
    run([EarlyStopping(patience=0)], [2.0, 3.0], net)
    np.testing.assert_array_equal(net.params, epoch_params(net, 0))


def test_early_stopping_without_restore_keeps_the_last_params():
    net = make_net()
    es = EarlyStopping(patience=1, restore_best=False)
    assert run([es], [1.0, 2.0, 3.0], net) == 1
    np.testing.assert_array_equal(net.params, epoch_params(net, 1))


def test_early_stopping_is_reset_by_each_fit():
    net = make_net()
    es = EarlyStopping(patience=1)
    run([es], [0.1, 0.2, 0.3], net)
    assert es.best == 0.1 and es.stopped_epoch == 1
    run([es], [5.0, 4.0, 3.0], net)
    assert es.best == 3.0 and es.stopped_epoch is None and es.best_epoch == 2


@pytest.mark.parametrize("monitor, minimize", [("val_loss", True), ("loss", True),
                                               ("val_score", False), ("accuracy", False)])
def test_early_stopping_auto_mode(monitor, minimize):
    es = EarlyStopping(monitor=monitor, patience=1)
    net = make_net()
    values = [1.0, 2.0, 3.0, 4.0]  # rising: bad for a loss, good for a score
    last = run([es], values, net, monitor=monitor)
    assert last == (1 if minimize else 3)


def test_early_stopping_errors():
    es = EarlyStopping()
    es.on_train_begin(make_net())
    with pytest.raises(ValueError, match=r"EarlyStopping monitors 'val_loss', which is not in the "
                                         r"epoch logs \(keys: epoch_time, loss, lr\); pass "
                                         r"validation data or set monitor="):
        es.on_epoch_end(0, {"loss": 1.0, "lr": 0.1, "epoch_time": 0.1})
    with pytest.raises(ValueError, match=r"patience must be an integer >= 0, got -1"):
        EarlyStopping(patience=-1)
    with pytest.raises(ValueError, match=r"mode must be 'auto', 'min' or 'max', got 'lowest'"):
        EarlyStopping(mode="lowest")
    with pytest.raises(ValueError, match=r"min_delta must be a finite real number, got nan"):
        EarlyStopping(min_delta=float("nan"))
    with pytest.raises(ValueError, match=r"monitor must be a log key \(str\), got None"):
        EarlyStopping(monitor=None)


def test_callback_base_and_custom_stop():
    class StopAt(Callback):
        def on_epoch_end(self, epoch, logs):
            return epoch == 2

    base = Callback()
    assert base.on_epoch_end(0, {"loss": 1.0}) is None
    history = History()
    assert run([StopAt(), base, history], [1.0] * 6, make_net()) == 2
    assert len(history) == 3  # callbacks after the one that stops still see the epoch
    assert base.params == {"epochs": 6}


def test_callback_list_refuses_non_callbacks():
    with pytest.raises(TypeError, match=r"callbacks\[1\] is <function .*<lambda> at .*>; callbacks "
                                        r"must be instances of bpcore.callbacks.Callback"):
        CallbackList([History(), lambda epoch, logs: None])
    assert len(CallbackList(History()).callbacks) == 1


# --- ProgressBar ----------------------------------------------------------------

def test_progress_bar_draws_one_tick_per_epoch_with_losses():
    pytest.importorskip("tqdm", reason="tqdm (the 'progress' extra) is not installed")
    out = io.StringIO()
    bar = ProgressBar(file=out, desc="fit")
    run([bar], [0.75, 0.5, 0.25], make_net())
    text = out.getvalue()
    assert "fit" in text and "3/3" in text
    assert "loss=3" in text and "val_loss=0.25" in text  # the last epoch's values
    out = io.StringIO()
    bar = ProgressBar(file=out)
    bar.on_train_begin(None)  # no set_params: total unknown, a counter
    bar.on_epoch_end(0, {"loss": 0.5})
    bar.on_train_end(None)
    assert "1epoch" in out.getvalue().replace(" ", "") and "1/" not in out.getvalue()
    pickle.loads(pickle.dumps(bar))


def test_progress_bar_without_tqdm_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "tqdm", None)
    monkeypatch.setitem(sys.modules, "tqdm.auto", None)
    with pytest.raises(ImportError, match=r"ProgressBar needs tqdm, the optional extra "
                                          r"'progress': pip install \"bpcore\[progress\]\""):
        ProgressBar()


# --- CSVLogger ------------------------------------------------------------------

def read_csv(path, sep=","):
    with open(path, newline="") as f:
        return list(csv.reader(f, delimiter=sep))


def test_csv_logger_rows_and_precision(tmp_path):
    path = tmp_path / "log.csv"
    values = [1 / 3, 0.1 + 0.2, 2.0 ** -40]
    run([CSVLogger(path)], values, make_net())
    rows = read_csv(path)
    assert rows[0] == ["epoch", "epoch_time", "loss", "lr", "val_loss"]
    assert [int(r[0]) for r in rows[1:]] == [0, 1, 2]
    assert [float(r[4]) for r in rows[1:]] == values  # bit for bit
    run([CSVLogger(path)], values[:1], make_net())  # overwrite
    assert len(read_csv(path)) == 2


def test_csv_logger_append_and_separator(tmp_path):
    path = tmp_path / "log.csv"
    run([CSVLogger(path, separator=";")], [0.5, 0.4], make_net())
    run([CSVLogger(path, append=True, separator=";")], [0.3], make_net())
    rows = read_csv(path, ";")
    assert rows[0][0] == "epoch" and len(rows) == 4
    assert [r[4] for r in rows[1:]] == ["0.5", "0.4", "0.3"]
    run([CSVLogger(tmp_path / "new.csv", append=True)], [0.3], make_net())  # new file: header
    assert read_csv(tmp_path / "new.csv")[0][0] == "epoch"


def test_csv_logger_missing_key_and_errors(tmp_path):
    path = tmp_path / "log.csv"
    log = CSVLogger(path)
    log.on_train_begin(None)
    log.on_epoch_end(0, {"loss": 1.0, "val_loss": 2.0})
    log.on_epoch_end(1, {"loss": 0.5})
    log.on_train_end(None)
    assert read_csv(path) == [["epoch", "loss", "val_loss"], ["0", "1.0", "2.0"],
                              ["1", "0.5", "NA"]]
    with pytest.raises(ValueError, match=r"separator must be a single character, got '::'"):
        CSVLogger(path, separator="::")
    with pytest.raises(RuntimeError, match=r"CSVLogger.on_train_begin was not called"):
        CSVLogger(path).on_epoch_end(0, {"loss": 1.0})


# --- History ------------------------------------------------------------------

def test_history_records_epochs():
    h = History()
    run([h], [0.9, 0.7], make_net())
    assert h.loss == [1.0, 2.0] and h.val_loss == [0.9, 0.7]
    assert h.lr == [0.01, 0.01] and h.epoch_time == [0.5, 0.5] and h.val_score == []
    assert h.epochs == len(h) == 2
    assert all(type(v) is float for v in h.loss + h.val_loss)
    d = h.as_dict()
    assert d == {"loss": [1.0, 2.0], "val_loss": [0.9, 0.7], "val_score": [],
                 "lr": [0.01, 0.01], "epoch_time": [0.5, 0.5]}
    d["loss"].append(3.0)
    assert h.loss == [1.0, 2.0]  # as_dict returns copies
    assert repr(h) == "History(epochs=2, loss 1 -> 2, val_loss 0.9 -> 0.7)"
    h2 = pickle.loads(pickle.dumps(h))
    assert h2.as_dict() == h.as_dict() and repr(h2) == repr(h)


def test_history_without_validation_and_extra_keys():
    h = History()
    assert repr(h) == "History(epochs=0)" and len(h) == 0
    h.append({"loss": np.float32(0.5), "lr": 0.1, "epoch_time": 1.0, "grad_norm": 3.0})
    assert h.val_loss == [] and h.extra == {"grad_norm": [3.0]}
    assert h.as_dict()["grad_norm"] == [3.0]
    with pytest.raises(ValueError, match=r"History.append needs the epoch's 'loss' in logs; "
                                         r"got keys \['lr'\]"):
        h.append({"lr": 0.1})


def test_callbacks_pickle():
    net = make_net()
    es = EarlyStopping(patience=1)
    run([es], [1.0, 2.0, 3.0], net)
    es2 = pickle.loads(pickle.dumps(es))
    assert es2.best == es.best and es2.stopped_epoch == es.stopped_epoch
    log = CSVLogger("x.csv")
    assert pickle.loads(pickle.dumps(log)).path == "x.csv"


def test_docstring_examples():
    import doctest

    pytest.importorskip("tqdm", reason="tqdm (the 'progress' extra) is not installed")
    import bpcore.callbacks as module

    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
