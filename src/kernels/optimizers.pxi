# Optimizers over the flat parameter buffer, simplest first.
# Included by src/_kernels.pyx (see its Design docstring for the order).

# ---------------------------------------------------------------------------
# 6. Optimizers over the flat parameter buffer
# ---------------------------------------------------------------------------

cdef struct OptConfig:
    int kind
    double lr
    double momentum
    bint nesterov
    double beta_1
    double beta_2
    double epsilon
    double rho
    bint paper_adam     # Kingma & Ba's placement of epsilon instead of scikit-learn's
    long long t         # the step count (Adam's and NAdam's bias correction, Rprop's first step)
    double weight_decay # Adam: decoupled decay theta *= 1 - lr * weight_decay (weights only)
    bint amsgrad        # Adam: normalize by the running maximum of v (third state buffer)
    double momentum_decay   # NAdam's psi: mu_t = beta_1 (1 - 0.96**(t psi) / 2)
    double mu_product   # NAdam: mu_1 * ... * mu_{mu_t}
    long long mu_t      # NAdam: the step mu_product has reached (see _nadam_sync)
    double mu           # NAdam: mu_t and mu_{t+1} of the current step
    double mu_next
    double eta_minus    # Rprop: step-size factors and bounds
    double eta_plus
    double step_min
    double step_max


cdef class OptimizerConfig:
    """Hyperparameters and step count of one optimizer, as the kernels read them.

    Validation happens in the Python optimizer classes; this only carries the
    numbers. ``t`` is advanced by the kernels (one per step), and with it
    NAdam's ``mu_product``.
    """
    cdef OptConfig c

    def __cinit__(self, int kind, double lr, double momentum=0.0, bint nesterov=False,
                  double beta_1=0.9, double beta_2=0.999, double epsilon=1e-8,
                  double rho=0.9, bint paper_adam=False, long long t=0,
                  double weight_decay=0.0, bint amsgrad=False, double momentum_decay=4e-3,
                  double mu_product=1.0, etas=(0.5, 1.2), step_sizes=(1e-6, 50.0)):
        if kind < SGD or kind > RPROP:
            raise ValueError("unknown optimizer code %d" % kind)
        if (weight_decay != 0 or amsgrad) and (kind != ADAM or not paper_adam):
            raise ValueError("weight_decay and amsgrad need the paper form of Adam")
        self.c.kind = kind
        self.c.lr = lr
        self.c.momentum = momentum
        self.c.nesterov = nesterov
        self.c.beta_1 = beta_1
        self.c.beta_2 = beta_2
        self.c.epsilon = epsilon
        self.c.rho = rho
        self.c.paper_adam = paper_adam
        self.c.t = t
        self.c.weight_decay = weight_decay
        self.c.amsgrad = amsgrad
        self.c.momentum_decay = momentum_decay
        self.c.mu_product = mu_product
        self.c.mu_t = t
        self.c.mu = self.c.mu_next = 0.0
        self.c.eta_minus, self.c.eta_plus = etas
        self.c.step_min, self.c.step_max = step_sizes

    @property
    def kind(self):
        return self.c.kind

    @property
    def lr(self):
        return self.c.lr

    @lr.setter
    def lr(self, double value):
        self.c.lr = value

    @property
    def t(self):
        return self.c.t

    @t.setter
    def t(self, long long value):
        self.c.t = value

    @property
    def mu_product(self):
        """NAdam's product mu_1 * ... * mu_t at the current step count ``t``
        (1.0 for every other optimizer)."""
        _opt_sync(&self.c)
        return self.c.mu_product

    @mu_product.setter
    def mu_product(self, double value):
        # The product up to the current t (as carried by a pickle).
        self.c.mu_product = value
        self.c.mu_t = self.c.t

    @property
    def n_state(self):
        """How many parameter-sized state buffers this optimizer keeps."""
        if self.c.kind == SGD:
            return 1 if (self.c.momentum != 0 or self.c.nesterov) else 0
        if self.c.kind == ADAM:
            return 3 if self.c.amsgrad else 2
        if self.c.kind == NADAM or self.c.kind == RPROP:
            return 2
        return 1


# Every update reads the raw gradient sum ``g`` and finalizes it on the fly,
#     g' = (g + l2 * theta) * inv_scale
# (the L2 term and the division by the batch weight), so that finishing the
# gradient costs no pass of its own; each returns sum(theta**2) over its range
# (before the update) for the L2 term of the loss. With l2 = 0 and
# inv_scale = 1, g' is g exactly.

cdef double _sgd_step(const OptConfig* o, floating* theta, const floating* g,
                      floating* vel, Py_ssize_t start, Py_ssize_t end,
                      floating l2, floating inv_scale) noexcept nogil:
    # v = momentum * v - lr * g';  theta += v   (nesterov: theta += momentum * v - lr * g')
    cdef Py_ssize_t i
    cdef floating lr = <floating> o.lr, mu = <floating> o.momentum, v, t, gi
    cdef double sq = 0.0
    if vel == NULL:
        for i in range(start, end):
            t = theta[i]
            sq += <double> (t * t)
            gi = (g[i] + l2 * t) * inv_scale
            theta[i] = t - lr * gi
    elif o.nesterov:
        for i in range(start, end):
            t = theta[i]
            sq += <double> (t * t)
            gi = (g[i] + l2 * t) * inv_scale
            v = mu * vel[i] - lr * gi
            vel[i] = v
            theta[i] = t + (mu * v - lr * gi)
    else:
        for i in range(start, end):
            t = theta[i]
            sq += <double> (t * t)
            gi = (g[i] + l2 * t) * inv_scale
            v = mu * vel[i] - lr * gi
            vel[i] = v
            theta[i] = t + v
    return sq


cdef double _adam_step(const OptConfig* o, floating* theta, const floating* g,
                       floating* m, floating* v, Py_ssize_t start, Py_ssize_t end,
                       floating l2, floating inv_scale) noexcept nogil:
    # m = b1 m + (1 - b1) g';  v = b2 v + (1 - b2) g'^2, at step t = o.t (already advanced)
    # scikit-learn: theta += -lr * sqrt(1 - b2^t) / (1 - b1^t) * m / (sqrt(v) + eps)
    # paper:        theta -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
    # The loop is bp_adam_d/f in the C block (vector-width clones).
    cdef double bc1 = 1 - pow(o.beta_1, <double> o.t)
    cdef double bc2 = 1 - pow(o.beta_2, <double> o.t)
    cdef double step = -(o.lr / bc1) if o.paper_adam else -(o.lr * sqrt(bc2) / bc1)
    cdef double isb = 1 / sqrt(bc2)
    if floating is float:
        return bp_adam_f(theta, g, m, v, start, end, <float> o.beta_1, <float> o.beta_2,
                         <float> (1 - o.beta_1), <float> (1 - o.beta_2), <float> o.epsilon,
                         <float> step, <float> isb, o.paper_adam, l2, inv_scale)
    else:
        return bp_adam_d(theta, g, m, v, start, end, o.beta_1, o.beta_2,
                         1 - o.beta_1, 1 - o.beta_2, o.epsilon, step, isb, o.paper_adam,
                         l2, inv_scale)


cdef double _adamw_step(const OptConfig* o, floating* theta, const floating* g,
                        floating* m, floating* v, floating* vmax, Py_ssize_t start,
                        Py_ssize_t end, floating l2, floating inv_scale,
                        double decay) noexcept nogil:
    # torch.optim.AdamW / Adam(amsgrad=True), at step t = o.t (already advanced):
    #   theta *= decay   (1 - lr * weight_decay on weights, else 1: exact)
    #   m, v as Adam;  vhat = v, or vmax = max(vmax, v) with AMSGrad (vmax != NULL)
    #   theta -= lr / (1 - b1^t) * m / (sqrt(vhat) / sqrt(1 - b2^t) + eps)
    # The loop is bp_adamw_d/f (vector-width clones).
    cdef double bc1 = 1 - pow(o.beta_1, <double> o.t)
    cdef double bc2 = 1 - pow(o.beta_2, <double> o.t)
    cdef double step = -(o.lr / bc1)
    cdef double isb = 1 / sqrt(bc2)
    if floating is float:
        return bp_adamw_f(theta, g, m, v, vmax, start, end, <float> o.beta_1,
                          <float> o.beta_2, <float> (1 - o.beta_1), <float> (1 - o.beta_2),
                          <float> o.epsilon, <float> step, <float> isb, <float> decay,
                          l2, inv_scale)
    else:
        return bp_adamw_d(theta, g, m, v, vmax, start, end, o.beta_1, o.beta_2,
                          1 - o.beta_1, 1 - o.beta_2, o.epsilon, step, isb, decay,
                          l2, inv_scale)


cdef double _nadam_step(const OptConfig* o, floating* theta, const floating* g,
                        floating* m, floating* v, Py_ssize_t start, Py_ssize_t end,
                        floating l2, floating inv_scale) noexcept nogil:
    # torch.optim.NAdam at step t = o.t, with mu = o.mu, mu_next = o.mu_next and
    # o.mu_product = mu_1 ... mu_t (set by _opt_begin_step):
    #   m, v as Adam;  d = sqrt(v / (1 - b2^t)) + eps
    #   theta -= lr (1 - mu) / (1 - mu_product) * g' / d
    #          + lr mu_next / (1 - mu_product mu_next) * m / d     (bp_nadam_d/f)
    cdef double bc2 = 1 - pow(o.beta_2, <double> o.t)
    cdef double cg = -o.lr * (1.0 - o.mu) / (1.0 - o.mu_product)
    cdef double cm = (-o.lr * o.mu_next) / (1.0 - o.mu_product * o.mu_next)
    if floating is float:
        return bp_nadam_f(theta, g, m, v, start, end, <float> o.beta_1, <float> o.beta_2,
                          <float> (1 - o.beta_1), <float> (1 - o.beta_2), <float> o.epsilon,
                          <float> (1 / bc2), <float> cg, <float> cm, l2, inv_scale)
    else:
        return bp_nadam_d(theta, g, m, v, start, end, o.beta_1, o.beta_2, 1 - o.beta_1,
                          1 - o.beta_2, o.epsilon, 1 / bc2, cg, cm, l2, inv_scale)


cdef double _rprop_step(const OptConfig* o, floating* theta, const floating* g,
                        floating* prev, floating* size, Py_ssize_t start, Py_ssize_t end,
                        floating l2, floating inv_scale) noexcept nogil:
    # torch.optim.Rprop (bp_rprop_d/f): per-parameter step sizes, lr at step 1,
    #   size *= eta_plus / eta_minus / 1 where g' * prev > 0 / < 0 / = 0, clamped
    #   g' = 0 where g' * prev < 0;  theta -= sign(g') * size;  prev = g'
    if floating is float:
        return bp_rprop_f(theta, g, prev, size, start, end, <float> o.eta_minus,
                          <float> o.eta_plus, <float> o.step_min, <float> o.step_max,
                          o.t == 1, <float> o.lr, l2, inv_scale)
    else:
        return bp_rprop_d(theta, g, prev, size, start, end, o.eta_minus, o.eta_plus,
                          o.step_min, o.step_max, o.t == 1, o.lr, l2, inv_scale)


cdef double _rmsprop_step(const OptConfig* o, floating* theta, const floating* g,
                          floating* v, Py_ssize_t start, Py_ssize_t end,
                          floating l2, floating inv_scale) noexcept nogil:
    # v = rho v + (1 - rho) g'^2;  theta -= lr g' / (sqrt(v) + eps)   (bp_rmsprop_d/f)
    if floating is float:
        return bp_rmsprop_f(theta, g, v, start, end, <float> o.rho, <float> (1 - o.rho),
                            <float> o.lr, <float> o.epsilon, l2, inv_scale)
    else:
        return bp_rmsprop_d(theta, g, v, start, end, o.rho, 1 - o.rho, o.lr, o.epsilon,
                            l2, inv_scale)


cdef double _adagrad_step(const OptConfig* o, floating* theta, const floating* g,
                          floating* acc, Py_ssize_t start, Py_ssize_t end,
                          floating l2, floating inv_scale) noexcept nogil:
    # G += g'^2;  theta -= lr g' / (sqrt(G) + eps): RMSProp's kernel with
    # rho = c = 1, bitwise the same (1 * G and 1 * g'^2 are exact).
    if floating is float:
        return bp_rmsprop_f(theta, g, acc, start, end, 1.0, 1.0, <float> o.lr,
                            <float> o.epsilon, l2, inv_scale)
    else:
        return bp_rmsprop_d(theta, g, acc, start, end, 1.0, 1.0, o.lr, o.epsilon, l2,
                            inv_scale)


# The interface every driver uses (the epoch kernels, the floor, optimizer_step):
#   _opt_begin_step(o)      once per optimizer step, before any _update_span of
#                           that step (advances t and any other per-step scalar
#                           state kept in OptConfig; every thread calls it on its
#                           own copy of the config, so all copies agree);
#   _opt_sync(o)            after writing back a thread's t into the shared
#                           config (the rest of the per-step state follows);
#   _update_span(o, ...)    the update of parameters [start, end), which may be
#                           any slice of the flat buffer (a thread's share):
#                           weights [0, n_weights) get the L2 term (and any
#                           decoupled decay), everything after them does not.
# State buffers are MAX_STATE pointers (NULL where the optimizer keeps fewer),
# each laid out like the parameters.
DEF MAX_STATE = 3


cdef inline double _nadam_mu(const OptConfig* o, long long t) noexcept nogil:
    # NAdam's momentum schedule, as torch: beta_1 (1 - 0.5 * 0.96**(t psi))
    return o.beta_1 * (1.0 - 0.5 * pow(0.96, <double> t * o.momentum_decay))


cdef inline void _nadam_sync(OptConfig* o) noexcept nogil:
    # Bring mu_product to step t, multiplying in order as torch does (so a
    # product caught up over several steps is bitwise the one built step by
    # step). A driver that writes back only t leaves mu_product behind; the
    # next step catches up. A t moved back (reset) restarts the product.
    if o.mu_t > o.t:
        o.mu_t = 0
        o.mu_product = 1.0
    while o.mu_t < o.t:
        o.mu_t += 1
        o.mu_product = o.mu_product * _nadam_mu(o, o.mu_t)


cdef inline void _opt_sync(OptConfig* o) noexcept nogil:
    """Bring the per-step scalar state (NAdam's mu_product) up to ``o.t``.

    A driver that copies the config per thread and writes back only ``t``
    calls this after: one multiplication per step of the run, in order.
    Without it the next step still catches up, but over every step since the
    product was last written back.
    """
    if o.kind == NADAM:
        _nadam_sync(o)


cdef inline void _opt_begin_step(OptConfig* o) noexcept nogil:
    o.t += 1
    if o.kind == NADAM:
        _nadam_sync(o)
        o.mu = _nadam_mu(o, o.t)
        o.mu_next = _nadam_mu(o, o.t + 1)


cdef double _update_range(const OptConfig* o, floating* theta, const floating* g,
                          floating** st, Py_ssize_t start, Py_ssize_t end,
                          floating l2, floating inv_scale, bint weights) noexcept nogil:
    """Update [start, end) of one kind: weights (``weights``) or not."""
    cdef double decay = 1.0 - o.lr * o.weight_decay if weights else 1.0
    if o.kind == SGD:
        return _sgd_step(o, theta, g, st[0], start, end, l2, inv_scale)
    elif o.kind == ADAM:
        if decay == 1.0 and not o.amsgrad:
            return _adam_step(o, theta, g, st[0], st[1], start, end, l2, inv_scale)
        return _adamw_step(o, theta, g, st[0], st[1], st[2] if o.amsgrad else NULL,
                           start, end, l2, inv_scale, decay)
    elif o.kind == RMSPROP:
        return _rmsprop_step(o, theta, g, st[0], start, end, l2, inv_scale)
    elif o.kind == ADAGRAD:
        return _adagrad_step(o, theta, g, st[0], start, end, l2, inv_scale)
    elif o.kind == NADAM:
        return _nadam_step(o, theta, g, st[0], st[1], start, end, l2, inv_scale)
    else:
        return _rprop_step(o, theta, g, st[0], st[1], start, end, l2, inv_scale)


cdef double _update_span(const OptConfig* o, floating* theta, const floating* g,
                         floating** st, Py_ssize_t n_weights,
                         Py_ssize_t start, Py_ssize_t end, double alpha,
                         double inv_scale) noexcept nogil:
    """Update parameters start..end-1 (weights get the L2 term and any decoupled
    decay, everything after them neither).

    Returns sum(theta**2) over the weights in the span, before the update.
    """
    cdef double sq = 0.0
    if start < n_weights:
        sq = _update_range(o, theta, g, st, start, min(end, n_weights),
                           <floating> alpha, <floating> inv_scale, True)
    if end > n_weights:
        _update_range(o, theta, g, st, max(start, n_weights), end, 0,
                      <floating> inv_scale, False)
    return sq


cdef double _optimizer_step(OptConfig* o, floating* theta, const floating* g,
                            floating** st, Py_ssize_t n_weights,
                            Py_ssize_t n, double alpha, double inv_scale) noexcept nogil:
    """One update of all n parameters from the raw gradient sums ``g``.

    The first ``n_weights`` entries get the L2 term ``alpha * theta``; all are
    scaled by ``inv_scale``. Returns sum(theta[:n_weights]**2) before the update.
    """
    _opt_begin_step(o)
    return _update_span(o, theta, g, st, n_weights, 0, n, alpha, inv_scale)


cdef int _state_pointers(OptimizerConfig opt, floating[:, ::1] state, Py_ssize_t n,
                         floating** st) except -1:
    """st[k] = &state[k, 0] for the optimizer's n_state buffers, NULL after."""
    cdef Py_ssize_t need = opt.n_state, k
    if need > MAX_STATE:
        raise ValueError("an optimizer keeps at most %d state buffers" % MAX_STATE)
    if state.shape[0] < need or (need > 0 and state.shape[1] != n):
        raise ValueError("optimizer state must have shape (%d, %d), got (%d, %d)"
                         % (need, n, state.shape[0], state.shape[1]))
    for k in range(MAX_STATE):
        st[k] = &state[k, 0] if k < need else NULL
    return 0


def optimizer_step(OptimizerConfig opt, floating[::1] theta, const floating[::1] grad,
                   floating[:, ::1] state, Py_ssize_t n_weights=-1):
    """One update of ``theta`` in place from ``grad``; ``state`` is (n_state, n).

    ``theta[:n_weights]`` are weights (AdamW decays them), the rest not;
    -1: all are weights.
    """
    cdef floating* st[MAX_STATE]
    cdef Py_ssize_t n = theta.shape[0]
    cdef bp_fpstate fp
    if grad.shape[0] != n:
        raise ValueError("grad has %d entries, params %d" % (grad.shape[0], n))
    if n_weights == -1:
        n_weights = n
    if n_weights < 0 or n_weights > n:
        raise ValueError("n_weights must be in [0, %d], got %d" % (n, n_weights))
    _state_pointers(opt, state, n, st)
    if n == 0:
        return
    with nogil:
        fp = bp_fp_enter()
        _optimizer_step(&opt.c, &theta[0], &grad[0], st, n_weights, n, 0.0, 1.0)
        bp_fp_exit(fp)
