# The epoch split across threads by hidden units.
# Included by src/_kernels.pyx (see its Design docstring for the order).
#
# A plain network with one hidden layer of H units, on ``team`` threads:
# thread t owns hidden units [h0, h1), the columns h0:h1 of W_0 and b_0 and
# the rows h0:h1 of W_1. For the epoch it works on a packed private copy of
# them (with their optimizer state), so no cache line of parameters,
# gradients or state is written by two cores, and it writes them back at
# the end. Every thread also keeps its own copy of b_1 and updates it
# identically (it is K values).
#
# The packed copy is itself a layout: n0 -> hw -> K (``UnitBlock``), which the
# thread walks with the walk every driver uses (walk.pxi), with one seam:
# the output layer's product A[:, h0:h1] @ W_1[h0:h1] is a partial sum. Per
# batch each thread computes its hidden block from the whole batch and its
# partial output product; after the batch's first barrier each thread
# finishes its share of the output rows (the partials summed in thread
# order, bias, activation, loss, output delta into a shared block); after
# the second, every thread reads the whole output delta, sums b_1's
# gradient from it (the same order on every thread, so their copies of b_1
# stay bitwise equal) and walks back into (and updates) only its own
# parameters. The output layer done once per batch instead of once per
# thread costs the second barrier and pays for it: see docs/DESIGN.md. The
# row split (train_epoch) moves half the parameters and gradients between
# cores every batch: for small batches that costs more than the arithmetic
# saved.
#
# Shared values are written through UnitsShared and EpochShared and read
# only after a barrier that follows the write; the partials, the output
# delta and the loss shares are written after a batch's first barrier or
# before the next batch's, so one copy of each suffices. ``stop[b & 1]`` is
# what every thread checks after batch b's first barrier (thread 0 writes
# it for the next batch at the end of this one). The end of a batch is the
# row split's (batch_end.pxi) in its late mode: batch b's loss is recorded
# by thread 0 after batch b + 1's first barrier (it needs every thread's
# sum(W**2)) or, for the last batch, after the parallel block.
#
# Plans it takes: _units_refusal says, the one place that decides (Python
# asks it through unit_split_refusal; _engine.choose_threads decides when
# the split pays): one hidden layer, no batch norm, dropout, residual skip
# or saved pre-activation, dense X, optimizers with at most two state
# buffers, no l1, max-norm or clipping. Every other layout takes the row
# split.


cdef struct UnitBlock:
    # Thread t's block of the layout, n0 -> hw -> K, over its packed
    # parameters [W_0[:, h0:h1] | W_1[h0:h1] | b_0[h0:h1] | b_1]. ``L``
    # points into the arrays below: never copy a UnitBlock.
    CLayout L
    Py_ssize_t sizes[3]
    Py_ssize_t w_off[2]
    Py_ssize_t b_off[2]
    Py_ssize_t none[2]       # g_off, rm_off, st_off: no batch norm
    int act[2]
    double dropout[2]
    char flags[2]            # residual, keep_z: none


cdef struct UnitsShared:
    # What the unit split shares beyond EpochShared.
    Py_ssize_t stop[2]       # the status every thread checks after batch b's barrier (b & 1)
    void* partials           # team blocks of partial_stride: each thread's output product
    void* delta              # the output delta (batch x K), one partial_stride
    Py_ssize_t thread_stride, partial_stride
    Py_ssize_t n_stopped     # batch at which the threads stopped (n_batches if none)
    Py_ssize_t status        # the Status they stopped with
    Py_ssize_t team
    long long t              # the optimizer's step count at the end
    BatchBooks held          # thread 0's books of the batch not recorded yet


cdef const char* _units_refusal(const CLayout* L, bint dense, int n_state,
                                const Rules* R) noexcept nogil:
    """Why the unit split cannot run this epoch, or NULL if it can: the one
    place that decides. ``R`` NULL: the layout and the input alone."""
    if L.n_layers != 2 or not L.plain:
        return "by_units (the hidden-unit split) needs a plain network with exactly one hidden layer"
    if not dense:
        return "by_units needs dense X"
    if n_state > 2:
        return "by_units takes optimizers with at most two state buffers"
    if R != NULL and (_rules_need_finish(R) or R.max_norm > 0):
        return "by_units does not apply l1, max_norm or gradient clipping"
    return NULL


def unit_split_refusal(Layout layout, bint dense=True, int n_state=0, StepRules rules=None):
    """None if ``train_epoch(..., by_units=True)`` can run an epoch of this
    layout on this input (dense or not) with an optimizer of ``n_state``
    state buffers and these rules (None: every rule off), else the reason."""
    cdef Rules R
    cdef const char* why
    if rules is not None:
        _bind_rules(rules, 0, &R)
    why = _units_refusal(&layout.c, dense, n_state, &R if rules is not None else NULL)
    return None if why == NULL else why.decode()


# The workspace (_epoch_by_units, carved by _units_carve): per thread, its
# packed parameters, gradient and two optimizer states (at most n_params
# each), its own copy of the batch (x, y, sample weights), its hidden
# block's activations (at most H wide), the output and the hidden delta.
# Shared: every thread's partial output product and the output delta. Every
# block starts on its own cache lines.

cdef Py_ssize_t _units_workspace_size(const CLayout* L, Py_ssize_t rows,
                                      Py_ssize_t team) noexcept nogil:
    return (team * _units_thread_stride(L, rows) + (team + 1) * _units_partial_stride(L, rows)
            + PAD)


cdef inline Py_ssize_t _units_thread_stride(const CLayout* L, Py_ssize_t rows) noexcept nogil:
    cdef Py_ssize_t n0 = L.sizes[0], H = L.sizes[1], K = L.sizes[2]
    return (4 * _round_up(L.n_params) + _round_up(rows * n0) + 2 * _round_up(rows * K)
            + _round_up(rows) + _round_up(rows * H) + _round_up(rows * max(H, K)))


cdef inline Py_ssize_t _units_partial_stride(const CLayout* L, Py_ssize_t rows) noexcept nogil:
    return _round_up(rows * L.sizes[2])


cdef void _unit_block(const CLayout* L, Py_ssize_t hw, UnitBlock* U) noexcept nogil:
    cdef Py_ssize_t n0 = L.sizes[0], K = L.sizes[2], l
    U.L = L[0]
    U.sizes[0] = n0
    U.sizes[1] = hw
    U.sizes[2] = K
    U.w_off[0] = 0
    U.w_off[1] = n0 * hw
    U.b_off[0] = n0 * hw + hw * K
    U.b_off[1] = U.b_off[0] + hw
    for l in range(2):
        U.none[l] = -1
        U.act[l] = L.act[l]
        U.dropout[l] = 0.0
        U.flags[l] = 0
    U.L.sizes = U.sizes
    U.L.w_off = U.w_off
    U.L.b_off = U.b_off
    U.L.g_off = U.none
    U.L.rm_off = U.none
    U.L.st_off = U.none
    U.L.act = U.act
    U.L.dropout = U.dropout
    U.L.residual = U.flags
    U.L.keep_z = U.flags
    U.L.n_weights = U.b_off[0]
    U.L.n_params = U.b_off[1] + K
    U.L.max_width = max(hw, K)
    U.L.macs_per_row = n0 * hw + hw * K
    U.L.has_bn = False


cdef void _units_carve(const EpochArgs* E, const UnitBlock* U, floating* mine,
                       floating** p, Acts* A) noexcept nogil:
    """Split one thread's workspace (``mine``, _units_thread_stride long):
    p = [params, grad, state 0, state 1, x, y, sw] of the packed block, then
    the walk's blocks in A, each on its own cache lines."""
    cdef Py_ssize_t k, bs = E.B.bs, n_loc = U.L.n_params, mw = U.L.max_width
    cdef Py_ssize_t sizes[7]
    sizes[0] = sizes[1] = sizes[2] = sizes[3] = n_loc
    sizes[4] = bs * U.sizes[0]
    sizes[5] = bs * U.sizes[2]
    sizes[6] = bs
    for k in range(7):
        p[k] = mine
        mine += _round_up(sizes[k])
    A.h[0] = A.a[0] = mine
    mine += _round_up(bs * U.sizes[1])
    A.h[1] = A.a[1] = mine
    mine += _round_up(bs * U.sizes[2])
    A.z[0] = A.z[1] = A.xh[0] = A.xh[1] = A.m[0] = A.m[1] = NULL
    A.d_a = NULL             # the shared output delta (set by _units_thread)
    A.d_b = mine


cdef void _units_batch_rows(const EpochArgs* E, const UnitBlock* U, Py_ssize_t b,
                            floating** p, Rows* R) noexcept nogil:
    """Rows of batch b: gathered into this thread's own copy (every thread
    reads the whole batch) with its share of the next batch prefetched, or
    read in place in the natural order."""
    cdef const Batches* B = &E.B
    cdef Py_ssize_t start = b * B.bs, n0 = U.sizes[0], K = U.sizes[2], r0, r1
    cdef int tid = bp_thread_id(), team = bp_team_size()
    cdef const floating* X = <const floating*> B.X
    cdef const floating* Y = <const floating*> B.Y
    cdef const floating* sw = <const floating*> B.sw
    R.n = min(B.bs, B.n - start)
    R.row0 = 0
    R.sp = NULL
    R.ids = NULL
    R.first = 0
    if B.perm != NULL:
        _gather(X, Y, sw, B.perm, start, 0, R.n, n0, K, True, p[4], p[5], p[6])
        R.x = p[4]
        R.y = p[5]
        R.sw = p[6] if sw != NULL else NULL
        if b + 1 < B.n_batches:
            r0 = start + B.bs + tid * B.bs // team
            r1 = min(start + B.bs + (tid + 1) * B.bs // team, B.n)
            if r1 > r0:
                _prefetch_rows(X, B.perm, r0, r1, n0)
    else:
        R.x = X + start * n0
        R.y = Y + start * K
        R.sw = sw + start if sw != NULL else NULL


cdef void _units_output(const UnitBlock* U, UnitsShared* sh, EpochShared* S, floating** p,
                        Acts* A, const Rows* R, const Team* T, const Mode* M) noexcept nogil:
    """After the first barrier: this thread's share of the output rows
    (the partials summed in thread order, then bias and activation), their
    loss sum into S.part[tid] and their output delta into sh.delta."""
    cdef Py_ssize_t i, k, K = U.sizes[2]
    cdef Py_ssize_t r0 = T.tid * R.n // T.team, r1 = (T.tid + 1) * R.n // T.team
    cdef floating* out = <floating*> A.h[1]
    cdef floating* o = out + r0 * K
    cdef floating* pk = <floating*> sh.partials + r0 * K
    cdef Rows rows = R[0]
    for i in range((r1 - r0) * K):
        o[i] = pk[i]
    for k in range(1, T.team):
        pk = pk + sh.partial_stride
        for i in range((r1 - r0) * K):
            o[i] = o[i] + pk[i]
    # The walk's output layer over rows r0..r1 (their blocks start there).
    A.h[1] = A.a[1] = o
    A.d_a = <floating*> sh.delta + r0 * K
    rows.n = r1 - r0
    rows.y = <const floating*> R.y + r0 * K
    rows.sw = NULL if R.sw == NULL else <const floating*> R.sw + r0
    _layer_finish(&U.L, 1, p[0], NULL, A, &rows, T, M)
    S.part[T.tid] = _output_loss(&U.L, p[0], NULL, A, &rows, False)
    A.h[1] = A.a[1] = out
    A.d_a = sh.delta


cdef void _units_team(const EpochArgs* E, UnitsShared* sh, EpochShared* S, Team* T,
                      Mode* M, int* sense) noexcept nogil:
    # This thread's place in the team and the walk's training mode.
    _one_thread(T, M, sense, NULL, True, False, 0)
    T.tid = bp_thread_id()
    T.team = bp_team_size()
    T.bar = &S.bar
    if T.tid == 0:
        sh.team = T.team


cdef void _units_step(const EpochArgs* E, const UnitBlock* U, UnitsShared* sh,
                      EpochShared* S, floating** p, floating** st, Acts* A, const Rows* R,
                      const Team* T, const Mode* M, OptConfig* oc, Py_ssize_t b,
                      double sw_sum) noexcept nogil:
    """After the second barrier: b_1's gradient from the whole output delta,
    the walk back through this thread's block, and its update (its share
    of sum(W**2) into S.part)."""
    _colsum(<floating*> sh.delta, R.n, U.sizes[2], p[1] + U.L.b_off[1], False)
    _walk_backward(&U.L, p[0], p[1], A, R, T, M, False)
    _opt_begin_step(oc)
    if E.R.lr_steps != NULL:
        oc.lr = E.R.lr_steps[b]
    S.part[MAX_THREADS + T.tid] = _update_span(
        oc, p[0], p[1], st, U.L.n_weights, 0, U.L.n_params, E.R.alpha, 1.0 / sw_sum)


cdef void _units_thread(const EpochArgs* E, UnitsShared* sh, EpochShared* S,
                        floating* th, floating* work) noexcept nogil:
    """One thread's part of the epoch (see the comment at the top)."""
    cdef const CLayout* L = E.L
    cdef int sense = 0, tid
    cdef Py_ssize_t H = L.sizes[1], h0, b, par, since_poll = 0, pending = OK
    cdef UnitBlock U
    cdef floating* p[7]
    cdef floating* st[MAX_STATE]
    cdef Acts A
    cdef Rows R
    cdef Team T
    cdef Mode M
    cdef OptConfig oc = E.oc0
    cdef BatchBooks books
    cdef BatchFate fate
    cdef bp_fpstate fp = bp_fp_enter()
    _units_team(E, sh, S, &T, &M, &sense)
    tid = T.tid
    h0 = tid * H // T.team
    # team <= H (train_epoch caps it), so every block has hw >= 1 units.
    _unit_block(L, (tid + 1) * H // T.team - h0, &U)
    _units_carve(E, &U, _align(work) + tid * sh.thread_stride, p, &A)
    A.d_a = sh.delta
    _units_pack(E, &U, h0, th, p, True)
    st[0] = p[2] if E.st[0] != NULL else NULL
    st[1] = p[3] if E.st[1] != NULL else NULL
    st[2] = NULL
    for b in range(E.B.n_batches):
        par = b & 1
        _units_batch_rows(E, &U, b, p, &R)
        T.batch_rows = R.n
        # This thread's hidden block and its partial output product.
        _layer_forward(&U.L, 0, p[0], NULL, &A, &R, &T, &M)
        _layer_product(&U.L, 1, p[0], &A, &R,
                       <floating*> sh.partials + tid * sh.partial_stride)
        _team_wait(&T)
        if tid == 0 and b > 0:
            _record_batch(E, S, T.team, &sh.held, &pending)   # batch b - 1 is complete
        # Every thread reads the same slot here, so all take the same branch.
        if sh.stop[par] != OK:
            if tid == 0:
                sh.n_stopped = b
                sh.status = sh.stop[par]
            break
        _units_output(&U, sh, S, p, &A, &R, &T, &M)
        _team_wait(&T)
        books.b = b
        books.sw_sum = _weight_total(<const floating*> R.sw, R.n)
        fate = _batch_data_loss(S, T.team, books.sw_sum, &books.data_loss)
        if fate == BATCH_NONFINITE:
            # Same value on every thread: all stop here, before any update.
            if tid == 0:
                sh.n_stopped = b
                sh.status = NONFINITE_LOSS
            break
        if fate == BATCH_UPDATE:
            _units_step(E, &U, sh, S, p, st, &A, &R, &T, &M, &oc, b, books.sw_sum)
        else:
            _no_penalty_share(S, tid)
        if tid == 0:
            _end_batch(E, S, T.team, &books, &sh.held, &since_poll, &pending)
            sh.t = oc.t
            # Read by everyone after the next batch's barrier.
            sh.stop[1 - par] = pending
    # Back to the shared buffers (b_1 from thread 0; every copy is the same).
    _units_pack(E, &U, h0, th, p, False)
    bp_fp_exit(fp)


cdef void _units_pack(const EpochArgs* E, const UnitBlock* U, Py_ssize_t h0,
                      floating* th, floating** p, bint pack) noexcept nogil:
    """Copy the thread's block of the parameters and the optimizer state in
    (``pack``) or back out (b_1 only from thread 0)."""
    cdef const CLayout* L = E.L
    cdef Py_ssize_t n0 = L.sizes[0], H = L.sizes[1], K = L.sizes[2], hw = U.sizes[1]
    cdef Py_ssize_t w0 = L.w_off[0], w1 = L.w_off[1], b0 = L.b_off[0], b1 = L.b_off[1]
    cdef floating* shared[3]
    cdef int k
    cdef bint with_b1 = bp_thread_id() == 0
    shared[0] = th
    shared[1] = <floating*> E.st[0]
    shared[2] = <floating*> E.st[1]
    for k in range(3):
        if shared[k] == NULL:
            continue
        if pack:
            _pack_units(shared[k], p[0 if k == 0 else k + 1], n0, H, K, h0, hw, w0, w1, b0, b1)
        else:
            _unpack_units(p[0 if k == 0 else k + 1], shared[k], n0, H, K, h0, hw, w0, w1,
                          b0, b1, with_b1)


cdef int _epoch_by_units(const EpochArgs* E, EpochShared* S, floating* th,
                         floating* work) noexcept nogil:
    """One epoch of a one-hidden-layer network, split across threads by
    hidden units (see the comment at the top). Returns a Status."""
    cdef UnitsShared sh
    cdef Py_ssize_t k, pending
    sh.stop[0] = sh.stop[1] = OK
    for k in range(4 * MAX_THREADS):
        S.part[k] = 0.0
    sh.thread_stride = _units_thread_stride(E.L, E.B.bs)
    sh.partial_stride = _units_partial_stride(E.L, E.B.bs)
    sh.partials = _align(work) + E.n_threads * sh.thread_stride
    sh.delta = <floating*> sh.partials + E.n_threads * sh.partial_stride
    sh.n_stopped = E.B.n_batches
    sh.status = OK
    sh.team = 1
    sh.t = E.oc0.t
    sh.held.b = 0
    sh.held.data_loss = sh.held.sw_sum = 0.0
    bp_barrier_init(&S.bar)
    with parallel(num_threads=E.n_threads):
        _units_thread(E, &sh, S, th, work)
    S.n_done = sh.n_stopped
    S.oc_out.t = sh.t
    _opt_sync(&S.oc_out)           # NAdam's mu_product follows t
    if E.R.lr_steps != NULL and sh.n_stopped > 0:
        S.oc_out.lr = E.R.lr_steps[sh.n_stopped - 1]
    if sh.n_stopped == E.B.n_batches and E.B.n_batches > 0:
        # A stop raised during the last batch (a non-finite loss of the batch
        # before it) that no barrier delivered, then the last batch's loss
        # (no barrier followed it inside the block).
        pending = sh.stop[E.B.n_batches & 1]
        _record_batch(E, S, sh.team, &sh.held, &pending)
        return <int> pending
    return <int> sh.status


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


cdef int _check_units(const CLayout* L, const EpochArgs* E, OptimizerConfig opt,
                      Py_ssize_t work_size) except -1:
    cdef const char* why = _units_refusal(L, E.B.X != NULL, opt.n_state, &E.R)
    cdef Py_ssize_t team = max(1, min(E.n_threads, L.sizes[1]))
    if why != NULL:
        raise ValueError(why.decode())
    if work_size < _units_workspace_size(L, E.B.bs, team):
        raise ValueError("workspace too small for by_units: %d < %d"
                         % (work_size, _units_workspace_size(L, E.B.bs, team)))
    return 0
