"""Dropout, batch norm, residual skips, max-norm and clipping without torch.

The dropout masks are recovered from the kernel (a network whose first-layer
weight gradient is the mask itself) and compared with ``reference.
dropout_keep``, the NumPy twin of src/c/bp_layers.c's hash; the statistical
checks (fraction kept, unbiased inverted scaling) use bounds of 5 standard
deviations computed from the binomial / per-unit variances. Thread checks run
the same fit under ``threadpool_limits(1)`` and ``(2)`` with the row split's
work threshold lowered so that the small networks here do use two threads.
"""
import numpy as np
import pytest
import scipy.sparse as sp
import threadpoolctl

import reference as ref
from bpcore import SGD, Adam, Network, train
from bpcore import _engine, _threads
from bpcore.schedules import OneCycleLR, StepLR
from conftest import make_targets


def _recover_keep(n, H, p, seed):
    """The kept mask of (seed, epoch 0, the samples of the rows of I_n,
    layer 0, units 0..H-1) as the kernel draws it in
    loss_and_grad(training=True).

    X = I (one sample per feature), W1 = ones, b1 = 0, identity units: h = 1,
    a1 = m / (1 - p); W2 = I, b2 = 0, Y = 0, squared error over n*H entries:
    dL/dW1 = X.T @ (m / (1 - p)**2 / (n H)) = m / (1 - p)**2 / (n H)."""
    net = Network([n, H, H], activation="identity", dropout=p, random_state=0)
    net.coefs[0][...] = 1.0
    net.intercepts[0][...] = 0.0
    net.coefs[1][...] = np.eye(H)
    net.intercepts[1][...] = 0.0
    _, grad = net.loss_and_grad(np.eye(n), np.zeros((n, H)), training=True, seed=seed)
    m = net._views(grad)[0][0] * n * H * (1 - p) ** 2
    assert np.all((np.abs(m) < 1e-12) | (np.abs(m - 1) < 1e-12))
    return m > 0.5


@pytest.mark.parametrize("p", [0.1, 0.5, 0.9])
@pytest.mark.parametrize("seed", [0, 7, 2**33 + 1])
def test_dropout_mask_is_the_documented_hash(p, seed):
    keep = _recover_keep(40, 30, p, seed)
    np.testing.assert_array_equal(keep, ref.dropout_keep(seed, 0, 0, ref.row_keys(np.eye(40)),
                                                          30, p))


@pytest.mark.parametrize("p", [0.1, 0.5, 0.9])
def test_dropout_keeps_a_fraction_one_minus_p(p):
    keeps = [_recover_keep(64, 64, p, seed) for seed in range(5)]
    frac = np.mean(keeps)
    N = 5 * 64 * 64
    assert abs(frac - (1 - p)) <= 5 * np.sqrt(p * (1 - p) / N), frac
    # Masks of different seeds differ, and units and samples are not all alike.
    assert not np.array_equal(keeps[0], keeps[1])
    assert 0 < keeps[0].mean(axis=0).min() or p < 0.5


def test_dropout_same_seed_same_result_different_seed_different():
    rng = np.random.default_rng(0)
    net = Network([4, 16, 16, 2], activation="tanh", dropout=0.4, random_state=0)
    X, Y = rng.standard_normal((20, 4)), rng.standard_normal((20, 2))
    l1, g1 = net.loss_and_grad(X, Y, training=True, seed=3)
    l2, g2 = net.loss_and_grad(X, Y, training=True, seed=3)
    l3, g3 = net.loss_and_grad(X, Y, training=True, seed=4)
    assert l1 == l2 and np.array_equal(g1, g2)
    assert l1 != l3 and not np.allclose(g1, g3)
    # Through train: same random_state, same parameters; another, others.
    nets = [Network([4, 16, 16, 2], dropout=0.4, random_state=0) for _ in range(3)]
    for net_, rs in zip(nets, [1, 1, 2]):
        train(net_, X, Y, optimizer=SGD(0.1), epochs=2, batch_size=5, random_state=rs)
    np.testing.assert_array_equal(nets[0].params, nets[1].params)
    assert not np.allclose(nets[0].params, nets[2].params)


@pytest.mark.parametrize("batch_norm", [False, True])
def test_dropout_inference_is_the_plain_network(batch_norm):
    rng = np.random.default_rng(1)
    kw = dict(activation="gelu", batch_norm=batch_norm, random_state=2)
    dropped = Network([4, 8, 8, 3], dropout=[0.5, 0.2], **kw)
    plain = Network([4, 8, 8, 3], **kw)
    dropped.params = rng.standard_normal(dropped.n_params)
    plain.params = dropped.params
    for m, v, m0, v0 in zip(dropped.bn_means, dropped.bn_vars, plain.bn_means, plain.bn_vars):
        if m is not None:
            m[...] = m0[...] = rng.standard_normal(m.shape)
            v[...] = v0[...] = rng.uniform(0.5, 2, v.shape)
    X, Y = rng.standard_normal((30, 4)), rng.standard_normal((30, 3))
    np.testing.assert_array_equal(dropped.forward(X), plain.forward(X))
    ld, gd = dropped.loss_and_grad(X, Y, alpha=0.1, seed=5)          # training=False
    lp, gp = plain.loss_and_grad(X, Y, alpha=0.1)
    assert ld == lp
    np.testing.assert_array_equal(gd, gp)
    # The reference forward agrees (and differs from a training-mode one).
    _, out_ref = ref.toolbox_forward(dropped, X)
    np.testing.assert_allclose(dropped.forward(X), out_ref, rtol=1e-12, atol=1e-14)


def test_inverted_dropout_is_unbiased():
    """E[dropped output] = undropped output: the mean over S seeds and n samples
    of the output after a dropped tanh layer (read from the output bias'
    gradient) against the inference output, within 5 standard deviations of
    that mean (Var out_ik = sum_j h_ij^2 W_jk^2 p / (1 - p), independent masks)."""
    rng = np.random.default_rng(2)
    n, H, K, p, S = 50, 12, 4, 0.3, 300
    net = Network([5, H, K], activation="tanh", dropout=p, random_state=3)
    net.intercepts[1][...] = 0.0        # the output is the dropped part alone
    X = rng.standard_normal((n, 5))
    Y = np.zeros((n, K))
    means = []
    for seed in range(S):
        _, grad = net.loss_and_grad(X, Y, training=True, seed=seed)
        # squared error, identity output: d/db_out = sum_i out_ik / (n K)
        means.append(net._views(grad)[1][-1] * K)
    mean = np.mean(means, axis=0)
    expected = net.forward(X).mean(axis=0)
    h = np.tanh(X @ net.coefs[0] + net.intercepts[0])
    var = (h ** 2).sum(axis=0) @ net.coefs[1] ** 2 * p / (1 - p)   # summed over samples
    sigma = np.sqrt(var / (n ** 2 * S))
    assert np.all(np.abs(mean - expected) <= 5 * sigma), (mean - expected) / sigma
    # Not vacuous: without the 1 / (1 - p) scale the mean is off by many sigmas.
    assert np.any(np.abs((1 - p) * mean - expected) > 5 * sigma)


def test_dropout_masks_in_blocks_follow_the_rows_of_X():
    """loss_and_grad walks large X in blocks of rows; each row's mask is its
    key, looked up by its index in X (not in its block)."""
    rng = np.random.default_rng(11)
    net = Network([3, 300, 2], activation="tanh", dropout=0.5, random_state=0)
    n = 5000
    assert net._block_rows(n) < n
    X, Y = rng.standard_normal((n, 3)), rng.standard_normal((n, 2))
    value, _ = net.loss_and_grad(X, Y, training=True, seed=3)
    _, out = ref.toolbox_forward(net, X, training=True, seed=3)
    assert value == pytest.approx(0.5 * np.mean((out - Y) ** 2), rel=1e-12)


# -- threads ------------------------------------------------------------------

@pytest.fixture
def two_threads(monkeypatch):
    """Let the row split use 2 threads for the small networks of these tests."""
    if _threads.available_cpus() < 2:
        pytest.skip("needs 2 CPUs")
    monkeypatch.setattr(_engine, "_MIN_MACS_PER_SYNC", 1)
    monkeypatch.setattr(_engine, "_MIN_ROWS_PER_THREAD", 1)


def _fit(threads, net_kwargs, train_kwargs, X, Y):
    net = Network([6, 10, 10, 3], random_state=0, **net_kwargs)
    with threadpoolctl.threadpool_limits(threads):
        n_threads, by_units = _engine.choose_threads(
            net.layout, train_kwargs.get("batch_size", 32), True, False)
        assert (n_threads, by_units) == (threads, False)
        h = train(net, X, Y, epochs=3, random_state=0, **train_kwargs)
    return net, h


THREAD_CASES = [
    (dict(batch_norm=True), dict(optimizer=Adam(1e-2), batch_size=16)),
    (dict(dropout=0.4), dict(optimizer=Adam(1e-2), batch_size=15)),
    (dict(batch_norm=True, dropout=[0.2, 0.5], residual=True),
     dict(optimizer=SGD(0.05), batch_size=17)),
    (dict(activation="selu"), dict(optimizer=SGD(0.1), batch_size=16, clip_norm=0.05,
                                   alpha=0.1)),
    (dict(activation="silu"), dict(optimizer=Adam(1e-2), batch_size=16, clip_value=1e-3,
                                   l1=0.01, max_norm=0.5)),
]


@pytest.mark.parametrize("net_kwargs, train_kwargs", THREAD_CASES,
                         ids=["bn", "dropout", "bn+dropout+residual", "clip_norm",
                              "clip_value+l1+max_norm"])
def test_one_and_two_threads_agree(net_kwargs, train_kwargs, two_threads):
    """The row split reduces batch statistics and the clipping norm across
    threads and draws the same dropout masks: the fits agree to rounding."""
    rng = np.random.default_rng(3)
    X, Y = rng.standard_normal((80, 6)), rng.standard_normal((80, 3))
    # Fresh optimizers for each run (they carry state).
    kw1 = dict(train_kwargs, optimizer=type(train_kwargs["optimizer"])(
        train_kwargs["optimizer"].learning_rate))
    kw2 = dict(train_kwargs, optimizer=type(train_kwargs["optimizer"])(
        train_kwargs["optimizer"].learning_rate))
    net1, h1 = _fit(1, net_kwargs, kw1, X, Y)
    net2, h2 = _fit(2, net_kwargs, kw2, X, Y)
    np.testing.assert_allclose(net2.params, net1.params, rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(net2.buffers, net1.buffers, rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(h2.loss, h1.loss, rtol=1e-10)
    assert not np.array_equal(net1.params, Network([6, 10, 10, 3], random_state=0,
                                                    **net_kwargs).params)


@pytest.mark.parametrize("batch_norm", [False, True])
def test_dropout_masks_follow_the_sample_not_its_position(batch_norm):
    """Full-batch epochs in shuffled and natural order take the same step:
    the masks are keyed by the sample (and batch norm's statistics do not
    depend on the order), so only the summation order differs."""
    rng = np.random.default_rng(4)
    X, Y = rng.standard_normal((24, 4)), rng.standard_normal((24, 2))
    nets = []
    for shuffle in (False, True):
        net = Network([4, 7, 2], dropout=0.5, batch_norm=batch_norm, random_state=0)
        train(net, X, Y, optimizer=SGD(0.1, momentum=0.0), epochs=2, batch_size=24,
              shuffle=shuffle, random_state=0)
        nets.append(net)
    np.testing.assert_allclose(nets[0].params, nets[1].params, rtol=1e-12, atol=1e-15)


def test_row_keys_are_the_documented_hash():
    """The kernels' row keys equal the NumPy reference's, and ignore what
    does not change a row's values: its dtype (float32 widens exactly), its
    storage (dense or CSR, explicit zeros) and the sign of a zero."""
    from bpcore import _kernels
    from bpcore._validation import csr_input
    rng = np.random.default_rng(21)
    X = rng.standard_normal((50, 13)).astype(np.float32).astype(np.float64)
    X[rng.random(X.shape) < 0.4] = 0.0
    X[3] = X[7]                                   # a copy
    X[9] = 0.0                                    # an empty row
    keys = _kernels.row_keys(X)
    np.testing.assert_array_equal(keys, ref.row_keys(X))
    assert keys[3] == keys[7] and len(set(keys.tolist())) == 49
    np.testing.assert_array_equal(_kernels.row_keys(X.astype(np.float32)), keys)
    negz = X.copy()
    negz[negz == 0] = -0.0
    np.testing.assert_array_equal(_kernels.row_keys(negz), keys)
    csr = sp.csr_matrix(X)
    np.testing.assert_array_equal(_kernels.row_keys(csr_input(csr, np.float64)), keys)
    np.testing.assert_array_equal(_kernels.row_keys(csr_input(csr, np.float32)), keys)
    # Explicit zeros (-0.0 among them) stored in the matrix change nothing,
    # nor does the order of a row's entries.
    data = X.ravel().copy()
    data[data == 0] = np.where(np.arange((data == 0).sum()) % 2, 0.0, -0.0)
    dense_csr = sp.csr_matrix((data, np.tile(np.arange(13), 50), np.arange(0, 651, 13)),
                              shape=X.shape)
    for dtype in (np.float64, np.float32):
        given = csr_input(dense_csr, dtype)
        assert given.data.size == X.size           # the zeros reach the kernel
        np.testing.assert_array_equal(_kernels.row_keys(given), keys)
    rev = sp.csr_matrix((data.reshape(50, 13)[:, ::-1].ravel(),
                         np.tile(np.arange(13)[::-1], 50), np.arange(0, 651, 13)),
                        shape=X.shape)
    assert not rev.has_sorted_indices
    np.testing.assert_array_equal(_kernels.row_keys(csr_input(rev, np.float64)), keys)
    # Empty inputs: no rows, no columns, no stored entries (every key 0).
    assert _kernels.row_keys(np.zeros((0, 4))).shape == (0,)
    np.testing.assert_array_equal(_kernels.row_keys(np.zeros((3, 0))), np.zeros(3, np.uint64))
    empty = csr_input(sp.csr_matrix((3, 4)), np.float64)
    np.testing.assert_array_equal(_kernels.row_keys(empty), np.zeros(3, np.uint64))
    assert _kernels.row_keys(csr_input(sp.csr_matrix((0, 4)), np.float32)).shape == (0,)
    # Not vacuous: any one value changed changes the row's key.
    Z = X.copy()
    j = np.flatnonzero(X[5])[0]
    Z[5, j] = np.nextafter(Z[5, j], np.inf)
    changed = _kernels.row_keys(Z) != keys
    assert changed[5] and changed.sum() == 1
    # A subnormal counts as zero, as the kernels (flush-to-zero) read it.
    Z = X.copy()
    Z[6, np.flatnonzero(X[6] == 0)[0]] = 5e-324
    np.testing.assert_array_equal(_kernels.row_keys(Z), keys)


@pytest.mark.parametrize("batch_norm", [False, True])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_weighted_rows_are_their_copies_with_dropout(batch_norm, dtype):
    """A row of weight w trains as w copies of it: the copies draw the row's
    masks (keyed by its content) and batch norm's statistics are weighted.
    One full-batch epoch per step, shuffled: only the summation order differs."""
    rng = np.random.default_rng(22)
    X, Y = rng.standard_normal((12, 4)), rng.standard_normal((12, 2))
    w = rng.integers(0, 4, 12)
    w[0] = 3
    rep = np.repeat(np.arange(12), w)
    nets = []
    for Xi, Yi, swi in ((X, Y, w.astype(float)), (X[rep], Y[rep], None)):
        net = Network([4, 9, 2], dropout=0.5, batch_norm=batch_norm, dtype=dtype,
                      random_state=0)
        train(net, Xi, Yi, sample_weight=swi, optimizer=SGD(0.1, momentum=0.5), epochs=3,
              batch_size=len(Xi), random_state=0)
        nets.append(net)
    tol = dict(rtol=1e-11, atol=1e-13) if dtype == np.float64 else dict(rtol=2e-5, atol=2e-6)
    np.testing.assert_allclose(nets[0].params, nets[1].params, **tol)
    np.testing.assert_allclose(nets[0].buffers, nets[1].buffers, **tol)
    # And the gradient of loss_and_grad(training=True), weights against copies.
    v1, g1 = nets[0].loss_and_grad(X, Y, sample_weight=w.astype(float), training=True, seed=5)
    v2, g2 = nets[0].loss_and_grad(X[rep], Y[rep], training=True, seed=5)
    assert v1 == pytest.approx(v2, rel=1e-12 if dtype == np.float64 else 1e-5)
    np.testing.assert_allclose(g1, g2, **tol)
    # Not vacuous: had the copies drawn masks of their own (keyed by their
    # index, say), the loss would differ; keyed by their rows, it is the
    # kernel's.
    Xr = X[rep].astype(dtype)
    loss = {}
    for name, samples in (("rows", ref.row_keys(Xr)), ("index", np.arange(len(rep)))):
        _, out = ref.toolbox_forward(nets[0], Xr, training=True, seed=5, samples=samples)
        loss[name] = 0.5 * np.mean((out - Y[rep]) ** 2)
    rel = 1e-12 if dtype == np.float64 else 1e-5
    assert loss["rows"] == pytest.approx(v2, rel=rel)
    assert loss["index"] != pytest.approx(v2, rel=1e-3)


# -- residual -------------------------------------------------------------------

def test_residual_is_identity_skip_in_reference():
    rng = np.random.default_rng(5)
    net = Network([5, 5, 5, 2], residual=True, activation="tanh", random_state=1)
    X = rng.standard_normal((9, 5))
    _, out = ref.toolbox_forward(net, X)
    np.testing.assert_allclose(net.forward(X), out, rtol=1e-12, atol=1e-14)
    h1 = np.tanh(X @ net.coefs[0] + net.intercepts[0]) + X
    h2 = np.tanh(h1 @ net.coefs[1] + net.intercepts[1]) + h1
    np.testing.assert_allclose(out, h2 @ net.coefs[2] + net.intercepts[2], rtol=1e-13)


@pytest.mark.parametrize("dropout", [0.0, 0.3])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_sparse_input_with_residual_first_layer(dropout, dtype):
    rng = np.random.default_rng(6)
    X = sp.random(40, 6, density=0.3, format="csr", random_state=1) * 3
    Xd = X.toarray()
    Y = rng.standard_normal((40, 2))
    net = Network([6, 6, 6, 2], residual=True, dropout=dropout, dtype=dtype,
                  activation="softplus", random_state=2)
    assert net._residual == [True, True]
    rtol = 1e-12 if dtype == np.float64 else 1e-5
    np.testing.assert_allclose(net.forward(X), net.forward(Xd), rtol=rtol, atol=rtol)
    for training in (False, True):
        ls, gs = net.loss_and_grad(X, Y, alpha=0.1, training=training, seed=1)
        ld, gd = net.loss_and_grad(Xd, Y, alpha=0.1, training=training, seed=1)
        assert ls == pytest.approx(ld, rel=rtol)
        np.testing.assert_allclose(gs, gd, rtol=rtol, atol=rtol * np.abs(gd).max())
    _, out_ref = ref.toolbox_forward(net, Xd)
    np.testing.assert_allclose(net.forward(X), out_ref, rtol=rtol * 10, atol=rtol * 10)
    nets = []
    for data in (X, Xd):
        n = Network([6, 6, 6, 2], residual=True, dropout=dropout, dtype=dtype,
                    activation="softplus", random_state=2)
        train(n, data, Y, optimizer=Adam(1e-2), epochs=2, batch_size=8, random_state=0)
        nets.append(n)
    np.testing.assert_allclose(nets[0].params, nets[1].params, rtol=rtol * 10,
                               atol=rtol * 10)


# -- max-norm and schedules ----------------------------------------------------------

def test_max_norm_bounds_every_column_after_train():
    rng = np.random.default_rng(7)
    X, Y = rng.standard_normal((50, 5)), 5 * rng.standard_normal((50, 3))
    net = Network([5, 9, 7, 3], batch_norm=[True, False], random_state=0)
    train(net, X, Y, optimizer=Adam(0.05), epochs=4, batch_size=10, max_norm=0.4,
          random_state=0)
    norms = np.concatenate([np.linalg.norm(W, axis=0) for W in net.coefs])
    assert norms.max() <= 0.4 * (1 + 1e-12)
    assert np.isclose(norms, 0.4, rtol=1e-12).sum() >= 3
    # Biases and BN scales are not constrained.
    free = Network([5, 9, 7, 3], batch_norm=[True, False], random_state=0)
    train(free, X, Y, optimizer=Adam(0.05), epochs=4, batch_size=10, random_state=0)
    assert np.concatenate([np.linalg.norm(W, axis=0) for W in free.coefs]).max() > 0.4


def test_max_norm_equals_a_reference_step():
    """One full-batch SGD step, then each column of norm > c rescaled to c."""
    rng = np.random.default_rng(8)
    X, Y = rng.standard_normal((20, 4)), 3 * rng.standard_normal((20, 2))
    net = Network([4, 6, 2], activation="tanh", random_state=1)
    _, g = net.loss_and_grad(X, Y, alpha=0.2)
    theta = net.params - 0.3 * g
    coefs, _ = net._views(theta)
    c = 0.5
    for W in coefs:
        norms = np.linalg.norm(W, axis=0)
        W[:, norms > c] *= c / norms[norms > c]
    train(net, X, Y, optimizer=SGD(0.3, momentum=0.0), epochs=1, batch_size=20,
          shuffle=False, alpha=0.2, max_norm=c)
    np.testing.assert_allclose(net.params, theta, rtol=1e-13, atol=1e-15)


def test_schedule_rates_reach_history_and_the_steps():
    rng = np.random.default_rng(9)
    X, Y = rng.standard_normal((12, 3)), rng.standard_normal((12, 1))
    net = Network([3, 4, 1], dropout=0.2, random_state=0)
    h = train(net, X, Y, optimizer=SGD(0.1), epochs=5, batch_size=4,
              schedule=StepLR(step_size=2, gamma=0.5), random_state=0)
    np.testing.assert_allclose(h.lr, [0.1, 0.1, 0.05, 0.05, 0.025], rtol=1e-15)
    # OneCycleLR counts steps: history.lr is the rate of each epoch's first
    # step, and the steps of an epoch take the schedule's per-step rates.
    sched = OneCycleLR(max_lr=0.5, total_steps=9)
    net1 = Network([3, 4, 1], random_state=0)
    start = net1.params.copy()
    h1 = train(net1, X, Y, optimizer=SGD(0.5, momentum=0.0), epochs=1, batch_size=4,
               shuffle=False, schedule=sched)
    rates = sched.epoch_rates(0)
    assert len(rates) == 3 and h1.lr[0] == rates[0] and len(set(rates)) == 3
    theta = start.copy()
    net2 = Network([3, 4, 1], random_state=0)
    for b, lr in enumerate(rates):
        net2.params = theta
        _, g = net2.loss_and_grad(X[4 * b:4 * b + 4], Y[4 * b:4 * b + 4])
        theta = theta - lr * g
    np.testing.assert_allclose(net1.params, theta, rtol=1e-13, atol=1e-15)


# -- bad values ---------------------------------------------------------------------

@pytest.mark.parametrize("kwargs, message", [
    (dict(dropout=1.0), r"dropout must be in \[0.0, 1.0\), got 1.0"),
    (dict(dropout=-0.1), r"dropout must be in \[0.0, 1.0\), got -0.1"),
    (dict(dropout=[0.1]), "dropout lists 1 values but the network has 2 hidden layers"),
    (dict(batch_norm=[True, False, True]),
     "batch_norm lists 3 values but the network has 2 hidden layers"),
    (dict(residual=[True]), "residual lists 1 values but the network has 2 hidden layers"),
    (dict(activation=["relu"]),
     "activation lists 1 names but the network has 2 hidden layers"),
    (dict(init=["he_normal"] * 2),
     r"init lists 2 names but the network has 3 layers \(one per hidden layer and one "
     "for the output layer\\)"),
    (dict(init="xavier"), "unknown init 'xavier'; choose one of 'sklearn', "
                          "'glorot_uniform'"),
    (dict(init=["sklearn", "he_normal", "kaiming"]), "unknown init 'kaiming'"),
    (dict(residual=True), r"residual=True but no hidden layer keeps its width \(fan_in == "
                          r"fan_out\) in layer_sizes=\[3, 4, 5, 2\]"),
    (dict(residual=[False, True]), "residual on hidden layer 1 needs fan_in == fan_out, "
                                   "got 4 -> 5"),
    (dict(huber_delta=0.0), "huber_delta"),
    (dict(output="gelu"), "unknown output activation 'gelu'"),
])
def test_bad_layer_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Network([3, 4, 5, 2], **kwargs)


@pytest.mark.parametrize("kwargs, message", [
    (dict(l1=-1.0), "l1"),
    (dict(seed=-1), "seed must be a non-negative integer, got -1"),
    (dict(seed=1.5), "seed must be a non-negative integer"),
])
def test_bad_loss_and_grad_arguments(kwargs, message):
    net = Network([3, 4, 2], dropout=0.2, random_state=0)
    with pytest.raises(ValueError, match=message):
        net.loss_and_grad(np.ones((3, 3)), np.ones((3, 2)), training=True, **kwargs)


@pytest.mark.parametrize("kwargs, message", [
    (dict(max_norm=0.0), "max_norm"),
    (dict(clip_norm=-1.0), "clip_norm"),
    (dict(clip_value=0.0), "clip_value"),
    (dict(l1=-0.5), "l1"),
])
def test_bad_train_arguments(kwargs, message):
    net = Network([3, 4, 2], random_state=0)
    with pytest.raises(ValueError, match=message):
        train(net, np.ones((4, 3)), np.ones((4, 2)), optimizer=SGD(), **kwargs)


def test_batch_norm_batch_of_one_in_train():
    net = Network([3, 4, 1], batch_norm=True, random_state=0)
    X, Y = np.ones((5, 3)), np.ones((5, 1))
    with pytest.raises(ValueError, match="batch norm needs at least 2 samples in every "
                                         "batch.*5 samples in batches of 2 leave a batch "
                                         "of 1"):
        train(net, X, Y, optimizer=SGD(), batch_size=2)
    with pytest.raises(ValueError, match="batch norm needs at least 2 samples"):
        train(net, X, Y, optimizer=SGD(), batch_size=1)
    train(net, X, Y, optimizer=SGD(), batch_size=5)    # fine


@pytest.mark.parametrize("loss", ["squared_error", "absolute_error", "huber"])
@pytest.mark.parametrize("activation", ["gelu", "silu", "softplus", "selu", "relu", "tanh"])
def test_new_activations_and_losses_on_two_threads(activation, loss, two_threads,
                                                   monkeypatch):
    """One hidden layer: every activation (those keeping their
    pre-activation too) takes the hidden-unit split; 2 threads give the
    1-thread fit to rounding."""
    monkeypatch.setattr(_engine, "_MIN_MACS_PER_SYNC_UNITS", 1)
    rng = np.random.default_rng(10)
    X, Y = rng.standard_normal((64, 6)), 2 * rng.standard_normal((64, 3))
    fits = []
    for threads in (1, 2):
        net = Network([6, 20, 3], activation=activation, loss=loss, huber_delta=0.5,
                      random_state=0)
        with threadpoolctl.threadpool_limits(threads):
            assert _engine.choose_threads(net.layout, 16, True, True)[0] == threads
            train(net, X, Y, optimizer=Adam(1e-2), epochs=3, batch_size=16, random_state=0)
        fits.append(net.params.copy())
    np.testing.assert_allclose(fits[1], fits[0], rtol=1e-10, atol=1e-13)
