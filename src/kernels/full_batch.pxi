# Full-batch loss and gradient (L-BFGS, Network.loss_and_grad).
# Included by src/_kernels.pyx (see its Design docstring for the order).

cdef struct FullBatch:
    # The whole of (X, Y, sample weights) as loss_grad and loss_value walk it,
    # ``chunk`` rows at a time.
    const void* X            # dense X, or NULL (sparse: sp)
    SparseRows sp
    bint sparse
    const void* Y
    const void* sw           # sample weights, or NULL
    void* buffers            # the running statistics (NULL without batch norm)
    Py_ssize_t n, chunk


cdef int _full_batch_input(const CLayout* L, object X, const floating[:, ::1] Y,
                           object sample_weight, object buffers, floating* theta,
                           Py_ssize_t n_params, floating[::1] work, Py_ssize_t chunk,
                           bint whole, FullBatch* F) except -1:
    """Check and bind one full-batch call's inputs (pointers stay valid while
    the caller holds them); ``whole``: X in one block, whatever ``chunk``."""
    cdef const floating[::1] sw
    cdef const floating* Xp
    cdef floating* bufp
    cdef Py_ssize_t n_cols
    _bind_input(X, &Xp, &F.sp, &F.sparse, &F.n, &n_cols)
    _check_data(L, F.n, n_cols, Y.shape[0], Y.shape[1], n_params)
    _bind_buffers(L, buffers, &bufp, theta)
    if F.n == 0:
        raise ValueError("no samples")
    F.chunk = F.n if whole else max(1, min(chunk, F.n))
    if work.shape[0] < _workspace_size(L, F.chunk):
        raise ValueError("workspace too small")
    F.sw = NULL
    if sample_weight is not None:
        sw = sample_weight
        if sw.shape[0] != F.n:
            raise ValueError("sample_weight has %d entries, X %d rows" % (sw.shape[0], F.n))
        F.sw = &sw[0]
    F.X = Xp
    F.Y = &Y[0, 0]
    F.buffers = bufp
    return 0


cdef double _full_batch_walk(const CLayout* L, FullBatch* F, const floating* theta,
                             floating* grad, floating* scratch, Acts* A, Team* T,
                             const Mode* M, bint* interrupted) noexcept nogil:
    """The data-loss sum over every chunk of F: forward and backward into
    ``grad`` (accumulated after the first chunk), or with ``grad`` NULL the
    forward pass and the output loss alone (``scratch`` takes the output
    bias sums _output_loss makes). Ctrl-C between chunks sets
    ``interrupted`` and stops."""
    cdef Py_ssize_t start = 0, since_poll = 0, n0 = L.sizes[0], K = L.sizes[L.n_layers]
    cdef double loss_sum = 0.0
    cdef Rows R
    R.row0 = 0
    R.ids = NULL
    while start < F.n:
        R.n = min(F.chunk, F.n - start)
        R.x = <const floating*> F.X + start * n0 if not F.sparse else NULL
        F.sp.first = start
        R.sp = &F.sp if F.sparse else NULL
        R.y = <const floating*> F.Y + start * K
        R.sw = <const floating*> F.sw + start if F.sw != NULL else NULL
        R.first = start
        if grad != NULL:
            loss_sum += _walk(L, theta, <floating*> F.buffers, grad, A, &R, T, M, start > 0)
        else:
            T.batch_rows = R.n
            _walk_forward(L, theta, <floating*> F.buffers, A, &R, T, M)
            loss_sum += _output_loss(L, theta, scratch, A, &R, False)
        start += R.n
        if start < F.n and _signal_raised(&since_poll, 1):
            interrupted[0] = True
            break
    return loss_sum


def loss_grad(Layout layout, floating[::1] theta, X, const floating[:, ::1] Y,
              sample_weight, double alpha, floating[::1] grad_out, floating[::1] work,
              Py_ssize_t chunk, *, buffers=None, bint training=False,
              unsigned long long seed=0, double l1=0.0):
    """Full-batch loss and gradient, ``chunk`` rows at a time; returns the loss.

    ``X`` is a C-contiguous array or a ``CSRInput``. ``grad_out`` receives the
    gradient of the returned loss (up to the ``sq_scale`` convention of the
    layout). ``work`` needs ``layout.workspace_size(chunk)`` entries.

    With ``training``, dropout draws the masks of ``seed`` (epoch 0; each
    row's sample is its ``row_keys`` hash) and batch norm uses the
    statistics of the whole of X (then X is one block, whatever ``chunk``
    says, and ``work`` must hold ``layout.workspace_size(len(X))``);
    without it, running statistics and
    no dropout. ``buffers`` are the network's running statistics. Ctrl-C is
    polled between chunks.
    """
    cdef const CLayout* L = &layout.c
    cdef double loss_sum, sw_sum = 0.0, sq = 0.0, ab = 0.0
    cdef floating* xbuf
    cdef floating* ybuf
    cdef floating* swbuf
    cdef double[::1] stats
    cdef const uint64_t[::1] keys
    cdef FullBatch F
    cdef bint interrupted = False
    cdef int sense = 0
    cdef Acts A
    cdef Team T
    cdef Mode M
    cdef bp_fpstate fp
    import numpy as np

    if grad_out.shape[0] != theta.shape[0]:
        raise ValueError("grad_out and params differ in length")
    _full_batch_input(L, X, Y, sample_weight, buffers, &theta[0], theta.shape[0], work,
                      chunk, training and L.has_bn, &F)
    stats = np.zeros(max(1, L.stats_per_thread))
    _carve(L, &work[0], F.chunk, training, &xbuf, &ybuf, &swbuf, &A)
    _one_thread(&T, &M, &sense, &stats[0], training, False, seed)
    if training and L.has_dropout:
        keys = row_keys(X)
        M.keys = &keys[0]
    T.batch_rows = F.n
    with nogil:
        fp = bp_fp_enter()
        loss_sum = _full_batch_walk(L, &F, &theta[0], &grad_out[0], <floating*> NULL, &A,
                                    &T, &M, &interrupted)
        if not interrupted:
            sw_sum = _weight_total(<const floating*> F.sw, F.n)
            sq = _finalize_grad(L, &theta[0], &grad_out[0], alpha, l1, sw_sum, &ab)
        bp_fp_exit(fp)
    if interrupted:
        _reraise()
    return loss_sum / sw_sum + _penalty_term(alpha, l1, sq, ab, sw_sum)


def loss_value(Layout layout, const floating[::1] theta, X, const floating[:, ::1] Y,
               sample_weight, floating[::1] work, Py_ssize_t chunk, buffers=None):
    """The data loss on (X, Y) by the inference path (running statistics, no
    dropout), ``chunk`` rows at a time, without the GIL and without a
    backward pass: the weighted mean of the per-sample losses, no penalty.

    ``work`` needs ``layout.workspace_size(chunk)`` entries; Ctrl-C is
    polled between chunks.
    """
    cdef const CLayout* L = &layout.c
    cdef double loss_sum, sw_sum
    cdef floating* xbuf
    cdef floating* ybuf
    cdef floating* swbuf
    cdef floating[::1] scratch
    cdef double[::1] stats
    cdef FullBatch F
    cdef bint interrupted = False
    cdef int sense = 0
    cdef Acts A
    cdef Team T
    cdef Mode M
    cdef bp_fpstate fp
    import numpy as np
    _full_batch_input(L, X, Y, sample_weight, buffers, <floating*> &theta[0],
                      theta.shape[0], work, chunk, False, &F)
    # _output_loss also sums the output bias gradient: into this scratch.
    scratch = np.zeros(L.n_params, dtype=np.float32 if floating is float else np.float64)
    stats = np.zeros(max(1, L.stats_per_thread))
    _carve(L, &work[0], F.chunk, False, &xbuf, &ybuf, &swbuf, &A)
    _one_thread(&T, &M, &sense, &stats[0], False, False, 0)
    with nogil:
        fp = bp_fp_enter()
        loss_sum = _full_batch_walk(L, &F, &theta[0], <floating*> NULL, &scratch[0], &A,
                                    &T, &M, &interrupted)
        bp_fp_exit(fp)
    if interrupted:
        _reraise()
    sw_sum = _weight_total(<const floating*> F.sw, F.n)
    return loss_sum / sw_sum
