"""The epoch kernel's two ways of using threads agree with one thread.

Row split: every thread runs its rows of the batch, gradients are summed.
Hidden-unit split (small batches): every thread owns a block of units of
every hidden layer and their weights for the whole epoch (_epoch_by_units).
Both only reorder sums, so results agree with one thread to rounding; with one
thread the unit split is bitwise the plain path.
"""
import sys

import numpy as np
import pytest
import scipy.sparse as sp

from bpcore import SGD, Adam, AdaGrad, AdamW, DivergenceError, NAdam, Network, RMSProp, train
from bpcore import _engine, _kernels
from bpcore._engine import choose_threads
from bpcore.network import BN_MOMENTUM
from bpcore._validation import csr_input
from conftest import DTYPES, make_targets

CASES = [
    # hidden activation, output, loss
    ("relu", "softmax", "log_loss"),
    ("tanh", "identity", "squared_error"),
    ("logistic", "logistic", "log_loss"),   # binary / multilabel
    ("leaky_relu", "logistic", "squared_error"),
    ("elu", "exp", "poisson"),
    # The regression losses' delta goes back through any output activation.
    ("relu", "logistic", "absolute_error"),
    ("tanh", "tanh", "huber"),
]
OPTIMIZERS = {
    "adam": lambda: Adam(1e-2),
    "adam-paper": lambda: Adam(1e-2, variant="paper"),
    "nesterov": lambda: SGD(0.05, momentum=0.9, nesterov=True),
    "sgd": lambda: SGD(0.05),
    "rmsprop": lambda: RMSProp(1e-3),
    "adagrad": lambda: AdaGrad(1e-2),
}


def _epochs(by_units, n_threads, *, case=CASES[0], opt="adam", dtype=np.float64,
            alpha=1e-4, weighted=False, shuffle=True, batch_size=32, sizes=(13, 37, 4),
            epochs=3):
    rng = np.random.default_rng(0)
    n = 301
    act, output, loss = case
    X = rng.standard_normal((n, sizes[0])).astype(dtype)
    Y = make_targets(loss, output, n, sizes[-1], rng).astype(dtype)
    sw = rng.uniform(0, 2, n).astype(dtype) if weighted else None
    net = Network(list(sizes), activation=act, output=output, loss=loss, dtype=dtype,
                  random_state=0)
    optimizer = OPTIMIZERS[opt]()
    layout = net.layout
    state = optimizer.state_for(net.params)
    grad = np.zeros((2, net.params.size), dtype)
    work = np.zeros(max(layout.workspace_size(batch_size),
                        layout.units_workspace_size(batch_size, 2)), dtype)
    batches = _kernels.Minibatches(X, Y, sw, None, batch_size, alpha, work, np.zeros(n))
    orders = np.random.RandomState(1)
    losses = []
    for _ in range(epochs):
        batches.perm = orders.permutation(n).astype(np.intp) if shuffle else None
        status = _kernels.train_epoch(layout, optimizer._config, batches, net.params, grad,
                                      state, n_threads, by_units)
        assert status == _kernels.Status.OK
        losses.append(batches.batch_loss[:batches.n_done].copy())
    return net.params.copy(), np.concatenate(losses), optimizer._config.t, state.copy()


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("opt", sorted(OPTIMIZERS))
def test_unit_split_agrees_with_one_thread(case, opt, dtype):
    plain = _epochs(False, 1, case=case, opt=opt, dtype=dtype)
    one = _epochs(True, 1, case=case, opt=opt, dtype=dtype)
    two = _epochs(True, 2, case=case, opt=opt, dtype=dtype)
    # One thread: the same operations in the same order, except that sum(W**2)
    # of the L2 term is summed block by block.
    np.testing.assert_array_equal(one[0], plain[0])
    np.testing.assert_array_equal(one[3], plain[3])
    np.testing.assert_allclose(one[1], plain[1], rtol=1e-15 if dtype == np.float64 else 1e-6)
    assert one[2] == plain[2] == two[2] == 30
    # Two threads: the output product is summed in two halves.
    rtol, atol = (1e-11, 1e-13) if dtype == np.float64 else (2e-4, 2e-5)
    np.testing.assert_allclose(two[0], plain[0], rtol=rtol, atol=atol)
    np.testing.assert_allclose(two[1], plain[1], rtol=rtol)
    assert np.isfinite(two[0]).all()


@pytest.mark.parametrize("kwargs", [
    dict(weighted=True), dict(alpha=0.0), dict(shuffle=False), dict(batch_size=7),
    dict(batch_size=301), dict(batch_size=1), dict(sizes=(5, 3, 2)),   # 3 units, 2 threads
    dict(sizes=(1, 1, 1), case=("tanh", "identity", "squared_error")),  # fewer units than threads
    dict(sizes=(5, 3, 9)),                                  # more outputs than hidden units
    dict(sizes=(5, 3, 9), batch_size=301, weighted=True),
    dict(opt="nesterov", weighted=True, batch_size=5),
])
def test_unit_split_edge_cases(kwargs):
    plain = _epochs(False, 1, **kwargs)
    two = _epochs(True, 2, **kwargs)
    np.testing.assert_allclose(two[0], plain[0], rtol=1e-11, atol=1e-13)
    np.testing.assert_allclose(two[1], plain[1], rtol=1e-11)
    np.testing.assert_array_equal(_epochs(True, 1, **kwargs)[0], plain[0])


def test_unit_split_is_deterministic():
    first = _epochs(True, 2)
    for _ in range(5):
        again = _epochs(True, 2)
        np.testing.assert_array_equal(again[0], first[0])
        np.testing.assert_array_equal(again[1], first[1])


def test_unit_split_skips_batches_without_weight():
    """A batch whose sample weights are all zero makes no update in either split."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((40, 6))
    Y = np.eye(3)[rng.integers(0, 3, 40)]
    sw = np.ones(40)
    sw[10:20] = 0.0
    out = {}
    for by_units, nt in [(False, 1), (True, 2)]:
        net = Network([6, 8, 3], output="softmax", loss="log_loss", random_state=0)
        opt = Adam(1e-2)
        layout = net.layout
        work = np.zeros(max(layout.workspace_size(10), layout.units_workspace_size(10, 2)))
        batches = _kernels.Minibatches(X, Y, sw, None, 10, 1e-4, work, np.zeros(4))
        status = _kernels.train_epoch(layout, opt._config, batches, net.params,
                                      np.zeros((2, net.params.size)), opt.state_for(net.params),
                                      nt, by_units)
        assert status == _kernels.Status.OK and batches.n_done == 4
        out[by_units] = (net.params.copy(), batches.batch_loss.copy(), opt.t)
    assert out[True][1][1] == out[False][1][1] == 0.0
    assert out[True][2] == out[False][2] == 3
    np.testing.assert_allclose(out[True][0], out[False][0], rtol=1e-12, atol=1e-14)


def test_unit_split_rejects_what_it_cannot_run():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((20, 4))
    Y = rng.standard_normal((20, 2))
    linear = Network([4, 2], random_state=0)
    with pytest.raises(ValueError, match="needs at least one hidden layer"):
        linear.layout.units_workspace_size(8, 2)
    opt = SGD(0.1)
    batches = _kernels.Minibatches(X, Y, None, None, 8, 0.0,
                                   np.zeros(linear.layout.workspace_size(8)), np.zeros(3))
    with pytest.raises(ValueError, match="needs at least one hidden layer"):
        _kernels.train_epoch(linear.layout, opt._config, batches, linear.params,
                             np.zeros((2, linear.params.size)), opt.state_for(linear.params),
                             2, True)
    bn = Network([4, 5, 5, 2], batch_norm=True, random_state=0)
    opt = SGD(0.1)
    batches = _kernels.Minibatches(X, Y, None, None, 8, 0.0,
                                   np.zeros(bn.layout.units_workspace_size(8, 2)), np.zeros(3))
    with pytest.raises(ValueError, match="needs data.workspace.stats"):
        _kernels.train_epoch(bn.layout, opt._config, batches, bn.params,
                             np.zeros((2, bn.params.size)), opt.state_for(bn.params),
                             2, True, bn.buffers)
    net = Network([4, 5, 2], random_state=0)
    opt = SGD(0.1)
    opt = SGD(0.1)
    small = _kernels.Minibatches(X, Y, None, None, 8, 0.0,
                                 np.zeros(net.layout.workspace_size(8)), np.zeros(3))
    with pytest.raises(ValueError, match="workspace too small for by_units"):
        _kernels.train_epoch(net.layout, opt._config, small, net.params,
                             np.zeros((2, net.params.size)), opt.state_for(net.params), 2, True)
    csr = csr_input(sp.csr_matrix(X), np.float64)
    sparse = _kernels.Minibatches(csr, Y, None, None, 8, 0.0,
                                  np.zeros(net.layout.units_workspace_size(8, 2)), np.zeros(3))
    with pytest.raises(ValueError, match="dense X"):
        _kernels.train_epoch(net.layout, opt._config, sparse, net.params,
                             np.zeros((2, net.params.size)), opt.state_for(net.params), 2, True)


def test_choose_threads(monkeypatch):
    monkeypatch.setattr(_kernels, "max_threads", lambda: 2)
    w1 = Network([64, 100, 10]).layout
    assert choose_threads(w1, 32) == (2, True)             # scikit-learn's shape, small batch
    assert choose_threads(w1, 200) == (2, True)            # W2's batch: units too
    assert choose_threads(w1, 512) == (2, True)
    assert choose_threads(w1, 513) == (2, False)           # larger batches: rows
    assert choose_threads(w1, 32, dense=False) == (1, False)
    assert choose_threads(Network([64, 100, 100, 10]).layout, 32) == (2, True)
    assert choose_threads(Network([64, 100, 100, 10]).layout, 32, False) == (1, False)
    assert choose_threads(Network([4, 8, 2]).layout, 32) == (1, False)   # too small to split
    monkeypatch.setattr(_kernels, "max_threads", lambda: 1)
    assert choose_threads(w1, 32) == (1, False)


def test_choose_threads_counts_batch_norms_synchronization_points(monkeypatch):
    """The row split needs 500 k multiply-adds per thread for each of its
    synchronization points: 2 per batch, 2 more per batch-normalized layer.
    Dropout and the residual skip add none."""
    monkeypatch.setattr(_kernels, "max_threads", lambda: 2)
    sizes = [64, 128, 128, 10]          # W6: 2.48 M multiply-adds per batch of 32

    def threads(batch, **layers):
        # (the row split's rule: the unit split is not asked)
        return choose_threads(Network(sizes, **layers).layout, batch, True, False)
    # 32 rows: 1.24 M multiply-adds per thread and point, but 16 rows per
    # thread (W6-plain ran at 0.93x / 0.36x of one thread, fast / slow phase).
    assert threads(32) == (1, False)
    assert threads(32, dropout=0.1, residual=[False, True]) == (1, False)
    assert threads(128) == (2, False)                           # 64 rows per thread
    assert threads(127) == (1, False)
    w6 = dict(batch_norm=True, dropout=0.1, residual=[False, True])
    assert threads(32, **w6) == (1, False)                      # 6 points: 207 k each
    assert threads(128, batch_norm=[False, True]) == (2, False)  # 4 points: 1.24 M each
    assert threads(128, **w6) == (2, False)                     # 6 points: 827 k each
    # Enough rows, too little work per point: 20-32-2 at batch 512 has
    # 1.7 M multiply-adds per batch for 6 points.
    assert choose_threads(Network([20, 32, 32, 2], batch_norm=True).layout, 512) == (1, False)
    # Deterministic: shapes decide, so asking again gives the same answer.
    assert [threads(32, **w6) for _ in range(3)] == [(1, False)] * 3


def test_choose_threads_unit_split_counts_its_synchronization_points(monkeypatch):
    """The unit split's synchronization points: 2 per batch, 2 more per
    hidden layer after the first (one forward, one backward); batch norm,
    dropout and the skip add none. One hidden layer keeps the former rule
    (50 k multiply-adds per thread and point, 100 k per batch); deeper
    networks, whose further points move a layer's activations between the
    cores, need 150 k per thread and point."""
    monkeypatch.setattr(_kernels, "max_threads", lambda: 2)
    w6 = dict(batch_norm=True, dropout=0.1, residual=[False, True])

    def threads(sizes, batch, **layers):
        return choose_threads(Network(sizes, **layers).layout, batch)
    assert threads([64, 128, 128, 10], 32, **w6) == (2, True)   # 2.48 M: 310 k per point
    assert threads([64, 128, 128, 128, 10], 32) == (2, True)      # 4.06 M, 6 points: 338 k
    assert threads([64, 128, 128, 10], 128, **w6) == (2, True)
    assert threads([64, 128, 128, 10], 129, **w6) == (2, False)  # beyond 128: rows
    assert threads([20, 32, 2], 128) == (2, True)                # 0.27 M, 2 points: 68 k each
    assert threads([20, 32, 2], 64) == (1, False)                # 0.14 M: 34 k each
    assert threads([20, 32, 32, 2], 128) == (1, False)           # 0.66 M, 4 points: 83 k each
    assert threads([64, 100, 100, 10], 32) == (2, True)          # 1.67 M: 209 k each
    assert threads([64, 64, 64, 10], 32) == (1, False)           # 0.85 M: 106 k each
    assert threads([64, 64, 64, 10], 64) == (2, True)            # 213 k each
    assert threads([64, 1, 64, 10], 128) == (1, False)           # a 1-unit layer: one block
    assert threads([64, 128, 128, 10], 32, **w6) == threads([64, 128, 128, 10], 32)
    monkeypatch.setattr(_kernels, "max_threads", lambda: 1)
    assert threads([64, 128, 128, 10], 32, **w6) == (1, False)


# ---------------------------------------------------------------------------
# The unit split of deep networks: batch norm, dropout and skips per column
# ---------------------------------------------------------------------------

LAYERS = {
    "plain": {},
    "bn": dict(batch_norm=True),
    "dropout": dict(dropout=0.2),
    "residual": dict(residual=[False, True]),
    "bn+dropout": dict(batch_norm=True, dropout=[0.3, 0.1]),
    "bn+residual": dict(batch_norm=[False, True], residual=[False, True]),
    "dropout+residual": dict(dropout=0.2, residual=[False, True]),
    "w6": dict(batch_norm=True, dropout=0.1, residual=[False, True]),
}
DEEP_OPTIMIZERS = {
    "adam": lambda: Adam(1e-2),
    "adamw": lambda: AdamW(1e-2, weight_decay=0.01),
    "nadam": lambda: NAdam(1e-2),
    "sgd": lambda: SGD(0.05, momentum=0.9, nesterov=True),
    "rmsprop": lambda: RMSProp(1e-3),
}


def _deep_epochs(by_units, n_threads, *, layers="w6", act="relu", opt="adam",
                 dtype=np.float64, weighted=False, batch_size=32, sizes=(13, 24, 24, 4),
                 epochs=3, shuffle=True, n=301, X=None, output="softmax", loss="log_loss"):
    """Epochs of the kernel itself: (params, batch losses, steps, optimizer
    state, running statistics, status, batches done)."""
    rng = np.random.default_rng(0)
    if X is None:
        X = rng.standard_normal((n, sizes[0]))
    X = np.ascontiguousarray(X, dtype=dtype)
    n = X.shape[0]
    Y = make_targets(loss, output, n, sizes[-1], rng).astype(dtype)
    sw = rng.uniform(0, 2, n).astype(dtype) if weighted else None
    net = Network(list(sizes), activation=act, output=output, loss=loss, dtype=dtype,
                  random_state=0, **LAYERS.get(layers, layers) if isinstance(layers, str)
                  else layers)
    optimizer = {**OPTIMIZERS, **DEEP_OPTIMIZERS}[opt]()
    layout = net.layout
    state = optimizer.state_for(net.params)
    grad = np.zeros((2, net.params.size), dtype)
    work = np.zeros(max(layout.workspace_size(batch_size),
                        layout.units_workspace_size(batch_size, 2)), dtype)
    batches = _kernels.Minibatches(X, Y, sw, None, batch_size, 1e-4, work, np.zeros(n))
    batches.workspace.stats = np.zeros(layout.stats_size(2))
    batches.seed = 7
    batches.keys = _kernels.row_keys(X) if layout.has_dropout else None
    orders = np.random.RandomState(1)
    losses = []
    status = _kernels.Status.OK
    for epoch in range(epochs):
        batches.epoch = epoch
        batches.perm = orders.permutation(n).astype(np.intp) if shuffle else None
        status = _kernels.train_epoch(layout, optimizer._config, batches, net.params, grad,
                                      state, n_threads, by_units, net.buffers)
        losses.append(batches.batch_loss[:batches.n_done].copy())
        if status != _kernels.Status.OK:
            break
    return (net.params.copy(), np.concatenate(losses), optimizer._config.t, state.copy(),
            net.buffers.copy(), status, batches.n_done)


def _assert_agree(two, one, dtype, scale=1.0):
    rtol, atol = (1e-10 * scale, 1e-12 * scale) if dtype == np.float64 else (
        3e-4 * scale, 3e-5 * scale)
    for k in (0, 1, 3, 4):          # params, losses, optimizer state, running statistics
        np.testing.assert_allclose(two[k], one[k], rtol=rtol, atol=atol, err_msg=str(k))
    assert two[2] == one[2] and two[5] == one[5] and two[6] == one[6]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("act", ["relu", "tanh", "elu", "selu", "gelu"])
@pytest.mark.parametrize("layers", sorted(LAYERS))
def test_deep_unit_split_agrees_with_one_thread(layers, act, dtype):
    """Two hidden layers, every combination of batch norm, dropout and the
    skip, activations reading their output or their pre-activation: two
    threads give the one-thread fit (row split) to rounding, with the same
    dropout masks (a wrong mask would move the fit by far more), the same
    running statistics and loss record; one thread of the unit split is the
    row split's fit bitwise."""
    rows = _deep_epochs(False, 1, layers=layers, act=act, dtype=dtype)
    one = _deep_epochs(True, 1, layers=layers, act=act, dtype=dtype)
    two = _deep_epochs(True, 2, layers=layers, act=act, dtype=dtype)
    for k in (0, 3, 4):
        np.testing.assert_array_equal(one[k], rows[k])
    _assert_agree(two, rows, dtype)
    assert rows[2] == 30 and rows[5] == _kernels.Status.OK


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("opt", sorted(DEEP_OPTIMIZERS))
@pytest.mark.parametrize("weighted", [False, True])
def test_deep_unit_split_optimizers_and_weights(opt, weighted, dtype):
    rows = _deep_epochs(False, 1, opt=opt, weighted=weighted, dtype=dtype)
    two = _deep_epochs(True, 2, opt=opt, weighted=weighted, dtype=dtype)
    _assert_agree(two, rows, dtype)


@pytest.mark.parametrize("kwargs", [
    dict(batch_size=1, layers="dropout+residual"), dict(batch_size=2, layers="dropout"),
    dict(batch_size=7), dict(batch_size=128), dict(batch_size=301),
    dict(batch_size=7, weighted=True, shuffle=False),
    dict(sizes=(13, 24, 17, 9, 4), layers=dict(batch_norm=True, dropout=0.1)),  # 3 hidden
    dict(sizes=(16, 16, 16, 16, 4), layers=dict(residual=True, batch_norm=True)),  # skip on X
    dict(sizes=(5, 3, 2, 2), layers=dict(batch_norm=True)),     # uneven blocks: 1|2, 1|1
    dict(sizes=(5, 1, 3, 2), layers=dict(batch_norm=[False, True])),  # a 1-unit layer: team 1
    dict(sizes=(6, 40, 3, 40, 5), layers=dict(dropout=0.2)),    # wide, narrow, wide
    dict(output="identity", loss="squared_error", act="softplus"),
    dict(output="logistic", loss="log_loss", act="silu", layers="bn+dropout"),
])
def test_deep_unit_split_edge_cases(kwargs):
    rows = _deep_epochs(False, 1, **kwargs)
    two = _deep_epochs(True, 2, **kwargs)
    _assert_agree(two, rows, np.float64)
    one = _deep_epochs(True, 1, **kwargs)
    np.testing.assert_array_equal(one[0], rows[0])


@pytest.mark.parametrize("dtype", DTYPES)
def test_deep_unit_split_is_bitwise_reproducible(dtype):
    first = _deep_epochs(True, 2, dtype=dtype, weighted=True)
    for _ in range(3):
        again = _deep_epochs(True, 2, dtype=dtype, weighted=True)
        for k in (0, 1, 3, 4):
            np.testing.assert_array_equal(again[k], first[k])


@pytest.mark.parametrize("layers", ["w6", "plain"])
def test_deep_unit_split_stops_before_a_nonfinite_batch(layers):
    """A batch whose loss is not finite (an infinite input row) stops the
    epoch before its update, after the same batches as the row split."""
    X = np.random.default_rng(3).standard_normal((301, 13))
    X[100] = np.inf                 # batch 3 (rows 96..127) in the natural order
    rows = _deep_epochs(False, 1, layers=layers, X=X, shuffle=False)
    two = _deep_epochs(True, 2, layers=layers, X=X, shuffle=False)
    assert rows[5] == two[5] == _kernels.Status.NONFINITE_LOSS
    assert rows[6] == two[6] == 3 and rows[2] == two[2] == 3
    assert np.isfinite(two[0]).all()
    _assert_agree(two, rows, np.float64)


def test_deep_unit_split_skips_batches_without_weight():
    """A batch whose sample weights are all zero makes no update, and batch
    norm falls back to its unweighted statistics, in either split."""
    rng = np.random.default_rng(0)
    sw_zero = np.ones(301)
    sw_zero[32:64] = 0.0
    out = []
    for by_units, nt in [(False, 1), (True, 2)]:
        net = Network([13, 24, 24, 4], output="softmax", loss="log_loss",
                      random_state=0, **LAYERS["w6"])
        X = rng.standard_normal((301, 13)) if not out else X
        Y = np.eye(4)[np.arange(301) % 4]
        opt = Adam(1e-2)
        layout = net.layout
        work = np.zeros(max(layout.workspace_size(32), layout.units_workspace_size(32, 2)))
        batches = _kernels.Minibatches(X, Y, sw_zero, None, 32, 1e-4, work, np.zeros(10))
        batches.workspace.stats = np.zeros(layout.stats_size(2))
        batches.keys = _kernels.row_keys(X)
        status = _kernels.train_epoch(layout, opt._config, batches, net.params,
                                      np.zeros((2, net.params.size)),
                                      opt.state_for(net.params), nt, by_units, net.buffers)
        assert status == _kernels.Status.OK and batches.n_done == 10
        out.append((net.params.copy(), batches.batch_loss.copy(), opt.t, net.buffers.copy()))
    assert out[0][1][1] == out[1][1][1] == 0.0
    assert out[0][2] == out[1][2] == 9
    np.testing.assert_allclose(out[1][0], out[0][0], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(out[1][3], out[0][3], rtol=1e-10, atol=1e-12)


@pytest.mark.skipif(_kernels.max_threads() < 2 or not _kernels.has_openmp(),
                    reason="needs two OpenMP threads")
@pytest.mark.parametrize("dtype", DTYPES)
def test_w6_takes_the_deep_unit_split_by_default(dtype):
    """Through train: W6's shape picks the unit split on 2 threads, twice
    the same bits, one thread's fit to rounding."""
    threadpoolctl = pytest.importorskip("threadpoolctl")
    rng = np.random.default_rng(4)
    X = rng.standard_normal((203, 64)).astype(dtype)
    Y = np.eye(10, dtype=dtype)[rng.integers(0, 10, 203)]

    def fit(threads):
        net = Network([64, 128, 128, 10], output="softmax", loss="log_loss",
                      dtype=dtype, random_state=0, **LAYERS["w6"])
        with threadpoolctl.threadpool_limits(threads):
            assert choose_threads(net.layout, 32) == (threads, threads > 1)
            h = train(net, X, Y, optimizer=Adam(1e-3), epochs=2, batch_size=32,
                      random_state=0, alpha=1e-4)
        return net.params.copy(), net.buffers.copy(), np.asarray(h.loss)

    a, b, one = fit(2), fit(2), fit(1)
    for u, v in zip(a, b):
        np.testing.assert_array_equal(u, v)
    tol = dict(rtol=1e-4, atol=1e-5) if dtype == np.float32 else dict(rtol=1e-10, atol=1e-12)
    for u, v in zip(a, one):
        np.testing.assert_allclose(u, v, **tol)


# ---------------------------------------------------------------------------
# Batch norm's team statistics: one barrier, the threads' shares combined
# ---------------------------------------------------------------------------


def _bn_first_batch(threads, X, sw, dtype, monkeypatch):
    """The batch variance batch norm's first layer used on the first batch of
    a fit, backed out of the running variance (momentum 0.1 from 1)."""
    threadpoolctl = pytest.importorskip("threadpoolctl")
    monkeypatch.setattr(_engine, "_MIN_MACS_PER_SYNC", 1)
    monkeypatch.setattr(_engine, "_MIN_ROWS_PER_THREAD", 1)
    net = Network([X.shape[1], 6, 2], batch_norm=True, activation="tanh", dtype=dtype,
                  random_state=0)
    W0 = net.coefs[0].astype(np.float64)
    Y = np.zeros((X.shape[0], 2), dtype)
    with threadpoolctl.threadpool_limits(threads):
        assert choose_threads(net.layout, X.shape[0], True, False)[0] == threads
        train(net, X.astype(dtype), Y, optimizer=SGD(1e-9), epochs=1,
              batch_size=X.shape[0], shuffle=False, sample_weight=sw)
    mom = BN_MOMENTUM
    return ((net.bn_vars[0].astype(np.float64) - (1 - mom)) / mom,
            net.bn_means[0].astype(np.float64) / mom, W0)


@pytest.mark.skipif(_kernels.max_threads() < 2 or not _kernels.has_openmp(),
                    reason="needs two OpenMP threads")
@pytest.mark.parametrize("weighted", [False, True])
def test_bn_team_statistics_match_numpy(weighted, monkeypatch):
    """The threads' (sum, squared deviations about their own mean, count)
    combined in one barrier (Chan et al.) give NumPy's two-pass mean and
    unbiased variance of the whole batch, on 1 and 2 threads: an odd
    batch (2 and 3 rows), inputs far from 0 (where a sum of squares would
    cancel), and with weights one thread whose rows weigh nothing."""
    rng = np.random.default_rng(12)
    X = rng.standard_normal((5, 4)) * 0.5 + 1e3
    sw = np.array([0.0, 0.0, 1.5, 0.5, 2.0]) if weighted else None
    for threads in (1, 2):
        var, mean, W0 = _bn_first_batch(threads, X, sw, np.float64, monkeypatch)
        Z = X @ W0
        w = np.ones(5) if sw is None else sw
        ref_mean = (w[:, None] * Z).sum(0) / w.sum()
        ref_var = (w[:, None] * (Z - ref_mean) ** 2).sum(0) / (w.sum() - 1)
        np.testing.assert_allclose(mean, ref_mean, rtol=1e-9)
        # (the running variance 0.9 + 0.1 var loses ~1e-15 / (0.1 var) to rounding)
        np.testing.assert_allclose(var, ref_var, rtol=1e-9)


@pytest.mark.skipif(_kernels.max_threads() < 2 or not _kernels.has_openmp(),
                    reason="needs two OpenMP threads")
@pytest.mark.parametrize("dtype", DTYPES)
def test_toolbox_network_on_two_threads_is_bitwise_reproducible(dtype, monkeypatch):
    """Batch norm, dropout and the skip on the row split: the same fit twice
    on 2 threads gives the same bits; and 1 thread agrees to rounding."""
    threadpoolctl = pytest.importorskip("threadpoolctl")
    monkeypatch.setattr(_engine, "_MIN_MACS_PER_SYNC", 1)
    monkeypatch.setattr(_engine, "_MIN_ROWS_PER_THREAD", 1)
    rng = np.random.default_rng(4)
    X = rng.standard_normal((203, 9)).astype(dtype)
    Y = np.eye(3, dtype=dtype)[rng.integers(0, 3, 203)]

    def fit(threads):
        net = Network([9, 16, 16, 3], output="softmax", loss="log_loss", batch_norm=True,
                      dropout=0.1, residual=[False, True], dtype=dtype, random_state=0)
        with threadpoolctl.threadpool_limits(threads):
            assert choose_threads(net.layout, 32, True, False) == (threads, False)
            h = train(net, X, Y, optimizer=Adam(1e-2), epochs=3, batch_size=32,
                      random_state=0, alpha=1e-4)
        return net.params.copy(), net.buffers.copy(), np.asarray(h.loss)

    a, b, one = fit(2), fit(2), fit(1)
    for u, v in zip(a, b):
        np.testing.assert_array_equal(u, v)
    tol = dict(rtol=1e-4, atol=1e-5) if dtype == np.float32 else dict(rtol=1e-9, atol=1e-12)
    for u, v in zip(a, one):
        np.testing.assert_allclose(u, v, **tol)


@pytest.mark.skipif(_kernels.max_threads() < 2 or not _kernels.has_openmp(),
                    reason="needs two OpenMP threads")
def test_barrier_waits_out_a_long_absent_partner(monkeypatch):
    """Thread 0 polls for Ctrl-C by taking the GIL; a Python thread holding
    it for a long switch interval keeps thread 0 away for longer than the
    barrier's yield stage (200 ms), so its partner sleeps (futex, Linux)
    and is woken by thread 0's arrival. Same bits as without, no hang."""
    import threading
    import time
    threadpoolctl = pytest.importorskip("threadpoolctl")
    monkeypatch.setattr(_engine, "_MIN_MACS_PER_SYNC", 1)
    monkeypatch.setattr(_engine, "_MIN_ROWS_PER_THREAD", 1)
    rng = np.random.default_rng(5)
    X, Y = rng.standard_normal((2000, 32)), rng.standard_normal((2000, 4))

    def fit():
        net = Network([32, 64, 64, 4], batch_norm=True, random_state=0)
        with threadpoolctl.threadpool_limits(2):
            assert choose_threads(net.layout, 16, True, False) == (2, False)
            train(net, X, Y, optimizer=Adam(1e-3), epochs=1, batch_size=16, random_state=0)
        return net.params.copy()

    quiet = fit()
    stop = threading.Event()

    def hold_the_gil():
        while not stop.is_set():
            pass

    old = sys.getswitchinterval()
    sys.setswitchinterval(0.3)
    holder = threading.Thread(target=hold_the_gil)
    holder.start()
    try:
        t0 = time.perf_counter()
        held = fit()
        elapsed = time.perf_counter() - t0
    finally:
        stop.set()
        holder.join()
        sys.setswitchinterval(old)
    np.testing.assert_array_equal(held, quiet)
    # The waits did happen (else this tested nothing): thread 0 polled at
    # least once while the holder had the GIL.
    assert elapsed > 0.25
