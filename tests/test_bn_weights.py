"""Batch norm honours sample weights: a row of integer weight w counts as w rows.

The oracle is the same network on the repeated rows (``np.repeat(X, w)``,
unweighted), which tests/test_layers_torch.py already holds to torch's
``BatchNorm1d``; here the repeated rows are also run through torch itself.
The weighted path's gradient is checked by central finite differences
(non-integer weights, where there is no repeated-rows twin), the row split's
weight reduction by one against two threads, and batches of total weight
<= 1 (which leave the running statistics alone) and 0 (no NaN, no update).
Deviations are printed in the terminal summary (``deviation_record``).
"""
import numpy as np
import pytest
import threadpoolctl

from bpcore import SGD, Adam, AdamW, Network, train
from bpcore import _engine, _threads
from conftest import make_targets
import reference as ref

TOL = {np.dtype(np.float64): 1e-12, np.dtype(np.float32): 2e-5}

CASES = [
    dict(batch_norm=True, activation="tanh"),
    dict(batch_norm=True, activation="gelu", output="softmax", loss="log_loss"),
    dict(batch_norm=[False, True], activation="relu", loss="huber"),
    dict(batch_norm=True, activation="silu", residual=True),
]
IDS = ["tanh", "softmax", "second-layer", "residual"]


def _net(case, dtype, sizes=(5, 7, 7, 3), random_state=3):
    net = Network(list(sizes), dtype=dtype, random_state=random_state, **case)
    ref.perturb_bn(net, np.random.default_rng(random_state))
    return net


def _data(net, n, rng):
    X = rng.standard_normal((n, net.n_features)) * 2 + 1
    Y = make_targets(net.loss, net.output, n, net.n_outputs, rng)
    return X, Y


def _weights(n, rng, low=0):
    """Integer weights in [low, 3], at least two rows of weight >= 1."""
    w = rng.integers(low, 4, n).astype(float)
    w[:2] = np.maximum(w[:2], 1)
    return w


def _block_error(net, g, g_ref):
    """Largest per-block ||g - g_ref|| / ||g_ref|| (weights, biases, BN scales)."""
    g, g_ref = np.asarray(g, np.float64), np.asarray(g_ref, np.float64)
    worst = 0.0
    for _, _, off, size in net.blocks:
        a, b = g[off:off + size], g_ref[off:off + size]
        worst = max(worst, np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-300))
    return worst


def _rel(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-300))


# -- loss and gradient: weighted == repeated rows --------------------------------

@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_weighted_equals_repeated_rows(case, dtype, deviation_record):
    """15 rows (scikit-learn's sample-weight-equivalence checks), weights in
    0..3: loss and gradient in training equal those of the repeated rows."""
    rng = np.random.default_rng(1)
    net = _net(case, dtype)
    X, Y = _data(net, 15, rng)
    w = _weights(15, rng)
    assert (w == 0).any() and (w > 1).any()
    value, grad = net.loss_and_grad(X, Y, alpha=0.1, sample_weight=w, training=True)
    rep = np.repeat(np.arange(15), w.astype(int))
    value_r, grad_r = net.loss_and_grad(X[rep], Y[rep], alpha=0.1, training=True)
    err = deviation_record.add("BN weighted vs repeated rows (loss, grad)", dtype,
                               max(abs(value - value_r) / abs(value_r),
                                   _block_error(net, grad, grad_r)))
    assert err <= TOL[net.dtype]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_weighted_equals_torch_on_repeated_rows(case, dtype, deviation_record):
    """The same, with torch's BatchNorm1d on the repeated rows as the oracle."""
    pytest.importorskip("torch", reason="torch is this test's oracle")
    from torch_net import torch_loss_and_grad
    rng = np.random.default_rng(2)
    net = _net(case, dtype)
    X, Y = _data(net, 15, rng)
    w = _weights(15, rng)
    value, grad = net.loss_and_grad(X, Y, alpha=0.1, sample_weight=w, training=True)
    rep = np.repeat(np.arange(15), w.astype(int))
    value_t, grad_t = torch_loss_and_grad(net, X[rep], Y[rep], alpha=0.1, training=True)
    err = deviation_record.add("BN weighted vs torch on repeated rows", dtype,
                               max(abs(value - value_t) / abs(value_t),
                                   _block_error(net, grad, grad_t)))
    assert err <= TOL[net.dtype]


def test_zero_weight_rows_are_absent_rows():
    """Rows of weight 0 change nothing: not the statistics, not the gradient."""
    rng = np.random.default_rng(3)
    net = _net(CASES[0], np.float64)
    X, Y = _data(net, 15, rng)
    w = np.ones(15)
    w[[3, 7, 11]] = 0
    X[[3, 7, 11]] *= 100            # far off: would shift unweighted statistics
    value, grad = net.loss_and_grad(X, Y, sample_weight=w, training=True)
    keep = w > 0
    value_k, grad_k = net.loss_and_grad(X[keep], Y[keep], training=True)
    assert value == pytest.approx(value_k, rel=1e-13)
    assert _block_error(net, grad, grad_k) <= 1e-13


# -- finite differences on the weighted path -------------------------------------

@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_weighted_gradient_by_finite_differences(case, deviation_record):
    """Non-integer weights (no repeated-rows twin), one of them 0: the
    gradient is the derivative of the loss, within the central differences'
    truncation and rounding (per block, h = 1e-6)."""
    rng = np.random.default_rng(4)
    net = _net(case, np.float64)
    X, Y = _data(net, 12, rng)
    w = rng.uniform(0.2, 3.0, 12)
    w[5] = 0.0
    _, grad = net.loss_and_grad(X, Y, alpha=0.1, sample_weight=w, training=True)
    theta = net.params.copy()
    fd = np.empty_like(theta)
    h = 1e-6
    for i in range(theta.size):
        up, down = theta.copy(), theta.copy()
        up[i] += h
        down[i] -= h
        net.params = up
        lp, _ = net.loss_and_grad(X, Y, alpha=0.1, sample_weight=w, training=True)
        net.params = down
        lm, _ = net.loss_and_grad(X, Y, alpha=0.1, sample_weight=w, training=True)
        fd[i] = (lp - lm) / (up[i] - down[i])
    net.params = theta
    err = deviation_record.add("BN weighted gradient vs finite differences", np.float64,
                               _block_error(net, grad, fd))
    assert err <= 1e-7


# -- training: running statistics, threads, empty batches ------------------------

@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("shuffle", [False, True])
def test_train_full_batch_equals_repeated_rows(dtype, shuffle, deviation_record):
    """Full-batch training (one batch a step, as scikit-learn's checks fit 15
    rows): parameters, running means and variances (the unbiased correction
    W / (W - 1) is the repeated rows' N / (N - 1)) and epoch losses."""
    rng = np.random.default_rng(5)
    case = dict(batch_norm=True, activation="tanh")
    X, Y = _data(_net(case, dtype), 15, rng)
    w = _weights(15, rng)
    rep = np.repeat(np.arange(15), w.astype(int))
    a, b = _net(case, dtype), _net(case, dtype)
    h_a = train(a, X, Y, optimizer=AdamW(1e-2, weight_decay=1e-2), epochs=5,
                batch_size=15, shuffle=shuffle, random_state=0, sample_weight=w, alpha=0.1)
    h_b = train(b, X[rep], Y[rep], optimizer=AdamW(1e-2, weight_decay=1e-2), epochs=5,
                batch_size=rep.size, shuffle=shuffle, random_state=0, alpha=0.1)
    tol = TOL[np.dtype(dtype)] * 10
    err = _block_error(a, a.params, b.params)
    for l, m in enumerate(a.bn_means):
        err = max(err, _rel(m, b.bn_means[l]), _rel(a.bn_vars[l], b.bn_vars[l]))
    err = max(err, _rel(h_a.loss, h_b.loss))
    deviation_record.add("BN weighted vs repeated rows (train)", dtype, err)
    assert err <= tol
    # The statistics did move (the comparison is not of two untouched nets).
    assert _rel(a.bn_vars[0], _net(case, dtype).bn_vars[0]) > 1e-3


@pytest.fixture
def two_threads(monkeypatch):
    """Let the row split use 2 threads for the small networks of these tests."""
    if _threads.available_cpus() < 2:
        pytest.skip("needs 2 CPUs")
    monkeypatch.setattr(_engine, "_MIN_MACS_PER_SYNC", 1)
    monkeypatch.setattr(_engine, "_MIN_ROWS_PER_THREAD", 1)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_one_and_two_threads_agree(dtype, two_threads, deviation_record):
    """The row split reduces the weight sums with the statistics: minibatch
    fits on 1 and 2 threads agree to rounding, one batch of total weight 0
    and one of weight 1 included."""
    rng = np.random.default_rng(6)
    case = dict(batch_norm=True, activation="tanh", dropout=[0.2, 0.0])
    X = rng.standard_normal((64, 5))
    Y = rng.standard_normal((64, 3))
    w = rng.uniform(0.0, 3.0, 64)
    w[16:32] = 0.0                  # the second batch: no weight
    w[32:48] = 0.0
    w[40] = 1.0                     # the third: weight 1
    fits = []
    for threads in (1, 2):
        net = _net(case, dtype, sizes=(5, 12, 12, 3))
        with threadpoolctl.threadpool_limits(threads):
            assert _engine.choose_threads(net.layout, 16, True, False) == (threads, False)
            h = train(net, X, Y, optimizer=Adam(1e-2), epochs=3, batch_size=16,
                      shuffle=False, random_state=0, sample_weight=w)
        fits.append((net, h))
    (a, h_a), (b, h_b) = fits
    err = max(_block_error(a, a.params, b.params), _rel(h_a.loss, h_b.loss))
    for l, m in enumerate(a.bn_means):
        err = max(err, _rel(m, b.bn_means[l]), _rel(a.bn_vars[l], b.bn_vars[l]))
    deviation_record.add("BN weighted, 1 vs 2 threads", dtype, err)
    assert np.isfinite(a.params).all()
    assert err <= (1e-13 if dtype == np.float64 else 1e-5)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("make_opt", [lambda: SGD(0.1, momentum=0.0), lambda: Adam(1e-2)],
                         ids=["sgd", "adam"])
def test_light_batches_leave_the_running_statistics(dtype, make_opt):
    """Batches of total weight 0 make no update and leave the running
    statistics (the repeated rows would be an empty batch); one of weight 1
    is trained on but leaves them too (the unbiased variance of one row is
    undefined). Training equals training on the other batches alone."""
    rng = np.random.default_rng(7)
    case = dict(batch_norm=True, activation="tanh")
    X, Y = _data(_net(case, dtype), 30, rng)
    w = rng.uniform(0.5, 2.0, 30)
    w[10:20] = 0.0
    a = _net(case, dtype)
    train(a, X, Y, optimizer=make_opt(), epochs=1, batch_size=10, shuffle=False,
          random_state=0, sample_weight=w)
    b = _net(case, dtype)
    keep = np.r_[0:10, 20:30]
    train(b, X[keep], Y[keep], optimizer=make_opt(), epochs=1, batch_size=10, shuffle=False,
          random_state=0, sample_weight=w[keep])
    assert np.isfinite(a.params).all()
    np.testing.assert_array_equal(a.params, b.params)
    for l, m in enumerate(a.bn_means):
        np.testing.assert_array_equal(m, b.bn_means[l])
        np.testing.assert_array_equal(a.bn_vars[l], b.bn_vars[l])

    # A batch of weight 1: the parameters move, the running statistics not.
    w1 = np.zeros(10)
    w1[4] = 1.0
    c = _net(case, dtype)
    means, vars_ = c.bn_means[0].copy(), c.bn_vars[0].copy()
    theta = c.params.copy()
    train(c, X[:10], Y[:10], optimizer=make_opt(), epochs=1, batch_size=10,
          random_state=0, sample_weight=w1)
    assert np.isfinite(c.params).all()
    assert not np.array_equal(c.params, theta)
    np.testing.assert_array_equal(c.bn_means[0], means)
    np.testing.assert_array_equal(c.bn_vars[0], vars_)
