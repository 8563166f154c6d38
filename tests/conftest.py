"""Shared test helpers: per-dtype tolerances and the gradient-check record.

The gradient checks (tests/test_gradients.py) report every relative error to
the session-wide ``gradcheck_record``; the largest one is printed in pytest's
terminal summary, e.g.::

    gradient check: 534 cases, largest relative error 2.79e-07 per parameter block (...)
"""
import os
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(__file__))  # `import reference` from any rootdir

DTYPES = [np.float32, np.float64]

def make_targets(loss, output, n, k, rng, poisson_mean=1.0):
    """Random float64 targets (n, k) that fit the loss: one-hot for softmax log
    loss, 0/1 for logistic log loss, counts for Poisson, normal otherwise."""
    if loss == "log_loss" and output == "softmax":
        return np.eye(k)[rng.integers(0, k, n)]
    if loss == "log_loss":
        return rng.integers(0, 2, (n, k)).astype(float)
    if loss == "poisson":
        return rng.poisson(poisson_mean, (n, k)).astype(float)
    return rng.standard_normal((n, k))


#: Relative tolerance of a kernel result against the float64 reference.
RTOL = {np.dtype(np.float32): 1e-5, np.dtype(np.float64): 1e-12}


def rtol_for(dtype):
    return RTOL[np.dtype(dtype)]


def assert_close(actual, desired, dtype, scale=None, rtol=None, err_msg=""):
    """``actual`` within ``rtol`` of ``desired`` (the dtype's tolerance by default).

    ``scale`` (array or scalar) is the magnitude of the terms that were summed
    to form ``desired``; where cancellation makes ``desired`` small, the
    allowed error is ``rtol * scale`` instead of ``rtol * |desired|``.
    """
    rtol = rtol_for(dtype) if rtol is None else rtol
    actual = np.asarray(actual)
    desired = np.asarray(desired, dtype=np.float64)
    if scale is None:
        scale = np.abs(desired)
    allowed = rtol * np.maximum(np.abs(desired), scale) + np.finfo(np.float64).tiny
    err = np.abs(actual.astype(np.float64) - desired)
    bad = ~(err <= allowed)
    if bad.any():
        i = np.unravel_index(np.argmax(np.where(bad, err / allowed, 0)), bad.shape) \
            if bad.ndim else ()
        raise AssertionError(
            f"{err_msg} {int(bad.sum())} of {bad.size} entries differ beyond rtol={rtol:g} "
            f"(dtype {np.dtype(dtype).name}); worst at {i}: actual {actual[i]!r}, "
            f"desired {desired[i]!r}, allowed error {allowed[i]:.3g}, "
            f"max error {err.max():.3g}"
        )


#: Hyperparameters to test for each optimizer of bpcore.optimizers.OPTIMIZERS.
#: A new optimizer without an entry here (and a rule in reference.OPTIMIZER_STEPS)
#: still enrols itself in the parametrization, and fails until it has both.
OPTIMIZER_HYPER = {
    "sgd": [
        dict(learning_rate=0.1),
        dict(learning_rate=0.05, momentum=0.9),
        dict(learning_rate=0.05, momentum=0.8, nesterov=True),
    ],
    "adam": [
        dict(learning_rate=0.01, variant="sklearn"),
        dict(learning_rate=0.02, beta_1=0.8, beta_2=0.95, epsilon=1e-6, variant="paper"),
        dict(learning_rate=0.01, variant="paper"),
        dict(learning_rate=0.02, beta_1=0.5, beta_2=0.9, epsilon=1e-3, variant="sklearn"),
        dict(learning_rate=0.01, variant="paper", amsgrad=True),
        dict(learning_rate=0.02, beta_1=0.5, beta_2=0.9, epsilon=1e-3, variant="paper",
             amsgrad=True),
    ],
    "rmsprop": [dict(learning_rate=0.01), dict(learning_rate=0.05, rho=0.5, epsilon=1e-4)],
    "adagrad": [dict(learning_rate=0.1), dict(learning_rate=0.3, epsilon=1e-3)],
    "adamw": [
        dict(learning_rate=0.01),
        dict(learning_rate=0.02, beta_1=0.8, beta_2=0.95, epsilon=1e-6, weight_decay=0.5),
        dict(learning_rate=0.01, weight_decay=0.1, amsgrad=True),
    ],
    "nadam": [
        dict(learning_rate=0.01),
        dict(learning_rate=0.02, beta_1=0.8, beta_2=0.95, epsilon=1e-4, momentum_decay=0.1),
    ],
    "rprop": [
        dict(learning_rate=0.01),
        dict(learning_rate=0.05, etas=(0.3, 1.5), step_sizes=(1e-3, 0.1)),
    ],
}


def _optimizer_cases():
    from bpcore.optimizers import OPTIMIZERS

    cases = []
    for name in OPTIMIZERS:
        for hyper in OPTIMIZER_HYPER.get(name, [None]):
            cases.append(pytest.param(
                name, hyper,
                id=name + ("" if hyper is None else "-" + "-".join(
                    f"{k}={v}" for k, v in hyper.items() if k != "learning_rate"))))
    return cases


#: (optimizer name, hyperparameters) pairs, driven by the OPTIMIZERS registry.
OPTIMIZER_CASES = _optimizer_cases()


def require_optimizer_reference(name, hyper):
    import reference

    if hyper is None or name not in reference.OPTIMIZER_STEPS:
        pytest.fail(f"optimizer {name!r} has no test hyperparameters in "
                    "tests/conftest.py OPTIMIZER_HYPER or no reference rule in "
                    "tests/reference.py OPTIMIZER_STEPS")


@pytest.fixture
def rng():
    return np.random.default_rng(12345)


class GradcheckRecord:
    """Largest relative error seen across the gradient-check matrix."""

    def __init__(self):
        self.worst = 0.0
        self.worst_total = 0.0
        self.where = None
        self.cases = 0

    def add(self, err, err_total, where):
        """``err``: the per-block measure the tests assert on; ``err_total``:
        the same over the whole gradient vector."""
        self.cases += 1
        self.worst_total = max(self.worst_total, float(err_total))
        if err > self.worst or self.where is None:
            self.worst, self.where = float(err), where


_RECORD = GradcheckRecord()


@pytest.fixture(scope="session")
def gradcheck_record():
    return _RECORD


class DeviationRecord:
    """Largest relative deviation from an oracle (torch, a NumPy reference),
    per (feature, dtype), printed in pytest's terminal summary."""

    def __init__(self):
        self.worst = {}

    def add(self, feature, dtype, err):
        key = (feature, np.dtype(dtype).name)
        self.worst[key] = max(self.worst.get(key, 0.0), float(err))
        return float(err)


_DEVIATIONS = DeviationRecord()


@pytest.fixture(scope="session")
def deviation_record():
    return _DEVIATIONS


def pytest_terminal_summary(terminalreporter, config):
    if _DEVIATIONS.worst:
        if config.get_verbosity() < 0:
            # -q: one line; each deviation was asserted within its tolerance.
            (feature, dtype), err = max(_DEVIATIONS.worst.items(), key=lambda kv: kv[1])
            terminalreporter.write_line(
                f"largest deviation from the oracle: {len(_DEVIATIONS.worst)} (feature, dtype) "
                f"pairs, each within its tolerance; largest {err:.3g} ({feature}, {dtype}); "
                "-v prints the table")
        else:
            terminalreporter.write_sep("-", "largest deviation from the oracle")
            for (feature, dtype), err in sorted(_DEVIATIONS.worst.items()):
                terminalreporter.write_line(f"{feature:<40s} {dtype:<8s} {err:.3g}")
    if _RECORD.cases:
        if config.get_verbosity() >= 0:
            terminalreporter.write_sep("-", "gradient check")
        terminalreporter.write_line(
            f"gradient check: {_RECORD.cases} cases, largest relative error "
            f"{_RECORD.worst:.3g} per parameter block ({_RECORD.where}); "
            f"{_RECORD.worst_total:.3g} over the whole gradient vector"
        )
