# The network as the kernels see it, and sparse input rows.
# Included by src/_kernels.pyx (see its Design docstring for the order).

# ---------------------------------------------------------------------------
# 4. Layout and layer forward/backward
# ---------------------------------------------------------------------------

cdef struct Layout:
    Py_ssize_t n_layers       # L, the number of weight layers
    const Py_ssize_t* sizes   # L + 1 unit counts, input first
    const Py_ssize_t* w_off   # offset of W_l in theta
    const Py_ssize_t* b_off   # offset of b_l in theta
    const int* act            # activation after layer l; act[L-1] is the output's
    int loss
    double sq_scale           # factor on the squared-error delta (see NetLayout)
    double leaky_slope
    double elu_alpha
    Py_ssize_t n_weights      # theta[:n_weights] holds every W_l
    Py_ssize_t n_params
    Py_ssize_t max_width      # max(sizes[1:])
    Py_ssize_t macs_per_row   # sum(sizes[l] * sizes[l+1])


cdef class NetLayout:
    """The shape of a network as the kernels see it.

    Parameters
    ----------
    sizes : sequence of int
        Unit counts, input first, output last (at least two entries).
    activations : sequence of int
        One ``Activation`` code per weight layer; the last is the output's.
    loss : int
        A ``Loss`` code.
    sq_scale : float
        Multiplies the squared-error output delta. ``1 / n_outputs`` makes the
        gradient exactly that of the reported loss (0.5 * mean over outputs);
        ``1.0`` reproduces scikit-learn, whose gradient sums over outputs.
    """
    cdef Layout c
    cdef Py_ssize_t[::1] _sizes, _w_off, _b_off
    cdef int[::1] _act

    def __cinit__(self, sizes, activations, int loss, double sq_scale=1.0,
                  double leaky_slope=0.01, double elu_alpha=1.0):
        import numpy as np
        cdef Py_ssize_t L, l, off
        s = np.asarray(sizes, dtype=np.intp)
        a = np.asarray(activations, dtype=np.intc)
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
        if ((a < IDENTITY) | (a > EXP)).any():
            raise ValueError("unknown activation code in %r" % (list(a),))
        if loss < SQUARED_ERROR or loss > POISSON:
            raise ValueError("unknown loss code %d" % loss)
        self._sizes = s.copy()
        self._act = a.copy()
        self._w_off = np.empty(L, dtype=np.intp)
        self._b_off = np.empty(L, dtype=np.intp)
        off = 0
        for l in range(L):
            self._w_off[l] = off
            off += s[l] * s[l + 1]
        self.c.n_weights = off
        for l in range(L):
            self._b_off[l] = off
            off += s[l + 1]
        self.c.n_params = off
        self.c.n_layers = L
        self.c.sizes = &self._sizes[0]
        self.c.w_off = &self._w_off[0]
        self.c.b_off = &self._b_off[0]
        self.c.act = &self._act[0]
        self.c.loss = loss
        self.c.sq_scale = sq_scale
        self.c.leaky_slope = leaky_slope
        self.c.elu_alpha = elu_alpha
        self.c.max_width = int(s[1:].max())
        self.c.macs_per_row = int((s[:-1] * s[1:]).sum())

    @property
    def n_params(self):
        return self.c.n_params

    @property
    def n_weights(self):
        return self.c.n_weights

    @property
    def sizes(self):
        return tuple(int(v) for v in self._sizes)

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

    def workspace_size(self, Py_ssize_t rows):
        """Length of the scratch buffer the training drivers need for ``rows``-row blocks."""
        return _workspace_size(&self.c, rows)

    def units_workspace_size(self, Py_ssize_t rows, Py_ssize_t n_threads):
        """Length of the scratch buffer ``train_epoch(..., by_units=True)`` needs
        (one hidden layer only)."""
        if self.c.n_layers != 2:
            raise ValueError("the hidden-unit split needs exactly one hidden layer")
        return _units_workspace_size(&self.c, rows, max(1, n_threads))

    def inference_workspace_size(self, Py_ssize_t rows):
        """Length of the scratch buffer ``forward`` needs for ``rows``-row blocks."""
        return 2 * rows * self.c.max_width


cdef Py_ssize_t _workspace_size(const Layout* L, Py_ssize_t rows) noexcept nogil:
    # x block, y block, sample weights, one activation block per layer, two
    # deltas; each starts on a cache line (see _carve), hence the padding.
    cdef Py_ssize_t total = (PAD + _round_up(rows * L.sizes[0])
                             + _round_up(rows * L.sizes[L.n_layers]) + _round_up(rows)
                             + 2 * _round_up(rows * L.max_width))
    cdef Py_ssize_t l
    for l in range(1, L.n_layers + 1):
        total += _round_up(rows * L.sizes[l])
    return total


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
