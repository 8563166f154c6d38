# Activations: bias + activation forward, derivative backward (bp_elementwise.c).
# Included by src/_kernels.pyx (see its Design docstring for the order).

# ---------------------------------------------------------------------------
# 2. Activations
# ---------------------------------------------------------------------------

cdef inline void _bias_activation(int code, floating* z, const floating* bias,
                                  Py_ssize_t rows, Py_ssize_t cols,
                                  double leaky_slope, double elu_alpha,
                                  Py_ssize_t ldz=-1, floating* zsave=NULL) noexcept nogil:
    """z = f(z + bias) in place, row by row, in one pass (bp_bias_act_*).

    ``ldz`` is the row stride (default ``cols``), so a column block of a wider
    matrix can be processed in place. With ``zsave`` (rows x cols), z + bias
    is kept there too (for the activations whose derivative needs it).
    """
    if ldz < 0:
        ldz = cols
    if floating is float:
        bp_bias_act_f(code, z, ldz, bias, rows, cols, <float> leaky_slope,
                      <float> elu_alpha, zsave)
    else:
        bp_bias_act_d(code, z, ldz, bias, rows, cols, leaky_slope, elu_alpha, zsave)


cdef inline void _activation_backward(int code, const floating* a, floating* delta,
                                      Py_ssize_t rows, Py_ssize_t cols,
                                      double leaky_slope, double elu_alpha,
                                      floating* colsum=NULL, bint accumulate=False,
                                      Py_ssize_t ld=-1, const floating* z=NULL) noexcept nogil:
    """delta = delta * f'(z) in place, with f' written in terms of a = f(z).

    With ``colsum``, also ``colsum (+)= delta.sum(axis=0)`` of the result in
    the same pass (the bias gradient of the layer below). ``ld`` is the row
    stride of both ``a`` and ``delta`` (default ``cols``). The activations
    that need their input (GELU, SiLU, softplus, SELU) read it from ``z``
    (rows x cols, as saved by the forward pass).
    """
    if ld < 0:
        ld = cols
    if floating is float:
        bp_act_back_f(code, a, ld, z, delta, ld, rows, cols, <float> leaky_slope,
                      <float> elu_alpha, colsum, accumulate)
    else:
        bp_act_back_d(code, a, ld, z, delta, ld, rows, cols, leaky_slope, elu_alpha,
                      colsum, accumulate)


def activation_forward(int code, floating[:, ::1] z, bias=None,
                       double leaky_slope=0.01, double elu_alpha=1.0):
    """z = f(z + bias) in place; ``code`` is an ``Activation``, bias defaults to 0."""
    cdef const floating[::1] b
    cdef const floating* bp
    if z.shape[0] == 0 or z.shape[1] == 0:
        return
    if bias is None:
        import numpy as np
        bias = np.zeros(z.shape[1], dtype=np.float32 if floating is float else np.float64)
    b = bias
    if b.shape[0] != z.shape[1]:
        raise ValueError("bias length does not match the columns of z")
    bp = &b[0]
    with nogil:
        _bias_activation(code, &z[0, 0], bp, z.shape[0], z.shape[1], leaky_slope, elu_alpha)


def activation_backward(int code, const floating[:, ::1] a, floating[:, ::1] delta,
                        double leaky_slope=0.01, double elu_alpha=1.0, z=None,
                        colsum=None, bint accumulate=False, Py_ssize_t n_cols=-1):
    """delta *= f'(z) in place, from the activation output ``a`` (and, for
    GELU, SiLU, softplus and SELU, from its input ``z``, the same shape).
    With ``colsum`` (a vector of delta's columns), also ``colsum (+)=
    delta.sum(axis=0)`` of the result, row after row (the bias gradient).
    With ``n_cols``, only the first ``n_cols`` columns, at the arrays' row
    stride (a thread's column block of a shared buffer; not for the
    activations that read z)."""
    cdef const floating[:, ::1] zz
    cdef const floating* zp = NULL
    cdef floating[::1] cs
    cdef floating* csp = NULL
    cdef Py_ssize_t i, cols = a.shape[1] if n_cols < 0 else n_cols
    if cols > a.shape[1]:
        raise ValueError("n_cols is larger than the columns of a")
    if n_cols >= 0 and bp_act_needs_z(code):
        raise ValueError("n_cols is not for the activations that read z")
    if colsum is not None:
        cs = colsum
        if cs.shape[0] != cols:
            raise ValueError("colsum length does not match the columns of delta")
        if cs.shape[0] > 0:
            csp = &cs[0]
    if a.shape[0] != delta.shape[0] or a.shape[1] != delta.shape[1]:
        raise ValueError("a and delta must have the same shape")
    if bp_act_needs_z(code):
        if z is None:
            raise ValueError("this activation's derivative needs its input z")
        zz = z
        if zz.shape[0] != a.shape[0] or zz.shape[1] != a.shape[1]:
            raise ValueError("z must have the shape of a")
    if cols == 0:
        return
    if a.shape[0] == 0:
        if csp != NULL and not accumulate:
            for i in range(cs.shape[0]):
                cs[i] = 0
        return
    if bp_act_needs_z(code):
        zp = &zz[0, 0]
    with nogil:
        _activation_backward(code, &a[0, 0], &delta[0, 0], a.shape[0], cols,
                             leaky_slope, elu_alpha, csp, accumulate, a.shape[1], zp)
