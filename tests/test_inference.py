"""Prediction: the short compiled path against the general path and scikit-learn.

The short path (``_kernels.infer`` through ``Network._infer`` and the
estimators' ``_short_path``) takes the common input, a NumPy array of the
fitted dtype and width, as it is; everything else goes the general way. Each
test here holds one of its promises: the same numbers as the general path
(bitwise) and as scikit-learn (labels exactly, probabilities to rounding), the
same errors and warnings word for word, nothing stale after the model
changes, and the same answers from many threads.
"""
import threading
import time
import warnings

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import sklearn
import sklearn.neural_network as sk
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.datasets import load_digits
from sklearn.exceptions import NotFittedError

import bpcore
from bpcore import _engine, _kernels
from bpcore.estimators import _HEAD_ARGMAX, _HEAD_BINARY_PROBA, _HEAD_OUTPUT, _HEAD_THRESHOLD

X_DIGITS, Y_DIGITS = load_digits(return_X_y=True)
X_DIGITS = X_DIGITS[:400] / 16.0
Y_DIGITS = Y_DIGITS[:400]
RTOL = {np.float32: 2e-5, np.float64: 1e-12}

TARGETS = {
    "multiclass": Y_DIGITS,
    "binary": np.where(Y_DIGITS > 4, "big", "small"),
    "multilabel": np.stack([Y_DIGITS > 4, Y_DIGITS % 2 == 0, Y_DIGITS == 7], 1).astype(int),
    "regression": Y_DIGITS / 3.0,
    "regression-2": np.stack([Y_DIGITS / 3.0, np.sin(Y_DIGITS)], 1),
}


def quiet(f, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return f(*args, **kwargs)


def pair(target, dtype=np.float64, X=None, **params):
    """(bpcore, scikit-learn) estimators fitted on the same data, bpcore's
    weights then set to scikit-learn's, so that predictions compare
    inference alone (training agrees only to rounding)."""
    X = (X_DIGITS if X is None else X)
    X = X.astype(dtype) if isinstance(X, np.ndarray) else X
    y = TARGETS[target]
    name = "MLPRegressor" if target.startswith("regression") else "MLPClassifier"
    params = {"hidden_layer_sizes": (17, 9), "max_iter": 30, "random_state": 0, **params}
    theirs = quiet(getattr(sk, name)(**params).fit, X, y)
    ours = quiet(getattr(bpcore, name)(**params).fit, X, y)
    ours.coefs_ = [c.copy() for c in theirs.coefs_]
    ours.intercepts_ = [b.copy() for b in theirs.intercepts_]
    quiet(ours.predict, X[:1])             # copies them into the network's buffer
    return ours, theirs


def general(est, method, X):
    """``method`` by the general path only (the short path declined)."""
    short = est._short_path
    est._short_path = lambda *a, **k: None
    try:
        return getattr(est, method)(X)
    finally:
        est._short_path = short


def methods(est):
    if isinstance(est, sklearn.base.ClassifierMixin):
        return ["predict", "predict_proba", "predict_log_proba"]
    return ["predict"]


def numpy_forward(est, X):
    """The network output from coefs_/intercepts_ in NumPy (relu, identity out)."""
    a = X
    for i, (W, b) in enumerate(zip(est.coefs_, est.intercepts_)):
        a = a @ W + b
        if i < len(est.coefs_) - 1:
            a = np.maximum(a, 0)
    return a


def assert_same(ours, theirs, dtype, method):
    if method == "predict" and ours.dtype.kind != "f":
        assert_array_equal(ours, theirs)
        assert ours.dtype == theirs.dtype
    else:
        assert_allclose(ours, theirs, rtol=RTOL[dtype], atol=RTOL[dtype])
        assert ours.shape == theirs.shape


# ---------------------------------------------------------------------------
# The same answers
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("target", sorted(TARGETS))
def test_short_path_matches_general_path_and_sklearn(target, dtype):
    ours, theirs = pair(target, dtype)
    for rows in (1, 2, 33, 400):
        X = X_DIGITS[:rows].astype(dtype)
        for method in methods(ours):
            got = getattr(ours, method)(X)
            assert_array_equal(got, general(ours, method, X), err_msg=method)
            assert got.dtype == general(ours, method, X).dtype
            assert_same(got, getattr(theirs, method)(X), dtype, method)


@pytest.mark.parametrize("target", ["multiclass", "binary", "multilabel", "regression-2"])
def test_short_path_is_taken_for_the_common_input(target, monkeypatch):
    ours, _ = pair(target)

    def general_path(*args, **kwargs):
        raise AssertionError("the common input took the general path")

    monkeypatch.setattr(ours, "_forward_pass_fast", general_path)
    for method in methods(ours):
        getattr(ours, method)(X_DIGITS[:1])
        getattr(ours, method)(X_DIGITS)
    ours.score(X_DIGITS, TARGETS[target])


def _inputs(dtype):
    X = X_DIGITS[:50].astype(dtype)
    wide = np.zeros((50, 128), dtype=dtype)
    wide[:, ::2] = X
    return {
        "F-order": np.asfortranarray(X),
        "row-stride": np.repeat(X, 2, axis=0)[::2],
        "column-stride": wide[:, ::2],
        "reversed": X[::-1][::-1],
        "other-dtype": X.astype(np.float32 if dtype == np.float64 else np.float64),
        "int": np.rint(X * 16).astype(np.int64),
        "list": X.tolist(),
        "subclass": X.view(_Sub),
        "byte-swapped": X.astype(X.dtype.newbyteorder(">")),
        "unaligned": _unaligned(X),
        "csr": sp.csr_matrix(X),
        "csc": sp.csc_matrix(X),
        "coo": sp.coo_matrix(X),
        "csr_array": sp.csr_array(X),
    }


class _Sub(np.ndarray):
    pass


def _unaligned(X):
    raw = np.zeros(X.nbytes + 1, dtype=np.uint8)
    out = raw[1:].view(X.dtype).reshape(X.shape)
    out[...] = X
    assert not out.flags.aligned
    return out


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("target", ["multiclass", "binary", "multilabel", "regression"])
def test_every_input_kind_gives_sklearns_answer(target, dtype):
    ours, theirs = pair(target, dtype)
    for kind, X in _inputs(dtype).items():
        # The same numbers as for the C-contiguous array of the fitted dtype
        # (which is what bpcore computes on: other dtypes are cast to it).
        reference = np.ascontiguousarray(X.toarray() if sp.issparse(X) else X, dtype=dtype)
        for method in methods(ours):
            got = getattr(ours, method)(X)
            expected = getattr(ours, method)(reference)
            if sp.issparse(X):      # multiplied row by row, not by BLAS: rounding
                assert_same(got, expected, dtype, method)
            else:
                assert_array_equal(got, expected, err_msg=f"{kind} {method}")
            assert_same(got, getattr(theirs, method)(X), dtype if kind != "other-dtype"
                        else np.float32, method)


def test_pandas_frames_give_sklearns_answer_and_no_warning():
    cols = [f"f{i}" for i in range(X_DIGITS.shape[1])]
    frame = pd.DataFrame(X_DIGITS, columns=cols)
    ours, theirs = pair("multiclass", X=frame)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for method in methods(ours):
            assert_same(getattr(ours, method)(frame), getattr(theirs, method)(frame),
                        np.float64, method)
            assert_array_equal(getattr(ours, method)(frame), general(ours, method, frame))


def test_toolbox_batch_norm_dropout_model_short_path_matches_general():
    for Est, y in ((bpcore.NeuralNetClassifier, Y_DIGITS),
                   (bpcore.NeuralNetRegressor, Y_DIGITS / 3.0)):
        for dtype in (np.float64, np.float32):
            X = X_DIGITS.astype(dtype)
            est = quiet(Est(hidden_layer_sizes=(64, 64), batch_norm=True, dropout=0.2,
                            max_iter=5, random_state=0).fit, X, y)
            for rows in (1, 7, 400):
                for method in methods(est):
                    assert_array_equal(getattr(est, method)(X[:rows]),
                                       general(est, method, X[:rows]))
            # and as the network itself computes it
            out = est.network_.forward(X)
            if Est is bpcore.NeuralNetRegressor:
                # (the toolbox regressor maps its outputs back to the target's scale)
                assert_array_equal(est.predict(X), est._targets_from_outputs(out).ravel())
            else:
                assert_array_equal(est.predict_proba(X), out)
                assert_array_equal(est.predict(X), est.classes_[out.argmax(axis=1)])


def test_heads_follow_numpys_ties_and_nan():
    net = bpcore.Network([3, 4], output="softmax", loss="log_loss", random_state=0)
    net.params = np.zeros(net.n_params)     # every output equal: a 4-way tie
    X = np.ones((5, 3))
    layout, theta, buffers = net.layout, net.params, net.buffers
    idx = _kernels.infer(layout, theta, buffers, X, _HEAD_ARGMAX, True, 5, 1)
    assert_array_equal(idx, net.forward(X).argmax(axis=1))
    Xn = X.copy()
    Xn[1, 0] = np.nan
    assert _kernels.infer(layout, theta, buffers, Xn, _HEAD_ARGMAX, True, 5, 1) is None
    got = _kernels.infer(layout, theta, buffers, Xn, _HEAD_ARGMAX, False, 5, 1)
    out = _kernels.infer(layout, theta, buffers, Xn, _HEAD_OUTPUT, False, 5, 1)
    assert np.isnan(out[1]).all()
    assert_array_equal(got, out.argmax(axis=1))
    # NaN among numbers (inf - inf in a product): NumPy's argmax returns the
    # first NaN; ties the first maximum; p > 0.5 is False for NaN.
    net2 = bpcore.Network([2, 4], output="identity", random_state=0)
    net2.params = np.concatenate([np.array([[1, 1, 2, 1], [1, -1, 2, -1]]).ravel(),
                                  np.zeros(4)])
    rows = np.array([[np.inf, np.inf], [0.5, 0.5], [1.0, 0.0], [0.0, 1.0]])
    args = (net2.layout, net2.params, net2.buffers, rows)
    assert _kernels.infer(*args, _HEAD_OUTPUT, True, 4, 1) is None
    out = _kernels.infer(*args, _HEAD_OUTPUT, False, 4, 1)
    assert np.isnan(out[0, 1]) and np.isinf(out[0, 0])
    assert_array_equal(_kernels.infer(*args, _HEAD_ARGMAX, False, 4, 1), out.argmax(axis=1))
    assert_array_equal(_kernels.infer(*args, _HEAD_THRESHOLD, False, 4, 1),
                       np.array(out > 0.5, dtype=int))
    net3 = bpcore.Network([2, 1], output="logistic", loss="log_loss", random_state=0)
    p = net3.forward(rows[1:2])
    both = _kernels.infer(net3.layout, net3.params, net3.buffers, rows[1:2],
                          _HEAD_BINARY_PROBA, True, 1, 1)
    assert_array_equal(both, np.vstack([1 - p.ravel(), p.ravel()]).T)


def test_infer_declines_what_is_not_the_common_case():
    net = bpcore.Network([4, 3, 2], random_state=0)
    ok = np.ones((3, 4))
    args = (net.layout, net.params, net.buffers)
    assert _kernels.infer(*args, ok, _HEAD_OUTPUT, True, 3, 1) is not None
    for X in (ok.astype(np.float32), np.asfortranarray(np.ones((3, 4)) + np.eye(3, 4)),
              ok[:, :3], np.ones((0, 4)), ok[0], ok[None], ok.view(_Sub), ok.tolist(),
              sp.csr_matrix(ok), np.where(np.eye(3, 4) > 0, np.inf, 1.0)):
        assert _kernels.infer(*args, X, _HEAD_OUTPUT, True, 3, 1) is None
    with pytest.raises(ValueError, match="params must be"):
        _kernels.infer(net.layout, net.params[:-1], net.buffers, ok, _HEAD_OUTPUT, True, 3, 1)
    # parameters the general path takes (unaligned, e.g. from a dask worker)
    assert _kernels.infer(net.layout, _unaligned(net.params), net.buffers, ok, _HEAD_OUTPUT,
                          True, 3, 1) is None
    with pytest.raises(ValueError, match="head"):
        _kernels.infer(*args, ok, _HEAD_BINARY_PROBA, True, 3, 1)


def test_one_chunk_shortcut_is_inference_plans_answer():
    # Network._infer skips inference_plan for at most 64 rows under its
    # one-chunk bound; the layout must agree.
    for sizes in ([64, 100, 10], [3, 1], [784, 512, 512, 10], [20, 2000, 5]):
        net = bpcore.Network(sizes, random_state=0)
        for n in range(1, 65):
            if n * net.layout.macs_per_row < 2 * _engine._MIN_MACS_PER_THREAD:
                assert _engine.inference_plan(net.layout, n, net._block_rows(n)) == (1, n)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_network_forward_short_path_matches_general_on_any_thread_count(dtype):
    from threadpoolctl import threadpool_limits
    net = bpcore.Network([64, 300, 200, 10], output="softmax", loss="log_loss",
                         batch_norm=True, dtype=dtype, random_state=0)
    X = np.random.default_rng(0).standard_normal((3000, 64)).astype(dtype)
    general_out = net.forward(X.tolist())
    for n in (1, 2):
        with threadpool_limits(n, user_api="openmp"):
            assert_array_equal(net.forward(X), general_out)
    assert_array_equal(net.forward(X[:1]), net.forward(X[:1].tolist()))


# ---------------------------------------------------------------------------
# The same errors and warnings
# ---------------------------------------------------------------------------

def raised(action):
    try:
        action()
    except Exception as exc:  # noqa: BLE001 - whatever is raised is compared
        return type(exc).__name__, str(exc)
    raise AssertionError("nothing was raised")


def _bad_inputs(dtype):
    X = X_DIGITS[:5].astype(dtype)
    nan, inf, ninf = X.copy(), X.copy(), X.copy()
    nan[2, 3] = np.nan
    inf[0, 0] = np.inf
    ninf[4, 63] = -np.inf
    return {
        "nan": nan, "inf": inf, "-inf": ninf, "nan-1-row": nan[2:3],
        "too-wide": np.ones((3, 65), dtype=dtype), "too-narrow": X[:, :63],
        "1-d": X[0], "3-d": X[None], "0-rows": X[:0], "0-columns": X[:, :0],
        "scalar": np.float64(1.0), "strings": np.full((2, 64), "a"),
        "complex": X + 1j, "sparse-nan": sp.csr_matrix(nan),
        "sparse-too-wide": sp.csr_matrix(np.ones((2, 70))), "none": None,
    }


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("target", ["multiclass", "binary", "regression"])
def test_errors_match_sklearn_word_for_word(target, dtype):
    ours, theirs = pair(target, dtype)
    for kind, X in _bad_inputs(dtype).items():
        for method in methods(ours):
            mine = quiet(raised, lambda: getattr(ours, method)(X))
            assert mine == quiet(raised, lambda: getattr(theirs, method)(X)), (kind, method)


@pytest.mark.parametrize("target", ["multiclass", "regression"])
def test_not_fitted_error_matches_sklearn(target):
    name = "MLPRegressor" if target.startswith("regression") else "MLPClassifier"
    for method in methods(getattr(bpcore, name)()):
        mine = raised(lambda: getattr(getattr(bpcore, name)(), method)(X_DIGITS[:1]))
        assert mine == raised(lambda: getattr(getattr(sk, name)(), method)(X_DIGITS[:1]))
        assert mine[0] == NotFittedError.__name__


def _warnings_of(action):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = action()
    return result, [(w.category, str(w.message)) for w in caught]


def test_feature_name_warnings_both_ways_match_sklearn():
    cols = [f"f{i}" for i in range(X_DIGITS.shape[1])]
    frame = pd.DataFrame(X_DIGITS, columns=cols)
    # fitted on a frame, given an array (1 row and many): scikit-learn warns
    on_frame = pair("multiclass", X=frame)
    on_array = pair("multiclass")
    for ours, theirs, X in ((*on_frame, X_DIGITS[:1]), (*on_frame, X_DIGITS),
                            (*on_array, frame), (*on_array, frame.iloc[:1])):
        for method in methods(ours):
            got, mine = _warnings_of(lambda: getattr(ours, method)(X))
            want, theirs_w = _warnings_of(lambda: getattr(theirs, method)(X))
            assert mine == theirs_w and len(mine) == 1, (method, mine, theirs_w)
            assert_same(got, want, np.float64, method)
    # other column names: the same error
    renamed = frame.rename(columns={"f3": "g3"})
    ours, theirs = on_frame
    assert raised(lambda: ours.predict(renamed)) == raised(lambda: theirs.predict(renamed))


@pytest.mark.parametrize("target", ["multiclass", "binary", "regression"])
def test_assume_finite_is_honoured_like_sklearn(target):
    ours, theirs = pair(target)
    X = X_DIGITS[:6].copy()
    X[2, 5] = np.nan
    X[4, 0] = np.inf
    with sklearn.config_context(assume_finite=True):
        for method in methods(ours):
            got = quiet(getattr(ours, method), X)
            want = quiet(getattr(theirs, method), X)
            if got.dtype.kind == "f":
                assert_array_equal(np.isnan(got), np.isnan(want))
                ok = ~np.isnan(want)
                assert_allclose(got[ok], want[ok], rtol=1e-12)
            else:
                assert_array_equal(got, want)
    # and off again: the error
    assert raised(lambda: ours.predict(X)) == raised(lambda: theirs.predict(X))


# ---------------------------------------------------------------------------
# Nothing stale
# ---------------------------------------------------------------------------

def _fresh(est, X, y):
    return quiet(sklearn.base.clone(est).fit, X, y)


def test_refit_is_never_stale():
    est = quiet(bpcore.MLPClassifier(hidden_layer_sizes=(20,), max_iter=5,
                                     random_state=0).fit, X_DIGITS, Y_DIGITS)
    before = est.predict_proba(X_DIGITS[:1])
    # other data, other shape: a new network
    y2 = Y_DIGITS % 3
    quiet(est.fit, X_DIGITS[:, :32], y2)
    assert est.predict_proba(X_DIGITS[:1, :32]).shape == (1, 3)
    assert_array_equal(est.predict_proba(X_DIGITS[:, :32]),
                       _fresh(est, X_DIGITS[:, :32], y2).predict_proba(X_DIGITS[:, :32]))
    # the same shapes, other targets
    quiet(est.fit, X_DIGITS, (Y_DIGITS + 1) % 10)
    after = est.predict_proba(X_DIGITS[:1])
    assert not np.array_equal(before, after)
    assert_array_equal(after, _fresh(est, X_DIGITS, (Y_DIGITS + 1) % 10)
                       .predict_proba(X_DIGITS[:1]))


def test_set_params_is_never_stale():
    ours, theirs = pair("multiclass")
    before = ours.predict_proba(X_DIGITS)
    for activation in ("tanh", "logistic", "identity", "relu"):
        ours.set_params(activation=activation)
        theirs.set_params(activation=activation)
        for method in methods(ours):
            assert_same(getattr(ours, method)(X_DIGITS[:1]),
                        getattr(theirs, method)(X_DIGITS[:1]), np.float64, method)
            assert_same(getattr(ours, method)(X_DIGITS), getattr(theirs, method)(X_DIGITS),
                        np.float64, method)
    assert_array_equal(ours.predict_proba(X_DIGITS), before)
    # set_params then refit: the new hyperparameters' model
    ours.set_params(hidden_layer_sizes=(5,), activation="tanh")
    quiet(ours.fit, X_DIGITS, Y_DIGITS)
    assert_array_equal(ours.predict_proba(X_DIGITS[:3]),
                       _fresh(ours, X_DIGITS, Y_DIGITS).predict_proba(X_DIGITS[:3]))


def test_partial_fit_and_warm_start_are_never_stale():
    est = bpcore.MLPClassifier(hidden_layer_sizes=(20,), random_state=0)
    quiet(est.partial_fit, X_DIGITS, Y_DIGITS, classes=np.arange(10))
    first = est.predict_proba(X_DIGITS[:1])
    quiet(est.partial_fit, X_DIGITS, Y_DIGITS)
    second = est.predict_proba(X_DIGITS[:1])
    assert not np.array_equal(first, second)
    assert_array_equal(second, general(est, "predict_proba", X_DIGITS[:1]))

    warm = quiet(bpcore.MLPRegressor(hidden_layer_sizes=(20,), max_iter=3, warm_start=True,
                                     random_state=0).fit, X_DIGITS, Y_DIGITS / 3.0)
    first = warm.predict(X_DIGITS[:1])
    quiet(warm.fit, X_DIGITS, Y_DIGITS / 3.0)
    second = warm.predict(X_DIGITS[:1])
    assert not np.array_equal(first, second)
    assert_array_equal(second, general(warm, "predict", X_DIGITS[:1]))
    assert_allclose(second, numpy_forward(warm, X_DIGITS[:1]).ravel(), rtol=1e-12)


@pytest.mark.parametrize("target", ["multiclass", "binary", "regression"])
def test_changed_coefs_are_never_stale(target):
    ours, theirs = pair(target)
    X = X_DIGITS[:9]
    # in place, through the views
    ours.coefs_[0][...] *= 1.5
    theirs.coefs_[0][...] *= 1.5
    ours.intercepts_[-1][0] += 0.25
    theirs.intercepts_[-1][0] += 0.25
    for method in methods(ours):
        assert_same(getattr(ours, method)(X), getattr(theirs, method)(X), np.float64, method)
    # new arrays assigned, and an element of the list replaced
    ours.coefs_ = [c * 0.5 for c in ours.coefs_]
    theirs.coefs_ = [c * 0.5 for c in theirs.coefs_]
    for method in methods(ours):
        assert_same(getattr(ours, method)(X[:1]), getattr(theirs, method)(X[:1]),
                    np.float64, method)
    ours.intercepts_[0] = ours.intercepts_[0] - 1.0
    theirs.intercepts_[0] = theirs.intercepts_[0] - 1.0
    for method in methods(ours):
        assert_same(getattr(ours, method)(X), getattr(theirs, method)(X), np.float64, method)


def test_changed_running_statistics_are_never_stale():
    est = quiet(bpcore.NeuralNetRegressor(hidden_layer_sizes=(16,), batch_norm=True,
                                          max_iter=3, random_state=0).fit,
                X_DIGITS, Y_DIGITS / 3.0)
    before = est.predict(X_DIGITS[:1])
    est.network_.bn_means[0][...] += 1.0
    after = est.predict(X_DIGITS[:1])
    assert not np.array_equal(before, after)
    assert_array_equal(after, general(est, "predict", X_DIGITS[:1]))


# ---------------------------------------------------------------------------
# Threads
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("target", ["multiclass", "binary", "regression"])
def test_many_threads_predicting_get_what_one_gets(target):
    ours, _ = pair(target)
    rng = np.random.default_rng(0)
    batches = [rng.standard_normal((n, 64)) for n in (1, 1, 3, 40, 700, 2500)]
    # one at a time, each in a thread of its own (OpenBLAS can round some
    # products differently outside the main thread: docs/DESIGN.md)
    expected = {}
    for method in methods(ours):
        for i, X in enumerate(batches):
            t = threading.Thread(target=lambda: expected.__setitem__(
                (method, i), getattr(ours, method)(X)))
            t.start()
            t.join()
    results, errors = {}, []

    def work(k):
        try:
            for rep in range(20):
                for method in methods(ours):
                    i = (k + rep) % len(batches)
                    results[(k, rep, method)] = (i, getattr(ours, method)(batches[i]))
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(results) == 8 * 20 * len(methods(ours))
    for (k, rep, method), (i, got) in results.items():
        assert_array_equal(got, expected[(method, i)])


def test_prediction_does_not_wait_for_another_estimators_training():
    served = bpcore.MLPClassifier(hidden_layer_sizes=(20,), max_iter=3, random_state=0)
    quiet(served.fit, X_DIGITS, Y_DIGITS)
    expected = served.predict_proba(X_DIGITS[:1])
    X_big = np.tile(X_DIGITS, (10, 1))
    y_big = np.tile(Y_DIGITS, 10)
    trainee = bpcore.MLPClassifier(hidden_layer_sizes=(200,), max_iter=40, tol=0,
                                   random_state=0)
    trainer = threading.Thread(target=quiet, args=(trainee.fit, X_big, y_big))
    trainer.start()
    during = 0
    while trainer.is_alive():
        got = served.predict_proba(X_DIGITS[:1])
        if trainer.is_alive():
            during += 1
        assert_array_equal(got, expected)
        time.sleep(0.001)
    trainer.join()
    # Predictions returned while the other fit was still running (a lock
    # held for a whole fit would let none through).
    assert during > 0
