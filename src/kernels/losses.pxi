# Losses: per-block loss sums and output deltas.
# Included by src/_kernels.pyx (see its Design docstring for the order).

# ---------------------------------------------------------------------------
# 3. Losses
# ---------------------------------------------------------------------------

cdef inline floating _clip_prob(floating p) noexcept nogil:
    # scikit-learn clips probabilities to [eps, 1 - eps] of the working dtype.
    cdef floating eps
    if floating is float:
        eps = FLT_EPSILON
    else:
        eps = DBL_EPSILON
    if p < eps:
        return eps
    if p > 1 - eps:
        return 1 - eps
    return p


cdef double _loss_delta(int loss, const floating* out, const floating* y,
                        const floating* sw, Py_ssize_t rows, Py_ssize_t cols,
                        double sq_scale, double huber_delta,
                        floating* delta) noexcept nogil:
    """Sum over rows of sw[i] * loss_i, and delta = dloss_i/dout * sw[i].

    ``delta`` is dL/dz for the canonical output of each loss (softmax for
    LOG_LOSS, logistic for BINARY_LOG_LOSS, exp for POISSON, identity for
    the regression losses), where it is ``out - y`` for the first four. For
    the regression losses (squared, absolute, Huber error) it is further
    multiplied by ``sq_scale``; a non-identity output activation is applied
    by the caller. Per-row losses: squared error sum((out - y)**2) (the
    caller scales by 0.5 / n_outputs), absolute error sum(|out - y|) with
    delta sign(out - y) (0 at 0, as torch.nn.L1Loss), Huber
    sum(0.5 d**2 if |d| <= delta else delta (|d| - 0.5 delta)) with delta
    d clamped to [-delta, delta] (torch.nn.HuberLoss); the caller scales
    both by 1 / n_outputs.

    Log loss without sample weights goes to bp_log_loss_*, which takes a
    handful of logs per block instead of one per row (the 200 libm logs per
    W2 batch were 2% of its epoch) and runs in whole vectors over the block
    (the row loop's scan for the true class was another 2.5%).
    """
    cdef Py_ssize_t i, j
    cdef double total = 0.0, row_loss, w
    cdef floating d, p, t, hd
    cdef floating scale = <floating> sq_scale
    cdef const floating* o
    cdef const floating* yy
    cdef floating* dd
    if loss == LOG_LOSS and sw == NULL:
        if floating is float:
            return bp_log_loss_f(out, y, delta, rows * cols)
        else:
            return bp_log_loss_d(out, y, delta, rows * cols)
    for i in range(rows):
        o = out + i * cols
        yy = y + i * cols
        dd = delta + i * cols
        row_loss = 0.0
        if loss == SQUARED_ERROR:
            for j in range(cols):
                d = o[j] - yy[j]
                row_loss += <double> (d * d)
                dd[j] = d
        elif loss == LOG_LOSS:
            # Weighted (the unweighted loss is bp_log_loss_*): the delta in a
            # loop of its own, which vectorizes; a log only where the target
            # is non-zero (once per row for one-hot targets).
            for j in range(cols):
                dd[j] = o[j] - yy[j]
            for j in range(cols):
                t = yy[j]
                if t != 0:
                    row_loss -= <double> (t * _log(_clip_prob(o[j])))
        elif loss == BINARY_LOG_LOSS:
            for j in range(cols):
                t = yy[j]
                p = _clip_prob(o[j])
                if t != 0:
                    row_loss -= <double> (t * _log(p))
                if t != 1:
                    row_loss -= <double> ((1 - t) * _log(1 - p))
                dd[j] = o[j] - t
        elif loss == POISSON:
            for j in range(cols):
                t = yy[j]
                if t != 0:
                    row_loss += <double> (t * _log(t / o[j]))
                row_loss += <double> (o[j] - t)
                dd[j] = o[j] - t
        elif loss == ABSOLUTE_ERROR:
            for j in range(cols):
                d = o[j] - yy[j]
                row_loss += <double> (d if d >= 0 else -d)
                dd[j] = 1 if d > 0 else (-1 if d < 0 else 0)
        elif loss == HUBER:
            hd = <floating> huber_delta
            for j in range(cols):
                d = o[j] - yy[j]
                if d <= hd and d >= -hd:
                    row_loss += <double> (<floating> 0.5 * d * d)
                    dd[j] = d
                else:
                    row_loss += <double> (hd * ((d if d >= 0 else -d) - <floating> 0.5 * hd))
                    dd[j] = hd if d > 0 else -hd
        if sw != NULL:
            w = sw[i]
            row_loss *= w
            for j in range(cols):
                dd[j] = dd[j] * sw[i]
        if _any_output(loss) and scale != 1:
            for j in range(cols):
                dd[j] = dd[j] * scale
        total += row_loss
    return total


cdef inline bint _any_output(int loss) noexcept nogil:
    # The regression losses take any output activation (the chain rule
    # through it is applied to their delta).
    return loss == SQUARED_ERROR or loss == ABSOLUTE_ERROR or loss == HUBER


cdef inline double _loss_factor(int loss, Py_ssize_t n_outputs) noexcept nogil:
    # Squared error is 0.5 * mean over outputs (scikit-learn's squared_loss);
    # absolute and Huber error are means over outputs (torch's reduction).
    if loss == SQUARED_ERROR:
        return 0.5 / n_outputs
    if loss == ABSOLUTE_ERROR or loss == HUBER:
        return 1.0 / n_outputs
    return 1.0


def loss_delta(int loss, const floating[:, ::1] out, const floating[:, ::1] y,
               sample_weight, floating[:, ::1] delta_out, double sq_scale=1.0,
               double huber_delta=1.0):
    """Weighted sum of per-row losses; writes the output delta (see _loss_delta).

    The returned sum is already multiplied by 0.5 / n_outputs for squared error,
    so dividing it by the sample-weight sum gives scikit-learn's loss.
    """
    cdef const floating[::1] sw
    cdef const floating* swp = NULL
    cdef double total
    if not (out.shape[0] == y.shape[0] == delta_out.shape[0]
            and out.shape[1] == y.shape[1] == delta_out.shape[1]):
        raise ValueError("out, y and delta_out must have the same shape")
    if sample_weight is not None:
        sw = sample_weight
        if sw.shape[0] != out.shape[0]:
            raise ValueError("sample_weight length does not match the rows")
        if sw.shape[0] > 0:
            swp = &sw[0]
    if out.shape[0] == 0 or out.shape[1] == 0:
        return 0.0
    with nogil:
        total = _loss_delta(loss, &out[0, 0], &y[0, 0], swp, out.shape[0], out.shape[1],
                            sq_scale, huber_delta, &delta_out[0, 0])
    return total * _loss_factor(loss, out.shape[1])
