# The benchmark floor: only the epoch's products plus the optimizer.
# Included by src/_kernels.pyx (see its Design docstring for the order).

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
    cdef floating* st[MAX_STATE]
    cdef floating* th = &theta[0]
    cdef floating* gr = &grad[0]
    cdef const floating* a_in
    cdef OptConfig oc = opt.c
    cdef bp_fpstate fp
    _check_data(L, X.shape[0], X.shape[1], X.shape[0], L.sizes[L.n_layers], theta.shape[0])
    if bs < 1 or work.shape[0] < _workspace_size(L, bs):
        raise ValueError("bad batch size or workspace")
    _state_pointers(opt, opt_state, theta.shape[0], st)
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
            _optimizer_step(&oc, th, gr, st, L.n_weights, theta.shape[0],
                            data.alpha, 1.0 / rows)
        bp_fp_exit(fp)
    opt.c.t = oc.t
