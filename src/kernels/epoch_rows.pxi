# The whole-epoch minibatch loop (train_epoch), split across threads by rows.
# Included by src/_kernels.pyx (see its Design docstring for the order).

cdef inline bint _needs_finish(const EpochArgs* E) noexcept nogil:
    # L1 and clipping need the whole finished gradient before the update.
    return E.l1 != 0 or E.clip_norm > 0 or E.clip_value > 0


cdef void _batch_rows(const EpochArgs* E, SparseRows* sp, Py_ssize_t start,
                      Py_ssize_t r0, Py_ssize_t r1, Rows* R, floating* typed) noexcept nogil:
    """Rows r0..r1 of the batch at ``start``: gathered by the permutation
    (sparse rows are read in place), or read in place in the natural order."""
    cdef const Layout* L = E.L
    cdef Py_ssize_t n0 = L.sizes[0], K = L.sizes[L.n_layers]
    cdef bint dense = E.X != NULL
    cdef floating* xbuf = <floating*> E.xbuf
    R.n = r1 - r0
    R.row0 = r0
    R.sp = NULL if dense else sp
    if E.perm != NULL:
        _gather(<const floating*> E.X, <const floating*> E.Y, <const floating*> E.sw,
                E.perm, start, r0, r1, n0, K, dense, xbuf, <floating*> E.ybuf,
                <floating*> E.swbuf)
        R.x = xbuf + r0 * n0 if dense else NULL
        R.y = <floating*> E.ybuf + r0 * K
        R.sw = <floating*> E.swbuf + r0 if E.sw != NULL else NULL
        R.ids = E.perm + start + r0
        R.first = 0
        sp.rows = E.perm + start + r0
        if dense and start + E.bs < E.n:
            _prefetch_rows(<const floating*> E.X, E.perm, start + E.bs + r0,
                           min(start + E.bs + r1, E.n), n0)
    else:
        R.x = <const floating*> E.X + (start + r0) * n0 if dense else NULL
        R.y = <const floating*> E.Y + (start + r0) * K
        R.sw = <const floating*> E.sw + start + r0 if E.sw != NULL else NULL
        R.ids = NULL
        R.first = start + r0
        sp.rows = NULL
        sp.first = start + r0


cdef double _batch_weight(const EpochArgs* E, Py_ssize_t start, Py_ssize_t rows,
                          floating* typed) noexcept nogil:
    cdef double total = 0.0
    cdef Py_ssize_t r
    if E.sw == NULL:
        return <double> rows
    cdef const floating* w = (<const floating*> E.swbuf if E.perm != NULL
                              else <const floating*> E.sw + start)
    for r in range(rows):
        total = total + w[r]
    return total


cdef void _update_share(const EpochArgs* E, EpochShared* S, const Team* T,
                        OptConfig* oc, floating* th, floating* g, Py_ssize_t b,
                        double sw_sum) noexcept nogil:
    """This thread's share of the batch's update: sum the threads' gradient
    rows over its slice of the parameters (into its own row, reading the
    others': no cache line written by two cores), finish the gradient
    (penalties, 1 / batch weight, clipping) and update the slice."""
    cdef const Layout* L = E.L
    cdef int tid = T.tid, team = T.team, k
    cdef Py_ssize_t p0 = tid * E.n_params // team, p1 = (tid + 1) * E.n_params // team, i
    cdef floating* g0 = <floating*> E.grad
    cdef floating* st[MAX_STATE]
    cdef double sq, ab, gg, coef = 1.0
    cdef floating c, lim = <floating> E.clip_value, v
    for k in range(MAX_STATE):
        st[k] = <floating*> E.st[k]
    for k in range(team):
        if k != tid:
            for i in range(p0, p1):
                g[i] = g[i] + g0[k * E.n_params + i]
    _opt_begin_step(oc)
    if E.lr_steps != NULL:
        oc.lr = E.lr_steps[b]
    if not _needs_finish(E):
        # The update finishes the gradient ((g + alpha W) / sw_sum) on the
        # fly and returns sum(W**2) before the update for the L2 term.
        S.part[MAX_THREADS + tid] = _update_span(oc, th, g, st, L.n_weights, p0, p1,
                                                 E.alpha, 1.0 / sw_sum)
        S.part[2 * MAX_THREADS + tid] = 0.0
        return
    _finish_span(L, th, g, p0, p1, E.alpha, E.l1, 1.0 / sw_sum, &sq, &ab, &gg)
    S.part[MAX_THREADS + tid] = sq
    S.part[2 * MAX_THREADS + tid] = ab
    S.part[3 * MAX_THREADS + tid] = gg
    if E.clip_norm > 0:
        # torch.nn.utils.clip_grad_norm_: the norm of the whole gradient.
        _team_wait(T)
        gg = 0.0
        for k in range(team):
            gg = gg + S.part[3 * MAX_THREADS + k]
        coef = E.clip_norm / (sqrt(gg) + 1e-6)
        if coef > 1.0:
            coef = 1.0
    if E.clip_value > 0:
        c = <floating> coef
        for i in range(p0, p1):
            v = g[i] * c if coef != 1.0 else g[i]
            g[i] = lim if v > lim else (-lim if v < -lim else v)
        coef = 1.0
    # The update multiplies the finished gradient by ``coef`` on the fly
    # ((g + 0 * W) * coef is g * coef exactly): no pass of its own.
    _update_span(oc, th, g, st, L.n_weights, p0, p1, 0.0, coef)


cdef void _epoch_thread(const EpochArgs* E, EpochShared* S, floating* th) noexcept nogil:
    """One thread's part of the epoch: per batch, walk its rows, then (after
    the barrier) its share of the update; thread 0 keeps the books."""
    cdef const Layout* L = E.L
    cdef int sense = 0, k
    cdef Team T
    cdef Rows R
    cdef Mode M
    cdef SparseRows sp = E.sp
    cdef OptConfig oc = E.oc0
    cdef Py_ssize_t b, start, rows, r0, r1, i, since_poll = 0
    cdef double sw_sum, data_loss, loss, sq, ab
    cdef floating* g
    cdef bp_fpstate fp = bp_fp_enter()      # the floating-point mode is per thread
    T.tid = bp_thread_id()
    T.team = bp_team_size()                  # OpenMP may grant fewer threads than asked
    T.bar = &S.bar
    T.sense = &sense
    T.stats = E.stats
    M.training = True
    M.update_running = True
    M.products_only = False
    M.seed = E.seed
    M.epoch = E.epoch
    M.keys = E.keys
    g = <floating*> E.grad + T.tid * E.n_params
    for b in range(E.n_batches):
        start = b * E.bs
        rows = min(E.bs, E.n - start)
        r0 = T.tid * rows // T.team
        r1 = (T.tid + 1) * rows // T.team
        T.batch_rows = rows
        _batch_rows(E, &sp, start, r0, r1, &R, th)
        if r1 > r0 or not L.plain:
            # (Batch norm's reductions need every thread at their barriers.)
            S.part[T.tid] = _walk(L, th, <floating*> E.buffers, g, E.A, &R, &T, &M, False)
        else:
            S.part[T.tid] = 0.0
            for i in range(E.n_params):
                g[i] = 0
        _team_wait(&T)
        # Every thread reads the same shared values here, so all of them
        # take the same branch: nobody is left waiting at a barrier.
        if S.status != OK:
            break
        sw_sum = _batch_weight(E, start, rows, th)
        data_loss = 0.0
        for k in range(T.team):
            data_loss = data_loss + S.part[k]
        if sw_sum > 0:
            data_loss = data_loss / sw_sum
            if not isfinite(data_loss):
                if T.tid == 0:
                    S.status = NONFINITE_LOSS
                break
            _update_share(E, S, &T, &oc, th, g, b, sw_sum)
        else:
            # All of this batch's sample weights are zero: it carries no
            # information, so it makes no update and adds nothing to the loss.
            data_loss = 0.0
            S.part[MAX_THREADS + T.tid] = 0.0
            S.part[2 * MAX_THREADS + T.tid] = 0.0
        _team_wait(&T)
        if E.max_norm > 0:
            _max_norm_share(L, th, E.max_norm, T.tid, T.team)
            _team_wait(&T)
        if T.tid == 0:
            sq = 0.0
            ab = 0.0
            for k in range(T.team):
                sq = sq + S.part[MAX_THREADS + k]
                ab = ab + S.part[2 * MAX_THREADS + k]
            loss = data_loss
            if sw_sum > 0:
                loss = loss + (0.5 * E.alpha * sq + E.l1 * ab) / sw_sum
            E.batch_loss[b] = loss
            S.n_done = b + 1
            S.oc_out = oc
            if not isfinite(loss):
                S.status = NONFINITE_LOSS
            if b + 1 < E.n_batches and _signal_raised(&since_poll, E.poll_every):
                S.interrupted = 1
                S.status = INTERRUPTED
        # The status set just above is read by everyone after the next
        # batch's first barrier (thread 0 writes it before reaching it).
    bp_fp_exit(fp)


def train_epoch(Plan layout, OptimizerConfig opt, Minibatches data,
                floating[::1] theta, floating[:, ::1] grad, floating[:, ::1] opt_state,
                int n_threads=1, bint by_units=False):
    """Run one epoch of minibatch training: gather, forward, loss, backward, update.

    Returns a ``Status``. ``data.batch_loss[b]`` holds the loss of batch ``b``
    (scikit-learn's: data loss + penalties, before the update) and
    ``data.n_done`` how many batches completed. On NONFINITE_LOSS the offending
    batch made no update. A signal handler's exception (KeyboardInterrupt) is
    raised after the kernel has restored the floating-point state.

    With ``n_threads`` > 1 (and an OpenMP build), every batch is split by rows
    across the threads: each walks its rows into its own row of ``grad``
    (shape (>= n_threads, n_params)); batch norm reduces its statistics
    across them; then each sums the gradients over its own slice of the
    parameters and updates that slice. BLAS must be single-threaded
    meanwhile (the Python layer sees to it).

    With ``by_units`` (a plain network with one hidden layer and dense X),
    the threads split the hidden units instead (see _epoch_by_units);
    ``data.work`` must then hold ``layout.units_workspace_size(batch_size,
    n_threads)``.
    """
    cdef const Layout* L = &layout.c
    cdef EpochArgs E
    cdef EpochShared S
    cdef Acts A
    cdef floating* typed = &theta[0]
    cdef floating[::1] work = data.work
    cdef floating* xbuf
    cdef floating* ybuf
    cdef floating* swbuf
    cdef Py_ssize_t r, n_params = theta.shape[0]
    cdef int status
    cdef floating* st[MAX_STATE]
    _epoch_args(L, opt, data, theta, grad, &E, &A)
    _state_pointers(opt, opt_state, n_params, st)
    for r in range(MAX_STATE):
        E.st[r] = st[r]
    n_threads = max(1, min(n_threads, MAX_THREADS, E.bs, grad.shape[0]))
    if not BP_OPENMP:
        n_threads = 1
    E.n_threads = n_threads
    S.status = OK
    S.interrupted = 0
    S.n_done = 0
    S.oc_out = opt.c
    bp_barrier_init(&S.bar)
    if by_units:
        _check_units(L, &E, opt, work.shape[0])
        E.n_threads = max(1, min(n_threads, L.sizes[1]))
        with nogil:
            status = _epoch_by_units(&E, &S, typed, &work[0])
    else:
        if work.shape[0] < _workspace_size(L, E.bs):
            raise ValueError("workspace too small: %d < %d"
                             % (work.shape[0], _workspace_size(L, E.bs)))
        if L.has_bn:
            _check_stats(L, data.stats, n_threads, &E.stats)
        _carve(L, &work[0], E.bs, True, &xbuf, &ybuf, &swbuf, &A)
        E.xbuf = xbuf
        E.ybuf = ybuf
        E.swbuf = swbuf
        with nogil, parallel(num_threads=n_threads):
            _epoch_thread(&E, &S, typed)
        status = <int> S.status
    opt.c = S.oc_out
    data.n_done = S.n_done
    if S.interrupted:
        _reraise()
    if status == OK:
        for r in range(n_params):
            if not isfinite(theta[r]):
                return NONFINITE_PARAMS
    return status
