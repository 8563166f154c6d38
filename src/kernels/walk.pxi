# The layer walk: forward, loss and backward over one block of rows.
# Included by src/_kernels.pyx (see its Design docstring for the order).
#
# ONE walk over the layout serves every driver: the row-split epoch (each
# thread walks its rows of the batch; batch norm's statistics are reduced
# across the team), the hidden-unit epoch (over each thread's view of its
# blocks of every layer: CLayout.unit0, _hidden_backward, _layer_grads), the
# full-batch loss and gradient, inference (mode.training off, nothing kept
# for a backward pass) and the benchmark floor (mode.products_only: the
# GEMMs and nothing else, so the floor follows every layer kind for free).
#
# Fused types cannot live in structs, so the blocks are void pointers that
# the functions below cast to ``floating*``.

cdef struct Acts:
    # The per-layer blocks of one workspace; row r of the batch is row r of
    # every block (a thread works on its rows row0 .. row0 + n).
    void* h[MAX_LAYERS]      # h_l = act(...) (for the output layer: the output)
    void* z[MAX_LAYERS]      # pre-activations saved for the backward pass, or NULL
    void* xh[MAX_LAYERS]     # batch norm's normalized input, or NULL
    void* a[MAX_LAYERS]      # layer outputs a_l (== h[l] unless dropout/residual)
    void* m[MAX_LAYERS]      # dropout's multipliers 1/(1-p) or 0 (training), or NULL
    void* d_a                # two delta blocks of max_width columns
    void* d_b


cdef struct Team:
    # How a thread cooperates with the others on one batch.
    int tid
    int team
    bp_barrier_t* bar
    int* sense               # this thread's barrier sense
    double* stats            # batch-norm scratch: team blocks of stats_per_thread
    Py_ssize_t batch_rows    # rows of the whole batch (batch norm's N)


cdef struct Rows:
    # One thread's share of a batch (or a chunk of a full batch).
    Py_ssize_t n             # rows
    Py_ssize_t row0          # first row in the shared blocks of Acts
    const void* x            # dense input rows (NULL with sparse input)
    const SparseRows* sp     # sparse input rows, or NULL
    const void* y
    const void* sw           # sample weights, or NULL
    const Py_ssize_t* ids    # row of X of each row (dropout), NULL: first + i
    Py_ssize_t first


cdef struct Mode:
    bint training            # batch statistics and dropout (else running statistics)
    bint update_running      # thread 0 updates batch norm's running statistics
    bint products_only       # the benchmark floor: GEMMs only
    unsigned long long seed  # dropout masks are a function of (seed, epoch, sample, unit)
    unsigned long long epoch
    const uint64_t* keys     # the sample of each row of X (row_keys), or NULL: its index


cdef inline void _one_thread(Team* T, Mode* M, int* sense, double* stats,
                             bint training, bint products_only,
                             unsigned long long seed) noexcept nogil:
    """Team and Mode of a single-threaded driver (full batch, inference,
    floor): no barrier, nothing written to the running statistics."""
    sense[0] = 0
    T.tid = 0
    T.team = 1
    T.bar = NULL
    T.sense = sense
    T.stats = stats
    M.training = training
    M.update_running = False
    M.products_only = products_only
    M.seed = seed
    M.epoch = 0
    M.keys = NULL


cdef inline floating* _blk(void* base, Py_ssize_t row0, Py_ssize_t width,
                           const floating* like) noexcept nogil:
    # Row row0 of a block of ``width`` columns (``like`` only fixes the type).
    return NULL if base == NULL else <floating*> base + row0 * width


cdef inline void _team_wait(const Team* T) noexcept nogil:
    # (A one-thread team, e.g. a unit-split thread's own columns, waits for
    # nobody, whichever barrier the build has.)
    if T.team > 1:
        bp_barrier_wait(T.bar, T.sense, T.team)


cdef inline double* _bn_scratch(const CLayout* L, Py_ssize_t l, const Team* T,
                                int tid) noexcept nogil:
    # Thread tid's batch-norm scratch for layer l: [mean | istd | mean_d |
    # mean_dx | sum | sqdev | sum_d | sum_dx], each sizes[l + 1] wide, then
    # [weight part | batch weight] (see _BN_STATS and _BN_WEIGHTS).
    return T.stats + tid * L.stats_per_thread + L.st_off[l]


cdef void _team_mean(const CLayout* L, Py_ssize_t l, const Team* T, int slot,
                     double* out, double n) noexcept nogil:
    """out[j] = (sum over threads of their partial sums in ``slot``) / n, in
    thread order (so every thread computes bitwise the same value)."""
    cdef Py_ssize_t j, fo = L.sizes[l + 1]
    cdef int t
    cdef double* part
    for j in range(fo):
        out[j] = 0.0
    for t in range(T.team):
        part = _bn_scratch(L, l, T, t) + slot * fo
        for j in range(fo):
            out[j] += part[j]
    for j in range(fo):
        out[j] = out[j] / n


cdef double _team_weight(const CLayout* L, Py_ssize_t l, const Team* T) noexcept nogil:
    """The batch's weight sum: the threads' partial sums, in thread order."""
    cdef Py_ssize_t off = _BN_STATS * L.sizes[l + 1]
    cdef double total = 0.0
    cdef int t
    for t in range(T.team):
        total += _bn_scratch(L, l, T, t)[off]
    return total


cdef void _bn_local_stats(floating* z, const floating* sw, Py_ssize_t rows,
                          Py_ssize_t fo, double* my, double count) noexcept nogil:
    """This thread's share of the batch statistics, for one barrier: the
    column sums S_t (slot 4), the squared deviations M2_t about the
    thread's own mean S_t / n_t (slot 5) and n_t = ``count`` (its weight,
    or its rows). _team_var combines them (Chan, Golub and LeVeque)."""
    cdef Py_ssize_t j
    cdef double* own_mean = my      # slot 0: the batch mean overwrites it later
    for j in range(4 * fo, 6 * fo):
        my[j] = 0.0
    my[_BN_STATS * fo + 2] = count
    if floating is float:
        bp_col_sums_f(z, sw, rows, fo, my + 4 * fo)
    else:
        bp_col_sums_d(z, sw, rows, fo, my + 4 * fo)
    for j in range(fo):
        own_mean[j] = my[4 * fo + j] / count if count > 0 else 0.0
    if floating is float:
        bp_col_sqdev_f(z, sw, rows, fo, own_mean, my + 5 * fo)
    else:
        bp_col_sqdev_d(z, sw, rows, fo, own_mean, my + 5 * fo)


cdef void _team_var(const CLayout* L, Py_ssize_t l, const Team* T, const double* mean,
                    double* out, double n) noexcept nogil:
    """out[j] = the batch's biased variance from the threads' shares
    (_bn_local_stats), in thread order:

        sum_t (M2_t + n_t * (S_t / n_t - mean)**2) / n

    (Chan, Golub and LeVeque's pairwise update, exact in exact arithmetic).
    One thread: S / n is ``mean`` bitwise and the second term 0, so this is
    the two-pass variance sum((z - mean)**2) / n exactly as before."""
    cdef Py_ssize_t j, fo = L.sizes[l + 1]
    cdef int t
    cdef double* part
    cdef double n_t, dm
    for j in range(fo):
        out[j] = 0.0
    for t in range(T.team):
        part = _bn_scratch(L, l, T, t)
        n_t = part[_BN_STATS * fo + 2]
        for j in range(fo):
            dm = (part[4 * fo + j] / n_t - mean[j]) if n_t > 0 else 0.0
            out[j] += part[5 * fo + j] + n_t * (dm * dm)
    for j in range(fo):
        out[j] = out[j] / n


cdef void _bn_forward(const CLayout* L, Py_ssize_t l, floating* z, floating* xh,
                      const floating* gamma, floating* buffers, const Team* T,
                      const Mode* M, Py_ssize_t rows, const floating* sw) noexcept nogil:
    """z = BN(z) * gamma in place (torch.nn.BatchNorm1d without its shift).

    Training: batch mean and biased variance over the team's rows, and
    thread 0 updates the running statistics with the unbiased variance, as
    torch does. Otherwise the running statistics. ``xh`` (may be NULL in
    inference) keeps the normalized input.

    One barrier: every thread reduces its rows to (sum, squared deviations
    about its own mean, count) and all combine them (_team_var). Two-pass
    over the batch (mean, barrier, deviations, barrier) cost a second
    barrier per layer and batch; one thread gets bitwise the same numbers
    either way, more threads differ from it at rounding level (as their
    summation order already did).

    With sample weights ``sw`` (this thread's rows; NULL: none) a row of
    weight w counts as w rows: mean = sum(w z) / W, var = sum(w (z -
    mean)**2) / W with W = sum(w) over the batch, and the unbiased variance
    of the running statistics is var * W / (W - 1) -- the statistics of the
    batch with each row repeated w times. A batch of W <= 1 leaves the
    running statistics alone (as N <= 1 does); one of W <= 0 carries no
    information (its loss and gradient are 0) and is normalized by its
    unweighted statistics, so that nothing downstream turns into NaN."""
    cdef Py_ssize_t i, j, fo = L.sizes[l + 1], N = T.batch_rows
    cdef double* my = _bn_scratch(L, l, T, T.tid)
    cdef double* mean = my
    cdef double* istd = my + fo
    cdef double* wsum = my + _BN_STATS * fo     # [this thread's part, the batch's, n_t]
    cdef floating* rm = buffers + L.rm_off[l]
    cdef floating* rv = rm + fo
    cdef double var, mom = L.bn_momentum, n = <double> N, w_batch = <double> N
    cdef double part = <double> rows
    if M.training:
        if sw != NULL:
            part = 0.0
            for i in range(rows):
                part += sw[i]
            wsum[0] = part
        _bn_local_stats(z, sw, rows, fo, my, part)
        _team_wait(T)
        if sw != NULL:
            # Every thread reads the same parts, so all take the same branch.
            w_batch = _team_weight(L, l, T)
            wsum[1] = w_batch
            if w_batch > 0:
                n = w_batch
            else:
                # (Nobody reads slots 4, 5 or n_t until the barrier below.)
                sw = NULL
                _bn_local_stats(z, sw, rows, fo, my, <double> rows)
                _team_wait(T)
        _team_mean(L, l, T, 4, mean, n)
        _team_var(L, l, T, mean, istd, n)     # the biased variance, for now
        if T.tid == 0 and M.update_running and w_batch > 1:
            for j in range(fo):
                var = istd[j] * n / (n - 1)
                rm[j] = <floating> (mom * mean[j] + (1 - mom) * rm[j])
                rv[j] = <floating> (mom * var + (1 - mom) * rv[j])
        for j in range(fo):
            istd[j] = 1.0 / sqrt(istd[j] + L.bn_eps)
    else:
        for j in range(fo):
            mean[j] = rm[j]
            istd[j] = 1.0 / sqrt(<double> rv[j] + L.bn_eps)
    if floating is float:
        bp_bn_norm_f(z, xh, rows, fo, mean, istd, gamma)
    else:
        bp_bn_norm_d(z, xh, rows, fo, mean, istd, gamma)


cdef void _bn_backward(const CLayout* L, Py_ssize_t l, floating* d, const floating* xh,
                       const floating* gamma, floating* ggamma, const Team* T,
                       const Mode* M, Py_ssize_t rows, const floating* sw,
                       bint accumulate) noexcept nogil:
    """d = dL/d(BN input) from d = dL/d(BN output before the shift), and
    ggamma (+)= sum(d * xhat) over this thread's rows.

    With sample weights ``sw`` (d already carries them: the loss delta of a
    row is its weight times its own), the exact derivative of the weighted
    statistics of _bn_forward: with g = d * gamma and W the batch's weight,
    dL/dz_i = istd * (g_i - w_i / W * (sum(g) + xhat_i * sum(g * xhat))),
    which is w_i times the delta of one of its w_i repeated rows."""
    cdef Py_ssize_t j, fo = L.sizes[l + 1]
    cdef double* my = _bn_scratch(L, l, T, T.tid)
    cdef double* mean_d = my + 2 * fo
    cdef double* mean_dx = my + 3 * fo
    cdef double n = <double> T.batch_rows
    for j in range(6 * fo, 8 * fo):
        my[j] = 0.0
    if floating is float:
        bp_bn_back_sums_f(d, xh, rows, fo, my + 6 * fo, my + 7 * fo)
    else:
        bp_bn_back_sums_d(d, xh, rows, fo, my + 6 * fo, my + 7 * fo)
    for j in range(fo):
        if accumulate:
            ggamma[j] = ggamma[j] + <floating> my[7 * fo + j]
        else:
            ggamma[j] = <floating> my[7 * fo + j]
    if M.training:
        if sw != NULL:
            # The batch weight _bn_forward found (<= 0: it fell back to
            # the unweighted statistics).
            if my[_BN_STATS * fo + 1] > 0:
                n = my[_BN_STATS * fo + 1]
            else:
                sw = NULL
        _team_wait(T)
        _team_mean(L, l, T, 6, mean_d, n)
        _team_mean(L, l, T, 7, mean_dx, n)
    else:
        # Running statistics: BN is a fixed affine map of its input.
        sw = NULL
        for j in range(fo):
            mean_d[j] = 0.0
            mean_dx[j] = 0.0
    if floating is float:
        bp_bn_back_f(d, xh, sw, rows, fo, mean_d, mean_dx, my + fo, gamma)
    else:
        bp_bn_back_d(d, xh, sw, rows, fo, mean_d, mean_dx, my + fo, gamma)


cdef inline void _dropout(const CLayout* L, Py_ssize_t l, const floating* src,
                          floating* dst, const Rows* R, const Mode* M,
                          floating* mult) noexcept nogil:
    # The forward pass; mult keeps the multipliers for the backward pass.
    # (A unit-split view draws its units' masks of the whole layer: unit0.)
    cdef uint64_t key = bp_dropout_key(M.seed, M.epoch, <uint64_t> l)
    cdef Py_ssize_t col0 = 0 if L.unit0 == NULL else L.unit0[l]
    if floating is float:
        bp_dropout_f(src, dst, R.n, L.sizes[l + 1], col0, R.ids, R.first, M.keys, key,
                     L.dropout[l], mult)
    else:
        bp_dropout_d(src, dst, R.n, L.sizes[l + 1], col0, R.ids, R.first, M.keys, key,
                     L.dropout[l], mult)


cdef inline void _dropout_back(floating* d, const floating* mult,
                               Py_ssize_t n) noexcept nogil:
    # The forward pass's masks, kept as multipliers, applied to the delta:
    # 1.7% of a W6 epoch less than recomputing the hash.
    if floating is float:
        bp_dropout_back_f(d, mult, n)
    else:
        bp_dropout_back_d(d, mult, n)


cdef inline void _layer_product(const CLayout* L, Py_ssize_t l, const floating* theta,
                                const Acts* A, const Rows* R, floating* h) noexcept nogil:
    """h = a_{l-1} @ W_l for this thread's rows (h: rows x fo, packed)."""
    cdef Py_ssize_t fi = L.sizes[l], fo = L.sizes[l + 1]
    cdef const floating* a_in = (<const floating*> R.x if l == 0
                                 else _blk(A.a[l - 1], R.row0, fi, theta))
    if l == 0 and R.sp != NULL:
        _csr_matmul(R.sp, <const floating*> R.sp.data, R.n, theta + L.w_off[0], fo, h)
    else:
        _gemm(False, False, <int> R.n, <int> fo, <int> fi, 1, a_in, <int> fi,
              theta + L.w_off[l], <int> fo, 0, h, <int> fo)


cdef void _layer_finish(const CLayout* L, Py_ssize_t l, const floating* theta,
                        floating* buffers, const Acts* A, const Rows* R,
                        const Team* T, const Mode* M) noexcept nogil:
    """a_l from the product a_{l-1} @ W_l in h_l: batch norm, bias and
    activation, dropout, the residual skip."""
    cdef Py_ssize_t i, j, fi = L.sizes[l], fo = L.sizes[l + 1], rows = R.n
    cdef floating* h = _blk(A.h[l], R.row0, fo, theta)
    cdef floating* out = _blk(A.a[l], R.row0, fo, theta)
    cdef const floating* a_in = (<const floating*> R.x if l == 0
                                 else _blk(A.a[l - 1], R.row0, fi, theta))
    if _has_bn(L, l):
        _bn_forward(L, l, h, _blk(A.xh[l], R.row0, fo, theta), theta + L.g_off[l], buffers,
                    T, M, rows, <const floating*> R.sw)
    # H = f(Z + b), keeping Z + b where the derivative needs it
    _bias_activation(L.act[l], h, theta + L.b_off[l], rows, fo, L.leaky_slope,
                     L.elu_alpha, -1,
                     _blk(A.z[l], R.row0, fo, theta) if L.keep_z[l] else NULL)
    if out != h:
        if L.dropout[l] > 0 and M.training:
            _dropout(L, l, h, out, R, M, _blk(A.m[l], R.row0, fo, theta))
        else:
            memcpy(out, h, rows * fo * sizeof(floating))
    if L.residual[l]:
        # A_l = H + A_{l-1}
        if l == 0 and R.sp != NULL:
            _csr_add(R.sp, <const floating*> R.sp.data, rows, fo, out)
        elif L.unit0 == NULL:
            for i in range(rows * fo):
                out[i] = out[i] + a_in[i]
        else:
            # A unit-split view: its units' columns of the whole input.
            a_in = a_in + L.unit0[l]
            for i in range(rows):
                for j in range(fo):
                    out[i * fo + j] = out[i * fo + j] + a_in[i * fi + j]


cdef inline void _layer_forward(const CLayout* L, Py_ssize_t l, const floating* theta,
                                floating* buffers, const Acts* A, const Rows* R,
                                const Team* T, const Mode* M) noexcept nogil:
    """a_l from a_{l-1} for this thread's rows (see the comment above CLayout)."""
    _layer_product(L, l, theta, A, R, _blk(A.h[l], R.row0, L.sizes[l + 1], theta))
    if not M.products_only:
        _layer_finish(L, l, theta, buffers, A, R, T, M)


cdef double _output_loss(const CLayout* L, const floating* theta, floating* grad,
                         const Acts* A, const Rows* R, bint accumulate) noexcept nogil:
    """Loss sum of the rows (times the loss factor) and the output delta
    dL/dz_out in d_a; the output bias gradient summed in the same pass
    (not with ``grad`` NULL)."""
    cdef Py_ssize_t last = L.n_layers - 1, K = L.sizes[L.n_layers]
    cdef floating* out = _blk(A.h[last], R.row0, K, theta)
    cdef floating* d = _blk(A.d_a, R.row0, L.max_width, theta)
    cdef floating* gb = NULL if grad == NULL else grad + L.b_off[last]
    cdef int out_act = L.act[last]
    cdef double loss_sum
    loss_sum = _loss_delta(L.loss, out, <const floating*> R.y, <const floating*> R.sw,
                           R.n, K, L.sq_scale, L.huber_delta, d)
    loss_sum *= _loss_factor(L.loss, K)
    if _any_output(L.loss) and out_act != IDENTITY:
        _activation_backward(out_act, out, d, R.n, K, L.leaky_slope, L.elu_alpha,
                             gb, accumulate)
    elif gb != NULL:
        _colsum(d, R.n, K, gb, accumulate)
    return loss_sum


cdef void _hidden_backward(const CLayout* L, Py_ssize_t l, const floating* theta,
                           floating* grad, const Acts* A, const Rows* R, const Team* T,
                           const Mode* M, floating* d, bint accumulate) noexcept nogil:
    """d = dL/dz_l (before batch norm) from d = dL/da_l of hidden layer l,
    through dropout, the activation and batch norm (the residual skip's
    share is the caller's): gb_l and ggamma_l (+)= their sums."""
    cdef Py_ssize_t fo = L.sizes[l + 1], rows = R.n
    if L.dropout[l] > 0 and M.training:
        # (_carve keeps the multipliers of every dropout layer in training)
        _dropout_back(d, _blk(A.m[l], R.row0, fo, theta), rows * fo)
    # D times f', and gb_l (+)= D.sum(axis=0)
    _activation_backward(L.act[l], _blk(A.h[l], R.row0, fo, theta), d, rows, fo,
                         L.leaky_slope, L.elu_alpha, grad + L.b_off[l],
                         accumulate, -1, _blk(A.z[l], R.row0, fo, theta))
    if _has_bn(L, l):
        _bn_backward(L, l, d, _blk(A.xh[l], R.row0, fo, theta), theta + L.g_off[l],
                     grad + L.g_off[l], T, M, rows, <const floating*> R.sw,
                     accumulate)


cdef void _layer_grads(const CLayout* L, Py_ssize_t l, const floating* theta,
                       floating* grad, const Acts* A, const Rows* R, const floating* d,
                       floating* d_next, floating beta_next, bint accumulate) noexcept nogil:
    """Layer l's two products from d = dL/dz_l: d_next (+)= d @ W_l.T
    (dL/da_{l-1}, added onto d_next with ``beta_next`` 1; not for l = 0),
    then gW_l (+)= a_{l-1}.T @ d."""
    cdef Py_ssize_t fi = L.sizes[l], fo = L.sizes[l + 1], rows = R.n
    cdef const floating* a_in = (<const floating*> R.x if l == 0
                                 else _blk(A.a[l - 1], R.row0, fi, theta))
    cdef floating beta = 1 if accumulate else 0
    if l > 0:
        # dL/da_{l-1} (+)= D @ W_l.T, before gW_l: until then gW_l's block
        # is free to hold _gemm_a_bt's copy of W_l.T (not when it
        # accumulates).
        _gemm_a_bt(<int> rows, <int> fi, <int> fo, d, <int> fo, theta + L.w_off[l],
                   <int> fo, d_next, <int> fi,
                   NULL if accumulate else grad + L.w_off[l], beta_next)
    if l == 0 and R.sp != NULL:
        _csr_t_matmul(R.sp, <const floating*> R.sp.data, rows, d, fi, fo,
                      grad + L.w_off[0], accumulate)
    else:
        # gW_l (+)= A_in.T @ D
        _gemm(True, False, <int> fi, <int> fo, <int> rows, 1, a_in, <int> fi, d,
              <int> fo, beta, grad + L.w_off[l], <int> fo)


cdef void _walk_backward(const CLayout* L, const floating* theta, floating* grad,
                         const Acts* A, const Rows* R, const Team* T, const Mode* M,
                         bint accumulate) noexcept nogil:
    """Gradient sums of this thread's rows into ``grad`` (added with
    ``accumulate``), from the output delta in d_a."""
    cdef Py_ssize_t l, fo, rows = R.n, mw = L.max_width
    cdef floating* d = _blk(A.d_a, R.row0, mw, theta)
    cdef floating* d_next = _blk(A.d_b, R.row0, mw, theta)
    cdef floating* tmp
    cdef bint skip
    for l in range(L.n_layers - 1, -1, -1):
        fo = L.sizes[l + 1]
        skip = False
        if l < L.n_layers - 1 and not M.products_only:
            # d holds dL/da_l of a hidden layer: back through the residual
            # skip (into dL/da_{l-1} directly), dropout, activation, BN.
            skip = L.residual[l] and l > 0
            if skip:
                memcpy(d_next, d, rows * fo * sizeof(floating))
            _hidden_backward(L, l, theta, grad, A, R, T, M, d, accumulate)
        _layer_grads(L, l, theta, grad, A, R, d, d_next, 1 if skip else 0, accumulate)
        tmp = d
        d = d_next
        d_next = tmp


cdef double _walk(const CLayout* L, const floating* theta, floating* buffers,
                  floating* grad, const Acts* A, const Rows* R, const Team* T,
                  const Mode* M, bint accumulate) noexcept nogil:
    """Forward, loss and backward over this thread's rows: returns the
    weighted loss sum (times the loss factor) and writes, or with
    ``accumulate`` adds, the unscaled gradient sums into ``grad``."""
    cdef Py_ssize_t l
    cdef double loss_sum = 0.0
    for l in range(L.n_layers):
        _layer_forward(L, l, theta, buffers, A, R, T, M)
    if not M.products_only:
        loss_sum = _output_loss(L, theta, grad, A, R, accumulate)
    _walk_backward(L, theta, grad, A, R, T, M, accumulate)
    return loss_sum


cdef void _walk_forward(const CLayout* L, const floating* theta, floating* buffers,
                        const Acts* A, const Rows* R, const Team* T,
                        const Mode* M) noexcept nogil:
    cdef Py_ssize_t l
    for l in range(L.n_layers):
        _layer_forward(L, l, theta, buffers, A, R, T, M)


cdef inline void _colsum(const floating* d, Py_ssize_t rows, Py_ssize_t cols,
                         floating* out, bint accumulate, Py_ssize_t ld=-1) noexcept nogil:
    """out (+)= d.sum(axis=0), row after row as NumPy does for axis=0."""
    _activation_backward(IDENTITY, d, <floating*> d, rows, cols, 0.0, 0.0, out,
                         accumulate, ld)


cdef void _carve(const CLayout* L, floating* work, Py_ssize_t rows, bint training,
                 floating** xb, floating** yb, floating** swb, Acts* A) noexcept nogil:
    """Split one workspace into the blocks _workspace_size counted, each
    starting on a cache line: a block at an odd 32 bytes made every 64-byte
    vector load of the GEMMs' packing straddle two lines. Without
    ``training`` nothing is kept for a dropout (the layer output is h)."""
    cdef Py_ssize_t l, blk
    cdef floating* p = _align(work)
    xb[0] = p
    p += _round_up(rows * L.sizes[0])
    yb[0] = p
    p += _round_up(rows * L.sizes[L.n_layers])
    swb[0] = p
    p += _round_up(rows)
    for l in range(L.n_layers):
        blk = _round_up(rows * L.sizes[l + 1])
        A.h[l] = p
        p += blk
        A.z[l] = NULL
        A.xh[l] = NULL
        A.m[l] = NULL
        A.a[l] = A.h[l]
        if L.keep_z[l]:
            A.z[l] = p
            p += blk
        if _has_bn(L, l):
            A.xh[l] = p
            p += blk
        if L.residual[l] or (L.dropout[l] > 0 and training):
            A.a[l] = p
            p += blk
        if L.dropout[l] > 0 and training:
            A.m[l] = p
            p += blk
    A.d_a = p
    p += _round_up(rows * L.max_width)
    A.d_b = p
