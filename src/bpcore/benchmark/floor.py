"""The benchmark floor and the barrier probe: what the benchmarks measure
bpcore against, not part of training.

``FloorRunner`` times the floor of an epoch (its GEMMs and one optimizer
pass per batch, nothing else); ``barrier_latency`` what every synchronized
batch of a multi-threaded epoch pays at least. The kernels expose only the
loops (``_kernels.floor_epoch``, ``_kernels.barrier_rounds``).
"""
from __future__ import annotations

import time
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import ArrayLike

from .. import _kernels, _threads

if TYPE_CHECKING:  # pragma: no cover - typing only
    from ..network import Network
    from ..optimizers import Optimizer

__all__ = ["FloorRunner", "barrier_latency", "floor_epoch"]


class FloorRunner:
    """The benchmark floor: per batch, only the epoch's GEMMs and one optimizer pass.

    The same GEMM calls with the same shapes as the epoch kernel (three per
    layer, two for the first) and the same update, back to back, on one
    thread: no gather, bias, activations, batch norm, dropout or loss.
    Everything is allocated here once, so ``run`` times the floor alone. It
    works on throwaway copies of the parameters and optimizer state: ``net``
    and ``optimizer`` are left as they were.
    """

    def __init__(self, net: Network, optimizer: Optimizer, X: ArrayLike, Y: ArrayLike,
                 batch_size: int) -> None:
        X, Y, _ = net.check_xy(X, Y, None)
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

    def run(self) -> None:
        config = self.optimizer._config
        t0, lr0 = config.t, config.lr
        try:
            _kernels.floor_epoch(self.layout, config, self.batches,
                                 self.params, self.grad, self.state)
        finally:
            config.t = t0
            config.lr = lr0


def floor_epoch(net: Network, optimizer: Optimizer, X: ArrayLike, Y: ArrayLike,
                batch_size: int) -> None:
    """One floor epoch (see FloorRunner); allocates per call, so for timing
    repeated epochs build a FloorRunner once and call its ``run``."""
    FloorRunner(net, optimizer, X, Y, batch_size).run()


def barrier_latency(rounds: int = 20000, n_threads: int = 2) -> float:
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
    if rounds < 1:
        raise ValueError("rounds must be at least 1")
    team = _threads.probe_team(n_threads)
    if team == 1:
        return 0.0
    # Start the threads, untimed.
    if _kernels.barrier_rounds(min(rounds, 1000), team) < 2:
        return 0.0
    t0 = time.perf_counter()
    _kernels.barrier_rounds(rounds, team)
    return (time.perf_counter() - t0) / rounds
