# Inference: the forward walk in chunks of rows, with running statistics, no
# dropout; chunks shared round-robin by our own threads (each with one BLAS
# thread), so inference never wakes BLAS's threads (see docs/DESIGN.md,
# "OpenBLAS's spinning threads and ours").
#
# Two entries share one walk: ``forward`` (any input the estimators and
# Network.forward have validated: dense or CSRInput, output written to the
# caller's buffer) and ``infer``, the short path for serving: a NumPy array
# taken as it is (no memoryview, no copy), checked in the same pass that
# computes it (width, finiteness), with the estimator's last step (a
# binary classifier's two columns, argmax, thresholding) applied to each
# chunk as it leaves the network, so no batch-sized array of network
# outputs exists for ``predict``. It declines (returns None) whatever is
# not the common case, and the caller then takes the general path, which
# raises scikit-learn's errors word for word.
# Included by src/_kernels.pyx (see its Design docstring for the order).

cimport numpy as cnp
from libc.stdlib cimport malloc, calloc, free

cnp.import_array()


cpdef enum InferenceHead:
    # What ``infer`` returns for a network output block o (rows x n_out):
    HEAD_OUTPUT = 0          # o itself (regression, multiclass probabilities)
    HEAD_BINARY_PROBA = 1    # [1 - o, o] (one logistic output: predict_proba)
    HEAD_ARGMAX = 2          # o.argmax(axis=1) as intp (multiclass predict)
    HEAD_THRESHOLD = 3       # (o > 0.5) as intp, raveled for one output
                             # (binary and multilabel predict)


cdef struct Inference:
    # What every thread of a forward call shares (read-only but the flags).
    const CLayout* L
    void* buffers
    const void* x                # dense X, or NULL
    SparseRows sp                # sparse X (its ``first`` is set per chunk)
    bint is_sparse
    void* out                    # the result: n rows of the head's width
    void* work                   # a block of ``per_thread`` entries per thread
    double* stats                # stats_per_thread doubles per thread
    Py_ssize_t n, chunk, per_thread
    int head                     # an InferenceHead
    bint check_finite            # refuse non-finite X (sets ``nonfinite``)
    int nonfinite                # set by any thread whose chunk of X has NaN/inf
    int interrupted              # set by thread 0, read by all between chunks
    long long next_chunk         # the next unclaimed chunk (bp_claim)


cdef bint _all_finite(const floating* x, Py_ssize_t n) noexcept nogil:
    """True if no entry of x[0:n] is NaN or infinite: an OR over the
    exponent bits (all ones only for NaN and inf), which the compiler
    vectorizes; ``isfinite`` per entry with an early exit does not."""
    cdef Py_ssize_t i
    cdef const uint64_t* u
    cdef const unsigned int* w
    cdef uint64_t bad64 = 0
    cdef unsigned int bad32 = 0
    if floating is double:
        u = <const uint64_t*> x
        for i in range(n):
            bad64 |= <uint64_t> ((u[i] & 0x7FF0000000000000ULL) == 0x7FF0000000000000ULL)
        return bad64 == 0
    else:
        w = <const unsigned int*> x
        for i in range(n):
            bad32 |= <unsigned int> ((w[i] & 0x7F800000U) == 0x7F800000U)
        return bad32 == 0


cdef void _apply_head(const Inference* F, const floating* o, Py_ssize_t start,
                      Py_ssize_t rows) noexcept nogil:
    """Rows [start, start + rows) of the result from their network outputs o,
    exactly as NumPy computes it (``1 - p`` in the working dtype, argmax's
    first maximum and first NaN, ``p > 0.5``)."""
    cdef Py_ssize_t r, j, best, n_out = F.L.sizes[F.L.n_layers]
    cdef floating* p2
    cdef Py_ssize_t* ip
    cdef const floating* row
    cdef floating v, top
    if F.head == HEAD_BINARY_PROBA:
        # np.vstack([1 - p, p]).T
        p2 = <floating*> F.out + 2 * start
        for r in range(rows):
            p2[2 * r] = 1 - o[r]
            p2[2 * r + 1] = o[r]
    elif F.head == HEAD_ARGMAX:
        ip = <Py_ssize_t*> F.out + start
        for r in range(rows):
            row = o + r * n_out
            best = 0
            top = row[0]
            if top == top:
                for j in range(1, n_out):
                    v = row[j]
                    if v != v:          # NaN: NumPy's argmax returns the first one
                        best = j
                        break
                    if v > top:
                        top = v
                        best = j
            ip[r] = best
    else:
        ip = <Py_ssize_t*> F.out + start * n_out
        for r in range(rows * n_out):
            ip[r] = o[r] > 0.5


cdef void _forward_chunk(const Inference* F, const floating* theta, floating* ping,
                         floating* pong, floating* head_rows, double* stats,
                         Py_ssize_t start, SparseRows* sp) noexcept nogil:
    """Rows [start, start + chunk) of X through the network into ``out``
    (through ``head_rows``, then the head, unless the head is the output).
    Hidden layers alternate between ping and pong (a residual layer adds
    its input, the other block, in place); nothing is kept for a backward."""
    cdef const CLayout* L = F.L
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
    if F.head == HEAD_OUTPUT:
        A.h[L.n_layers - 1] = <floating*> F.out + start * L.sizes[L.n_layers]
    else:
        A.h[L.n_layers - 1] = head_rows
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
    if F.head != HEAD_OUTPUT:
        _apply_head(F, head_rows, start, R.n)


cdef void _forward_thread(Inference* F, const floating* theta) noexcept nogil:
    """Chunks of X as this thread claims them, each checked for NaN/inf first
    when asked. Which thread computes a chunk changes none of its bits (each
    thread runs the same single-threaded products on its own scratch); claiming
    instead of a fixed share keeps a descheduled thread from holding up the
    call (100,000 digits rows, 2 threads, load ~14 on 2 CPUs: see
    docs/DESIGN.md). Thread 0 polls Ctrl-C between its chunks; the others
    stop at their next chunk when it raised or a chunk was not finite."""
    cdef const CLayout* L = F.L
    cdef int tid = bp_thread_id()
    cdef Py_ssize_t c, n_chunks = (F.n + F.chunk - 1) // F.chunk, since_poll = 0
    cdef Py_ssize_t n0 = L.sizes[0], rows
    cdef floating* ping = <floating*> F.work + tid * F.per_thread
    cdef floating* pong = ping + F.chunk * L.max_width
    cdef floating* head_rows = ping + 2 * F.chunk * L.max_width + 2 * L.max_width
    cdef SparseRows sp = F.sp
    cdef bp_fpstate fp = bp_fp_enter()      # the floating-point mode is per thread
    c = <Py_ssize_t> bp_claim(&F.next_chunk)
    while c < n_chunks and not F.interrupted and not F.nonfinite:
        rows = min(F.chunk, F.n - c * F.chunk)
        if F.check_finite and not _all_finite(<const floating*> F.x + c * F.chunk * n0,
                                              rows * n0):
            F.nonfinite = 1
            break
        _forward_chunk(F, theta, ping, pong, head_rows, F.stats + tid * L.stats_per_thread,
                       c * F.chunk, &sp)
        c = <Py_ssize_t> bp_claim(&F.next_chunk)
        if tid == 0 and c < n_chunks and _signal_raised(&since_poll, 1):
            F.interrupted = 1
    bp_fp_exit(fp)


cdef inline Py_ssize_t _inference_per_thread(const CLayout* L, Py_ssize_t chunk,
                                             int head) noexcept nogil:
    """Entries of scratch per thread: ping and pong (as
    ``Layout.inference_workspace_size``), then the head's chunk of outputs."""
    return (2 * chunk * L.max_width + 2 * L.max_width
            + (0 if head == HEAD_OUTPUT else chunk * L.sizes[L.n_layers]))


cdef int _run_inference(Inference* F, const floating* theta, int n_threads) except -1:
    """Run F on ``n_threads`` threads without the GIL; re-raise a Ctrl-C."""
    if n_threads == 1:
        with nogil:
            _forward_thread(F, theta)
    else:
        with nogil, parallel(num_threads=n_threads):
            _forward_thread(F, theta)
    if F.interrupted:
        _reraise()
    return 0


def forward(Layout layout, const floating[::1] theta, X, floating[:, ::1] out,
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
    cdef const CLayout* L = &layout.c
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
    F.per_thread = _inference_per_thread(L, chunk, HEAD_OUTPUT)
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
    F.head = HEAD_OUTPUT
    _run_inference(&F, &theta[0], n_threads)


cdef object _infer(Inference* F, const floating* theta, int n_threads):
    """The typed half of ``infer``: allocate the result and the scratch, run."""
    cdef const CLayout* L = F.L
    cdef Py_ssize_t n = F.n, n_out = L.sizes[L.n_layers]
    cdef cnp.npy_intp dims[2]
    cdef int typenum = cnp.NPY_DOUBLE if floating is double else cnp.NPY_FLOAT
    cdef int nd = 2
    cdef cnp.ndarray out
    cdef floating* work
    dims[0] = n
    dims[1] = n_out
    if F.head == HEAD_BINARY_PROBA:
        dims[1] = 2
    elif F.head == HEAD_ARGMAX or (F.head == HEAD_THRESHOLD and n_out == 1):
        typenum = cnp.NPY_INTP
        nd = 1
    elif F.head == HEAD_THRESHOLD:
        typenum = cnp.NPY_INTP
    out = cnp.PyArray_EMPTY(nd, dims, typenum, 0)
    F.per_thread = _inference_per_thread(L, F.chunk, F.head)
    work = <floating*> malloc(n_threads * F.per_thread * sizeof(floating))
    F.stats = <double*> calloc(max(1, L.stats_per_thread * n_threads), sizeof(double))
    if work == NULL or F.stats == NULL:
        free(work)
        free(F.stats)
        raise MemoryError()
    F.work = work
    F.out = cnp.PyArray_DATA(out)
    try:
        _run_inference(F, theta, n_threads)
    finally:
        free(work)
        free(F.stats)
    return None if F.nonfinite else out


def infer(Layout layout, cnp.ndarray theta not None, cnp.ndarray buffers not None,
          X, int head, bint check_finite, Py_ssize_t chunk, int n_threads):
    """The network's output for X with ``head`` applied, or None.

    The short path of prediction. ``X`` is used as it is when it is a NumPy
    array (not a subclass) with 2 dimensions, at least one row, the
    network's width, ``theta``'s dtype, aligned and C-contiguous, and (with
    ``check_finite``) no NaN or infinity, checked chunk by chunk as the
    chunks are computed. Anything else returns None, and the caller takes
    its general path, which validates, converts and raises. ``chunk`` and
    ``n_threads`` are ``forward``'s (``_engine.inference_plan``); the rows
    of a chunk come out bitwise as ``forward`` computes them. Allocates the
    result and its own scratch, so concurrent calls are safe; runs without
    the GIL. See ``InferenceHead`` for ``head``.
    """
    cdef const CLayout* L = &layout.c
    cdef Inference F
    cdef Py_ssize_t n
    cdef int typenum = cnp.PyArray_TYPE(theta)
    if (typenum != cnp.NPY_DOUBLE and typenum != cnp.NPY_FLOAT) or cnp.PyArray_NDIM(theta) != 1 \
            or cnp.PyArray_DIMS(theta)[0] != L.n_params:
        raise ValueError("params must be a float32 or float64 array of %d entries"
                         % L.n_params)
    if (cnp.PyArray_TYPE(buffers) != typenum or cnp.PyArray_NDIM(buffers) != 1
            or cnp.PyArray_DIMS(buffers)[0] != L.n_buffers):
        raise ValueError("buffers must be an array of %d entries of the params' dtype"
                         % L.n_buffers)
    if not cnp.PyArray_ISCARRAY_RO(theta) or not cnp.PyArray_ISCARRAY_RO(buffers):
        # e.g. unpickled from a dask worker's frames unaligned: ``forward``
        # (typed memoryviews) takes them
        return None
    if head < HEAD_OUTPUT or head > HEAD_THRESHOLD or (
            head == HEAD_BINARY_PROBA and L.sizes[L.n_layers] != 1):
        raise ValueError("head %d does not apply to a network with %d outputs"
                         % (head, L.sizes[L.n_layers]))
    if (type(X) is not cnp.ndarray or cnp.PyArray_NDIM(<cnp.ndarray> X) != 2
            or cnp.PyArray_TYPE(<cnp.ndarray> X) != typenum
            or not cnp.PyArray_ISCARRAY_RO(<cnp.ndarray> X)
            or cnp.PyArray_DIMS(<cnp.ndarray> X)[1] != L.sizes[0]
            or cnp.PyArray_DIMS(<cnp.ndarray> X)[0] < 1):
        return None
    n = cnp.PyArray_DIMS(<cnp.ndarray> X)[0]
    memset(&F, 0, sizeof(F))
    F.L = L
    F.buffers = cnp.PyArray_DATA(buffers) if L.n_buffers > 0 else NULL
    F.x = cnp.PyArray_DATA(<cnp.ndarray> X)
    F.n = n
    F.chunk = max(1, min(chunk, n))
    F.head = head
    F.check_finite = check_finite
    n_threads = max(1, min(n_threads, MAX_THREADS, (n + F.chunk - 1) // F.chunk))
    if typenum == cnp.NPY_DOUBLE:
        return _infer[double](&F, <const double*> cnp.PyArray_DATA(theta), n_threads)
    return _infer[float](&F, <const float*> cnp.PyArray_DATA(theta), n_threads)


def blas_threads_idle(Layout layout, Py_ssize_t rows):
    """True if no product of a ``rows``-row chunk is large enough for
    OpenBLAS to start its threads, so ``infer`` needs no one-thread limit
    around it (the limit costs 2.5-6 us per call, most of a one-row
    prediction). OpenBLAS runs a GEMM on one thread up to
    m*n*k = 65536 * GEMM_MULTITHREAD_THRESHOLD (4) multiply-adds
    (``interface/gemm.c``) and a GEMV, which it may use for a one-row
    product, up to m*n = 2304 * 4 (``interface/gemv.c``); other BLAS thread
    later, if at all. Larger products keep the limit."""
    cdef const CLayout* L = &layout.c
    cdef Py_ssize_t l, size
    for l in range(L.n_layers):
        size = L.sizes[l] * L.sizes[l + 1]
        if (size >= 9216 if rows == 1 or L.sizes[l + 1] == 1 else rows * size > 262144):
            return False
    return True
