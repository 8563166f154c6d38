# cython: language_level=3
"""Hot loops of bpcore: every per-sample and per-parameter loop lives here.

Design
------
Layers, bottom up (each section below uses only the ones above it):

1. BLAS wrappers: row-major ``gemm`` over ``scipy.linalg.cython_blas``.
2. Activations: bias add fused with the activation (forward), and the
   derivative applied to a delta in place (backward), both written in terms of
   the activation's *output*, as scikit-learn does.
3. Losses: the per-sample loss summed over a block of rows together with the
   output delta ``dL/dz`` of the last layer.
4. Layer forward/backward over a ``Layout`` (sizes, offsets into the flat
   parameter buffer, per-layer activation codes).
5. Regularizers: the L2 term folded into the gradient.
6. Optimizers over the flat parameter buffer, simplest first.
7. Drivers: the whole-epoch minibatch loop, the chunked full-batch loss and
   gradient, chunked inference, and the GEMM "floor" used by the benchmarks.

Conventions
-----------
* Arrays are row-major. A network with ``L`` weight layers has unit counts
  ``sizes[0..L]``; all weights come first in ``theta`` (``W_0 .. W_{L-1}``,
  each ``(fan_in, fan_out)`` row-major), then all biases, which is the order
  of scikit-learn's ``_pack``: L-BFGS sees the same vector, and the weight
  block ``theta[:n_weights]`` is one contiguous range for L2.
* Deltas are unscaled sums over samples (times the sample weight), exactly as
  scikit-learn forms them; the division by the (weighted) sample count happens
  once, in ``_finalize_grad``. Losses are accumulated in double.
* Everything under ``nogil`` reports failure by a status code; the Python layer
  turns it into an exception.
* Kernels run with flush-to-zero/denormals-are-zero on and restore the
  caller's floating-point mode before returning (see DESIGN.md, Denormals).
"""

from cython cimport floating
from cython.parallel cimport parallel
from libc.math cimport log, logf, sqrt, pow, isfinite
from libc.string cimport memcpy
from libc.float cimport DBL_EPSILON, FLT_EPSILON
from scipy.linalg.cython_blas cimport sgemm, dgemm

cdef extern from "Python.h":
    # Declared without an exception spec: the caller inspects the return value
    # and re-raises the pending exception itself after leaving the nogil block.
    int PyErr_CheckSignals()

cdef extern from "bp_platform.h" nogil:
    ctypedef int bp_fpstate
    bp_fpstate bp_fp_enter() noexcept
    void bp_fp_exit(bp_fpstate s) noexcept
    void bp_prefetch(const void* p) noexcept
    int bp_max_threads() noexcept
    int bp_team_size() noexcept
    int bp_thread_id() noexcept
    ctypedef struct bp_barrier_t:
        pass
    void bp_barrier_init(bp_barrier_t* b) noexcept
    void bp_barrier_wait(bp_barrier_t* b, int* local_sense, int team) noexcept
    int BP_OPENMP

cdef extern from "bp_updates.h" nogil:
    double bp_adam_d(double* th, const double* g, double* m, double* v, Py_ssize_t s,
                     Py_ssize_t e, double b1, double b2, double c1, double c2, double eps,
                     double step, double isb, int paper, double l2, double inv) noexcept
    double bp_adam_f(float* th, const float* g, float* m, float* v, Py_ssize_t s,
                     Py_ssize_t e, float b1, float b2, float c1, float c2, float eps,
                     float step, float isb, int paper, float l2, float inv) noexcept
    double bp_rmsprop_d(double* th, const double* g, double* v, Py_ssize_t s, Py_ssize_t e,
                        double rho, double c, double lr, double eps, double l2,
                        double inv) noexcept
    double bp_rmsprop_f(float* th, const float* g, float* v, Py_ssize_t s, Py_ssize_t e,
                        float rho, float c, float lr, float eps, float l2,
                        float inv) noexcept

cdef extern from "bp_losses.h" nogil:
    double bp_log_loss_d(const double* p, const double* y, double* delta,
                         Py_ssize_t n) noexcept
    double bp_log_loss_f(const float* p, const float* y, float* delta,
                         Py_ssize_t n) noexcept

cdef extern from "bp_elementwise.h" nogil:
    void bp_bias_act_d(int code, double* z, Py_ssize_t ldz, const double* bias,
                       Py_ssize_t rows, Py_ssize_t cols, double slope, double ealpha,
                       double* zsave) noexcept
    void bp_bias_act_f(int code, float* z, Py_ssize_t ldz, const float* bias,
                       Py_ssize_t rows, Py_ssize_t cols, float slope, float ealpha,
                       float* zsave) noexcept
    void bp_act_back_d(int code, const double* a, Py_ssize_t lda, const double* z,
                       double* delta, Py_ssize_t ldd, Py_ssize_t rows, Py_ssize_t cols,
                       double slope, double ealpha, double* colsum, int accumulate) noexcept
    void bp_act_back_f(int code, const float* a, Py_ssize_t lda, const float* z,
                       float* delta, Py_ssize_t ldd, Py_ssize_t rows, Py_ssize_t cols,
                       float slope, float ealpha, float* colsum, int accumulate) noexcept


# Codes shared with the Python layer (defined once, in bp_enums.h); names
# map to these once, in bpcore.
cdef extern from "bp_enums.h":
    cpdef enum Activation "bp_activation":
        IDENTITY "BP_IDENTITY"
        LOGISTIC "BP_LOGISTIC"
        TANH "BP_TANH"
        RELU "BP_RELU"
        LEAKY_RELU "BP_LEAKY_RELU"
        ELU "BP_ELU"
        SOFTMAX "BP_SOFTMAX"
        EXP "BP_EXP"
        GELU "BP_GELU"
        SILU "BP_SILU"
        SOFTPLUS "BP_SOFTPLUS"
        SELU "BP_SELU"

    cpdef enum Loss "bp_loss":
        SQUARED_ERROR "BP_SQUARED_ERROR"
        LOG_LOSS "BP_LOG_LOSS"
        BINARY_LOG_LOSS "BP_BINARY_LOG_LOSS"
        POISSON "BP_POISSON"
        ABSOLUTE_ERROR "BP_ABSOLUTE_ERROR"
        HUBER "BP_HUBER"

    cpdef enum OptimizerKind "bp_optimizer":
        SGD "BP_SGD"
        ADAM "BP_ADAM"
        RMSPROP "BP_RMSPROP"
        ADAGRAD "BP_ADAGRAD"
        NADAM "BP_NADAM"
        RPROP "BP_RPROP"

    cpdef enum BlockKind "bp_block":
        WEIGHTS "BP_WEIGHTS"
        BIASES "BP_BIASES"
        BN_SCALE "BP_BN_SCALE"
        BN_SHIFT "BP_BN_SHIFT"

    cpdef enum Status "bp_status":
        OK "BP_OK"
        NONFINITE_LOSS "BP_NONFINITE_LOSS"
        NONFINITE_PARAMS "BP_NONFINITE_PARAMS"
        INTERRUPTED "BP_INTERRUPTED"

    bint bp_act_needs_z(int code) noexcept nogil

DEF MAX_LAYERS = 256
DEF MAX_THREADS = 64

# Poll for signals after about this many multiply-adds (a few ms of work).
DEF POLL_MACS = 8000000

# Prefetch the first PREFETCH_ROW values of each of the next batch's rows
# (the hardware prefetcher follows the rest of a long row).
DEF PREFETCH_ROW = 64
# _gather asks for the row this many ahead of the one it copies.
DEF GATHER_AHEAD = 8
DEF CACHE_LINE = 64
# Per-thread blocks of the workspace are padded to this many elements (64
# bytes of float32 or more of float64) so no two threads write one cache line.
DEF PAD = 16


# ---------------------------------------------------------------------------
# 0. Scalar helpers (float32 math in float32, float64 in float64)
# ---------------------------------------------------------------------------

cdef inline floating _log(floating x) noexcept nogil:
    if floating is float:
        return logf(x)
    else:
        return log(x)


# ---------------------------------------------------------------------------
# 1. BLAS wrappers
# ---------------------------------------------------------------------------

cdef inline void _blas_gemm(bint trans_a, bint trans_b, int m, int n, int k,
                            floating alpha, const floating* a, int lda,
                            const floating* b, int ldb,
                            floating beta, floating* c, int ldc) noexcept nogil:
    """C = alpha * op(A) @ op(B) + beta * C, row-major, in one BLAS call.

    BLAS is column-major, and a row-major matrix is its transpose there, so
    this computes C.T = op(B).T @ op(A).T by swapping the operands.
    """
    cdef char ta = b'T' if trans_a else b'N'
    cdef char tb = b'T' if trans_b else b'N'
    if floating is float:
        sgemm(&tb, &ta, &n, &m, &k, &alpha, <float*> b, &ldb, <float*> a, &lda,
              &beta, c, &ldc)
    else:
        dgemm(&tb, &ta, &n, &m, &k, &alpha, <double*> b, &ldb, <double*> a, &lda,
              &beta, c, &ldc)


# OpenBLAS's SkylakeX kernels (every AVX-512 x86 CPU) multiply a product of at
# most SMALL_GEMM_MACS multiply-adds in a "small-matrix" kernel that neither
# packs the operands nor zeroes C in a separate pass; above it they take the
# packed path, which on this project's Xeon ran W2's 200x64 @ 64x100 in
# 51.6 us and the same product as two 100-row halves in 36.3 us (float32
# 23.3 vs 18.6; X.T @ delta, 64x200 @ 200x100, 63.6 vs 42.9). So _gemm cuts
# a product just above the limit into at most _gemm_max_pieces blocks of rows
# of C, each under it. Rows of C are independent: every entry is still one
# dot product over the whole k, in one BLAS call. Off (0) unless
# bpcore._engine finds SciPy's BLAS to be OpenBLAS with those kernels: with
# OpenBLAS's Haswell kernels the same cut cost 4-11%.
#
# The same kernels refuse A @ B.T (column-major "TN" once the operands are
# swapped, see _blas_gemm) when C has more than SMALL_TN_MAX_C entries or the
# inner dimension is below SMALL_TN_MIN_K, and send it down the packed path
# (copies, a memset of C, the big kernel). That is every hidden layer's
# delta @ W.T in front of a 10-class output (k = 10). _gemm_a_bt then copies
# B.T (k x n, 1,000 entries for W2) and issues the NN product, which the
# small kernel takes: W2's 200x10 @ 10x100 12.1 -> 7.8 us, W1's 32-row one
# 2.5 -> 1.8 us, W3's 128x10 @ 10x256 18.5 -> 13.6 us (float64, copy
# included). Same products, same dot products, under the same setting.
DEF SMALL_GEMM_MACS = 1000000
DEF SMALL_TN_MAX_C = 1200
DEF SMALL_TN_MIN_K = 32
cdef int _gemm_max_pieces = 0


def set_gemm_split(int max_pieces):
    """Shape GEMMs for OpenBLAS's small-matrix kernels: cut products just
    above their limit into at most ``max_pieces`` row blocks, and issue
    A @ B.T they refuse as A @ (a copy of B.T). 0 or 1: neither. Returns the
    previous setting."""
    global _gemm_max_pieces
    if max_pieces < 0:
        raise ValueError("max_pieces must be >= 0, got %d" % max_pieces)
    previous = _gemm_max_pieces
    _gemm_max_pieces = max_pieces
    return previous


def get_gemm_split():
    """The current row-block limit of the GEMM cut (0 or 1: never cut)."""
    return _gemm_max_pieces


cdef inline int _gemm_pieces(int m, int n, int k) noexcept nogil:
    """How many calls _gemm issues an m x n x k product in, every one under
    the small-matrix limit (1: whole, already under it); 0 when it goes whole
    to the packed path (too far above the limit, or the shaping is off)."""
    cdef long long per_row
    cdef int rows_max, pieces
    if _gemm_max_pieces <= 1 or n <= 0 or k <= 0:
        return 0
    per_row = <long long> n * k
    if <long long> m * per_row <= SMALL_GEMM_MACS:
        return 1
    if per_row <= SMALL_GEMM_MACS:
        rows_max = <int> (SMALL_GEMM_MACS // per_row)
        pieces = (m + rows_max - 1) // rows_max
        if pieces <= _gemm_max_pieces:
            return pieces
    return 0


cdef inline void _gemm(bint trans_a, bint trans_b, int m, int n, int k,
                       floating alpha, const floating* a, int lda,
                       const floating* b, int ldb,
                       floating beta, floating* c, int ldc) noexcept nogil:
    """C = alpha * op(A) @ op(B) + beta * C, row-major; op(A) is m x k, op(B) k x n.

    Products just above SMALL_GEMM_MACS go to BLAS as up to
    _gemm_max_pieces blocks of rows (see above).
    """
    cdef int pieces = _gemm_pieces(m, n, k)
    cdef int i, r0, nr
    if pieces > 1:
        # Near-equal blocks, each at most ceil(m / pieces) rows.
        r0 = 0
        for i in range(pieces):
            nr = (m - r0) // (pieces - i)
            _blas_gemm(trans_a, trans_b, nr, n, k, alpha,
                       a + (r0 if trans_a else <Py_ssize_t> r0 * lda), lda,
                       b, ldb, beta, c + <Py_ssize_t> r0 * ldc, ldc)
            r0 += nr
        return
    _blas_gemm(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)


cdef inline void _gemm_a_bt(int m, int n, int k, const floating* a, int lda,
                            const floating* b, int ldb, floating* c, int ldc,
                            floating* bt) noexcept nogil:
    """C = A @ B.T, row-major: A is m x k, B is n x k, C is m x n.

    When the small-kernel shaping is on and OpenBLAS would refuse this
    product in its TN small kernel but take A @ B.T as NN (see above), B.T
    is copied into ``bt`` (k x n; NULL: never) and the NN product issued.
    ``bt`` may hold anything on entry (callers lend the gradient block they
    are about to overwrite).
    """
    cdef int pieces = _gemm_pieces(m, n, k) if bt != NULL and m > 0 else 0
    cdef int rows_max, i, j
    cdef const floating* br
    if pieces > 0:
        rows_max = (m + pieces - 1) // pieces
        if <long long> n * rows_max > SMALL_TN_MAX_C or k < SMALL_TN_MIN_K:
            for i in range(n):
                br = b + <Py_ssize_t> i * ldb
                for j in range(k):
                    bt[<Py_ssize_t> j * n + i] = br[j]
            _gemm(False, False, m, n, k, 1, a, lda, bt, n, 0, c, ldc)
            return
    _gemm(False, True, m, n, k, 1, a, lda, b, ldb, 0, c, ldc)


def gemm(bint trans_a, bint trans_b, double alpha, const floating[:, ::1] a,
         const floating[:, ::1] b, double beta, floating[:, ::1] c_out):
    """c_out = alpha * op(a) @ op(b) + beta * c_out (row-major, in place)."""
    cdef int m = c_out.shape[0], n = c_out.shape[1]
    cdef int k = a.shape[0] if trans_a else a.shape[1]
    cdef floating[::1] bt
    if (a.shape[1] if trans_a else a.shape[0]) != m \
            or (b.shape[1] if trans_b else b.shape[0]) != k \
            or (b.shape[0] if trans_b else b.shape[1]) != n:
        raise ValueError("gemm: shapes of a, b and c_out do not agree")
    if m == 0 or n == 0:
        return
    if k == 0:
        # BLAS would leave c unscaled by beta only for some implementations.
        for i in range(m):
            for j in range(n):
                c_out[i, j] = <floating> (beta * c_out[i, j])
        return
    if not trans_a and trans_b and alpha == 1 and beta == 0:
        # The epoch kernels' delta @ W.T, with its copy of W.T when it helps.
        import numpy as np
        bt = np.empty(n * k, dtype=np.float32 if floating is float else np.float64)
        with nogil:
            _gemm_a_bt(m, n, k, &a[0, 0], a.shape[1], &b[0, 0], b.shape[1],
                       &c_out[0, 0], n, &bt[0])
        return
    with nogil:
        _gemm(trans_a, trans_b, m, n, k, <floating> alpha, &a[0, 0], a.shape[1],
              &b[0, 0], b.shape[1], <floating> beta, &c_out[0, 0], n)


# ---------------------------------------------------------------------------
# 2. Activations
# ---------------------------------------------------------------------------

cdef inline void _bias_activation(int code, floating* z, const floating* bias,
                                  Py_ssize_t rows, Py_ssize_t cols,
                                  double leaky_slope, double elu_alpha,
                                  Py_ssize_t ldz=-1) noexcept nogil:
    """z = f(z + bias) in place, row by row, in one pass (bp_bias_act_*).

    ``ldz`` is the row stride (default ``cols``), so a column block of a wider
    matrix can be processed in place.
    """
    if ldz < 0:
        ldz = cols
    if floating is float:
        bp_bias_act_f(code, z, ldz, bias, rows, cols, <float> leaky_slope,
                      <float> elu_alpha, NULL)
    else:
        bp_bias_act_d(code, z, ldz, bias, rows, cols, leaky_slope, elu_alpha, NULL)


cdef inline void _activation_backward(int code, const floating* a, floating* delta,
                                      Py_ssize_t rows, Py_ssize_t cols,
                                      double leaky_slope, double elu_alpha,
                                      floating* colsum=NULL, bint accumulate=False,
                                      Py_ssize_t ld=-1) noexcept nogil:
    """delta = delta * f'(z) in place, with f' written in terms of a = f(z).

    With ``colsum``, also ``colsum (+)= delta.sum(axis=0)`` of the result in
    the same pass (the bias gradient of the layer below). ``ld`` is the row
    stride of both ``a`` and ``delta`` (default ``cols``).
    """
    if ld < 0:
        ld = cols
    if floating is float:
        bp_act_back_f(code, a, ld, NULL, delta, ld, rows, cols, <float> leaky_slope,
                      <float> elu_alpha, colsum, accumulate)
    else:
        bp_act_back_d(code, a, ld, NULL, delta, ld, rows, cols, leaky_slope, elu_alpha,
                      colsum, accumulate)


def activation_forward(int code, floating[:, ::1] z, bias=None,
                       double leaky_slope=0.01, double elu_alpha=1.0):
    """z = f(z + bias) in place; ``code`` is an ``Activation``, bias defaults to 0."""
    cdef const floating[::1] b
    cdef const floating* bp
    if z.shape[0] == 0 or z.shape[1] == 0:
        return
    if bias is None:
        import numpy as np
        bias = np.zeros(z.shape[1], dtype=np.float32 if floating is float else np.float64)
    b = bias
    if b.shape[0] != z.shape[1]:
        raise ValueError("bias length does not match the columns of z")
    bp = &b[0]
    with nogil:
        _bias_activation(code, &z[0, 0], bp, z.shape[0], z.shape[1], leaky_slope, elu_alpha)


def activation_backward(int code, const floating[:, ::1] a, floating[:, ::1] delta,
                        double leaky_slope=0.01, double elu_alpha=1.0):
    """delta *= f'(z) in place, from the activation output ``a``."""
    if a.shape[0] != delta.shape[0] or a.shape[1] != delta.shape[1]:
        raise ValueError("a and delta must have the same shape")
    if a.shape[0] == 0 or a.shape[1] == 0:
        return
    with nogil:
        _activation_backward(code, &a[0, 0], &delta[0, 0], a.shape[0], a.shape[1],
                             leaky_slope, elu_alpha)


# ---------------------------------------------------------------------------
# 3. Losses
# ---------------------------------------------------------------------------

cdef inline floating _clip_prob(floating p) noexcept nogil:
    # scikit-learn clips probabilities to [eps, 1 - eps] of the working dtype.
    cdef floating eps
    if floating is float:
        eps = FLT_EPSILON
    else:
        eps = DBL_EPSILON
    if p < eps:
        return eps
    if p > 1 - eps:
        return 1 - eps
    return p


cdef double _loss_delta(int loss, const floating* out, const floating* y,
                        const floating* sw, Py_ssize_t rows, Py_ssize_t cols,
                        double sq_scale, floating* delta) noexcept nogil:
    """Sum over rows of sw[i] * loss_i, and delta = (out - y) * sw[i].

    ``delta`` is dL/dz for the canonical output of each loss (softmax for
    LOG_LOSS, logistic for BINARY_LOG_LOSS, exp for POISSON, identity for
    SQUARED_ERROR). For squared error it is further multiplied by
    ``sq_scale``; a non-identity output activation is applied by the caller.
    The per-row loss of squared error is sum((out - y)**2); the caller scales
    it by 0.5 / n_outputs.

    Log loss without sample weights goes to bp_log_loss_*, which takes a
    handful of logs per block instead of one per row (the 200 libm logs per
    W2 batch were 2% of its epoch) and runs in whole vectors over the block
    (the row loop's scan for the true class was another 2.5%).
    """
    cdef Py_ssize_t i, j
    cdef double total = 0.0, row_loss, w
    cdef floating d, p, t
    cdef floating scale = <floating> sq_scale
    cdef const floating* o
    cdef const floating* yy
    cdef floating* dd
    if loss == LOG_LOSS and sw == NULL:
        if floating is float:
            return bp_log_loss_f(out, y, delta, rows * cols)
        else:
            return bp_log_loss_d(out, y, delta, rows * cols)
    for i in range(rows):
        o = out + i * cols
        yy = y + i * cols
        dd = delta + i * cols
        row_loss = 0.0
        if loss == SQUARED_ERROR:
            for j in range(cols):
                d = o[j] - yy[j]
                row_loss += <double> (d * d)
                dd[j] = d
        elif loss == LOG_LOSS:
            # Weighted (the unweighted loss is bp_log_loss_*): the delta in a
            # loop of its own, which vectorizes; a log only where the target
            # is non-zero (once per row for one-hot targets).
            for j in range(cols):
                dd[j] = o[j] - yy[j]
            for j in range(cols):
                t = yy[j]
                if t != 0:
                    row_loss -= <double> (t * _log(_clip_prob(o[j])))
        elif loss == BINARY_LOG_LOSS:
            for j in range(cols):
                t = yy[j]
                p = _clip_prob(o[j])
                if t != 0:
                    row_loss -= <double> (t * _log(p))
                if t != 1:
                    row_loss -= <double> ((1 - t) * _log(1 - p))
                dd[j] = o[j] - t
        elif loss == POISSON:
            for j in range(cols):
                t = yy[j]
                if t != 0:
                    row_loss += <double> (t * _log(t / o[j]))
                row_loss += <double> (o[j] - t)
                dd[j] = o[j] - t
        if sw != NULL:
            w = sw[i]
            row_loss *= w
            for j in range(cols):
                dd[j] = dd[j] * sw[i]
        if loss == SQUARED_ERROR and scale != 1:
            for j in range(cols):
                dd[j] = dd[j] * scale
        total += row_loss
    return total


cdef inline double _loss_factor(int loss, Py_ssize_t n_outputs) noexcept nogil:
    # Squared error is 0.5 * mean over outputs (scikit-learn's squared_loss).
    if loss == SQUARED_ERROR:
        return 0.5 / n_outputs
    return 1.0


def loss_delta(int loss, const floating[:, ::1] out, const floating[:, ::1] y,
               sample_weight, floating[:, ::1] delta_out, double sq_scale=1.0):
    """Weighted sum of per-row losses; writes the output delta (see _loss_delta).

    The returned sum is already multiplied by 0.5 / n_outputs for squared error,
    so dividing it by the sample-weight sum gives scikit-learn's loss.
    """
    cdef const floating[::1] sw
    cdef const floating* swp = NULL
    cdef double total
    if not (out.shape[0] == y.shape[0] == delta_out.shape[0]
            and out.shape[1] == y.shape[1] == delta_out.shape[1]):
        raise ValueError("out, y and delta_out must have the same shape")
    if sample_weight is not None:
        sw = sample_weight
        if sw.shape[0] != out.shape[0]:
            raise ValueError("sample_weight length does not match the rows")
        if sw.shape[0] > 0:
            swp = &sw[0]
    if out.shape[0] == 0 or out.shape[1] == 0:
        return 0.0
    with nogil:
        total = _loss_delta(loss, &out[0, 0], &y[0, 0], swp, out.shape[0], out.shape[1],
                            sq_scale, &delta_out[0, 0])
    return total * _loss_factor(loss, out.shape[1])


# ---------------------------------------------------------------------------
# 4. Layout and layer forward/backward
# ---------------------------------------------------------------------------

cdef struct Layout:
    Py_ssize_t n_layers       # L, the number of weight layers
    const Py_ssize_t* sizes   # L + 1 unit counts, input first
    const Py_ssize_t* w_off   # offset of W_l in theta
    const Py_ssize_t* b_off   # offset of b_l in theta
    const int* act            # activation after layer l; act[L-1] is the output's
    int loss
    double sq_scale           # factor on the squared-error delta (see NetLayout)
    double leaky_slope
    double elu_alpha
    Py_ssize_t n_weights      # theta[:n_weights] holds every W_l
    Py_ssize_t n_params
    Py_ssize_t max_width      # max(sizes[1:])
    Py_ssize_t macs_per_row   # sum(sizes[l] * sizes[l+1])


cdef class NetLayout:
    """The shape of a network as the kernels see it.

    Parameters
    ----------
    sizes : sequence of int
        Unit counts, input first, output last (at least two entries).
    activations : sequence of int
        One ``Activation`` code per weight layer; the last is the output's.
    loss : int
        A ``Loss`` code.
    sq_scale : float
        Multiplies the squared-error output delta. ``1 / n_outputs`` makes the
        gradient exactly that of the reported loss (0.5 * mean over outputs);
        ``1.0`` reproduces scikit-learn, whose gradient sums over outputs.
    """
    cdef Layout c
    cdef Py_ssize_t[::1] _sizes, _w_off, _b_off
    cdef int[::1] _act

    def __cinit__(self, sizes, activations, int loss, double sq_scale=1.0,
                  double leaky_slope=0.01, double elu_alpha=1.0):
        import numpy as np
        cdef Py_ssize_t L, l, off
        s = np.asarray(sizes, dtype=np.intp)
        a = np.asarray(activations, dtype=np.intc)
        L = s.shape[0] - 1
        if s.ndim != 1 or L < 1:
            raise ValueError("sizes needs an input and an output size, got %r" % (sizes,))
        if L > MAX_LAYERS:
            raise ValueError("at most %d weight layers are supported, got %d" % (MAX_LAYERS, L))
        if (s < 1).any() or (s > 2**31 - 1).any():
            raise ValueError("every layer size must be in [1, 2**31 - 1], got %r" % (list(s),))
        if a.ndim != 1 or a.shape[0] != L:
            raise ValueError("need one activation code per weight layer (%d), got %d"
                             % (L, a.shape[0]))
        if ((a < IDENTITY) | (a > EXP)).any():
            raise ValueError("unknown activation code in %r" % (list(a),))
        if loss < SQUARED_ERROR or loss > POISSON:
            raise ValueError("unknown loss code %d" % loss)
        self._sizes = s.copy()
        self._act = a.copy()
        self._w_off = np.empty(L, dtype=np.intp)
        self._b_off = np.empty(L, dtype=np.intp)
        off = 0
        for l in range(L):
            self._w_off[l] = off
            off += s[l] * s[l + 1]
        self.c.n_weights = off
        for l in range(L):
            self._b_off[l] = off
            off += s[l + 1]
        self.c.n_params = off
        self.c.n_layers = L
        self.c.sizes = &self._sizes[0]
        self.c.w_off = &self._w_off[0]
        self.c.b_off = &self._b_off[0]
        self.c.act = &self._act[0]
        self.c.loss = loss
        self.c.sq_scale = sq_scale
        self.c.leaky_slope = leaky_slope
        self.c.elu_alpha = elu_alpha
        self.c.max_width = int(s[1:].max())
        self.c.macs_per_row = int((s[:-1] * s[1:]).sum())

    @property
    def n_params(self):
        return self.c.n_params

    @property
    def n_weights(self):
        return self.c.n_weights

    @property
    def sizes(self):
        return tuple(int(v) for v in self._sizes)

    @property
    def macs_per_row(self):
        """Multiply-adds of one forward pass for one sample."""
        return self.c.macs_per_row

    @property
    def weight_offsets(self):
        return tuple(int(v) for v in self._w_off)

    @property
    def bias_offsets(self):
        return tuple(int(v) for v in self._b_off)

    def workspace_size(self, Py_ssize_t rows):
        """Length of the scratch buffer the training drivers need for ``rows``-row blocks."""
        return _workspace_size(&self.c, rows)

    def units_workspace_size(self, Py_ssize_t rows, Py_ssize_t n_threads):
        """Length of the scratch buffer ``train_epoch(..., by_units=True)`` needs
        (one hidden layer only)."""
        if self.c.n_layers != 2:
            raise ValueError("the hidden-unit split needs exactly one hidden layer")
        return _units_workspace_size(&self.c, rows, max(1, n_threads))

    def inference_workspace_size(self, Py_ssize_t rows):
        """Length of the scratch buffer ``forward`` needs for ``rows``-row blocks."""
        return 2 * rows * self.c.max_width


cdef Py_ssize_t _workspace_size(const Layout* L, Py_ssize_t rows) noexcept nogil:
    # x block, y block, sample weights, one activation block per layer, two
    # deltas; each starts on a cache line (see _carve), hence the padding.
    cdef Py_ssize_t total = (PAD + _round_up(rows * L.sizes[0])
                             + _round_up(rows * L.sizes[L.n_layers]) + _round_up(rows)
                             + 2 * _round_up(rows * L.max_width))
    cdef Py_ssize_t l
    for l in range(1, L.n_layers + 1):
        total += _round_up(rows * L.sizes[l])
    return total


cdef inline floating* _align(floating* p) noexcept nogil:
    """The first address at or after p on a PAD-element boundary (64 bytes or more)."""
    return p + (PAD - (<size_t> p // sizeof(floating)) % PAD) % PAD


cdef struct SparseRows:
    # A block of rows of a CSR matrix: rows[i] (or first + i when rows is NULL).
    const void* data             # float or double, the kernel's dtype
    const Py_ssize_t* indices
    const Py_ssize_t* indptr
    const Py_ssize_t* rows
    Py_ssize_t first


cdef class CSRInput:
    """A CSR matrix as the kernels read it: ``data`` of the working dtype,
    ``indices`` and ``indptr`` as intp. The structure is checked once here, so
    the kernels can index without bounds checks.
    """
    cdef readonly object data, indices, indptr
    cdef readonly Py_ssize_t n_rows, n_cols

    def __init__(self, data, indices, indptr, Py_ssize_t n_rows, Py_ssize_t n_cols):
        import numpy as np
        cdef const Py_ssize_t[::1] ind = indices
        cdef const Py_ssize_t[::1] ptr = indptr
        cdef Py_ssize_t i, nnz
        if data.ndim != 1 or data.dtype not in (np.float32, np.float64):
            raise TypeError("CSR data must be a 1-D float32 or float64 array")
        nnz = data.shape[0]
        if ptr.shape[0] != n_rows + 1 or ptr[0] != 0 or ptr[n_rows] != nnz \
                or ind.shape[0] != nnz:
            raise ValueError("inconsistent CSR structure (indptr/indices/data lengths)")
        for i in range(n_rows):
            if ptr[i + 1] < ptr[i]:
                raise ValueError("CSR indptr must be non-decreasing")
        for i in range(nnz):
            if ind[i] < 0 or ind[i] >= n_cols:
                raise ValueError("CSR column index %d out of range [0, %d)" % (ind[i], n_cols))
        self.data = data
        self.indices = indices
        self.indptr = indptr
        self.n_rows = n_rows
        self.n_cols = n_cols

    @property
    def shape(self):
        return (self.n_rows, self.n_cols)


cdef void _csr_matmul(const SparseRows* sp, const floating* data, Py_ssize_t rows,
                      const floating* w, Py_ssize_t n_out, floating* z) noexcept nogil:
    """z = X[block] @ W for CSR rows, accumulating in SciPy's order."""
    cdef Py_ssize_t i, j, p, r
    cdef floating v
    cdef floating* zr
    cdef const floating* wr
    for i in range(rows):
        r = sp.rows[i] if sp.rows != NULL else sp.first + i
        zr = z + i * n_out
        for j in range(n_out):
            zr[j] = 0
        for p in range(sp.indptr[r], sp.indptr[r + 1]):
            v = data[p]
            wr = w + sp.indices[p] * n_out
            for j in range(n_out):
                zr[j] = zr[j] + v * wr[j]


cdef void _csr_t_matmul(const SparseRows* sp, const floating* data, Py_ssize_t rows,
                        const floating* d, Py_ssize_t n_in, Py_ssize_t n_out,
                        floating* g, bint accumulate) noexcept nogil:
    """g (+)= X[block].T @ d for CSR rows; only the rows of g that X touches change."""
    cdef Py_ssize_t i, j, p, r
    cdef floating v
    cdef floating* gr
    cdef const floating* dr
    if not accumulate:
        for j in range(n_in * n_out):
            g[j] = 0
    for i in range(rows):
        r = sp.rows[i] if sp.rows != NULL else sp.first + i
        dr = d + i * n_out
        for p in range(sp.indptr[r], sp.indptr[r + 1]):
            v = data[p]
            gr = g + sp.indices[p] * n_out
            for j in range(n_out):
                gr[j] = gr[j] + v * dr[j]


cdef void _forward(const Layout* L, const floating* theta, const floating* x,
                   const SparseRows* sp, Py_ssize_t rows, floating** acts) noexcept nogil:
    """acts[l] = f_l(acts[l-1] @ W_l + b_l) for every layer, acts[-1] = x.

    The input block is dense ``x`` or, when ``sp`` is not NULL, CSR rows.
    """
    cdef Py_ssize_t l
    cdef const floating* a_in = x
    cdef int n_in, n_out
    for l in range(L.n_layers):
        n_in = <int> L.sizes[l]
        n_out = <int> L.sizes[l + 1]
        if l == 0 and sp != NULL:
            _csr_matmul(sp, <const floating*> sp.data, rows, theta + L.w_off[0], n_out, acts[0])
        else:
            # Z = A @ W
            _gemm(False, False, <int> rows, n_out, n_in, 1, a_in, n_in,
                  theta + L.w_off[l], n_out, 0, acts[l], n_out)
        # A = f(Z + b)
        _bias_activation(L.act[l], acts[l], theta + L.b_off[l], rows, n_out,
                         L.leaky_slope, L.elu_alpha)
        a_in = acts[l]


cdef inline void _colsum(const floating* d, Py_ssize_t rows, Py_ssize_t cols,
                         floating* out, bint accumulate, Py_ssize_t ld=-1) noexcept nogil:
    """out (+)= d.sum(axis=0), row after row as NumPy does for axis=0."""
    _activation_backward(IDENTITY, d, <floating*> d, rows, cols, 0.0, 0.0, out,
                         accumulate, ld)


cdef double _forward_backward(const Layout* L, const floating* theta,
                              const floating* x, const SparseRows* sp,
                              const floating* y, const floating* sw,
                              Py_ssize_t rows, floating** acts_base, Py_ssize_t row0,
                              floating* d_a, floating* d_b,
                              floating* grad, bint accumulate) noexcept nogil:
    """Forward, loss and backward over one block of rows.

    The activations go to rows ``row0 ..`` of the per-layer blocks
    ``acts_base`` (so threads can share them); ``d_a``/``d_b`` are this
    block's own delta buffers. Returns the weighted loss sum (already times
    the loss factor) and writes, or with ``accumulate`` adds, the unscaled
    gradient sums into ``grad``.
    """
    cdef Py_ssize_t l, n_layers = L.n_layers
    cdef floating* acts[MAX_LAYERS]
    cdef int n_in, n_out, r = <int> rows
    cdef int out_act = L.act[n_layers - 1]
    cdef Py_ssize_t n_outputs = L.sizes[n_layers]
    cdef double loss_sum
    cdef const floating* a_in
    cdef floating* d = d_a
    cdef floating* d_next = d_b
    cdef floating* tmp
    cdef floating beta = 1 if accumulate else 0

    for l in range(n_layers):
        acts[l] = acts_base[l] + row0 * L.sizes[l + 1]
    _forward(L, theta, x, sp, rows, acts)
    loss_sum = _loss_delta(L.loss, acts[n_layers - 1], y, sw, rows, n_outputs,
                           L.sq_scale, d)
    loss_sum *= _loss_factor(L.loss, n_outputs)
    # The bias gradient of each layer is summed in the pass that finishes
    # its delta.
    if L.loss == SQUARED_ERROR and out_act != IDENTITY:
        _activation_backward(out_act, acts[n_layers - 1], d, rows, n_outputs,
                             L.leaky_slope, L.elu_alpha,
                             grad + L.b_off[n_layers - 1], accumulate)
    else:
        _colsum(d, rows, n_outputs, grad + L.b_off[n_layers - 1], accumulate)

    for l in range(n_layers - 1, -1, -1):
        n_in = <int> L.sizes[l]
        n_out = <int> L.sizes[l + 1]
        a_in = x if l == 0 else acts[l - 1]
        if l > 0:
            # delta_prev = delta @ W_l.T, before gW_l: until then gW_l's block
            # is free to hold _gemm_a_bt's copy of W_l.T (not when it
            # accumulates).
            _gemm_a_bt(r, n_in, n_out, d, n_out, theta + L.w_off[l], n_out,
                       d_next, n_in, NULL if accumulate else grad + L.w_off[l])
        if l == 0 and sp != NULL:
            _csr_t_matmul(sp, <const floating*> sp.data, rows, d, n_in, n_out,
                          grad + L.w_off[0], accumulate)
        else:
            # gW_l (+)= A_in.T @ delta
            _gemm(True, False, n_in, n_out, r, 1, a_in, n_in, d, n_out,
                  beta, grad + L.w_off[l], n_out)
        if l > 0:
            # delta_prev times f'(z) of the layer below, and
            # gb_{l-1} (+)= delta_prev.sum(axis=0)
            _activation_backward(L.act[l - 1], acts[l - 1], d_next, rows, n_in,
                                 L.leaky_slope, L.elu_alpha,
                                 grad + L.b_off[l - 1], accumulate)
            tmp = d
            d = d_next
            d_next = tmp
    return loss_sum


cdef inline void _carve(const Layout* L, floating* work, Py_ssize_t rows,
                        floating** xb, floating** yb, floating** swb,
                        floating** acts, floating** d_a, floating** d_b) noexcept nogil:
    """Split one workspace into the blocks _workspace_size counted, each
    starting on a cache line: a block at an odd 32 bytes made every 64-byte
    vector load of the GEMMs' packing straddle two lines."""
    cdef Py_ssize_t l
    cdef floating* p = _align(work)
    xb[0] = p
    p += _round_up(rows * L.sizes[0])
    yb[0] = p
    p += _round_up(rows * L.sizes[L.n_layers])
    swb[0] = p
    p += _round_up(rows)
    for l in range(L.n_layers):
        acts[l] = p
        p += _round_up(rows * L.sizes[l + 1])
    d_a[0] = p
    p += _round_up(rows * L.max_width)
    d_b[0] = p


# ---------------------------------------------------------------------------
# 5. Regularizers
# ---------------------------------------------------------------------------

cdef double _finalize_grad(const Layout* L, const floating* theta, floating* grad,
                           double alpha, double sw_sum) noexcept nogil:
    """grad = (grad + alpha * W) / sw_sum on weights, grad / sw_sum on biases.

    Returns sum(W**2) when alpha != 0 (for the L2 term of the loss), else 0.
    The operation order is scikit-learn's (add, then divide).
    """
    cdef Py_ssize_t i
    cdef double sq = 0.0
    cdef floating t, a = <floating> alpha, s = <floating> sw_sum
    if alpha != 0:
        for i in range(L.n_weights):
            t = theta[i]
            sq += <double> t * <double> t
            grad[i] = (grad[i] + a * t) / s
    else:
        for i in range(L.n_weights):
            grad[i] = grad[i] / s
    for i in range(L.n_weights, L.n_params):
        grad[i] = grad[i] / s
    return sq


# ---------------------------------------------------------------------------
# 6. Optimizers over the flat parameter buffer
# ---------------------------------------------------------------------------

cdef struct OptConfig:
    int kind
    double lr
    double momentum
    bint nesterov
    double beta_1
    double beta_2
    double epsilon
    double rho
    bint paper_adam     # Kingma & Ba's placement of epsilon instead of scikit-learn's
    long long t         # Adam's step count


cdef class OptimizerConfig:
    """Hyperparameters and step count of one optimizer, as the kernels read them.

    Validation happens in the Python optimizer classes; this only carries the
    numbers. ``t`` is advanced by the kernels (one per Adam step).
    """
    cdef OptConfig c

    def __cinit__(self, int kind, double lr, double momentum=0.0, bint nesterov=False,
                  double beta_1=0.9, double beta_2=0.999, double epsilon=1e-8,
                  double rho=0.9, bint paper_adam=False, long long t=0):
        if kind < SGD or kind > ADAGRAD:
            raise ValueError("unknown optimizer code %d" % kind)
        self.c.kind = kind
        self.c.lr = lr
        self.c.momentum = momentum
        self.c.nesterov = nesterov
        self.c.beta_1 = beta_1
        self.c.beta_2 = beta_2
        self.c.epsilon = epsilon
        self.c.rho = rho
        self.c.paper_adam = paper_adam
        self.c.t = t

    @property
    def kind(self):
        return self.c.kind

    @property
    def lr(self):
        return self.c.lr

    @lr.setter
    def lr(self, double value):
        self.c.lr = value

    @property
    def t(self):
        return self.c.t

    @t.setter
    def t(self, long long value):
        self.c.t = value

    @property
    def n_state(self):
        """How many parameter-sized state buffers this optimizer keeps."""
        if self.c.kind == SGD:
            return 1 if (self.c.momentum != 0 or self.c.nesterov) else 0
        if self.c.kind == ADAM:
            return 2
        return 1


# Every update reads the raw gradient sum ``g`` and finalizes it on the fly,
#     g' = (g + l2 * theta) * inv_scale
# (the L2 term and the division by the batch weight), so that finishing the
# gradient costs no pass of its own; each returns sum(theta**2) over its range
# (before the update) for the L2 term of the loss. With l2 = 0 and
# inv_scale = 1, g' is g exactly.

cdef double _sgd_step(const OptConfig* o, floating* theta, const floating* g,
                      floating* vel, Py_ssize_t start, Py_ssize_t end,
                      floating l2, floating inv_scale) noexcept nogil:
    # v = momentum * v - lr * g';  theta += v   (nesterov: theta += momentum * v - lr * g')
    cdef Py_ssize_t i
    cdef floating lr = <floating> o.lr, mu = <floating> o.momentum, v, t, gi
    cdef double sq = 0.0
    if vel == NULL:
        for i in range(start, end):
            t = theta[i]
            sq += <double> (t * t)
            gi = (g[i] + l2 * t) * inv_scale
            theta[i] = t - lr * gi
    elif o.nesterov:
        for i in range(start, end):
            t = theta[i]
            sq += <double> (t * t)
            gi = (g[i] + l2 * t) * inv_scale
            v = mu * vel[i] - lr * gi
            vel[i] = v
            theta[i] = t + (mu * v - lr * gi)
    else:
        for i in range(start, end):
            t = theta[i]
            sq += <double> (t * t)
            gi = (g[i] + l2 * t) * inv_scale
            v = mu * vel[i] - lr * gi
            vel[i] = v
            theta[i] = t + v
    return sq


cdef double _adam_step(const OptConfig* o, floating* theta, const floating* g,
                       floating* m, floating* v, Py_ssize_t start, Py_ssize_t end,
                       floating l2, floating inv_scale) noexcept nogil:
    # m = b1 m + (1 - b1) g';  v = b2 v + (1 - b2) g'^2, at step t = o.t (already advanced)
    # scikit-learn: theta += -lr * sqrt(1 - b2^t) / (1 - b1^t) * m / (sqrt(v) + eps)
    # paper:        theta -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
    # The loop is bp_adam_d/f in the C block (vector-width clones).
    cdef double bc1 = 1 - pow(o.beta_1, <double> o.t)
    cdef double bc2 = 1 - pow(o.beta_2, <double> o.t)
    cdef double step = -(o.lr / bc1) if o.paper_adam else -(o.lr * sqrt(bc2) / bc1)
    cdef double isb = 1 / sqrt(bc2)
    if floating is float:
        return bp_adam_f(theta, g, m, v, start, end, <float> o.beta_1, <float> o.beta_2,
                         <float> (1 - o.beta_1), <float> (1 - o.beta_2), <float> o.epsilon,
                         <float> step, <float> isb, o.paper_adam, l2, inv_scale)
    else:
        return bp_adam_d(theta, g, m, v, start, end, o.beta_1, o.beta_2,
                         1 - o.beta_1, 1 - o.beta_2, o.epsilon, step, isb, o.paper_adam,
                         l2, inv_scale)


cdef double _rmsprop_step(const OptConfig* o, floating* theta, const floating* g,
                          floating* v, Py_ssize_t start, Py_ssize_t end,
                          floating l2, floating inv_scale) noexcept nogil:
    # v = rho v + (1 - rho) g'^2;  theta -= lr g' / (sqrt(v) + eps)   (bp_rmsprop_d/f)
    if floating is float:
        return bp_rmsprop_f(theta, g, v, start, end, <float> o.rho, <float> (1 - o.rho),
                            <float> o.lr, <float> o.epsilon, l2, inv_scale)
    else:
        return bp_rmsprop_d(theta, g, v, start, end, o.rho, 1 - o.rho, o.lr, o.epsilon,
                            l2, inv_scale)


cdef double _adagrad_step(const OptConfig* o, floating* theta, const floating* g,
                          floating* acc, Py_ssize_t start, Py_ssize_t end,
                          floating l2, floating inv_scale) noexcept nogil:
    # G += g'^2;  theta -= lr g' / (sqrt(G) + eps): RMSProp's kernel with
    # rho = c = 1, bitwise the same (1 * G and 1 * g'^2 are exact).
    if floating is float:
        return bp_rmsprop_f(theta, g, acc, start, end, 1.0, 1.0, <float> o.lr,
                            <float> o.epsilon, l2, inv_scale)
    else:
        return bp_rmsprop_d(theta, g, acc, start, end, 1.0, 1.0, o.lr, o.epsilon, l2,
                            inv_scale)


cdef double _update_range(const OptConfig* o, floating* theta, const floating* g,
                          floating* s0, floating* s1, Py_ssize_t start, Py_ssize_t end,
                          floating l2, floating inv_scale) noexcept nogil:
    if o.kind == SGD:
        return _sgd_step(o, theta, g, s0, start, end, l2, inv_scale)
    elif o.kind == ADAM:
        return _adam_step(o, theta, g, s0, s1, start, end, l2, inv_scale)
    elif o.kind == RMSPROP:
        return _rmsprop_step(o, theta, g, s0, start, end, l2, inv_scale)
    else:
        return _adagrad_step(o, theta, g, s0, start, end, l2, inv_scale)


cdef double _update_span(const OptConfig* o, floating* theta, const floating* g,
                         floating* s0, floating* s1, Py_ssize_t n_weights,
                         Py_ssize_t start, Py_ssize_t end, double alpha,
                         double inv_scale) noexcept nogil:
    """Update parameters start..end-1 (weights get the L2 term, biases not).

    Returns sum(theta**2) over the weights in the span, before the update.
    """
    cdef double sq = 0.0
    if start < n_weights:
        sq = _update_range(o, theta, g, s0, s1, start, min(end, n_weights),
                           <floating> alpha, <floating> inv_scale)
    if end > n_weights:
        _update_range(o, theta, g, s0, s1, max(start, n_weights), end, 0,
                      <floating> inv_scale)
    return sq


cdef double _optimizer_step(OptConfig* o, floating* theta, const floating* g,
                            floating* s0, floating* s1, Py_ssize_t n_weights,
                            Py_ssize_t n, double alpha, double inv_scale) noexcept nogil:
    """One update of all n parameters from the raw gradient sums ``g``.

    The first ``n_weights`` entries get the L2 term ``alpha * theta``; all are
    scaled by ``inv_scale``. Returns sum(theta[:n_weights]**2) before the update.
    """
    o.t += 1
    return _update_span(o, theta, g, s0, s1, n_weights, 0, n, alpha, inv_scale)


cdef int _state_pointers(OptimizerConfig opt, floating[:, ::1] state, Py_ssize_t n,
                         floating** s0, floating** s1) except -1:
    cdef Py_ssize_t need = opt.n_state
    if state.shape[0] < need or (need > 0 and state.shape[1] != n):
        raise ValueError("optimizer state must have shape (%d, %d), got (%d, %d)"
                         % (need, n, state.shape[0], state.shape[1]))
    s0[0] = &state[0, 0] if need >= 1 else NULL
    s1[0] = &state[1, 0] if need >= 2 else NULL
    return 0


def optimizer_step(OptimizerConfig opt, floating[::1] theta, const floating[::1] grad,
                   floating[:, ::1] state):
    """One update of ``theta`` in place from ``grad``; ``state`` is (n_state, n)."""
    cdef floating* s0
    cdef floating* s1
    cdef Py_ssize_t n = theta.shape[0]
    cdef bp_fpstate fp
    if grad.shape[0] != n:
        raise ValueError("grad has %d entries, params %d" % (grad.shape[0], n))
    _state_pointers(opt, state, n, &s0, &s1)
    if n == 0:
        return
    with nogil:
        fp = bp_fp_enter()
        _optimizer_step(&opt.c, &theta[0], &grad[0], s0, s1, n, n, 0.0, 1.0)
        bp_fp_exit(fp)


# ---------------------------------------------------------------------------
# 7. Drivers
# ---------------------------------------------------------------------------

cdef int _reraise() except -1:
    # Called with an exception pending (set by PyErr_CheckSignals): returning
    # the error value makes Cython propagate that exception.
    return -1


cdef int _check_data(const Layout* L, Py_ssize_t x_rows, Py_ssize_t x_cols,
                     Py_ssize_t y_rows, Py_ssize_t y_cols, Py_ssize_t params) except -1:
    if x_cols != L.sizes[0]:
        raise ValueError("X has %d features, the network expects %d" % (x_cols, L.sizes[0]))
    if y_rows != x_rows:
        raise ValueError("X has %d rows but Y has %d" % (x_rows, y_rows))
    if y_cols != L.sizes[L.n_layers]:
        raise ValueError("Y has %d columns, the network has %d outputs"
                         % (y_cols, L.sizes[L.n_layers]))
    if params != L.n_params:
        raise ValueError("params has %d entries, the layout needs %d" % (params, L.n_params))
    return 0


cdef int _bind_input(object X, const floating** dense, SparseRows* sp, bint* is_sparse,
                     Py_ssize_t* n_rows, Py_ssize_t* n_cols) except -1:
    """Pointers for an input that is a dense C-contiguous array or a CSRInput.

    The pointers stay valid while the caller holds ``X``.
    """
    cdef const floating[:, ::1] xd
    cdef const floating[::1] data
    cdef const Py_ssize_t[::1] ind
    cdef const Py_ssize_t[::1] ptr
    cdef CSRInput c
    if isinstance(X, CSRInput):
        c = X
        data = c.data
        ind = c.indices
        ptr = c.indptr
        sp.data = <const void*> &data[0] if data.shape[0] > 0 else NULL
        sp.indices = &ind[0] if ind.shape[0] > 0 else NULL
        sp.indptr = &ptr[0]
        sp.rows = NULL
        sp.first = 0
        dense[0] = NULL
        is_sparse[0] = True
        n_rows[0] = c.n_rows
        n_cols[0] = c.n_cols
    else:
        xd = X
        dense[0] = &xd[0, 0] if xd.shape[0] > 0 and xd.shape[1] > 0 else NULL
        is_sparse[0] = False
        n_rows[0] = xd.shape[0]
        n_cols[0] = xd.shape[1]
    return 0


cdef class Minibatches:
    """One epoch's data as the epoch driver reads it.

    ``X`` is a C-contiguous array or a ``CSRInput``. ``perm`` (intp, or None
    for the natural order) gives the row order; batches are consecutive slices
    of it of ``batch_size`` rows, the last one shorter. ``work`` is a scratch
    buffer of at least ``layout.workspace_size(batch_size)`` entries and
    ``batch_loss`` receives each batch's loss.
    """
    cdef public object X, Y, sample_weight, perm, work, batch_loss
    cdef public Py_ssize_t batch_size, n_done
    cdef public double alpha

    def __init__(self, X, Y, sample_weight, perm, Py_ssize_t batch_size, double alpha,
                 work, batch_loss):
        self.X = X
        self.Y = Y
        self.sample_weight = sample_weight
        self.perm = perm
        self.batch_size = batch_size
        self.alpha = alpha
        self.work = work
        self.batch_loss = batch_loss
        self.n_done = 0


def max_threads():
    """Threads the epoch driver may use: OpenMP's current limit (which
    threadpoolctl sets), or 1 when the extension was built without OpenMP."""
    return bp_max_threads()


def has_openmp():
    return bool(BP_OPENMP)


cdef inline bint _signal_raised(Py_ssize_t* since_poll, Py_ssize_t poll_every) noexcept nogil:
    """Every ``poll_every``-th call, run Python's signal handlers (Ctrl-C);
    True if one raised (the exception is then pending)."""
    cdef bint raised = False
    since_poll[0] += 1
    if since_poll[0] >= poll_every:
        since_poll[0] = 0
        with gil:
            raised = PyErr_CheckSignals() != 0
    return raised


cdef inline void _gather(const floating* X, const floating* Y, const floating* sw,
                         const Py_ssize_t* perm, Py_ssize_t first, Py_ssize_t r0,
                         Py_ssize_t r1, Py_ssize_t n0, Py_ssize_t n_out, bint dense_x,
                         floating* xbuf, floating* ybuf, floating* swbuf) noexcept nogil:
    """Copy rows perm[first + r] (r in r0..r1-1) of X, Y, sw into row r of the buffers.

    While copying row r it asks for row r + GATHER_AHEAD, so the scattered
    rows arrive a few at a time: prefetching a whole batch at once filled the
    line-fill buffers and stalled (perf: 4% of a W2 epoch on the prefetch
    instructions). _prefetch_rows asks for the first GATHER_AHEAD rows of the
    next batch a batch in advance."""
    cdef Py_ssize_t r, src
    for r in range(r0, r1):
        src = perm[first + r]
        if dense_x:
            if r + GATHER_AHEAD < r1:
                _prefetch_row(X + perm[first + r + GATHER_AHEAD] * n0, n0)
            memcpy(xbuf + r * n0, X + src * n0, n0 * sizeof(floating))
        memcpy(ybuf + r * n_out, Y + src * n_out, n_out * sizeof(floating))
        if sw != NULL:
            swbuf[r] = sw[src]


cdef inline void _prefetch_row(const floating* row, Py_ssize_t n0) noexcept nogil:
    cdef Py_ssize_t c = 0
    while c < n0 and c < PREFETCH_ROW:
        bp_prefetch(row + c)
        c += CACHE_LINE // sizeof(floating)


cdef inline void _prefetch_rows(const floating* X, const Py_ssize_t* perm, Py_ssize_t r0,
                                Py_ssize_t r1, Py_ssize_t n0) noexcept nogil:
    # The first rows of the next batch; _gather asks for the rest as it goes.
    cdef Py_ssize_t r
    for r in range(r0, min(r1, r0 + GATHER_AHEAD)):
        _prefetch_row(X + perm[r] * n0, n0)


cdef Py_ssize_t _units_workspace_size(const Layout* L, Py_ssize_t rows,
                                      Py_ssize_t team) noexcept nogil:
    # Per thread (_epoch_by_units), each starting on its own cache lines: its
    # packed parameters, gradient and two optimizer states (at most n_params
    # each), its own copy of the batch (x, y, sample weights), its hidden
    # block's activations and deltas (at most H wide), the output and the
    # output delta. Shared: every thread's partial output product, two sets
    # (by batch parity), each padded to whole cache lines.
    return team * _units_thread_stride(L, rows) + 2 * team * _units_partial_stride(L, rows) + PAD


cdef inline Py_ssize_t _round_up(Py_ssize_t v) noexcept nogil:
    return (v + PAD - 1) // PAD * PAD


cdef inline Py_ssize_t _units_thread_stride(const Layout* L, Py_ssize_t rows) noexcept nogil:
    cdef Py_ssize_t n0 = L.sizes[0], H = L.sizes[1], K = L.sizes[2]
    return _round_up(4 * L.n_params + rows * (n0 + 3 * K + 1 + 2 * H))


cdef inline Py_ssize_t _units_partial_stride(const Layout* L, Py_ssize_t rows) noexcept nogil:
    return _round_up(rows * L.sizes[2])


cdef int _epoch_by_units(const Layout* L, OptConfig* opt_c, const floating* Xp,
                         const floating* Yp, const floating* swp, const Py_ssize_t* pp,
                         Py_ssize_t n, Py_ssize_t bs, double alpha, floating* th,
                         floating* s0, floating* s1, floating* work, double* blp,
                         Py_ssize_t poll_every, int n_threads, Py_ssize_t* n_done,
                         bint* interrupted) noexcept nogil:
    """One epoch of a one-hidden-layer network, split across threads by hidden units.

    Thread t owns hidden units [h0, h1): the columns h0:h1 of W_0 and b_0 and
    the rows h0:h1 of W_1. For the epoch it works on a packed private copy of
    them (with their optimizer state), so no cache line of parameters,
    gradients or state is written by two cores, and it writes them back at
    the end. Every thread also keeps its own copy of b_1 and updates it
    identically (it is K values).

    Per batch each thread computes its block of hidden activations from the
    whole batch and its partial output product A[:, h0:h1] @ W_1[h0:h1];
    after the one barrier of the batch, every thread sums the partials in
    thread order (so all get bitwise the same output), computes the loss and
    the output delta itself, and back-propagates into and updates only its
    own parameters. The row split (train_epoch) moves half the parameters and
    gradients between cores every batch and needs two barriers: for small
    batches that costs more than the arithmetic saved. The partials are
    double-buffered by batch parity: a thread can run at most one batch ahead.

    Shared values are written through pointers and read only after a barrier
    that follows the write. ``stop[b & 1]`` is what every thread checks after
    batch b's barrier (thread 0 writes it for the next batch at the end of
    this one); batch b's loss is recorded by thread 0 after batch b + 1's
    barrier (it needs every thread's sum(W**2)) or, for the last batch, after
    the parallel block. A non-finite loss that only the L2 term makes
    non-finite therefore stops the epoch one batch later. Returns a Status.
    """
    cdef Py_ssize_t n0 = L.sizes[0], H = L.sizes[1], K = L.sizes[2]
    cdef Py_ssize_t w0 = L.w_off[0], w1 = L.w_off[1], b0 = L.b_off[0], b1 = L.b_off[1]
    cdef int act0 = L.act[0], out_act = L.act[1], loss_code = L.loss
    cdef double factor = _loss_factor(L.loss, K), sq_scale = L.sq_scale
    cdef double slope = L.leaky_slope, ealpha = L.elu_alpha
    cdef Py_ssize_t n_batches = (n + bs - 1) // bs
    cdef Py_ssize_t stride = _units_thread_stride(L, bs)
    cdef Py_ssize_t pstride = _units_partial_stride(L, bs)
    cdef Py_ssize_t n_params = L.n_params
    cdef floating* base = _align(work)
    cdef floating* pbase = base + n_threads * stride
    # Shared, written only through these pointers:
    # stop[2]: status checked after batch b's barrier (slot b & 1);
    # dl[2], sws[2]: data loss and weight sum of the batch of that parity;
    # psq[2 * MAX_THREADS]: each thread's sum(W**2) for the batch of that parity;
    # info[0] = batch at which the threads stopped (n_batches if none), info[1] = team,
    # info[2] = Adam's step count at the end, info[3] = interrupted, info[4] = the
    # Status the threads stopped with.
    cdef Py_ssize_t stop_arr[2]
    cdef Py_ssize_t* stop = stop_arr
    cdef double dl_arr[2]
    cdef double* dl = dl_arr
    cdef double sws_arr[2]
    cdef double* sws = sws_arr
    cdef double psq_arr[2 * MAX_THREADS]
    cdef double* psq = psq_arr
    cdef long long info_arr[5]
    cdef long long* info = info_arr
    cdef bp_barrier_t barrier
    cdef bp_barrier_t* bar = &barrier
    cdef OptConfig oc0 = opt_c[0]
    cdef int status
    cdef double sq_total, last_loss
    cdef Py_ssize_t last, lpar, kk
    # Thread-private:
    cdef int tid, team, sense
    cdef Py_ssize_t b, start, rows, h0, h1, hw, i, k, par, since_poll, pending, r0, r1
    cdef Py_ssize_t n_loc, n_loc_w
    cdef double sw_sum, data_loss, sq, loss
    cdef floating* mine
    cdef floating* pth
    cdef floating* pg
    cdef floating* pm
    cdef floating* pv
    cdef floating* xown
    cdef floating* yown
    cdef floating* swown
    cdef floating* a_t
    cdef floating* d1
    cdef floating* o_t
    cdef floating* d2
    cdef floating* pt
    cdef floating* pk
    cdef const floating* xb
    cdef const floating* yb
    cdef const floating* swbp
    cdef OptConfig oc
    cdef bp_fpstate fp

    stop[0] = OK
    stop[1] = OK
    info[0] = n_batches
    info[1] = 1
    info[2] = oc0.t
    info[3] = 0
    info[4] = OK
    dl[0] = dl[1] = 0.0
    sws[0] = sws[1] = 0.0
    for i in range(2 * MAX_THREADS):
        psq[i] = 0.0
    bp_barrier_init(bar)

    with parallel(num_threads=n_threads):
        tid = bp_thread_id()
        team = bp_team_size()
        fp = bp_fp_enter()
        oc = oc0
        h0 = tid * H // team
        h1 = (tid + 1) * H // team
        hw = h1 - h0
        # Private blocks. Packed parameters: W_0[:, h0:h1] (n0 x hw), then
        # W_1[h0:h1] (hw x K): the weights; then b_0[h0:h1], then b_1.
        n_loc_w = n0 * hw + hw * K
        n_loc = n_loc_w + hw + K
        mine = base + tid * stride
        pth = mine
        pg = pth + n_params
        pm = pg + n_params
        pv = pm + n_params
        xown = pv + n_params
        yown = xown + bs * n0
        swown = yown + bs * K
        a_t = swown + bs
        d1 = a_t + bs * H
        o_t = d1 + bs * H
        d2 = o_t + bs * K
        _pack_units(th, pth, n0, H, K, h0, hw, w0, w1, b0, b1)
        if s0 != NULL:
            _pack_units(s0, pm, n0, H, K, h0, hw, w0, w1, b0, b1)
        if s1 != NULL:
            _pack_units(s1, pv, n0, H, K, h0, hw, w0, w1, b0, b1)
        since_poll = 0
        sense = 0
        pending = OK
        if tid == 0:
            info[1] = team
        for b in range(n_batches):
            start = b * bs
            rows = min(bs, n - start)
            par = b & 1
            if pp != NULL:
                _gather(Xp, Yp, swp, pp, start, 0, rows, n0, K, True, xown, yown, swown)
                xb = xown
                yb = yown
                swbp = swown if swp != NULL else NULL
                if b + 1 < n_batches:
                    # Each thread prefetches its share of the next batch's rows.
                    r0 = start + bs + tid * bs // team
                    r1 = min(start + bs + (tid + 1) * bs // team, n)
                    if r1 > r0:
                        _prefetch_rows(Xp, pp, r0, r1, n0)
            else:
                xb = Xp + start * n0
                yb = Yp + start * K
                swbp = swp + start if swp != NULL else NULL
            # This thread's hidden block and its partial output product.
            pt = pbase + (par * team + tid) * pstride
            if hw > 0:
                _gemm(False, False, <int> rows, <int> hw, <int> n0, 1, xb, <int> n0,
                      pth, <int> hw, 0, a_t, <int> hw)
                _bias_activation(act0, a_t, pth + n_loc_w, rows, hw, slope, ealpha)
                _gemm(False, False, <int> rows, <int> K, <int> hw, 1, a_t, <int> hw,
                      pth + n0 * hw, <int> K, 0, pt, <int> K)
            else:
                for i in range(rows * K):
                    pt[i] = 0
            bp_barrier_wait(bar, &sense, team)
            if tid == 0 and b > 0:
                # Batch b - 1 is complete on every thread: record its loss.
                sq = 0.0
                for k in range(team):
                    sq = sq + psq[(1 - par) * MAX_THREADS + k]
                loss = dl[1 - par]
                if sws[1 - par] > 0:
                    loss = loss + 0.5 * alpha * sq / sws[1 - par]
                blp[b - 1] = loss
                if not isfinite(loss) and pending == OK:
                    pending = NONFINITE_LOSS
            # Every thread reads the same slot here, so all take the same branch.
            if stop[par] != OK:
                if tid == 0:
                    info[0] = b
                    info[4] = stop[par]
                break
            # The output: partials summed in thread order, then bias and activation.
            pk = pbase + par * team * pstride
            for i in range(rows * K):
                o_t[i] = pk[i]
            for k in range(1, team):
                pk = pbase + (par * team + k) * pstride
                for i in range(rows * K):
                    o_t[i] = o_t[i] + pk[i]
            _bias_activation(out_act, o_t, pth + n_loc_w + hw, rows, K, slope, ealpha)
            data_loss = _loss_delta(loss_code, o_t, yb, swbp, rows, K, sq_scale, d2) * factor
            if swbp != NULL:
                sw_sum = 0.0
                for i in range(rows):
                    sw_sum = sw_sum + swbp[i]
            else:
                sw_sum = <double> rows
            if sw_sum > 0:
                data_loss = data_loss / sw_sum
                if not isfinite(data_loss):
                    # Same value on every thread: all stop here, before any update.
                    if tid == 0:
                        info[0] = b
                        info[4] = NONFINITE_LOSS
                    break
                # Output delta (times f' for squared error on a non-identity
                # output) and b_1's gradient, on every thread alike.
                if loss_code == SQUARED_ERROR and out_act != IDENTITY:
                    _activation_backward(out_act, o_t, d2, rows, K, slope, ealpha,
                                         pg + n_loc_w + hw, False)
                else:
                    _colsum(d2, rows, K, pg + n_loc_w + hw, False)
                if hw > 0:
                    # D1 = D2 @ W_1[h0:h1].T (gW_1's block lends itself for
                    # the copy of W_1[h0:h1].T, see _gemm_a_bt)
                    _gemm_a_bt(<int> rows, <int> hw, <int> K, d2, <int> K,
                               pth + n0 * hw, <int> K, d1, <int> hw, pg + n0 * hw)
                    # gW_1[h0:h1] = A.T @ D2
                    _gemm(True, False, <int> hw, <int> K, <int> rows, 1, a_t, <int> hw,
                          d2, <int> K, 0, pg + n0 * hw, <int> K)
                    # D1 times f', and gb_0[h0:h1]
                    _activation_backward(act0, a_t, d1, rows, hw, slope, ealpha,
                                         pg + n_loc_w, False)
                    # gW_0[:, h0:h1] = X.T @ D1
                    _gemm(True, False, <int> n0, <int> hw, <int> rows, 1, xb, <int> n0,
                          d1, <int> hw, 0, pg, <int> hw)
                oc.t = oc.t + 1
                psq[par * MAX_THREADS + tid] = _update_span(
                    &oc, pth, pg, pm if s0 != NULL else NULL, pv if s1 != NULL else NULL,
                    n_loc_w, 0, n_loc, alpha, 1.0 / sw_sum)
            else:
                # All of this batch's sample weights are zero: no update, no loss.
                data_loss = 0.0
                psq[par * MAX_THREADS + tid] = 0.0
            if tid == 0:
                dl[par] = data_loss
                sws[par] = sw_sum
                info[2] = oc.t
                if b + 1 < n_batches and _signal_raised(&since_poll, poll_every):
                    info[3] = 1
                    if pending == OK:
                        pending = INTERRUPTED
                # Read by everyone after the next batch's barrier.
                stop[1 - par] = pending
        # Back to the shared buffers (b_1 from thread 0; every copy is the same).
        _unpack_units(pth, th, n0, H, K, h0, hw, w0, w1, b0, b1, tid == 0)
        if s0 != NULL:
            _unpack_units(pm, s0, n0, H, K, h0, hw, w0, w1, b0, b1, tid == 0)
        if s1 != NULL:
            _unpack_units(pv, s1, n0, H, K, h0, hw, w0, w1, b0, b1, tid == 0)
        bp_fp_exit(fp)

    n_done[0] = info[0]
    interrupted[0] = info[3] != 0
    opt_c.t = info[2]
    status = <int> info[4]
    if info[0] == n_batches and n_batches > 0:
        # A stop raised during the last batch (a non-finite loss of the batch
        # before it) that no barrier delivered.
        status = <int> stop[n_batches & 1]
        # The last batch's loss (no barrier followed it inside the block).
        last = n_batches - 1
        lpar = last & 1
        sq_total = 0.0
        for kk in range(info[1]):
            sq_total = sq_total + psq[lpar * MAX_THREADS + kk]
        last_loss = dl[lpar]
        if sws[lpar] > 0:
            last_loss = last_loss + 0.5 * alpha * sq_total / sws[lpar]
        blp[last] = last_loss
        if not isfinite(last_loss) and status == OK:
            status = NONFINITE_LOSS
    return status


cdef inline void _pack_units(const floating* src, floating* dst, Py_ssize_t n0, Py_ssize_t H,
                             Py_ssize_t K, Py_ssize_t h0, Py_ssize_t hw, Py_ssize_t w0,
                             Py_ssize_t w1, Py_ssize_t b0, Py_ssize_t b1) noexcept nogil:
    """dst = [W_0[:, h0:h0+hw] | W_1[h0:h0+hw] | b_0[h0:h0+hw] | b_1] of the flat src."""
    cdef Py_ssize_t i
    for i in range(n0):
        memcpy(dst + i * hw, src + w0 + i * H + h0, hw * sizeof(floating))
    dst = dst + n0 * hw
    memcpy(dst, src + w1 + h0 * K, hw * K * sizeof(floating))
    dst = dst + hw * K
    memcpy(dst, src + b0 + h0, hw * sizeof(floating))
    memcpy(dst + hw, src + b1, K * sizeof(floating))


cdef inline void _unpack_units(const floating* src, floating* dst, Py_ssize_t n0, Py_ssize_t H,
                               Py_ssize_t K, Py_ssize_t h0, Py_ssize_t hw, Py_ssize_t w0,
                               Py_ssize_t w1, Py_ssize_t b0, Py_ssize_t b1,
                               bint with_b1) noexcept nogil:
    """The inverse of _pack_units (b_1 only if ``with_b1``)."""
    cdef Py_ssize_t i
    for i in range(n0):
        memcpy(dst + w0 + i * H + h0, src + i * hw, hw * sizeof(floating))
    src = src + n0 * hw
    memcpy(dst + w1 + h0 * K, src, hw * K * sizeof(floating))
    src = src + hw * K
    memcpy(dst + b0 + h0, src, hw * sizeof(floating))
    if with_b1:
        memcpy(dst + b1, src + hw, K * sizeof(floating))


def train_epoch(NetLayout layout, OptimizerConfig opt, Minibatches data,
                floating[::1] theta, floating[:, ::1] grad, floating[:, ::1] opt_state,
                int n_threads=1, bint by_units=False):
    """Run one epoch of minibatch training: gather, forward, loss, backward, update.

    Returns a ``Status``. ``data.batch_loss[b]`` holds the loss of batch ``b``
    (scikit-learn's: data loss + L2 term, before the update) and
    ``data.n_done`` how many batches completed. On NONFINITE_LOSS the offending
    batch made no update. A signal handler's exception (KeyboardInterrupt) is
    raised after the kernel has restored the floating-point state.

    With ``n_threads`` > 1 (and an OpenMP build), every batch is split by rows
    across the threads: each runs forward and backward on its rows into its
    own row of ``grad`` (shape (>= n_threads, n_params)); then each sums the
    gradients over its own slice of the parameters and updates that slice.
    BLAS must be single-threaded meanwhile (the Python layer sees to it).

    With ``by_units`` (a network with one hidden layer and dense X), the
    threads split the hidden units instead (see _epoch_by_units); ``data.work``
    must then hold ``layout.units_workspace_size(batch_size, n_threads)``.
    """
    cdef const Layout* L = &layout.c
    cdef const floating[:, ::1] Y = data.Y
    cdef const floating[::1] sw
    cdef const Py_ssize_t[::1] perm
    cdef floating[::1] work = data.work
    cdef double[::1] batch_loss = data.batch_loss
    cdef Py_ssize_t n, n_cols, bs = data.batch_size, n0 = L.sizes[0]
    cdef Py_ssize_t n_out = L.sizes[L.n_layers], n_batches, r
    cdef Py_ssize_t n_params = theta.shape[0], poll_every
    cdef double alpha = data.alpha
    cdef const floating* Xp
    cdef const floating* Yp
    cdef const floating* swp = NULL
    cdef const Py_ssize_t* pp = NULL
    cdef floating* xbuf
    cdef floating* ybuf
    cdef floating* swbuf
    cdef floating* acts[MAX_LAYERS]
    cdef floating** actsp = acts
    cdef floating* d_a
    cdef floating* d_b
    cdef floating* s0
    cdef floating* s1
    cdef floating* th
    cdef floating* gbase
    cdef SparseRows sp0
    cdef bint is_sparse
    cdef OptConfig oc0 = opt.c
    cdef Py_ssize_t n_units_done = 0
    cdef bint units_interrupted = False
    cdef int status
    # Shared between the threads, written only through these pointers:
    # partials[t] = data-loss sum of thread t, partials[MAX_THREADS + t] = its sum(W**2);
    # flags[0] = status that stops the epoch, flags[1] = interrupted,
    # flags[2] = batches done; t_out = Adam's step count at the end.
    cdef double partials[2 * MAX_THREADS]
    cdef double* part = partials
    cdef Py_ssize_t flags[3]
    cdef Py_ssize_t* fl = flags
    cdef long long t_out = oc0.t
    cdef long long* t_outp = &t_out
    cdef bp_barrier_t barrier
    cdef bp_barrier_t* bar = &barrier
    cdef int sense
    cdef double* blp
    # Thread-private (assigned inside the parallel block):
    cdef int tid, team
    cdef Py_ssize_t b, start, rows, r0, r1, p0, p1, i, k, since_poll
    cdef double sw_sum, data_loss, loss, sq
    cdef floating* g
    cdef floating* g0
    cdef const floating* xb
    cdef const floating* yb
    cdef const floating* swbp
    cdef SparseRows sp
    cdef OptConfig oc
    cdef bp_fpstate fp

    _bind_input(data.X, &Xp, &sp0, &is_sparse, &n, &n_cols)
    _check_data(L, n, n_cols, Y.shape[0], Y.shape[1], n_params)
    if grad.shape[1] != n_params:
        raise ValueError("grad rows and params differ in length")
    if n == 0:
        raise ValueError("no samples to train on")
    if bs < 1:
        raise ValueError("batch_size must be >= 1, got %d" % bs)
    bs = min(bs, n)
    if work.shape[0] < _workspace_size(L, bs):
        raise ValueError("workspace too small: %d < %d" % (work.shape[0], _workspace_size(L, bs)))
    n_batches = (n + bs - 1) // bs
    if batch_loss.shape[0] < n_batches:
        raise ValueError("batch_loss needs %d entries" % n_batches)
    n_threads = max(1, min(n_threads, MAX_THREADS, bs))
    if not BP_OPENMP:
        n_threads = 1
    if grad.shape[0] < n_threads:
        raise ValueError("grad needs one row per thread (%d), has %d"
                         % (n_threads, grad.shape[0]))
    if data.sample_weight is not None:
        sw = data.sample_weight
        if sw.shape[0] != n:
            raise ValueError("sample_weight has %d entries, X %d rows" % (sw.shape[0], n))
        swp = &sw[0]
    if data.perm is not None:
        perm = data.perm
        if perm.shape[0] != n:
            raise ValueError("perm has %d entries, X %d rows" % (perm.shape[0], n))
        for r in range(n):
            if perm[r] < 0 or perm[r] >= n:
                raise ValueError("perm[%d] = %d is not a row index" % (r, perm[r]))
        pp = &perm[0]
    _state_pointers(opt, opt_state, n_params, &s0, &s1)
    poll_every = max(1, POLL_MACS // max(1, bs * L.macs_per_row))

    if by_units:
        if L.n_layers != 2:
            raise ValueError("by_units needs a network with exactly one hidden layer")
        if is_sparse:
            raise ValueError("by_units needs dense X")
        n_threads = max(1, min(n_threads, L.sizes[1]))
        if work.shape[0] < _units_workspace_size(L, bs, n_threads):
            raise ValueError("workspace too small for by_units: %d < %d"
                             % (work.shape[0], _units_workspace_size(L, bs, n_threads)))
        with nogil:
            status = _epoch_by_units(L, &opt.c, Xp, &Y[0, 0], swp, pp, n, bs, alpha,
                                     &theta[0], s0, s1, &work[0], &batch_loss[0],
                                     poll_every, n_threads, &n_units_done,
                                     &units_interrupted)
        data.n_done = n_units_done
        if units_interrupted:
            _reraise()
        if status == OK:
            for r in range(n_params):
                if not isfinite(theta[r]):
                    return NONFINITE_PARAMS
        return status

    Yp = &Y[0, 0]
    th = &theta[0]
    gbase = &grad[0, 0]
    blp = &batch_loss[0]
    _carve(L, &work[0], bs, &xbuf, &ybuf, &swbuf, acts, &d_a, &d_b)
    flags[0] = OK
    flags[1] = 0
    flags[2] = 0
    bp_barrier_init(bar)

    with nogil, parallel(num_threads=n_threads):
        tid = bp_thread_id()
        team = bp_team_size()       # OpenMP may grant fewer threads than asked
        fp = bp_fp_enter()          # the floating-point mode is per thread
        oc = oc0
        sp = sp0
        g = gbase + tid * n_params
        g0 = gbase
        since_poll = 0
        sense = 0
        for b in range(n_batches):
            start = b * bs
            rows = min(bs, n - start)
            r0 = tid * rows // team
            r1 = (tid + 1) * rows // team
            if pp != NULL:
                _gather(Xp, Yp, swp, pp, start, r0, r1, n0, n_out, not is_sparse,
                        xbuf, ybuf, swbuf)
                xb = xbuf + r0 * n0
                yb = ybuf + r0 * n_out
                swbp = swbuf + r0 if swp != NULL else NULL
                sp.rows = pp + start + r0
                if not is_sparse and b + 1 < n_batches:
                    _prefetch_rows(Xp, pp, start + bs + r0,
                                   min(start + bs + r1, n), n0)
            else:
                xb = Xp + (start + r0) * n0 if not is_sparse else NULL
                yb = Yp + (start + r0) * n_out
                swbp = swp + start + r0 if swp != NULL else NULL
                sp.rows = NULL
                sp.first = start + r0
            if r1 > r0:
                part[tid] = _forward_backward(
                    L, th, xb, &sp if is_sparse else NULL, yb, swbp, r1 - r0,
                    actsp, r0, d_a + r0 * L.max_width, d_b + r0 * L.max_width, g, False)
            else:
                part[tid] = 0.0
                for i in range(n_params):
                    g[i] = 0
            bp_barrier_wait(bar, &sense, team)
            # Every thread reads the same shared values here, so all of them
            # take the same branch: nobody is left waiting at a barrier.
            if fl[0] != OK:
                break
            if swp != NULL:
                sw_sum = 0.0
                for r in range(rows):
                    sw_sum = sw_sum + (swbuf[r] if pp != NULL else swp[start + r])
            else:
                sw_sum = <double> rows
            data_loss = 0.0
            for k in range(team):
                data_loss = data_loss + part[k]
            if sw_sum > 0:
                data_loss = data_loss / sw_sum
                if not isfinite(data_loss):
                    if tid == 0:
                        fl[0] = NONFINITE_LOSS
                    break
                # Sum the threads' gradients over this thread's slice, then
                # update the slice; the update finishes the gradient
                # ((g + alpha W) / sw_sum) and returns sum(W**2) before the
                # update for the L2 term.
                # Each thread sums into its own gradient row (reading the others'
                # rows only), so no cache line is written by two cores.
                p0 = tid * n_params // team
                p1 = (tid + 1) * n_params // team
                for k in range(team):
                    if k != tid:
                        for i in range(p0, p1):
                            g[i] = g[i] + g0[k * n_params + i]
                oc.t = oc.t + 1
                part[MAX_THREADS + tid] = _update_span(&oc, th, g, s0, s1, L.n_weights,
                                                       p0, p1, alpha, 1.0 / sw_sum)
            else:
                # All of this batch's sample weights are zero: it carries no
                # information, so it makes no update and adds nothing to the loss.
                data_loss = 0.0
                part[MAX_THREADS + tid] = 0.0
            bp_barrier_wait(bar, &sense, team)
            if tid == 0:
                sq = 0.0
                for k in range(team):
                    sq = sq + part[MAX_THREADS + k]
                loss = data_loss + (0.5 * alpha * sq / sw_sum if sw_sum > 0 else 0.0)
                blp[b] = loss
                fl[2] = b + 1
                t_outp[0] = oc.t
                if not isfinite(loss):
                    fl[0] = NONFINITE_LOSS
                if b + 1 < n_batches and _signal_raised(&since_poll, poll_every):
                    fl[1] = 1
                    fl[0] = INTERRUPTED
            # The flag set just above is read by everyone after the next
            # batch's first barrier (thread 0 writes it before reaching it).
        bp_fp_exit(fp)

    opt.c.t = t_out
    data.n_done = flags[2]
    if flags[1]:
        _reraise()
    if flags[0] == OK:
        for r in range(n_params):
            if not isfinite(th[r]):
                return NONFINITE_PARAMS
    return flags[0]


def loss_grad(NetLayout layout, floating[::1] theta, X, const floating[:, ::1] Y,
              sample_weight, double alpha, floating[::1] grad_out, floating[::1] work,
              Py_ssize_t chunk):
    """Full-batch loss and gradient, ``chunk`` rows at a time; returns the loss.

    ``X`` is a C-contiguous array or a ``CSRInput``. ``grad_out`` receives the
    gradient of the returned loss (up to the ``sq_scale`` convention of the
    layout). ``work`` needs ``layout.workspace_size(chunk)`` entries.
    """
    cdef const Layout* L = &layout.c
    cdef const floating[::1] sw
    cdef const floating* swp = NULL
    cdef const floating* Xp
    cdef Py_ssize_t n, n_cols, start, rows, r, n0 = L.sizes[0]
    cdef double loss_sum = 0.0, sw_sum = 0.0, sq
    cdef floating* xbuf
    cdef floating* ybuf
    cdef floating* swbuf
    cdef floating* acts[MAX_LAYERS]
    cdef floating* d_a
    cdef floating* d_b
    cdef SparseRows sp
    cdef SparseRows* spp = NULL
    cdef bint is_sparse
    cdef bp_fpstate fp

    _bind_input(X, &Xp, &sp, &is_sparse, &n, &n_cols)
    if is_sparse:
        spp = &sp
    _check_data(L, n, n_cols, Y.shape[0], Y.shape[1], theta.shape[0])
    if grad_out.shape[0] != theta.shape[0]:
        raise ValueError("grad_out and params differ in length")
    if n == 0:
        raise ValueError("no samples")
    chunk = max(1, min(chunk, n))
    if work.shape[0] < _workspace_size(L, chunk):
        raise ValueError("workspace too small")
    if sample_weight is not None:
        sw = sample_weight
        if sw.shape[0] != n:
            raise ValueError("sample_weight has %d entries, X %d rows" % (sw.shape[0], n))
        swp = &sw[0]
    _carve(L, &work[0], chunk, &xbuf, &ybuf, &swbuf, acts, &d_a, &d_b)
    with nogil:
        fp = bp_fp_enter()
        start = 0
        while start < n:
            rows = min(chunk, n - start)
            sp.first = start
            loss_sum += _forward_backward(
                L, &theta[0], Xp + start * n0 if not is_sparse else NULL, spp,
                &Y[start, 0], swp + start if swp != NULL else NULL,
                rows, acts, 0, d_a, d_b, &grad_out[0], start > 0)
            start += rows
        if swp != NULL:
            for r in range(n):
                sw_sum += swp[r]
        else:
            sw_sum = <double> n
        sq = _finalize_grad(L, &theta[0], &grad_out[0], alpha, sw_sum)
        bp_fp_exit(fp)
    return loss_sum / sw_sum + 0.5 * alpha * sq / sw_sum


def forward(NetLayout layout, const floating[::1] theta, X, floating[:, ::1] out,
            floating[::1] work, Py_ssize_t chunk):
    """out = network(X), ``chunk`` rows at a time.

    ``X`` is a C-contiguous array or a ``CSRInput``. Touches nothing but
    ``out`` and ``work`` (``layout.inference_workspace_size(chunk)`` entries),
    so concurrent calls with their own buffers are safe.
    """
    cdef const Layout* L = &layout.c
    cdef Py_ssize_t n, n_cols, start, rows, l, n0 = L.sizes[0]
    cdef Py_ssize_t n_out = L.sizes[L.n_layers]
    cdef const floating* Xp
    cdef floating* acts[MAX_LAYERS]
    cdef floating* ping
    cdef floating* pong
    cdef SparseRows sp
    cdef SparseRows* spp = NULL
    cdef bint is_sparse
    cdef bp_fpstate fp
    _bind_input(X, &Xp, &sp, &is_sparse, &n, &n_cols)
    if is_sparse:
        spp = &sp
    if n_cols != n0:
        raise ValueError("X has %d features, the network expects %d" % (n_cols, n0))
    if theta.shape[0] != L.n_params:
        raise ValueError("params has %d entries, the layout needs %d"
                         % (theta.shape[0], L.n_params))
    if out.shape[0] != n or out.shape[1] != n_out:
        raise ValueError("out must have shape (%d, %d)" % (n, n_out))
    if n == 0:
        return
    chunk = max(1, min(chunk, n))
    if work.shape[0] < 2 * chunk * L.max_width:
        raise ValueError("workspace too small")
    ping = &work[0]
    pong = ping + chunk * L.max_width
    with nogil:
        fp = bp_fp_enter()
        start = 0
        while start < n:
            rows = min(chunk, n - start)
            for l in range(L.n_layers - 1):
                acts[l] = ping if l % 2 == 0 else pong
            acts[L.n_layers - 1] = &out[start, 0]
            sp.first = start
            _forward(L, &theta[0], Xp + start * n0 if not is_sparse else NULL, spp,
                     rows, acts)
            start += rows
        bp_fp_exit(fp)


def floor_epoch(NetLayout layout, OptimizerConfig opt, Minibatches data,
                floating[::1] theta, floating[::1] grad, floating[:, ::1] opt_state):
    """The benchmark floor: only the matrix products of an epoch plus the optimizer.

    The same GEMM calls with the same shapes as ``train_epoch`` (three per
    layer, two for the first; delta @ W.T through the same copy of W.T when
    _gemm_a_bt makes one), back to back, and one optimizer pass per batch;
    no gather, activations, loss or bias. ``theta`` is updated with a garbage
    gradient, so pass a throwaway copy.
    """
    cdef const Layout* L = &layout.c
    cdef const floating[:, ::1] X = data.X
    cdef floating[::1] work = data.work
    cdef Py_ssize_t n = X.shape[0], bs = min(data.batch_size, X.shape[0])
    cdef Py_ssize_t n_batches, b, l, rows
    cdef int n_in, n_out, r
    cdef floating* xbuf
    cdef floating* ybuf
    cdef floating* swbuf
    cdef floating* acts[MAX_LAYERS]
    cdef floating* d_a
    cdef floating* d_b
    cdef floating* s0
    cdef floating* s1
    cdef floating* th = &theta[0]
    cdef floating* gr = &grad[0]
    cdef const floating* a_in
    cdef OptConfig oc = opt.c
    cdef bp_fpstate fp
    _check_data(L, X.shape[0], X.shape[1], X.shape[0], L.sizes[L.n_layers], theta.shape[0])
    if bs < 1 or work.shape[0] < _workspace_size(L, bs):
        raise ValueError("bad batch size or workspace")
    _state_pointers(opt, opt_state, theta.shape[0], &s0, &s1)
    _carve(L, &work[0], bs, &xbuf, &ybuf, &swbuf, acts, &d_a, &d_b)
    n_batches = (n + bs - 1) // bs
    with nogil:
        fp = bp_fp_enter()
        for b in range(n_batches):
            rows = min(bs, n - b * bs)
            r = <int> rows
            a_in = &X[b * bs, 0]
            for l in range(L.n_layers):
                n_in = <int> L.sizes[l]
                n_out = <int> L.sizes[l + 1]
                _gemm(False, False, r, n_out, n_in, 1, a_in, n_in,
                      th + L.w_off[l], n_out, 0, acts[l], n_out)
                a_in = acts[l]
            for l in range(L.n_layers - 1, -1, -1):
                n_in = <int> L.sizes[l]
                n_out = <int> L.sizes[l + 1]
                a_in = &X[b * bs, 0] if l == 0 else acts[l - 1]
                if l > 0:
                    _gemm_a_bt(r, n_in, n_out, d_a, n_out, th + L.w_off[l], n_out,
                               d_b, n_in, gr + L.w_off[l])
                _gemm(True, False, n_in, n_out, r, 1, a_in, n_in, d_a, n_out,
                      0, gr + L.w_off[l], n_out)
            _optimizer_step(&oc, th, gr, s0, s1, L.n_weights, theta.shape[0],
                            data.alpha, 1.0 / rows)
        bp_fp_exit(fp)
    opt.c.t = oc.t
