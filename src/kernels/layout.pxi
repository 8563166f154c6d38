# The network as the kernels see it, and sparse input rows.
# Included by src/_kernels.pyx (see its Design docstring for the order).

# ---------------------------------------------------------------------------
# 4. The layout: what the layer walk walks
# ---------------------------------------------------------------------------
#
# A network compiles to a layout: for every weight layer l (the last is the
# output layer) its sizes, its activation, the offsets of its parameters in
# the flat trainable buffer ``params`` (W_l, b_l and, with batch norm, gamma_l)
# and of its running statistics in the flat non-trainable buffer ``buffers``,
# and the optional sub-steps of a hidden layer, applied in this order:
#
#     z = a_{l-1} @ W_l                        dense
#     z = BN(z) * gamma_l                      batch norm (training: batch
#                                              statistics; else running ones)
#     h = act_l(z + b_l)                       bias + activation (b_l is BN's
#                                              shift with batch norm)
#     h = dropout_l(h)                         training only, inverted
#     a_l = h + a_{l-1}                        residual (fan_in == fan_out)
#
# ``params`` holds every W_l (scikit-learn's _pack order), then every b_l,
# then every gamma_l, so the weights are the one range [0, n_weights): the
# L2 and L1 penalties and decoupled weight decay apply there (bounded by
# n_weights) and nowhere else; max-norm walks each W_l by w_off, the same
# entries. The block table (``Layout.blocks``) describes every range for
# Python; no kernel reads it.
#
# One concept, one name: a network compiles to a ``Layout`` (Python; a network
# holds it as ``Network.layout``), whose C record ``CLayout`` (``Layout.c``)
# is what every kernel takes as ``L``.

# Per thread and batch-normalized layer of width n: the batch mean, 1/std,
# the mean of the delta and of delta * xhat (4n, private), and the thread's
# partial column sums and squared deviations (forward) and its two partial
# column sums of the backward reduction (4n, read by every thread after a
# barrier); then the thread's partial weight sum (sample weights only; read
# by every thread), the batch's (private) and the weight (or row count) its
# squared deviations are over (read by every thread).
DEF _BN_STATS = 8
DEF _BN_WEIGHTS = 3


cdef struct CLayout:
    Py_ssize_t n_layers       # L, the number of weight layers
    const Py_ssize_t* sizes   # L + 1 unit counts, input first
    const Py_ssize_t* w_off   # offset of W_l in params
    const Py_ssize_t* b_off   # offset of b_l (BN's shift with batch norm) in params
    const Py_ssize_t* g_off   # offset of gamma_l in params, -1 without batch norm
    const Py_ssize_t* rm_off  # running mean of layer l in buffers (-1: none); var follows
    const Py_ssize_t* st_off  # batch-norm scratch of layer l in the stats buffer, per thread
    const int* act            # activation after layer l; act[L-1] is the output's
    const double* dropout     # dropout probability after layer l (0: none)
    const char* residual      # a_l = h_l + a_{l-1}
    const char* keep_z        # the activation's derivative needs its input
    const Py_ssize_t* unit0   # a thread's view in the unit split (epoch_units.pxi):
                              # layer l's units are units unit0[l] .. of the whole
                              # layer; NULL: whole layers
    int loss
    double sq_scale           # factor on the regression losses' delta (see Layout)
    double huber_delta
    double leaky_slope
    double elu_alpha
    double bn_eps
    double bn_momentum
    Py_ssize_t n_weights      # params[:n_weights] holds every W_l
    Py_ssize_t n_params
    Py_ssize_t n_buffers
    Py_ssize_t stats_per_thread   # doubles of batch-norm scratch per thread
    Py_ssize_t max_width      # max(sizes[1:])
    Py_ssize_t macs_per_row   # sum(sizes[l] * sizes[l+1])
    bint plain                # dense + activation only (no BN, dropout, residual,
                              # saved pre-activations): the fast paths apply
    bint has_bn
    bint has_dropout          # training needs the rows' keys (row_keys)


cdef inline bint _has_bn(const CLayout* L, Py_ssize_t l) noexcept nogil:
    return L.g_off[l] >= 0


cdef inline bint _has_out(const CLayout* L, Py_ssize_t l) noexcept nogil:
    # Whether layer l's output a_l needs a block of its own (apart from h_l).
    return L.dropout[l] > 0 or L.residual[l]


def _layout_arrays(sizes, activations, int loss, batch_norm, dropout, residual):
    """Layout's arguments checked and as arrays: sizes, activation codes, and
    per weight layer batch norm, dropout probability and residual skip."""
    import numpy as np
    s = np.array(sizes, dtype=np.intp)
    a = np.array(activations, dtype=np.intc)
    L = s.shape[0] - 1
    if s.ndim != 1 or L < 1:
        raise ValueError("sizes needs an input and an output size, got %r" % (sizes,))
    if L > MAX_LAYERS:
        raise ValueError("at most %d weight layers are supported, got %d" % (MAX_LAYERS, L))
    if (s < 1).any() or (s > 2**31 - 1).any():
        raise ValueError("every layer size must be in [1, 2**31 - 1], got %r" % (list(s),))
    if a.ndim != 1 or a.shape[0] != L:
        raise ValueError("need one activation code per weight layer (%d), got %d"
                         % (L, a.shape[0]))
    if ((a < IDENTITY) | (a > SELU)).any():
        raise ValueError("unknown activation code in %r" % (list(a),))
    if bp_act_needs_z(a[L - 1]):
        raise ValueError("GELU, SiLU, softplus and SELU are hidden activations only")
    if loss < SQUARED_ERROR or loss > HUBER:
        raise ValueError("unknown loss code %d" % loss)
    bn = np.zeros(L, dtype=bool)
    dp = np.zeros(L, dtype=np.float64)
    res = np.zeros(L, dtype=bool)
    for name, value, arr in (("batch_norm", batch_norm, bn), ("dropout", dropout, dp),
                             ("residual", residual, res)):
        if value is not None:
            v = np.asarray(value)
            if v.shape != (L - 1,):
                raise ValueError("%s needs one entry per hidden layer (%d), got %r"
                                 % (name, L - 1, value))
            arr[:L - 1] = v
    if ((dp < 0) | (dp >= 1) | ~np.isfinite(dp)).any():
        raise ValueError("dropout probabilities must be in [0, 1), got %r" % (list(dp),))
    for l in range(L - 1):
        if res[l] and s[l] != s[l + 1]:
            raise ValueError("residual on layer %d needs fan_in == fan_out, got %d -> %d"
                             % (l, s[l], s[l + 1]))
    return s, a, bn, dp, res


cdef class Layout:
    """A network as the kernels see it (see the comment above ``CLayout``).

    Parameters
    ----------
    sizes : sequence of int
        Unit counts, input first, output last (at least two entries).
    activations : sequence of int
        One ``Activation`` code per weight layer; the last is the output's.
    loss : int
        A ``Loss`` code.
    sq_scale : float
        Multiplies the output delta of the regression losses (squared,
        absolute and Huber error). ``1 / n_outputs`` makes the gradient
        exactly that of the reported loss (a mean over outputs); ``1.0``
        reproduces scikit-learn, whose squared-error gradient sums over
        outputs.
    batch_norm, dropout, residual : sequence, one entry per hidden layer
        Batch norm (bool), dropout probability in [0, 1), identity skip
        (bool; needs fan_in == fan_out). None: none anywhere.
    """
    cdef CLayout c
    cdef Py_ssize_t[::1] _sizes, _w_off, _b_off, _g_off, _rm_off, _st_off
    cdef int[::1] _act
    cdef double[::1] _dropout
    cdef char[::1] _residual, _keep_z

    def __cinit__(self, sizes, activations, int loss, double sq_scale=1.0,
                  double leaky_slope=0.01, double elu_alpha=1.0, batch_norm=None,
                  dropout=None, residual=None, double huber_delta=1.0,
                  double bn_eps=1e-5, double bn_momentum=0.1):
        import numpy as np
        cdef Py_ssize_t L
        s, a, bn, dp, res = _layout_arrays(sizes, activations, loss, batch_norm, dropout,
                                         residual)
        if not (bn_eps > 0 and 0 <= bn_momentum <= 1 and huber_delta > 0):
            raise ValueError("need bn_eps > 0, bn_momentum in [0, 1] and huber_delta > 0")
        L = s.shape[0] - 1
        self._sizes = s
        self._act = a
        self._dropout = dp
        self._residual = res.astype(np.byte)
        self._keep_z = np.array([bp_act_needs_z(a[l]) for l in range(L)], dtype=np.byte)
        self._offsets(bn)
        self.c.n_layers = L
        self.c.sizes = &self._sizes[0]
        self.c.w_off = &self._w_off[0]
        self.c.b_off = &self._b_off[0]
        self.c.g_off = &self._g_off[0]
        self.c.rm_off = &self._rm_off[0]
        self.c.st_off = &self._st_off[0]
        self.c.act = &self._act[0]
        self.c.dropout = &self._dropout[0]
        self.c.residual = &self._residual[0]
        self.c.keep_z = &self._keep_z[0]
        self.c.unit0 = NULL
        self.c.loss = loss
        self.c.sq_scale = sq_scale
        self.c.huber_delta = huber_delta
        self.c.leaky_slope = leaky_slope
        self.c.elu_alpha = elu_alpha
        self.c.bn_eps = bn_eps
        self.c.bn_momentum = bn_momentum
        self.c.max_width = int(s[1:].max())
        self.c.macs_per_row = int((s[:-1] * s[1:]).sum())
        self.c.has_bn = bool(bn.any())
        self.c.has_dropout = bool((dp > 0).any())
        self.c.plain = not (bn.any() or (dp > 0).any() or res.any()
                            or np.asarray(self._keep_z).any())

    cdef _offsets(self, bn):
        """Offsets of every block: params = all W, all b, all gamma (batch
        norm); buffers = running mean and variance per batch-norm layer; the
        per-thread batch-norm scratch."""
        import numpy as np
        cdef Py_ssize_t L = self._sizes.shape[0] - 1, l, off = 0, st = 0
        cdef const Py_ssize_t[::1] s = self._sizes
        self._w_off = np.empty(L, dtype=np.intp)
        self._b_off = np.empty(L, dtype=np.intp)
        self._g_off = np.full(L, -1, dtype=np.intp)
        self._rm_off = np.full(L, -1, dtype=np.intp)
        self._st_off = np.full(L, -1, dtype=np.intp)
        for l in range(L):
            self._w_off[l] = off
            off += s[l] * s[l + 1]
        self.c.n_weights = off
        for l in range(L):
            self._b_off[l] = off
            off += s[l + 1]
        for l in range(L):
            if bn[l]:
                self._g_off[l] = off
                off += s[l + 1]
        self.c.n_params = off
        off = 0
        for l in range(L):
            if bn[l]:
                self._rm_off[l] = off
                off += 2 * s[l + 1]
                self._st_off[l] = st
                st += _BN_STATS * s[l + 1] + _BN_WEIGHTS
        self.c.n_buffers = off
        self.c.stats_per_thread = st

    @property
    def n_params(self):
        return self.c.n_params

    @property
    def n_weights(self):
        return self.c.n_weights

    @property
    def has_dropout(self):
        """Whether training draws dropout masks (and so needs ``row_keys(X)``)."""
        return bool(self.c.has_dropout)

    @property
    def n_buffers(self):
        """Length of the non-trainable buffer (batch-norm running statistics)."""
        return self.c.n_buffers

    @property
    def sizes(self):
        return tuple(int(v) for v in self._sizes)

    @property
    def plain(self):
        """True when every layer is dense + activation only (the fast paths apply)."""
        return bool(self.c.plain)

    @property
    def macs_per_row(self):
        """Multiply-adds of one forward pass for one sample."""
        return self.c.macs_per_row

    @property
    def weight_offsets(self):
        return tuple(int(v) for v in self._w_off)

    @property
    def bias_offsets(self):
        return tuple(int(v) for v in self._b_off)

    @property
    def scale_offsets(self):
        """Offset of each layer's batch-norm gamma in params, None without batch norm."""
        return tuple(int(v) if v >= 0 else None for v in self._g_off)

    @property
    def running_offsets(self):
        """Offset of each layer's running mean in buffers (the variance follows), or None."""
        return tuple(int(v) if v >= 0 else None for v in self._rm_off)

    @property
    def blocks(self):
        """The parameter-block table: ``(kind, layer, offset, size)`` for every
        range of params, kind a ``BlockKind`` (weights, biases — BN's shift on
        a batch-normalized layer — and BN scales), in buffer order."""
        out = []
        L = self.c.n_layers
        for l in range(L):
            out.append((BlockKind.WEIGHTS, l, int(self._w_off[l]),
                        int(self._sizes[l] * self._sizes[l + 1])))
        for l in range(L):
            kind = BlockKind.BN_SHIFT if self._g_off[l] >= 0 else BlockKind.BIASES
            out.append((kind, l, int(self._b_off[l]), int(self._sizes[l + 1])))
        for l in range(L):
            if self._g_off[l] >= 0:
                out.append((BlockKind.BN_SCALE, l, int(self._g_off[l]), int(self._sizes[l + 1])))
        return out

    def workspace_size(self, Py_ssize_t rows):
        """Length of the scratch buffer the training drivers need for ``rows``-row blocks."""
        return _workspace_size(&self.c, rows)

    def stats_size(self, Py_ssize_t n_threads):
        """Doubles of batch-norm scratch the training drivers need for ``n_threads``."""
        return max(1, self.c.stats_per_thread * max(1, n_threads))

    def units_workspace_size(self, Py_ssize_t rows, Py_ssize_t n_threads):
        """Length of the scratch buffer ``train_epoch(..., by_units=True)`` needs
        (networks with at least one hidden layer; the team is capped at the
        narrowest hidden layer's width, as ``train_epoch`` caps it)."""
        cdef const char* why = _units_refusal(&self.c, True, 0, NULL)
        if why != NULL:
            raise ValueError(why.decode())
        return _units_workspace_size(&self.c, rows, _units_team_cap(&self.c, max(1, n_threads)))

    def inference_workspace_size(self, Py_ssize_t rows):
        """Length of the scratch buffer ``forward`` needs for ``rows``-row blocks."""
        return 2 * rows * self.c.max_width + 2 * self.c.max_width



cdef Py_ssize_t _workspace_size(const CLayout* L, Py_ssize_t rows) noexcept nogil:
    # x block, y block, sample weights, two deltas, and per layer h_l plus
    # its saved pre-activation, normalized input, output and dropout
    # multipliers where the layer needs them; each starts on a cache line (see _carve), hence the padding.
    cdef Py_ssize_t total = (PAD + _round_up(rows * L.sizes[0])
                             + _round_up(rows * L.sizes[L.n_layers]) + _round_up(rows)
                             + 2 * _round_up(rows * L.max_width))
    cdef Py_ssize_t l, blk
    for l in range(L.n_layers):
        blk = _round_up(rows * L.sizes[l + 1])
        total += blk * (1 + L.keep_z[l] + _has_bn(L, l) + _has_out(L, l)
                        + (L.dropout[l] > 0))     # dropout's multipliers (_carve)
    return total


cdef inline Py_ssize_t _round_up(Py_ssize_t v) noexcept nogil:
    return (v + PAD - 1) // PAD * PAD


cdef inline floating* _align(floating* p) noexcept nogil:
    """The first address at or after p on a PAD-element boundary (64 bytes or more)."""
    return p + (PAD - (<size_t> p // sizeof(floating)) % PAD) % PAD


cdef struct SparseRows:
    # A block of rows of a CSR matrix: rows[i] (or first + i when rows is NULL).
    const void* data             # float or double, the kernel's dtype
    const Py_ssize_t* indices
    const Py_ssize_t* indptr
    const Py_ssize_t* rows
    Py_ssize_t first


cdef class CSRInput:
    """A CSR matrix as the kernels read it: ``data`` of the working dtype,
    ``indices`` and ``indptr`` as intp. The structure is checked once here, so
    the kernels can index without bounds checks.
    """
    cdef readonly object data, indices, indptr
    cdef readonly Py_ssize_t n_rows, n_cols

    def __init__(self, data, indices, indptr, Py_ssize_t n_rows, Py_ssize_t n_cols):
        import numpy as np
        # The kernels index with these arrays unchecked: they must be ours and
        # frozen, so that a caller changing theirs afterwards cannot move an
        # index out of range (issue 13, defect 3). Arrays already private and
        # read-only (bpcore's own csr_input hands those) are not copied again.
        data, indices, indptr = (_private_frozen(a) for a in (data, indices, indptr))
        cdef const Py_ssize_t[::1] ind = indices
        cdef const Py_ssize_t[::1] ptr = indptr
        cdef Py_ssize_t i, nnz
        if data.ndim != 1 or data.dtype not in (np.float32, np.float64):
            raise TypeError("CSR data must be a 1-D float32 or float64 array")
        nnz = data.shape[0]
        if ptr.shape[0] != n_rows + 1 or ptr[0] != 0 or ptr[n_rows] != nnz \
                or ind.shape[0] != nnz:
            raise ValueError("inconsistent CSR structure (indptr/indices/data lengths)")
        for i in range(n_rows):
            if ptr[i + 1] < ptr[i]:
                raise ValueError("CSR indptr must be non-decreasing")
        for i in range(nnz):
            if ind[i] < 0 or ind[i] >= n_cols:
                raise ValueError("CSR column index %d out of range [0, %d)" % (ind[i], n_cols))
        self.data = data
        self.indices = indices
        self.indptr = indptr
        self.n_rows = n_rows
        self.n_cols = n_cols

    @property
    def shape(self):
        return (self.n_rows, self.n_cols)


def _private_frozen(a):
    import numpy as np
    a = np.asarray(a)
    if a.flags.writeable or not a.flags.owndata:
        a = np.array(a, copy=True)
    a.flags.writeable = False
    return a


cdef void _csr_matmul(const SparseRows* sp, const floating* data, Py_ssize_t rows,
                      const floating* w, Py_ssize_t n_out, floating* z) noexcept nogil:
    """z = X[block] @ W for CSR rows, accumulating in SciPy's order."""
    cdef Py_ssize_t i, j, p, r
    cdef floating v
    cdef floating* zr
    cdef const floating* wr
    for i in range(rows):
        r = sp.rows[i] if sp.rows != NULL else sp.first + i
        zr = z + i * n_out
        for j in range(n_out):
            zr[j] = 0
        for p in range(sp.indptr[r], sp.indptr[r + 1]):
            v = data[p]
            wr = w + sp.indices[p] * n_out
            for j in range(n_out):
                zr[j] = zr[j] + v * wr[j]


cdef void _csr_t_matmul(const SparseRows* sp, const floating* data, Py_ssize_t rows,
                        const floating* d, Py_ssize_t n_in, Py_ssize_t n_out,
                        floating* g, bint accumulate) noexcept nogil:
    """g (+)= X[block].T @ d for CSR rows; only the rows of g that X touches change."""
    cdef Py_ssize_t i, j, p, r
    cdef floating v
    cdef floating* gr
    cdef const floating* dr
    if not accumulate:
        for j in range(n_in * n_out):
            g[j] = 0
    for i in range(rows):
        r = sp.rows[i] if sp.rows != NULL else sp.first + i
        dr = d + i * n_out
        for p in range(sp.indptr[r], sp.indptr[r + 1]):
            v = data[p]
            gr = g + sp.indices[p] * n_out
            for j in range(n_out):
                gr[j] = gr[j] + v * dr[j]


cdef void _csr_add(const SparseRows* sp, const floating* data, Py_ssize_t rows,
                   Py_ssize_t n_out, floating* z) noexcept nogil:
    """z += X[block] for CSR rows (a residual skip around the first layer)."""
    cdef Py_ssize_t i, p, r
    for i in range(rows):
        r = sp.rows[i] if sp.rows != NULL else sp.first + i
        for p in range(sp.indptr[r], sp.indptr[r + 1]):
            z[i * n_out + sp.indices[p]] += data[p]
