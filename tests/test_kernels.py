"""Every kernel of bpcore._kernels against the NumPy reference, in float32 and float64."""
import platform

import numpy as np
import pytest

import reference as ref
from bpcore import _kernels as K
from bpcore.activations import (HIDDEN_ACTIVATIONS, HIDDEN_ONLY, LOSSES,
                                OUTPUT_ACTIVATIONS, loss_code)
from bpcore.optimizers import OPTIMIZERS
from conftest import (DTYPES, OPTIMIZER_CASES, assert_close, make_targets,
                      require_optimizer_reference)

# ---------------------------------------------------------------------------
# gemm
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("trans_a", [False, True])
@pytest.mark.parametrize("trans_b", [False, True])
@pytest.mark.parametrize("alpha, beta", [(1.0, 0.0), (0.7, 0.0), (-1.3, 1.0), (2.0, -0.5)])
def test_gemm(dtype, trans_a, trans_b, alpha, beta, rng):
    _check_gemm(dtype, trans_a, trans_b, 7, 5, 11, alpha, beta, rng)


def _check_gemm(dtype, trans_a, trans_b, m, n, k, alpha, beta, rng):
    """K.gemm on random operands of these shapes against the NumPy reference."""
    a = rng.standard_normal((k, m) if trans_a else (m, k)).astype(dtype)
    b = rng.standard_normal((n, k) if trans_b else (k, n)).astype(dtype)
    c = rng.standard_normal((m, n)).astype(dtype)
    expected = ref.gemm(trans_a, trans_b, alpha, a, b, beta, c)
    scale = ref.gemm_scale(trans_a, trans_b, alpha, a, b, beta, c)
    out = c.copy()
    K.gemm(trans_a, trans_b, alpha, a, b, beta, out)
    assert out.dtype == dtype
    assert_close(out, expected, dtype, scale=scale)


@pytest.fixture(params=[1, 4], ids=["whole", "cut"])
def gemm_split(request):
    """Run a test with _gemm's row-block cut off (1) and at its default of 4."""
    previous = K.set_gemm_split(request.param)
    yield request.param
    K.set_gemm_split(previous)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("trans_a", [False, True])
@pytest.mark.parametrize("trans_b", [False, True])
# n * k = 10,000 multiply-adds per row of C, so at most 100 rows per block
# under the 1e6 limit: 150 rows -> 2 blocks, 250 -> 3, 301 -> 4 (75, 75, 75,
# 76), 401 -> 5, more than the 4 allowed: one call. 100 -> at the limit.
@pytest.mark.parametrize("m", [100, 150, 250, 301, 401])
def test_gemm_cut_into_row_blocks(dtype, trans_a, trans_b, m, gemm_split, rng):
    _check_gemm(dtype, trans_a, trans_b, m, 125, 80, -0.7, 0.5, rng)


@pytest.mark.parametrize("dtype", DTYPES)
# delta @ W.T as the epoch kernels issue it (alpha 1, beta 0): with the
# shaping on, (200, 100, 10), (32, 100, 10) and (150, 125, 80) (two row
# blocks) go through the copy of W.T; (20, 30, 40) is one OpenBLAS's TN small
# kernel takes (C of 600 entries, k >= 32) and (401, 125, 80) one too big for
# the small kernels: both keep A @ B.T.
@pytest.mark.parametrize("m, n, k", [(200, 100, 10), (32, 100, 10), (150, 125, 80),
                                     (20, 30, 40), (401, 125, 80), (1, 1, 1)])
def test_gemm_a_bt_through_a_copy_of_b_transposed(dtype, m, n, k, gemm_split, rng):
    _check_gemm(dtype, False, True, m, n, k, 1.0, 0.0, rng)


def test_set_gemm_split_returns_previous_and_rejects_negative():
    previous = K.set_gemm_split(3)
    try:
        assert K.set_gemm_split(2) == 3
        assert K.get_gemm_split() == 2
        with pytest.raises(ValueError, match="max_pieces must be >= 0"):
            K.set_gemm_split(-1)
    finally:
        K.set_gemm_split(previous)


@pytest.mark.parametrize("dtype", DTYPES)
def test_gemm_empty_inner_dimension_scales_c_by_beta(dtype):
    a = np.zeros((3, 0), dtype=dtype)
    b = np.zeros((0, 4), dtype=dtype)
    c = np.arange(12, dtype=dtype).reshape(3, 4)
    K.gemm(False, False, 1.0, a, b, 0.5, c)
    np.testing.assert_array_equal(c, 0.5 * np.arange(12).reshape(3, 4))


def test_gemm_shape_mismatch():
    a = np.ones((3, 4))
    b = np.ones((5, 2))
    with pytest.raises(ValueError, match="gemm: shapes of a, b and c_out do not agree"):
        K.gemm(False, False, 1.0, a, b, 0.0, np.zeros((3, 2)))


# ---------------------------------------------------------------------------
# Activations
# ---------------------------------------------------------------------------

#: Every activation the kernels know (hidden and output), name -> code.
ACTIVATION_CODES = {**HIDDEN_ACTIVATIONS, **OUTPUT_ACTIVATIONS}
ALL_ACTIVATIONS = sorted(ACTIVATION_CODES)


def test_activation_registries_cover_the_reference():
    assert set(HIDDEN_ACTIVATIONS) - set(OUTPUT_ACTIVATIONS) == set(HIDDEN_ONLY)
    missing = set(ACTIVATION_CODES) - set(ref.ACTIVATIONS)
    assert not missing, f"no NumPy reference for activations {missing}: add them to tests/reference.py"


def _preactivations(rng, dtype, rows=9, cols=6, spread=2.0):
    z = rng.uniform(-spread, spread, (rows, cols))
    # Keep away from the kinks of relu / leaky_relu / elu at exactly 0.
    z = np.where(np.abs(z) < 1e-3, 0.5, z)
    return z.astype(dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", ALL_ACTIVATIONS)
@pytest.mark.parametrize("with_bias", [True, False])
def test_activation_forward(name, dtype, with_bias, rng):
    z = _preactivations(rng, dtype, spread=4.0)
    bias = rng.uniform(-1, 1, z.shape[1]).astype(dtype) if with_bias else None
    # The kernel adds the bias in the working dtype; so does the reference input.
    z_plus_b = z + bias if with_bias else z
    expected = ref.activation_forward(name, z_plus_b)
    out = z.copy()
    K.activation_forward(ACTIVATION_CODES[name], out, bias)
    assert out.dtype == dtype
    # GELU's 1 + erf(z / sqrt 2) cancels in the negative tail (in torch too):
    # its error is relative to |z|, not to the tiny result.
    scale = np.abs(z_plus_b.astype(float)) if name == "gelu" else None
    assert_close(out, expected, dtype, scale=scale, err_msg=name)


@pytest.mark.parametrize("dtype", DTYPES)
def test_activation_leaky_relu_and_elu_parameters(dtype):
    z = np.array([[-2.0, -0.5, 0.25, 3.0]], dtype=dtype)
    out = z.copy()
    K.activation_forward(K.Activation.LEAKY_RELU, out, None, leaky_slope=0.2)
    assert_close(out, [[-0.4, -0.1, 0.25, 3.0]], dtype)
    out = z.copy()
    K.activation_forward(K.Activation.ELU, out, None, elu_alpha=2.0)
    assert_close(out, [[2 * np.expm1(-2.0), 2 * np.expm1(-0.5), 0.25, 3.0]], dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shift", [0.0, 1000.0, -1000.0, 80.0])
def test_softmax_is_stable_for_large_inputs(dtype, shift):
    base = np.array([[0.0, 1.0, 2.0, -3.0], [5.0, 5.0, 5.0, 5.0]])
    z = (base + shift).astype(dtype)
    K.activation_forward(K.Activation.SOFTMAX, z, None)
    assert np.isfinite(z).all()
    assert_close(z, ref.softmax(base), dtype)
    assert_close(z.sum(axis=1), [1.0, 1.0], dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_softmax_large_bias(dtype):
    z = np.zeros((2, 3), dtype=dtype)
    bias = np.array([700.0, 701.0, 699.0], dtype=dtype)
    K.activation_forward(K.Activation.SOFTMAX, z, bias)
    assert_close(z, ref.softmax(np.tile([1.0, 2.0, 0.0], (2, 1))), dtype)


def test_relu_keeps_nan():
    z = np.array([[np.nan, -1.0, 1.0]])
    K.activation_forward(K.Activation.RELU, z, None)
    assert np.isnan(z[0, 0]) and z[0, 1] == 0 and z[0, 2] == 1


def test_activation_forward_bias_length_mismatch():
    with pytest.raises(ValueError, match="bias length does not match the columns of z"):
        K.activation_forward(K.Activation.TANH, np.zeros((2, 3)), np.zeros(2))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", ALL_ACTIVATIONS)
def test_activation_backward(name, dtype, rng):
    # |z| <= 2 keeps f'(z) well conditioned as a function of a = f(z), which is
    # all the kernel sees (e.g. 1 - a**2 for tanh loses digits as |a| -> 1).
    z = _preactivations(rng, np.float64, spread=2.0)
    a = ref.activation_forward(name, z).astype(dtype)
    delta = rng.standard_normal(z.shape).astype(dtype)
    expected = ref.activation_backward(name, z, delta)
    out = delta.copy()
    # GELU, SiLU, softplus and SELU read their input z as well.
    K.activation_backward(ACTIVATION_CODES[name], a, out, z=z.astype(dtype))
    assert out.dtype == dtype
    # Softmax: a * (delta - <delta, a>) cancels; scale by the summed terms.
    scale = None
    if name == "softmax":
        s = ref.softmax(z)
        scale = s * (np.abs(delta) + np.sum(np.abs(delta) * s, axis=1, keepdims=True))
    assert_close(out, expected, dtype, scale=scale, err_msg=name)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", HIDDEN_ONLY)
def test_z_activations_follow_torch_at_the_edges(name, dtype):
    # Far tails and the softplus threshold (z > 20 is the identity, as torch).
    z = np.array([[-40.0, -20.5, -1e-8, 0.0, 1e-8, 19.99, 20.0, 20.01, 40.0]])
    a = z.astype(dtype).copy()
    K.activation_forward(ACTIVATION_CODES[name], a, None)
    assert_close(a, ref.activation_forward(name, z), dtype, scale=np.abs(z) * 1e-6 + 1e-30)
    d = np.ones_like(z, dtype=dtype)
    K.activation_backward(ACTIVATION_CODES[name], a, d, z=z.astype(dtype))
    assert_close(d, ref.activation_backward(name, z, np.ones_like(z)), dtype, scale=1e-6)
    with pytest.raises(ValueError, match="needs its input z"):
        K.activation_backward(ACTIVATION_CODES[name], a, d)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("code", [K.Activation.RELU, K.Activation.IDENTITY])
def test_activation_backward_column_sums_are_exact(code, dtype):
    # The fused bias gradient: ReLU's mask (or the identity) and the column
    # sums, bitwise equal to the sequential row-after-row sum, over widths on
    # both sides of every vector step (16/8/4/1 float32, 8/4/2/1 float64),
    # of the 512-byte switch between column blocks and rows, and batches
    # spanning several of the column walk's L1 chunks; NaN, -0.0 and zeros
    # in a (ReLU keeps d where a != 0, NaN included), -0.0 in delta; and a
    # column block of wider arrays (a thread's share of a shared buffer:
    # row stride larger than the width, the columns beyond left alone).
    rng = np.random.default_rng(7)
    for cols, pad in [(c, 0) for c in (1, 3, 5, 10, 17, 50, 64, 100, 128, 129, 257, 513)] + [
            (c, p) for c in (3, 10, 50, 100, 129) for p in (1, 7, 50)]:
        for rows in (0, 1, 7, 41, 200):
            a = rng.standard_normal((rows, cols)).astype(dtype)
            a[a < -0.5] = 0
            a[(a > 1.5) & (a < 1.6)] = np.nan
            a[(a > 0.9) & (a < 0.95)] = -0.0
            delta = rng.standard_normal((rows, cols)).astype(dtype)
            delta[(delta > 1.0) & (delta < 1.1)] = -0.0
            expected = delta.copy()
            if code == K.Activation.RELU:
                expected = np.where(a != 0, delta, dtype(0)).astype(dtype)
            for accumulate in (False, True):
                start = rng.standard_normal(cols).astype(dtype)
                total = start.copy() if accumulate else None
                for i in range(rows):
                    total = expected[i].copy() if total is None else total + expected[i]
                if total is None:
                    total = np.zeros(cols, dtype=dtype)
                colsum = start.copy()
                extra = rng.standard_normal((rows, pad)).astype(dtype)
                wide_a = np.ascontiguousarray(np.hstack([a, extra]))
                wide_d = np.ascontiguousarray(np.hstack([delta, extra]))
                K.activation_backward(code, wide_a, wide_d, colsum=colsum, accumulate=accumulate,
                                      n_cols=cols if pad else -1)
                out = wide_d[:, :cols]
                where = f"cols {cols}, pad {pad}, rows {rows}, accumulate {accumulate}"
                np.testing.assert_array_equal(out.view(f"u{out.itemsize}"),
                                              expected.view(f"u{out.itemsize}"), err_msg=where)
                np.testing.assert_array_equal(wide_d[:, cols:], extra, err_msg=where)
                np.testing.assert_array_equal(colsum.view(f"u{out.itemsize}"),
                                              total.view(f"u{out.itemsize}"), err_msg=where)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("cols", [1, 3, 10, 17, 100, 129])
def test_bias_relu_and_softmax_are_exact(cols, dtype):
    # The forward steps: bias + ReLU bitwise as np.maximum's select (NaN and
    # -0.0 kept, negatives to +0), and softmax against the same operations
    # done row by row in NumPy (shift by the row maximum, exp from the
    # kernel's own exp, sequential row sum, division).
    rng = np.random.default_rng(cols)
    z = rng.standard_normal((37, cols)).astype(dtype)
    z[z > 1.8] = np.nan
    bias = rng.standard_normal(cols).astype(dtype)
    bias[0] = -0.0
    z[3, 0] = -0.0
    v = z + bias
    expected = np.where(v < 0, dtype(0), v).astype(dtype)
    got = z.copy()
    K.activation_forward(K.Activation.RELU, got, bias)
    np.testing.assert_array_equal(got.view(f"u{got.itemsize}"), expected.view(f"u{got.itemsize}"))
    z = rng.standard_normal((37, cols)).astype(dtype) * 3
    shifted = np.empty_like(z)
    for i in range(z.shape[0]):
        row = z[i] + bias
        vmax = row[0]
        for x in row[1:]:
            vmax = x if x > vmax else vmax
        shifted[i] = row - vmax
    e = shifted.copy()
    K.activation_forward(K.Activation.EXP, e, None)
    expected = np.empty_like(z)
    for i in range(z.shape[0]):
        total = dtype(0)
        for x in e[i]:
            total = dtype(total + x)
        expected[i] = e[i] / total
    got = z.copy()
    K.activation_forward(K.Activation.SOFTMAX, got, bias)
    np.testing.assert_array_equal(got, expected)


def test_activation_backward_colsum_length_mismatch():
    with pytest.raises(ValueError, match="colsum length does not match the columns of delta"):
        K.activation_backward(K.Activation.RELU, np.zeros((2, 3)), np.zeros((2, 3)),
                              colsum=np.zeros(2))


def test_activation_backward_shape_mismatch():
    with pytest.raises(ValueError, match="a and delta must have the same shape"):
        K.activation_backward(K.Activation.TANH, np.zeros((2, 3)), np.zeros((3, 2)))


# ---------------------------------------------------------------------------
# Losses
# ---------------------------------------------------------------------------

#: (loss name, output activation) -> reference loss kind; driven by LOSSES.
LOSS_PAIRS = [
    (loss, output)
    for loss, outputs in LOSSES.items()
    for output in (["identity", "logistic", "tanh", "softmax"] if outputs is None else outputs)
]


def _loss_data(kind, output, rng, dtype, rows=8, cols=4, extreme=False):
    z = rng.standard_normal((rows, cols)) * 2
    out = ref.activation_forward(output, z)
    if kind == "log_loss":
        y = np.eye(cols)[rng.integers(0, cols, rows)]
        y[0] = rng.dirichlet(np.ones(cols))  # soft labels too
        if extreme:
            out[1] = 0.0
            out[1, 0] = 1.0     # certain and wrong for every label but 0
            out[2] = 0.25
    elif kind == "binary_log_loss":
        y = rng.integers(0, 2, (rows, cols)).astype(float)
        y[0] = rng.uniform(0, 1, cols)
        if extreme:
            out[1] = [0.0, 1.0, 0.0, 1.0][:cols]
            y[1] = [1.0, 0.0, 0.0, 1.0][:cols]
    elif kind == "poisson":
        y = rng.poisson(out).astype(float)
        y[0, 0] = 0.0
    else:
        y = rng.standard_normal((rows, cols))
    return out.astype(dtype), y.astype(dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("loss, output", LOSS_PAIRS)
@pytest.mark.parametrize("sq_scale", [1.0, 0.25])
def test_loss_delta(loss, output, weighted, dtype, sq_scale, rng):
    kind = ref.loss_kind(loss, output)
    code = loss_code(loss, output)
    out, y = _loss_data(kind, output, rng, dtype)
    sw = rng.uniform(0.1, 3.0, out.shape[0]).astype(dtype) if weighted else None
    total_ref, delta_ref = ref.loss_delta(kind, out, y, sw, sq_scale=sq_scale, dtype=dtype)
    delta = np.full_like(out, np.nan)
    total = K.loss_delta(code, out, y, sw, delta, sq_scale=sq_scale)
    # Poisson's y log(y/o) - y + o cancels; scale by its terms.
    terms = np.abs(ref._xlogy(y, y / out.astype(float))) + np.abs(y) + np.abs(out) \
        if kind == "poisson" else None
    w = np.ones(out.shape[0]) if sw is None else sw.astype(float)
    scale = None if terms is None else float(np.sum(w[:, None] * terms))
    assert_close(total, total_ref, dtype, scale=scale, err_msg=f"{loss}/{output} loss")
    assert delta.dtype == dtype
    assert_close(delta, delta_ref, dtype, scale=np.abs(out) + np.abs(y),
                 err_msg=f"{loss}/{output} delta")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("kind, output", [("log_loss", "softmax"),
                                          ("binary_log_loss", "logistic")])
def test_log_loss_clips_probabilities(kind, output, dtype, weighted, rng):
    out, y = _loss_data(kind, output, rng, dtype, extreme=True)
    sw = rng.uniform(0.1, 3.0, out.shape[0]).astype(dtype) if weighted else None
    total_ref, delta_ref = ref.loss_delta(kind, out, y, sw, dtype=dtype)
    code = LOSSES["log_loss"][output]
    delta = np.empty_like(out)
    total = K.loss_delta(code, out, y, sw, delta)
    assert np.isfinite(total)
    # -log(eps) appears: make sure the row with a certain, wrong answer counts it.
    assert total >= -np.log(np.finfo(dtype).eps)
    assert_close(total, total_ref, dtype)
    assert_close(delta, delta_ref, dtype, scale=1.0)


def _fsum_log_loss(out, y, dtype):
    """-sum(y * log(clip(out))) summed exactly (math.fsum), in float64."""
    import math
    eps = float(np.finfo(dtype).eps)
    p = np.clip(out.astype(np.float64), eps, 1 - eps)
    logs = np.log(p[y != 0]) * y[y != 0].astype(np.float64)
    return -math.fsum(logs.tolist())


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", ["batch", "all_clipped", "multi_hot", "mixed_soft",
                                  "ragged", "ragged_clipped", "tail_rescale"])
def test_log_loss_product_of_probabilities(case, dtype, rng):
    # Unweighted log loss multiplies the true classes' probabilities in 8
    # lanes (whole vectors, then the rest one by one) and takes a log per
    # lane; it must match the summed logs to a few ulp of the sum.
    rows, cols = 200, 10
    out = rng.dirichlet(np.ones(cols), rows).astype(dtype)
    y = np.eye(cols, dtype=dtype)[rng.integers(0, cols, rows)]
    if case == "all_clipped":
        # 5000 rows whose true class got probability 0: each clipped to eps,
        # a product of eps**5000 (2^-260000 in float64) without rescaling.
        rows = 5000
        out = np.zeros((rows, cols), dtype=dtype)
        out[:, 0] = 1
        y = np.zeros((rows, cols), dtype=dtype)
        y[:, 1] = 1
    elif case == "multi_hot":
        # every target 1: 100 factors per row, each possibly tiny.
        cols = 100
        out = (rng.dirichlet(np.ones(cols), rows) ** 4).astype(dtype)
        y = np.ones((rows, cols), dtype=dtype)
    elif case == "mixed_soft":
        y[::3] = rng.dirichlet(np.ones(cols), len(y[::3])).astype(dtype)
    elif case.startswith("ragged"):
        # 37 x 7 = 259 entries: 32 groups of 8 and 3 left for the scalar
        # lanes; clipped: every factor eps, so lanes rescale in both parts.
        rows, cols = 37 if case == "ragged" else 4001, 7
        out = rng.dirichlet(np.ones(cols), rows).astype(dtype)
        y = np.eye(cols, dtype=dtype)[rng.integers(0, cols, rows)]
        if case == "ragged_clipped":
            out = (1 - y) / (cols - 1)
    elif case == "tail_rescale":
        # Every factor eps: a lane first rescales at its (k + 1)-th factor,
        # k = floor(900 / -log2(eps)). The vector part gives each lane k,
        # the scalar rest 3 lanes their (k + 1)-th.
        k = int(900 // -np.log2(np.finfo(dtype).eps))
        rows, cols = 8 * k + 3, 1
        out = np.zeros((rows, cols), dtype=dtype)
        y = np.ones((rows, cols), dtype=dtype)
    expected = _fsum_log_loss(out, y, dtype)
    delta = np.empty_like(out)
    total = K.loss_delta(LOSSES["log_loss"]["softmax"], out, y, None, delta)
    # float32's soft-label logs are float32 logf, as scikit-learn's.
    rtol = 1e-14 if dtype == np.float64 or case != "mixed_soft" else 1e-6
    assert total == pytest.approx(expected, rel=rtol)
    if case in ("all_clipped", "ragged_clipped", "tail_rescale"):
        assert total == pytest.approx(-rows * np.log(float(np.finfo(dtype).eps)), rel=1e-14)
    np.testing.assert_array_equal(delta, out - y)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("where", [0, 1996])
def test_log_loss_nan_probability_gives_nan(where, dtype, rng):
    # A NaN in the vector part (entry 0) or the scalar tail (1996 of 1998).
    out = rng.dirichlet(np.ones(9), 222).astype(dtype)
    y = np.eye(9, dtype=dtype)[rng.integers(0, 9, 222)]
    out.flat[where] = np.nan
    y.flat[where] = 1
    assert np.isnan(K.loss_delta(K.Loss.LOG_LOSS, out, y, None, np.empty_like(out)))


def test_squared_error_is_half_mean_over_outputs():
    out = np.array([[1.0, 2.0], [0.0, 0.0]])
    y = np.array([[0.0, 0.0], [1.0, 3.0]])
    delta = np.empty_like(out)
    # rows: 0.5 * (1 + 4) / 2 = 1.25 and 0.5 * (1 + 9) / 2 = 2.5
    assert K.loss_delta(K.Loss.SQUARED_ERROR, out, y, None, delta) == pytest.approx(3.75)
    total = K.loss_delta(K.Loss.SQUARED_ERROR, out, y, np.array([2.0, 0.5]), delta)
    assert total == pytest.approx(2 * 1.25 + 0.5 * 2.5)
    np.testing.assert_allclose(delta, [[2.0, 4.0], [-0.5, -1.5]])


def test_loss_delta_shape_mismatch():
    with pytest.raises(ValueError, match="out, y and delta_out must have the same shape"):
        K.loss_delta(K.Loss.SQUARED_ERROR, np.zeros((2, 3)), np.zeros((2, 2)), None,
                     np.zeros((2, 3)))
    with pytest.raises(ValueError, match="sample_weight length does not match the rows"):
        K.loss_delta(K.Loss.SQUARED_ERROR, np.zeros((2, 3)), np.zeros((2, 3)), np.ones(3),
                     np.zeros((2, 3)))


# ---------------------------------------------------------------------------
# Optimizers (one kernel step; multi-step rules are in test_optimizers.py)
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name, kwargs", OPTIMIZER_CASES)
def test_optimizer_step_kernel(name, kwargs, dtype, rng):
    require_optimizer_reference(name, kwargs)
    opt = OPTIMIZERS[name](**kwargs)
    n = 23
    theta = rng.standard_normal(n).astype(dtype)
    state = np.zeros((opt._config.n_state, n), dtype=dtype)
    ref_theta, ref_state = theta.astype(float), {}
    for _ in range(3):
        g = rng.standard_normal(n).astype(dtype)
        K.optimizer_step(opt._config, theta, g, state)
        ref_theta = ref.OPTIMIZER_STEPS[name](ref_theta, g, ref_state, **kwargs)
    assert theta.dtype == dtype
    assert_close(theta, ref_theta, dtype, scale=1.0)


def test_optimizer_step_checks_shapes():
    cfg = K.OptimizerConfig(K.OptimizerKind.ADAM, 0.1)
    with pytest.raises(ValueError, match=r"grad has 3 entries, params 4"):
        K.optimizer_step(cfg, np.zeros(4), np.zeros(3), np.zeros((2, 4)))
    with pytest.raises(ValueError, match=r"optimizer state must have shape \(2, 4\), got \(1, 4\)"):
        K.optimizer_step(cfg, np.zeros(4), np.zeros(4), np.zeros((1, 4)))


# ---------------------------------------------------------------------------
# Whole-network drivers, called directly (chunked paths included)
# ---------------------------------------------------------------------------

NET_CASES = [
    # sizes, hidden activations, output, loss
    ((5, 7, 3), ["tanh"], "softmax", "log_loss"),
    ((4, 6, 5, 2), ["relu", "elu"], "logistic", "log_loss"),
    ((3, 4, 1), ["leaky_relu"], "exp", "poisson"),
    ((6, 3), [], "identity", "squared_error"),
    ((4, 5, 4, 3), ["logistic", "identity"], "tanh", "squared_error"),
]


def _layout(sizes, hidden, output, loss, sq_scale):
    codes = [HIDDEN_ACTIVATIONS[h] for h in hidden] + [OUTPUT_ACTIVATIONS[output]]
    lcode = K.Loss.SQUARED_ERROR if LOSSES[loss] is None else LOSSES[loss][output]
    return K.Layout(list(sizes), codes, lcode, sq_scale=sq_scale)


def _random_net(sizes, rng, dtype):
    coefs = [rng.uniform(-0.8, 0.8, (a, b)) for a, b in zip(sizes[:-1], sizes[1:])]
    inter = [rng.uniform(-0.3, 0.3, b) for b in sizes[1:]]
    coefs = [c.astype(dtype).astype(float) for c in coefs]
    inter = [b.astype(dtype).astype(float) for b in inter]
    return coefs, inter, ref.flatten(coefs, inter).astype(dtype)


def test_layout_offsets():
    layout = _layout((3, 4, 2), ["tanh"], "identity", "squared_error", 1.0)
    assert layout.sizes == (3, 4, 2)
    assert layout.n_weights == 12 + 8
    assert layout.n_params == 12 + 8 + 4 + 2
    assert layout.weight_offsets == (0, 12)
    assert layout.bias_offsets == (20, 24)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("chunk", [1, 7, 1000])
@pytest.mark.parametrize("sizes, hidden, output, loss", NET_CASES)
def test_forward_kernel(sizes, hidden, output, loss, chunk, dtype, rng):
    layout = _layout(sizes, hidden, output, loss, 1.0)
    coefs, inter, theta = _random_net(sizes, rng, dtype)
    X = rng.standard_normal((20, sizes[0])).astype(dtype)
    _, acts = ref.network_forward(coefs, inter, hidden + [output], X)
    out = np.full((20, sizes[-1]), np.nan, dtype=dtype)
    chunk_rows = min(chunk, 20)
    work = np.empty(layout.inference_workspace_size(chunk_rows), dtype=dtype)
    K.forward(layout, theta, X, out, work, chunk)
    assert_close(out, acts[-1], dtype, scale=np.abs(acts[-1]) + 1e-2)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("chunk", [1, 7, 1000])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("alpha", [0.0, 0.3])
@pytest.mark.parametrize("sizes, hidden, output, loss", NET_CASES)
def test_loss_grad_kernel(sizes, hidden, output, loss, alpha, weighted, chunk, dtype, rng):
    n_out = sizes[-1]
    layout = _layout(sizes, hidden, output, loss, 1.0 / n_out)
    coefs, inter, theta = _random_net(sizes, rng, dtype)
    X = rng.standard_normal((20, sizes[0])).astype(dtype)
    Y = make_targets(loss, output, 20, n_out, rng).astype(dtype)
    sw = rng.uniform(0.2, 2.0, 20).astype(dtype) if weighted else None
    value_ref, gc, gb = ref.network_loss_grad(coefs, inter, hidden + [output], loss, X, Y,
                                              alpha=alpha, sample_weight=sw, dtype=dtype)
    grad = np.full_like(theta, np.nan)
    work = np.empty(layout.workspace_size(min(chunk, 20)), dtype=dtype)
    value = K.loss_grad(layout, theta, X, Y, sw, alpha, grad, work, chunk)
    assert_close(value, value_ref, dtype)
    g_ref = ref.flatten(gc, gb)
    assert_close(grad, g_ref, dtype, scale=np.abs(g_ref).max())


def test_loss_grad_sq_scale_one_sums_over_outputs(rng):
    """sq_scale=1 (scikit-learn's convention) is n_outputs times the exact gradient."""
    sizes = (3, 4, 5)
    coefs, inter, theta = _random_net(sizes, rng, np.float64)
    X = rng.standard_normal((10, 3))
    Y = rng.standard_normal((10, 5))
    grads = []
    for scale in (1.0, 1.0 / 5):
        layout = _layout(sizes, ["tanh"], "identity", "squared_error", scale)
        grad = np.empty_like(theta)
        work = np.empty(layout.workspace_size(10))
        value = K.loss_grad(layout, theta, X, Y, None, 0.0, grad, work, 10)
        grads.append(grad)
    np.testing.assert_allclose(grads[0], 5 * grads[1], rtol=1e-13, atol=1e-15)
    assert value == pytest.approx(ref.network_loss_grad(coefs, inter, ["tanh", "identity"],
                                                        "squared_error", X, Y)[0], rel=1e-13)


def test_drivers_check_shapes():
    layout = _layout((3, 2), [], "identity", "squared_error", 1.0)
    theta = np.zeros(layout.n_params)
    work = np.zeros(layout.workspace_size(4))
    with pytest.raises(ValueError, match="X has 4 features, the network expects 3"):
        K.loss_grad(layout, theta, np.zeros((4, 4)), np.zeros((4, 2)), None, 0.0,
                    np.zeros_like(theta), work, 4)
    with pytest.raises(ValueError, match="Y has 3 columns, the network has 2 outputs"):
        K.loss_grad(layout, theta, np.zeros((4, 3)), np.zeros((4, 3)), None, 0.0,
                    np.zeros_like(theta), work, 4)
    with pytest.raises(ValueError, match="params has 7 entries, the layout needs 8"):
        K.forward(layout, np.zeros(7), np.zeros((4, 3)), np.zeros((4, 2)), work, 4)
    with pytest.raises(ValueError, match="unknown activation code"):
        K.Layout([3, 2], [99], K.Loss.SQUARED_ERROR)
    with pytest.raises(ValueError, match="need one activation code per weight layer"):
        K.Layout([3, 4, 2], [0], K.Loss.SQUARED_ERROR)


# ---------------------------------------------------------------------------
# train_epoch, called directly, against a NumPy minibatch loop
# ---------------------------------------------------------------------------

EPOCH_CASES = [
    # sizes, hidden, output, loss, optimizer, hyper, batch_size, alpha, weighted, permuted
    ((4, 6, 3), ["tanh"], "softmax", "log_loss", "sgd",
     dict(learning_rate=0.1, momentum=0.9, nesterov=True), 7, 0.01, False, True),
    ((3, 5, 4, 2), ["relu", "logistic"], "identity", "squared_error", "adam",
     dict(learning_rate=0.01), 8, 0.0, True, True),
    ((3, 4, 1), ["elu"], "exp", "poisson", "rmsprop",
     dict(learning_rate=0.01, rho=0.8), 30, 0.1, True, False),
]


@pytest.mark.parametrize("n_threads", [1, 2])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("sizes, hidden, output, loss, opt_name, hyper, bs, alpha, weighted, "
                         "permuted", EPOCH_CASES)
def test_train_epoch_kernel(sizes, hidden, output, loss, opt_name, hyper, bs, alpha, weighted,
                            permuted, dtype, n_threads, rng):
    n = 25
    layout = _layout(sizes, hidden, output, loss, 1.0 / sizes[-1])
    coefs, inter, theta = _random_net(sizes, rng, dtype)
    X = rng.standard_normal((n, sizes[0])).astype(dtype)
    Y = make_targets(loss, output, n, sizes[-1], rng).astype(dtype)
    sw = rng.uniform(0.2, 2.0, n).astype(dtype) if weighted else None
    perm = rng.permutation(n).astype(np.intp) if permuted else None
    opt = OPTIMIZERS[opt_name](**hyper)
    state = np.zeros((opt._config.n_state, theta.shape[0]), dtype=dtype)
    # One gradient row per thread; with 2 threads every batch is split by rows.
    grad = np.zeros((n_threads, theta.shape[0]), dtype=dtype)
    n_batches = -(-n // min(bs, n))
    batches = K.Minibatches(X, Y, sw, perm, bs, alpha,
                            np.zeros(layout.workspace_size(min(bs, n)), dtype=dtype),
                            np.full(n_batches, np.nan))
    status = K.train_epoch(layout, opt._config, batches, theta, grad, state, n_threads)
    assert status == K.Status.OK
    assert batches.n_done == n_batches

    order = perm if permuted else np.arange(n)
    losses, rc, rb = ref.train_loop(coefs, inter, hidden + [output], loss, X, Y,
                                    optimizer=opt_name, hyper=hyper, orders=[order],
                                    batch_size=bs, alpha=alpha, sample_weight=sw)
    # The per-batch losses: recompute the epoch loss as train() does.
    rows = np.full(n_batches, min(bs, n), dtype=float)
    rows[-1] = n - min(bs, n) * (n_batches - 1)
    epoch_loss = float(np.dot(batches.batch_loss, rows) / n)
    rtol = 1e-11 if dtype == np.float64 else 3e-5
    assert_close(epoch_loss, losses[0], dtype, rtol=rtol)
    assert_close(theta, ref.flatten(rc, rb), dtype, rtol=rtol, scale=1.0)
    if opt_name == "adam":
        assert opt._config.t == n_batches


def test_train_epoch_checks_inputs():
    layout = _layout((3, 2), [], "identity", "squared_error", 1.0)
    theta = np.zeros(layout.n_params)
    X, Y = np.zeros((5, 3)), np.zeros((5, 2))
    cfg = K.OptimizerConfig(K.OptimizerKind.SGD, 0.1)

    def run(perm=None, work=None, sw=None):
        data = K.Minibatches(X, Y, sw, perm, 2, 0.0,
                             np.zeros(layout.workspace_size(2)) if work is None else work,
                             np.zeros(3))
        return K.train_epoch(layout, cfg, data, theta, np.zeros((1, theta.shape[0])),
                             np.zeros((0, theta.shape[0])))

    assert run() == K.Status.OK
    with pytest.raises(ValueError, match=r"perm\[1\] = 5 is not a row index"):
        run(perm=np.array([0, 5, 1, 2, 3], dtype=np.intp))
    with pytest.raises(ValueError, match="perm has 4 entries, X 5 rows"):
        run(perm=np.arange(4, dtype=np.intp))
    with pytest.raises(ValueError, match="workspace too small"):
        run(work=np.zeros(3))
    with pytest.raises(ValueError, match="sample_weight has 4 entries, X 5 rows"):
        run(sw=np.ones(4))


# ---------------------------------------------------------------------------
# Floating-point mode: flush-to-zero inside kernels, restored afterwards
# ---------------------------------------------------------------------------

@pytest.mark.skipif(platform.machine().lower() not in ("x86_64", "amd64", "aarch64", "arm64"),
                    reason="flush-to-zero is set only on x86 (SSE) and aarch64")
def test_kernels_flush_denormals_and_restore_the_fp_mode():
    tiny = np.finfo(np.float64).tiny
    theta = np.array([tiny / 4, 1.0])          # a denormal and a normal number
    cfg = K.OptimizerConfig(K.OptimizerKind.SGD, 0.5)
    K.optimizer_step(cfg, theta, np.zeros(2), np.zeros((0, 2)))
    # Inside the kernel denormals are zero: theta - 0.5 * 0 flushed the denormal.
    assert theta[0] == 0.0 and theta[1] == 1.0
    # Outside it, the caller's mode is back: NumPy still produces denormals.
    assert (np.array([tiny]) / 4)[0] > 0
