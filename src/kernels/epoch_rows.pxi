# The whole-epoch minibatch loop (train_epoch), split across threads by rows.
# Included by src/_kernels.pyx (see its Design docstring for the order).

cdef void _batch_rows(const EpochArgs* E, SparseRows* sp, Py_ssize_t start,
                      Py_ssize_t r0, Py_ssize_t r1, Rows* R, floating* typed) noexcept nogil:
    """Rows r0..r1 of the batch at ``start``: gathered by the permutation
    (sparse rows are read in place), or read in place in the natural order."""
    cdef const CLayout* L = E.L
    cdef Py_ssize_t n0 = L.sizes[0], K = L.sizes[L.n_layers]
    cdef const Batches* B = &E.B
    cdef bint dense = B.X != NULL
    cdef floating* xbuf = <floating*> E.W.xbuf
    R.n = r1 - r0
    R.row0 = r0
    R.sp = NULL if dense else sp
    if B.perm != NULL:
        _gather(<const floating*> B.X, <const floating*> B.Y, <const floating*> B.sw,
                B.perm, start, r0, r1, n0, K, dense, xbuf, <floating*> E.W.ybuf,
                <floating*> E.W.swbuf)
        R.x = xbuf + r0 * n0 if dense else NULL
        R.y = <floating*> E.W.ybuf + r0 * K
        R.sw = <floating*> E.W.swbuf + r0 if B.sw != NULL else NULL
        R.ids = B.perm + start + r0
        R.first = 0
        sp.rows = B.perm + start + r0
        if dense and start + B.bs < B.n:
            _prefetch_rows(<const floating*> B.X, B.perm, start + B.bs + r0,
                           min(start + B.bs + r1, B.n), n0)
    else:
        R.x = <const floating*> B.X + (start + r0) * n0 if dense else NULL
        R.y = <const floating*> B.Y + (start + r0) * K
        R.sw = <const floating*> B.sw + start + r0 if B.sw != NULL else NULL
        R.ids = NULL
        R.first = start + r0
        sp.rows = NULL
        sp.first = start + r0


cdef double _batch_weight(const EpochArgs* E, Py_ssize_t start, Py_ssize_t rows,
                          const floating* like) noexcept nogil:
    # The batch's sample weights: gathered, or in place in the natural order.
    if E.B.sw == NULL:
        return <double> rows
    return _weight_total(<const floating*> E.W.swbuf if E.B.perm != NULL
                         else <const floating*> E.B.sw + start, rows)


cdef void _update_share(const EpochArgs* E, EpochShared* S, const Team* T,
                        OptConfig* oc, floating* th, floating* g, Py_ssize_t b,
                        double sw_sum) noexcept nogil:
    """This thread's share of the batch's update: sum the threads' gradient
    rows over its slice of the parameters (into its own row, reading the
    others': no cache line written by two cores), finish the gradient by
    the rules (penalties, 1 / batch weight, clipping) and update the slice.
    Leaves its shares of sum(W**2) and sum(|W|) in S.part (batch_end.pxi)."""
    cdef const CLayout* L = E.L
    cdef const Rules* R = &E.R
    cdef int tid = T.tid, team = T.team, k
    cdef Py_ssize_t p0 = tid * E.n_params // team, p1 = (tid + 1) * E.n_params // team, i
    cdef floating* g0 = <floating*> E.W.grad
    cdef floating* st[MAX_STATE]
    cdef double sq, ab, gg, coef = 1.0
    cdef floating c, lim = <floating> R.clip_value, v
    for k in range(MAX_STATE):
        st[k] = <floating*> E.st[k]
    for k in range(team):
        if k != tid:
            for i in range(p0, p1):
                g[i] = g[i] + g0[k * E.n_params + i]
    _opt_begin_step(oc)
    if R.lr_steps != NULL:
        oc.lr = R.lr_steps[b]
    if not _rules_need_finish(R):
        # The update finishes the gradient ((g + alpha W) / sw_sum) on the
        # fly and returns sum(W**2) before the update for the L2 term.
        S.part[MAX_THREADS + tid] = _update_span(oc, th, g, st, L.n_weights, p0, p1,
                                                 R.alpha, 1.0 / sw_sum)
        S.part[2 * MAX_THREADS + tid] = 0.0
        return
    _finish_span(L, th, g, p0, p1, R.alpha, R.l1, 1.0 / sw_sum, &sq, &ab, &gg)
    S.part[MAX_THREADS + tid] = sq
    S.part[2 * MAX_THREADS + tid] = ab
    S.part[3 * MAX_THREADS + tid] = gg
    if R.clip_norm > 0:
        # torch.nn.utils.clip_grad_norm_: the norm of the whole gradient.
        _team_wait(T)
        gg = 0.0
        for k in range(team):
            gg = gg + S.part[3 * MAX_THREADS + k]
        coef = R.clip_norm / (sqrt(gg) + 1e-6)
        if coef > 1.0:
            coef = 1.0
    if R.clip_value > 0:
        c = <floating> coef
        for i in range(p0, p1):
            v = g[i] * c if coef != 1.0 else g[i]
            g[i] = lim if v > lim else (-lim if v < -lim else v)
        coef = 1.0
    # The update multiplies the finished gradient by ``coef`` on the fly
    # ((g + 0 * W) * coef is g * coef exactly): no pass of its own.
    _update_span(oc, th, g, st, L.n_weights, p0, p1, 0.0, coef)


cdef void _rows_team(const EpochArgs* E, EpochShared* S, Team* T, Mode* M,
                     int* sense) noexcept nogil:
    # This thread's place in the team and the walk's training mode.
    T.tid = bp_thread_id()
    T.team = bp_team_size()                  # OpenMP may grant fewer threads than asked
    T.bar = &S.bar
    T.sense = sense
    T.stats = E.W.stats
    M.training = True
    M.update_running = True
    M.products_only = False
    M.seed = E.B.seed
    M.epoch = E.B.epoch
    M.keys = E.B.keys


cdef void _epoch_thread(const EpochArgs* E, EpochShared* S, floating* th) noexcept nogil:
    """One thread's part of the epoch: per batch, walk its rows, then (after
    the barrier) its share of the update; thread 0 keeps the books."""
    cdef const CLayout* L = E.L
    cdef int sense = 0
    cdef Team T
    cdef Rows R
    cdef Mode M
    cdef SparseRows sp = E.B.sp
    cdef OptConfig oc = E.oc0
    cdef BatchBooks books
    cdef BatchFate fate
    cdef Py_ssize_t b, start, rows, r0, r1, i, since_poll = 0
    cdef floating* g
    cdef bp_fpstate fp = bp_fp_enter()      # the floating-point mode is per thread
    _rows_team(E, S, &T, &M, &sense)
    g = <floating*> E.W.grad + T.tid * E.n_params
    for b in range(E.B.n_batches):
        start = b * E.B.bs
        rows = min(E.B.bs, E.B.n - start)
        r0 = T.tid * rows // T.team
        r1 = (T.tid + 1) * rows // T.team
        T.batch_rows = rows
        _batch_rows(E, &sp, start, r0, r1, &R, th)
        if r1 > r0 or not L.plain:
            # (Batch norm's reductions need every thread at their barriers.)
            S.part[T.tid] = _walk(L, th, <floating*> E.buffers, g, E.W.A, &R, &T, &M, False)
        else:
            S.part[T.tid] = 0.0
            for i in range(E.n_params):
                g[i] = 0
        _team_wait(&T)
        # Every thread reads the same shared values here, so all of them
        # take the same branch: nobody is left waiting at a barrier.
        if S.status != OK:
            break
        books.b = b
        books.sw_sum = _batch_weight(E, start, rows, th)
        fate = _batch_data_loss(S, T.team, books.sw_sum, &books.data_loss)
        if fate == BATCH_NONFINITE:
            if T.tid == 0:
                S.status = NONFINITE_LOSS
            break
        if fate == BATCH_UPDATE:
            _update_share(E, S, &T, &oc, th, g, b, books.sw_sum)
        else:
            _no_penalty_share(S, T.tid)
        _team_wait(&T)
        if E.R.max_norm > 0:
            _max_norm_share(L, th, E.R.max_norm, T.tid, T.team)
            _team_wait(&T)
        if T.tid == 0:
            _end_batch(E, S, T.team, &books, NULL, &since_poll, &S.status)
            S.n_done = b + 1
            S.oc_out = oc
        # The status set just above is read by everyone after the next
        # batch's first barrier (thread 0 writes it before reaching it).
    bp_fp_exit(fp)


def train_epoch(Layout layout, OptimizerConfig opt, Minibatches data,
                floating[::1] theta, floating[:, ::1] grad, floating[:, ::1] opt_state,
                int n_threads=1, bint by_units=False, buffers=None):
    """Run one epoch of minibatch training: gather, forward, loss, backward, update.

    Returns a ``Status``. ``data.batch_loss[b]`` holds the loss of batch ``b``
    (scikit-learn's: data loss + penalties, before the update) and
    ``data.n_done`` how many batches completed. On NONFINITE_LOSS the offending
    batch made no update. A signal handler's exception (KeyboardInterrupt) is
    raised after the kernel has restored the floating-point state.
    ``buffers`` are the network's running statistics (needed with batch
    norm); ``data.rules`` the rules of every step.

    With ``n_threads`` > 1 (and an OpenMP build), every batch is split by rows
    across the threads: each walks its rows into its own row of ``grad``
    (shape (>= n_threads, n_params)); batch norm reduces its statistics
    across them; then each sums the gradients over its own slice of the
    parameters and updates that slice. BLAS must be single-threaded
    meanwhile (the Python layer sees to it).

    With ``by_units`` (when ``unit_split_refusal`` finds nothing against it),
    the threads split the hidden units of every hidden layer instead (see
    _epoch_by_units; at most one thread per unit of the narrowest hidden
    layer); ``data.workspace.work`` must then hold
    ``layout.units_workspace_size(batch_size, n_threads)``.
    """
    cdef const CLayout* L = &layout.c
    cdef EpochArgs E
    cdef EpochShared S
    cdef Acts A
    cdef floating* typed = &theta[0]
    cdef floating[::1] work = data.workspace.work
    cdef Py_ssize_t r, n_params = theta.shape[0]
    cdef int status
    _epoch_args(L, opt, data, theta, grad, opt_state, buffers, &E)
    n_threads = max(1, min(n_threads, MAX_THREADS, E.B.bs, grad.shape[0]))
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
        E.n_threads = _units_team_cap(L, n_threads)
        if L.has_bn:
            _check_stats(L, data.workspace.stats, E.n_threads, &E.W.stats)
        with nogil:
            status = _epoch_by_units(&E, &S, typed, &work[0])
    else:
        _rows_scratch(L, data.workspace, work, E.B.bs, n_threads, &E.W, &A)
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


cdef int _rows_scratch(const CLayout* L, Workspace ws, floating[::1] work, Py_ssize_t bs,
                       int n_threads, Scratch* W, Acts* A) except -1:
    """Check the workspace for the row split and carve it into W and A."""
    cdef floating* xbuf
    cdef floating* ybuf
    cdef floating* swbuf
    if work.shape[0] < _workspace_size(L, bs):
        raise ValueError("workspace too small: %d < %d"
                         % (work.shape[0], _workspace_size(L, bs)))
    if L.has_bn:
        _check_stats(L, ws.stats, n_threads, &W.stats)
    _carve(L, &work[0], bs, True, &xbuf, &ybuf, &swbuf, A)
    W.xbuf = xbuf
    W.ybuf = ybuf
    W.swbuf = swbuf
    W.A = A
    return 0
