"""What a fit holds beyond its network: the lock that keeps one network to
one training thread, and the pool that hands one fit's scratch to the next
fit of the same network (``_engine.EpochRunner`` takes and gives it)."""
from __future__ import annotations

import threading
import weakref
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

if TYPE_CHECKING:  # pragma: no cover - typing only
    from .network import Network, _Layout

_locks_guard = threading.Lock()


def _training_lock(net: Network) -> threading.Lock:
    """The lock that makes one network trainable by one thread at a time."""
    lock: threading.Lock | None = net.__dict__.get("_train_lock")
    if lock is None:
        with _locks_guard:
            lock = net.__dict__.setdefault("_train_lock", threading.Lock())
    return lock


class _Scratch:
    """The arrays an EpochRunner writes before it reads (none carries
    information from one fit to the next; each epoch overwrites them)."""

    __slots__ = ("grad", "work", "batch_loss", "batch_rows", "stats", "snapshot",
                 "snapshot_buffers", "fit_start", "fit_start_buffers")

    def __init__(self, layout: _Layout, params: NDArray[np.floating[Any]],
                 buffers: NDArray[np.floating[Any]], batch_size: int, n: int, n_batches: int,
                 n_threads: int, work: int) -> None:
        self.grad = np.zeros((n_threads, params.shape[0]), dtype=params.dtype)
        self.work = np.zeros(work, dtype=params.dtype)
        self.batch_loss = np.zeros(n_batches, dtype=np.float64)
        self.batch_rows = np.full(n_batches, batch_size, dtype=np.float64)
        self.batch_rows[-1] = n - batch_size * (n_batches - 1)
        self.stats = np.zeros(layout.stats_size(n_threads))
        self.snapshot = np.empty_like(params)
        self.snapshot_buffers = np.empty_like(buffers)
        self.fit_start = np.empty_like(params)
        self.fit_start_buffers = np.empty_like(buffers)


# Released scratch, one entry per network (the last released), held weakly
# by the network so that it goes with it. An entry is taken out while a
# runner uses it: two fits of one network at once never share scratch.
_scratch_pool: weakref.WeakKeyDictionary[Network, tuple[tuple[object, ...], _Scratch]] = (
    weakref.WeakKeyDictionary())


def _take_scratch(net: Network, key: tuple[object, ...]) -> _Scratch | None:
    with _locks_guard:
        entry = _scratch_pool.pop(net, None)
    if entry is not None and entry[0] == key:
        return entry[1]
    return None


def _give_scratch(net: Network, key: tuple[object, ...], scratch: _Scratch) -> None:
    with _locks_guard:
        _scratch_pool[net] = (key, scratch)


def forget_scratch(net: Network | None = None) -> None:
    """Drop the scratch kept for ``net`` (every network's when None)."""
    with _locks_guard:
        if net is None:
            _scratch_pool.clear()
        else:
            _scratch_pool.pop(net, None)
