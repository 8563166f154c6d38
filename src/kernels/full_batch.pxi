# Full-batch loss and gradient (L-BFGS, loss_and_grad).
# Included by src/_kernels.pyx (see its Design docstring for the order).

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
