"""Network.loss_and_grad against central finite differences, in float64.

The matrix: every hidden activation x every loss with each of its allowed
outputs (squared error with a few outputs) x L2 on/off x 0-3 hidden layers x
with/without sample weights. The largest relative error of the whole matrix is
printed in pytest's terminal summary (see conftest.py).
"""
import zlib

import numpy as np
import pytest

import reference as ref
from bpcore import Network
from bpcore.activations import HIDDEN_ACTIVATIONS, LOSSES
from conftest import make_targets

#: Finite-difference step and the tolerance on the relative error. Rounding
#: makes each difference quotient noisy by about eps * |loss| / STEP; with
#: STEP = 1e-6 that noise reaches 2.5e-6 of the (tiny, ~1e-4) first-layer
#: gradients of three logistic layers. At 1e-5 the noise is 10x smaller and
#: the truncation error (~STEP**2) still negligible: worst block 2.8e-7 here.
STEP = 1e-5
TOL = 1e-6
#: Pre-activations of kinked units (relu, leaky_relu, elu at 0) must stay this
#: far from the kink, so that no finite-difference step crosses it.
KINK_MARGIN = 1e-4
KINKED = {"relu", "leaky_relu", "elu"}

SQUARED_ERROR_OUTPUTS = ["identity", "logistic", "tanh", "softmax"]
LOSS_OUTPUTS = [
    (loss, output)
    for loss, outputs in LOSSES.items()
    for output in (SQUARED_ERROR_OUTPUTS if outputs is None else outputs)
]
HIDDEN_WIDTHS = [5, 4, 3]  # first three hidden layers; depth d uses the first d

CASES = []
for _depth in range(4):
    # With no hidden layer the hidden activation plays no part: test it once.
    for _hidden in (sorted(HIDDEN_ACTIVATIONS) if _depth else ["relu"]):
        for _loss, _output in LOSS_OUTPUTS:
            CASES.append(pytest.param(_hidden, _loss, _output, _depth,
                                      id=f"{_hidden}-{_loss}-{_output}-depth{_depth}"))


def _rel(g, f):
    return np.linalg.norm(g - f) / max(np.linalg.norm(g), np.linalg.norm(f), 1e-8)


def relative_error(net, grad, fd):
    """Largest per-block relative error, each block (one layer's weights, one
    layer's biases) measured by norms: ||g - fd|| / max(||g||, ||fd||, 1e-8).

    Blockwise norms are robust to the finite-difference noise in single tiny
    entries, yet a wrong block (e.g. one layer's biases) cannot hide behind
    a large one, as it could in the norm over the whole vector (also returned).
    """
    g_coefs, g_inter = net._views(grad)
    f_coefs, f_inter = net._views(fd)
    blocks = max(_rel(g, f) for g, f in zip(g_coefs + g_inter, f_coefs + f_inter))
    return blocks, _rel(grad, fd)


def finite_differences(net, X, Y, alpha, sample_weight):
    """Central differences of the loss returned by Network.loss_and_grad."""
    p = net.params
    fd = np.empty_like(p)
    for i in range(p.size):
        old = p[i]
        p[i] = old + STEP
        up = p[i]
        loss_plus, _ = net.loss_and_grad(X, Y, alpha=alpha, sample_weight=sample_weight)
        p[i] = old - STEP
        down = p[i]
        loss_minus, _ = net.loss_and_grad(X, Y, alpha=alpha, sample_weight=sample_weight)
        p[i] = old
        fd[i] = (loss_plus - loss_minus) / (up - down)
    return fd


def make_problem(hidden, loss, output, depth, seed, n=10, n_features=3, n_outputs=3):
    """A small network and data set whose kinked units stay off their kinks."""
    sizes = [n_features] + HIDDEN_WIDTHS[:depth] + [n_outputs]
    for attempt in range(100):
        rng = np.random.default_rng([seed, attempt])
        net = Network(sizes, activation=hidden, output=output, loss=loss,
                      random_state=int(rng.integers(2**31)))
        X = rng.standard_normal((n, n_features))
        if output == "exp":
            net.coefs[-1] *= 0.5  # keep exp outputs moderate
        zs, _ = ref.network_forward(net.coefs, net.intercepts, [hidden] * depth + [output], X)
        if hidden in KINKED and depth and min(np.abs(z).min() for z in zs[:-1]) < KINK_MARGIN:
            continue
        Y = make_targets(loss, output, n, n_outputs, rng, poisson_mean=1.5)
        # Absolute and Huber error have kinks too (|d| at 0, Huber's |d| = delta).
        gap = np.abs(net.forward(X) - Y)
        if loss == "absolute_error" and gap.min() < KINK_MARGIN:
            continue
        if loss == "huber" and np.abs(gap - 1.0).min() < KINK_MARGIN:
            continue
        sw = rng.uniform(0.1, 3.0, n)
        return net, X, Y, sw
    raise RuntimeError("no seed kept every pre-activation off the kink")


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("alpha", [0.0, 0.3], ids=["noL2", "L2"])
@pytest.mark.parametrize("hidden, loss, output, depth", CASES)
def test_gradient_matches_finite_differences(hidden, loss, output, depth, alpha, weighted,
                                             gradcheck_record, deviation_record):
    seed = zlib.crc32(repr((hidden, loss, output, depth)).encode())
    net, X, Y, sw = make_problem(hidden, loss, output, depth, seed)
    sw = sw if weighted else None
    value, grad = net.loss_and_grad(X, Y, alpha=alpha, sample_weight=sw)
    fd = finite_differences(net, X, Y, alpha, sw)
    err, err_total = relative_error(net, grad, fd)
    where = f"{hidden}/{loss}/{output}/depth {depth}/alpha {alpha}/" \
            f"{'weighted' if weighted else 'unweighted'}"
    gradcheck_record.add(err, err_total, where)
    deviation_record.add(f"gradcheck {'L2' if alpha else 'plain'} (vs finite differences)",
                         np.float64, err)
    # Absolute error's loss is O(1) while its deepest gradients are ~1e-4,
    # so the difference quotients' rounding noise (eps |L| / STEP) is larger.
    tol = 3 * TOL if loss == "absolute_error" else TOL
    assert err <= tol, f"{where}: relative error {err:.3g}"
    # The loss itself is the reference's, so the finite differences check the
    # gradient of the right function.
    value_ref, _, _ = ref.network_loss_grad(net.coefs, net.intercepts,
                                            [hidden] * depth + [output], loss, X, Y,
                                            alpha=alpha, sample_weight=sw)
    assert value == pytest.approx(value_ref, rel=1e-12)


def test_gradient_check_detects_a_wrong_gradient():
    """The error measure is not vacuous: a gradient off in one bias fails it."""
    net, X, Y, _ = make_problem("tanh", "squared_error", "identity", 2, seed=1)
    _, grad = net.loss_and_grad(X, Y)
    fd = finite_differences(net, X, Y, 0.0, None)
    wrong = grad.copy()
    wrong[-1] *= 1.0001
    assert relative_error(net, wrong, fd)[0] > TOL


@pytest.mark.parametrize("activation", [["tanh", "relu", "elu"], ["logistic", "leaky_relu", "identity"]])
def test_gradient_per_layer_activations(activation, gradcheck_record):
    rng = np.random.default_rng(7)
    for seed in range(50):
        net = Network([3, 5, 4, 3, 2], activation=activation, output="softmax",
                      loss="log_loss", random_state=seed)
        X = rng.standard_normal((10, 3))
        zs, _ = ref.network_forward(net.coefs, net.intercepts, activation + ["softmax"], X)
        if min(np.abs(z).min() for z in zs[:-1]) >= KINK_MARGIN:
            break
    Y = np.eye(2)[rng.integers(0, 2, 10)]
    _, grad = net.loss_and_grad(X, Y, alpha=0.1)
    fd = finite_differences(net, X, Y, 0.1, None)
    err, err_total = relative_error(net, grad, fd)
    gradcheck_record.add(err, err_total, f"per-layer {activation}")
    assert err <= TOL


# ---------------------------------------------------------------------------
# The layer toolbox: every activation x loss x {BN, dropout, residual, L1,
# all of them with L2} x depth 0-3 (L2 alone is the grid above, in full).
#
# The full product (10 activations x 15 loss/output pairs x 5 features x 3
# depths) would be ~2250 cases, over a minute here; instead, for each
# (feature, depth) case i of 0..29 pairs activation i % 10 with loss/output
# pair (i + 3 depth + feature index) % 15: every activation meets three and
# every loss/output pair two of the others at each feature and depth, and the
# pairs rotate with the depth. L1 also runs at depth 0 (a linear model);
# batch norm, dropout and residual need a hidden layer. Odd cases use sample
# weights. Batch norm and dropout run in training mode (batch statistics,
# the masks of a fixed seed), both in loss_and_grad and the differences.
# ---------------------------------------------------------------------------

TOOLBOX_FEATURES = {
    "BN": dict(net=dict(batch_norm=True), loss=dict(training=True)),
    "dropout": dict(net=dict(dropout=0.3), loss=dict(training=True, seed=11)),
    "residual": dict(net=dict(residual=True), loss=dict()),
    "L1": dict(net=dict(), loss=dict(l1=0.2)),
    "all": dict(net=dict(batch_norm=True, dropout=0.3, residual=True),
                loss=dict(training=True, seed=5, l1=0.2, alpha=0.3)),
}
_ACTS = sorted(HIDDEN_ACTIVATIONS)
TOOLBOX_CASES = []
for _fi, _feature in enumerate(TOOLBOX_FEATURES):
    for _depth in range(4):
        if _depth == 0 and _feature != "L1":
            continue
        for _i in range(30 if _depth else len(LOSS_OUTPUTS)):
            _act = _ACTS[_i % len(_ACTS)] if _depth else "relu"
            _loss, _output = LOSS_OUTPUTS[(_i + 3 * _depth + _fi) % len(LOSS_OUTPUTS)]
            TOOLBOX_CASES.append(pytest.param(
                _feature, _act, _loss, _output, _depth, _i % 2 == 1,
                id=f"{_feature}-{_act}-{_loss}-{_output}-depth{_depth}-{_i % 2}"))


def _toolbox_fd(net, X, Y, sw, kw):
    p = net.params
    fd = np.empty_like(p)
    for i in range(p.size):
        old = p[i]
        p[i] = old + STEP
        up = p[i]
        loss_plus, _ = net.loss_and_grad(X, Y, sample_weight=sw, **kw)
        p[i] = old - STEP
        down = p[i]
        loss_minus, _ = net.loss_and_grad(X, Y, sample_weight=sw, **kw)
        p[i] = old
        fd[i] = (loss_plus - loss_minus) / (up - down)
    return fd


def _block_errors(net, grad, fd, loss):
    """As relative_error, over every parameter block (BN scales included),
    with a floor for blocks whose gradient is zero in exact arithmetic: a
    layer's shift feeding the next batch norm through an identity unit is
    removed by that batch norm's mean (its kernel gradient ~1e-17, its
    difference quotients ~1e-11 of rounding noise, eps |L| / STEP each).
    Below ``floor / TOL`` a block is held to the absolute error ``floor``, 10
    times that noise over the block."""
    def rel(g, f):
        floor = 10 * np.sqrt(g.size) * np.finfo(np.float64).eps * max(abs(loss), 1) / STEP
        return np.linalg.norm(g - f) / max(np.linalg.norm(g), np.linalg.norm(f), floor / TOL)
    blocks = max(rel(grad[o:o + s], fd[o:o + s]) for _, _, o, s in net.blocks)
    return blocks, _rel(grad, fd)


def make_toolbox_problem(feature, hidden, loss, output, depth, seed, n=10):
    """A small network with the feature's layers, off every kink."""
    spec = TOOLBOX_FEATURES[feature]
    kw = spec["loss"]
    residual = spec["net"].get("residual", False)
    n_features = 4 if residual else 3
    widths = [4, 4, 4] if residual else HIDDEN_WIDTHS
    sizes = [n_features] + widths[:depth] + [3]
    for attempt in range(200):
        rng = np.random.default_rng([seed, attempt])
        net = Network(sizes, activation=hidden, output=output, loss=loss,
                      random_state=int(rng.integers(2**31)), **spec["net"])
        for l, g in enumerate(net.bn_scales):
            if g is not None:       # off gamma = 1, shift = 0
                g[...] = rng.uniform(0.5, 1.5, g.shape)
                net.intercepts[l][...] = 0.3 * rng.standard_normal(g.shape)
        if output == "exp":
            net.coefs[-1][...] *= 0.5
        X = rng.standard_normal((n, n_features))
        zs, out = ref.toolbox_forward(net, X, training=kw.get("training", False),
                                      seed=kw.get("seed", 0))
        if hidden in KINKED and depth and min(np.abs(z).min() for z in zs[:-1]) < KINK_MARGIN:
            continue
        if min(np.abs(W).min() for W in net.coefs) < 10 * STEP and kw.get("l1"):
            continue
        Y = make_targets(loss, output, n, 3, rng, poisson_mean=1.5)
        sw = rng.uniform(0.1, 3.0, n)
        # Weights move batch norm's statistics: off the kinks with them too.
        zs_w, out_w = ref.toolbox_forward(net, X, training=kw.get("training", False),
                                          seed=kw.get("seed", 0), sample_weight=sw)
        if hidden in KINKED and depth and min(np.abs(z).min() for z in zs_w[:-1]) < KINK_MARGIN:
            continue
        gap = np.abs(np.concatenate([out, out_w]) - np.concatenate([Y, Y]))
        if loss == "absolute_error" and gap.min() < KINK_MARGIN:
            continue
        if loss == "huber" and np.abs(gap - 1.0).min() < KINK_MARGIN:
            continue
        return net, X, Y, sw, dict(kw), out
    raise RuntimeError("no seed kept every pre-activation off the kink")


@pytest.mark.parametrize("feature, hidden, loss, output, depth, weighted", TOOLBOX_CASES)
def test_toolbox_gradient_matches_finite_differences(feature, hidden, loss, output, depth,
                                                     weighted, gradcheck_record,
                                                     deviation_record):
    seed = zlib.crc32(repr((feature, hidden, loss, output, depth)).encode())
    net, X, Y, sw, kw, out = make_toolbox_problem(feature, hidden, loss, output, depth, seed)
    sw = sw if weighted else None
    value, grad = net.loss_and_grad(X, Y, sample_weight=sw, **kw)
    fd = _toolbox_fd(net, X, Y, sw, kw)
    err, err_total = _block_errors(net, grad, fd, value)
    where = f"{feature}/{hidden}/{loss}/{output}/depth {depth}/" \
            f"{'weighted' if weighted else 'unweighted'}"
    gradcheck_record.add(err, err_total, where)
    deviation_record.add(f"gradcheck {feature} (vs finite differences)", np.float64, err)
    tol = 3 * TOL if loss == "absolute_error" else TOL
    assert err <= tol, f"{where}: relative error {err:.3g}"
    # The loss is the reference's (forward with the same layers and masks,
    # batch statistics weighted as the loss is).
    w = np.ones(X.shape[0]) if sw is None else sw
    if sw is not None:
        _, out = ref.toolbox_forward(net, X, training=kw.get("training", False),
                                     seed=kw.get("seed", 0), sample_weight=sw)
    rows = ref.row_losses(ref.loss_kind(loss, output), out, Y)
    penalty = sum(0.5 * kw.get("alpha", 0.0) * np.sum(W ** 2) + kw.get("l1", 0.0)
                  * np.sum(np.abs(W)) for W in net.coefs)
    assert value == pytest.approx((np.sum(w * rows) + penalty) / w.sum(), rel=1e-12)


def test_toolbox_gradient_check_detects_a_wrong_bn_scale():
    """The floored measure is not vacuous: one BN scale off by 1e-4 fails it."""
    args = ("all", "tanh", "squared_error", "identity", 2)
    net, X, Y, _, kw, _ = make_toolbox_problem(*args, seed=3)
    value, grad = net.loss_and_grad(X, Y, **kw)
    fd = _toolbox_fd(net, X, Y, None, kw)
    assert _block_errors(net, grad, fd, value)[0] <= TOL
    (_, _, off, _), = [b for b in net.blocks if b[0] == "bn_scale" and b[1] == 1]
    wrong = grad.copy()
    wrong[off] *= 1.0001
    assert _block_errors(net, wrong, fd, value)[0] > TOL
