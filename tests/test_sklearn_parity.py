"""bpcore's MLPClassifier/MLPRegressor against scikit-learn's, side by side.

Both estimators get the same data, parameters and ``random_state``; we check
that they draw the same initial weights and, after 10 epochs (``max_iter=10``),
agree on ``loss_curve_``, ``loss_``, ``n_iter_``, ``t_``, the best-loss and
validation bookkeeping, the final weights (rtol 1e-9 in float64, 1e-4 in
float32), the set of fitted attributes, the warnings raised, and the
predictions on held-out data (labels identical; probabilities and regression
outputs within the same tolerance).

Coverage of ``test_fit_matches_sklearn``: the axes are

- solver: adam; sgd with nesterov momentum, classical momentum, no momentum,
  ``invscaling`` and ``adaptive`` schedules; lbfgs   (7 values)
- hidden activation: identity, logistic, tanh, relu (4)
- target: binary (string labels), multiclass, multilabel, regression,
  multi-output regression, Poisson regression (6)
- X format: dense, CSR, CSC (3)
- dtype: float64, float32 (2)
- sample_weight: none, random positive weights (2)
- early_stopping: off, on (2)

and the cases form a covering array built greedily below: every pair of
values of any two axes appears in at least one case (every solver with every
target, activation, format, dtype, ...), in 42 cases (the minimum, 7 solvers
x 6 targets) instead of the 4032 of the full product.

Also here: the full activation x target product for adam; the initial
weights for 3 architectures x 4 activations x 3 targets x 2 dtypes (bitwise
equal); stopping rules (loss plateau, validation plateau with best-weight
restore, adaptive learning rate down to its floor, lbfgs convergence);
warm starts; partial_fit sequences (sparse, both dtypes, classes unseen in
the first chunk); a shared RandomState instance; verbose output.
"""
import copy
import warnings
from itertools import combinations

import numpy as np
import pytest
import scipy.sparse as sp
import sklearn
from numpy.testing import assert_allclose, assert_array_equal
from sklearn import neural_network as sk

import bpcore
from bpcore._sklearn_compat import HAS_MLP_LOSS_AND_SAMPLE_WEIGHT, SKLEARN_VERSION

# scikit-learn before 1.9 cannot score string labels with early stopping:
# its check for non-finite predictions runs np.isnan on the labels (TypeError).
# bpcore does not copy that bug (test_early_stopping_with_string_labels).
SKLEARN_SCORES_STRING_LABELS = SKLEARN_VERSION >= (1, 9)

# Weights are O(0.1..1); atol covers the entries that pass near zero.
RTOL = {np.float64: 1e-9, np.float32: 1e-4}
ATOL = {np.float64: 1e-12, np.float32: 1e-5}

SOLVERS = {
    "adam": dict(solver="adam"),
    "sgd-nesterov": dict(solver="sgd", momentum=0.9, nesterovs_momentum=True),
    "sgd-momentum": dict(solver="sgd", momentum=0.9, nesterovs_momentum=False),
    "sgd-plain": dict(solver="sgd", momentum=0.0),
    "sgd-invscaling": dict(solver="sgd", learning_rate="invscaling", power_t=0.3),
    "sgd-adaptive": dict(solver="sgd", learning_rate="adaptive"),
    "lbfgs": dict(solver="lbfgs"),
}
ACTIVATIONS = ["identity", "logistic", "tanh", "relu"]
TARGETS = ["binary", "multiclass", "multilabel", "regression", "multioutput", "poisson"]
FORMATS = ["dense", "csr", "csc"]
DTYPES = [np.float64, np.float32]
WEIGHTS = [False, True]
EARLY_STOPPING = [False, True]

N_TRAIN, N_TEST, N_FEATURES = 150, 40, 6


def make_data(target, fmt="dense", dtype=np.float64, seed=0):
    """(X, y, X_test): standardized-ish features, about half of them zero."""
    rng = np.random.RandomState(seed)
    n = N_TRAIN + N_TEST
    X = rng.randn(n, N_FEATURES)
    X[rng.rand(n, N_FEATURES) < 0.4] = 0.0
    W = rng.randn(N_FEATURES, 3)
    Z = X @ W + 0.3 * rng.randn(n, 3)
    if target == "binary":
        y = np.where(Z[:, 0] > 0, "yes", "no")
    elif target == "multiclass":
        y = np.array([3, 7, 9])[np.argmax(Z, axis=1)]
    elif target == "multilabel":
        y = (Z > 0.2).astype(int)
    elif target == "regression":
        y = np.tanh(Z[:, 0]) + 0.5 * Z[:, 1]
    elif target == "multioutput":
        y = np.column_stack([np.tanh(Z[:, 0]), 0.5 * Z[:, 1], Z[:, 2] ** 2 / 4])
    elif target == "poisson":
        y = rng.poisson(np.exp(0.3 * Z[:, 0])).astype(float)
    else:
        raise ValueError(target)
    X = X.astype(dtype)
    X_train, X_test = X[:N_TRAIN], X[N_TRAIN:]
    if fmt != "dense":
        X_train = getattr(sp, f"{fmt}_matrix")(X_train)
        X_test = getattr(sp, f"{fmt}_matrix")(X_test)
    return X_train, y[:N_TRAIN], X_test


def estimator_pair(target, **params):
    """(bpcore estimator, scikit-learn estimator) with the same parameters."""
    if target in ("binary", "multiclass", "multilabel"):
        ours, theirs = bpcore.MLPClassifier, sk.MLPClassifier
    else:
        ours, theirs = bpcore.MLPRegressor, sk.MLPRegressor
        if target == "poisson":
            skip_before_1_7("MLPRegressor(loss='poisson')")
            params["loss"] = "poisson"
    # Each gets its own copy (a RandomState instance must not be shared).
    return ours(**copy.deepcopy(params)), theirs(**copy.deepcopy(params))


def skip_before_1_7(feature):
    """The installed scikit-learn (1.6) has no ``feature`` to compare with."""
    if not HAS_MLP_LOSS_AND_SAMPLE_WEIGHT:
        pytest.skip(f"{feature} is new in scikit-learn 1.7; the installed "
                    f"{sklearn.__version__} has nothing to compare bpcore's with")


def fit_recording_warnings(est, *args, **kwargs):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        est.fit(*args, **kwargs)
    return [(w.category, str(w.message)) for w in caught]


def public_fitted_attributes(est):
    return sorted(k for k in vars(est) if k.endswith("_") and not k.startswith("_"))


def assert_same_fit(ours, theirs, X, y, X_test, dtype, sample_weight=None,
                    rtol=None, atol=None):
    """Fit both, then compare everything scikit-learn exposes."""
    rtol = RTOL[dtype] if rtol is None else rtol
    atol = ATOL[dtype] if atol is None else atol
    # scikit-learn 1.6's fit takes no sample_weight at all.
    weights = {} if sample_weight is None else {"sample_weight": sample_weight}
    w_theirs = fit_recording_warnings(theirs, X, y, **weights)
    w_ours = fit_recording_warnings(ours, X, y, **weights)
    assert w_ours == w_theirs

    assert public_fitted_attributes(ours) == public_fitted_attributes(theirs)
    assert ours.n_iter_ == theirs.n_iter_
    assert ours.t_ == theirs.t_
    assert ours.n_layers_ == theirs.n_layers_
    assert ours.n_outputs_ == theirs.n_outputs_
    assert ours.out_activation_ == theirs.out_activation_
    assert_allclose(ours.loss_, theirs.loss_, rtol=rtol)
    if hasattr(theirs, "loss_curve_"):
        assert_allclose(ours.loss_curve_, theirs.loss_curve_, rtol=rtol)
        if theirs.best_loss_ is None:
            assert ours.best_loss_ is None
        else:
            assert_allclose(ours.best_loss_, theirs.best_loss_, rtol=rtol)
        if theirs.validation_scores_ is None:
            assert ours.validation_scores_ is None
            assert ours.best_validation_score_ is None
        else:
            assert_allclose(ours.validation_scores_, theirs.validation_scores_,
                            rtol=rtol, atol=atol)
            assert_allclose(ours.best_validation_score_, theirs.best_validation_score_,
                            rtol=rtol, atol=atol)
    if hasattr(theirs, "classes_"):
        assert_array_equal(ours.classes_, theirs.classes_)

    # scikit-learn's lbfgs hands scipy's float64 vector back as its weights
    # even for float32 input; bpcore keeps float32 (see the estimator Notes).
    lbfgs_f32 = ours.solver == "lbfgs" and dtype == np.float32
    for a, b in zip(ours.coefs_ + ours.intercepts_, theirs.coefs_ + theirs.intercepts_):
        assert a.dtype == (np.float32 if lbfgs_f32 else b.dtype)
        assert_allclose(a, b, rtol=rtol, atol=atol)

    if hasattr(theirs, "predict_proba"):
        assert_array_equal(ours.predict(X_test), theirs.predict(X_test))
        assert_allclose(ours.predict_proba(X_test), theirs.predict_proba(X_test),
                        rtol=rtol, atol=atol)
    else:
        assert_allclose(ours.predict(X_test), theirs.predict(X_test), rtol=rtol, atol=atol)


def assert_array_equal_or_close(a, b, dtype):
    if np.issubdtype(np.asarray(b).dtype, np.floating):
        assert_allclose(a, b, rtol=RTOL[dtype], atol=ATOL[dtype])
    else:
        assert_array_equal(a, b)


# ---------------------------------------------------------------------------
# The covering array
# ---------------------------------------------------------------------------

def covering_array(axes):
    """Rows (dicts) in which every pair of values of any two axes appears.

    Greedy and deterministic: each row starts from the first uncovered pair,
    then fills the other axes one by one with the value covering the most
    still-uncovered pairs.
    """
    names = list(axes)
    sizes = [len(axes[n]) for n in names]

    def pair(i, a, j, b):
        return (i, a, j, b) if i < j else (j, b, i, a)

    uncovered = {
        (i, a, j, b)
        for i, j in combinations(range(len(names)), 2)
        for a in range(sizes[i]) for b in range(sizes[j])
    }
    rows = []
    while uncovered:
        i, a, j, b = min(uncovered)
        row = {i: a, j: b}
        for k in range(len(names)):
            if k not in row:
                row[k] = max(range(sizes[k]), key=lambda v: sum(
                    pair(k, v, m, row[m]) in uncovered for m in row))
        uncovered -= {pair(i, row[i], j, row[j])
                      for i, j in combinations(range(len(names)), 2)}
        rows.append({names[k]: axes[names[k]][row[k]] for k in range(len(names))})
    return rows


CASES = covering_array({
    "solver": list(SOLVERS), "activation": ACTIVATIONS, "target": TARGETS,
    "fmt": FORMATS, "dtype": DTYPES, "weights": WEIGHTS, "early_stopping": EARLY_STOPPING,
})


def case_id(case):
    return "-".join([
        case["solver"], case["activation"], case["target"], case["fmt"],
        np.dtype(case["dtype"]).name, "sw" if case["weights"] else "nosw",
        "es" if case["early_stopping"] else "noes",
    ])


def common_params(**overrides):
    params = dict(hidden_layer_sizes=(7, 5), max_iter=10, batch_size=32,
                  learning_rate_init=0.01, alpha=1e-3, validation_fraction=0.2,
                  random_state=0)
    params.update(overrides)
    return params


def test_covering_array_covers_every_pair():
    axes = {"a": [0, 1, 2], "b": [0, 1], "c": [0, 1, 2, 3], "d": [0, 1]}
    rows = covering_array(axes)
    for x, y in combinations(axes, 2):
        seen = {(r[x], r[y]) for r in rows}
        assert seen == {(u, v) for u in axes[x] for v in axes[y]}
    assert len(CASES) < 80


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_fit_matches_sklearn(case):
    dtype = case["dtype"]
    X, y, X_test = make_data(case["target"], case["fmt"], dtype)
    sample_weight = None
    if case["target"] == "binary" and case["early_stopping"] and not SKLEARN_SCORES_STRING_LABELS:
        pytest.skip(f"scikit-learn {sklearn.__version__} raises TypeError when early "
                    "stopping scores string labels (fixed in 1.9)")
    if case["weights"]:
        skip_before_1_7("sample_weight in MLPClassifier/MLPRegressor.fit")
        sample_weight = np.random.RandomState(1).uniform(0.5, 2.0, X.shape[0])
    ours, theirs = estimator_pair(
        case["target"],
        **common_params(activation=case["activation"], early_stopping=case["early_stopping"],
                        **SOLVERS[case["solver"]]))
    assert_same_fit(ours, theirs, X, y, X_test, dtype, sample_weight)


@pytest.mark.parametrize("solver", ["adam", "sgd"])
def test_early_stopping_with_string_labels(solver):
    """bpcore scores string labels with early stopping on every release, as
    scikit-learn 1.9 does; the labels' codes give scikit-learn's numbers on
    every release (the binarized targets are the same)."""
    X, y, X_test = make_data("binary")
    codes = (y == "yes").astype(int)  # "no" < "yes": the classes_ order
    params = common_params(solver=solver, early_stopping=True)
    ours, theirs = bpcore.MLPClassifier(**params), sk.MLPClassifier(**params)
    fit_recording_warnings(ours, X, y)
    fit_recording_warnings(theirs, X, codes)
    assert_array_equal(ours.classes_, ["no", "yes"])
    assert_allclose(ours.loss_curve_, theirs.loss_curve_, rtol=RTOL[np.float64])
    assert_allclose(ours.validation_scores_, theirs.validation_scores_)
    assert_array_equal(ours.predict(X_test), np.array(["no", "yes"])[theirs.predict(X_test)])


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_activation_target_grid(activation, target):
    X, y, X_test = make_data(target)
    ours, theirs = estimator_pair(target, **common_params(activation=activation))
    assert_same_fit(ours, theirs, X, y, X_test, np.float64)


# ---------------------------------------------------------------------------
# Initial weights: scikit-learn's exact draws
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("target", ["binary", "multiclass", "multioutput"])
@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("hidden", [(7, 5), (), 4])
def test_initial_weights_match_sklearn(monkeypatch, hidden, activation, target, dtype):
    # Skip training on both sides: what remains of fit is the initialization.
    for cls in (bpcore.MLPClassifier, bpcore.MLPRegressor,
                sk.MLPClassifier, sk.MLPRegressor):
        monkeypatch.setattr(cls, "_fit_stochastic", lambda self, *args, **kw: None)
    X, y, _ = make_data(target, dtype=dtype)
    ours, theirs = estimator_pair(target, hidden_layer_sizes=hidden, activation=activation,
                                  random_state=np.random.RandomState(42))
    ours.fit(X, y)
    theirs.fit(X, y)
    assert len(ours.coefs_) == len(theirs.coefs_)
    for a, b in zip(ours.coefs_ + ours.intercepts_, theirs.coefs_ + theirs.intercepts_):
        assert a.dtype == b.dtype
        assert_array_equal(a, b)


# ---------------------------------------------------------------------------
# Stopping rules, schedules, warm starts, partial_fit
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("params", [
    # the training loss plateaus -> stop
    dict(solver="adam", tol=0.05, n_iter_no_change=2),
    # the validation score plateaus -> stop and restore the best weights
    dict(solver="sgd", early_stopping=True, tol=0.02, n_iter_no_change=2),
    dict(solver="adam", early_stopping=True, tol=0.0, n_iter_no_change=1,
         learning_rate_init=0.2),
    # adaptive: lr / 5 at every plateau, down to 1e-6, then stop
    dict(solver="sgd", learning_rate="adaptive", tol=0.5, n_iter_no_change=1),
    dict(solver="sgd", learning_rate="adaptive", tol=0.5, n_iter_no_change=1,
         early_stopping=True),
    # invscaling over many epochs, no shuffling
    dict(solver="sgd", learning_rate="invscaling", shuffle=False, momentum=0.5),
    # full-batch, converging before max_iter
    dict(solver="lbfgs", tol=1e-3),
], ids=lambda p: ",".join(f"{k}={v}" for k, v in p.items()))
@pytest.mark.parametrize("target", ["multiclass", "regression"])
def test_stopping_rules_match_sklearn(params, target):
    X, y, X_test = make_data(target)
    ours, theirs = estimator_pair(target, **common_params(**{"max_iter": 60, **params}))
    # Over tens of iterations L-BFGS's line search amplifies rounding
    # differences (last-bit differences in the gradient sums) to ~1e-7.
    tol = dict(rtol=1e-5, atol=1e-8) if params["solver"] == "lbfgs" else {}
    assert_same_fit(ours, theirs, X, y, X_test, np.float64, **tol)
    if params["solver"] == "sgd":
        assert ours._optimizer.learning_rate == theirs._optimizer.learning_rate
    if params["solver"] != "lbfgs":
        assert ours.n_iter_ < 60 or params.get("learning_rate") == "invscaling"


@pytest.mark.parametrize("solver", ["adam", "sgd", "lbfgs"])
@pytest.mark.parametrize("target", ["binary", "multioutput"])
def test_warm_start_matches_sklearn(solver, target):
    X, y, X_test = make_data(target)
    ours, theirs = estimator_pair(target, **common_params(
        solver=solver, warm_start=True, max_iter=5))
    for _ in range(3):
        assert_same_fit(ours, theirs, X, y, X_test, np.float64)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_warm_start_early_stopping_keeps_the_best_weights():
    # A deliberate difference: when a warm-started fit never beats the best
    # validation score of the previous fits, scikit-learn ends with that
    # fit's last weights (after its first restore, its best-weights buffer
    # aliases the live weights); bpcore restores the best weights seen.
    X, y, X_test = make_data("binary")
    if not SKLEARN_SCORES_STRING_LABELS:
        y = (y == "yes").astype(int)  # the same fits: the binarized targets are equal
    ours, theirs = estimator_pair("binary", **common_params(
        solver="sgd", warm_start=True, max_iter=5, early_stopping=True))
    for fit in range(3):
        before = [c.copy() for c in ours.coefs_ + ours.intercepts_] if fit else None
        improved_before = ours.best_validation_score_ if fit else None
        theirs.fit(X, y)
        ours.fit(X, y)
        # Training itself is identical.
        assert_allclose(ours.loss_curve_, theirs.loss_curve_, rtol=1e-9)
        assert_allclose(ours.validation_scores_, theirs.validation_scores_)
        assert ours.best_validation_score_ == theirs.best_validation_score_
    # In this data the third fit does not improve on the second's best, so
    # the best weights are still those the second fit restored.
    assert ours.best_validation_score_ == improved_before
    for a, b in zip(ours.coefs_ + ours.intercepts_, before):
        assert_array_equal(a, b)


@pytest.mark.parametrize("solver", ["adam", "sgd"])
@pytest.mark.parametrize("target", ["multiclass", "multilabel", "poisson"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_partial_fit_matches_sklearn(solver, target, dtype):
    X, y, X_test = make_data(target, "csr", dtype)
    ours, theirs = estimator_pair(target, **common_params(solver=solver))
    extra = {}
    if target == "multiclass":
        # The first chunk lacks class 9: partial_fit must know it from `classes`.
        extra = {"classes": np.array([3, 7, 9])}
    elif target == "multilabel":
        extra = {"classes": np.arange(3)}
    chunks = [slice(0, 50), slice(50, 100), slice(100, 150), slice(0, 150)]
    first = True
    for chunk in chunks:
        Xc, yc = X[chunk], y[chunk]
        if target == "multiclass" and first:
            keep = yc != 9
            Xc, yc = Xc[keep], yc[keep]
        kwargs = extra if first else {}
        theirs.partial_fit(Xc, yc, **kwargs)
        ours.partial_fit(Xc, yc, **kwargs)
        first = False
        assert ours.n_iter_ == theirs.n_iter_ == 1
        assert ours.t_ == theirs.t_
        assert_allclose(ours.loss_curve_, theirs.loss_curve_, rtol=RTOL[dtype])
        for a, b in zip(ours.coefs_ + ours.intercepts_, theirs.coefs_ + theirs.intercepts_):
            assert_allclose(a, b, rtol=RTOL[dtype], atol=ATOL[dtype])
    assert_array_equal_or_close(ours.predict(X_test), theirs.predict(X_test), dtype)


def test_random_state_instance_is_consumed_like_sklearn():
    # A shared RandomState advances across fits in the same way.
    X, y, X_test = make_data("multiclass")
    rs_ours, rs_theirs = np.random.RandomState(3), np.random.RandomState(3)
    for _ in range(2):
        ours, theirs = estimator_pair("multiclass", **common_params(
            random_state=None, early_stopping=True))
        ours.set_params(random_state=rs_ours)
        theirs.set_params(random_state=rs_theirs)
        assert_same_fit(ours, theirs, X, y, X_test, np.float64)
    assert rs_ours.randint(1 << 30) == rs_theirs.randint(1 << 30)


@pytest.mark.parametrize("verbose", [True, 2])
@pytest.mark.parametrize("params", [
    dict(solver="sgd", early_stopping=True, tol=0.02, n_iter_no_change=2),
    dict(solver="sgd", learning_rate="adaptive", tol=0.5, n_iter_no_change=1),
    dict(solver="adam", tol=0.05, n_iter_no_change=2),
    dict(solver="lbfgs"),
])
def test_verbose_output_matches_sklearn(capsys, params, verbose):
    X, y, _ = make_data("multiclass")
    ours, theirs = estimator_pair("multiclass", **common_params(
        max_iter=40, verbose=verbose, **params))
    fit_recording_warnings(theirs, X, y)
    out_theirs = capsys.readouterr().out
    fit_recording_warnings(ours, X, y)
    out_ours = capsys.readouterr().out
    if params["solver"] != "lbfgs":
        assert "Iteration 1, loss = " in out_ours
    assert out_ours == out_theirs
