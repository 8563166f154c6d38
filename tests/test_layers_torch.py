"""The layer toolbox (TOOLBOX.md sections 1-3) against PyTorch autograd.

Every new activation and loss, batch norm (training forward and backward,
inference, the running-statistics update through ``train``), dropout with
the kernel's masks (``reference.dropout_keep`` redoes its hash in NumPy; the
mask itself is checked against the kernel in tests/test_layers.py), residual
skips, L1, and gradient clipping. float64 within 1e-12 (per parameter block:
||g - g_torch|| / ||g_torch||), float32 within 2e-5 of torch in float64.
The largest deviation per feature is printed in the terminal summary.
"""
import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="torch is the oracle of these tests")

import reference as ref  # noqa: E402
from bpcore import SGD, Network, train  # noqa: E402
from conftest import make_targets  # noqa: E402
from torch_net import TorchNet, torch_loss_and_grad  # noqa: E402



@pytest.fixture(autouse=True, scope="module")
def _torch_on_one_thread():
    # torch.set_num_threads sets the OpenMP limit of the process, which bpcore
    # shares: restore it, or every later test would run bpcore on one thread.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)

TOL = {np.dtype(np.float64): 1e-12, np.dtype(np.float32): 2e-5}
NEW_ACTIVATIONS = ["gelu", "silu", "softplus", "selu"]


def block_error(net, g, g_ref):
    """Largest per-block relative error ||g - g_ref|| / ||g_ref|| (blocks:
    one layer's weights, biases / BN shifts, BN scales)."""
    g = np.asarray(g, dtype=np.float64)
    worst = 0.0
    for _, _, off, size in net.blocks:
        a, b = g[off:off + size], g_ref[off:off + size]
        worst = max(worst, np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-300))
    return worst


def check(net, feature, record, loss, grad, loss_t, grad_t, tol_factor=1.0):
    tol = TOL[net.dtype] * tol_factor
    err_loss = abs(loss - loss_t) / abs(loss_t)
    err = record.add(feature, net.dtype, max(err_loss, block_error(net, grad, grad_t)))
    assert err_loss <= tol, f"{feature}: loss {loss!r} vs torch {loss_t!r}"
    assert err <= tol, f"{feature}: gradient off by {err:.3g} (relative, per block)"


LOSS_CASES = [
    ("squared_error", "identity", 1.0),
    ("absolute_error", "identity", 1.0),
    ("huber", "identity", 1.0),
    ("huber", "tanh", 0.3),          # a non-default delta
    ("log_loss", "softmax", 1.0),
    ("log_loss", "logistic", 1.0),
    ("poisson", "exp", 1.0),
]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("loss, output, delta", LOSS_CASES,
                         ids=[f"{a}-{b}-{c}" for a, b, c in LOSS_CASES])
@pytest.mark.parametrize("activation", NEW_ACTIVATIONS)
def test_activation_and_loss_vs_torch(activation, loss, output, delta, dtype,
                                      deviation_record):
    rng = np.random.default_rng([3, NEW_ACTIVATIONS.index(activation)])
    net = Network([4, 6, 5, 3], activation=activation, output=output, loss=loss,
                  huber_delta=delta, dtype=dtype, random_state=1)
    if output == "exp":
        net.coefs[-1][...] *= 0.5
    X = 2.0 * rng.standard_normal((20, 4))
    Y = make_targets(loss, output, 20, 3, rng)
    value, grad = net.loss_and_grad(X, Y, alpha=0.1)
    value_t, grad_t = torch_loss_and_grad(net, X, Y, alpha=0.1)
    feature = f"{activation}" if loss in ("squared_error", "log_loss") else f"loss {loss}"
    check(net, feature, deviation_record, value, grad, value_t, grad_t)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("loss, delta", [("absolute_error", 1.0), ("huber", 1.0),
                                         ("huber", 2.5)])
def test_weighted_regression_losses_vs_torch(loss, delta, dtype, deviation_record):
    """With sample weights the mean over samples is the weighted mean."""
    rng = np.random.default_rng(5)
    net = Network([3, 5, 2], activation="gelu", loss=loss, huber_delta=delta, dtype=dtype,
                  random_state=0)
    X, Y = 2 * rng.standard_normal((15, 3)), 3 * rng.standard_normal((15, 2))
    sw = rng.uniform(0.1, 3.0, 15)
    value, grad = net.loss_and_grad(X, Y, sample_weight=sw, l1=0.05)
    value_t, grad_t = torch_loss_and_grad(net, X, Y, sample_weight=sw, l1=0.05)
    check(net, f"loss {loss}", deviation_record, value, grad, value_t, grad_t)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_softplus_threshold_and_saturation_vs_torch(dtype, deviation_record):
    """Pre-activations from -60 to 60: softplus' linear branch above 20,
    gelu/silu/selu far in their tails."""
    rng = np.random.default_rng(9)
    for activation in NEW_ACTIVATIONS:
        net = Network([2, 6, 1], activation=activation, dtype=dtype, random_state=3)
        net.coefs[0][...] = np.array([[1, -1, 0.5, -0.5, 2, -2], [0, 0, 0, 0, 0, 0]])
        X = np.column_stack([np.linspace(-30, 30, 41), rng.standard_normal(41)])
        Y = rng.standard_normal((41, 1))
        value, grad = net.loss_and_grad(X, Y)
        value_t, grad_t = torch_loss_and_grad(net, X, Y)
        check(net, activation, deviation_record, value, grad, value_t, grad_t)
        out_t = TorchNet(net).eval()(torch.tensor(X, dtype=torch.float64))
        np.testing.assert_allclose(net.forward(X), out_t.detach().numpy(),
                                   rtol=TOL[net.dtype], atol=0)


# -- batch norm ---------------------------------------------------------------

BN_CASES = [
    dict(batch_norm=True, activation="tanh"),
    dict(batch_norm=True, activation="gelu", output="softmax", loss="log_loss"),
    dict(batch_norm=[True, False], activation="relu"),
    dict(batch_norm=[False, True], activation="selu", loss="huber", huber_delta=0.5),
]


def _bn_net(case, dtype, sizes=(5, 7, 6, 3)):
    return Network(list(sizes), dtype=dtype, random_state=4, **case)


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("case", BN_CASES, ids=range(len(BN_CASES)))
def test_batch_norm_training_vs_torch(case, dtype, weighted, deviation_record):
    """Sample weights weight the loss and the batch statistics (torch_net's
    weighted_batch_norm, differentiated by autograd)."""
    rng = np.random.default_rng(11)
    net = _bn_net(case, dtype)
    ref.perturb_bn(net, rng)
    X = rng.standard_normal((12, 5)) * 2 + 1
    Y = make_targets(net.loss, net.output, 12, 3, rng)
    sw = rng.uniform(0.2, 3.0, 12) if weighted else None
    means = [None if m is None else m.copy() for m in net.bn_means]
    value, grad = net.loss_and_grad(X, Y, alpha=0.2, training=True, sample_weight=sw)
    value_t, grad_t = torch_loss_and_grad(net, X, Y, alpha=0.2, training=True,
                                          sample_weight=sw)
    check(net, "batch norm (training)", deviation_record, value, grad, value_t, grad_t)
    # loss_and_grad does not move the running statistics.
    for m, m0 in zip(net.bn_means, means):
        if m is not None:
            np.testing.assert_array_equal(m, m0)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("case", BN_CASES, ids=range(len(BN_CASES)))
def test_batch_norm_inference_vs_torch(case, dtype, deviation_record):
    rng = np.random.default_rng(12)
    net = _bn_net(case, dtype)
    ref.perturb_bn(net, rng)
    X = rng.standard_normal((12, 5)) * 2 + 1
    Y = make_targets(net.loss, net.output, 12, 3, rng)
    tn = TorchNet(net).eval()
    out_t = tn(torch.tensor(X)).detach().numpy()
    out = net.forward(X)
    err = np.abs(out - out_t).max() / np.abs(out_t).max()
    deviation_record.add("batch norm (inference forward)", dtype, err)
    assert err <= TOL[net.dtype]
    value, grad = net.loss_and_grad(X, Y, training=False)
    value_t, grad_t = torch_loss_and_grad(net, X, Y, training=False)
    check(net, "batch norm (inference grad)", deviation_record, value, grad, value_t, grad_t)


def test_batch_norm_needs_two_rows_in_training():
    net = Network([3, 4, 1], batch_norm=True, random_state=0)
    with pytest.raises(ValueError, match="batch norm in training needs at least 2 samples"):
        net.loss_and_grad(np.ones((1, 3)), np.ones((1, 1)), training=True)
    # Inference needs no batch statistics.
    net.loss_and_grad(np.ones((1, 3)), np.ones((1, 1)))
    net.forward(np.ones((1, 3)))


def _torch_train(net, X, Y, *, lr, epochs, batch_size, seed, alpha=0.0, clip_norm=None,
                 clip_value=None, max_norm=None, sample_weight=None, dtype=torch.float64,
                 orders=None):
    """TorchNet(net) trained by plain SGD in order (no shuffle): the twin of
    ``bpcore.train(..., optimizer=SGD(lr), shuffle=False)`` with dropout
    masks of (seed, epoch, sample), a sample keyed by its row's values. Returns (flat params, running stats,
    per-epoch losses)."""
    tn = TorchNet(net, dtype).train()
    n = X.shape[0]
    Xt, Yt = torch.tensor(X, dtype=dtype), torch.tensor(Y, dtype=dtype)
    swt = None if sample_weight is None else torch.tensor(sample_weight, dtype=dtype)
    params = list(tn.parameters())
    losses = []
    # The kernel keys the masks by the rows as it trains on them (in float32,
    # the rounded values).
    keys = ref.row_keys(np.asarray(X, dtype=net.dtype))
    for epoch in range(epochs):
        total = 0.0
        order = np.arange(n) if orders is None else orders[epoch]
        for start in range(0, n, batch_size):
            ids = order[start:start + batch_size]
            keep = [ref.dropout_keep(seed, epoch, l, keys[ids], net.coefs[l].shape[1], p)
                    if p > 0 else None for l, p in enumerate(net._dropout)]
            sw = None if swt is None else swt[ids]
            bw = len(ids) if sw is None else float(sw.sum())
            for p in params:
                p.grad = None
            loss = tn.loss(tn(Xt[ids], keep, sw), Yt[ids], sw) + tn.penalty(alpha, 0.0, bw)
            loss.backward()
            total += loss.item() * len(ids)
            if clip_norm is not None:
                torch.nn.utils.clip_grad_norm_(params, max_norm=clip_norm)
            if clip_value is not None:
                torch.nn.utils.clip_grad_value_(params, clip_value)
            with torch.no_grad():
                for p in params:
                    p -= lr * p.grad
                if max_norm is not None:
                    for lin in tn.linears:
                        # Columns of W_l = rows of torch's weight.
                        norms = lin.weight.norm(dim=1, keepdim=True)
                        lin.weight.copy_(torch.where(norms > max_norm,
                                                     lin.weight * (max_norm / norms),
                                                     lin.weight))
        losses.append(total / n)
    return tn.flat_params(), tn.running_stats(), losses


def _train_seed(random_state):
    # train() draws the dropout seed first from its RandomState.
    return int(np.random.RandomState(random_state).randint(0, 2**31 - 1))


TRAIN_CASES = [
    dict(batch_norm=True),
    dict(batch_norm=[True, False], dropout=0.25),
    dict(dropout=[0.5, 0.1]),
    dict(batch_norm=True, dropout=0.2, residual=True),
]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("case", TRAIN_CASES, ids=range(len(TRAIN_CASES)))
def test_train_epochs_vs_torch(case, dtype, deviation_record):
    """Two SGD epochs in order, batches of 8 (the last one 6): parameters,
    running statistics and epoch losses as torch's minibatch loop."""
    rng = np.random.default_rng(13)
    net = Network([5, 8, 8, 2], activation="tanh", dtype=dtype, random_state=2, **case)
    X = rng.standard_normal((30, 5)) + 0.5
    Y = rng.standard_normal((30, 2))
    p_t, (means_t, vars_t), losses_t = _torch_train(net, X, Y, lr=0.1, epochs=2,
                                                      batch_size=8, seed=_train_seed(0),
                                                      alpha=0.01)
    h = train(net, X, Y, optimizer=SGD(0.1, momentum=0.0), epochs=2, batch_size=8,
              shuffle=False, random_state=0, alpha=0.01)
    tol = TOL[net.dtype] * (1 if dtype == np.float64 else 10)
    feature = "train: " + "+".join(k for k in case)
    err = deviation_record.add(feature, dtype, block_error(net, net.params, p_t))
    assert err <= tol
    for l, m in enumerate(net.bn_means):
        if m is None:
            assert means_t[l] is None
            continue
        err_m = np.abs(m - means_t[l]).max() / np.abs(means_t[l]).max()
        err_v = np.abs(net.bn_vars[l] - vars_t[l]).max() / np.abs(vars_t[l]).max()
        deviation_record.add("batch norm running stats (train)", dtype, max(err_m, err_v))
        assert max(err_m, err_v) <= tol
    np.testing.assert_allclose(h.loss, losses_t, rtol=tol)


def test_train_with_sample_weights_vs_torch(deviation_record):
    rng = np.random.default_rng(19)
    net = Network([5, 8, 8, 2], activation="silu", batch_norm=True, dropout=0.3,
                  random_state=2)
    X, Y = rng.standard_normal((30, 5)), rng.standard_normal((30, 2))
    sw = rng.uniform(0.1, 3.0, 30)
    p_t, (means_t, _), losses_t = _torch_train(net, X, Y, lr=0.1, epochs=2, batch_size=8,
                                               seed=_train_seed(0), alpha=0.01,
                                               sample_weight=sw)
    train(net, X, Y, optimizer=SGD(0.1, momentum=0.0), epochs=2, batch_size=8,
          shuffle=False, random_state=0, alpha=0.01, sample_weight=sw)
    err = deviation_record.add("train: weighted batch_norm+dropout", np.float64,
                               block_error(net, net.params, p_t))
    assert err <= 1e-12
    np.testing.assert_allclose(net.bn_means[0], means_t[0], rtol=1e-12, atol=1e-15)


def test_shuffled_minibatches_vs_torch(deviation_record):
    """With shuffling, each sample keeps its own masks (keyed by its row in X)
    wherever the permutation puts it."""
    from bpcore._engine import reshuffle
    rng = np.random.default_rng(20)
    net = Network([5, 8, 8, 2], activation="tanh", batch_norm=True, dropout=0.4,
                  residual=True, random_state=2)
    X, Y = rng.standard_normal((30, 5)), rng.standard_normal((30, 2))
    rs = np.random.RandomState(0)
    seed = int(rs.randint(0, 2**31 - 1))        # train's draw, before the shuffles
    orders, order = [], np.arange(30)
    for _ in range(3):
        order = reshuffle(order, rs)
        orders.append(order)
    p_t, _, losses_t = _torch_train(net, X, Y, lr=0.1, epochs=3, batch_size=8, seed=seed,
                                    orders=orders)
    h = train(net, X, Y, optimizer=SGD(0.1, momentum=0.0), epochs=3, batch_size=8,
              shuffle=True, random_state=0)
    err = deviation_record.add("train: shuffled batch_norm+dropout+residual", np.float64,
                               block_error(net, net.params, p_t))
    assert err <= 1e-12
    np.testing.assert_allclose(h.loss, losses_t, rtol=1e-12)


# -- residual -----------------------------------------------------------------

RESIDUAL_CASES = [
    ([4, 6, 6, 6, 2], dict(residual=True)),
    ([4, 4, 6, 6, 2], dict(residual=[True, False, True], activation="silu")),
    ([5, 5, 5, 3], dict(residual=True, batch_norm=True, dropout=0.3, activation="gelu",
                        output="softmax", loss="log_loss")),
]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("training", [False, True], ids=["inference", "training"])
@pytest.mark.parametrize("sizes, case", RESIDUAL_CASES, ids=range(len(RESIDUAL_CASES)))
def test_residual_vs_torch(sizes, case, training, dtype, deviation_record):
    rng = np.random.default_rng(14)
    net = Network(sizes, dtype=dtype, random_state=5, **case)
    ref.perturb_bn(net, rng)
    X = rng.standard_normal((16, sizes[0]))
    Y = make_targets(net.loss, net.output, 16, sizes[-1], rng)
    value, grad = net.loss_and_grad(X, Y, alpha=0.1, training=training, seed=3)
    value_t, grad_t = torch_loss_and_grad(net, X, Y, alpha=0.1, training=training, seed=3)
    check(net, "residual", deviation_record, value, grad, value_t, grad_t)
    if not training:
        out_t = TorchNet(net).eval()(torch.tensor(X)).detach().numpy()
        np.testing.assert_allclose(net.forward(X), out_t, rtol=10 * TOL[net.dtype],
                                   atol=TOL[net.dtype] * np.abs(out_t).max())


# -- dropout ------------------------------------------------------------------

@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("seed", [0, 1, 2**40 + 5])
def test_dropout_training_vs_torch(seed, dtype, deviation_record):
    rng = np.random.default_rng(15)
    net = Network([4, 9, 7, 3], activation="softplus", dropout=[0.3, 0.6], dtype=dtype,
                  output="logistic", loss="log_loss", random_state=6)
    X = rng.standard_normal((25, 4))
    Y = make_targets("log_loss", "logistic", 25, 3, rng)
    value, grad = net.loss_and_grad(X, Y, l1=0.02, training=True, seed=seed)
    value_t, grad_t = torch_loss_and_grad(net, X, Y, l1=0.02, training=True, seed=seed)
    check(net, "dropout (training)", deviation_record, value, grad, value_t, grad_t)


# -- L1 and clipping ----------------------------------------------------------

@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_l1_vs_torch(dtype, deviation_record):
    rng = np.random.default_rng(16)
    net = Network([4, 6, 5, 2], activation="elu", batch_norm=[True, False], dtype=dtype,
                  random_state=7)
    net.coefs[1][0, :] = 0.0          # subgradient 0 at 0, as torch's sign
    X, Y = rng.standard_normal((10, 4)), rng.standard_normal((10, 2))
    sw = rng.uniform(0.5, 2, 10)
    value, grad = net.loss_and_grad(X, Y, alpha=0.3, l1=0.7, sample_weight=sw)
    value_t, grad_t = torch_loss_and_grad(net, X, Y, alpha=0.3, l1=0.7, sample_weight=sw)
    check(net, "l1", deviation_record, value, grad, value_t, grad_t)
    # The L1 term only touches the weights.
    _, grad0 = net.loss_and_grad(X, Y, alpha=0.3, sample_weight=sw)
    diff = net._views(grad - grad0)
    for W, dW in zip(net.coefs, diff[0]):
        np.testing.assert_allclose(dW, 0.7 * np.sign(W) / sw.sum(), rtol=1e-4 if
                                   dtype == np.float32 else 1e-9, atol=1e-6)
    for db in diff[1]:
        np.testing.assert_array_equal(db, 0)


CLIP_CASES = [
    dict(clip_norm=0.05),
    dict(clip_norm=1e3),                        # not binding: plain step
    dict(clip_value=0.01),
    dict(clip_norm=0.08, clip_value=0.01),
]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("case", CLIP_CASES, ids=range(len(CLIP_CASES)))
def test_clipping_vs_torch(case, dtype, deviation_record):
    """Full-batch SGD steps with the whole gradient (penalty, biases, BN
    included) clipped as clip_grad_norm_ / clip_grad_value_ do."""
    rng = np.random.default_rng(17)
    net = Network([4, 6, 5, 2], activation="tanh", batch_norm=[True, False], dtype=dtype,
                  random_state=8)
    X, Y = rng.standard_normal((20, 4)), 3 * rng.standard_normal((20, 2))
    p_t, _, losses_t = _torch_train(net, X, Y, lr=0.5, epochs=3, batch_size=20, seed=0,
                                    alpha=0.5, **case)
    train(net, X, Y, optimizer=SGD(0.5, momentum=0.0), epochs=3, batch_size=20,
          shuffle=False, random_state=0, alpha=0.5, **case)
    tol = TOL[net.dtype] * (1 if dtype == np.float64 else 10)
    err = deviation_record.add("clip " + "+".join(case), dtype,
                               block_error(net, net.params, p_t))
    assert err <= tol


def test_max_norm_step_vs_torch(deviation_record):
    """Each SGD step followed by the column rescaling of Keras' MaxNorm(axis=0)."""
    rng = np.random.default_rng(18)
    net = Network([4, 6, 5, 2], activation="relu", random_state=9)
    X, Y = rng.standard_normal((24, 4)), 3 * rng.standard_normal((24, 2))
    max_norm = 0.6
    p_t, _, _ = _torch_train(net, X, Y, lr=0.2, epochs=2, batch_size=8, seed=0,
                             max_norm=max_norm)
    train(net, X, Y, optimizer=SGD(0.2, momentum=0.0), epochs=2, batch_size=8,
          shuffle=False, random_state=0, max_norm=max_norm)
    for W in net.coefs:
        norms = np.linalg.norm(W, axis=0)
        assert norms.max() <= max_norm * (1 + 1e-12)
    # The constraint binds somewhere, else this test would not test it.
    assert any(np.isclose(np.linalg.norm(W, axis=0), max_norm, rtol=1e-12).any()
               for W in net.coefs)
    err = deviation_record.add("max_norm", np.float64, block_error(net, net.params, p_t))
    assert err <= TOL[np.dtype(np.float64)]
