# The benchmark floor: only the epoch's products plus the optimizer.
# Included by src/_kernels.pyx (see its Design docstring for the order).

def floor_epoch(Plan layout, OptimizerConfig opt, Minibatches data,
                floating[::1] theta, floating[::1] grad, floating[:, ::1] opt_state):
    """The benchmark floor: only the matrix products of an epoch plus the optimizer.

    The layer walk in its products-only mode: the same GEMM calls with the
    same shapes as ``train_epoch`` (three per layer, two for the first;
    delta @ W.T through the same copy of W.T when _gemm_a_bt makes one), back
    to back, and one optimizer pass per batch; no gather, batch norm,
    dropout, activations, loss or bias. Rows are read in order. ``theta`` is
    updated with a garbage gradient, so pass a throwaway copy.
    """
    cdef const Layout* L = &layout.c
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


def barrier_latency(Py_ssize_t rounds=20000, int n_threads=2):
    """Seconds per round of the per-batch barrier with ``n_threads`` threads
    (at most the CPUs this process may use) doing nothing else; 0.0 when
    that is one thread (one CPU, a build without OpenMP, a child forked
    after bpcore ran threads).

    What every synchronized batch of a multi-threaded epoch pays at least;
    on a VM it tells where the host put the vCPUs: 28 ns with both on one
    L3, 180 ns at other times on the same 2-vCPU machine, and the 2-thread
    epochs of the small workloads followed (W1 1.6x vs 1.15x of 1 thread).
    The benchmarks record it beside every 2-thread run.
    """
    import time
    from bpcore import _threads
    cdef bp_barrier_t bar
    cdef int team, team_seen = 1
    if rounds < 1:
        raise ValueError("rounds must be at least 1")
    team = max(1, min(n_threads, MAX_THREADS, _threads.available_cpus()))
    if team == 1 or _threads._forked_after_team:
        return 0.0
    _threads._team_started = True   # a child forked from here on runs one thread
    bp_barrier_init(&bar)
    with nogil, parallel(num_threads=team):   # start the threads (untimed)
        _barrier_rounds(&bar, min(rounds, 1000), &team_seen)
    if team_seen < 2:
        return 0.0
    # Afresh: every thread starts a region with its local sense at 0, so an
    # odd number of warm-up rounds left the shared sense out of phase and the
    # timed rounds waited forever.
    bp_barrier_init(&bar)
    t0 = time.perf_counter()
    with nogil, parallel(num_threads=team):
        _barrier_rounds(&bar, rounds, &team_seen)
    return (time.perf_counter() - t0) / rounds
