# Full-batch loss and gradient (L-BFGS, Network.loss_and_grad).
# Included by src/_kernels.pyx (see its Design docstring for the order).

def loss_grad(Plan layout, floating[::1] theta, X, const floating[:, ::1] Y,
              sample_weight, double alpha, floating[::1] grad_out, floating[::1] work,
              Py_ssize_t chunk, *, buffers=None, bint training=False,
              unsigned long long seed=0, double l1=0.0):
    """Full-batch loss and gradient, ``chunk`` rows at a time; returns the loss.

    ``X`` is a C-contiguous array or a ``CSRInput``. ``grad_out`` receives the
    gradient of the returned loss (up to the ``sq_scale`` convention of the
    layout). ``work`` needs ``layout.workspace_size(chunk)`` entries.

    With ``training``, dropout draws the masks of ``seed`` (epoch 0; each
    row's sample is its ``row_keys`` hash) and batch norm uses the
    statistics of the whole of X (then X is one block, whatever ``chunk``
    says, and ``work`` must hold ``layout.workspace_size(len(X))``);
    without it, running statistics and
    no dropout. ``buffers`` are the network's running statistics. Ctrl-C is
    polled between chunks.
    """
    cdef const Layout* L = &layout.c
    cdef const floating[::1] sw
    cdef const floating* swp = NULL
    cdef const floating* Xp
    cdef Py_ssize_t n, n_cols, start, r, n0 = L.sizes[0], since_poll = 0
    cdef double loss_sum = 0.0, sw_sum = 0.0, sq, ab
    cdef floating* xbuf
    cdef floating* ybuf
    cdef floating* swbuf
    cdef floating* bufp
    cdef double[::1] stats
    cdef const uint64_t[::1] keys
    cdef SparseRows sp
    cdef bint is_sparse, interrupted = False
    cdef int sense = 0
    cdef Acts A
    cdef Team T
    cdef Rows R
    cdef Mode M
    cdef bp_fpstate fp
    import numpy as np

    _bind_input(X, &Xp, &sp, &is_sparse, &n, &n_cols)
    _check_data(L, n, n_cols, Y.shape[0], Y.shape[1], theta.shape[0])
    _bind_buffers(L, buffers, &bufp, &theta[0])
    if grad_out.shape[0] != theta.shape[0]:
        raise ValueError("grad_out and params differ in length")
    if n == 0:
        raise ValueError("no samples")
    chunk = max(1, min(chunk, n))
    if training and L.has_bn:
        chunk = n
    if work.shape[0] < _workspace_size(L, chunk):
        raise ValueError("workspace too small")
    if sample_weight is not None:
        sw = sample_weight
        if sw.shape[0] != n:
            raise ValueError("sample_weight has %d entries, X %d rows" % (sw.shape[0], n))
        swp = &sw[0]
    stats = np.zeros(max(1, L.stats_per_thread))
    _carve(L, &work[0], chunk, training, &xbuf, &ybuf, &swbuf, &A)
    _one_thread(&T, &M, &sense, &stats[0], training, False, seed)
    if training and L.has_dropout:
        keys = row_keys(X)
        M.keys = &keys[0]
    T.batch_rows = n
    R.row0 = 0
    R.ids = NULL
    with nogil:
        fp = bp_fp_enter()
        start = 0
        while start < n:
            R.n = min(chunk, n - start)
            R.x = Xp + start * n0 if not is_sparse else NULL
            sp.first = start
            R.sp = &sp if is_sparse else NULL
            R.y = &Y[start, 0]
            R.sw = swp + start if swp != NULL else NULL
            R.first = start
            loss_sum += _walk(L, &theta[0], bufp, &grad_out[0], &A, &R, &T, &M, start > 0)
            start += R.n
            if start < n and _signal_raised(&since_poll, 1):
                interrupted = True
                break
        if not interrupted:
            if swp != NULL:
                for r in range(n):
                    sw_sum += swp[r]
            else:
                sw_sum = <double> n
            sq = _finalize_grad(L, &theta[0], &grad_out[0], alpha, l1, sw_sum, &ab)
        bp_fp_exit(fp)
    if interrupted:
        _reraise()
    return loss_sum / sw_sum + (0.5 * alpha * sq + l1 * ab) / sw_sum


def loss_value(Plan layout, const floating[::1] theta, X, const floating[:, ::1] Y,
               sample_weight, floating[::1] work, Py_ssize_t chunk, buffers=None):
    """The data loss on (X, Y) by the inference path (running statistics, no
    dropout), ``chunk`` rows at a time, without the GIL and without a
    backward pass: the weighted mean of the per-sample losses, no penalty.

    ``work`` needs ``layout.workspace_size(chunk)`` entries; Ctrl-C is
    polled between chunks.
    """
    cdef const Layout* L = &layout.c
    cdef const floating[::1] sw
    cdef const floating* swp = NULL
    cdef const floating* Xp
    cdef Py_ssize_t n, n_cols, start, r, n0 = L.sizes[0], since_poll = 0
    cdef double loss_sum = 0.0, sw_sum = 0.0
    cdef floating* xbuf
    cdef floating* ybuf
    cdef floating* swbuf
    cdef floating* bufp
    cdef floating[::1] scratch
    cdef double[::1] stats
    cdef SparseRows sp
    cdef bint is_sparse, interrupted = False
    cdef int sense = 0
    cdef Acts A
    cdef Team T
    cdef Rows R
    cdef Mode M
    cdef bp_fpstate fp
    import numpy as np
    _bind_input(X, &Xp, &sp, &is_sparse, &n, &n_cols)
    _check_data(L, n, n_cols, Y.shape[0], Y.shape[1], theta.shape[0])
    _bind_buffers(L, buffers, &bufp, <floating*> &theta[0])
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
    # _output_loss also sums the output bias gradient: into this scratch.
    scratch = np.zeros(L.n_params, dtype=np.float32 if floating is float else np.float64)
    stats = np.zeros(max(1, L.stats_per_thread))
    _carve(L, &work[0], chunk, False, &xbuf, &ybuf, &swbuf, &A)
    _one_thread(&T, &M, &sense, &stats[0], False, False, 0)
    R.row0 = 0
    R.ids = NULL
    with nogil:
        fp = bp_fp_enter()
        start = 0
        while start < n:
            R.n = min(chunk, n - start)
            R.x = Xp + start * n0 if not is_sparse else NULL
            sp.first = start
            R.sp = &sp if is_sparse else NULL
            R.y = &Y[start, 0]
            R.sw = swp + start if swp != NULL else NULL
            R.first = start
            T.batch_rows = R.n
            _walk_forward(L, &theta[0], bufp, &A, &R, &T, &M)
            loss_sum += _output_loss(L, &theta[0], &scratch[0], &A, &R, False)
            start += R.n
            if start < n and _signal_raised(&since_poll, 1):
                interrupted = True
                break
        bp_fp_exit(fp)
    if interrupted:
        _reraise()
    if swp != NULL:
        for r in range(n):
            sw_sum += swp[r]
    else:
        sw_sum = <double> n
    return loss_sum / sw_sum
