# The benchmark floor (only the epoch's products plus the optimizer) and the
# barrier the probe times; bpcore.benchmark.floor drives both.
# Included by src/_kernels.pyx (see its Design docstring for the order).

def floor_epoch(Layout layout, OptimizerConfig opt, Minibatches data,
                floating[::1] theta, floating[::1] grad, floating[:, ::1] opt_state):
    """The benchmark floor: only the matrix products of an epoch plus the optimizer.

    The layer walk in its products-only mode: the same GEMM calls with the
    same shapes as ``train_epoch`` (three per layer, two for the first;
    delta @ W.T through the same copy of W.T when _gemm_a_bt makes one), back
    to back, and one optimizer pass per batch; no gather, batch norm,
    dropout, activations, loss or bias. Rows are read in order. ``theta`` is
    updated with a garbage gradient, so pass a throwaway copy.
    """
    cdef const CLayout* L = &layout.c
    cdef const floating[:, ::1] X = data.X
    cdef floating[::1] work = data.workspace.work
    cdef Py_ssize_t n = X.shape[0], bs = min(data.batch_size, X.shape[0])
    cdef Py_ssize_t n_batches, b
    cdef floating* xbuf
    cdef floating* ybuf
    cdef floating* swbuf
    cdef floating* st[MAX_STATE]
    cdef floating* th = &theta[0]
    cdef floating* gr = &grad[0]
    cdef OptConfig oc = opt.c
    cdef Acts A
    cdef Team T
    cdef Rows R
    cdef Mode M
    cdef int sense = 0
    cdef bp_fpstate fp
    _check_data(L, X.shape[0], X.shape[1], X.shape[0], L.sizes[L.n_layers], theta.shape[0])
    if bs < 1 or work.shape[0] < _workspace_size(L, bs):
        raise ValueError("bad batch size or workspace")
    _state_pointers(opt, opt_state, theta.shape[0], st)
    _carve(L, &work[0], bs, False, &xbuf, &ybuf, &swbuf, &A)
    n_batches = (n + bs - 1) // bs
    _one_thread(&T, &M, &sense, NULL, False, True, 0)
    R.row0 = 0
    R.sp = NULL
    R.y = NULL
    R.sw = NULL
    R.ids = NULL
    with nogil:
        fp = bp_fp_enter()
        for b in range(n_batches):
            R.n = min(bs, n - b * bs)
            R.x = &X[b * bs, 0]
            R.first = b * bs
            T.batch_rows = R.n
            _walk(L, th, NULL, gr, &A, &R, &T, &M, False)
            _optimizer_step(&oc, th, gr, st, L.n_weights, theta.shape[0],
                            data.rules.alpha, 1.0 / R.n)
        bp_fp_exit(fp)
    opt.c = oc


cdef void _barrier_rounds(bp_barrier_t* bar, Py_ssize_t rounds, int* team_seen) noexcept nogil:
    cdef int sense = 0, team = bp_team_size()   # OpenMP may give fewer threads
    cdef Py_ssize_t r
    if bp_thread_id() == 0:
        team_seen[0] = team
    for r in range(rounds):
        bp_barrier_wait(bar, &sense, team)


def barrier_rounds(Py_ssize_t rounds, int team):
    """Run ``rounds`` rounds of the per-batch barrier on a team of ``team``
    threads doing nothing else (the barrier initialized afresh: every thread
    starts a region with its local sense at 0); returns the size of the team
    OpenMP granted. The probe around it (how many threads, the warm-up, the
    timing) is bpcore.benchmark.floor.barrier_latency."""
    cdef bp_barrier_t bar
    cdef int team_seen = 1
    if rounds < 1 or team < 1:
        raise ValueError("rounds and team must be at least 1, got %d and %d" % (rounds, team))
    bp_barrier_init(&bar)
    with nogil, parallel(num_threads=min(team, MAX_THREADS)):
        _barrier_rounds(&bar, rounds, &team_seen)
    return team_seen
