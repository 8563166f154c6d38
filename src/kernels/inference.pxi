# Inference: the forward walk in chunks, with running statistics, no dropout.
# Included by src/_kernels.pyx (see its Design docstring for the order).

def forward(Plan layout, const floating[::1] theta, X, floating[:, ::1] out,
            floating[::1] work, Py_ssize_t chunk, buffers=None):
    """out = network(X), ``chunk`` rows at a time.

    ``X`` is a C-contiguous array or a ``CSRInput``. Touches nothing but
    ``out`` and ``work`` (``layout.inference_workspace_size(chunk)``
    entries) and a scratch it allocates, so concurrent calls with their own
    buffers are safe. ``buffers`` are the running statistics (batch norm).
    Ctrl-C is polled between chunks.
    """
    cdef const Layout* L = &layout.c
    cdef Py_ssize_t n, n_cols, start, l, n0 = L.sizes[0], since_poll = 0
    cdef Py_ssize_t n_out = L.sizes[L.n_layers]
    cdef const floating* Xp
    cdef floating* ping
    cdef floating* pong
    cdef floating* bufp
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
    if n_cols != n0:
        raise ValueError("X has %d features, the network expects %d" % (n_cols, n0))
    if theta.shape[0] != L.n_params:
        raise ValueError("params has %d entries, the layout needs %d"
                         % (theta.shape[0], L.n_params))
    _bind_buffers(L, buffers, &bufp, <floating*> &theta[0])
    if out.shape[0] != n or out.shape[1] != n_out:
        raise ValueError("out must have shape (%d, %d)" % (n, n_out))
    if n == 0:
        return
    chunk = max(1, min(chunk, n))
    if work.shape[0] < 2 * chunk * L.max_width:
        raise ValueError("workspace too small")
    stats = np.zeros(max(1, L.stats_per_thread))
    ping = &work[0]
    pong = ping + chunk * L.max_width
    # Hidden layers alternate between two blocks (a residual layer adds its
    # input, the other block, in place); nothing is kept for a backward pass.
    for l in range(L.n_layers):
        A.h[l] = ping if l % 2 == 0 else pong
        A.a[l] = A.h[l]
        A.z[l] = NULL
        A.xh[l] = NULL
    _one_thread(&T, &M, &sense, &stats[0], False, False, 0)
    R.row0 = 0
    R.ids = NULL
    R.y = NULL
    R.sw = NULL
    with nogil:
        fp = bp_fp_enter()
        start = 0
        while start < n:
            R.n = min(chunk, n - start)
            A.h[L.n_layers - 1] = &out[start, 0]
            A.a[L.n_layers - 1] = A.h[L.n_layers - 1]
            R.x = Xp + start * n0 if not is_sparse else NULL
            sp.first = start
            R.sp = &sp if is_sparse else NULL
            R.first = start
            T.batch_rows = R.n
            _walk_forward(L, &theta[0], bufp, &A, &R, &T, &M)
            start += R.n
            if start < n and _signal_raised(&since_poll, 1):
                interrupted = True
                break
        bp_fp_exit(fp)
    if interrupted:
        _reraise()
