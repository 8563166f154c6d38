# The epoch split across threads by hidden units (Megatron-style tensor
# parallelism for a dense network).
# Included by src/_kernels.pyx (see its Design docstring for the order).
#
# A network of hidden layers l = 0 .. L-2 (H_l units each) and an output
# layer L-1 (K units), on ``team`` threads: thread t owns, in every hidden
# layer, the units [h0_l, h1_l) = [t H_l // team, (t + 1) H_l // team) --
# layers of equal width get the same blocks, so a residual skip stays
# within a thread's columns -- and with them the columns h0_l:h1_l of W_l,
# b_l (BN's shift) and gamma_l, BN's running statistics of those columns,
# and the rows h0:h1 of the output layer's W_{L-1} (h0:h1 the last hidden
# layer's block). For the epoch it works on a packed private copy of them
# (with their optimizer state), so no cache line of parameters, gradients
# or state is written by two cores, and it writes them back at the end.
# Every thread also keeps its own copy of the output bias b_{L-1} and
# updates it identically (it is K values).
#
# Per batch, each thread (every one of them holds the whole batch):
#
#   forward, hidden layer l:   Z[:, blk] = A_{l-1} @ W_l[:, blk] (A_{-1} = X),
#       then batch norm per column (all rows of its columns are its own: no
#       team reduction, the one-thread statistics), bias + activation,
#       dropout (the whole layer's masks of its units: unit0), the skip
#       (its columns of A_{l-1}); for every hidden layer but the last it
#       publishes its block into the shared A_l (batch x H_l)   [barrier]
#   output:  its partial product A_{L-2}[:, blk] @ W_{L-1}[blk]      [barrier]
#       then its share of the output rows: the partials summed in thread
#       order, bias, activation, loss, output delta into a shared block
#                                                                    [barrier]
#   backward: b_{L-1}'s gradient from the whole delta (the same order on
#       every thread, so their copies stay bitwise equal); dA_{L-2}[:, blk]
#       = delta @ W_{L-1}[blk].T, its own rows; then for each hidden layer
#       l, down: the skip's share (its own columns of dA_{l-1}), dropout,
#       activation and batch norm backward (local), gW_l[:, blk] =
#       A_{l-1}.T @ dZ[:, blk], and for l > 0 the partial delta of the
#       layer below, P_t = dZ[:, blk] @ W_l[:, blk].T (batch x H_{l-1}),
#       into shared partials                                         [barrier]
#       after which dA_{l-1}[:, blk'] is the partials summed in thread
#       order (bitwise the same on every run) plus the skip's share.
#   update: its packed block (and its copy of b_{L-1}), nobody else's.
#
# Barriers per batch: 2 + 2 (L - 2): W6 (two hidden layers) 4, a network
# of one hidden layer 2 as before. The walk is the one every driver uses
# (walk.pxi), over a per-thread view of the layout (UnitBlock: its packed
# offsets, its block widths, unit0), with three seams: the fan-in of a
# view's layer l > 0 is the whole A_{l-1}; the output product is a partial
# sum; the delta into a layer below is a partial sum.
#
# Shared values are written through UnitsShared and EpochShared and read
# only after a barrier that follows the write, and no slot is written again
# before every thread has passed a barrier that follows its last read:
#
# * A_l (the published activations) is read during batch b's forward (the
#   next layer's product) and backward (gW_{l+1}), so it is double-buffered
#   by batch parity: batch b + 2 rewrites it only after its writer passed
#   batch b + 1's barriers, which every reader reached after its batch-b
#   reads.
# * The output partials are written before a batch's output barrier and
#   read between it and the delta barrier; the output delta is written
#   between those two and read before the thread's next batch's first
#   barrier; the loss shares likewise: a writer of batch b + 1 has passed
#   batch b + 1's first barrier, after every read of batch b, so one copy
#   of each suffices.
# * The delta partials of layer l are read right after their barrier, and
#   the next stage (layer l - 1) writes before its own barrier: two copies,
#   by the parity of l, since a fast thread may write stage l - 1 while a
#   slow one still reads stage l; stage l - 2 rewrites stage l's copy only
#   after stage l - 1's barrier, which follows every read of stage l.
#   Across batches, batch b + 1's first stage follows batch b + 1's output
#   barriers.
# * ``stop[b & 1]`` is what every thread checks after batch b's first
#   barrier (thread 0 writes it for the next batch at the end of this one).
#
# The end of a batch is the row split's (batch_end.pxi) in its late mode:
# batch b's loss is recorded by thread 0 after batch b + 1's first barrier
# (it needs every thread's sum(W**2)) or, for the last batch, after the
# parallel block.
#
# Plans it takes: _units_refusal says, the one place that decides (Python
# asks it through unit_split_refusal; _engine.choose_threads decides when
# the split pays): at least one hidden layer (batch norm, dropout, residual
# skips and every activation included), dense X, optimizers with at most
# two state buffers, no l1, max-norm or clipping (clip_norm would need the
# whole gradient's norm: one more team reduction per batch; not built).
# Every other layout takes the row split. The team is capped at the
# narrowest hidden layer's width (train_epoch), so every block has a unit.


cdef struct UnitBlock:
    # Thread t's view of the layout: its block of units of every hidden
    # layer, over its packed parameters [every W_l block | every b_l block
    # (b_{L-1} whole) | every gamma_l block] and its packed running
    # statistics [mean | var] per batch-norm layer. ``L`` points into the
    # arrays below (never copy a UnitBlock); _unit_view(U, l) sets the two
    # sizes that layer l's calls read.
    CLayout L
    Py_ssize_t sizes[MAX_LAYERS + 1]
    Py_ssize_t fan_in[MAX_LAYERS]     # layer l's input as the thread reads it
    Py_ssize_t width[MAX_LAYERS]      # the block's units (K for the output layer)
    Py_ssize_t unit0[MAX_LAYERS]      # its first unit in the layer (0: output)
    Py_ssize_t w_off[MAX_LAYERS]
    Py_ssize_t b_off[MAX_LAYERS]
    Py_ssize_t g_off[MAX_LAYERS]
    Py_ssize_t rm_off[MAX_LAYERS]
    void* own_a[MAX_LAYERS]           # the thread's own a_l block (A.a[l] before publishing)


cdef struct UnitsShared:
    # What the unit split shares beyond EpochShared.
    Py_ssize_t stop[2]       # the status every thread checks after batch b's first barrier (b & 1)
    void* partials           # team blocks of partial_stride: each thread's output product
    void* delta              # the output delta (batch x K), one partial_stride
    void* acts               # the published A_l, two (batch parity) per hidden layer but the last
    void* dparts             # the delta partials: 2 (stage parity) x team blocks of dpart_stride
    Py_ssize_t acts_off[MAX_LAYERS]   # A_l of parity 0 at acts + acts_off[l]; parity 1 follows
    Py_ssize_t thread_stride, partial_stride, dpart_stride
    Py_ssize_t n_stopped     # batch at which the threads stopped (n_batches if none)
    Py_ssize_t status        # the Status they stopped with
    Py_ssize_t team
    long long t              # the optimizer's step count at the end
    BatchBooks held          # thread 0's books of the batch not recorded yet


cdef const char* _units_refusal(const CLayout* L, bint dense, int n_state,
                                const Rules* R) noexcept nogil:
    """Why the unit split cannot run this epoch, or NULL if it can: the one
    place that decides. ``R`` NULL: the layout and the input alone."""
    if L.n_layers < 2:
        return "by_units (the hidden-unit split) needs at least one hidden layer"
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


cdef inline Py_ssize_t _units_team_cap(const CLayout* L, Py_ssize_t n_threads) noexcept nogil:
    """At most one thread per unit of the narrowest hidden layer."""
    cdef Py_ssize_t l, team = n_threads
    for l in range(1, L.n_layers):
        team = min(team, L.sizes[l])
    return max(1, team)


# The workspace (_epoch_by_units, carved by _units_carve): per thread, its
# packed parameters, gradient and two optimizer states, its running
# statistics, its copy of the batch (x, y, sample weights), the walk's
# blocks of every layer at its block's width, two deltas; sized for blocks
# of ceil(H_l / team) units. Shared: every thread's partial output product,
# the output delta, the published activations and the delta partials.
# Every block starts on its own cache lines. Should OpenMP grant fewer
# threads than asked (a nested parallel region), thread 0 runs the epoch
# alone (_units_thread), so the workspace also holds a team of one.

cdef Py_ssize_t _units_workspace_size(const CLayout* L, Py_ssize_t rows,
                                      Py_ssize_t team) noexcept nogil:
    return max(_units_team_size(L, rows, team), _units_team_size(L, rows, 1)) + PAD


cdef inline Py_ssize_t _units_team_size(const CLayout* L, Py_ssize_t rows,
                                        Py_ssize_t team) noexcept nogil:
    return (team * _units_thread_stride(L, rows, team)
            + (team + 1) * _units_partial_stride(L, rows)
            + _units_acts_size(L, rows, NULL) + 2 * team * _units_dpart_stride(L, rows))


cdef Py_ssize_t _units_thread_stride(const CLayout* L, Py_ssize_t rows,
                                     Py_ssize_t team) noexcept nogil:
    """One thread's share (_units_carve) for blocks of at most ceil(H_l /
    team) units."""
    cdef Py_ssize_t NL = L.n_layers, K = L.sizes[NL], l, w = 0, blk
    cdef Py_ssize_t n_par = K, n_buf = 0, acts = _round_up(rows * K), mw = K
    for l in range(NL - 1):
        w = (L.sizes[l + 1] + team - 1) // team
        n_par += L.sizes[l] * w + w + (w if L.g_off[l] >= 0 else 0)
        n_buf += 2 * w if L.rm_off[l] >= 0 else 0
        blk = _round_up(rows * w)
        acts += blk * (1 + L.keep_z[l] + _has_bn(L, l) + _has_out(L, l) + (L.dropout[l] > 0))
        mw = max(mw, w)
    n_par += w * K                  # the output layer's rows of the last block
    return (4 * _round_up(n_par) + _round_up(n_buf) + _round_up(rows * L.sizes[0])
            + _round_up(rows * K) + _round_up(rows) + acts + 2 * _round_up(rows * mw))


cdef inline Py_ssize_t _units_partial_stride(const CLayout* L, Py_ssize_t rows) noexcept nogil:
    return _round_up(rows * L.sizes[L.n_layers])


cdef Py_ssize_t _units_acts_size(const CLayout* L, Py_ssize_t rows,
                                 Py_ssize_t* offsets) noexcept nogil:
    """Two blocks (batch parity) of A_l for every hidden layer but the last;
    their offsets into ``offsets`` (if not NULL)."""
    cdef Py_ssize_t l, off = 0
    for l in range(L.n_layers - 2):
        if offsets != NULL:
            offsets[l] = off
        off += 2 * _round_up(rows * L.sizes[l + 1])
    return off


cdef inline Py_ssize_t _units_dpart_stride(const CLayout* L, Py_ssize_t rows) noexcept nogil:
    # A delta partial is batch x H_{l-1}, l-1 a hidden layer but the last.
    cdef Py_ssize_t l, w = 0
    for l in range(1, L.n_layers - 1):
        w = max(w, L.sizes[l])
    return _round_up(rows * w)


cdef void _unit_block(const CLayout* L, int tid, int team, UnitBlock* U) noexcept nogil:
    """Thread tid's view: its blocks, their packed offsets (the layout's
    order: every W_l, every b_l, every gamma_l), its running statistics."""
    cdef Py_ssize_t NL = L.n_layers, K = L.sizes[NL], l, H, off = 0
    U.L = L[0]
    for l in range(NL - 1):
        H = L.sizes[l + 1]
        U.unit0[l] = tid * H // team
        U.width[l] = (tid + 1) * H // team - U.unit0[l]
        U.fan_in[l] = L.sizes[l]              # X, or the whole A_{l-1}
    U.unit0[NL - 1] = 0
    U.width[NL - 1] = K
    U.fan_in[NL - 1] = U.width[NL - 2]        # the thread's own block of A_{L-2}
    for l in range(NL):
        U.w_off[l] = off
        off += U.fan_in[l] * U.width[l]
    U.L.n_weights = off
    for l in range(NL):
        U.b_off[l] = off
        off += U.width[l]
    for l in range(NL):
        U.g_off[l] = -1
        if L.g_off[l] >= 0:
            U.g_off[l] = off
            off += U.width[l]
    U.L.n_params = off
    off = 0
    for l in range(NL):
        U.rm_off[l] = -1
        if L.rm_off[l] >= 0:
            U.rm_off[l] = off
            off += 2 * U.width[l]
    U.L.n_buffers = off
    U.sizes[0] = L.sizes[0]
    for l in range(NL):
        U.sizes[l + 1] = U.width[l]
    U.L.sizes = U.sizes
    U.L.w_off = U.w_off
    U.L.b_off = U.b_off
    U.L.g_off = U.g_off
    U.L.rm_off = U.rm_off
    U.L.unit0 = U.unit0
    U.L.max_width = 0
    for l in range(NL):
        U.L.max_width = max(U.L.max_width, U.width[l])
    # (st_off, stats_per_thread: the layout's; each thread's batch-norm
    # scratch is a whole thread's of the row split, and its one-thread
    # team reads only its first slot.)


cdef inline void _unit_view(UnitBlock* U, Py_ssize_t l) noexcept nogil:
    # Layer l's calls read sizes[l] (its input's width) and sizes[l + 1].
    U.sizes[l] = U.fan_in[l]
    U.sizes[l + 1] = U.width[l]


cdef void _units_carve(const EpochArgs* E, UnitBlock* U, floating* mine,
                       floating** p, floating** bufs, Acts* A) noexcept nogil:
    """Split one thread's workspace (``mine``, _units_thread_stride long):
    p = [params, grad, state 0, state 1, x, y, sw] of the packed block, its
    running statistics, then the walk's blocks in A (as _carve, at the
    block's widths), each on its own cache lines."""
    cdef const CLayout* L = E.L
    cdef Py_ssize_t k, l, blk, bs = E.B.bs
    cdef Py_ssize_t sizes[7]
    sizes[0] = sizes[1] = sizes[2] = sizes[3] = U.L.n_params
    sizes[4] = bs * L.sizes[0]
    sizes[5] = bs * L.sizes[L.n_layers]
    sizes[6] = bs
    for k in range(7):
        p[k] = mine
        mine += _round_up(sizes[k])
    bufs[0] = mine
    mine += _round_up(U.L.n_buffers)
    for l in range(L.n_layers):
        blk = _round_up(bs * U.width[l])
        A.h[l] = mine
        mine += blk
        A.z[l] = A.xh[l] = A.m[l] = NULL
        A.a[l] = A.h[l]
        if L.keep_z[l]:
            A.z[l] = mine
            mine += blk
        if _has_bn(L, l):
            A.xh[l] = mine
            mine += blk
        if _has_out(L, l):
            A.a[l] = mine
            mine += blk
        if L.dropout[l] > 0:
            A.m[l] = mine
            mine += blk
        U.own_a[l] = A.a[l]
    A.d_a = mine
    mine += _round_up(bs * U.L.max_width)
    A.d_b = mine


cdef void _units_batch_rows(const EpochArgs* E, const UnitBlock* U, Py_ssize_t b,
                            floating** p, Rows* R) noexcept nogil:
    """Rows of batch b: gathered into this thread's own copy (every thread
    reads the whole batch) with its share of the next batch prefetched, or
    read in place in the natural order."""
    cdef const Batches* B = &E.B
    cdef Py_ssize_t start = b * B.bs, n0 = E.L.sizes[0], K = E.L.sizes[E.L.n_layers], r0, r1
    cdef int tid = bp_thread_id(), team = bp_team_size()
    cdef const floating* X = <const floating*> B.X
    cdef const floating* Y = <const floating*> B.Y
    cdef const floating* sw = <const floating*> B.sw
    R.n = min(B.bs, B.n - start)
    R.row0 = 0
    R.sp = NULL
    if B.perm != NULL:
        _gather(X, Y, sw, B.perm, start, 0, R.n, n0, K, True, p[4], p[5], p[6])
        R.x = p[4]
        R.y = p[5]
        R.sw = p[6] if sw != NULL else NULL
        R.ids = B.perm + start          # dropout: row i is X's row perm[start + i]
        R.first = 0
        if b + 1 < B.n_batches:
            r0 = start + B.bs + tid * B.bs // team
            r1 = min(start + B.bs + (tid + 1) * B.bs // team, B.n)
            if r1 > r0:
                _prefetch_rows(X, B.perm, r0, r1, n0)
    else:
        R.x = X + start * n0
        R.y = Y + start * K
        R.sw = sw + start if sw != NULL else NULL
        R.ids = NULL
        R.first = start


cdef void _units_publish(const floating* own, floating* full, Py_ssize_t rows,
                         Py_ssize_t H, Py_ssize_t h0, Py_ssize_t hw) noexcept nogil:
    """full[:, h0:h0+hw] = own (rows x hw): the thread's block of A_l."""
    cdef Py_ssize_t i
    for i in range(rows):
        memcpy(full + i * H + h0, own + i * hw, hw * sizeof(floating))


cdef void _units_sum_partials(const floating* parts, Py_ssize_t stride, int team,
                              Py_ssize_t rows, Py_ssize_t H, Py_ssize_t h0, Py_ssize_t hw,
                              floating* out, bint skip) noexcept nogil:
    """out = (the team's partials summed in thread order)[:, h0:h0+hw], plus
    out itself (the residual skip's share) with ``skip``: dL/da of this
    thread's units of the layer below, bitwise the same on every run."""
    cdef Py_ssize_t i, j
    cdef int t
    cdef floating v
    cdef const floating* pk
    for i in range(rows):
        for j in range(hw):
            pk = parts + i * H + h0 + j
            v = pk[0]
            for t in range(1, team):
                v = v + pk[t * stride]
            if skip:
                v = v + out[i * hw + j]
            out[i * hw + j] = v


cdef bint _units_first_sync(const EpochArgs* E, UnitsShared* sh, EpochShared* S,
                            const Team* T, Py_ssize_t b, Py_ssize_t* pending) noexcept nogil:
    """After batch b's first barrier: thread 0 records batch b - 1 (now
    complete); True if the threads stop here (every thread reads the same
    slot, so all take the same branch)."""
    if T.tid == 0 and b > 0:
        _record_batch(E, S, T.team, &sh.held, pending)   # batch b - 1 is complete
    if sh.stop[b & 1] != OK:
        if T.tid == 0:
            sh.n_stopped = b
            sh.status = sh.stop[b & 1]
        return True
    return False


cdef bint _units_forward(const EpochArgs* E, UnitBlock* U, UnitsShared* sh, EpochShared* S,
                         floating** p, floating* bufs, Acts* A, const Rows* R, const Team* T,
                         const Team* T1, const Mode* M, Py_ssize_t b,
                         Py_ssize_t* pending) noexcept nogil:
    """This thread's blocks of every hidden layer (each but the last
    published, then a barrier) and its partial output product (then a
    barrier). True if the threads stop at the batch's first barrier."""
    cdef const CLayout* L = E.L
    cdef Py_ssize_t l, NL = L.n_layers
    cdef int par = b & 1
    cdef floating* full
    for l in range(NL - 1):
        _unit_view(U, l)
        A.a[l] = U.own_a[l]
        _layer_forward(&U.L, l, p[0], bufs, A, R, T1, M)
        if l < NL - 2:
            full = <floating*> sh.acts + sh.acts_off[l] + par * _round_up(E.B.bs * L.sizes[l + 1])
            _units_publish(<floating*> A.a[l], full, R.n, L.sizes[l + 1], U.unit0[l], U.width[l])
            A.a[l] = full       # the next layer's input and gW_{l+1}'s
            _team_wait(T)
            if l == 0 and _units_first_sync(E, sh, S, T, b, pending):
                return True
    _unit_view(U, NL - 1)
    _layer_product(&U.L, NL - 1, p[0], A, R,
                   <floating*> sh.partials + T.tid * sh.partial_stride)
    _team_wait(T)
    return NL == 2 and _units_first_sync(E, sh, S, T, b, pending)


cdef void _units_output(UnitBlock* U, UnitsShared* sh, EpochShared* S, floating** p,
                        Acts* A, const Rows* R, const Team* T, const Mode* M) noexcept nogil:
    """After the output barrier: this thread's share of the output rows
    (the partials summed in thread order, then bias and activation), their
    loss sum into S.part[tid] and their output delta into sh.delta."""
    cdef Py_ssize_t i, k, last = U.L.n_layers - 1, K = U.width[last]
    cdef Py_ssize_t r0 = T.tid * R.n // T.team, r1 = (T.tid + 1) * R.n // T.team
    cdef floating* out = <floating*> A.h[last]
    cdef void* own_d = A.d_a
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
    _unit_view(U, last)
    A.h[last] = A.a[last] = o
    A.d_a = <floating*> sh.delta + r0 * K
    rows.n = r1 - r0
    rows.y = <const floating*> R.y + r0 * K
    rows.sw = NULL if R.sw == NULL else <const floating*> R.sw + r0
    _layer_finish(&U.L, last, p[0], NULL, A, &rows, T, M)
    S.part[T.tid] = _output_loss(&U.L, p[0], NULL, A, &rows, False)
    A.h[last] = A.a[last] = out
    A.d_a = own_d


cdef bint _units_team(const EpochArgs* E, UnitsShared* sh, EpochShared* S, Team* T,
                      Team* T1, Mode* M, int* sense, int* sense1,
                      floating* work) noexcept nogil:
    """This thread's place in the team (T: the barriers), its one-thread
    team for the walk (T1: batch norm's statistics of its own columns,
    from every row of the batch) and the walk's training mode. False if
    the thread sits this epoch out: should OpenMP grant fewer threads than
    asked, thread 0 runs it alone (the workspace was carved for the team
    asked, and holds one thread's too)."""
    _one_thread(T1, M, sense1, NULL, True, False, E.B.seed)
    M.update_running = True          # each thread its own columns' statistics
    M.epoch = E.B.epoch
    M.keys = E.B.keys
    T[0] = T1[0]
    T.sense = sense
    T.tid = bp_thread_id()
    T.team = bp_team_size()
    T.bar = &S.bar
    if T.team != E.n_threads:
        if T.tid != 0:
            return False
        T.team = 1
        _units_places(E, sh, work, 1)
    if E.W.stats != NULL:
        T1.stats = E.W.stats + T.tid * E.L.stats_per_thread
    return True


cdef void _units_step(const EpochArgs* E, UnitBlock* U, UnitsShared* sh,
                      EpochShared* S, floating** p, floating** st, Acts* A, const Rows* R,
                      const Team* T, const Team* T1, const Mode* M, OptConfig* oc,
                      Py_ssize_t b, double sw_sum) noexcept nogil:
    """After the delta barrier: b_{L-1}'s gradient from the whole output
    delta, the walk back through this thread's blocks (one barrier per
    hidden layer but the first, for the delta partials), and its update
    (its share of sum(W**2) into S.part)."""
    cdef const CLayout* L = E.L
    cdef Py_ssize_t l, NL = L.n_layers, rows = R.n
    cdef floating* d = <floating*> A.d_a
    cdef floating* dn = <floating*> A.d_b
    cdef floating* tmp
    cdef floating* parts
    cdef bint skip
    _colsum(<floating*> sh.delta, rows, L.sizes[NL], p[1] + U.b_off[NL - 1], False)
    # dA_{L-2}[:, blk] = delta @ W_{L-1}[blk].T; gW_{L-1}[blk] = A_{L-2}[:, blk].T @ delta
    _unit_view(U, NL - 1)
    _layer_grads(&U.L, NL - 1, p[0], p[1], A, R, <floating*> sh.delta, d, 0, False)
    for l in range(NL - 2, -1, -1):
        _unit_view(U, l)
        # d holds dL/da_l of this thread's units: the skip's share goes
        # to the same units of dL/da_{l-1} (equal widths, equal blocks).
        skip = L.residual[l] and l > 0
        if skip:
            memcpy(dn, d, rows * U.width[l] * sizeof(floating))
        _hidden_backward(&U.L, l, p[0], p[1], A, R, T1, M, d, False)
        if l == 0:
            _layer_grads(&U.L, 0, p[0], p[1], A, R, d, NULL, 0, False)
            break
        # P_t = dZ[:, blk] @ W_l[:, blk].T (batch x H_{l-1}); gW_l[:, blk]
        parts = <floating*> sh.dparts + ((l & 1) * T.team + T.tid) * sh.dpart_stride
        _layer_grads(&U.L, l, p[0], p[1], A, R, d, parts, 0, False)
        _team_wait(T)
        _units_sum_partials(<floating*> sh.dparts + (l & 1) * T.team * sh.dpart_stride,
                            sh.dpart_stride, T.team, rows, L.sizes[l], U.unit0[l - 1],
                            U.width[l - 1], dn, skip)
        tmp = d
        d = dn
        dn = tmp
    _opt_begin_step(oc)
    if E.R.lr_steps != NULL:
        oc.lr = E.R.lr_steps[b]
    S.part[MAX_THREADS + T.tid] = _update_span(
        oc, p[0], p[1], st, U.L.n_weights, 0, U.L.n_params, E.R.alpha, 1.0 / sw_sum)


cdef void _units_thread(const EpochArgs* E, UnitsShared* sh, EpochShared* S,
                        floating* th, floating* work) noexcept nogil:
    """One thread's part of the epoch (see the comment at the top)."""
    cdef int sense = 0, sense1 = 0, tid
    cdef Py_ssize_t b, par, since_poll = 0, pending = OK
    cdef UnitBlock U
    cdef floating* p[7]
    cdef floating* st[MAX_STATE]
    cdef floating* bufs
    cdef Acts A
    cdef Rows R
    cdef Team T, T1
    cdef Mode M
    cdef OptConfig oc = E.oc0
    cdef BatchBooks books
    cdef BatchFate fate
    cdef bp_fpstate fp
    if not _units_team(E, sh, S, &T, &T1, &M, &sense, &sense1, work):
        return
    fp = bp_fp_enter()
    tid = T.tid
    # team <= every hidden width (train_epoch caps it): every block has a unit.
    _unit_block(E.L, tid, T.team, &U)
    _units_carve(E, &U, _align(work) + tid * sh.thread_stride, p, &bufs, &A)
    _units_pack(E, &U, th, p, bufs, True)
    st[0] = p[2] if E.st[0] != NULL else NULL
    st[1] = p[3] if E.st[1] != NULL else NULL
    st[2] = NULL
    for b in range(E.B.n_batches):
        par = b & 1
        _units_batch_rows(E, &U, b, p, &R)
        T.batch_rows = T1.batch_rows = R.n
        if _units_forward(E, &U, sh, S, p, bufs, &A, &R, &T, &T1, &M, b, &pending):
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
            _units_step(E, &U, sh, S, p, st, &A, &R, &T, &T1, &M, &oc, b, books.sw_sum)
        else:
            _no_penalty_share(S, tid)
        if tid == 0:
            _end_batch(E, S, T.team, &books, &sh.held, &since_poll, &pending)
            sh.t = oc.t
            # Read by everyone after the next batch's first barrier.
            sh.stop[1 - par] = pending
    # Back to the shared buffers (b_{L-1} from thread 0; every copy is the same).
    _units_pack(E, &U, th, p, bufs, False)
    bp_fp_exit(fp)


cdef void _units_pack(const EpochArgs* E, const UnitBlock* U, floating* th, floating** p,
                      floating* bufs, bint pack) noexcept nogil:
    """Copy the thread's blocks of the parameters, the optimizer state and
    the running statistics in (``pack``) or back out (b_{L-1} only from
    thread 0)."""
    cdef const CLayout* L = E.L
    cdef Py_ssize_t l, NL = L.n_layers, H
    cdef floating* shared[3]
    cdef floating* rm
    cdef int k
    cdef bint with_out = bp_thread_id() == 0 or pack
    shared[0] = th
    shared[1] = <floating*> E.st[0]
    shared[2] = <floating*> E.st[1]
    for k in range(3):
        if shared[k] != NULL:
            _pack_block(L, U, shared[k], p[0 if k == 0 else k + 1], pack, with_out)
    for l in range(NL - 1):
        if L.rm_off[l] >= 0:
            H = L.sizes[l + 1]
            rm = <floating*> E.buffers + L.rm_off[l] + U.unit0[l]
            # [mean | var] of its columns (the layout's var follows its mean, H on)
            _copy_block(rm, H, bufs + U.rm_off[l], U.width[l], 2, U.width[l], pack)


cdef inline void _copy_block(floating* full, Py_ssize_t ld_full, floating* packed,
                             Py_ssize_t ld_packed, Py_ssize_t rows, Py_ssize_t n,
                             bint pack) noexcept nogil:
    # ``rows`` rows of ``n`` values between a strided and a packed matrix.
    cdef Py_ssize_t i
    for i in range(rows):
        if pack:
            memcpy(packed + i * ld_packed, full + i * ld_full, n * sizeof(floating))
        else:
            memcpy(full + i * ld_full, packed + i * ld_packed, n * sizeof(floating))


cdef void _pack_block(const CLayout* L, const UnitBlock* U, floating* full,
                      floating* packed, bint pack, bint with_out) noexcept nogil:
    """packed = the thread's blocks of the flat ``full`` in its view's order
    (``pack``), or back (b_{L-1} only ``with_out``): W_l[:, blk] of every
    hidden layer, W_{L-1}[blk] (contiguous rows), b_l[blk], b_{L-1},
    gamma_l[blk]."""
    cdef Py_ssize_t l, NL = L.n_layers, K = L.sizes[NL], last = NL - 1
    for l in range(NL - 1):
        _copy_block(full + L.w_off[l] + U.unit0[l], L.sizes[l + 1], packed + U.w_off[l],
                    U.width[l], L.sizes[l], U.width[l], pack)
    _copy_block(full + L.w_off[last] + U.unit0[last - 1] * K, 0, packed + U.w_off[last], 0, 1,
                U.width[last - 1] * K, pack)
    for l in range(NL - 1):
        _copy_block(full + L.b_off[l] + U.unit0[l], 0, packed + U.b_off[l], 0, 1,
                    U.width[l], pack)
        if L.g_off[l] >= 0:
            _copy_block(full + L.g_off[l] + U.unit0[l], 0, packed + U.g_off[l], 0, 1,
                        U.width[l], pack)
    if with_out:
        _copy_block(full + L.b_off[last], 0, packed + U.b_off[last], 0, 1, K, pack)


cdef void _units_places(const EpochArgs* E, UnitsShared* sh, floating* work,
                        int team) noexcept nogil:
    """Where a team of ``team`` threads finds its blocks in the workspace."""
    sh.team = team
    sh.thread_stride = _units_thread_stride(E.L, E.B.bs, team)
    sh.partial_stride = _units_partial_stride(E.L, E.B.bs)
    sh.dpart_stride = _units_dpart_stride(E.L, E.B.bs)
    sh.partials = _align(work) + team * sh.thread_stride
    sh.delta = <floating*> sh.partials + team * sh.partial_stride
    sh.acts = <floating*> sh.delta + sh.partial_stride
    sh.dparts = <floating*> sh.acts + _units_acts_size(E.L, E.B.bs, sh.acts_off)


cdef int _epoch_by_units(const EpochArgs* E, EpochShared* S, floating* th,
                         floating* work) noexcept nogil:
    """One epoch split across threads by hidden units (see the comment at
    the top). Returns a Status."""
    cdef UnitsShared sh
    cdef Py_ssize_t k, pending
    sh.stop[0] = sh.stop[1] = OK
    for k in range(4 * MAX_THREADS):
        S.part[k] = 0.0
    _units_places(E, &sh, work, E.n_threads)
    sh.n_stopped = E.B.n_batches
    sh.status = OK
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


cdef int _check_units(const CLayout* L, const EpochArgs* E, OptimizerConfig opt,
                      Py_ssize_t work_size) except -1:
    cdef const char* why = _units_refusal(L, E.B.X != NULL, opt.n_state, &E.R)
    cdef Py_ssize_t team = _units_team_cap(L, E.n_threads)
    if why != NULL:
        raise ValueError(why.decode())
    if work_size < _units_workspace_size(L, E.B.bs, team):
        raise ValueError("workspace too small for by_units: %d < %d"
                         % (work_size, _units_workspace_size(L, E.B.bs, team)))
    return 0
