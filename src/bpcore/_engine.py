"""Glue between the Python layer and the epoch kernel.

``EpochRunner`` allocates everything a fit needs once (workspace, gradient,
per-batch losses), then each ``run`` is a single kernel call for a whole epoch
and turns the kernel's status into an exception. Beside it, the thread
choice (``choose_threads``, ``inference_plan``, when BLAS threads pay).
By role elsewhere: BLAS detection and the single-threaded BLAS context
(``_blas``), the training lock and the scratch pool (``_scratch``), the
benchmark floor (``bpcore.benchmark.floor``), ``DivergenceError``
(``bpcore.exceptions``).
"""
from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
from numpy.typing import NDArray

from . import _kernels, _threads
# The BLAS context and the scratch pool live in their own modules; their
# names stay importable from here (tests and callers reach them as _engine.*).
from ._blas import _SINGLE_BLAS as _SINGLE_BLAS
from ._blas import _scipy_blas_info as _scipy_blas_info
from ._blas import _single_threaded_blas as _single_threaded_blas
from ._blas import _SingleThreadedBLAS as _SingleThreadedBLAS
from ._blas import gemm_split_setting as gemm_split_setting
from ._scratch import _Scratch, _give_scratch, _take_scratch, _training_lock
from ._scratch import _scratch_pool as _scratch_pool
from ._scratch import forget_scratch as forget_scratch
from .exceptions import DivergenceError as DivergenceError

if TYPE_CHECKING:  # pragma: no cover - typing only
    from .network import Network, _Layout
    from .optimizers import Optimizer

# How the epoch kernel splits a batch across threads (docs/DESIGN.md, Threads).
#
# By rows: each thread runs forward and backward on its rows, then the
# threads sum their gradients and update a slice of the parameters each.
# Every batch moves half the parameters and gradients between cores and
# waits at two barriers, so a thread needs at least this many multiply-adds
# of forward+backward work per batch to gain (2 cores: 0.7 M per batch,
# 64-100-10 at batch 32, gained 1.1x; 4.4 M, batch 200, 2.1x).
_MIN_MACS_PER_THREAD = 1_000_000
# The row split's rule counts its synchronization points: two barriers per
# batch, and one more for each of batch norm's two team reductions
# (statistics forward, gradient sums backward) in every normalized layer.
# A thread gets at least this many multiply-adds per batch for each of
# them; plain networks get exactly the rule above (2 x 500 k). Bound by the
# host's slow phase (barrier round 150-1,000 ns, docs/DESIGN.md "Threads
# that always pay"): W2 at 1.1 M per thread and barrier kept 1.22-1.42x of
# one thread there; W6 (batch norm on both of its (128, 128) layers, batch
# 32: 8 synchronization points then, 310 k each) ran at 0.96x in the fast
# phase and 0.38x in the slow one.
_MIN_MACS_PER_SYNC = 500_000
# ... and at least this many rows per thread. The row split's traffic (each
# thread's gradient rows summed by the other, half the parameters written
# back) grows with the parameter count, its work with the parameter count
# times the batch, so rows per thread bound the gain whatever the widths.
# Quiet machine, 2026-12-07 (benchmarks/results/thread_phases.md): W6-plain
# (64-128-128-10, batch 32: 16 rows per thread, 1.2 M multiply-adds per
# thread and barrier) ran at 0.93x / 1.01x of one thread in the fast phase
# and 0.36x in the slow one; W3 (batch 128: 64 rows) 1.60x / 1.73x fast;
# W2 (batch 200: 100 rows) 1.51x / 1.59x fast, 0.87x-1.00x slow.
_MIN_ROWS_PER_THREAD = 64
# Inference cuts small inputs into at most this many chunks (inference_plan).
_MAX_INFERENCE_CHUNKS = 16
# By hidden units (dense X): each thread owns a block of units of every
# hidden layer and their weights for the whole epoch; no parameter traffic,
# and 2 + 2 (n_hidden - 1) synchronization points per batch (the output's
# two, then one forward and one backward per further hidden layer).
# One hidden layer: on 2 cores it beat the row split for every batch size up
# to 128 measured on a Xeon (64-100-10, 256-256-10, 784-100-10, 20-32-2;
# batch 32: 1.6-1.8x against 0.8-1.4x). On this AMD VM, quiet, alternating 1
# thread, rows and units epoch by epoch for 40 s (2026-12-07, docs/DESIGN.md
# "Threads that always pay"), W2's 64-100-10 at batch 200: units 1.73x /
# 1.76x (float32 / float64) against rows 1.64x / 1.66x in the fast phase,
# 1.46x / 1.49x against 1.00x / 0.95x in the slow one; batch 512: 1.74x /
# 1.81x against 1.78x / 1.78x fast, 1.47x / 1.61x against 1.24x / 1.28x
# slow. At 1000 the row split led in the fast phase (1.90x against 1.63x,
# float32). A thread needs at least 100 k multiply-adds of forward+backward
# per batch (50 k per synchronization point; 20-32-2 at batch 64, 0.14 M per
# batch, gained 1.03-1.16x; below that nothing).
_UNIT_SPLIT_MAX_BATCH = 512
_MIN_MACS_PER_SYNC_UNITS = 50_000
# Deeper networks: each further point moves a layer's activations (batch x
# H) between the cores, not K-wide partial sums, and costs more: 150 k per
# thread and point, half of W6's 310 k (its (128, 128) layers at batch 32:
# 1.6-1.9x of one thread in the fast phase, 1.3-1.4x in the slow one, see
# docs/DESIGN.md "The unit split for deep networks"); smaller deep shapes
# were not measured outside the busy phase and keep one thread, and so do
# batches above 128 (not measured against the row split for deep networks).
_UNIT_SPLIT_MAX_BATCH_DEEP = 128
_MIN_MACS_PER_SYNC_UNITS_DEEP = 150_000

def blas_threads_pay(macs: int) -> bool:
    """True if a kernel call whose products total ``macs`` multiply-adds per
    block (one batch, or one block of rows) gains from BLAS threads.

    Below ``2 * _MIN_MACS_PER_THREAD`` the products are too small: W1 with 2
    BLAS threads ran at 0.81x of 1, and ``Network.forward`` on 44 rows of
    64-100-10 took 40 ms with 2 BLAS threads under load against 0.85 ms
    with one. The epoch (forward + backward: ``3 * batch * macs_per_row``),
    the full-batch gradient and the validation loss
    (``3 * rows * macs_per_row``) use this rule; inference never uses
    BLAS's threads (``inference_plan``).
    """
    return macs >= 2 * _MIN_MACS_PER_THREAD


def blas_for(macs: int) -> contextlib.nullcontext[None] | _SingleThreadedBLAS:
    """``_single_threaded_blas()`` unless ``blas_threads_pay(macs)``."""
    return contextlib.nullcontext() if blas_threads_pay(macs) else _SINGLE_BLAS


def inference_plan(layout: _Layout, n_rows: int, block_rows: int) -> tuple[int, int]:
    """``(n_threads, chunk)`` for ``forward`` on ``n_rows`` rows.

    Inference cuts the rows into chunks shared by our own threads, BLAS on
    one thread each (``forward`` runs under ``_single_threaded_blas``):
    BLAS's threads would keep spinning after the call and slow the next
    epoch's threads (docs/DESIGN.md, "OpenBLAS's spinning threads and
    ours"). Each chunk gets at least ``_MIN_MACS_PER_THREAD`` multiply-adds
    (no barrier per batch here, one fork and join per call), and at most
    ``block_rows`` rows. The chunks depend on the rows and the network
    only, never on the thread count: float32 products can round a row
    differently by its place in a chunk, so this keeps ``predict`` bitwise
    the same on 1 or 2 threads.
    """
    k = min(_MAX_INFERENCE_CHUNKS, max(1, n_rows * layout.macs_per_row // _MIN_MACS_PER_THREAD))
    # A power of two chunks (1, 2, 4, 8, 16), or for large inputs a multiple
    # of 16 chunks of at most block_rows rows: 2, 4, 8 or 16 threads get
    # equal shares.
    k = 1 << (k - 1).bit_length()
    if k == _MAX_INFERENCE_CHUNKS:
        blocks = -(-n_rows // block_rows)
        k = -(-blocks // _MAX_INFERENCE_CHUNKS) * _MAX_INFERENCE_CHUNKS
    chunk = max(1, min(block_rows, -(-n_rows // k)))
    n_chunks = -(-n_rows // chunk)
    return int(max(1, min(_threads.thread_limit(), n_chunks))), chunk


def reshuffle(order: NDArray[np.intp], random_state: np.random.RandomState) -> NDArray[np.intp]:
    """``sklearn.utils.shuffle(order, random_state=random_state)``, without its overhead.

    The same draws in the same order (a permutation of ``arange(n)`` by
    ``RandomState.shuffle``, then indexing), so the result is bitwise
    scikit-learn's; its per-call validation cost ~0.2 ms, a tenth of a digits
    epoch. ``random_state`` must be a ``numpy.random.RandomState``.
    """
    idx = np.arange(order.shape[0])
    random_state.shuffle(idx)
    return order[idx]


def unit_split_applies(layout: _Layout, dense: bool = True, n_state: int = 0,
                       rules: _kernels.StepRules | None = None) -> bool:
    """True if the hidden-unit split can run an epoch of ``layout`` on dense
    (or sparse) X with an optimizer of ``n_state`` state buffers and these
    step rules (None: every rule off). The kernels decide it, in one place
    (``_kernels.unit_split_refusal``, which also says why not)."""
    return _kernels.unit_split_refusal(layout, dense, n_state, rules) is None


def choose_threads(layout: _Layout, batch_size: int, dense: bool = True,
                   unit_split_ok: bool = True) -> tuple[int, bool]:
    """How the epoch kernel uses threads: ``(n_threads, by_units)``.

    OpenMP's current limit (``threadpoolctl.threadpool_limits`` sets it;
    capped at the CPUs this process may use, see ``_threads``), capped so
    that every thread gets enough work per batch to pay for its
    synchronization points in the host's slow phase (the row split: per
    barrier, and enough rows per thread for its gradient traffic; see the
    constants above); ``by_units`` picks the hidden-unit
    split over the row split. Shapes decide, never timings: the same
    network, batch size and limit always give the same threads and bits.
    The unit split (batches up to ``_UNIT_SPLIT_MAX_BATCH``, up to
    ``_UNIT_SPLIT_MAX_BATCH_DEEP`` with more than one hidden layer) takes
    any number of hidden layers (batch norm, dropout and residual skips
    included), dense X, optimizers with at most two state buffers and no
    l1, max-norm or clipping (``unit_split_ok``), at most one thread per
    unit of the narrowest hidden layer; everything else takes the row
    split.
    """
    limit = _threads.thread_limit()
    macs = 3 * batch_size * layout.macs_per_row
    hidden = layout.sizes[1:-1]
    deep = len(hidden) > 1
    if (unit_split_ok and unit_split_applies(layout, dense)
            and batch_size <= (_UNIT_SPLIT_MAX_BATCH_DEEP if deep else _UNIT_SPLIT_MAX_BATCH)):
        syncs = 2 + 2 * (len(hidden) - 1)
        per_sync = _MIN_MACS_PER_SYNC_UNITS_DEEP if deep else _MIN_MACS_PER_SYNC_UNITS
        n = min(limit, macs // (syncs * per_sync), min(hidden))
        return int(max(1, n)), n > 1
    syncs = 2 + 2 * sum(g is not None for g in layout.scale_offsets)
    n = min(limit, macs // (syncs * _MIN_MACS_PER_SYNC), batch_size // _MIN_ROWS_PER_THREAD)
    return int(max(1, n)), False


_DIVERGED = {
    _kernels.Status.NONFINITE_LOSS: "the loss became non-finite",
    _kernels.Status.NONFINITE_PARAMS: "the parameters became non-finite",
}


class _StepRules(Protocol):
    """What Python reads and writes of a ``_kernels.StepRules`` (no stub)."""

    alpha: float
    l1: float
    max_norm: float
    clip_norm: float
    clip_value: float
    lr_steps: NDArray[np.float64] | None


class _Workspace(Protocol):
    """What Python reads and writes of a ``_kernels.Workspace`` (no stub)."""

    work: NDArray[np.floating[Any]]
    stats: NDArray[np.float64] | None


class _Minibatches(Protocol):
    """What Python reads and writes of a ``_kernels.Minibatches`` (which has
    no stub): its public fields, as declared in src/kernels/data.pxi."""

    X: NDArray[np.floating[Any]] | _kernels.CSRInput
    Y: NDArray[np.floating[Any]]
    sample_weight: NDArray[np.floating[Any]] | None
    perm: NDArray[np.intp] | None
    keys: NDArray[Any] | None
    batch_loss: NDArray[np.float64]
    batch_size: int
    n_done: int
    seed: int
    epoch: int
    rules: _StepRules
    workspace: _Workspace


class EpochRunner:
    """Runs whole epochs of minibatch training on one (network, optimizer, data).

    ``X``, ``Y`` and ``sample_weight`` must already be validated (e.g. by
    ``Network.check_xy``), C-contiguous arrays of the network's dtype (or a
    ``CSRInput`` X). Nothing is allocated per epoch except the
    start-of-epoch snapshot used to recover from divergence.

    Settings read at every ``run``: ``epoch`` (dropout masks), ``lr_steps``
    (the rate of every batch of the epoch, float64, or None to keep the
    optimizer's).
    """

    batches: _Minibatches
    lr_steps: NDArray[np.float64] | None

    def __init__(self, net: Network, optimizer: Optimizer,
                 X: NDArray[np.floating[Any]] | _kernels.CSRInput, Y: NDArray[np.floating[Any]],
                 sample_weight: NDArray[np.floating[Any]] | None, batch_size: int,
                 alpha: float = 0.0, *, l1: float = 0.0, max_norm: float | None = None,
                 clip_norm: float | None = None, clip_value: float | None = None,
                 seed: int = 0) -> None:
        n = X.shape[0]
        batch_size = max(1, min(int(batch_size), n))
        layout, params = net.layout, net.params
        self.net = net
        self.layout = layout
        self.params = params
        self.buffers = net.buffers
        self.optimizer = optimizer
        self.n_threads_max = _threads.thread_limit()
        self.state = optimizer.state_for(params)
        self.dense = isinstance(X, np.ndarray)
        n_batches = -(-n // batch_size)
        if layout.n_buffers and (batch_size < 2 or n - batch_size * (n_batches - 1) < 2):
            raise ValueError(
                f"batch norm needs at least 2 samples in every batch to compute a batch "
                f"variance, but {n} samples in batches of {batch_size} leave a batch of "
                f"{min(batch_size, n - batch_size * (n_batches - 1))}; choose a batch_size "
                "that leaves no batch of one sample"
            )
        rules = _kernels.StepRules(float(alpha), float(l1 or 0.0), float(max_norm or 0.0),
                                   float(clip_norm or 0.0), float(clip_value or 0.0))
        self.unit_split_ok = unit_split_applies(layout, self.dense,
                                                optimizer._config.n_state, rules)
        work = layout.workspace_size(batch_size)
        if self.unit_split_ok:
            work = max(work, layout.units_workspace_size(batch_size, self.n_threads_max))
        # Everything below that depends only on these is scratch: a previous
        # fit of this network released it (see release) or it is new.
        self._scratch_key = (layout, params.dtype, batch_size, n, self.n_threads_max, work)
        scratch = _take_scratch(net, self._scratch_key)
        if scratch is None:
            scratch = _Scratch(layout, params, self.buffers, batch_size, n, n_batches,
                               self.n_threads_max, work)
        self._scratch: _Scratch | None = scratch
        # One gradient row per thread; the threads' rows are summed in the update.
        self.grad = scratch.grad
        self.batch_rows = scratch.batch_rows
        self.batches = _kernels.Minibatches(
            X, Y, sample_weight, None, batch_size, float(alpha),
            scratch.work, scratch.batch_loss,
        )
        b = self.batches
        b.rules = rules
        b.workspace.stats = scratch.stats
        b.seed = int(seed) & 0xFFFFFFFFFFFFFFFF
        # Dropout masks follow each row's content (copies of a row share
        # them, as a weighted row does): one hash pass over X per fit.
        b.keys = _kernels.row_keys(X) if layout.has_dropout else None
        self.epoch = 0
        self.lr_steps = None
        self._snapshot = scratch.snapshot
        self._snapshot_buffers = scratch.snapshot_buffers
        # The values this fit started from: the fallback when even an
        # epoch's start is no longer usable (see _recover). The first run's
        # snapshot is that start: it is kept from the second run on, so a fit
        # of one epoch copies nothing more.
        self._fit_start = (scratch.fit_start, scratch.fit_start_buffers)
        self._runs = 0

    def release(self) -> None:
        """Hand this runner's scratch to the next fit of the same network.

        The next ``EpochRunner`` of this network with the same plan, dtype,
        batch size, number of samples and thread limit then reuses it
        instead of allocating (and first touching) its own: ``train`` called
        in a loop, one epoch per call, paid ~15 us for the allocations and
        ~30-50 us more in its first epoch on fresh memory. The runner must
        not run again afterwards. Only scratch is reused; inputs are
        checked by every call (``Network.check_xy``).
        """
        scratch, self._scratch = self._scratch, None
        self.batches = None  # type: ignore[assignment]  # a released runner does not run again
        if scratch is not None:
            _give_scratch(self.net, self._scratch_key, scratch)

    @property
    def n_samples(self) -> int:
        # An int; numpy's stubs (shape) and the stubless CSRInput leave it Any.
        return self.batches.X.shape[0]  # type: ignore[no-any-return]

    @property
    def n_batches(self) -> int:
        return self.batch_rows.shape[0]

    def run(self, perm: NDArray[np.intp] | None = None) -> float:
        """One epoch in the order ``perm`` (None: natural order).

        Returns scikit-learn's epoch loss: the sum over batches of
        ``batch_rows * batch_loss``, divided by the number of samples.
        Raises DivergenceError or, on Ctrl-C, KeyboardInterrupt (after the
        batches finished so far have updated the parameters).
        """
        # Two threads training one network at once would race on its buffers.
        lock = _training_lock(self.net)
        if not lock.acquire(blocking=False):
            raise RuntimeError(
                "this network is already being trained by another thread; train "
                "one network from one thread at a time (or copy it first)")
        try:
            return self._run(perm)
        finally:
            lock.release()

    def _run(self, perm: NDArray[np.intp] | None) -> float:
        b = self.batches
        if b is None:
            raise RuntimeError("this EpochRunner was released; make a new one")
        b.perm = perm
        b.epoch = self.epoch
        b.rules.lr_steps = self.lr_steps
        if self._runs == 1:
            np.copyto(self._fit_start[0], self._snapshot)
            np.copyto(self._fit_start[1], self._snapshot_buffers)
        np.copyto(self._snapshot, self.params)
        np.copyto(self._snapshot_buffers, self.buffers)
        self._runs += 1
        n_threads, by_units = self._threads()
        with self._blas_context(n_threads):
            status = _kernels.train_epoch(self.layout, self.optimizer._config,
                                          b, self.params, self.grad,
                                          self.state, n_threads, by_units, self.buffers)
        n_done = b.n_done
        done_loss = float(np.dot(b.batch_loss[:n_done], self.batch_rows[:n_done]))
        if status != _kernels.Status.OK:
            where = self._recover()
            raise DivergenceError(
                f"Training diverged: {_DIVERGED[status]} after {n_done} batches of epoch "
                f"{self.epoch}; the parameters were restored to their values at the start "
                f"of {where} and the optimizer's state was reset. Lower the learning "
                "rate, scale the inputs (e.g. with sklearn.preprocessing.StandardScaler), "
                "add L2 regularization or clip the gradients (clip_norm).",
                epoch_loss_so_far=done_loss / self.n_samples,
            )
        return done_loss / self.n_samples

    def _threads(self) -> tuple[int, bool]:
        """``(n_threads, by_units)`` for the next epoch (``choose_threads``)."""
        n_threads, by_units = choose_threads(self.layout, self.batches.batch_size,
                                             self.dense, self.unit_split_ok)
        return min(self.n_threads_max, n_threads), by_units

    def blas_context(self) -> contextlib.nullcontext[None] | _SingleThreadedBLAS:
        """The BLAS threading this runner's epochs use, as a context.

        BLAS stays on one thread while our threads split the batch, and also
        when a batch is too small to split: then its GEMMs are too small for
        BLAS threads to pay (W1 with 2 BLAS threads ran at 0.81x of 1).
        ``training.run_epochs`` holds it over the whole loop, validation and
        callbacks included: a BLAS call between epochs with OpenBLAS's
        threads leaves them spinning for milliseconds, and the next epoch's
        threads then share the cores with them (scikit-learn's early
        stopping on digits, (128, 128), 2 threads: 10.8 ms per epoch
        against 2.1 without it; 2.8 with the validation on one BLAS thread).
        """
        return self._blas_context(self._threads()[0])

    def _blas_context(self, n_threads: int,
                      ) -> contextlib.nullcontext[None] | _SingleThreadedBLAS:
        small = not blas_threads_pay(3 * self.batches.batch_size * self.layout.macs_per_row)
        if n_threads > 1 or small:
            return _single_threaded_blas()
        return contextlib.nullcontext()

    def _recover(self) -> str:
        """Restore the last usable parameters and reset the optimizer.

        The start of the diverging epoch if its training loss is finite and
        no higher than at the start of this fit, else the start of this
        fit: a fit can run away over several epochs of finite but growing
        losses before anything overflows (SGD(1e3, momentum=0.9) on targets
        of 1e3: weights of 1e140-1e148 and losses of 1e281 at the start of
        the diverging epoch for 14 of 30 seeds), and such weights are no
        use to resume from. The optimizer's moments may carry the
        divergence on (a velocity of 1e170 ruins the next step too), so
        they go. Returns which start was restored, for the message.
        """
        np.copyto(self.params, self._snapshot)
        np.copyto(self.buffers, self._snapshot_buffers)
        where = "that epoch"
        if self._runs > 1:      # (in the first epoch, its start is the fit's)
            epoch_loss = self._loss(self.params, self.buffers)
            fit_loss = self._loss(*self._fit_start)
            if not epoch_loss <= fit_loss:      # (NaN compares False)
                np.copyto(self.params, self._fit_start[0])
                np.copyto(self.buffers, self._fit_start[1])
                where = (f"this fit (the start of that epoch had a training loss of "
                         f"{epoch_loss:.3g}, above the fit's {fit_loss:.3g})")
        self.optimizer.reset()
        self.state = self.optimizer.state_for(self.params)
        return where

    def _loss(self, params: NDArray[np.floating[Any]],
              buffers: NDArray[np.floating[Any]]) -> float:
        """The data loss of ``params`` on the training data (inf if not finite)."""
        b = self.batches
        if not np.isfinite(params).all():
            return float("inf")
        with np.errstate(all="ignore"):
            loss = float(_kernels.loss_value(self.layout, params, b.X, b.Y, b.sample_weight,
                                             b.workspace.work, b.batch_size, buffers))
        return loss if np.isfinite(loss) else float("inf")

    @property
    def last_batch_losses(self) -> NDArray[np.float64]:
        """Per-batch losses of the last epoch (only the completed batches)."""
        # numpy's stubs type ndarray.copy as Any for Python 3.10.
        return self.batches.batch_loss[:self.batches.n_done].copy()  # type: ignore[no-any-return]
