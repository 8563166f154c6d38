# The epoch split across threads by rows: train_epoch.
# Included by src/_kernels.pyx (see its Design docstring for the order).

def train_epoch(NetLayout layout, OptimizerConfig opt, Minibatches data,
                floating[::1] theta, floating[:, ::1] grad, floating[:, ::1] opt_state,
                int n_threads=1, bint by_units=False):
    """Run one epoch of minibatch training: gather, forward, loss, backward, update.

    Returns a ``Status``. ``data.batch_loss[b]`` holds the loss of batch ``b``
    (scikit-learn's: data loss + L2 term, before the update) and
    ``data.n_done`` how many batches completed. On NONFINITE_LOSS the offending
    batch made no update. A signal handler's exception (KeyboardInterrupt) is
    raised after the kernel has restored the floating-point state.

    With ``n_threads`` > 1 (and an OpenMP build), every batch is split by rows
    across the threads: each runs forward and backward on its rows into its
    own row of ``grad`` (shape (>= n_threads, n_params)); then each sums the
    gradients over its own slice of the parameters and updates that slice.
    BLAS must be single-threaded meanwhile (the Python layer sees to it).

    With ``by_units`` (a network with one hidden layer and dense X), the
    threads split the hidden units instead (see _epoch_by_units); ``data.work``
    must then hold ``layout.units_workspace_size(batch_size, n_threads)``.
    """
    cdef const Layout* L = &layout.c
    cdef const floating[:, ::1] Y = data.Y
    cdef const floating[::1] sw
    cdef const Py_ssize_t[::1] perm
    cdef floating[::1] work = data.work
    cdef double[::1] batch_loss = data.batch_loss
    cdef Py_ssize_t n, n_cols, bs = data.batch_size, n0 = L.sizes[0]
    cdef Py_ssize_t n_out = L.sizes[L.n_layers], n_batches, r
    cdef Py_ssize_t n_params = theta.shape[0], poll_every
    cdef double alpha = data.alpha
    cdef const floating* Xp
    cdef const floating* Yp
    cdef const floating* swp = NULL
    cdef const Py_ssize_t* pp = NULL
    cdef floating* xbuf
    cdef floating* ybuf
    cdef floating* swbuf
    cdef floating* acts[MAX_LAYERS]
    cdef floating** actsp = acts
    cdef floating* d_a
    cdef floating* d_b
    cdef floating* st[MAX_STATE]
    cdef floating** stp = st
    cdef floating* th
    cdef floating* gbase
    cdef SparseRows sp0
    cdef bint is_sparse
    cdef OptConfig oc0 = opt.c
    cdef Py_ssize_t n_units_done = 0
    cdef bint units_interrupted = False
    cdef int status
    # Shared between the threads, written only through these pointers:
    # partials[t] = data-loss sum of thread t, partials[MAX_THREADS + t] = its sum(W**2);
    # flags[0] = status that stops the epoch, flags[1] = interrupted,
    # flags[2] = batches done; t_out = Adam's step count at the end.
    cdef double partials[2 * MAX_THREADS]
    cdef double* part = partials
    cdef Py_ssize_t flags[3]
    cdef Py_ssize_t* fl = flags
    cdef long long t_out = oc0.t
    cdef long long* t_outp = &t_out
    cdef bp_barrier_t barrier
    cdef bp_barrier_t* bar = &barrier
    cdef int sense
    cdef double* blp
    # Thread-private (assigned inside the parallel block):
    cdef int tid, team
    cdef Py_ssize_t b, start, rows, r0, r1, p0, p1, i, k, since_poll
    cdef double sw_sum, data_loss, loss, sq
    cdef floating* g
    cdef floating* g0
    cdef const floating* xb
    cdef const floating* yb
    cdef const floating* swbp
    cdef SparseRows sp
    cdef OptConfig oc
    cdef bp_fpstate fp

    _bind_input(data.X, &Xp, &sp0, &is_sparse, &n, &n_cols)
    _check_data(L, n, n_cols, Y.shape[0], Y.shape[1], n_params)
    if grad.shape[1] != n_params:
        raise ValueError("grad rows and params differ in length")
    if n == 0:
        raise ValueError("no samples to train on")
    if bs < 1:
        raise ValueError("batch_size must be >= 1, got %d" % bs)
    bs = min(bs, n)
    if work.shape[0] < _workspace_size(L, bs):
        raise ValueError("workspace too small: %d < %d" % (work.shape[0], _workspace_size(L, bs)))
    n_batches = (n + bs - 1) // bs
    if batch_loss.shape[0] < n_batches:
        raise ValueError("batch_loss needs %d entries" % n_batches)
    n_threads = max(1, min(n_threads, MAX_THREADS, bs))
    if not BP_OPENMP:
        n_threads = 1
    if grad.shape[0] < n_threads:
        raise ValueError("grad needs one row per thread (%d), has %d"
                         % (n_threads, grad.shape[0]))
    if data.sample_weight is not None:
        sw = data.sample_weight
        if sw.shape[0] != n:
            raise ValueError("sample_weight has %d entries, X %d rows" % (sw.shape[0], n))
        swp = &sw[0]
    if data.perm is not None:
        perm = data.perm
        if perm.shape[0] != n:
            raise ValueError("perm has %d entries, X %d rows" % (perm.shape[0], n))
        for r in range(n):
            if perm[r] < 0 or perm[r] >= n:
                raise ValueError("perm[%d] = %d is not a row index" % (r, perm[r]))
        pp = &perm[0]
    _state_pointers(opt, opt_state, n_params, st)
    poll_every = max(1, POLL_MACS // max(1, bs * L.macs_per_row))

    if by_units:
        if L.n_layers != 2:
            raise ValueError("by_units needs a network with exactly one hidden layer")
        if is_sparse:
            raise ValueError("by_units needs dense X")
        n_threads = max(1, min(n_threads, L.sizes[1]))
        if work.shape[0] < _units_workspace_size(L, bs, n_threads):
            raise ValueError("workspace too small for by_units: %d < %d"
                             % (work.shape[0], _units_workspace_size(L, bs, n_threads)))
        with nogil:
            status = _epoch_by_units(L, &opt.c, Xp, &Y[0, 0], swp, pp, n, bs, alpha,
                                     &theta[0], st[0], st[1], &work[0], &batch_loss[0],
                                     poll_every, n_threads, &n_units_done,
                                     &units_interrupted)
        data.n_done = n_units_done
        if units_interrupted:
            _reraise()
        if status == OK:
            for r in range(n_params):
                if not isfinite(theta[r]):
                    return NONFINITE_PARAMS
        return status

    Yp = &Y[0, 0]
    th = &theta[0]
    gbase = &grad[0, 0]
    blp = &batch_loss[0]
    _carve(L, &work[0], bs, &xbuf, &ybuf, &swbuf, acts, &d_a, &d_b)
    flags[0] = OK
    flags[1] = 0
    flags[2] = 0
    bp_barrier_init(bar)

    with nogil, parallel(num_threads=n_threads):
        tid = bp_thread_id()
        team = bp_team_size()       # OpenMP may grant fewer threads than asked
        fp = bp_fp_enter()          # the floating-point mode is per thread
        oc = oc0
        sp = sp0
        g = gbase + tid * n_params
        g0 = gbase
        since_poll = 0
        sense = 0
        for b in range(n_batches):
            start = b * bs
            rows = min(bs, n - start)
            r0 = tid * rows // team
            r1 = (tid + 1) * rows // team
            if pp != NULL:
                _gather(Xp, Yp, swp, pp, start, r0, r1, n0, n_out, not is_sparse,
                        xbuf, ybuf, swbuf)
                xb = xbuf + r0 * n0
                yb = ybuf + r0 * n_out
                swbp = swbuf + r0 if swp != NULL else NULL
                sp.rows = pp + start + r0
                if not is_sparse and b + 1 < n_batches:
                    _prefetch_rows(Xp, pp, start + bs + r0,
                                   min(start + bs + r1, n), n0)
            else:
                xb = Xp + (start + r0) * n0 if not is_sparse else NULL
                yb = Yp + (start + r0) * n_out
                swbp = swp + start + r0 if swp != NULL else NULL
                sp.rows = NULL
                sp.first = start + r0
            if r1 > r0:
                part[tid] = _forward_backward(
                    L, th, xb, &sp if is_sparse else NULL, yb, swbp, r1 - r0,
                    actsp, r0, d_a + r0 * L.max_width, d_b + r0 * L.max_width, g, False)
            else:
                part[tid] = 0.0
                for i in range(n_params):
                    g[i] = 0
            bp_barrier_wait(bar, &sense, team)
            # Every thread reads the same shared values here, so all of them
            # take the same branch: nobody is left waiting at a barrier.
            if fl[0] != OK:
                break
            if swp != NULL:
                sw_sum = 0.0
                for r in range(rows):
                    sw_sum = sw_sum + (swbuf[r] if pp != NULL else swp[start + r])
            else:
                sw_sum = <double> rows
            data_loss = 0.0
            for k in range(team):
                data_loss = data_loss + part[k]
            if sw_sum > 0:
                data_loss = data_loss / sw_sum
                if not isfinite(data_loss):
                    if tid == 0:
                        fl[0] = NONFINITE_LOSS
                    break
                # Sum the threads' gradients over this thread's slice, then
                # update the slice; the update finishes the gradient
                # ((g + alpha W) / sw_sum) and returns sum(W**2) before the
                # update for the L2 term.
                # Each thread sums into its own gradient row (reading the others'
                # rows only), so no cache line is written by two cores.
                p0 = tid * n_params // team
                p1 = (tid + 1) * n_params // team
                for k in range(team):
                    if k != tid:
                        for i in range(p0, p1):
                            g[i] = g[i] + g0[k * n_params + i]
                _opt_begin_step(&oc)
                part[MAX_THREADS + tid] = _update_span(&oc, th, g, stp, L.n_weights,
                                                       p0, p1, alpha, 1.0 / sw_sum)
            else:
                # All of this batch's sample weights are zero: it carries no
                # information, so it makes no update and adds nothing to the loss.
                data_loss = 0.0
                part[MAX_THREADS + tid] = 0.0
            bp_barrier_wait(bar, &sense, team)
            if tid == 0:
                sq = 0.0
                for k in range(team):
                    sq = sq + part[MAX_THREADS + k]
                loss = data_loss + (0.5 * alpha * sq / sw_sum if sw_sum > 0 else 0.0)
                blp[b] = loss
                fl[2] = b + 1
                t_outp[0] = oc.t
                if not isfinite(loss):
                    fl[0] = NONFINITE_LOSS
                if b + 1 < n_batches and _signal_raised(&since_poll, poll_every):
                    fl[1] = 1
                    fl[0] = INTERRUPTED
            # The flag set just above is read by everyone after the next
            # batch's first barrier (thread 0 writes it before reaching it).
        bp_fp_exit(fp)

    opt.c.t = t_out
    data.n_done = flags[2]
    if flags[1]:
        _reraise()
    if flags[0] == OK:
        for r in range(n_params):
            if not isfinite(th[r]):
                return NONFINITE_PARAMS
    return flags[0]
