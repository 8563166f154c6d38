# Regularizers: the L2 term folded into the gradient.
# Included by src/_kernels.pyx (see its Design docstring for the order).

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
