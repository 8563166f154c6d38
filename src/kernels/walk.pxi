# The layer walk: forward, loss and backward over one block of rows.
# Included by src/_kernels.pyx (see its Design docstring for the order).

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
