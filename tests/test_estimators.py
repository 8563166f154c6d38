"""The scikit-learn API of bpcore.MLPClassifier and bpcore.MLPRegressor.

- scikit-learn's estimator checks, with no expected failures;
- the same constructor, parameter constraints, tags and methods as
  scikit-learn's MLPs;
- bad input raises scikit-learn's exceptions with scikit-learn's messages
  (each case is run through both libraries and compared);
- clone, pickle, Pipeline, GridSearchCV, concurrent predict;
- Ctrl-C, divergence, float32, sparse input, user-assigned weights, and the
  thin-layer contract (one engine call per epoch).

Numerical agreement with scikit-learn is in test_sklearn_parity.py.
"""
import copy
import inspect
import os
import pickle
import signal
import threading
import time
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
import sklearn
from numpy.testing import assert_allclose, assert_array_equal
from sklearn import neural_network as sk
from sklearn.base import clone
from sklearn.datasets import make_classification, make_regression
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils import get_tags
from sklearn.utils.estimator_checks import parametrize_with_checks

import bpcore
from bpcore import _engine, estimators
from bpcore._sklearn_compat import HAS_MLP_LOSS_AND_SAMPLE_WEIGHT

ESTIMATORS = ["MLPClassifier", "MLPRegressor"]

X_CLF, Y_CLF = make_classification(n_samples=120, n_features=5, n_informative=3,
                                   n_classes=3, random_state=0)
X_REG, Y_REG = make_regression(n_samples=120, n_features=5, noise=1.0, random_state=0)
Y_REG = Y_REG / Y_REG.std()


def data_for(name):
    return (X_CLF, Y_CLF) if name == "MLPClassifier" else (X_REG, Y_REG)


def quiet_fit(est, X, y, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return est.fit(X, y, **kwargs)


# ---------------------------------------------------------------------------
# scikit-learn's estimator checks
# ---------------------------------------------------------------------------

# max_iter=100 as in scikit-learn's own test configuration for its MLPs.
@parametrize_with_checks([
    bpcore.MLPClassifier(max_iter=100),
    bpcore.MLPRegressor(max_iter=100),
    bpcore.MLPClassifier(solver="lbfgs", max_iter=100),
    bpcore.MLPRegressor(solver="lbfgs", max_iter=100),
])
def test_sklearn_estimator_checks(estimator, check):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        check(estimator)


# ---------------------------------------------------------------------------
# The same API as scikit-learn's
# ---------------------------------------------------------------------------

def _beyond_sklearn(name):
    """bpcore's parameters that the installed scikit-learn's ``name`` lacks:
    1.7's ``loss`` of MLPRegressor, kept (keyword-only) on 1.6."""
    if name == "MLPRegressor" and not HAS_MLP_LOSS_AND_SAMPLE_WEIGHT:
        return {"loss"}
    return set()


@pytest.mark.parametrize("name", ESTIMATORS)
def test_constructor_matches_sklearn(name):
    ours = inspect.signature(getattr(bpcore, name)).parameters
    theirs = inspect.signature(getattr(sk, name)).parameters
    extra = _beyond_sklearn(name)
    assert [(p.name, p.kind, p.default) for p in ours.values() if p.name not in extra] == [
        (p.name, p.kind, p.default) for p in theirs.values()]
    assert all(ours[p].kind is inspect.Parameter.KEYWORD_ONLY for p in extra)
    params = getattr(bpcore, name)().get_params()
    assert {k: v for k, v in params.items() if k not in extra} == getattr(sk, name)().get_params()


@pytest.mark.parametrize("name", ESTIMATORS)
def test_parameter_constraints_match_sklearn(name):
    ours = getattr(bpcore, name)._parameter_constraints
    theirs = getattr(sk, name)._parameter_constraints
    extra = _beyond_sklearn(name)
    assert {k: [str(c) for c in v] for k, v in ours.items() if k not in extra} == {
        k: [str(c) for c in v] for k, v in theirs.items()}


@pytest.mark.parametrize("name", ESTIMATORS)
def test_tags_match_sklearn(name):
    assert get_tags(getattr(bpcore, name)()) == get_tags(getattr(sk, name)())


@pytest.mark.parametrize("name", ESTIMATORS)
def test_public_methods_match_sklearn(name):
    def public(cls):
        return {m for m in dir(cls) if not m.startswith("_")}
    # Plus scikit-learn's callback protocol, which its own MLPs lack (before
    # 1.9 it is refused: test_sklearn_compat.py), and on 1.6 the metadata
    # requests of the sample_weight that bpcore keeps.
    extra = {"set_callbacks"}
    if not HAS_MLP_LOSS_AND_SAMPLE_WEIGHT:
        extra |= {"set_fit_request", "set_partial_fit_request"}
    assert public(getattr(bpcore, name)) == public(getattr(sk, name)) | extra


@pytest.mark.parametrize("name", ESTIMATORS)
def test_unfitted_attributes_match_sklearn(name):
    # What __init__ stores, names and values: scikit-learn's classifier sets
    # loss="log_loss" without taking it as a parameter, and code reads it.
    ours, theirs = getattr(bpcore, name)(), getattr(sk, name)()
    assert vars(ours) == vars(theirs)
    params = ours.get_params()
    if not HAS_MLP_LOSS_AND_SAMPLE_WEIGHT and name == "MLPRegressor":
        del params["loss"]     # a parameter from 1.7 on; bpcore keeps it on 1.6
    assert params == theirs.get_params()
    assert (ours.loss, type(ours).__name__) in {("log_loss", "MLPClassifier"),
                                                ("squared_error", "MLPRegressor")}


def test_toolbox_classifier_sets_log_loss():
    from bpcore import NeuralNetClassifier
    clf = NeuralNetClassifier()
    assert clf.loss == "log_loss" and "loss" not in clf.get_params()


@pytest.mark.parametrize("name", ESTIMATORS)
@pytest.mark.parametrize("solver", ["adam", "sgd", "lbfgs"])
def test_partial_fit_only_for_stochastic_solvers(name, solver):
    est = getattr(bpcore, name)(solver=solver)
    assert hasattr(est, "partial_fit") == (solver != "lbfgs")
    if solver == "lbfgs":
        # scikit-learn's MLPRegressor forgets to call its check (its
        # available_if tests the bound method, which is always truthy), and
        # its partial_fit then runs a whole L-BFGS fit; bpcore refuses both,
        # as scikit-learn's MLPClassifier does.
        with pytest.raises(AttributeError, match=f"This '{name}' has no attribute "
                                                 "'partial_fit'") as info:
            est.partial_fit
        assert str(info.value.__cause__) == ("partial_fit is only available for stochastic "
                                             "optimizers. lbfgs is not stochastic.")


def test_classifier_attributes_and_outputs():
    clf = quiet_fit(bpcore.MLPClassifier(max_iter=5, random_state=0), X_CLF, Y_CLF)
    assert_array_equal(clf.classes_, [0, 1, 2])
    proba = clf.predict_proba(X_CLF)
    assert proba.shape == (120, 3)
    assert_allclose(proba.sum(axis=1), 1.0)
    assert_allclose(clf.predict_log_proba(X_CLF), np.log(proba))
    assert_array_equal(clf.predict(X_CLF), clf.classes_[proba.argmax(axis=1)])
    assert clf.n_layers_ == 3 and clf.n_outputs_ == 3 and clf.out_activation_ == "softmax"
    assert clf.n_features_in_ == 5 and clf.t_ == 5 * 120
    assert len(clf.loss_curve_) == clf.n_iter_ == 5


def test_coefs_are_views_of_the_flat_buffer():
    clf = quiet_fit(bpcore.MLPClassifier((4, 3), max_iter=3, random_state=0), X_CLF, Y_CLF)
    params = clf._net.params
    for a in clf.coefs_ + clf.intercepts_:
        assert np.shares_memory(a, params)
    # In scikit-learn's _pack order: all coefs, then all intercepts.
    assert_array_equal(params, np.concatenate([a.ravel() for a in clf.coefs_ + clf.intercepts_]))


# ---------------------------------------------------------------------------
# Errors: scikit-learn's exceptions and messages
# ---------------------------------------------------------------------------

def raised(action, module):
    try:
        action(module)
    except Exception as exc:  # noqa: BLE001 - we compare whatever is raised
        return type(exc).__name__, str(exc)
    raise AssertionError("nothing was raised")


def fitted(module, name, **params):
    est = getattr(module, name)(max_iter=2, random_state=0, **params)
    return quiet_fit(est, *data_for(name))


X_NAN = X_CLF.copy()
X_NAN[3, 2] = np.nan
X_INF = X_CLF.copy()
X_INF[5, 0] = np.inf

ERROR_CASES = {
    # input data
    "fit-nan": lambda m: m.MLPClassifier().fit(X_NAN, Y_CLF),
    "fit-inf": lambda m: m.MLPRegressor().fit(X_INF, Y_REG),
    "fit-nan-y": lambda m: m.MLPRegressor().fit(X_REG, np.where(Y_REG > 1, np.nan, Y_REG)),
    "fit-empty": lambda m: m.MLPClassifier().fit(np.empty((0, 5)), []),
    "fit-1d": lambda m: m.MLPRegressor().fit(X_REG[:, 0], Y_REG),
    "fit-3d": lambda m: m.MLPRegressor().fit(X_REG[:, :, None], Y_REG),
    "fit-y-none": lambda m: m.MLPClassifier().fit(X_CLF, None),
    "fit-lengths": lambda m: m.MLPClassifier().fit(X_CLF, Y_CLF[:-1]),
    "fit-strings": lambda m: m.MLPRegressor().fit([["a", "b"], ["c", "d"]], [1, 2]),
    "fit-complex": lambda m: m.MLPRegressor().fit(X_REG + 1j, Y_REG),
    "fit-continuous-labels": lambda m: m.MLPClassifier().fit(X_REG, Y_REG),
    "fit-sample-weight-shape": lambda m: m.MLPClassifier().fit(X_CLF, Y_CLF, np.ones(3)),
    "predict-unfitted": lambda m: m.MLPClassifier().predict(X_CLF),
    "predict-proba-unfitted": lambda m: m.MLPClassifier().predict_proba(X_CLF),
    "predict-nan": lambda m: fitted(m, "MLPClassifier").predict(X_NAN),
    "predict-inf": lambda m: fitted(m, "MLPRegressor").predict(X_INF),
    "predict-n-features": lambda m: fitted(m, "MLPClassifier").predict(X_CLF[:, :4]),
    "predict-proba-n-features": lambda m: fitted(m, "MLPClassifier").predict_proba(
        np.ones((2, 7))),
    "predict-1d": lambda m: fitted(m, "MLPRegressor").predict(X_REG[0]),
    "predict-empty": lambda m: fitted(m, "MLPRegressor").predict(np.empty((0, 5))),
    # labels and incremental fitting
    "partial-fit-no-classes": lambda m: m.MLPClassifier().partial_fit(X_CLF, Y_CLF),
    "partial-fit-unseen-label": lambda m: m.MLPClassifier().partial_fit(
        X_CLF, Y_CLF, classes=[0, 1, 2]).partial_fit(X_CLF[:3], [0, 1, 5]),
    "partial-fit-other-classes": lambda m: m.MLPClassifier().partial_fit(
        X_CLF, Y_CLF, classes=[0, 1, 2]).partial_fit(X_CLF, Y_CLF, classes=[0, 1]),
    "partial-fit-lbfgs": lambda m: m.MLPClassifier(solver="lbfgs").partial_fit(X_CLF, Y_CLF),
    "partial-fit-early-stopping": lambda m: m.MLPRegressor(early_stopping=True).partial_fit(
        X_REG, Y_REG),
    "partial-fit-n-features": lambda m: m.MLPRegressor().partial_fit(X_REG, Y_REG).partial_fit(
        X_REG[:, :3], Y_REG),
    "warm-start-other-classes": lambda m: fitted(m, "MLPClassifier", warm_start=True).fit(
        X_CLF, np.where(Y_CLF == 2, 1, Y_CLF)),
    "validation-set-too-small": lambda m: m.MLPRegressor(early_stopping=True).fit(
        X_REG[:5], Y_REG[:5]),
    "hidden-layer-zero": lambda m: m.MLPClassifier(hidden_layer_sizes=[3, 0]).fit(X_CLF, Y_CLF),
    "hidden-layer-negative": lambda m: m.MLPRegressor(hidden_layer_sizes=(4, -1)).fit(
        X_REG, Y_REG),
}

# Cases whose error scikit-learn 1.6 lacks: it has no sample_weight, and it
# early-stops on a one-sample validation set (an r2 of NaN).
NEW_IN_1_7 = {
    "fit-sample-weight-shape": "sample_weight in fit",
    "validation-set-too-small": "the 'validation set is too small' error",
}

BAD_PARAMS = [
    ("hidden_layer_sizes", 0), ("hidden_layer_sizes", "ten"), ("activation", "softmax"),
    ("solver", "rmsprop"), ("alpha", -1.0), ("batch_size", 0), ("batch_size", "big"),
    ("learning_rate", "cosine"), ("learning_rate_init", 0.0), ("power_t", -0.5),
    ("max_iter", 0), ("max_iter", 2.5), ("shuffle", "yes"), ("random_state", "seed"),
    ("tol", -1e-4), ("verbose", "loud"), ("warm_start", 1.5), ("momentum", 1.5),
    ("nesterovs_momentum", None), ("early_stopping", "no"), ("validation_fraction", 1.0),
    ("beta_1", 1.0), ("beta_2", -0.1), ("epsilon", 0.0), ("n_iter_no_change", 0),
    ("n_iter_no_change", 2.5), ("max_fun", 0),
]


@pytest.mark.parametrize("case", sorted(ERROR_CASES))
def test_errors_match_sklearn(case):
    action = ERROR_CASES[case]
    if case in NEW_IN_1_7 and not HAS_MLP_LOSS_AND_SAMPLE_WEIGHT:
        pytest.skip(f"{NEW_IN_1_7[case]} is new in scikit-learn 1.7; bpcore keeps it on "
                    f"the installed {sklearn.__version__} (test_sklearn_1_6_differences)")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert raised(action, bpcore) == raised(action, sk)


@pytest.mark.parametrize("name", ESTIMATORS)
@pytest.mark.parametrize("param,value", BAD_PARAMS)
def test_invalid_parameters_match_sklearn(name, param, value):
    def action(module):
        getattr(module, name)(**{param: value}).fit(*data_for(name))
    assert raised(action, bpcore) == raised(action, sk)


def test_invalid_loss_matches_sklearn():
    def action(module):
        module.MLPRegressor(loss="absolute_error").fit(X_REG, Y_REG)
    if not HAS_MLP_LOSS_AND_SAMPLE_WEIGHT:
        pytest.skip(f"MLPRegressor(loss=...) is new in scikit-learn 1.7; the installed "
                    f"{sklearn.__version__} has none (test_sklearn_1_6_differences)")
    assert raised(action, bpcore) == raised(action, sk)


@pytest.mark.skipif(HAS_MLP_LOSS_AND_SAMPLE_WEIGHT, reason="scikit-learn 1.6 only")
def test_sklearn_1_6_differences():
    """What bpcore keeps of 1.7 on scikit-learn 1.6: ``loss`` (validated as
    1.7 validates it), ``sample_weight`` (checked as 1.7 checks it) and the
    error for a validation set of fewer than 2 samples."""
    from sklearn.utils._param_validation import InvalidParameterError

    with pytest.raises(InvalidParameterError, match="The 'loss' parameter of MLPRegressor"):
        bpcore.MLPRegressor(loss="absolute_error").fit(X_REG, Y_REG)
    with pytest.raises(ValueError, match=r"sample_weight.shape == \(3,\), expected \(120,\)"):
        bpcore.MLPClassifier().fit(X_CLF, Y_CLF, np.ones(3))
    with pytest.raises(ValueError, match="The validation set is too small"):
        bpcore.MLPRegressor(early_stopping=True).fit(X_REG[:5], Y_REG[:5])


def test_poisson_rejects_negative_targets():
    # scikit-learn trains on a NaN loss here; bpcore says what is wrong.
    with pytest.raises(ValueError, match="y must be non-negative"):
        bpcore.MLPRegressor(loss="poisson").fit(X_REG, Y_REG)


# ---------------------------------------------------------------------------
# clone, pickle, Pipeline, GridSearchCV, threads
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("name", ESTIMATORS)
def test_clone_is_unfitted_with_the_same_params(name):
    est = fitted(bpcore, name, hidden_layer_sizes=(3,))
    twin = clone(est)
    assert twin.get_params() == est.get_params()
    assert not hasattr(twin, "coefs_") and not hasattr(twin, "_net")


@pytest.mark.parametrize("name", ESTIMATORS)
@pytest.mark.parametrize("copier", ["pickle", "deepcopy"])
def test_pickle_round_trip_resumes_training_identically(name, copier):
    X, y = data_for(name)
    est = getattr(bpcore, name)(solver="adam", random_state=0, hidden_layer_sizes=(6,))
    est.partial_fit(X, y, **({"classes": np.unique(y)} if name == "MLPClassifier" else {}))
    if copier == "pickle":
        twin = pickle.loads(pickle.dumps(est))
    else:
        twin = copy.deepcopy(est)
    # The copy's weights are views of its own buffer, not of the original's.
    assert all(np.shares_memory(a, twin._net.params) for a in twin.coefs_ + twin.intercepts_)
    assert not np.shares_memory(twin._net.params, est._net.params)
    assert_array_equal(twin.predict(X), est.predict(X))
    # Optimizer state (Adam's moments and step count) survives the trip.
    for _ in range(3):
        est.partial_fit(X, y)
        twin.partial_fit(X, y)
    assert twin._optimizer.t == est._optimizer.t
    assert_array_equal(twin._net.params, est._net.params)
    assert twin.loss_curve_ == est.loss_curve_


def test_pickle_keeps_user_assigned_weights():
    est = fitted(bpcore, "MLPRegressor", hidden_layer_sizes=(3,))
    est.coefs_ = [c * 2 for c in est.coefs_]
    expected = est.predict(X_REG)
    twin = pickle.loads(pickle.dumps(est))
    assert_array_equal(twin.predict(X_REG), expected)


def test_pipeline_and_grid_search_match_sklearn():
    def search(module):
        pipe = make_pipeline(StandardScaler(), module.MLPClassifier(max_iter=20, random_state=0))
        grid = GridSearchCV(pipe, {"mlpclassifier__hidden_layer_sizes": [(4,), (8,)],
                                   "mlpclassifier__alpha": [1e-4, 1e-1]}, cv=3)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            return grid.fit(X_CLF, Y_CLF)

    ours, theirs = search(bpcore), search(sk)
    assert ours.best_params_ == theirs.best_params_
    assert_allclose(ours.cv_results_["mean_test_score"], theirs.cv_results_["mean_test_score"])
    assert_array_equal(ours.predict(X_CLF), theirs.predict(X_CLF))


def test_concurrent_predict_is_consistent():
    X = np.random.RandomState(1).randn(3000, 5)
    clf = fitted(bpcore, "MLPClassifier", hidden_layer_sizes=(32,))
    expected = clf.predict_proba(X)
    results = [None] * 8

    def work(i):
        results[i] = clf.predict_proba(X)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for r in results:
        assert_array_equal(r, expected)


# ---------------------------------------------------------------------------
# Ctrl-C and divergence
# ---------------------------------------------------------------------------

def test_keyboard_interrupt_warns_and_leaves_a_usable_model(monkeypatch):
    real_run = _engine.EpochRunner.run
    calls = []

    def run(self, perm=None):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real_run(self, perm)

    monkeypatch.setattr(_engine.EpochRunner, "run", run)
    clf = bpcore.MLPClassifier(max_iter=10, random_state=0, early_stopping=True)
    with pytest.warns(UserWarning, match="^Training interrupted by user.$"):
        clf.fit(X_CLF, Y_CLF)
    assert clf.n_iter_ == 2 and len(clf.loss_curve_) == 2
    assert clf.predict(X_CLF).shape == (120,)
    # Early stopping still restores the best weights it saw.
    assert_array_equal(clf._net.params, clf._best_params)


@pytest.mark.skipif(not hasattr(signal, "SIGINT") or os.name == "nt",
                    reason="needs POSIX signals")
@pytest.mark.skipif(hasattr(signal, "SIGINT") and signal.getsignal(signal.SIGINT) is signal.SIG_IGN,
                    reason="SIGINT is ignored in this process (started as a background job "
                           "by a shell script): the fit would run all its 100000 epochs")
def test_real_sigint_stops_training_promptly():
    X, y = make_classification(n_samples=20000, n_features=40, random_state=0)
    clf = bpcore.MLPClassifier((64,), max_iter=100000, tol=0.0, n_iter_no_change=np.inf,
                               random_state=0)
    timer = threading.Timer(0.5, os.kill, args=(os.getpid(), signal.SIGINT))
    timer.start()
    start = time.perf_counter()
    try:
        with pytest.warns(UserWarning, match="Training interrupted by user."):
            clf.fit(X, y)
    finally:
        timer.cancel()
    assert time.perf_counter() - start < 30
    assert 0 < clf.n_iter_ < 100000
    assert np.isfinite(clf._net.params).all()
    assert clf.score(X, y) > 0.5


def diverging_regressor(module, **params):
    X = X_REG * 1e3
    y = Y_REG * 1e3
    est = module.MLPRegressor(solver="sgd", learning_rate_init=10.0, max_iter=20,
                              random_state=0, **params)
    return est, X, y


def test_divergence_raises_sklearns_error_and_keeps_finite_weights():
    def action(module):
        est, X, y = diverging_regressor(module)
        est.fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert raised(action, bpcore) == raised(action, sk)
        est, X, y = diverging_regressor(bpcore)
        with pytest.raises(ValueError):
            est.fit(X, y)
    assert np.isfinite(est._net.params).all()
    assert np.isfinite(est.predict(X)).all()


def test_divergence_with_early_stopping_restores_the_best_weights_like_sklearn():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ours, X, y = diverging_regressor(bpcore, early_stopping=True, n_iter_no_change=5)
        theirs, _, _ = diverging_regressor(sk, early_stopping=True, n_iter_no_change=5)
        ours.fit(X, y)
        theirs.fit(X, y)
    assert ours.n_iter_ == theirs.n_iter_
    # The same epochs up to the divergence (after it scikit-learn records
    # inf or NaN losses, bpcore NaN).
    assert_allclose(ours.loss_curve_[:3], theirs.loss_curve_[:3], rtol=1e-9)
    assert np.isnan(ours.validation_scores_[-1])
    assert_allclose(ours.validation_scores_, theirs.validation_scores_, rtol=1e-9)
    assert_allclose(ours.best_validation_score_, theirs.best_validation_score_, rtol=1e-9)
    for a, b in zip(ours.coefs_ + ours.intercepts_, theirs.coefs_ + theirs.intercepts_):
        assert_allclose(a, b, rtol=1e-9)


# ---------------------------------------------------------------------------
# dtype, sparse input, user-assigned weights, the thin layer
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("solver", ["adam", "sgd", "lbfgs"])
def test_float32_stays_float32(solver):
    X = X_CLF.astype(np.float32)
    clf = quiet_fit(bpcore.MLPClassifier(solver=solver, max_iter=3, random_state=0), X, Y_CLF)
    assert all(a.dtype == np.float32 for a in clf.coefs_ + clf.intercepts_)
    assert clf.predict_proba(X).dtype == np.float32
    reg = quiet_fit(bpcore.MLPRegressor(solver=solver, max_iter=3, random_state=0),
                    X_REG.astype(np.float32), Y_REG)
    assert reg.predict(X_REG.astype(np.float32)).dtype == np.float32


@pytest.mark.parametrize("fmt", ["csr", "csc", "coo"])
def test_sparse_input_matches_dense(fmt):
    X = X_CLF.copy()
    X[np.abs(X) < 0.7] = 0
    Xs = sp.csr_matrix(X).asformat(fmt)
    dense = quiet_fit(bpcore.MLPClassifier(max_iter=5, random_state=0), X, Y_CLF)
    sparse = quiet_fit(bpcore.MLPClassifier(max_iter=5, random_state=0), Xs, Y_CLF)
    assert_allclose(sparse.loss_curve_, dense.loss_curve_, rtol=1e-12)
    assert_allclose(sparse.predict_proba(Xs), dense.predict_proba(X), rtol=1e-12)


def test_assigned_weights_are_used_like_sklearn():
    ours = fitted(bpcore, "MLPRegressor", hidden_layer_sizes=(4,), warm_start=True)
    theirs = fitted(sk, "MLPRegressor", hidden_layer_sizes=(4,), warm_start=True)
    new = [np.full_like(c, 0.1) for c in theirs.coefs_]
    ours.coefs_ = [c.copy() for c in new]
    theirs.coefs_ = [c.copy() for c in new]
    assert_allclose(ours.predict(X_REG), theirs.predict(X_REG), rtol=1e-12)
    # ... and are where a warm-started fit continues from.
    quiet_fit(ours, X_REG, Y_REG)
    quiet_fit(theirs, X_REG, Y_REG)
    assert_allclose(ours.loss_curve_, theirs.loss_curve_, rtol=1e-9)
    for a, b in zip(ours.coefs_, theirs.coefs_):
        assert_allclose(a, b, rtol=1e-9, atol=1e-12)


def test_assigned_weights_of_the_wrong_shape_are_refused():
    est = fitted(bpcore, "MLPRegressor", hidden_layer_sizes=(4,))
    est.coefs_ = [c[:2] for c in est.coefs_]
    with pytest.raises(ValueError, match="coefs_ has arrays of shapes"):
        est.predict(X_REG)


@pytest.mark.parametrize("early_stopping", [False, True])
def test_one_engine_call_per_epoch(monkeypatch, early_stopping):
    runners, runs = [], []
    real_init, real_run = _engine.EpochRunner.__init__, _engine.EpochRunner.run

    def init(self, *args, **kwargs):
        runners.append(self)
        real_init(self, *args, **kwargs)

    def run(self, perm=None):
        runs.append(perm)
        return real_run(self, perm)

    monkeypatch.setattr(_engine.EpochRunner, "__init__", init)
    monkeypatch.setattr(_engine.EpochRunner, "run", run)
    clf = quiet_fit(bpcore.MLPClassifier(max_iter=7, batch_size=16, random_state=0,
                                         early_stopping=early_stopping), X_CLF, Y_CLF)
    assert len(runners) == 1
    assert len(runs) == clf.n_iter_ == 7


def test_sparse_input_goes_through_one_helper(monkeypatch):
    seen = []
    real = estimators._as_engine_input

    def spy(X, dtype):
        seen.append(sp.issparse(X))
        return real(X, dtype)

    monkeypatch.setattr(estimators, "_as_engine_input", spy)
    clf = quiet_fit(bpcore.MLPClassifier(max_iter=2, random_state=0),
                    sp.csr_matrix(X_CLF), Y_CLF)
    clf.predict(sp.csc_matrix(X_CLF))
    assert seen == [True, True]


@pytest.mark.parametrize("continue_by", ["partial_fit", "warm_start"])
def test_training_after_set_params_activation_uses_the_new_activation(continue_by):
    # scikit-learn reads ``activation`` at every fit and partial_fit, as at
    # every prediction; a predict between set_params and the training must
    # change nothing (it once did: predict updated the network, training
    # without it kept the old activation).
    rng = np.random.RandomState(1)
    X, y = rng.randn(150, 6), rng.randint(0, 3, 150)

    def train(cls, predict_between):
        est = cls(hidden_layer_sizes=(5,), max_iter=3, random_state=8,
                  warm_start=continue_by == "warm_start")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            est.fit(X, y)
            est.set_params(activation="tanh")
            if predict_between:
                est.predict(X[:2])
            est.partial_fit(X, y) if continue_by == "partial_fit" else est.fit(X, y)
        return est

    ours = bpcore.MLPClassifier
    plain, predicted, theirs = (train(ours, False), train(ours, True),
                                train(sk.MLPClassifier, False))
    for a, b, c in zip(plain.coefs_ + plain.intercepts_,
                       predicted.coefs_ + predicted.intercepts_,
                       theirs.coefs_ + theirs.intercepts_):
        assert_array_equal(a, b)
        assert_allclose(a, c, rtol=1e-10, atol=1e-12)
    assert_allclose(plain.loss_curve_, theirs.loss_curve_, rtol=1e-12)
