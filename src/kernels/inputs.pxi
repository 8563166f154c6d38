# The input side of the drivers: binding X (dense or CSR), checking its
# shape against the layout, scanning it for non-finite entries and keying its
# rows for dropout.
# Included by src/_kernels.pyx (see its Design docstring for the order).

from libc.float cimport DBL_MAX, FLT_MAX
from libc.math cimport INFINITY

cdef extern from "bp_scan.h" nogil:
    int BP_SCAN_BLOCK
    int bp_in_range_d(const double* x, Py_ssize_t n, double lo, double hi) noexcept
    int bp_in_range_f(const float* x, Py_ssize_t n, float lo, float hi) noexcept
    int bp_finite_d(const double* x, Py_ssize_t n) noexcept


cdef int _check_data(const CLayout* L, Py_ssize_t x_rows, Py_ssize_t x_cols,
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


def row_keys(X):
    """The sample key of every row of ``X`` (uint64), by which dropout draws
    its masks: a hash of the row's nonzero (column, value) pairs.

    Copies of a row share its key, so they draw the same masks (as a row of
    weight w does: sample weights are repetitions, exactly); a dense row and
    its CSR form, float32 and float64, share it too. ``X`` is a C-contiguous
    float32/float64 array or a canonical ``CSRInput`` (no duplicate entries,
    as ``csr_input`` makes it). One pass over X without the GIL, in the
    kernels' floating-point mode: a subnormal value, which the kernels read
    as zero, counts as zero here too, whatever mode the caller is in.
    """
    import numpy as np
    cdef const double[:, ::1] d
    cdef const float[:, ::1] f
    cdef const double[::1] sd
    cdef const float[::1] sf
    cdef const double* vd = NULL
    cdef const float* vf = NULL
    cdef const Py_ssize_t* cols = NULL
    cdef const Py_ssize_t* rows = NULL
    cdef const Py_ssize_t[::1] ind
    cdef const Py_ssize_t[::1] ptr
    cdef CSRInput c
    cdef Py_ssize_t n, m = 0, i, a, b
    cdef uint64_t[::1] out
    if isinstance(X, CSRInput):
        c = X
        n = c.n_rows
        ind = c.indices
        ptr = c.indptr
        rows = &ptr[0]
        if ind.shape[0] > 0:
            cols = &ind[0]
            if c.data.dtype.itemsize == 8:
                sd = c.data
                vd = &sd[0]
            else:
                sf = c.data
                vf = &sf[0]
    elif X.dtype.itemsize == 8:
        d = X
        n, m = d.shape[0], d.shape[1]
        if n and m:
            vd = &d[0, 0]
    else:
        f = X
        n, m = f.shape[0], f.shape[1]
        if n and m:
            vf = &f[0, 0]
    cdef bp_fpstate fp
    out = np.zeros(n, dtype=np.uint64)
    with nogil:
        fp = bp_fp_enter()
        for i in range(n):
            if rows != NULL:
                a = rows[i]
                b = rows[i + 1]
            else:
                a = i * m
                b = a + m
            if vd != NULL:
                out[i] = bp_row_key_d(vd + a, cols + a if cols != NULL else NULL, b - a)
            elif vf != NULL:
                out[i] = bp_row_key_f(vf + a, cols + a if cols != NULL else NULL, b - a)
            else:
                out[i] = bp_row_key_d(NULL, NULL, 0)
        bp_fp_exit(fp)
    return np.asarray(out)


# ---------------------------------------------------------------------------
# Input scan: every entry finite and within bounds, without allocating
# (the C and the reason for it: src/c/bp_scan.c)
# ---------------------------------------------------------------------------

def all_in_range(a, double lo=-INFINITY, double hi=INFINITY):
    """True if every entry of ``a`` is finite and in ``[lo, hi]``.

    ``a`` is a C-contiguous 2-D float32 or float64 array. Bounds beyond the
    dtype's finite range are clipped to it, so the default bounds test
    finiteness alone. One pass without the GIL and without allocating,
    stopping at the first block of ``BP_SCAN_BLOCK`` entries that fails.
    """
    cdef const double[:, ::1] d
    cdef const float[:, ::1] f
    cdef const double* pd = NULL
    cdef const float* pf = NULL
    cdef Py_ssize_t n, s, m
    cdef int ok = 1
    cdef float lo_f, hi_f
    cdef bint finite_only = lo <= -DBL_MAX and hi >= DBL_MAX
    lo = max(lo, -DBL_MAX)
    hi = min(hi, DBL_MAX)
    if a.dtype.itemsize == 8:
        d = a
        n = d.shape[0] * d.shape[1]
        if n:
            pd = &d[0, 0]
    else:
        f = a
        n = f.shape[0] * f.shape[1]
        if n:
            pf = &f[0, 0]
    lo_f = <float> max(lo, -FLT_MAX)
    hi_f = <float> min(hi, FLT_MAX)
    with nogil:
        s = 0
        while ok and s < n:
            m = min(<Py_ssize_t> BP_SCAN_BLOCK, n - s)
            if pd != NULL:
                ok = bp_finite_d(pd + s, m) if finite_only else bp_in_range_d(pd + s, m, lo, hi)
            else:
                ok = bp_in_range_f(pf + s, m, lo_f, hi_f)
            s += m
    return bool(ok)
