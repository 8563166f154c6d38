"""The benchmark floor (FloorRunner): the epoch's GEMMs and optimizer pass only."""
import subprocess
import sys

import numpy as np
import pytest

from bpcore import Adam, Network
from bpcore.benchmark.floor import FloorRunner, barrier_latency, floor_epoch


def _problem(rng):
    X = rng.standard_normal((100, 8))
    Y = np.eye(3)[rng.integers(0, 3, 100)]
    return X, Y


def test_floor_leaves_the_network_and_optimizer_alone(rng):
    X, Y = _problem(rng)
    net = Network([8, 16, 3], output="softmax", loss="log_loss", random_state=0)
    opt = Adam(1e-3)
    before = net.params.copy()
    runner = FloorRunner(net, opt, X, Y, batch_size=32)
    for _ in range(3):
        runner.run()
    floor_epoch(net, opt, X, Y, 32)
    np.testing.assert_array_equal(net.params, before)
    assert opt.t == 0
    # It did the work: its own copy moved, with non-zero weight gradients
    # (real numbers through the optimizer's sqrt and division, as in training).
    assert not np.array_equal(runner.params, before)
    assert np.isfinite(runner.params).all()
    n_weights = net.layout.n_weights
    assert np.count_nonzero(runner.grad[:n_weights]) == n_weights
    assert np.count_nonzero(runner.state) > 0


def test_floor_needs_dense_x(rng):
    sp = pytest.importorskip("scipy.sparse")
    X, Y = _problem(rng)
    net = Network([8, 16, 3], random_state=0)
    with pytest.raises(TypeError, match="dense X"):
        FloorRunner(net, Adam(), sp.csr_matrix(X), Y, 32)


def test_barrier_latency_probe():
    # The benchmarks' probe of the per-batch barrier: 0.0 for one thread, a
    # finite time for a team (at most the usable CPUs: a request for 64
    # threads on a small machine returns), and a clear error for no rounds.
    assert barrier_latency(100, 1) == 0.0
    t = barrier_latency(2000, 64)
    assert t >= 0.0 and np.isfinite(t)
    with pytest.raises(ValueError, match="rounds must be at least 1"):
        barrier_latency(0)


@pytest.mark.parametrize("rounds", [1, 3, 999, 1000, 1001, 2500])
def test_barrier_latency_returns_for_any_round_count(rounds):
    # An odd warm-up once left the barrier's shared sense out of phase with
    # the threads' fresh local senses and the timed rounds waited forever
    # (without the GIL, past Ctrl-C): run it in a child with a deadline.
    code = ("from bpcore.benchmark.floor import barrier_latency; import math; "
            f"t = barrier_latency({rounds}, 2); assert math.isfinite(t) and t >= 0")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
