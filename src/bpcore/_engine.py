"""Glue between the Python layer and the epoch kernel.

``EpochRunner`` allocates everything a fit needs once (workspace, gradient,
per-batch losses), then each ``run`` is a single kernel call for a whole epoch
and turns the kernel's status into an exception.
"""
import contextlib
import os

import numpy as np

from . import _kernels

# How the epoch kernel splits a batch across threads (docs/DESIGN.md, Threads).
#
# By rows: each thread runs forward and backward on its rows, then the
# threads sum their gradients and update a slice of the parameters each.
# Every batch moves half the parameters and gradients between cores and
# waits at two barriers, so a thread needs at least this many multiply-adds
# of forward+backward work per batch to gain (2 cores: 0.7 M per batch,
# 64-100-10 at batch 32, gained 1.1x; 4.4 M, batch 200, 2.1x).
_MIN_MACS_PER_THREAD = 1_000_000
# By hidden units (networks with one hidden layer, dense X): each thread owns
# a block of hidden units and their weights for the whole epoch; one barrier
# per batch and no parameter traffic. On 2 cores it beat the row split for
# every batch size up to 128 we measured (64-100-10, 256-256-10, 784-100-10,
# 20-32-2; batch 32: 1.6-1.8x against 0.8-1.4x) and lost beyond.
_UNIT_SPLIT_MAX_BATCH = 128
_MIN_MACS_PER_THREAD_UNITS = 100_000

# OpenBLAS cores whose kernels include the small-matrix GEMM path that
# _kernels._gemm cuts products down to (KERNEL.SKYLAKEX; Cooper Lake and
# Sapphire Rapids build on it).
_SMALL_GEMM_CORES = ("skylakex", "cooperlake", "sapphirerapids")
_MAX_GEMM_PIECES = 4


def _scipy_blas_info(infos):
    """threadpoolctl's entry for the BLAS scipy.linalg.cython_blas calls, or None.

    SciPy's wheels bundle their own OpenBLAS (``scipy.libs``, LP64
    ``libscipy_openblas``); NumPy's may be loaded beside it (ILP64,
    ``libscipy_openblas64_``). Elsewhere (conda, distributions) a single
    shared BLAS serves both.
    """
    blas = [i for i in infos if i.get("user_api") == "blas"]
    for info in blas:
        path = info.get("filepath") or ""
        if os.path.basename(os.path.dirname(path)) == "scipy.libs":
            return info
    if len({i.get("filepath") for i in blas}) == 1:
        return blas[0]
    return None


def gemm_split_setting(infos=None, environ=os.environ):
    """How many row blocks ``_kernels._gemm`` may cut a GEMM into (1: never).

    ``BPCORE_GEMM_SPLIT=<n>`` overrides; otherwise 4 when SciPy's BLAS is
    OpenBLAS running one of ``_SMALL_GEMM_CORES``, else 1 (with other
    kernels the cut only adds calls: 4-11% slower, docs/DESIGN.md).
    """
    value = environ.get("BPCORE_GEMM_SPLIT", "").strip()
    if value:
        try:
            pieces = int(value)
        except ValueError:
            raise ValueError("BPCORE_GEMM_SPLIT must be a whole number of row "
                             "blocks (1 turns the cut off), got %r" % value) from None
        if pieces < 0:
            raise ValueError("BPCORE_GEMM_SPLIT must be >= 0, got %d" % pieces)
        return pieces
    if infos is None:
        try:
            from threadpoolctl import threadpool_info
            infos = threadpool_info()
        except Exception:  # a speed heuristic must never stop the import
            return 1
    info = _scipy_blas_info(infos)
    if (info is not None and info.get("internal_api") == "openblas"
            and str(info.get("architecture", "")).lower() in _SMALL_GEMM_CORES):
        return _MAX_GEMM_PIECES
    return 1


_kernels.set_gemm_split(gemm_split_setting())

_blas_controller = None


def _single_threaded_blas():
    """Context that limits BLAS to one thread (our own threads split the work).

    Nothing to do, and nothing done, when every BLAS already runs one thread
    (``threadpool_limits(1)`` around the fit): entering threadpoolctl's limit
    cost ~13 us per epoch, 1% of a digits epoch.
    """
    global _blas_controller
    if _blas_controller is None:
        from threadpoolctl import ThreadpoolController
        _blas_controller = ThreadpoolController().select(user_api="blas")
    if all(lib.num_threads == 1 for lib in _blas_controller.lib_controllers):
        return contextlib.nullcontext()
    return _blas_controller.limit(limits=1)


def reshuffle(order, random_state):
    """``sklearn.utils.shuffle(order, random_state=random_state)``, without its overhead.

    The same draws in the same order (a permutation of ``arange(n)`` by
    ``RandomState.shuffle``, then indexing), so the result is bitwise
    scikit-learn's; its per-call validation cost ~0.2 ms, a tenth of a digits
    epoch. ``random_state`` must be a ``numpy.random.RandomState``.
    """
    idx = np.arange(order.shape[0])
    random_state.shuffle(idx)
    return order[idx]


def choose_threads(layout, batch_size, dense=True):
    """How the epoch kernel uses threads: ``(n_threads, by_units)``.

    OpenMP's current limit (``threadpoolctl.threadpool_limits`` sets it),
    capped so that every thread gets enough work per batch to pay for its
    synchronization; ``by_units`` picks the hidden-unit split over the row
    split (see the constants above).
    """
    limit = _kernels.max_threads()
    macs = 3 * batch_size * layout.macs_per_row
    if dense and len(layout.sizes) == 3 and batch_size <= _UNIT_SPLIT_MAX_BATCH:
        n = min(limit, macs // _MIN_MACS_PER_THREAD_UNITS, layout.sizes[1])
        return int(max(1, n)), n > 1
    return int(max(1, min(limit, macs // _MIN_MACS_PER_THREAD))), False


class DivergenceError(ValueError):
    """Training produced a non-finite loss or non-finite parameters.

    The network keeps finite parameters: those from the start of the epoch in
    which training diverged, if the last ones were not finite.
    """

    def __init__(self, message, epoch_loss_so_far=None):
        super().__init__(message)
        self.epoch_loss_so_far = epoch_loss_so_far


_DIVERGED = {
    _kernels.Status.NONFINITE_LOSS: "the loss became non-finite",
    _kernels.Status.NONFINITE_PARAMS: "the parameters became non-finite",
}


class EpochRunner:
    """Runs whole epochs of minibatch training on one (network, optimizer, data).

    ``X``, ``Y`` and ``sample_weight`` must already be validated, C-contiguous
    arrays of the parameters' dtype. Nothing is allocated per epoch except the
    start-of-epoch snapshot used to recover from divergence.
    """

    def __init__(self, layout, params, optimizer, X, Y, sample_weight, batch_size, alpha):
        n = X.shape[0]
        batch_size = max(1, min(int(batch_size), n))
        self.layout = layout
        self.params = params
        self.optimizer = optimizer
        self.n_threads_max = max(1, _kernels.max_threads())
        # One gradient row per thread; the threads' rows are summed in the update.
        self.grad = np.zeros((self.n_threads_max, params.shape[0]), dtype=params.dtype)
        self.state = optimizer.state_for(params)
        self.dense = isinstance(X, np.ndarray)
        work = layout.workspace_size(batch_size)
        if self.dense and len(layout.sizes) == 3:
            work = max(work, layout.units_workspace_size(batch_size, self.n_threads_max))
        n_batches = -(-n // batch_size)
        self.batch_rows = np.full(n_batches, batch_size, dtype=np.float64)
        self.batch_rows[-1] = n - batch_size * (n_batches - 1)
        self.batches = _kernels.Minibatches(
            X, Y, sample_weight, None, batch_size, float(alpha),
            np.zeros(work, dtype=params.dtype),
            np.zeros(n_batches, dtype=np.float64),
        )
        self._snapshot = np.empty_like(params)

    @property
    def n_samples(self):
        return self.batches.X.shape[0]

    def run(self, perm=None):
        """One epoch in the order ``perm`` (None: natural order).

        Returns scikit-learn's epoch loss: the sum over batches of
        ``batch_rows * batch_loss``, divided by the number of samples.
        Raises DivergenceError or, on Ctrl-C, KeyboardInterrupt (after the
        batches finished so far have updated the parameters).
        """
        self.batches.perm = perm
        np.copyto(self._snapshot, self.params)
        n_threads, by_units = choose_threads(self.layout, self.batches.batch_size,
                                             self.dense)
        n_threads = min(self.n_threads_max, n_threads)
        # The unit split carries two state buffers per thread (AMSGrad has three).
        by_units = by_units and self.optimizer._config.n_state <= 2
        # BLAS stays on one thread while our threads split the batch, and also
        # when a batch is too small to split: then its GEMMs are too small for
        # BLAS threads to pay (W1 with 2 BLAS threads ran at 0.81x of 1).
        small = 3 * self.batches.batch_size * self.layout.macs_per_row < 2 * _MIN_MACS_PER_THREAD
        single_blas = n_threads > 1 or small
        with _single_threaded_blas() if single_blas else contextlib.nullcontext():
            status = _kernels.train_epoch(self.layout, self.optimizer._config,
                                          self.batches, self.params, self.grad,
                                          self.state, n_threads, by_units)
        n_done = self.batches.n_done
        done_loss = float(np.dot(self.batches.batch_loss[:n_done], self.batch_rows[:n_done]))
        if status != _kernels.Status.OK:
            restored = not np.isfinite(self.params).all()
            if restored:
                np.copyto(self.params, self._snapshot)
            raise DivergenceError(
                f"Training diverged: {_DIVERGED[status]} after {n_done} batches of this "
                "epoch"
                + ("; the parameters were restored to their values at the start of "
                   "the epoch" if restored else "")
                + ". Lower the learning rate, scale the inputs (e.g. with "
                "sklearn.preprocessing.StandardScaler) or add L2 regularization.",
                epoch_loss_so_far=done_loss / self.n_samples,
            )
        return done_loss / self.n_samples

    @property
    def last_batch_losses(self):
        """Per-batch losses of the last epoch (only the completed batches)."""
        return self.batches.batch_loss[:self.batches.n_done].copy()


class FloorRunner:
    """The benchmark floor: per batch, only the epoch's GEMMs and one optimizer pass.

    The same GEMM calls with the same shapes as the epoch kernel (three per
    layer, two for the first) and the same update, back to back, on one
    thread: no gather, bias, activations or loss. Everything is allocated
    here once, so ``run`` times the floor alone. It works on throwaway copies
    of the parameters and optimizer state: ``net`` and ``optimizer`` are left
    as they were.
    """

    def __init__(self, net, optimizer, X, Y, batch_size):
        X, Y, _ = net._check_xy(X, Y, None)
        if not isinstance(X, np.ndarray):
            raise TypeError("the floor is defined for dense X")
        self.layout = net.layout
        self.optimizer = optimizer
        self.params = net.params.copy()
        self.grad = np.zeros_like(self.params)
        self.state = np.zeros((optimizer._config.n_state, self.params.shape[0]),
                              dtype=self.params.dtype)
        bs = max(1, min(int(batch_size), X.shape[0]))
        # The backward GEMMs read the delta block, which the floor never
        # writes: fill it with ordinary numbers. A zero delta gives zero
        # gradients, and on Intel cores the divider finishes sqrt(0) and x/eps
        # early: Adam's pass then took 0.79x its time on real gradients (W1),
        # an unreachable floor.
        work = np.random.RandomState(0).uniform(-0.01, 0.01, net.layout.workspace_size(bs))
        self.batches = _kernels.Minibatches(
            X, Y, None, None, bs, 0.0, work.astype(self.params.dtype),
            np.zeros(-(-X.shape[0] // bs)),
        )

    def run(self):
        t0 = self.optimizer._config.t
        try:
            _kernels.floor_epoch(self.layout, self.optimizer._config, self.batches,
                                 self.params, self.grad, self.state)
        finally:
            self.optimizer._config.t = t0


def floor_epoch(net, optimizer, X, Y, batch_size):
    """One floor epoch (see FloorRunner); allocates per call, so for timing
    repeated epochs build a FloorRunner once and call its ``run``."""
    FloorRunner(net, optimizer, X, Y, batch_size).run()
