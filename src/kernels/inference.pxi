# Inference: the forward walk in chunks of rows, with running statistics, no
# dropout; chunks shared round-robin by our own threads (each with one BLAS
# thread), so inference never wakes BLAS's threads (see docs/DESIGN.md,
# "OpenBLAS's spinning threads and ours").
# Included by src/_kernels.pyx (see its Design docstring for the order).

cdef struct Inference:
    # What every thread of a forward call shares (read-only but the flag).
    const Layout* L
    void* buffers
    const void* x                # dense X, or NULL
    SparseRows sp                # sparse X (its ``first`` is set per chunk)
    bint is_sparse
    void* out
    void* work                   # a block of ``per_thread`` entries per thread
    double* stats                # stats_per_thread doubles per thread
    Py_ssize_t n, chunk, per_thread
    int interrupted              # set by thread 0, read by all between chunks


cdef void _forward_chunk(const Inference* F, const floating* theta, floating* ping,
                         floating* pong, double* stats, Py_ssize_t start,
                         SparseRows* sp) noexcept nogil:
    """Rows [start, start + chunk) of X through the network into ``out``.
    Hidden layers alternate between ping and pong (a residual layer adds
    its input, the other block, in place); nothing is kept for a backward."""
    cdef const Layout* L = F.L
    cdef Py_ssize_t l, n0 = L.sizes[0]
    cdef int sense = 0
    cdef Acts A
    cdef Team T
    cdef Rows R
    cdef Mode M
    for l in range(L.n_layers):
        A.h[l] = ping if l % 2 == 0 else pong
        A.a[l] = A.h[l]
        A.z[l] = NULL
        A.xh[l] = NULL
        A.m[l] = NULL
    A.h[L.n_layers - 1] = <floating*> F.out + start * L.sizes[L.n_layers]
    A.a[L.n_layers - 1] = A.h[L.n_layers - 1]
    _one_thread(&T, &M, &sense, stats, False, False, 0)
    R.row0 = 0
    R.ids = NULL
    R.y = NULL
    R.sw = NULL
    R.n = min(F.chunk, F.n - start)
    R.first = start
    R.x = <const floating*> F.x + start * n0 if not F.is_sparse else NULL
    sp.first = start
    R.sp = sp if F.is_sparse else NULL
    T.batch_rows = R.n
    _walk_forward(L, theta, <floating*> F.buffers, &A, &R, &T, &M)


cdef void _forward_thread(Inference* F, const floating* theta) noexcept nogil:
    """Chunks tid, tid + team, ... of X; thread 0 polls Ctrl-C between its
    chunks and the others stop at the next chunk when it raised."""
    cdef const Layout* L = F.L
    cdef int tid = bp_thread_id(), team = bp_team_size()
    cdef Py_ssize_t c, n_chunks = (F.n + F.chunk - 1) // F.chunk, since_poll = 0
    cdef floating* ping = <floating*> F.work + tid * F.per_thread
    cdef floating* pong = ping + F.chunk * L.max_width
    cdef SparseRows sp = F.sp
    cdef bp_fpstate fp = bp_fp_enter()      # the floating-point mode is per thread
    c = tid
    while c < n_chunks and not F.interrupted:
        _forward_chunk(F, theta, ping, pong, F.stats + tid * L.stats_per_thread,
                       c * F.chunk, &sp)
        c += team
        if tid == 0 and c < n_chunks and _signal_raised(&since_poll, 1):
            F.interrupted = 1
    bp_fp_exit(fp)


def forward(Plan layout, const floating[::1] theta, X, floating[:, ::1] out,
            floating[::1] work, Py_ssize_t chunk, buffers=None, int n_threads=1):
    """out = network(X), ``chunk`` rows at a time, on up to ``n_threads`` threads.

    ``X`` is a C-contiguous array or a ``CSRInput``. Touches nothing but
    ``out`` and ``work`` (``layout.inference_workspace_size(chunk)``
    entries per thread) and a scratch it allocates, so concurrent calls
    with their own buffers are safe. ``buffers`` are the running statistics
    (batch norm). For a given ``chunk`` every thread count gives bitwise
    the same result (rows do not interact in inference; float32 products
    may round a row differently by its place in a chunk, so the chunk size
    can matter). Ctrl-C is polled between chunks.
    """
    cdef const Layout* L = &layout.c
    cdef Py_ssize_t n, n_cols, n0 = L.sizes[0], n_out = L.sizes[L.n_layers]
    cdef const floating* Xp
    cdef floating* bufp
    cdef double[::1] stats
    cdef Inference F
    import numpy as np
    memset(&F, 0, sizeof(F))
    _bind_input(X, &Xp, &F.sp, &F.is_sparse, &n, &n_cols)
    if n_cols != n0:
        raise ValueError("X has %d features, the network expects %d" % (n_cols, n0))
    if theta.shape[0] != L.n_params:
        raise ValueError("params has %d entries, the layout needs %d"
                         % (theta.shape[0], L.n_params))
    _bind_buffers(L, buffers, &bufp, <floating*> &theta[0])
    if out.shape[0] != n or out.shape[1] != n_out:
        raise ValueError("out must have shape (%d, %d)" % (n, n_out))
    if n == 0:
        return
    chunk = max(1, min(chunk, n))
    n_threads = max(1, min(n_threads, MAX_THREADS, (n + chunk - 1) // chunk))
    F.per_thread = layout.inference_workspace_size(chunk)
    if work.shape[0] < n_threads * F.per_thread:
        raise ValueError("workspace too small: %d < %d"
                         % (work.shape[0], n_threads * F.per_thread))
    stats = np.zeros(max(1, L.stats_per_thread * n_threads))
    F.L = L
    F.buffers = bufp
    F.x = Xp
    F.out = &out[0, 0]
    F.work = &work[0]
    F.stats = &stats[0]
    F.n = n
    F.chunk = chunk
    F.interrupted = 0
    if n_threads == 1:
        with nogil:
            _forward_thread(&F, &theta[0])
    else:
        with nogil, parallel(num_threads=n_threads):
            _forward_thread(&F, &theta[0])
    if F.interrupted:
        _reraise()
