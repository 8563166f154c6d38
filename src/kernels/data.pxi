# Driver plumbing: input binding, minibatch data, threads, signals, gather.
# Included by src/_kernels.pyx (see its Design docstring for the order).

# ---------------------------------------------------------------------------
# 7. Drivers
# ---------------------------------------------------------------------------

cdef struct EpochArgs:
    # What every thread of one epoch reads; set once before the parallel block.
    const Layout* L
    const void* X            # dense X, or NULL (sparse: sp)
    SparseRows sp
    const void* Y
    const void* sw           # sample weights, or NULL
    const Py_ssize_t* perm   # row order, or NULL (natural order)
    const uint64_t* keys     # each row's sample for dropout (row_keys), or NULL
    void* grad               # one row of n_params per thread
    void* st[MAX_STATE]      # optimizer state
    void* buffers            # batch norm's running statistics
    void* xbuf
    void* ybuf
    void* swbuf
    Acts* A
    double* stats            # batch-norm scratch (stats_per_thread per thread)
    double* batch_loss
    const double* lr_steps   # the rate of every batch, or NULL (keep the config's)
    Py_ssize_t n, bs, n_batches, n_params, poll_every
    int n_threads
    double alpha, l1, max_norm, clip_norm, clip_value
    unsigned long long seed, epoch
    OptConfig oc0


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


cdef int _reraise() except -1:
    # Called with an exception pending (set by PyErr_CheckSignals): returning
    # the error value makes Cython propagate that exception.
    return -1


cdef int _check_data(const Layout* L, Py_ssize_t x_rows, Py_ssize_t x_cols,
                     Py_ssize_t y_rows, Py_ssize_t y_cols, Py_ssize_t params) except -1:
    if x_cols != L.sizes[0]:
        raise ValueError("X has %d features, the network expects %d" % (x_cols, L.sizes[0]))
    if y_rows != x_rows:
        raise ValueError("X has %d rows but Y has %d" % (x_rows, y_rows))
    if y_cols != L.sizes[L.n_layers]:
        raise ValueError("Y has %d columns, the network has %d outputs"
                         % (y_cols, L.sizes[L.n_layers]))
    if params != L.n_params:
        raise ValueError("params has %d entries, the layout needs %d" % (params, L.n_params))
    return 0


cdef int _bind_input(object X, const floating** dense, SparseRows* sp, bint* is_sparse,
                     Py_ssize_t* n_rows, Py_ssize_t* n_cols) except -1:
    """Pointers for an input that is a dense C-contiguous array or a CSRInput.

    The pointers stay valid while the caller holds ``X``.
    """
    cdef const floating[:, ::1] xd
    cdef const floating[::1] data
    cdef const Py_ssize_t[::1] ind
    cdef const Py_ssize_t[::1] ptr
    cdef CSRInput c
    if isinstance(X, CSRInput):
        c = X
        data = c.data
        ind = c.indices
        ptr = c.indptr
        sp.data = <const void*> &data[0] if data.shape[0] > 0 else NULL
        sp.indices = &ind[0] if ind.shape[0] > 0 else NULL
        sp.indptr = &ptr[0]
        sp.rows = NULL
        sp.first = 0
        dense[0] = NULL
        is_sparse[0] = True
        n_rows[0] = c.n_rows
        n_cols[0] = c.n_cols
    else:
        xd = X
        dense[0] = &xd[0, 0] if xd.shape[0] > 0 and xd.shape[1] > 0 else NULL
        is_sparse[0] = False
        n_rows[0] = xd.shape[0]
        n_cols[0] = xd.shape[1]
    return 0


cdef class Minibatches:
    """One epoch's data and training settings, as the drivers read them.

    ``X`` is a C-contiguous array or a ``CSRInput``. ``perm`` (intp, or None
    for the natural order) gives the row order; batches are consecutive slices
    of it of ``batch_size`` rows, the last one shorter. ``work`` is a scratch
    buffer of at least ``layout.workspace_size(batch_size)`` entries and
    ``batch_loss`` receives each batch's loss.

    The remaining attributes default to a plain epoch: ``buffers`` (the
    network's non-trainable buffer; needed with batch norm), ``stats``
    (float64 scratch of ``layout.stats_size(n_threads)``), ``keys``
    (``row_keys(X)``; needed with dropout), ``seed`` and
    ``epoch`` (dropout masks), ``l1``, ``max_norm``, ``clip_norm``,
    ``clip_value`` (0: off) and ``lr_steps`` (float64, the learning rate of
    every batch of the epoch, or None to keep the optimizer's).
    """
    cdef public object X, Y, sample_weight, perm, work, batch_loss
    cdef public object buffers, stats, lr_steps, keys
    cdef public Py_ssize_t batch_size, n_done
    cdef public double alpha, l1, max_norm, clip_norm, clip_value
    cdef public unsigned long long seed, epoch

    def __init__(self, X, Y, sample_weight, perm, Py_ssize_t batch_size, double alpha,
                 work, batch_loss):
        self.X = X
        self.Y = Y
        self.sample_weight = sample_weight
        self.perm = perm
        self.batch_size = batch_size
        self.alpha = alpha
        self.work = work
        self.batch_loss = batch_loss
        self.n_done = 0
        self.buffers = None
        self.stats = None
        self.lr_steps = None
        self.keys = None
        self.l1 = 0.0
        self.max_norm = 0.0
        self.clip_norm = 0.0
        self.clip_value = 0.0
        self.seed = 0
        self.epoch = 0


cdef int _check_stats(const Layout* L, object stats, Py_ssize_t team,
                      double** out) except -1:
    cdef double[::1] st
    if stats is None:
        raise ValueError("a network with batch norm needs data.stats "
                         "(layout.stats_size(n_threads) float64 entries)")
    st = stats
    if st.shape[0] < L.stats_per_thread * team:
        raise ValueError("data.stats too small: %d < %d"
                         % (st.shape[0], L.stats_per_thread * team))
    out[0] = &st[0]
    return 0


cdef int _bind_buffers(const Layout* L, object buffers, floating** out,
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
        raise ValueError("buffers has %d entries, the plan needs %d"
                         % (bf.shape[0], L.n_buffers))
    out[0] = &bf[0]
    return 0


cdef int _epoch_args(const Layout* L, OptimizerConfig opt, Minibatches data,
                     floating[::1] theta, floating[:, ::1] grad, EpochArgs* E,
                     Acts* A) except -1:
    """Check one epoch's inputs and fill E (pointers stay valid while ``data``,
    ``theta`` and ``grad`` are held)."""
    cdef const floating[:, ::1] Y = data.Y
    cdef const floating[::1] sw
    cdef const Py_ssize_t[::1] perm
    cdef double[::1] batch_loss = data.batch_loss
    cdef const double[::1] lr
    cdef const uint64_t[::1] keys
    cdef const floating* Xp
    cdef floating* bufp
    cdef bint is_sparse
    cdef Py_ssize_t n, n_cols, r, n_params = theta.shape[0], bs = data.batch_size
    _bind_input(data.X, &Xp, &E.sp, &is_sparse, &n, &n_cols)
    _check_data(L, n, n_cols, Y.shape[0], Y.shape[1], n_params)
    if grad.shape[1] != n_params:
        raise ValueError("grad rows and params differ in length")
    if n == 0:
        raise ValueError("no samples to train on")
    if bs < 1:
        raise ValueError("batch_size must be >= 1, got %d" % bs)
    bs = min(bs, n)
    E.L = L
    E.X = Xp
    E.Y = &Y[0, 0]
    E.sw = NULL
    E.perm = NULL
    E.grad = &grad[0, 0]
    E.A = A
    E.stats = NULL
    E.n = n
    E.bs = bs
    E.n_batches = (n + bs - 1) // bs
    E.n_params = n_params
    E.poll_every = max(1, POLL_MACS // max(1, bs * L.macs_per_row))
    E.alpha = data.alpha
    E.l1 = data.l1
    E.max_norm = data.max_norm
    E.clip_norm = data.clip_norm
    E.clip_value = data.clip_value
    E.seed = data.seed
    E.epoch = data.epoch
    E.oc0 = opt.c
    E.lr_steps = NULL
    if batch_loss.shape[0] < E.n_batches:
        raise ValueError("batch_loss needs %d entries" % E.n_batches)
    E.batch_loss = &batch_loss[0]
    if data.sample_weight is not None:
        sw = data.sample_weight
        if sw.shape[0] != n:
            raise ValueError("sample_weight has %d entries, X %d rows" % (sw.shape[0], n))
        E.sw = &sw[0]
    if data.perm is not None:
        perm = data.perm
        if perm.shape[0] != n:
            raise ValueError("perm has %d entries, X %d rows" % (perm.shape[0], n))
        for r in range(n):
            if perm[r] < 0 or perm[r] >= n:
                raise ValueError("perm[%d] = %d is not a row index" % (r, perm[r]))
        E.perm = &perm[0]
    if data.lr_steps is not None:
        lr = data.lr_steps
        if lr.shape[0] < E.n_batches:
            raise ValueError("lr_steps needs one rate per batch (%d), has %d"
                             % (E.n_batches, lr.shape[0]))
        E.lr_steps = &lr[0]
    _bind_buffers(L, data.buffers, &bufp, &theta[0])
    E.buffers = bufp
    E.keys = NULL
    if L.has_dropout:
        if data.keys is None:
            raise ValueError("a network with dropout needs data.keys (row_keys(X))")
        keys = data.keys
        if keys.shape[0] != n:
            raise ValueError("keys has %d entries, X %d rows" % (keys.shape[0], n))
        E.keys = &keys[0]
    return 0


def row_keys(X):
    """The sample key of every row of ``X`` (uint64), by which dropout draws
    its masks: a hash of the row's nonzero (column, value) pairs.

    Copies of a row share its key, so they draw the same masks (as a row of
    weight w does: sample weights are repetitions, exactly); a dense row and
    its CSR form, float32 and float64, share it too. ``X`` is a C-contiguous
    float32/float64 array or a canonical ``CSRInput`` (no duplicate entries,
    as ``csr_input`` makes it). One pass over X without the GIL, in the
    kernels' floating-point mode: a subnormal value, which the kernels read
    as zero, counts as zero here too, whatever mode the caller is in.
    """
    import numpy as np
    cdef const double[:, ::1] d
    cdef const float[:, ::1] f
    cdef const double[::1] sd
    cdef const float[::1] sf
    cdef const double* vd = NULL
    cdef const float* vf = NULL
    cdef const Py_ssize_t* cols = NULL
    cdef const Py_ssize_t* rows = NULL
    cdef const Py_ssize_t[::1] ind
    cdef const Py_ssize_t[::1] ptr
    cdef CSRInput c
    cdef Py_ssize_t n, m = 0, i, a, b
    cdef uint64_t[::1] out
    if isinstance(X, CSRInput):
        c = X
        n = c.n_rows
        ind = c.indices
        ptr = c.indptr
        rows = &ptr[0]
        if ind.shape[0] > 0:
            cols = &ind[0]
            if c.data.dtype.itemsize == 8:
                sd = c.data
                vd = &sd[0]
            else:
                sf = c.data
                vf = &sf[0]
    elif X.dtype.itemsize == 8:
        d = X
        n, m = d.shape[0], d.shape[1]
        if n and m:
            vd = &d[0, 0]
    else:
        f = X
        n, m = f.shape[0], f.shape[1]
        if n and m:
            vf = &f[0, 0]
    cdef bp_fpstate fp
    out = np.zeros(n, dtype=np.uint64)
    with nogil:
        fp = bp_fp_enter()
        for i in range(n):
            if rows != NULL:
                a = rows[i]
                b = rows[i + 1]
            else:
                a = i * m
                b = a + m
            if vd != NULL:
                out[i] = bp_row_key_d(vd + a, cols + a if cols != NULL else NULL, b - a)
            elif vf != NULL:
                out[i] = bp_row_key_f(vf + a, cols + a if cols != NULL else NULL, b - a)
            else:
                out[i] = bp_row_key_d(NULL, NULL, 0)
        bp_fp_exit(fp)
    return np.asarray(out)


def max_threads():
    """Threads the epoch driver may use: OpenMP's current limit (which
    threadpoolctl sets), or 1 when the extension was built without OpenMP."""
    return bp_max_threads()


def has_openmp():
    return bool(BP_OPENMP)


cdef inline bint _signal_raised(Py_ssize_t* since_poll, Py_ssize_t poll_every) noexcept nogil:
    """Every ``poll_every``-th call, run Python's signal handlers (Ctrl-C);
    True if one raised (the exception is then pending)."""
    cdef bint raised = False
    since_poll[0] += 1
    if since_poll[0] >= poll_every:
        since_poll[0] = 0
        with gil:
            raised = PyErr_CheckSignals() != 0
    return raised


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


cdef Py_ssize_t _units_workspace_size(const Layout* L, Py_ssize_t rows,
                                      Py_ssize_t team) noexcept nogil:
    # Per thread (_epoch_by_units, carved by _units_carve): its packed
    # parameters, gradient and two optimizer states (at most n_params each),
    # its own copy of the batch (x, y, sample weights), its hidden block's
    # activations (at most H wide), the output and the hidden delta. Shared:
    # every thread's partial output product and the output delta. Every
    # block starts on its own cache lines.
    return (team * _units_thread_stride(L, rows) + (team + 1) * _units_partial_stride(L, rows)
            + PAD)


cdef inline Py_ssize_t _round_up(Py_ssize_t v) noexcept nogil:
    return (v + PAD - 1) // PAD * PAD


cdef inline Py_ssize_t _units_thread_stride(const Layout* L, Py_ssize_t rows) noexcept nogil:
    cdef Py_ssize_t n0 = L.sizes[0], H = L.sizes[1], K = L.sizes[2]
    return (4 * _round_up(L.n_params) + _round_up(rows * n0) + 2 * _round_up(rows * K)
            + _round_up(rows) + _round_up(rows * H) + _round_up(rows * max(H, K)))


cdef inline Py_ssize_t _units_partial_stride(const Layout* L, Py_ssize_t rows) noexcept nogil:
    return _round_up(rows * L.sizes[2])


# ---------------------------------------------------------------------------
# Input scan: every entry finite and within bounds, without allocating
# ---------------------------------------------------------------------------
# ``np.isfinite(X).all()`` allocates a bool array the size of X and makes two
# passes; ``train`` called in a loop scans X and Y on every call (the data may
# have been changed in place since the last one), so the scan is one
# allocation-free pass here, by blocks, stopping at the first bad block. The
# test is two ordered comparisons per entry (NaN fails both), vectorized per
# target clone; the caller finds and reports the offending entry the slow way.

from libc.float cimport DBL_MAX, FLT_MAX
from libc.math cimport INFINITY

cdef extern from *:
    """
    #define BP_SCAN_BLOCK 4096
    static BP_CLONES int bp_in_range_d(const double* x, Py_ssize_t n, double lo, double hi) {
        int ok = 1;
        for (Py_ssize_t i = 0; i < n; i++)
            ok &= (x[i] >= lo) & (x[i] <= hi);
        return ok;
    }
    static BP_CLONES int bp_in_range_f(const float* x, Py_ssize_t n, float lo, float hi) {
        int ok = 1;
        for (Py_ssize_t i = 0; i < n; i++)
            ok &= (x[i] >= lo) & (x[i] <= hi);
        return ok;
    }
    /* Finiteness alone, float64: one comparison per entry (NaN fails it);
       W5's X scanned in ~4 us against ~6 us by two. (float32 measured no
       better this way: it takes the two comparisons.) */
    static BP_CLONES int bp_finite_d(const double* x, Py_ssize_t n) {
        int ok = 1;
        for (Py_ssize_t i = 0; i < n; i++)
            ok &= fabs(x[i]) <= DBL_MAX;
        return ok;
    }
    """
    int BP_SCAN_BLOCK
    int bp_in_range_d(const double* x, Py_ssize_t n, double lo, double hi) noexcept nogil
    int bp_in_range_f(const float* x, Py_ssize_t n, float lo, float hi) noexcept nogil
    int bp_finite_d(const double* x, Py_ssize_t n) noexcept nogil


def all_in_range(a, double lo=-INFINITY, double hi=INFINITY):
    """True if every entry of ``a`` is finite and in ``[lo, hi]``.

    ``a`` is a C-contiguous 2-D float32 or float64 array. Bounds beyond the
    dtype's finite range are clipped to it, so the default bounds test
    finiteness alone. One pass without the GIL and without allocating,
    stopping at the first block of ``BP_SCAN_BLOCK`` entries that fails.
    """
    cdef const double[:, ::1] d
    cdef const float[:, ::1] f
    cdef const double* pd = NULL
    cdef const float* pf = NULL
    cdef Py_ssize_t n, s, m
    cdef int ok = 1
    cdef float lo_f, hi_f
    cdef bint finite_only = lo <= -DBL_MAX and hi >= DBL_MAX
    lo = max(lo, -DBL_MAX)
    hi = min(hi, DBL_MAX)
    if a.dtype.itemsize == 8:
        d = a
        n = d.shape[0] * d.shape[1]
        if n:
            pd = &d[0, 0]
    else:
        f = a
        n = f.shape[0] * f.shape[1]
        if n:
            pf = &f[0, 0]
    lo_f = <float> max(lo, -FLT_MAX)
    hi_f = <float> min(hi, FLT_MAX)
    with nogil:
        s = 0
        while ok and s < n:
            m = min(<Py_ssize_t> BP_SCAN_BLOCK, n - s)
            if pd != NULL:
                ok = bp_finite_d(pd + s, m) if finite_only else bp_in_range_d(pd + s, m, lo, hi)
            else:
                ok = bp_in_range_f(pf + s, m, lo_f, hi_f)
            s += m
    return bool(ok)
