# Epoch settings by role, as both epoch drivers read them, and the gather.
# Included by src/_kernels.pyx (see its Design docstring for the order).

# ---------------------------------------------------------------------------
# 8. Drivers
# ---------------------------------------------------------------------------
#
# One epoch's settings come in three records, each with its Python face
# (a small extension class) and its C view (a struct filled once, before the
# threads start, by one _bind_* function):
#
#   Minibatches -> Batches   the batches a driver walks: rows of X, Y and
#                            the sample weights in perm's order, batch_size
#                            at a time, their dropout keys, and where each
#                            batch's loss goes.
#   StepRules   -> Rules     the rules applied at every step: the L2 and L1
#                            penalties, the max-norm constraint, gradient
#                            clipping and the schedule's rates.
#   Workspace   -> Scratch   memory the epoch writes before it reads.
#
# Adding a rule touches Rules and StepRules (one record: its field, with
# _bind_rules copying it) and one function: _update_share (epoch_rows.pxi)
# applies the gradient rules, the driver loop the constraints; if the unit
# split cannot apply it, _units_refusal (epoch_units.pxi) says so.


cdef struct Batches:
    # The C view of a Minibatches (_bind_batches).
    const void* X            # dense X, or NULL (sparse: sp)
    SparseRows sp
    const void* Y
    const void* sw           # sample weights, or NULL
    const Py_ssize_t* perm   # row order, or NULL (natural order)
    const uint64_t* keys     # each row's sample for dropout (row_keys), or NULL
    unsigned long long seed, epoch     # dropout masks
    Py_ssize_t n, bs, n_batches
    Py_ssize_t poll_every    # batches between two polls for signals
    double* batch_loss       # out: the loss of every batch


cdef struct Rules:
    # The C view of a StepRules (_bind_rules); 0 turns a rule off.
    double alpha, l1         # L2 and L1 strengths (on the weights)
    double max_norm          # max-norm constraint on each unit's incoming weights
    double clip_norm, clip_value
    const double* lr_steps   # the rate of every batch, or NULL (keep the config's)


cdef struct Scratch:
    # The C view of a Workspace, carved for the row split (train_epoch).
    void* grad               # one row of n_params per thread
    void* xbuf
    void* ybuf
    void* swbuf
    Acts* A
    double* stats            # batch-norm scratch (stats_per_thread per thread)


cdef struct EpochArgs:
    # What every thread of one epoch reads; set once before the parallel block.
    const CLayout* L
    Batches B
    Rules R
    Scratch W
    OptConfig oc0            # the optimizer's config at the start of the epoch
    void* st[MAX_STATE]      # optimizer state
    void* buffers            # batch norm's running statistics
    Py_ssize_t n_params
    int n_threads


cdef struct EpochShared:
    # Written by the threads, each value read only after a barrier that
    # follows its write: part[k * MAX_THREADS + tid] holds thread tid's data
    # loss (k = 0), sum(W**2) (1), sum(|W|) (2) and sum(g'**2) (3).
    double part[4 * MAX_THREADS]
    Py_ssize_t status        # stops the epoch (read by all after a barrier)
    Py_ssize_t interrupted
    Py_ssize_t n_done
    OptConfig oc_out         # thread 0's optimizer config after the last step
    bp_barrier_t bar


cdef inline bint _rules_need_finish(const Rules* R) noexcept nogil:
    # L1 and clipping need the whole finished gradient before the update.
    return R.l1 != 0 or R.clip_norm > 0 or R.clip_value > 0


cdef class StepRules:
    """The rules an epoch applies at every step, 0 (or None) for off.

    ``alpha`` (L2) and ``l1``: penalties on the weights (``params[:n_weights]``),
    added to the gradient and to the loss; ``max_norm``: each unit's incoming
    weights rescaled to at most this L2 norm after the update; ``clip_norm``
    (the whole gradient's norm, as torch's ``clip_grad_norm_``) and
    ``clip_value`` (each entry); ``lr_steps`` (float64, the learning rate of
    every batch of the epoch, or None to keep the optimizer's).
    """
    cdef public double alpha, l1, max_norm, clip_norm, clip_value
    cdef public object lr_steps

    def __init__(self, double alpha=0.0, double l1=0.0, double max_norm=0.0,
                 double clip_norm=0.0, double clip_value=0.0, lr_steps=None):
        self.alpha = alpha
        self.l1 = l1
        self.max_norm = max_norm
        self.clip_norm = clip_norm
        self.clip_value = clip_value
        self.lr_steps = lr_steps


cdef class Workspace:
    """Scratch an epoch writes before it reads: ``work`` (the network's dtype,
    at least ``layout.workspace_size(batch_size)`` entries, or
    ``layout.units_workspace_size(batch_size, n_threads)`` for the unit
    split) and ``stats`` (float64, ``layout.stats_size(n_threads)``; needed
    with batch norm)."""
    cdef public object work, stats

    def __init__(self, work, stats=None):
        self.work = work
        self.stats = stats


cdef class Minibatches:
    """The batches of one epoch, as the drivers walk them.

    ``X`` is a C-contiguous array or a ``CSRInput``. ``perm`` (intp, or None
    for the natural order) gives the row order; batches are consecutive slices
    of it of ``batch_size`` rows, the last one shorter. ``batch_loss``
    receives each batch's loss and ``n_done`` how many batches completed.
    ``keys`` (``row_keys(X)``; needed with dropout), ``seed`` and ``epoch``
    draw the dropout masks.

    ``rules`` (a ``StepRules``; ``alpha`` sets its L2 strength, the other
    rules start off) and ``workspace`` (a ``Workspace`` over ``work``) are
    the epoch's other two records.
    """
    cdef public object X, Y, sample_weight, perm, keys, batch_loss
    cdef public Py_ssize_t batch_size, n_done
    cdef public unsigned long long seed, epoch
    cdef public StepRules rules
    cdef public Workspace workspace

    def __init__(self, X, Y, sample_weight, perm, Py_ssize_t batch_size, double alpha,
                 work, batch_loss):
        self.X = X
        self.Y = Y
        self.sample_weight = sample_weight
        self.perm = perm
        self.batch_size = batch_size
        self.batch_loss = batch_loss
        self.n_done = 0
        self.keys = None
        self.seed = 0
        self.epoch = 0
        self.rules = StepRules(alpha)
        self.workspace = Workspace(work)


cdef int _bind_batches(const CLayout* L, Minibatches data, Py_ssize_t n_params,
                       Batches* B, const floating* like) except -1:
    """Check the batches against the layout and fill B (pointers stay valid
    while ``data`` is held; ``like`` only fixes the type)."""
    cdef const floating[:, ::1] Y = data.Y
    cdef const floating[::1] sw
    cdef const Py_ssize_t[::1] perm
    cdef double[::1] batch_loss = data.batch_loss
    cdef const uint64_t[::1] keys
    cdef const floating* Xp
    cdef bint is_sparse
    cdef Py_ssize_t n, n_cols, r, bs = data.batch_size
    _bind_input(data.X, &Xp, &B.sp, &is_sparse, &n, &n_cols)
    _check_data(L, n, n_cols, Y.shape[0], Y.shape[1], n_params)
    if n == 0:
        raise ValueError("no samples to train on")
    if bs < 1:
        raise ValueError("batch_size must be >= 1, got %d" % bs)
    B.X = Xp
    B.Y = &Y[0, 0]
    B.n = n
    B.bs = min(bs, n)
    B.n_batches = (n + B.bs - 1) // B.bs
    B.poll_every = max(1, POLL_MACS // max(1, B.bs * L.macs_per_row))
    B.seed = data.seed
    B.epoch = data.epoch
    if batch_loss.shape[0] < B.n_batches:
        raise ValueError("batch_loss needs %d entries" % B.n_batches)
    B.batch_loss = &batch_loss[0]
    B.sw = NULL
    if data.sample_weight is not None:
        sw = data.sample_weight
        if sw.shape[0] != n:
            raise ValueError("sample_weight has %d entries, X %d rows" % (sw.shape[0], n))
        B.sw = &sw[0]
    B.perm = NULL
    if data.perm is not None:
        perm = data.perm
        if perm.shape[0] != n:
            raise ValueError("perm has %d entries, X %d rows" % (perm.shape[0], n))
        for r in range(n):
            if perm[r] < 0 or perm[r] >= n:
                raise ValueError("perm[%d] = %d is not a row index" % (r, perm[r]))
        B.perm = &perm[0]
    B.keys = NULL
    if L.has_dropout:
        if data.keys is None:
            raise ValueError("a network with dropout needs data.keys (row_keys(X))")
        keys = data.keys
        if keys.shape[0] != n:
            raise ValueError("keys has %d entries, X %d rows" % (keys.shape[0], n))
        B.keys = &keys[0]
    return 0


cdef int _bind_rules(StepRules rules, Py_ssize_t n_batches, Rules* R) except -1:
    """Fill R (``lr_steps`` stays valid while ``rules`` is held)."""
    cdef const double[::1] lr
    R.alpha = rules.alpha
    R.l1 = rules.l1
    R.max_norm = rules.max_norm
    R.clip_norm = rules.clip_norm
    R.clip_value = rules.clip_value
    R.lr_steps = NULL
    if rules.lr_steps is not None:
        lr = rules.lr_steps
        if lr.shape[0] < n_batches:
            raise ValueError("lr_steps needs one rate per batch (%d), has %d"
                             % (n_batches, lr.shape[0]))
        R.lr_steps = &lr[0]
    return 0


cdef int _epoch_args(const CLayout* L, OptimizerConfig opt, Minibatches data,
                     floating[::1] theta, floating[:, ::1] grad, floating[:, ::1] opt_state,
                     object buffers, EpochArgs* E) except -1:
    """Check one epoch's inputs and fill E but its scratch (pointers stay
    valid while the arguments are held)."""
    cdef floating* bufp
    cdef floating* st[MAX_STATE]
    cdef Py_ssize_t k, n_params = theta.shape[0]
    _bind_batches(L, data, n_params, &E.B, &theta[0])
    if grad.shape[1] != n_params:
        raise ValueError("grad rows and params differ in length")
    _bind_rules(data.rules, E.B.n_batches, &E.R)
    _bind_buffers(L, buffers, &bufp, &theta[0])
    _state_pointers(opt, opt_state, n_params, st)
    E.L = L
    E.n_params = n_params
    E.oc0 = opt.c
    E.buffers = bufp
    E.W.grad = &grad[0, 0]
    E.W.stats = NULL
    for k in range(MAX_STATE):
        E.st[k] = st[k]
    return 0


cdef int _check_stats(const CLayout* L, object stats, Py_ssize_t team,
                      double** out) except -1:
    cdef double[::1] st
    if stats is None:
        raise ValueError("a network with batch norm needs data.workspace.stats "
                         "(layout.stats_size(n_threads) float64 entries)")
    st = stats
    if st.shape[0] < L.stats_per_thread * team:
        raise ValueError("data.workspace.stats too small: %d < %d"
                         % (st.shape[0], L.stats_per_thread * team))
    out[0] = &st[0]
    return 0


cdef int _bind_buffers(const CLayout* L, object buffers, floating** out,
                       floating* typed) except -1:
    cdef floating[::1] bf
    out[0] = NULL
    if L.n_buffers == 0:
        return 0
    if buffers is None:
        raise ValueError("a network with batch norm needs its buffers "
                         "(%d running statistics)" % L.n_buffers)
    bf = buffers
    if bf.shape[0] != L.n_buffers:
        raise ValueError("buffers has %d entries, the layout needs %d"
                         % (bf.shape[0], L.n_buffers))
    out[0] = &bf[0]
    return 0


cdef inline void _gather(const floating* X, const floating* Y, const floating* sw,
                         const Py_ssize_t* perm, Py_ssize_t first, Py_ssize_t r0,
                         Py_ssize_t r1, Py_ssize_t n0, Py_ssize_t n_out, bint dense_x,
                         floating* xbuf, floating* ybuf, floating* swbuf) noexcept nogil:
    """Copy rows perm[first + r] (r in r0..r1-1) of X, Y, sw into row r of the buffers.

    While copying row r it asks for row r + GATHER_AHEAD, so the scattered
    rows arrive a few at a time: prefetching a whole batch at once filled the
    line-fill buffers and stalled (perf: 4% of a W2 epoch on the prefetch
    instructions). _prefetch_rows asks for the first GATHER_AHEAD rows of the
    next batch a batch in advance."""
    cdef Py_ssize_t r, src
    for r in range(r0, r1):
        src = perm[first + r]
        if dense_x:
            if r + GATHER_AHEAD < r1:
                _prefetch_row(X + perm[first + r + GATHER_AHEAD] * n0, n0)
            memcpy(xbuf + r * n0, X + src * n0, n0 * sizeof(floating))
        memcpy(ybuf + r * n_out, Y + src * n_out, n_out * sizeof(floating))
        if sw != NULL:
            swbuf[r] = sw[src]


cdef inline void _prefetch_row(const floating* row, Py_ssize_t n0) noexcept nogil:
    cdef Py_ssize_t c = 0
    while c < n0 and c < PREFETCH_ROW:
        bp_prefetch(row + c)
        c += CACHE_LINE // sizeof(floating)


cdef inline void _prefetch_rows(const floating* X, const Py_ssize_t* perm, Py_ssize_t r0,
                                Py_ssize_t r1, Py_ssize_t n0) noexcept nogil:
    # The first rows of the next batch; _gather asks for the rest as it goes.
    cdef Py_ssize_t r
    for r in range(r0, min(r1, r0 + GATHER_AHEAD)):
        _prefetch_row(X + perm[r] * n0, n0)
