# Inference: chunked forward pass.
# Included by src/_kernels.pyx (see its Design docstring for the order).

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
