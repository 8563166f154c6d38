"""train(): the worked example, XOR, a NumPy minibatch loop, scikit-learn parity,
interrupts, divergence and input validation."""
import os
import re
import signal
import sys
import threading
import time
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.utils import shuffle as sk_shuffle

import reference as ref
import bpcore
from bpcore import _kernels
from bpcore import SGD, Adam, DivergenceError, Network, train
from conftest import DTYPES, assert_close, make_targets

# ---------------------------------------------------------------------------
# The worked example from the issue
# ---------------------------------------------------------------------------


def _worked_example_net():
    net = Network([1, 1], output="identity", loss="squared_error")
    net.coefs[0][0, 0] = 0.5      # w
    net.intercepts[0][0] = 0.1    # b
    return net


def test_worked_example_loss_and_gradient():
    # y_hat = w x + b = 1.1, L = 0.5 (1.1 - 3)^2 = 1.805,
    # dL/dw = (y_hat - y) x = -3.8, dL/db = y_hat - y = -1.9
    net = _worked_example_net()
    loss, grad = net.loss_and_grad([[2.0]], [[3.0]])
    assert loss == pytest.approx(1.805, abs=1e-15)
    g_coefs, g_inter = net._views(grad)
    assert g_coefs[0][0, 0] == pytest.approx(-3.8, abs=1e-15)
    assert g_inter[0][0] == pytest.approx(-1.9, abs=1e-15)
    assert net.forward([[2.0]])[0, 0] == pytest.approx(1.1, abs=1e-15)


def test_worked_example_sgd_step():
    # w = 0.5 - 0.1 * -3.8 = 0.88, b = 0.1 - 0.1 * -1.9 = 0.29
    net = _worked_example_net()
    _, grad = net.loss_and_grad([[2.0]], [[3.0]])
    SGD(learning_rate=0.1).step(net.params, grad)
    assert net.coefs[0][0, 0] == pytest.approx(0.88, abs=1e-15)
    assert net.intercepts[0][0] == pytest.approx(0.29, abs=1e-15)

    # The same step through train(): one epoch of one batch.
    net = _worked_example_net()
    losses = np.asarray(train(net, [[2.0]], [[3.0]], optimizer=SGD(learning_rate=0.1), epochs=1,
                   batch_size=1).loss)
    assert losses.shape == (1,) and losses[0] == pytest.approx(1.805, abs=1e-15)
    assert net.coefs[0][0, 0] == pytest.approx(0.88, abs=1e-15)
    assert net.intercepts[0][0] == pytest.approx(0.29, abs=1e-15)
    # ... and the loss after that step: y_hat = 0.88 * 2 + 0.29 = 2.05
    assert net.loss_and_grad([[2.0]], [[3.0]])[0] == pytest.approx(0.5 * 0.95 ** 2, abs=1e-15)


# ---------------------------------------------------------------------------
# XOR
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("output, loss, seed", [("logistic", "log_loss", 1),
                                                ("identity", "squared_error", 0)])
def test_xor(output, loss, seed):
    X = np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
    y = np.array([0.0, 1.0, 1.0, 0.0])
    net = Network([2, 2, 1], activation="tanh", output=output, loss=loss, random_state=seed)
    losses = np.asarray(train(net, X, y, optimizer=Adam(learning_rate=0.05), epochs=500, batch_size=1,
                   random_state=seed).loss)   # about 0.05 s
    pred = net.forward(X).ravel()
    np.testing.assert_array_equal(np.round(pred), y)
    assert np.max(np.abs(pred - y)) < 0.05
    assert losses[-1] < 0.01 * losses[0]


# ---------------------------------------------------------------------------
# train() against a plain NumPy minibatch loop
# ---------------------------------------------------------------------------

LOOP_CASES = [
    # sizes, activation, output, loss, optimizer, hyper, batch_size, alpha, weighted, shuffle
    ([5, 8, 3], "relu", "softmax", "log_loss", "adam", dict(learning_rate=0.01),
     16, 1e-3, False, True),
    ([4, 6, 5, 2], "tanh", "identity", "squared_error", "sgd",
     dict(learning_rate=0.05, momentum=0.9, nesterov=True), 10, 0.0, True, True),
    ([4, 6, 2], "elu", "logistic", "log_loss", "adagrad", dict(learning_rate=0.1),
     64, 0.1, True, False),
    ([4, 5, 1], "leaky_relu", "exp", "poisson", "rmsprop", dict(learning_rate=0.005),
     7, 0.0, False, True),
    ([4, 5, 3], "logistic", "softmax", "log_loss", "adam",
     dict(learning_rate=0.01, variant="paper"), 13, 0.0, True, True),
    # Large enough for train() to split every batch over two threads; the last
    # batch (45 = 22 + 22 + 1) has fewer rows than threads.
    ([20, 64, 32, 4], "tanh", "softmax", "log_loss", "adam", dict(learning_rate=0.01),
     22, 1e-3, True, True),
    ([20, 64, 32, 3], "relu", "identity", "squared_error", "sgd",
     dict(learning_rate=0.01, momentum=0.9), 30, 0.0, False, False),
]


def _data(sizes, loss, output, n, rng):
    X = rng.standard_normal((n, sizes[0]))
    return X, make_targets(loss, output, n, sizes[-1], rng)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("sizes, activation, output, loss, opt_name, hyper, batch_size, alpha, "
                         "weighted, shuffle", LOOP_CASES)
def test_train_matches_numpy_loop(sizes, activation, output, loss, opt_name, hyper, batch_size,
                                  alpha, weighted, shuffle, dtype, rng):
    n, epochs = 45, 3
    X, Y = _data(sizes, loss, output, n, rng)
    X, Y = X.astype(dtype), Y.astype(dtype)
    sw = rng.uniform(0.2, 2.0, n).astype(dtype) if weighted else None
    net = Network(sizes, activation=activation, output=output, loss=loss, dtype=dtype,
                  random_state=0)
    coefs0 = [c.copy() for c in net.coefs]
    inter0 = [b.copy() for b in net.intercepts]
    losses = np.asarray(train(net, X, Y, optimizer=bpcore.optimizers.OPTIMIZERS[opt_name](**hyper),
                   epochs=epochs, batch_size=batch_size, shuffle=shuffle,
                   random_state=np.random.RandomState(5), alpha=alpha, sample_weight=sw).loss)

    # The orders scikit-learn would use: shuffle the previous order each epoch.
    rs, order, orders = np.random.RandomState(5), np.arange(n), []
    for _ in range(epochs):
        if shuffle:
            order = sk_shuffle(order, random_state=rs)
        orders.append(order)
    ref_losses, rc, rb = ref.train_loop(
        coefs0, inter0, [activation] * (len(sizes) - 2) + [output], loss, X, Y,
        optimizer=opt_name, hyper=hyper, orders=orders, batch_size=batch_size, alpha=alpha,
        sample_weight=sw)
    rtol = 1e-11 if dtype == np.float64 else 5e-5
    assert losses.dtype == np.float64 and losses.shape == (epochs,)
    assert_close(losses, ref_losses, dtype, rtol=rtol)
    assert_close(net.params, ref.flatten(rc, rb), dtype, rtol=rtol, scale=1.0)


def test_train_continues_with_the_optimizer_state(rng):
    """Two calls of one epoch are one call of two (without shuffling)."""
    X, Y = _data([4, 6, 3], "log_loss", "softmax", 30, rng)
    a = Network([4, 6, 3], activation="tanh", output="softmax", loss="log_loss", random_state=0)
    b = Network([4, 6, 3], activation="tanh", output="softmax", loss="log_loss", random_state=0)
    opt_a, opt_b = Adam(0.01), Adam(0.01)
    la = np.asarray(train(a, X, Y, optimizer=opt_a, epochs=2, batch_size=8, shuffle=False).loss)
    lb = np.concatenate([train(b, X, Y, optimizer=opt_b, epochs=1, batch_size=8,
                               shuffle=False).loss for _ in range(2)])
    np.testing.assert_array_equal(la, lb)
    np.testing.assert_array_equal(a.params, b.params)
    assert opt_a.t == opt_b.t == 2 * 4


@pytest.mark.parametrize("n", [0, 1, 2, 7, 1797, 20_000])
def test_reshuffle_draws_as_sklearn_shuffle(n):
    """Epoch after epoch, the engine's reshuffle is sklearn.utils.shuffle bitwise,
    and leaves the random state where scikit-learn's would."""
    from bpcore._engine import reshuffle
    ours, theirs = np.random.RandomState(42), np.random.RandomState(42)
    a = b = np.arange(n, dtype=np.intp)
    for _ in range(4):
        a = reshuffle(a, ours)
        b = sk_shuffle(b, random_state=theirs)
        assert a.dtype == np.intp
        np.testing.assert_array_equal(a, b)
    assert ours.randint(1 << 30) == theirs.randint(1 << 30)


def test_batch_size_larger_than_data_is_clipped(rng):
    X, Y = _data([3, 4, 2], "squared_error", "identity", 10, rng)
    a = Network([3, 4, 2], random_state=0)
    b = Network([3, 4, 2], random_state=0)
    la = np.asarray(train(a, X, Y, optimizer=SGD(0.1), epochs=2, batch_size=1000, shuffle=False).loss)
    lb = np.asarray(train(b, X, Y, optimizer=SGD(0.1), epochs=2, batch_size=10, shuffle=False).loss)
    np.testing.assert_array_equal(la, lb)
    np.testing.assert_array_equal(a.params, b.params)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shuffle, weighted, hidden", [(True, False, 8), (False, True, 8),
                                                       (True, True, 400)])
def test_train_on_sparse_X_matches_dense(dtype, shuffle, weighted, hidden, rng):
    dense = rng.standard_normal((40, 10)) * (rng.uniform(size=(40, 10)) < 0.3)
    dense[5] = 0.0
    Y = np.eye(3)[rng.integers(0, 3, 40)]
    sw = rng.uniform(0.2, 2.0, 40) if weighted else None
    results = []
    for X in (dense, sp.csr_matrix(dense), sp.csc_matrix(dense)):
        net = Network([10, hidden, 3], activation="relu", output="softmax", loss="log_loss",
                      dtype=dtype, random_state=0)
        losses = np.asarray(train(net, X, Y, optimizer=Adam(0.01), epochs=3, batch_size=7,
                       random_state=0, alpha=1e-3, shuffle=shuffle, sample_weight=sw).loss)
        results.append((losses, net.params.copy()))
    for losses, params in results[1:]:
        assert_close(losses, results[0][0], dtype, rtol=1e-12 if dtype == np.float64 else 1e-5)
        assert_close(params, results[0][1], dtype, scale=1.0,
                     rtol=1e-12 if dtype == np.float64 else 1e-5)


# ---------------------------------------------------------------------------
# Parity with scikit-learn itself
# ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def digits():
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    return X / 16.0, y


SKLEARN_CASES = [
    # id, estimator kind, estimator kwargs, optimizer, targets, output, loss, weighted
    ("classifier-adam", "classifier", dict(solver="adam", learning_rate_init=1e-3),
     lambda: Adam(learning_rate=1e-3), "multiclass", "softmax", "log_loss", False),
    ("classifier-sgd-nesterov", "classifier",
     dict(solver="sgd", learning_rate_init=0.05, momentum=0.9, nesterovs_momentum=True),
     lambda: SGD(learning_rate=0.05, momentum=0.9, nesterov=True),
     "multiclass", "softmax", "log_loss", False),
    ("classifier-sgd-momentum-weighted", "classifier",
     dict(solver="sgd", learning_rate_init=0.05, momentum=0.8, nesterovs_momentum=False),
     lambda: SGD(learning_rate=0.05, momentum=0.8), "multiclass", "softmax", "log_loss", True),
    ("binary-adam-weighted", "classifier", dict(solver="adam", learning_rate_init=1e-3),
     lambda: Adam(learning_rate=1e-3), "binary", "logistic", "log_loss", True),
    ("regressor-adam", "regressor", dict(solver="adam", learning_rate_init=1e-3),
     lambda: Adam(learning_rate=1e-3), "regression", "identity", "squared_error", False),
    ("regressor-sgd-2-outputs", "regressor",
     dict(solver="sgd", learning_rate_init=1e-3, momentum=0.9),
     lambda: SGD(learning_rate=1e-3, momentum=0.9, nesterov=True),
     "regression2", "identity", "squared_error", True),
    ("poisson-adam", "regressor", dict(solver="adam", learning_rate_init=1e-3, loss="poisson"),
     lambda: Adam(learning_rate=1e-3), "counts", "exp", "poisson", False),
]


@pytest.mark.parametrize("kind, est_kwargs, make_opt, target, output, loss, weighted",
                         [c[1:] for c in SKLEARN_CASES], ids=[c[0] for c in SKLEARN_CASES])
def test_five_epochs_match_sklearn(kind, est_kwargs, make_opt, target, output, loss, weighted,
                                   digits):
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier, MLPRegressor

    from bpcore._sklearn_compat import HAS_MLP_LOSS_AND_SAMPLE_WEIGHT
    if (weighted or loss == "poisson") and not HAS_MLP_LOSS_AND_SAMPLE_WEIGHT:
        pytest.skip("sample_weight and loss='poisson' are new in scikit-learn 1.7")
    X, labels = digits
    if target == "multiclass":
        y, Y = labels, np.eye(10)[labels]
    elif target == "binary":
        y = labels % 2
        Y = y[:, None].astype(float)
    elif target == "regression":
        y = labels / 9.0
        Y = y[:, None]
    elif target == "regression2":
        y = np.column_stack([labels / 9.0, X[:, 20] - X[:, 40]])
        Y = y
    else:  # counts
        y = labels.astype(float)
        Y = y[:, None]
    sw = np.random.default_rng(0).uniform(0.5, 2.0, X.shape[0]) if weighted else None
    alpha, epochs, hidden = 1e-4, 5, 40

    cls = MLPClassifier if kind == "classifier" else MLPRegressor
    est = cls(hidden_layer_sizes=(hidden,), activation="relu", alpha=alpha, batch_size=32,
              max_iter=epochs, tol=0.0, n_iter_no_change=10**6, shuffle=True, random_state=0,
              **est_kwargs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        # scikit-learn 1.6's fit takes no sample_weight at all.
        est.fit(X, y, **({} if sw is None else {"sample_weight": sw}))

    rs = np.random.RandomState(0)
    net = Network([64, hidden, Y.shape[1]], activation="relu", output=output, loss=loss,
                  random_state=rs)
    if Y.shape[1] > 1 and loss == "squared_error":
        net._use_sklearn_gradient()   # scikit-learn's gradient sums over outputs
    losses = np.asarray(train(net, X, Y, optimizer=make_opt(), epochs=epochs, batch_size=32,
                   random_state=rs, alpha=alpha, sample_weight=sw).loss)

    np.testing.assert_allclose(losses, est.loss_curve_, rtol=1e-9)
    for ours, theirs in zip(net.coefs + net.intercepts, est.coefs_ + est.intercepts_):
        np.testing.assert_allclose(ours, theirs, rtol=1e-9, atol=1e-12)
    # Predictions agree too.
    if kind == "classifier" and target == "multiclass":
        np.testing.assert_allclose(net.forward(X), est.predict_proba(X), rtol=1e-8, atol=1e-12)


@pytest.mark.parametrize("dtype, scale", [(np.float64, 1e-78), (np.float32, 1e-8)])
def test_training_flushes_denormals_in_every_thread(dtype, scale):
    """DESIGN.md, Denormals: the epoch kernel runs with flush-to-zero, in every
    thread it uses (the floating-point mode is per thread). Gradients here are
    so small that (1 - beta_2) * g**2 is denormal in plain NumPy, so Adam's
    second moment fills with denormals unless they are flushed."""
    rng = np.random.default_rng(0)
    X = (rng.standard_normal((64, 256)) * scale).astype(dtype)
    Y = (rng.standard_normal((64, 256)) * scale).astype(dtype)
    net = Network([256, 256, 256], activation="identity", dtype=dtype, random_state=0)
    for b in net.intercepts:
        b[:] = 0.0
    tiny = np.finfo(dtype).tiny

    def n_denormal(a):
        return int(np.count_nonzero((a != 0) & (np.abs(a) < tiny)))

    _, g = net.loss_and_grad(X[:32], Y[:32])
    assert n_denormal(dtype(0.001) * g * g) > g.size // 2   # the test can fail
    opt = Adam(1e-3)
    train(net, X, Y, optimizer=opt, epochs=2, batch_size=32, random_state=0)
    assert n_denormal(opt.state) == 0
    assert (np.array([np.finfo(np.float64).tiny]) / 4)[0] > 0   # mode restored


def _threaded_problem():
    rng = np.random.default_rng(3)
    X = rng.standard_normal((600, 32))
    Y = np.eye(5)[rng.integers(0, 5, 600)]
    return X, Y


def _train_once(X, Y, dtype=np.float64):
    net = Network([32, 128, 64, 5], activation="relu", output="softmax", loss="log_loss",
                  dtype=dtype, random_state=0)
    losses = np.asarray(train(net, X, Y, optimizer=Adam(1e-3), epochs=2, batch_size=128,
                   random_state=0, alpha=1e-4).loss)
    return losses, net.params.copy()


@pytest.mark.parametrize("dtype", DTYPES)
def test_training_is_deterministic(dtype):
    X, Y = _threaded_problem()
    first = _train_once(X, Y, dtype)
    for _ in range(3):
        again = _train_once(X, Y, dtype)
        np.testing.assert_array_equal(again[0], first[0])
        np.testing.assert_array_equal(again[1], first[1])


@pytest.mark.parametrize("dtype", DTYPES)
def test_gemm_row_blocks_change_nothing_but_rounding(dtype):
    # Batch 200 of 64-100-10 (W2's shape): its forward product (1.28 M
    # multiply-adds) and X.T @ delta are cut in two when the cut is on.
    threadpoolctl = pytest.importorskip("threadpoolctl")
    rng = np.random.default_rng(5)
    X = rng.standard_normal((1000, 64))
    Y = np.eye(10)[rng.integers(0, 10, 1000)]
    results = {}
    for pieces in (1, 4):
        previous = _kernels.set_gemm_split(pieces)
        try:
            net = Network([64, 100, 10], activation="relu", output="softmax",
                          loss="log_loss", dtype=dtype, random_state=0)
            with threadpoolctl.threadpool_limits(1):
                losses = np.asarray(train(net, X, Y, optimizer=Adam(1e-3), epochs=3, batch_size=200,
                               random_state=0, alpha=1e-4).loss)
        finally:
            _kernels.set_gemm_split(previous)
        results[pieces] = (np.asarray(losses), net.params.copy())
    rtol = 1e-10 if dtype == np.float64 else 1e-4
    np.testing.assert_allclose(results[4][0], results[1][0], rtol=rtol)
    np.testing.assert_allclose(results[4][1], results[1][1], rtol=rtol, atol=rtol)


def _blas(path, arch, api="openblas"):
    return {"user_api": "blas", "internal_api": api, "filepath": path, "architecture": arch}


SCIPY_LIB = "/venv/site-packages/scipy.libs/libscipy_openblas-6cdc3b4a.so"
NUMPY_LIB = "/venv/site-packages/numpy.libs/libscipy_openblas64_-32a4b2a6.so"


@pytest.mark.parametrize("infos, environ, expected", [
    # SciPy's bundled OpenBLAS decides, whatever NumPy's says.
    ([_blas(NUMPY_LIB, "Haswell"), _blas(SCIPY_LIB, "SkylakeX")], {}, 4),
    ([_blas(NUMPY_LIB, "SkylakeX"), _blas(SCIPY_LIB, "Haswell")], {}, 1),
    ([_blas(SCIPY_LIB, "SapphireRapids")], {}, 4),
    ([_blas(SCIPY_LIB, "Zen")], {}, 1),
    # One shared BLAS (conda, distributions).
    ([_blas("/usr/lib/libopenblas.so.0", "SkylakeX")], {}, 4),
    ([_blas("/usr/lib/libmkl_rt.so.2", None, api="mkl")], {}, 1),
    # Two BLAS and neither is SciPy's own: leave GEMMs alone.
    ([_blas("/a/libopenblas.so", "SkylakeX"), _blas("/b/libopenblas.so", "SkylakeX")], {}, 1),
    ([], {}, 1),
    ([_blas(SCIPY_LIB, "Haswell")], {"BPCORE_GEMM_SPLIT": "3"}, 3),
    ([_blas(SCIPY_LIB, "SkylakeX")], {"BPCORE_GEMM_SPLIT": " 1 "}, 1),
])
def test_gemm_split_setting(infos, environ, expected):
    from bpcore._engine import gemm_split_setting
    assert gemm_split_setting(infos, environ) == expected


@pytest.mark.parametrize("value, message", [
    ("yes", "BPCORE_GEMM_SPLIT must be a whole number of row blocks"),
    ("-2", "BPCORE_GEMM_SPLIT must be >= 0"),
])
def test_gemm_split_setting_rejects_bad_environment(value, message):
    from bpcore._engine import gemm_split_setting
    with pytest.raises(ValueError, match=message):
        gemm_split_setting([], {"BPCORE_GEMM_SPLIT": value})


def test_training_respects_threadpool_limits_and_agrees_across_thread_counts():
    threadpoolctl = pytest.importorskip("threadpoolctl")
    X, Y = _threaded_problem()
    default = _train_once(X, Y)
    with threadpoolctl.threadpool_limits(limits=1):
        assert _kernels.max_threads() == 1
        single = _train_once(X, Y)
    # Splitting the batch over threads may reorder sums: rounding-level only.
    np.testing.assert_allclose(single[0], default[0], rtol=1e-12)
    np.testing.assert_allclose(single[1], default[1], rtol=1e-10, atol=1e-13)


# ---------------------------------------------------------------------------
# Ctrl-C
# ---------------------------------------------------------------------------


@pytest.mark.skipif(sys.platform == "win32", reason="SIGINT via os.kill is POSIX")
@pytest.mark.parametrize("sizes", [
    [64, 512, 512, 10],   # split by hidden units of both layers (with 2+ threads)
    [64, 4096, 10],       # split by hidden units (with 2+ threads)
])
def test_ctrl_c_interrupts_training_promptly(sizes):
    rng = np.random.default_rng(0)
    # One epoch of this takes seconds (tens on a slow machine): the signal
    # must be noticed inside the epoch kernel, not between epochs.
    X = rng.standard_normal((8000, 64))
    Y = np.eye(10)[rng.integers(0, 10, 8000)]
    net = Network(sizes, activation="relu", output="softmax", loss="log_loss",
                  random_state=0)
    before = net.params.copy()
    opt = Adam(learning_rate=1e-4)
    sent = {}

    def interrupt():
        sent["at"] = time.perf_counter()
        os.kill(os.getpid(), signal.SIGINT)

    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    timer = threading.Timer(0.3, interrupt)
    try:
        start = time.perf_counter()
        timer.start()
        with pytest.raises(KeyboardInterrupt):
            train(net, X, Y, optimizer=opt, epochs=20, batch_size=32, random_state=0)
        caught = time.perf_counter()
    finally:
        timer.cancel()
        signal.signal(signal.SIGINT, previous)
    assert "at" in sent and sent["at"] - start >= 0.3
    assert caught - sent["at"] < 0.5, f"took {caught - sent['at']:.2f} s after the signal"

    # The kernel restored the caller's floating-point mode (no flush-to-zero).
    assert (np.array([np.finfo(np.float64).tiny]) / 4)[0] > 0
    # Usable afterwards: some batches ran, parameters are finite, forward works,
    # and training continues (with the same optimizer).
    assert np.isfinite(net.params).all()
    assert not np.array_equal(net.params, before)
    # Every thread's block of hidden units was written back (the unit split
    # trains private copies).
    W0 = before[:64 * sizes[1]].reshape(64, sizes[1])
    assert (net.coefs[0][:, 0] != W0[:, 0]).any() and (net.coefs[0][:, -1] != W0[:, -1]).any()
    assert opt.t > 0
    out = net.forward(X[:5])
    assert np.isfinite(out).all()
    np.testing.assert_allclose(out.sum(axis=1), 1.0, rtol=1e-12)
    losses = np.asarray(train(net, X[:64], Y[:64], optimizer=opt, epochs=1, batch_size=32, random_state=0).loss)
    assert np.isfinite(losses).all()


# ---------------------------------------------------------------------------
# Divergence: a clear error, never a crash, finite parameters
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("learning_rate", [0.1, 10.0])
def test_divergence_raises_and_keeps_finite_params(dtype, learning_rate):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((200, 5)) * 1e3     # unscaled, large
    Y = rng.standard_normal((200, 1)) * 1e3
    net = Network([5, 16, 1], activation="relu", dtype=dtype, random_state=0)
    with pytest.raises(DivergenceError, match=re.escape("Training diverged: the loss became "
                                                        "non-finite after ")) as info:
        train(net, X, Y, optimizer=SGD(learning_rate), epochs=5, batch_size=20,
              random_state=0)
    assert isinstance(info.value, ValueError)
    assert "Lower the learning rate, scale the inputs" in str(info.value)
    assert np.isfinite(net.params).all()
    assert net.params.dtype == dtype
    assert info.value.epoch_loss_so_far is not None


def test_nonfinite_parameters_are_restored_to_the_epoch_start():
    """A finite loss whose update overflows the parameters: the network gets
    back the parameters it had when the epoch began."""
    net = Network([2, 1], output="identity", random_state=0)
    start = net.params.copy()
    X = np.array([[10.0, -10.0]])
    Y = np.array([[1e3]])
    with pytest.raises(DivergenceError, match="the parameters became non-finite") as info:
        train(net, X, Y, optimizer=SGD(learning_rate=1e307), epochs=3, batch_size=1)
    assert "restored to their values at the start of that epoch" in str(info.value)
    np.testing.assert_array_equal(net.params, start)


def test_divergence_restores_the_epoch_start_and_resets_the_optimizer():
    """Issue #13, defect 6: after DivergenceError the network has usable
    parameters (those of the start of the diverging epoch, whose loss was
    finite), the optimizer's state is reset, and training resumes at a sane
    rate without diverging again."""
    rng = np.random.default_rng(1)
    X = rng.standard_normal((50, 3))
    Y = rng.standard_normal((50, 1)) * 1e3
    net = Network([3, 4, 1], activation="relu", random_state=0)
    opt = SGD(learning_rate=0.01, momentum=0.9)
    train(net, X, Y / 1e3, optimizer=opt, epochs=2, batch_size=10, random_state=0)
    trained = net.params.copy()
    opt.learning_rate = 1e3
    with pytest.raises(DivergenceError, match="optimizer's state was reset") as info:
        train(net, X, Y, optimizer=opt, epochs=30, batch_size=10, random_state=0)
    # Epochs of finite but exploding losses came first (weights near 1e179):
    # the start of the diverging epoch is not usable, so the fit's start is.
    assert "restored to their values at the start of this fit" in str(info.value)
    np.testing.assert_array_equal(net.params, trained)
    assert np.isfinite(net.forward(X)).all()
    assert opt.state is None or not opt.state.any()
    opt.learning_rate = 1e-6
    losses = np.asarray(train(net, X, Y, optimizer=opt, epochs=2, batch_size=10,
                              random_state=0).loss)
    assert np.isfinite(losses).all() and np.isfinite(net.params).all()


def test_divergence_after_epochs_of_growing_loss_restores_usable_parameters():
    """Issue #27, defect 2: the loss grows over several epochs before it
    overflows, so the start of the diverging epoch already holds weights of
    1e140-1e148 (14 of these 30 seeds before the fix). What comes back must
    be usable: finite, of sane size, with a loss no higher than the fit's
    start, and the message says which start it is."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((60, 4))
    Y = rng.standard_normal((60, 2)) * 1e3
    start = Network([4, 6, 6, 2], random_state=0)
    start_loss = start.loss_and_grad(X, Y)[0]
    for seed in range(30):
        net = Network([4, 6, 6, 2], random_state=0)
        with pytest.raises(DivergenceError, match="restored to their values at the "
                                                  "start of (this fit|that epoch)") as info:
            train(net, X, Y, optimizer=SGD(1e3, momentum=0.9), epochs=20, batch_size=10,
                  random_state=seed)
        loss = net.loss_and_grad(X, Y)[0]
        assert np.abs(net.params).max() < 1e3, (seed, str(info.value))
        assert np.isfinite(loss) and loss <= start_loss, (seed, loss, start_loss)
        if "this fit" in str(info.value):
            np.testing.assert_array_equal(net.params, start.params)
            if "epoch 0;" not in str(info.value):
                assert "the start of that epoch had a training loss of" in str(info.value)


@pytest.mark.parametrize("scale", [1e300, 1e200])
def test_lbfgs_nonfinite_loss_raises_divergence_error(scale):
    """Issue #27, defect 3: L-BFGS returned ``history.loss == [nan]`` without an
    error; now it raises DivergenceError like the minibatch optimizers and
    leaves the starting parameters."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((30, 3))
    Y = rng.standard_normal((30, 1)) * scale
    net = Network([3, 4, 1], random_state=0)
    start = net.params.copy()
    with pytest.raises(DivergenceError, match="became non-finite in L-BFGS .*restored to "
                                              "their values at the start of this fit"):
        train(net, X, Y, optimizer=bpcore.LBFGS())
    np.testing.assert_array_equal(net.params, start)
    assert np.isfinite(net.forward(X)).all()


def test_divergence_keeps_the_epoch_start_when_training_had_improved():
    """Three good epochs, then a rate of 1e4: the start of the diverging
    epoch (better than the fit's start) is what comes back."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((60, 4))
    Y = X @ rng.standard_normal((4, 2))

    class Boost(bpcore.callbacks.Callback):
        def __init__(self, opt):
            self.opt, self.ends = opt, []

        def on_train_begin(self, net):
            self.net = net

        def on_epoch_end(self, epoch, logs):
            self.ends.append(self.net.params.copy())
            if epoch == 2:
                self.opt.learning_rate = 1e4

    net = Network([4, 6, 2], random_state=0)
    opt = SGD(0.01)
    boost = Boost(opt)
    with pytest.raises(DivergenceError, match="start of that epoch"):
        train(net, X, Y, optimizer=opt, epochs=20, batch_size=10, random_state=0,
              callbacks=[boost])
    assert len(boost.ends) == 3
    np.testing.assert_array_equal(net.params, boost.ends[-1])


@pytest.mark.parametrize("n_threads", [1, 2])
def test_minibatch_with_zero_total_weight_is_skipped(n_threads):
    """A batch whose sample weights are all zero carries no information: it
    makes no update (Adam's step count does not advance) and adds nothing to
    the epoch loss; it is not reported as divergence. (scikit-learn itself
    fails here with a division by zero.)"""
    from threadpoolctl import threadpool_limits

    rng = np.random.default_rng(0)
    X, Y = rng.standard_normal((6, 3)), rng.standard_normal((6, 1))
    sw = np.array([1.0, 2.0, 0.0, 0.0, 0.5, 1.5])
    with threadpool_limits(n_threads):
        net = Network([3, 2, 1], activation="tanh", random_state=0)
        opt = Adam(0.01)
        losses = np.asarray(train(net, X, Y, optimizer=opt, epochs=1, batch_size=2, shuffle=False,
                       sample_weight=sw).loss)
        # The same without the zero-weight batch: batches 1 and 3 only.
        ref = Network([3, 2, 1], activation="tanh", random_state=0)
        ref_opt = Adam(0.01)
        keep = [0, 1, 4, 5]
        ref_losses = np.asarray(train(ref, X[keep], Y[keep], optimizer=ref_opt, epochs=1, batch_size=2,
                           shuffle=False, sample_weight=sw[keep]).loss)
    assert opt.t == ref_opt.t == 2
    np.testing.assert_array_equal(net.params, ref.params)
    # Epoch loss = sum(batch_rows * batch_loss) / n: the skipped batch adds 0.
    np.testing.assert_allclose(losses[0] * 6, ref_losses[0] * 4, rtol=1e-14)


# ---------------------------------------------------------------------------
# Input validation
# ---------------------------------------------------------------------------


@pytest.fixture
def problem(rng):
    net = Network([3, 4, 2], activation="tanh", random_state=0)
    return net, rng.standard_normal((10, 3)), rng.standard_normal((10, 2))


@pytest.mark.parametrize("what", ["X", "Y"])
@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_nonfinite_data(problem, what, bad):
    net, X, Y = problem
    params = net.params.copy()
    if what == "X":
        X[4, 1] = bad
    else:
        Y[4, 1] = bad
    with pytest.raises(ValueError, match=re.escape(
            f"{what} contains NaN or infinity (first at index (4, 1)); "
            "remove or impute those values first")):
        train(net, X, Y, optimizer=SGD())
    np.testing.assert_array_equal(net.params, params)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nonfinite_sample_weight(problem, bad):
    net, X, Y = problem
    sw = np.ones(10)
    sw[3] = bad
    with pytest.raises(ValueError, match="sample_weight contains NaN or infinity"):
        train(net, X, Y, optimizer=SGD(), sample_weight=sw)


def test_sample_weight_shape(problem):
    net, X, Y = problem
    with pytest.raises(ValueError, match=re.escape("sample_weight must have shape (10,), got (9,)")):
        train(net, X, Y, optimizer=SGD(), sample_weight=np.ones(9))


@pytest.mark.parametrize("kwargs, error, message", [
    (dict(epochs=0), ValueError, "epochs must be an integer >= 1, got 0"),
    (dict(epochs=2.0), ValueError, "epochs must be an integer >= 1, got 2.0"),
    (dict(batch_size=0), ValueError, "batch_size must be an integer >= 1, got 0"),
    (dict(batch_size=True), ValueError, "batch_size must be an integer >= 1, got True"),
    (dict(alpha=-0.1), ValueError, "alpha must be in [0.0, inf], got -0.1"),
    (dict(alpha=float("nan")), ValueError, "alpha must be a finite real number, got nan"),
    (dict(optimizer="adam"), TypeError,
     "optimizer must be a bpcore optimizer instance (SGD, Adam, AdamW, NAdam, RMSProp, AdaGrad, RPROP or LBFGS), got 'adam'"),
    (dict(optimizer=Adam), TypeError, "optimizer must be a bpcore optimizer instance"),
])
def test_bad_train_arguments(problem, kwargs, error, message):
    net, X, Y = problem
    kwargs = {"optimizer": SGD(), **kwargs}
    with pytest.raises(error, match=re.escape(message)):
        train(net, X, Y, **kwargs)


def test_train_needs_a_network(problem):
    _, X, Y = problem
    with pytest.raises(TypeError, match="net must be a bpcore.Network, got MLPClassifier"):
        from sklearn.neural_network import MLPClassifier

        train(MLPClassifier(), X, Y, optimizer=SGD())


def test_train_shape_errors(problem):
    net, X, Y = problem
    with pytest.raises(ValueError, match=re.escape("X has 4 columns, expected 3")):
        train(net, np.ones((10, 4)), Y, optimizer=SGD())
    with pytest.raises(ValueError, match=re.escape("X has 10 rows but Y has 9")):
        train(net, X, Y[:9], optimizer=SGD())
    with pytest.raises(ValueError, match=re.escape("Y has 1 columns, expected 2")):
        train(net, X, Y[:, :1], optimizer=SGD())
    with pytest.raises(TypeError, match="Y must be a dense array, got a sparse matrix"):
        train(net, X, sp.csr_matrix(Y), optimizer=SGD())
    with pytest.raises(TypeError, match="X must be numeric, got an array of dtype <U"):
        train(net, X.astype(str), Y, optimizer=SGD())


def test_optimizer_reused_on_another_network(problem, rng):
    net, X, Y = problem
    opt = Adam()
    train(net, X, Y, optimizer=opt)
    other = Network([3, 5, 2], random_state=0)
    with pytest.raises(ValueError, match=re.escape("call reset() before using it on another")):
        train(other, X, Y, optimizer=opt)
    other32 = Network([3, 4, 2], dtype="float32", random_state=0)
    with pytest.raises(ValueError, match="call reset"):
        train(other32, X, Y, optimizer=opt)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_integer_class_labels_train_as_one_hot_bit_for_bit(dtype):
    """TOOLBOX.md section 9: 1-D integer labels for a softmax output train
    exactly as their one-hot rows (train, validation_data and loss_and_grad)."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((90, 5))
    y = rng.integers(0, 3, 90)
    Y = np.eye(3)[y]
    results = []
    for targets, val in ((y, y[:30]), (Y, Y[:30])):
        net = bpcore.Network([5, 7, 3], output="softmax", loss="log_loss", dtype=dtype,
                             dropout=0.1, random_state=0)
        h = bpcore.train(net, X, targets, optimizer=bpcore.Adam(), epochs=3, batch_size=16,
                         random_state=0, validation_data=(X[:30], val))
        loss, grad = net.loss_and_grad(X, targets, alpha=1e-3)
        results.append((net.params.copy(), h.loss, h.val_loss, loss, grad))
    (p1, l1, v1, f1, g1), (p2, l2, v2, f2, g2) = results
    np.testing.assert_array_equal(p1, p2)
    assert l1 == l2 and v1 == v2 and f1 == f2
    np.testing.assert_array_equal(g1, g2)


def test_binary_labels_for_a_single_logistic_unit_bit_for_bit():
    rng = np.random.default_rng(1)
    X = rng.standard_normal((60, 4))
    y = rng.integers(0, 2, 60)
    params = []
    for targets in (y, y.reshape(-1, 1).astype(float), y.astype(bool)):
        net = bpcore.Network([4, 6, 1], output="logistic", loss="log_loss", random_state=0)
        bpcore.train(net, X, targets, optimizer=bpcore.SGD(0.1), epochs=2, random_state=0)
        params.append(net.params.copy())
    np.testing.assert_array_equal(params[0], params[1])
    np.testing.assert_array_equal(params[2], params[1])


def test_class_labels_bad_values_say_how_to_fix():
    net = bpcore.Network([4, 3], output="softmax", loss="log_loss", random_state=0)
    X = np.zeros((3, 4))
    with pytest.raises(ValueError, match=r"class label 3, outside \[0, 3\).*LabelEncoder"):
        net.loss_and_grad(X, np.array([0, 1, 3]))
    with pytest.raises(ValueError, match=r"class label -1"):
        bpcore.train(net, X, np.array([0, -1, 2]), optimizer=bpcore.SGD())
    with pytest.raises(ValueError, match=r"dtype float64.*integer class labels.*astype\(int\)"):
        net.loss_and_grad(X, np.array([0.0, 1.0, 2.0]))
