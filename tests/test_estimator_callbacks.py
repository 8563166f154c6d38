"""One set of callbacks: bpcore's callbacks on every estimator, beside scikit-learn's.

bpcore's callbacks (``bpcore.callbacks``) run in the one training loop for
``bpcore.train`` and for every estimator, through ``est.set_callbacks(...)``
and the toolbox estimators' ``fit(..., callbacks=[...])``; scikit-learn's own
callbacks keep working on the same estimators; bpcore's messages also go to
the ``bpcore`` logger.
"""
import csv
import io
import logging
import warnings

import numpy as np
import pytest
from numpy.testing import assert_array_equal
from sklearn.base import clone
from sklearn.datasets import load_iris, make_regression
from sklearn.exceptions import ConvergenceWarning

import bpcore
from bpcore import MLPClassifier, MLPRegressor, NeuralNetClassifier, NeuralNetRegressor
from bpcore.callbacks import (
    Callback,
    CSVLogger,
    EarlyStopping,
    History,
    ModelCheckpoint,
    ProgressBar,
    check_callbacks,
)

from bpcore._sklearn_compat import HAS_CALLBACKS

# set_callbacks is scikit-learn's callback protocol, new in 1.9: before it the
# estimators do not have it (tests/test_sklearn_compat.py checks the refusal),
# and bpcore's callbacks reach the estimators through the toolbox's
# fit(callbacks=[...]) only.
needs_protocol = pytest.mark.skipif(
    not HAS_CALLBACKS, reason="set_callbacks needs scikit-learn >= 1.9 (sklearn.callback)")

ESTIMATORS = [MLPClassifier, MLPRegressor, NeuralNetClassifier, NeuralNetRegressor]


@pytest.fixture(scope="module")
def data():
    X, y = load_iris(return_X_y=True)
    Xr, yr = make_regression(n_samples=150, n_features=4, noise=1.0, random_state=0)
    return {True: (X, y), False: (Xr, yr / 100.0)}


def xy(data, Est):
    return data[Est in (MLPClassifier, NeuralNetClassifier)]


class Recorder(Callback):
    """Every hook it sees, in order."""

    def __init__(self, stop_at=None):
        self.stop_at = stop_at
        self.events = []

    def on_train_begin(self, net):
        self.events.append(("begin", dict(self.params), self.model))

    def on_epoch_end(self, epoch, logs):
        self.events.append(("epoch", epoch, dict(logs)))
        return self.stop_at is not None and epoch >= self.stop_at

    def on_train_end(self, net):
        self.events.append(("end",))

    def epochs(self):
        return [e for e in self.events if e[0] == "epoch"]


def quiet(est, *args, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return est.fit(*args, **kw)


@needs_protocol
@pytest.mark.parametrize("Est", ESTIMATORS)
@pytest.mark.parametrize("solver", ["adam", "sgd"])
def test_set_callbacks_runs_bpcore_callbacks_every_epoch(data, Est, solver):
    X, y = xy(data, Est)
    rec = Recorder()
    est = quiet(Est(hidden_layer_sizes=(8,), solver=solver, max_iter=6, random_state=0).set_callbacks(rec), X, y)
    begin, *epochs, end = rec.events
    assert begin[0] == "begin" and begin[2] is est
    assert begin[1]["epochs"] == 6 and begin[1]["steps_per_epoch"] == 1
    assert end == ("end",)
    assert [e[1] for e in epochs] == list(range(est.n_iter_))
    assert [e[2]["loss"] for e in epochs] == est.loss_curve_
    assert all({"loss", "lr", "epoch_time"} <= set(e[2]) for e in epochs)


@needs_protocol
@pytest.mark.parametrize("Est", ESTIMATORS)
def test_callbacks_change_no_result(data, Est):
    X, y = xy(data, Est)
    kw = dict(hidden_layer_sizes=(8,), max_iter=5, random_state=0, early_stopping=True)
    plain = quiet(Est(**kw), X, y)
    called = quiet(Est(**kw).set_callbacks(Recorder(), History()), X, y)
    for a, b in zip(plain.coefs_ + plain.intercepts_, called.coefs_ + called.intercepts_):
        assert_array_equal(a, b)
    assert plain.loss_curve_ == called.loss_curve_
    assert plain.validation_scores_ == called.validation_scores_


@needs_protocol
@pytest.mark.parametrize("Est", ESTIMATORS)
def test_lbfgs_is_one_epoch_for_callbacks(data, Est):
    X, y = xy(data, Est)
    rec = Recorder()
    est = quiet(Est(hidden_layer_sizes=(8,), solver="lbfgs", max_iter=20, random_state=0).set_callbacks(rec),
                X, y)
    assert [e[0] for e in rec.events] == ["begin", "epoch", "end"]
    assert rec.events[0][1] == {"epochs": 20}
    assert rec.events[1][2]["loss"] == est.loss_


@needs_protocol
def test_drop_in_early_stopping_logs_val_score(data):
    X, y = data[True]
    rec = Recorder()
    est = quiet(MLPClassifier((8,), early_stopping=True, max_iter=8, random_state=0)
                .set_callbacks(rec), X, y)
    assert [e[2]["val_score"] for e in rec.epochs()] == est.validation_scores_


@needs_protocol
@pytest.mark.parametrize("Est", [NeuralNetClassifier, NeuralNetRegressor])
def test_toolbox_fit_takes_callbacks_after_set_callbacks(data, Est):
    X, y = xy(data, Est)
    order = []

    class Tag(Callback):
        def __init__(self, tag):
            self.tag = tag

        def on_epoch_end(self, epoch, logs):
            order.append(self.tag)

    est = Est(hidden_layer_sizes=(8,), max_iter=2, random_state=0).set_callbacks(Tag("set"))
    quiet(est, X, y, callbacks=[Tag("fit")], validation_data=(X[:20], y[:20]))
    assert order == ["set", "fit", "set", "fit"]
    # fit's callbacks are for that fit only.
    order.clear()
    quiet(est, X, y)
    assert order == ["set", "set"]


@needs_protocol
@pytest.mark.parametrize("Est", ESTIMATORS)
def test_csv_logger_loss_column_is_the_loss_curve(data, Est, tmp_path):
    X, y = xy(data, Est)
    path = tmp_path / "log.csv"
    est = quiet(Est(hidden_layer_sizes=(8,), max_iter=7, random_state=0).set_callbacks(CSVLogger(path)), X, y)
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == est.n_iter_ == 7
    assert [int(r["epoch"]) for r in rows] == list(range(7))
    assert [float(r["loss"]) for r in rows] == est.loss_curve_


@needs_protocol
def test_csv_logger_over_partial_fit_calls(data, tmp_path):
    X, y = data[True]
    path = tmp_path / "log.csv"
    est = MLPClassifier((8,), random_state=0).set_callbacks(CSVLogger(path, append=True))
    for _ in range(3):
        est.partial_fit(X, y, classes=[0, 1, 2])
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    assert [float(r["loss"]) for r in rows] == est.loss_curve_


@needs_protocol
@pytest.mark.parametrize("Est", ESTIMATORS)
def test_early_stopping_callback_stops_and_restores(data, Est):
    X, y = xy(data, Est)
    es = EarlyStopping(monitor="loss", patience=2, min_delta=1e9)
    est = quiet(Est(hidden_layer_sizes=(8,), max_iter=50, random_state=0).set_callbacks(es), X, y)
    assert est.n_iter_ == 3 and es.stopped_epoch == 2 and es.best_epoch == 0
    # The weights are those after epoch 0: a one-epoch fit's.
    ref = quiet(Est(hidden_layer_sizes=(8,), max_iter=1, random_state=0), X, y)
    for a, b in zip(est.coefs_ + est.intercepts_, ref.coefs_ + ref.intercepts_):
        assert_array_equal(a, b)


@needs_protocol
def test_user_callback_stop_is_honoured_and_warns_nothing(data):
    X, y = data[True]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        est = MLPClassifier((8,), max_iter=50, random_state=0).set_callbacks(
            Recorder(stop_at=3)).fit(X, y)
    assert est.n_iter_ == 4


@pytest.mark.parametrize("Est", [NeuralNetClassifier, NeuralNetRegressor])
def test_model_checkpoint_saves_the_best_estimator(data, Est, tmp_path):
    X, y = xy(data, Est)
    path = tmp_path / "best.bpcore"
    ckpt = ModelCheckpoint(path)
    rec = Recorder()
    est = quiet(Est(hidden_layer_sizes=(8,), max_iter=12, learning_rate_init=0.05, random_state=0),
                X[::2], y[::2], validation_data=(X[1::2], y[1::2]), callbacks=[ckpt, rec])
    val_loss = [e[2]["val_loss"] for e in rec.epochs()]
    assert ckpt.best == min(val_loss) and ckpt.best_epoch == int(np.argmin(val_loss))
    back = bpcore.load(path)
    assert type(back) is Est and back.n_iter_ == ckpt.best_epoch + 1
    # The saved model is the one of the best epoch: refit for that many epochs.
    ref = quiet(Est(hidden_layer_sizes=(8,), max_iter=ckpt.best_epoch + 1, learning_rate_init=0.05,
                    random_state=0), X[::2], y[::2])
    assert_array_equal(back.predict(X), ref.predict(X))


@needs_protocol
def test_model_checkpoint_every_epoch_with_sklearn_callbacks_set(data, tmp_path):
    X, y = data[True]
    sk_callback = pytest.importorskip("sklearn.callback")
    ckpt = ModelCheckpoint(tmp_path / "ckpt-{epoch:02d}-{loss:.3f}.bpcore",
                           save_best_only=False)
    est = quiet(MLPClassifier((8,), max_iter=3, random_state=0)
                .set_callbacks(ckpt, sk_callback.ProgressBar()), X, y)
    assert len(ckpt.saved) == 3 and ckpt.saved[0].endswith(
        f"ckpt-01-{est.loss_curve_[0]:.3f}.bpcore")
    assert bpcore.load(ckpt.saved[-1]).n_iter_ == 3


def test_model_checkpoint_in_train_and_monitor_errors(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((40, 3))
    Y = X.sum(1, keepdims=True)
    net = bpcore.Network([3, 4, 1], random_state=0)
    ckpt = ModelCheckpoint(tmp_path / "net.bpcore", monitor="val_loss")
    bpcore.train(net, X, Y, optimizer=bpcore.Adam(1e-2), epochs=3,
                 validation_data=(X[:10], Y[:10]), callbacks=[ckpt])
    assert isinstance(bpcore.load(tmp_path / "net.bpcore"), bpcore.Network)
    with pytest.raises(ValueError, match="ModelCheckpoint monitors 'val_loss', which is not "
                                         "in the epoch logs.*pass validation data"):
        bpcore.train(net, X, Y, optimizer=bpcore.Adam(1e-2), callbacks=[ckpt])
    with pytest.raises(ValueError, match="mode must be"):
        ModelCheckpoint("x", mode="best")
    with pytest.raises(TypeError, match="path must be a str or path-like"):
        ModelCheckpoint(3)


@needs_protocol
def test_bpcore_and_sklearn_callbacks_together_and_clone(data):
    from test_toolbox_estimators import _Recorder
    X, y = data[True]
    skl, ours = _Recorder(), Recorder()
    est = MLPClassifier((8,), max_iter=3, random_state=0).set_callbacks(skl, ours)
    quiet(est, X, y)
    assert len(ours.epochs()) == 3
    assert sum(1 for e in skl.events if e[0] == "end" and e[1] == "epoch") == 3
    twin = clone(est)
    assert twin._skl_callbacks == [skl, ours]
    quiet(twin, X, y)
    # The clone holds the same instance (scikit-learn's clone passes callbacks by reference).
    assert len(ours.epochs()) == 6 and ours.events[5][2] is twin


def test_progress_bar_on_an_estimator(data):
    pytest.importorskip("tqdm")
    X, y = data[True]
    out = io.StringIO()
    quiet(NeuralNetClassifier((8,), max_iter=4, random_state=0), X, y,
          callbacks=[ProgressBar(file=out)])
    assert "4/4" in out.getvalue() and "loss=" in out.getvalue()


@pytest.mark.parametrize("bad, match", [
    (History(), r"callbacks must be a list of callbacks, got one History; "
                r"pass callbacks=\[History\(...\)\]"),
    ("loss", r"callbacks must be a list of callbacks, got str 'loss'"),
    ([History], r"callbacks\[0\] is .*History.*, not an instance, e.g. History\(\)"),
    ([object()], r"callbacks\[0\] is <object.*not a bpcore.callbacks.Callback; write one"),
])
def test_bad_callbacks_arguments(data, bad, match):
    X, y = data[True]
    with pytest.raises(TypeError, match=match):
        NeuralNetClassifier((4,), max_iter=1).fit(X, y, callbacks=bad)
    with pytest.raises(TypeError, match=match):
        bpcore.train(bpcore.Network([4, 3]), X, np.ones((150, 3)),
                     optimizer=bpcore.SGD(), callbacks=bad)


@needs_protocol
def test_bad_set_callbacks_arguments():
    with pytest.raises(TypeError, match=r"separate arguments: est.set_callbacks\(cb1, cb2\)"):
        MLPClassifier().set_callbacks([History()])
    with pytest.raises(TypeError, match="set_callbacks takes callback instances: bpcore's"):
        MLPClassifier().set_callbacks(History(), "progress")
    with pytest.raises(TypeError, match="scikit-learn's callbacks go through"):
        check_callbacks([pytest.importorskip("sklearn.callback").ProgressBar()])


def test_messages_go_to_the_bpcore_logger(data, caplog, capsys):
    X, y = data[True]
    with caplog.at_level(logging.DEBUG, logger="bpcore"):
        with pytest.warns(ConvergenceWarning):
            MLPClassifier((8,), max_iter=2, random_state=0).fit(X, y)
    records = [(r.levelname, r.getMessage()) for r in caplog.records if r.name == "bpcore"]
    assert records[0][0] == "DEBUG" and records[0][1].startswith("Iteration 1, loss = ")
    assert records[-1][0] == "WARNING" and "Maximum iterations (2)" in records[-1][1]
    assert capsys.readouterr().out == ""        # verbose=False prints nothing
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="bpcore"):
        MLPClassifier((8,), solver="sgd", learning_rate="adaptive", tol=10.0,
                      n_iter_no_change=1, max_iter=50, random_state=0, verbose=True).fit(X, y)
    infos = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
    printed = capsys.readouterr().out.splitlines()
    assert infos and all(msg in printed for msg in infos)
    assert infos[0].endswith("Setting learning rate to 0.000200")
    assert infos[-1].endswith("Learning rate too small. Stopping.")


@needs_protocol
def test_save_and_pickle_an_estimator_with_callbacks_set(data, tmp_path):
    X, y = data[True]
    est = quiet(MLPClassifier((8,), max_iter=2, random_state=0)
                .set_callbacks(CSVLogger(tmp_path / "log.csv"), History()), X, y)
    bpcore.save(est, tmp_path / "est.bpcore")
    back = bpcore.load(tmp_path / "est.bpcore")
    assert not hasattr(back, "_skl_callbacks")      # hooks of later fits, not state
    assert_array_equal(back.predict_proba(X), est.predict_proba(X))
    import pickle
    again = pickle.loads(pickle.dumps(est))
    assert [type(cb) for cb in again._skl_callbacks] == [CSVLogger, History]
