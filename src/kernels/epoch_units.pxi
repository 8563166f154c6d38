# The epoch split across threads by hidden units.
# Included by src/_kernels.pyx (see its Design docstring for the order).

cdef int _epoch_by_units(const EpochArgs* E, EpochShared* S, floating* th,
                         floating* work) noexcept nogil:
    """One epoch of a one-hidden-layer network, split across threads by hidden units.

    Thread t owns hidden units [h0, h1): the columns h0:h1 of W_0 and b_0 and
    the rows h0:h1 of W_1. For the epoch it works on a packed private copy of
    them (with their optimizer state), so no cache line of parameters,
    gradients or state is written by two cores, and it writes them back at
    the end. Every thread also keeps its own copy of b_1 and updates it
    identically (it is K values).

    Per batch each thread computes its block of hidden activations from the
    whole batch and its partial output product A[:, h0:h1] @ W_1[h0:h1];
    after the one barrier of the batch, every thread sums the partials in
    thread order (so all get bitwise the same output), computes the loss and
    the output delta itself, and back-propagates into and updates only its
    own parameters. The row split (train_epoch) moves half the parameters and
    gradients between cores every batch and needs two barriers: for small
    batches that costs more than the arithmetic saved. The partials are
    double-buffered by batch parity: a thread can run at most one batch ahead.

    Shared values are written through pointers and read only after a barrier
    that follows the write. ``stop[b & 1]`` is what every thread checks after
    batch b's barrier (thread 0 writes it for the next batch at the end of
    this one); batch b's loss is recorded by thread 0 after batch b + 1's
    barrier (it needs every thread's sum(W**2)) or, for the last batch, after
    the parallel block. A non-finite loss that only the L2 term makes
    non-finite therefore stops the epoch one batch later. Returns a Status.
    """
    cdef const Layout* L = E.L
    cdef OptConfig* opt_c = &S.oc_out
    cdef const floating* Xp = <const floating*> E.X
    cdef const floating* Yp = <const floating*> E.Y
    cdef const floating* swp = <const floating*> E.sw
    cdef const Py_ssize_t* pp = E.perm
    cdef Py_ssize_t n = E.n, bs = E.bs, poll_every = E.poll_every
    cdef double alpha = E.alpha
    cdef floating* s0 = <floating*> E.st[0]
    cdef floating* s1 = <floating*> E.st[1]
    cdef double* blp = E.batch_loss
    cdef int n_threads = E.n_threads
    cdef Py_ssize_t n0 = L.sizes[0], H = L.sizes[1], K = L.sizes[2]
    cdef Py_ssize_t w0 = L.w_off[0], w1 = L.w_off[1], b0 = L.b_off[0], b1 = L.b_off[1]
    cdef int act0 = L.act[0], out_act = L.act[1], loss_code = L.loss
    cdef double factor = _loss_factor(L.loss, K), sq_scale = L.sq_scale
    cdef double slope = L.leaky_slope, ealpha = L.elu_alpha
    cdef Py_ssize_t n_batches = (n + bs - 1) // bs
    cdef Py_ssize_t stride = _units_thread_stride(L, bs)
    cdef Py_ssize_t pstride = _units_partial_stride(L, bs)
    cdef Py_ssize_t n_params = L.n_params
    cdef floating* base = _align(work)
    cdef floating* pbase = base + n_threads * stride
    # Shared, written only through these pointers:
    # stop[2]: status checked after batch b's barrier (slot b & 1);
    # dl[2], sws[2]: data loss and weight sum of the batch of that parity;
    # psq[2 * MAX_THREADS]: each thread's sum(W**2) for the batch of that parity;
    # info[0] = batch at which the threads stopped (n_batches if none), info[1] = team,
    # info[2] = Adam's step count at the end, info[3] = interrupted, info[4] = the
    # Status the threads stopped with.
    cdef Py_ssize_t stop_arr[2]
    cdef Py_ssize_t* stop = stop_arr
    cdef double dl_arr[2]
    cdef double* dl = dl_arr
    cdef double sws_arr[2]
    cdef double* sws = sws_arr
    cdef double psq_arr[2 * MAX_THREADS]
    cdef double* psq = psq_arr
    cdef long long info_arr[5]
    cdef long long* info = info_arr
    cdef bp_barrier_t barrier
    cdef bp_barrier_t* bar = &barrier
    cdef OptConfig oc0 = opt_c[0]
    cdef int status
    cdef double sq_total, last_loss
    cdef Py_ssize_t last, lpar, kk
    # Thread-private:
    cdef int tid, team, sense
    cdef Py_ssize_t b, start, rows, h0, h1, hw, i, k, par, since_poll, pending, r0, r1
    cdef Py_ssize_t n_loc, n_loc_w
    cdef double sw_sum, data_loss, sq, loss
    cdef floating* mine
    cdef floating* pth
    cdef floating* pg
    cdef floating* pm
    cdef floating* pv
    cdef floating* xown
    cdef floating* yown
    cdef floating* swown
    cdef floating* a_t
    cdef floating* d1
    cdef floating* o_t
    cdef floating* d2
    cdef floating* pt
    cdef floating* pk
    cdef const floating* xb
    cdef const floating* yb
    cdef const floating* swbp
    cdef OptConfig oc
    cdef bp_fpstate fp

    stop[0] = OK
    stop[1] = OK
    info[0] = n_batches
    info[1] = 1
    info[2] = oc0.t
    info[3] = 0
    info[4] = OK
    dl[0] = dl[1] = 0.0
    sws[0] = sws[1] = 0.0
    for i in range(2 * MAX_THREADS):
        psq[i] = 0.0
    bp_barrier_init(bar)

    with parallel(num_threads=n_threads):
        tid = bp_thread_id()
        team = bp_team_size()
        fp = bp_fp_enter()
        oc = oc0
        h0 = tid * H // team
        h1 = (tid + 1) * H // team
        hw = h1 - h0
        # Private blocks. Packed parameters: W_0[:, h0:h1] (n0 x hw), then
        # W_1[h0:h1] (hw x K): the weights; then b_0[h0:h1], then b_1.
        n_loc_w = n0 * hw + hw * K
        n_loc = n_loc_w + hw + K
        mine = base + tid * stride
        pth = mine
        pg = pth + n_params
        pm = pg + n_params
        pv = pm + n_params
        xown = pv + n_params
        yown = xown + bs * n0
        swown = yown + bs * K
        a_t = swown + bs
        d1 = a_t + bs * H
        o_t = d1 + bs * H
        d2 = o_t + bs * K
        _pack_units(th, pth, n0, H, K, h0, hw, w0, w1, b0, b1)
        if s0 != NULL:
            _pack_units(s0, pm, n0, H, K, h0, hw, w0, w1, b0, b1)
        if s1 != NULL:
            _pack_units(s1, pv, n0, H, K, h0, hw, w0, w1, b0, b1)
        since_poll = 0
        sense = 0
        pending = OK
        if tid == 0:
            info[1] = team
        for b in range(n_batches):
            start = b * bs
            rows = min(bs, n - start)
            par = b & 1
            if pp != NULL:
                _gather(Xp, Yp, swp, pp, start, 0, rows, n0, K, True, xown, yown, swown)
                xb = xown
                yb = yown
                swbp = swown if swp != NULL else NULL
                if b + 1 < n_batches:
                    # Each thread prefetches its share of the next batch's rows.
                    r0 = start + bs + tid * bs // team
                    r1 = min(start + bs + (tid + 1) * bs // team, n)
                    if r1 > r0:
                        _prefetch_rows(Xp, pp, r0, r1, n0)
            else:
                xb = Xp + start * n0
                yb = Yp + start * K
                swbp = swp + start if swp != NULL else NULL
            # This thread's hidden block and its partial output product.
            pt = pbase + (par * team + tid) * pstride
            if hw > 0:
                _gemm(False, False, <int> rows, <int> hw, <int> n0, 1, xb, <int> n0,
                      pth, <int> hw, 0, a_t, <int> hw)
                _bias_activation(act0, a_t, pth + n_loc_w, rows, hw, slope, ealpha)
                _gemm(False, False, <int> rows, <int> K, <int> hw, 1, a_t, <int> hw,
                      pth + n0 * hw, <int> K, 0, pt, <int> K)
            else:
                for i in range(rows * K):
                    pt[i] = 0
            bp_barrier_wait(bar, &sense, team)
            if tid == 0 and b > 0:
                # Batch b - 1 is complete on every thread: record its loss.
                sq = 0.0
                for k in range(team):
                    sq = sq + psq[(1 - par) * MAX_THREADS + k]
                loss = dl[1 - par]
                if sws[1 - par] > 0:
                    loss = loss + 0.5 * alpha * sq / sws[1 - par]
                blp[b - 1] = loss
                if not isfinite(loss) and pending == OK:
                    pending = NONFINITE_LOSS
            # Every thread reads the same slot here, so all take the same branch.
            if stop[par] != OK:
                if tid == 0:
                    info[0] = b
                    info[4] = stop[par]
                break
            # The output: partials summed in thread order, then bias and activation.
            pk = pbase + par * team * pstride
            for i in range(rows * K):
                o_t[i] = pk[i]
            for k in range(1, team):
                pk = pbase + (par * team + k) * pstride
                for i in range(rows * K):
                    o_t[i] = o_t[i] + pk[i]
            _bias_activation(out_act, o_t, pth + n_loc_w + hw, rows, K, slope, ealpha)
            data_loss = _loss_delta(loss_code, o_t, yb, swbp, rows, K, sq_scale, L.huber_delta, d2) * factor
            if swbp != NULL:
                sw_sum = 0.0
                for i in range(rows):
                    sw_sum = sw_sum + swbp[i]
            else:
                sw_sum = <double> rows
            if sw_sum > 0:
                data_loss = data_loss / sw_sum
                if not isfinite(data_loss):
                    # Same value on every thread: all stop here, before any update.
                    if tid == 0:
                        info[0] = b
                        info[4] = NONFINITE_LOSS
                    break
                # Output delta (times f' for squared error on a non-identity
                # output) and b_1's gradient, on every thread alike.
                if loss_code == SQUARED_ERROR and out_act != IDENTITY:
                    _activation_backward(out_act, o_t, d2, rows, K, slope, ealpha,
                                         pg + n_loc_w + hw, False)
                else:
                    _colsum(d2, rows, K, pg + n_loc_w + hw, False)
                if hw > 0:
                    # D1 = D2 @ W_1[h0:h1].T (gW_1's block lends itself for
                    # the copy of W_1[h0:h1].T, see _gemm_a_bt)
                    _gemm_a_bt(<int> rows, <int> hw, <int> K, d2, <int> K,
                               pth + n0 * hw, <int> K, d1, <int> hw, pg + n0 * hw)
                    # gW_1[h0:h1] = A.T @ D2
                    _gemm(True, False, <int> hw, <int> K, <int> rows, 1, a_t, <int> hw,
                          d2, <int> K, 0, pg + n0 * hw, <int> K)
                    # D1 times f', and gb_0[h0:h1]
                    _activation_backward(act0, a_t, d1, rows, hw, slope, ealpha,
                                         pg + n_loc_w, False)
                    # gW_0[:, h0:h1] = X.T @ D1
                    _gemm(True, False, <int> n0, <int> hw, <int> rows, 1, xb, <int> n0,
                          d1, <int> hw, 0, pg, <int> hw)
                _opt_begin_step(&oc)
                if E.lr_steps != NULL:
                    oc.lr = E.lr_steps[b]
                psq[par * MAX_THREADS + tid] = _update_span_2(
                    &oc, pth, pg, pm if s0 != NULL else NULL, pv if s1 != NULL else NULL,
                    n_loc_w, 0, n_loc, alpha, 1.0 / sw_sum)
            else:
                # All of this batch's sample weights are zero: no update, no loss.
                data_loss = 0.0
                psq[par * MAX_THREADS + tid] = 0.0
            if tid == 0:
                dl[par] = data_loss
                sws[par] = sw_sum
                info[2] = oc.t
                if b + 1 < n_batches and _signal_raised(&since_poll, poll_every):
                    info[3] = 1
                    if pending == OK:
                        pending = INTERRUPTED
                # Read by everyone after the next batch's barrier.
                stop[1 - par] = pending
        # Back to the shared buffers (b_1 from thread 0; every copy is the same).
        _unpack_units(pth, th, n0, H, K, h0, hw, w0, w1, b0, b1, tid == 0)
        if s0 != NULL:
            _unpack_units(pm, s0, n0, H, K, h0, hw, w0, w1, b0, b1, tid == 0)
        if s1 != NULL:
            _unpack_units(pv, s1, n0, H, K, h0, hw, w0, w1, b0, b1, tid == 0)
        bp_fp_exit(fp)

    S.n_done = info[0]
    S.interrupted = info[3] != 0
    opt_c.t = info[2]
    _opt_sync(opt_c)           # NAdam's mu_product follows t
    if E.lr_steps != NULL and info[0] > 0:
        opt_c.lr = E.lr_steps[info[0] - 1]
    status = <int> info[4]
    if info[0] == n_batches and n_batches > 0:
        # A stop raised during the last batch (a non-finite loss of the batch
        # before it) that no barrier delivered.
        status = <int> stop[n_batches & 1]
        # The last batch's loss (no barrier followed it inside the block).
        last = n_batches - 1
        lpar = last & 1
        sq_total = 0.0
        for kk in range(info[1]):
            sq_total = sq_total + psq[lpar * MAX_THREADS + kk]
        last_loss = dl[lpar]
        if sws[lpar] > 0:
            last_loss = last_loss + 0.5 * alpha * sq_total / sws[lpar]
        blp[last] = last_loss
        if not isfinite(last_loss) and status == OK:
            status = NONFINITE_LOSS
    return status


cdef inline double _update_span_2(const OptConfig* o, floating* theta, const floating* g,
                                  floating* s0, floating* s1, Py_ssize_t n_weights,
                                  Py_ssize_t start, Py_ssize_t end, double alpha,
                                  double inv_scale) noexcept nogil:
    # _update_span for optimizers with at most two state buffers, from
    # thread-private pointers (a C array cannot be private in a parallel block).
    cdef floating* st[MAX_STATE]
    st[0] = s0
    st[1] = s1
    st[2] = NULL
    return _update_span(o, theta, g, st, n_weights, start, end, alpha, inv_scale)


cdef inline void _pack_units(const floating* src, floating* dst, Py_ssize_t n0, Py_ssize_t H,
                             Py_ssize_t K, Py_ssize_t h0, Py_ssize_t hw, Py_ssize_t w0,
                             Py_ssize_t w1, Py_ssize_t b0, Py_ssize_t b1) noexcept nogil:
    """dst = [W_0[:, h0:h0+hw] | W_1[h0:h0+hw] | b_0[h0:h0+hw] | b_1] of the flat src."""
    cdef Py_ssize_t i
    for i in range(n0):
        memcpy(dst + i * hw, src + w0 + i * H + h0, hw * sizeof(floating))
    dst = dst + n0 * hw
    memcpy(dst, src + w1 + h0 * K, hw * K * sizeof(floating))
    dst = dst + hw * K
    memcpy(dst, src + b0 + h0, hw * sizeof(floating))
    memcpy(dst + hw, src + b1, K * sizeof(floating))


cdef inline void _unpack_units(const floating* src, floating* dst, Py_ssize_t n0, Py_ssize_t H,
                               Py_ssize_t K, Py_ssize_t h0, Py_ssize_t hw, Py_ssize_t w0,
                               Py_ssize_t w1, Py_ssize_t b0, Py_ssize_t b1,
                               bint with_b1) noexcept nogil:
    """The inverse of _pack_units (b_1 only if ``with_b1``)."""
    cdef Py_ssize_t i
    for i in range(n0):
        memcpy(dst + w0 + i * H + h0, src + i * hw, hw * sizeof(floating))
    src = src + n0 * hw
    memcpy(dst + w1 + h0 * K, src, hw * K * sizeof(floating))
    src = src + hw * K
    memcpy(dst + b0 + h0, src, hw * sizeof(floating))
    if with_b1:
        memcpy(dst + b1, src + hw, K * sizeof(floating))


cdef int _check_units(const Layout* L, const EpochArgs* E, OptimizerConfig opt,
                      Py_ssize_t work_size) except -1:
    if L.n_layers != 2 or not L.plain:
        raise ValueError("by_units needs a plain network with exactly one hidden layer")
    if E.X == NULL:
        raise ValueError("by_units needs dense X")
    if opt.n_state > 2:
        raise ValueError("by_units takes optimizers with at most two state buffers")
    if _needs_finish(E) or E.max_norm > 0:
        raise ValueError("by_units does not apply l1, max_norm or gradient clipping")
    if work_size < _units_workspace_size(L, E.bs, max(1, min(E.n_threads, L.sizes[1]))):
        raise ValueError("workspace too small for by_units: %d < %d"
                         % (work_size, _units_workspace_size(L, E.bs, E.n_threads)))
    return 0
