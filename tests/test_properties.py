"""Property-based tests (hypothesis) over the shapes and layouts users send.

Three properties, over layer sizes, depths 0-3, per-layer activations and
every (loss, output) pair of ``bpcore.activations``' registries, dtypes,
memory layouts (C, Fortran, strided views), sparse formats and batch sizes:

* ``Network.forward`` equals the NumPy reference (``tests/reference.py``);
* ``Network.loss_and_grad`` equals central finite differences (float64);
* ``train`` on sane data never crashes and returns finite losses and
  parameters, with every optimizer of the registry.

The example counts are bounded by a hypothesis profile: ``bpcore`` (the
default, derandomized so CI sees the same 700 examples every run, ~5 s) or
``nightly`` (random, 50x the examples: 35,000), chosen by
``BPCORE_HYPOTHESIS_PROFILE=nightly``.
"""
import os

import numpy as np
import pytest
import scipy.sparse as sp

hypothesis = pytest.importorskip("hypothesis", reason="hypothesis is in the test extra")
from hypothesis import HealthCheck, assume, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

import reference as ref  # noqa: E402
from bpcore import Network, train  # noqa: E402
from bpcore.activations import HIDDEN_ACTIVATIONS, LOSSES, OUTPUT_ACTIVATIONS  # noqa: E402
from bpcore.optimizers import OPTIMIZERS  # noqa: E402
from conftest import make_targets  # noqa: E402

_COMMON = dict(deadline=None, print_blob=True,
               suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
settings.register_profile("bpcore", max_examples=200, derandomize=True, database=None,
                          **_COMMON)
settings.register_profile("nightly", max_examples=10000, **_COMMON)
PROFILE = os.environ.get("BPCORE_HYPOTHESIS_PROFILE", "bpcore")
settings.load_profile(PROFILE)

#: Per-property example counts relative to the profile's max_examples.
SCALE = {"forward": 1.5, "gradient": 1.0, "train": 1.0}


def _examples(prop):
    return max(1, int(settings.default.max_examples * SCALE[prop]))


HIDDEN = sorted(HIDDEN_ACTIVATIONS)
OUTPUTS = sorted(OUTPUT_ACTIVATIONS)
#: Every (loss, output) pair the registry allows (squared error: any output).
LOSS_OUTPUTS = [(loss, out) for loss, outs in sorted(LOSSES.items())
                for out in (OUTPUTS if outs is None else sorted(outs))]
LAYOUTS = ["C", "F", "rows-strided", "cols-strided", "csr", "csc", "coo"]
KINKED = {"relu", "leaky_relu", "elu"}


@st.composite
def networks(draw, max_width=8, max_depth=3):
    depth = draw(st.integers(0, max_depth))
    sizes = [draw(st.integers(1, max_width)) for _ in range(depth + 2)]
    hidden = [draw(st.sampled_from(HIDDEN)) for _ in range(depth)]
    loss, output = draw(st.sampled_from(LOSS_OUTPUTS))
    if output == "softmax" and loss == "log_loss":
        sizes[-1] = max(sizes[-1], 2)
    return sizes, hidden, loss, output


def _layout(X, layout, rng):
    """X (float64, C order) in the given memory layout; equal values."""
    if layout == "F":
        return np.asfortranarray(X)
    if layout == "rows-strided":
        big = rng.standard_normal((2 * X.shape[0], X.shape[1]))
        big[::2] = X
        return big[::2]
    if layout == "cols-strided":
        big = rng.standard_normal((X.shape[0], 3 * X.shape[1]))
        big[:, 1::3] = X
        return big[:, 1::3]
    if layout in ("csr", "csc", "coo"):
        return sp.csr_matrix(X).asformat(layout)
    return X


def _data(rng, n, n_features, layout, input_dtype):
    X = rng.standard_normal((n, n_features))
    if layout in ("csr", "csc", "coo"):
        X *= rng.uniform(size=X.shape) < 0.5
    Xin = _layout(X.astype(input_dtype), layout, rng)
    assert (not sp.issparse(Xin) and np.array_equal(Xin, X.astype(input_dtype))) or \
        (sp.issparse(Xin) and np.array_equal(Xin.toarray(), X.astype(input_dtype)))
    return X, Xin


def _build(sizes, hidden, loss, output, dtype, seed):
    net = Network(sizes, activation=hidden if hidden else "relu", output=output, loss=loss,
                  dtype=dtype, random_state=seed)
    if output == "exp":
        for c in net.coefs:
            c *= 0.5          # keep exp outputs (and their finite differences) moderate
    return net


# ---------------------------------------------------------------------------
# forward against the NumPy reference
# ---------------------------------------------------------------------------

@settings(max_examples=_examples("forward"))
@given(spec=networks(max_width=12), n=st.integers(1, 40),
       dtype=st.sampled_from(["float32", "float64"]),
       input_dtype=st.sampled_from([np.float64, np.float32, np.int64]),
       layout=st.sampled_from(LAYOUTS), seed=st.integers(0, 2**32 - 1))
def test_forward_matches_reference(spec, n, dtype, input_dtype, layout, seed):
    sizes, hidden, loss, output = spec
    rng = np.random.default_rng(seed)
    net = _build(sizes, hidden, loss, output, dtype, seed)
    X, Xin = _data(rng, n, sizes[0], layout, input_dtype)
    if input_dtype == np.int64:
        X = np.trunc(X)
        Xin = _layout(X.astype(np.int64), layout, rng)
    out = net.forward(Xin)
    assert out.shape == (n, sizes[-1]) and out.dtype == np.dtype(dtype)
    # The reference in float64 on the values the network holds (and on X as
    # the network's dtype sees it).
    Xd = X.astype(input_dtype).astype(dtype).astype(np.float64)
    _, acts = ref.network_forward(net.coefs, net.intercepts, hidden + [output], Xd)
    want = acts[-1]
    scale = max(1.0, float(np.abs(want).max()))
    tol = 2e-4 if dtype == "float32" else 1e-11
    np.testing.assert_allclose(out, want, rtol=tol, atol=tol * scale)
    # The caller's input is left as it was.
    if not sp.issparse(Xin):
        np.testing.assert_array_equal(Xin, X.astype(input_dtype))


# ---------------------------------------------------------------------------
# loss_and_grad against central finite differences (float64)
# ---------------------------------------------------------------------------

STEP = 1e-5
TOL = 1e-5
KINK_MARGIN = 1e-3


def _finite_differences(net, X, Y, alpha, sw):
    p = net.params
    fd = np.empty_like(p)
    for i in range(p.size):
        old = p[i]
        p[i] = old + STEP
        up, (plus, _) = p[i], net.loss_and_grad(X, Y, alpha=alpha, sample_weight=sw)
        p[i] = old - STEP
        down, (minus, _) = p[i], net.loss_and_grad(X, Y, alpha=alpha, sample_weight=sw)
        p[i] = old
        fd[i] = (plus - minus) / (up - down)
    return fd


@settings(max_examples=_examples("gradient"))
@given(spec=networks(max_width=5), n=st.integers(1, 12), layout=st.sampled_from(LAYOUTS),
       alpha=st.sampled_from([0.0, 0.1, 1.0]), weighted=st.booleans(),
       seed=st.integers(0, 2**32 - 1))
def test_gradient_matches_finite_differences(spec, n, layout, alpha, weighted, seed):
    sizes, hidden, loss, output = spec
    rng = np.random.default_rng(seed)
    net = _build(sizes, hidden, loss, output, "float64", seed)
    X, Xin = _data(rng, n, sizes[0], layout, np.float64)
    zs, _ = ref.network_forward(net.coefs, net.intercepts, hidden + [output], X)
    # No finite-difference step may cross a kink (relu, leaky_relu, elu at 0).
    assume(all(np.abs(z).min() > KINK_MARGIN for z, a in zip(zs, hidden) if a in KINKED))
    Y = make_targets(loss, output, n, sizes[-1], rng, poisson_mean=1.5)
    if loss == "absolute_error":   # |out - y| has its kink at out == y
        _, acts = ref.network_forward(net.coefs, net.intercepts, hidden + [output], X)
        assume(np.abs(acts[-1] - Y).min() > KINK_MARGIN)
    sw = rng.uniform(0.1, 3.0, n) if weighted else None
    value, grad = net.loss_and_grad(Xin, Y, alpha=alpha, sample_weight=sw)
    want, _, _ = ref.network_loss_grad(net.coefs, net.intercepts, hidden + [output], loss,
                                       X, Y, alpha=alpha, sample_weight=sw)
    assert value == pytest.approx(want, rel=1e-11, abs=1e-13)
    fd = _finite_differences(net, Xin, Y, alpha, sw)
    # Blockwise (one layer's weights, one layer's biases), by norms; the floor
    # covers the rounding noise of the quotients, ~eps * |loss| / STEP each.
    floor = 1e-4 * max(1.0, abs(value))
    g_c, g_b = net._views(grad)
    f_c, f_b = net._views(fd)
    for i, (g, f) in enumerate(zip(g_c + g_b, f_c + f_b)):
        err = np.linalg.norm(g - f) / max(np.linalg.norm(g), np.linalg.norm(f), floor)
        assert err <= TOL, f"block {i}: relative error {err:.3g}"


# ---------------------------------------------------------------------------
# train: no crash, finite losses on sane data
# ---------------------------------------------------------------------------

@settings(max_examples=_examples("train"))
@given(spec=networks(max_width=40, max_depth=2), n=st.integers(1, 120),
       batch=st.integers(1, 130), epochs=st.integers(1, 3), shuffle=st.booleans(),
       dtype=st.sampled_from(["float32", "float64"]), layout=st.sampled_from(LAYOUTS),
       optimizer=st.sampled_from(sorted(OPTIMIZERS)), weighted=st.booleans(),
       alpha=st.sampled_from([0.0, 1e-4, 0.1]), seed=st.integers(0, 2**32 - 1))
def test_train_gives_finite_losses(spec, n, batch, epochs, shuffle, dtype, layout,
                                   optimizer, weighted, alpha, seed):
    sizes, hidden, loss, output = spec
    rng = np.random.default_rng(seed)
    net = _build(sizes, hidden, loss, output, dtype, seed)
    _, Xin = _data(rng, n, sizes[0], layout, np.float64)
    Y = make_targets(loss, output, n, sizes[-1], rng)
    sw = rng.uniform(0.1, 3.0, n) if weighted else None
    history = train(net, Xin, Y, optimizer=OPTIMIZERS[optimizer](), epochs=epochs,
                    batch_size=batch, shuffle=shuffle, random_state=seed, alpha=alpha,
                    sample_weight=sw)
    losses = np.asarray(history.loss)
    assert losses.shape == (epochs,)
    assert np.isfinite(losses).all() and (losses >= -1e-6).all(), losses
    assert np.isfinite(net.params).all()
    assert np.isfinite(net.forward(Xin)).all()
