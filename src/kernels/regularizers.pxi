# Regularizers: the penalties folded into the gradient, and max-norm.
# Included by src/_kernels.pyx (see its Design docstring for the order).

# ---------------------------------------------------------------------------
# 5. Regularizers
# ---------------------------------------------------------------------------
#
# Penalties and constraints act on the weights, params[:n_weights], only:
# biases, BN shifts and BN scales are never penalized or constrained.

cdef inline floating _sign(floating t) noexcept nogil:
    # The subgradient of |t|, 0 at 0.
    return 1 if t > 0 else (-1 if t < 0 else 0)


cdef void _finish_span(const CLayout* L, const floating* theta, floating* grad,
                       Py_ssize_t start, Py_ssize_t end, double alpha, double l1,
                       double inv_scale, double* sq, double* ab, double* gg) noexcept nogil:
    """grad[start:end] = (grad + alpha W + l1 sign(W)) * inv_scale on weights,
    grad * inv_scale on the rest, in place.

    Returns (through the pointers) sum(W**2) and sum(|W|) over the weights in
    the span (before any update) and sum(grad**2) of the finished span (the
    clipping norm).
    """
    cdef Py_ssize_t i, nw = min(end, L.n_weights)
    cdef floating t, v, a = <floating> alpha, c = <floating> l1, s = <floating> inv_scale
    cdef double sq_ = 0.0, ab_ = 0.0, gg_ = 0.0
    for i in range(start, nw):
        t = theta[i]
        sq_ += <double> (t * t)
        ab_ += <double> (t if t >= 0 else -t)
        v = (grad[i] + a * t + c * _sign(t)) * s
        grad[i] = v
        gg_ += <double> v * <double> v
    for i in range(max(start, nw), end):
        v = grad[i] * s
        grad[i] = v
        gg_ += <double> v * <double> v
    sq[0] = sq_
    ab[0] = ab_
    gg[0] = gg_


cdef double _finalize_grad(const CLayout* L, const floating* theta, floating* grad,
                           double alpha, double l1, double sw_sum,
                           double* ab) noexcept nogil:
    """grad = (grad + alpha W + l1 sign(W)) / sw_sum on weights, grad / sw_sum
    on the rest.

    Returns sum(W**2) when alpha != 0 (for the L2 term of the loss), else 0,
    and sum(|W|) through ``ab``. The operation order is scikit-learn's (add,
    then divide).
    """
    cdef Py_ssize_t i
    cdef double sq = 0.0, ab_ = 0.0
    cdef floating t, a = <floating> alpha, c = <floating> l1, s = <floating> sw_sum
    if alpha != 0 or l1 != 0:
        for i in range(L.n_weights):
            t = theta[i]
            sq += <double> t * <double> t
            ab_ += <double> (t if t >= 0 else -t)
            if l1 != 0:
                grad[i] = (grad[i] + a * t + c * _sign(t)) / s
            else:
                grad[i] = (grad[i] + a * t) / s
    else:
        for i in range(L.n_weights):
            grad[i] = grad[i] / s
    for i in range(L.n_weights, L.n_params):
        grad[i] = grad[i] / s
    ab[0] = ab_
    return sq if alpha != 0 else 0.0


cdef void _max_norm_share(const CLayout* L, floating* theta, double max_norm, int tid,
                          int team) noexcept nogil:
    """Rescale every column of every W_l (the incoming weights of one unit)
    whose L2 norm exceeds ``max_norm`` to exactly that norm (Keras'
    MaxNorm(axis=0), without its 1e-7 in the denominator). Thread tid takes
    its share of the columns of each layer."""
    cdef Py_ssize_t l, i, j, fi, fo, j0, j1
    cdef floating* W
    cdef double norm
    cdef floating scale
    for l in range(L.n_layers):
        fi = L.sizes[l]
        fo = L.sizes[l + 1]
        W = theta + L.w_off[l]
        j0 = tid * fo // team
        j1 = (tid + 1) * fo // team
        for j in range(j0, j1):
            norm = 0.0
            for i in range(fi):
                norm += <double> W[i * fo + j] * <double> W[i * fo + j]
            norm = sqrt(norm)
            if norm > max_norm:
                scale = <floating> (max_norm / norm)
                for i in range(fi):
                    W[i * fo + j] = W[i * fo + j] * scale


def max_norm_apply(Layout layout, floating[::1] theta, double max_norm):
    """Apply the max-norm constraint to ``theta`` in place (see _max_norm_share)."""
    if theta.shape[0] != layout.c.n_params:
        raise ValueError("params has %d entries, the layout needs %d"
                         % (theta.shape[0], layout.c.n_params))
    if not max_norm > 0:
        raise ValueError("max_norm must be > 0, got %r" % max_norm)
    with nogil:
        _max_norm_share(&layout.c, &theta[0], max_norm, 0, 1)


def penalty_add(Layout layout, const floating[::1] theta, double alpha, double l1,
                double sw_total, double[::1] grad):
    """The penalties of a loss summed elsewhere (bpcore.dask's blocks).

    Returns the loss term ``_penalty_term``: (0.5 alpha sum(W**2) + l1
    sum(|W|)) / sw_total over the weights ``theta[:n_weights]`` (in double,
    in order, as ``loss_grad`` sums them), and adds its gradient
    (alpha W + l1 sign(W)) / sw_total, in double, to ``grad[:n_weights]``.
    """
    cdef const CLayout* L = &layout.c
    cdef Py_ssize_t i
    cdef double t, sq = 0.0, ab = 0.0
    if theta.shape[0] != L.n_params or grad.shape[0] != L.n_params:
        raise ValueError("params and grad need %d entries, have %d and %d"
                         % (L.n_params, theta.shape[0], grad.shape[0]))
    if not sw_total > 0:
        raise ValueError("sw_total must be > 0, got %r" % sw_total)
    with nogil:
        for i in range(L.n_weights):
            t = theta[i]
            sq += t * t
            ab += t if t >= 0 else -t
            grad[i] = grad[i] + (alpha * t + l1 * _sign(t)) / sw_total
    return _penalty_term(alpha, l1, sq, ab, sw_total)
