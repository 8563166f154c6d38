"""NeuralNetClassifier / NeuralNetRegressor against independent oracles:
scikit-learn's MLP (defaults), bpcore.train with the same network and options
(toolbox options), compute_sample_weight (class_weight), torch's schedules via
bpcore.schedules (rates), and scikit-learn's own callbacks."""
import inspect
import os
import pickle
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
import sklearn.neural_network as sk
from sklearn.base import clone
from sklearn.datasets import load_diabetes, load_iris, load_wine, make_multilabel_classification
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import mean_absolute_error
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils import check_random_state
from sklearn.utils.class_weight import compute_sample_weight
from sklearn.utils.estimator_checks import parametrize_with_checks

import bpcore
from bpcore import NeuralNetClassifier, NeuralNetRegressor
from bpcore._sklearn_compat import HAS_CALLBACKS, HAS_MLP_LOSS_AND_SAMPLE_WEIGHT
from bpcore.schedules import CosineAnnealingLR, StepLR

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


@pytest.fixture(scope="module")
def iris():
    X, y = load_iris(return_X_y=True)
    return StandardScaler().fit_transform(X), y


@pytest.fixture(scope="module")
def diabetes():
    X, y = load_diabetes(return_X_y=True)
    return StandardScaler().fit_transform(X), (y - y.mean()) / y.std()


# ---------------------------------------------------------------------------
# scikit-learn's estimator checks
# ---------------------------------------------------------------------------

BN_DROPOUT = dict(hidden_layer_sizes=(16, 16), batch_norm=True, dropout=0.1, solver="adamw",
                  learning_rate="cosine", max_iter=100)
# (Not "cosine": a fit that runs all max_iter epochs ends the cosine at a
# rate of exactly 0, which the optimizer refuses when partial_fit continues.)
BN = dict(hidden_layer_sizes=(16, 16), batch_norm=True, solver="adamw",
          learning_rate="cosine_restarts", max_iter=100)
HUBER = dict(hidden_layer_sizes=(16, 16), loss="huber", residual=True, clip_norm=1.0,
             clip_value=0.5, max_iter=100)

# Batch norm's statistics are weighted by the sample weights and dropout's
# masks are keyed by each row's content (copies of a row draw the same masks,
# as the row with weight w does), so BN and BN + dropout pass the
# sample-weight-equivalence checks exactly, with no expected failure.

@parametrize_with_checks([
    NeuralNetClassifier(max_iter=100),
    NeuralNetRegressor(max_iter=100),
    NeuralNetClassifier(solver="lbfgs", max_iter=100),
    NeuralNetClassifier(**BN_DROPOUT),
    NeuralNetRegressor(**BN_DROPOUT),
    NeuralNetClassifier(**BN),
    NeuralNetRegressor(**BN),
    NeuralNetRegressor(**HUBER),
    NeuralNetClassifier(hidden_layer_sizes=(16, 16), residual=True, clip_norm=1.0,
                        solver="nadam", learning_rate="onecycle",
                        max_iter=100),
    NeuralNetRegressor(hidden_layer_sizes=(16, 16), activation=["gelu", "selu"], max_iter=100),
    # scikit-learn's parameters with the target scaled (the toolbox ones
    # above scale it too: target_scaling='auto').
    NeuralNetRegressor(target_scaling="standard", max_iter=100),
])
def test_sklearn_estimator_checks(estimator, check):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        # check_regressor_data_not_an_array's targets (std ~40) are far from
        # the output range: at scikit-learn's parameters 'auto' keeps y as is
        # and says so, by design (tests/test_target_scaling.py checks the
        # warning); here it is noise in every test run's summary.
        warnings.filterwarnings("ignore", "The target has mean", UserWarning)
        check(estimator)


# ---------------------------------------------------------------------------
# The drop-in's parameters, then the toolbox's
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("ours, theirs", [(NeuralNetClassifier, sk.MLPClassifier),
                                          (NeuralNetRegressor, sk.MLPRegressor)])
def test_every_sklearn_parameter_with_its_default(ours, theirs):
    mine = inspect.signature(ours).parameters
    for name, p in inspect.signature(theirs).parameters.items():
        assert (mine[name].kind, mine[name].default) == (p.kind, p.default), name
    extra = set(mine) - set(inspect.signature(theirs).parameters)
    expected = {"init", "dropout", "batch_norm", "residual", "l1", "max_norm", "clip_norm",
                "clip_value", "weight_decay", "restore_best_weights", "scoring"}
    expected |= {"class_weight"} if ours is NeuralNetClassifier else {"huber_delta",
                                                                      "target_scaling"}
    if ours is NeuralNetRegressor and not HAS_MLP_LOSS_AND_SAMPLE_WEIGHT:
        expected.add("loss")  # scikit-learn 1.6's MLPRegressor has none
    assert extra == expected
    assert "NeuralNetClassifier" in bpcore.__all__ and "NeuralNetRegressor" in bpcore.__all__


# ---------------------------------------------------------------------------
# Parity with scikit-learn at the defaults
# ---------------------------------------------------------------------------

def _rel(a, b):
    a, b = np.asarray(a, float), np.asarray(b, float)
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-300))


@pytest.mark.parametrize("kind", ["classifier", "regressor"])
@pytest.mark.parametrize("solver", ["adam", "sgd"])
@pytest.mark.parametrize("early_stopping", [False, True])
def test_defaults_reproduce_sklearn(iris, diabetes, kind, solver, early_stopping):
    X, y = iris if kind == "classifier" else diabetes
    ours = NeuralNetClassifier if kind == "classifier" else NeuralNetRegressor
    theirs = sk.MLPClassifier if kind == "classifier" else sk.MLPRegressor
    kw = dict(hidden_layer_sizes=(20, 10), solver=solver, max_iter=60, random_state=3,
              early_stopping=early_stopping, learning_rate_init=0.01, batch_size=32)
    a = theirs(**kw).fit(X, y)
    b = ours(**kw).fit(X, y)
    assert b.n_iter_ == a.n_iter_
    assert _rel(b.loss_curve_, a.loss_curve_) < 1e-10
    for cb, ca in zip(b.coefs_ + b.intercepts_, a.coefs_ + a.intercepts_):
        assert _rel(cb, ca) < 1e-9
    if early_stopping:
        assert _rel(b.validation_scores_, a.validation_scores_) < 1e-12
        assert b.best_validation_score_ == pytest.approx(a.best_validation_score_, rel=1e-12)
        np.testing.assert_allclose(b.history_.val_score, a.validation_scores_, rtol=1e-12)
    np.testing.assert_allclose(b.history_.loss, a.loss_curve_, rtol=1e-10)
    np.testing.assert_allclose(b.predict(X), a.predict(X), rtol=1e-8, atol=1e-10)


def test_lbfgs_reproduces_sklearn(iris):
    X, y = iris
    a = sk.MLPClassifier((10,), solver="lbfgs", max_iter=50, random_state=0).fit(X, y)
    b = NeuralNetClassifier((10,), solver="lbfgs", max_iter=50, random_state=0).fit(X, y)
    assert b.n_iter_ == a.n_iter_
    np.testing.assert_allclose(b.predict_proba(X), a.predict_proba(X), rtol=1e-6, atol=1e-9)
    assert len(b.history_) == 1 and b.history_.loss[0] == pytest.approx(a.loss_)


# ---------------------------------------------------------------------------
# Toolbox options = bpcore.train with the same network and options
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("solver, opt", [
    ("adamw", lambda: bpcore.AdamW(0.01, weight_decay=0.05)),
    ("nadam", lambda: bpcore.NAdam(0.01)),
    ("rmsprop", lambda: bpcore.RMSProp(0.01)),
    ("adagrad", lambda: bpcore.AdaGrad(0.01)),
    ("sgd", lambda: bpcore.SGD(0.01, momentum=0.9, nesterov=True)),
])
def test_toolbox_options_equal_core_train(diabetes, solver, opt):
    X, y = diabetes
    options = dict(l1=1e-3, max_norm=2.0, clip_norm=1.0, clip_value=0.3)
    est = NeuralNetRegressor(hidden_layer_sizes=(16, 16), solver=solver, learning_rate_init=0.01,
                             weight_decay=0.05, init="he_uniform", residual=True, alpha=1e-3,
                             batch_size=50, max_iter=7, n_iter_no_change=100, random_state=5,
                             **options).fit(X, y)
    rs = check_random_state(5)
    net = bpcore.Network([X.shape[1], 16, 16, 1], init="he_uniform", residual=True,
                         random_state=rs)
    h = bpcore.train(net, X, y.reshape(-1, 1), optimizer=opt(), epochs=7, batch_size=50,
                     random_state=rs, alpha=1e-3, **options)
    np.testing.assert_allclose(est.history_.loss, h.loss, rtol=1e-12)
    np.testing.assert_allclose(est._net.params, net.params, rtol=1e-12, atol=1e-14)


def test_batch_norm_dropout_equal_core_train(iris):
    X, y = iris
    est = NeuralNetClassifier((8, 8), batch_norm=True, dropout=[0.2, 0.1], batch_size=40,
                              max_iter=4, n_iter_no_change=100, random_state=1).fit(X, y)
    rs = check_random_state(1)
    net = bpcore.Network([4, 8, 8, 3], output="softmax", loss="log_loss", batch_norm=True,
                         dropout=[0.2, 0.1], random_state=rs)
    Y = np.eye(3)[y]
    h = bpcore.train(net, X, Y, optimizer=bpcore.Adam(0.001), epochs=4, batch_size=40,
                     random_state=rs, alpha=1e-4)
    np.testing.assert_allclose(est.history_.loss, h.loss, rtol=1e-12)
    np.testing.assert_allclose(est._net.params, net.params, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(est._net.buffers, net.buffers, rtol=1e-12, atol=1e-14)


def test_rprop_is_full_batch(diabetes):
    X, y = diabetes
    fits = [NeuralNetRegressor(solver="rprop", batch_size=bs, max_iter=5, random_state=0,
                               n_iter_no_change=100).fit(X, y) for bs in (7, "auto", 1000)]
    for f in fits[1:]:
        np.testing.assert_array_equal(f._net.params, fits[0]._net.params)
    rs = check_random_state(0)
    net = bpcore.Network([10, 100, 1], random_state=rs)
    h = bpcore.train(net, X, y.reshape(-1, 1), optimizer=bpcore.RPROP(0.001), epochs=5,
                     batch_size=len(X), random_state=rs, alpha=1e-4)
    np.testing.assert_allclose(fits[0].history_.loss, h.loss, rtol=1e-12)


def test_weight_decay_only_changes_adamw(diabetes):
    X, y = diabetes
    kw = dict(hidden_layer_sizes=(8,), max_iter=3, random_state=0)
    a = NeuralNetRegressor(**kw).fit(X, y)
    b = NeuralNetRegressor(weight_decay=0.5, **kw).fit(X, y)
    np.testing.assert_array_equal(a._net.params, b._net.params)
    c = NeuralNetRegressor(solver="adamw", weight_decay=0.0, **kw).fit(X, y)
    d = NeuralNetRegressor(solver="adamw", weight_decay=0.5, **kw).fit(X, y)
    assert not np.allclose(c._net.params, d._net.params)


# ---------------------------------------------------------------------------
# Schedules
# ---------------------------------------------------------------------------

def test_named_schedule_rates_are_the_documented_schedules(iris):
    X, y = iris
    est = NeuralNetClassifier((8,), learning_rate="cosine", learning_rate_init=0.05,
                              max_iter=12, n_iter_no_change=100, random_state=0).fit(X, y)
    ref = CosineAnnealingLR(T_max=12)
    ref.bind(0.05, 1)
    np.testing.assert_allclose(est.history_.lr, [ref.epoch_rates(e)[0] for e in range(12)],
                               rtol=1e-15)
    est = NeuralNetClassifier((8,), learning_rate="step", learning_rate_init=0.05,
                              solver="sgd", max_iter=9, n_iter_no_change=100,
                              random_state=0).fit(X, y)
    assert est.history_.lr == pytest.approx([0.05] * 3 + [0.005] * 3 + [0.0005] * 3)


def test_onecycle_covers_max_iter_epochs(iris):
    X, y = iris
    est = NeuralNetClassifier((8,), learning_rate="onecycle", learning_rate_init=0.1,
                              batch_size=50, max_iter=10, n_iter_no_change=100,
                              random_state=0).fit(X, y)
    assert len(est.history_) == 10
    assert max(est.history_.lr) < 0.1 and est.history_.lr[0] == pytest.approx(0.1 / 25)


def test_schedule_object_is_copied_not_mutated(iris):
    X, y = iris
    sched = StepLR(step_size=2, gamma=0.5)
    est = NeuralNetClassifier((8,), learning_rate=sched, learning_rate_init=0.1, max_iter=6,
                              n_iter_no_change=100, random_state=0).fit(X, y)
    assert not hasattr(sched, "base_lr")
    assert est.history_.lr == pytest.approx([0.1, 0.1, 0.05, 0.05, 0.025, 0.025])


def test_plateau_cuts_the_rate_when_the_validation_loss_stalls(diabetes):
    X, y = diabetes
    # 40 training samples: the validation loss soon rises (overfitting) while
    # the training loss still falls; 'plateau' watches the validation loss.
    est = NeuralNetRegressor(hidden_layer_sizes=(64,), learning_rate="plateau",
                             learning_rate_init=0.01, max_iter=200, random_state=0)
    est.fit(X[:40], y[:40], validation_data=(X[40:], y[40:]))
    h = est.history_
    cuts = [e for e in range(1, len(h)) if h.lr[e] < h.lr[e - 1]]
    assert cuts and all(h.lr[e] == pytest.approx(0.1 * h.lr[e - 1]) for e in cuts)
    # torch's rule: a cut after patience = n_iter_no_change // 2 = 5 epochs
    # without a relative improvement of 1e-4 over the best validation loss.
    first = cuts[0]
    best = min(h.val_loss[:first - 5])
    assert all(v > best * (1 - 1e-4) for v in h.val_loss[first - 5:first])


# ---------------------------------------------------------------------------
# class_weight, validation data, early stopping, restore_best_weights
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("class_weight", ["balanced", {0: 1.0, 1: 3.0, 2: 0.5}])
@pytest.mark.parametrize("with_sw", [False, True])
def test_class_weight_equals_sample_weight(iris, class_weight, with_sw):
    X, y = iris[0][:130], iris[1][:130]
    sw = np.linspace(0.5, 2.0, len(y)) if with_sw else None
    kw = dict(hidden_layer_sizes=(8,), max_iter=10, random_state=0)
    a = NeuralNetClassifier(class_weight=class_weight, **kw).fit(X, y, sample_weight=sw)
    expected = compute_sample_weight(class_weight, y) * (1.0 if sw is None else sw)
    b = NeuralNetClassifier(**kw).fit(X, y, sample_weight=expected)
    np.testing.assert_array_equal(a._net.params, b._net.params)
    np.testing.assert_array_equal(a.loss_curve_, b.loss_curve_)


def test_class_weight_errors(iris):
    X, y = iris
    with pytest.raises(ValueError, match="class_weight='balanced' is not supported by "
                                         "partial_fit"):
        NeuralNetClassifier(class_weight="balanced").partial_fit(X, y, classes=[0, 1, 2])
    Xm, Ym = make_multilabel_classification(n_samples=30, random_state=0)
    with pytest.raises(ValueError, match="class_weight supports single-output"):
        NeuralNetClassifier(class_weight="balanced").fit(Xm, Ym)


def test_validation_data_logs_and_stops(iris):
    X, y = iris
    Xt, yt, Xv, yv = X[::2], y[::2], X[1::2], y[1::2]
    est = NeuralNetClassifier((16,), max_iter=15, learning_rate_init=0.01, random_state=0)
    est.fit(Xt, yt, validation_data=(Xv, yv))
    h = est.history_
    assert len(h.val_loss) == len(h.val_score) == len(h.loss) == 15
    # The last epoch's values, from the final weights.
    assert h.val_score[-1] == pytest.approx(est.score(Xv, yv))
    proba = est.predict_proba(Xv)
    assert h.val_loss[-1] == pytest.approx(-np.mean(np.log(proba[np.arange(len(yv)), yv])),
                                           rel=1e-10)
    assert all(t >= 0 for t in h.epoch_time)
    es = NeuralNetClassifier((16,), max_iter=300, early_stopping=True, n_iter_no_change=3,
                             learning_rate_init=0.05, random_state=0)
    es.fit(Xt, yt, validation_data=(Xv, yv))
    assert es.n_iter_ < 300
    assert es.best_validation_score_ == max(es.history_.val_score)
    assert es.score(Xv, yv) == es.best_validation_score_


def test_validation_data_errors(iris):
    X, y = iris
    est = NeuralNetClassifier(max_iter=2)
    with pytest.raises(ValueError, match="validation_data must be a tuple"):
        est.fit(X, y, validation_data=X)
    with pytest.raises(ValueError, match="labels not seen in fit"):
        est.fit(X, y, validation_data=(X, y + 5))
    with pytest.raises(ValueError, match="X has 3 features"):
        est.fit(X, y, validation_data=(X[:, :3], y))


def test_early_stopping_on_a_scorer(diabetes):
    X, y = diabetes
    Xt, yt, Xv, yv = X[::2], y[::2], X[1::2], y[1::2]
    est = NeuralNetRegressor(hidden_layer_sizes=(16,), early_stopping=True,
                             scoring="neg_mean_absolute_error", max_iter=200,
                             n_iter_no_change=5, learning_rate_init=0.01, random_state=0)
    est.fit(Xt, yt, validation_data=(Xv, yv))
    scores = est.validation_scores_
    assert est.history_.val_score == scores and all(s < 0 for s in scores)
    assert est.n_iter_ < 200
    # The best MAE is the restored model's.
    assert -mean_absolute_error(yv, est.predict(Xv)) == pytest.approx(max(scores), rel=1e-12)


def test_early_stopping_on_the_loss(diabetes):
    X, y = diabetes
    est = NeuralNetRegressor(hidden_layer_sizes=(16,), early_stopping=True, scoring="loss", max_iter=200,
                             n_iter_no_change=5, learning_rate_init=0.01, random_state=0)
    est.fit(X, y)
    np.testing.assert_allclose(est.validation_scores_, -np.asarray(est.history_.val_loss))


@pytest.mark.parametrize("restore", [True, False])
def test_restore_best_weights_params_and_buffers(iris, restore):
    X, y = iris
    Xt, yt, Xv, yv = X[::2], y[::2], X[1::2], y[1::2]

    est = NeuralNetClassifier((16,), batch_norm=True, early_stopping=True, n_iter_no_change=2,
                              tol=0.5, max_iter=50, learning_rate_init=0.05, batch_size=20,
                              restore_best_weights=restore, random_state=0)
    best = {}
    orig = est._update_no_improvement_count

    def spy(*args, **kw):
        orig(*args, **kw)
        if est.validation_scores_[-1] == est.best_validation_score_:
            best["params"] = est._net.params.copy()
            best["buffers"] = est._net.buffers.copy()
        best["last"] = (est._net.params.copy(), est._net.buffers.copy())

    est._update_no_improvement_count = spy
    est.fit(Xt, yt, validation_data=(Xv, yv))
    assert est.n_iter_ > 1
    if restore:
        np.testing.assert_array_equal(est._net.params, best["params"])
        np.testing.assert_array_equal(est._net.buffers, best["buffers"])
    else:
        np.testing.assert_array_equal(est._net.params, best["last"][0])
        np.testing.assert_array_equal(est._net.buffers, best["last"][1])
        assert not np.array_equal(est._net.buffers, best["buffers"])


# ---------------------------------------------------------------------------
# Data: float32, sparse, multilabel, multi-output, tiny batches for batch norm
# ---------------------------------------------------------------------------

def test_float32_kept(iris):
    X, y = iris
    est = NeuralNetClassifier((8,), batch_norm=True, max_iter=3).fit(X.astype(np.float32), y)
    assert est.coefs_[0].dtype == np.float32
    assert est.predict_proba(X.astype(np.float32)).dtype == np.float32


def test_sparse_matches_dense(diabetes):
    X, y = diabetes
    X = np.where(np.abs(X) > 1, X, 0.0)
    kw = dict(hidden_layer_sizes=(8,), solver="nadam", l1=1e-3, max_iter=4, random_state=0)
    a = NeuralNetRegressor(**kw).fit(X, y)
    b = NeuralNetRegressor(**kw).fit(sp.csr_matrix(X), y)
    np.testing.assert_allclose(a._net.params, b._net.params, rtol=1e-10, atol=1e-12)


def test_multilabel_and_multioutput(diabetes):
    X, Y = make_multilabel_classification(n_samples=60, n_classes=4, random_state=0)
    clf = NeuralNetClassifier((8,), dropout=0.1, max_iter=5, random_state=0).fit(X, Y)
    assert clf.predict(X).shape == Y.shape
    assert clf.predict_proba(X).shape == Y.shape
    X, y = diabetes
    Y2 = np.c_[y, -y]
    reg = NeuralNetRegressor(hidden_layer_sizes=(8,), loss="absolute_error", max_iter=5, random_state=0).fit(X, Y2)
    assert reg.predict(X).shape == Y2.shape


def test_predict_log_proba(iris):
    X, y = iris
    est = NeuralNetClassifier((8,), max_iter=5, random_state=0).fit(X, y)
    np.testing.assert_allclose(est.predict_log_proba(X), np.log(est.predict_proba(X)))


def test_batch_norm_tiny_data(iris):
    X, y = iris
    # 201 samples in batches of 200 would leave one sample alone: 201 in one batch.
    Xb, yb = np.tile(X, (2, 1))[:201], np.tile(y, 2)[:201]
    est = NeuralNetClassifier((8,), batch_norm=True, max_iter=2, random_state=0)
    est.fit(Xb, yb)
    assert est.predict(Xb).shape == (201,)
    with pytest.raises(ValueError, match="n_samples = 1"):
        NeuralNetClassifier((8,), batch_norm=True).fit(X[:1], y[:1])


# ---------------------------------------------------------------------------
# partial_fit, warm_start, clone, pickle, Pipeline, GridSearchCV
# ---------------------------------------------------------------------------

def test_partial_fit_appends_history(iris):
    X, y = iris
    est = NeuralNetClassifier((8,), solver="rmsprop", random_state=0)
    for _ in range(3):
        est.partial_fit(X, y, classes=[0, 1, 2])
    assert len(est.history_) == 3 and len(est.loss_curve_) == 3
    assert not hasattr(NeuralNetClassifier(solver="lbfgs"), "partial_fit")


def test_warm_start_continues(iris):
    X, y = iris
    est = NeuralNetClassifier((8,), warm_start=True, max_iter=5, n_iter_no_change=100,
                              random_state=0)
    est.fit(X, y)
    first = est.loss_curve_[-1]
    est.fit(X, y)
    assert len(est.loss_curve_) == 10 and est.loss_curve_[5] < first * 1.01


@pytest.mark.parametrize("Est", [NeuralNetClassifier, NeuralNetRegressor])
def test_clone_and_pickle(iris, Est):
    X, y = iris
    est = Est(hidden_layer_sizes=(8, 8), batch_norm=True, learning_rate=StepLR(2),
              max_iter=4, random_state=0).fit(X, y)
    c = clone(est)
    assert c.get_params()["batch_norm"] is True and not hasattr(c, "coefs_")
    loaded = pickle.loads(pickle.dumps(est))
    np.testing.assert_array_equal(loaded.predict(X), est.predict(X))
    assert loaded.history_.loss == est.history_.loss


def test_pipeline_grid_search(iris):
    X, y = iris
    pipe = make_pipeline(StandardScaler(), NeuralNetClassifier((16,), max_iter=20,
                                                               random_state=0))
    grid = GridSearchCV(pipe, {"neuralnetclassifier__dropout": [0.0, 0.2],
                               "neuralnetclassifier__batch_norm": [False, True]}, cv=2)
    grid.fit(X, y)
    assert len(grid.cv_results_["params"]) == 4 and grid.best_score_ > 0.6


# ---------------------------------------------------------------------------
# Parameter validation
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("param, value, match", [
    ("solver", "lion", "The 'solver' parameter of NeuralNetClassifier must be a str among"),
    ("learning_rate", "warm", "The 'learning_rate' parameter of NeuralNetClassifier must be"),
    ("dropout", 1.0, r"The 'dropout' parameter of NeuralNetClassifier must be a float in "
                     r"the range \[0.0, 1.0\)"),
    ("init", "zeros", "The 'init' parameter of NeuralNetClassifier must be a str among"),
    ("l1", -1.0, "The 'l1' parameter"),
    ("max_norm", 0.0, "The 'max_norm' parameter"),
    ("clip_norm", -1.0, "The 'clip_norm' parameter"),
    ("clip_value", "big", "The 'clip_value' parameter"),
    ("weight_decay", -0.1, "The 'weight_decay' parameter"),
    ("class_weight", "even", "The 'class_weight' parameter"),
    ("restore_best_weights", "yes", "The 'restore_best_weights' parameter"),
    ("scoring", 3, "The 'scoring' parameter"),
    ("batch_norm", "yes", "The 'batch_norm' parameter"),
])
def test_invalid_parameters(iris, param, value, match):
    X, y = iris
    with pytest.raises((ValueError, TypeError), match=match):
        NeuralNetClassifier(**{param: value}).fit(X, y)


def test_invalid_regressor_parameters(diabetes):
    X, y = diabetes
    with pytest.raises(ValueError, match="The 'loss' parameter of NeuralNetRegressor"):
        NeuralNetRegressor(loss="hinge").fit(X, y)
    with pytest.raises(ValueError, match="The 'huber_delta' parameter"):
        NeuralNetRegressor(huber_delta=0).fit(X, y)
    with pytest.raises(ValueError, match="is not a valid scoring value"):
        NeuralNetRegressor(scoring="nope", max_iter=1).fit(X, y)
    with pytest.raises(ValueError, match="solver='lbfgs' trains on the whole data"):
        NeuralNetRegressor(solver="lbfgs", dropout=0.1).fit(X, y)
    with pytest.raises(ValueError, match="per-layer|one per|dropout"):
        NeuralNetRegressor(hidden_layer_sizes=(4, 4), dropout=[0.1], max_iter=1).fit(X, y)


# ---------------------------------------------------------------------------
# scikit-learn's callback protocol
# ---------------------------------------------------------------------------

# Before 1.9 it does not exist and set_callbacks is refused (tested in
# test_sklearn_compat.py).
needs_sklearn_callbacks = pytest.mark.skipif(
    not HAS_CALLBACKS,
    reason="scikit-learn's callback protocol (sklearn.callback) is new in 1.9")


class _Recorder:
    """A sklearn.callback FitCallback recording the task tree; stops after
    ``stop_after`` epoch subtasks."""

    def __init__(self, stop_after=None):
        self.stop_after = stop_after
        self.events = []
        self.scores = []

    def setup(self, estimator, context):
        self.events.append(("setup", context.task_name))

    def teardown(self, estimator, context):
        self.events.append(("teardown", context.task_name))

    def on_fit_task_begin(self, estimator, context, *, X=None, y=None, metadata=None,
                          fitted_estimator=None):
        self.events.append(("begin", context.task_name, context.task_id))

    def on_fit_task_end(self, estimator, context, *, X=None, y=None, metadata=None,
                        fitted_estimator=None):
        self.events.append(("end", context.task_name, context.task_id))
        if context.parent is not None and fitted_estimator is not None:
            self.scores.append(fitted_estimator.score(X, y))
        ends = sum(1 for e in self.events if e[0] == "end" and e[1] != "fit")
        return self.stop_after is not None and ends >= self.stop_after


@needs_sklearn_callbacks
@pytest.mark.parametrize("Est", [bpcore.MLPClassifier, NeuralNetClassifier])
def test_sklearn_callbacks_one_task_per_fit_one_subtask_per_epoch(iris, Est):
    X, y = iris
    rec = _Recorder()
    est = Est((8,), max_iter=4, random_state=0).set_callbacks(rec).fit(X, y)
    epochs = [e for e in rec.events if e[1] == "epoch"]
    assert epochs == [(k, "epoch", i) for i in range(4) for k in ("begin", "end")]
    assert rec.events[0] == ("setup", "fit") and rec.events[1] == ("begin", "fit", 0)
    assert rec.events[-2] == ("end", "fit", 0) and rec.events[-1] == ("teardown", "fit")
    # fitted_estimator is a frozen copy at the end of each epoch.
    ref = Est((8,), max_iter=2, random_state=0).fit(X, y)
    assert rec.scores[1] == ref.score(X, y)
    assert est.score(X, y) == rec.scores[-1]


@needs_sklearn_callbacks
@pytest.mark.parametrize("Est", [bpcore.MLPRegressor, NeuralNetRegressor])
def test_sklearn_callback_stops_training(diabetes, Est):
    X, y = diabetes
    rec = _Recorder(stop_after=3)
    est = Est(hidden_layer_sizes=(8,), max_iter=50, random_state=0).set_callbacks(rec)
    est.fit(X, y)
    assert est.n_iter_ == 3
    ref = Est(hidden_layer_sizes=(8,), max_iter=3, random_state=0).fit(X, y)
    np.testing.assert_array_equal(est.predict(X), ref.predict(X))


@needs_sklearn_callbacks
def test_sklearn_callbacks_on_lbfgs_and_partial_fit(iris):
    X, y = iris
    rec = _Recorder(stop_after=2)
    est = bpcore.MLPClassifier((8,), solver="lbfgs", max_iter=30, random_state=0)
    est.set_callbacks(rec).fit(X, y)
    assert est.n_iter_ == 2
    assert [e for e in rec.events if e[1] == "lbfgs-iter"][:4] == [
        ("begin", "lbfgs-iter", 0), ("end", "lbfgs-iter", 0),
        ("begin", "lbfgs-iter", 1), ("end", "lbfgs-iter", 1)]
    rec = _Recorder()
    NeuralNetClassifier((8,)).set_callbacks(rec).partial_fit(X, y, classes=[0, 1, 2])
    assert [e for e in rec.events if e[1] == "epoch"] == [("begin", "epoch", 0),
                                                          ("end", "epoch", 0)]


@needs_sklearn_callbacks
def test_sklearn_progress_bar_and_scoring_monitor(iris):
    pytest.importorskip("rich", reason="sklearn.callback.ProgressBar draws with rich")
    from sklearn.callback import ProgressBar, ScoringMonitor
    X, y = iris
    for Est in (bpcore.MLPClassifier, NeuralNetClassifier):
        est = Est((8,), max_iter=3, random_state=0).set_callbacks(ProgressBar())
        est.fit(X, y)
        assert est.n_iter_ == 3
    monitor = ScoringMonitor(scoring="accuracy")
    NeuralNetClassifier((8,), max_iter=3, random_state=0).set_callbacks(monitor).fit(X, y)
    rows = [r for r in monitor.get_logs().data if r["task_name"] == "epoch"]
    ref = [NeuralNetClassifier((8,), max_iter=k, random_state=0).fit(X, y).score(X, y)
           for k in (1, 2, 3)]
    assert [r["accuracy"] for r in rows] == ref


@needs_sklearn_callbacks
def test_callbacks_do_not_change_the_numbers(iris):
    X, y = iris
    a = bpcore.MLPClassifier((8,), max_iter=5, random_state=0).fit(X, y)
    b = bpcore.MLPClassifier((8,), max_iter=5, random_state=0).set_callbacks(_Recorder())
    b.fit(X, y)
    np.testing.assert_array_equal(a.coefs_[0], b.coefs_[0])
    assert a.loss_curve_ == b.loss_curve_


# ---------------------------------------------------------------------------
# examples/ run, so they cannot rot
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("script", sorted(p.name for p in (ROOT / "examples").glob("*.py")))
def test_example_runs(script):
    env = dict(os.environ, BPCORE_EXAMPLE_QUICK="1")
    out = subprocess.run([sys.executable, str(ROOT / "examples" / script)], env=env,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip()


@pytest.mark.parametrize("kw", [dict(learning_rate="onecycle"),
                                dict(scoring="accuracy", early_stopping=True),
                                dict(batch_norm=True, dropout=0.1, solver="adamw",
                                     learning_rate="cosine")])
def test_bpcore_save_round_trip(iris, tmp_path, kw):
    X, y = iris
    est = NeuralNetClassifier((8,), max_iter=5, random_state=0, **kw).fit(X, y)
    bpcore.save(est, tmp_path / "m.bp")
    loaded = bpcore.load(tmp_path / "m.bp")
    np.testing.assert_array_equal(loaded.predict_proba(X), est.predict_proba(X))


def test_onecycle_partial_fit_past_the_cycle_keeps_the_final_rate(iris):
    X, y = iris
    est = NeuralNetClassifier((8,), learning_rate="onecycle", learning_rate_init=0.1,
                              max_iter=3, random_state=0)
    for _ in range(5):
        est.partial_fit(X, y, classes=[0, 1, 2])
    lr = est.history_.lr
    assert len(lr) == 5 and lr[2] == lr[3] == lr[4] < lr[1]


def test_docstring_examples_run():
    import doctest

    import bpcore.toolbox
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        result = doctest.testmod(bpcore.toolbox, optionflags=doctest.ELLIPSIS)
    assert result.attempted >= 6 and result.failed == 0


@pytest.fixture(scope="module")
def dask_client():
    pytest.importorskip("dask", reason="dask arrays need the optional extra bpcore[dask]")
    distributed = pytest.importorskip("distributed", reason="needs bpcore[dask]")
    environ = dict(os.environ)   # the nanny leaves OMP_NUM_THREADS=1 behind
    try:
        with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                      dashboard_address=None) as cluster:
            with distributed.Client(cluster) as c:
                yield c
    finally:
        os.environ.clear()
        os.environ.update(environ)


@pytest.mark.parametrize("Est, data", [(NeuralNetClassifier, "iris"),
                                       (NeuralNetRegressor, "diabetes")])
def test_lbfgs_on_dask_arrays_equals_in_memory(dask_client, request, Est, data):
    import dask.array as da
    X, y = request.getfixturevalue(data)
    kw = dict(hidden_layer_sizes=(8,), solver="lbfgs", max_iter=30, l1=1e-3, random_state=0)
    mem = Est(**kw).fit(X, y)
    dsk = Est(**kw).fit(da.from_array(X, chunks=(40, -1)), da.from_array(y, chunks=40))
    assert dsk.n_iter_ == mem.n_iter_
    np.testing.assert_allclose(dsk._net.params, mem._net.params, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(dsk.predict(X), mem.predict(X), rtol=1e-6, atol=1e-8)
    with pytest.raises(ValueError, match="dask arrays train with solver='lbfgs'"):
        Est(hidden_layer_sizes=(8,)).fit(da.from_array(X, chunks=(40, -1)),
                                         da.from_array(y, chunks=40))


def test_toolbox_activations_are_estimator_parameters():
    """The toolbox estimators take every hidden activation (one name, or one
    per hidden layer); the drop-ins keep scikit-learn's four."""
    from sklearn.utils._param_validation import InvalidParameterError
    X, y = load_wine(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    for act in ("leaky_relu", "elu", "gelu", "silu", "softplus", "selu"):
        est = NeuralNetClassifier(hidden_layer_sizes=(8,), activation=act, max_iter=5,
                                  random_state=0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            est.fit(X, y)
        assert est.network_.activation == act
        np.testing.assert_allclose(est.predict_proba(X),
                                   est.network_.forward(X), rtol=1e-15)
    est = NeuralNetClassifier(hidden_layer_sizes=(8, 8), activation=["gelu", "tanh"],
                              max_iter=5, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.fit(X, y)
    assert est.network_.activation == ["gelu", "tanh"]
    with pytest.raises(InvalidParameterError, match="'activation' parameter of "
                       "NeuralNetClassifier must be a str among"):
        NeuralNetClassifier(activation="swish").fit(X, y)
    with pytest.raises(InvalidParameterError, match="'activation' parameter of MLPClassifier"):
        bpcore.MLPClassifier(activation="gelu").fit(X, y)
    with pytest.raises(AttributeError, match="not fitted yet"):
        NeuralNetClassifier().network_


@pytest.mark.parametrize("name", ["NeuralNetRegressor", "MLPRegressor"])
def test_a_refused_concurrent_partial_fit_leaves_the_running_one_untouched(name):
    """Issue #27, defect 6: a second thread's partial_fit was refused only at
    the network's lock, after it had replaced the running fit's state, and
    its cleanup (del self._scorer) then failed the running fit with an
    AttributeError. Now it is refused on entry, and the running fit ends
    exactly as it would alone."""
    import threading
    from bpcore import _engine, estimators
    rng = np.random.default_rng(0)
    Xb = rng.standard_normal((100_000, 32))
    yb = Xb[:, :2] @ np.ones((2, 2))
    params = dict(hidden_layer_sizes=(64,), batch_size=16, random_state=0)
    if name == "NeuralNetRegressor":
        params["scoring"] = "r2"
    cls = getattr(bpcore, name)

    def first_fit(est):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return est.partial_fit(Xb[:200], yb[:200])

    alone = first_fit(cls(**params)).partial_fit(Xb, yb)
    est = first_fit(cls(**params))
    errors = []

    def background():
        try:
            est.partial_fit(Xb, yb)
        except BaseException as exc:  # noqa: BLE001 -- reported below
            errors.append(exc)

    worker = threading.Thread(target=background)
    worker.start()
    lock = _engine._training_lock(est._net)
    while not lock.locked() and worker.is_alive():      # in the middle of its epoch
        time.sleep(0.0005)
    with pytest.raises(RuntimeError, match="already being (fitted|trained) by another "
                                           "thread") as refused:
        est.partial_fit(Xb[:100], yb[:100])
    worker.join()
    assert errors == []
    assert f"this {name} is already being fitted by another thread" in str(refused.value)
    np.testing.assert_array_equal(est._net.params, alone._net.params)
    assert est.n_iter_ == alone.n_iter_ and est.loss_curve_ == alone.loss_curve_
    assert id(est) not in getattr(estimators, "_fits_running", {})
    est.partial_fit(Xb[:100], yb[:100])       # and it can be fitted again


def test_divergence_hidden_by_dropout_is_reported():
    """Issue #27, defect 7: dropout masked the overflowing unit in every
    training batch, so the fit succeeded and predicted inf. The fit now
    reports it (the toolbox's docs promise divergence is reported); seeds
    whose model predicts finite values still fit."""
    outcomes = {}
    for seed in range(10):
        est = bpcore.NeuralNetRegressor(loss="poisson", hidden_layer_sizes=(1,), dropout=0.95,
                                        max_iter=1, random_state=seed)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            try:
                est.fit([[20409.0]], [2.56])
            except ValueError as exc:
                assert "Training diverged: the fitted network predicts non-finite values" in \
                    str(exc) and "dropout or batch norm hid" in str(exc)
                outcomes[seed] = "refused"
                continue
        assert np.isfinite(est.predict([[20409.0]])).all(), seed
        outcomes[seed] = "finite"
    assert set(outcomes.values()) == {"refused", "finite"}, outcomes
