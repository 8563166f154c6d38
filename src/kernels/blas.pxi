# BLAS wrappers: row-major GEMM over scipy.linalg.cython_blas, cut for OpenBLAS's small kernels.
# Included by src/_kernels.pyx (see its Design docstring for the order).

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
                            floating* bt, floating beta=0) noexcept nogil:
    """C = A @ B.T + beta * C, row-major: A is m x k, B is n x k, C is m x n.

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
            _gemm(False, False, m, n, k, 1, a, lda, bt, n, beta, c, ldc)
            return
    _gemm(False, True, m, n, k, 1, a, lda, b, ldb, beta, c, ldc)


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
