"""bpcore.check_gradients: small on correct gradients, large on wrong ones,
and ``net.params`` restored bit for bit.

Correct gradients come from bpcore's networks over the activation and loss
registries and from functions whose gradient is known in closed form; wrong
ones from a Network subclass that perturbs its gradient.
"""
import numpy as np
import pytest

import reference as ref
from bpcore import Network
from bpcore.activations import HIDDEN_ACTIVATIONS, LOSSES
from bpcore.gradcheck import check_gradients
from conftest import make_targets

#: Worst error of the check on a correct float64 gradient (measured: 2.4e-6
#: over tests/test_gradients.py's matrix), and the least on a wrong one.
TOL = 1e-5
WRONG = 1e-2
KINKED = {"relu", "leaky_relu", "elu"}
KINK_MARGIN = 1e-4

LOSS_OUTPUTS = [(loss, output) for loss, outputs in LOSSES.items()
                for output in (["identity", "tanh", "softmax"] if outputs is None else outputs)]


def make_problem(hidden, loss, output, seed, sizes=(4, 6, 5, 3), n=12, cls=Network):
    """A network and data whose kinked units stay off their kinks."""
    depth = len(sizes) - 2
    for attempt in range(100):
        rng = np.random.default_rng([seed, attempt])
        net = cls(list(sizes), activation=hidden, output=output, loss=loss,
                  random_state=int(rng.integers(2**31)))
        X = rng.standard_normal((n, sizes[0]))
        zs, _ = ref.network_forward(net.coefs, net.intercepts, [hidden] * depth + [output], X)
        if hidden not in KINKED or min(np.abs(z).min() for z in zs[:-1]) >= KINK_MARGIN:
            Y = make_targets(loss, output, n, sizes[-1], rng, poisson_mean=1.5)
            return net, X, Y, rng.uniform(0.1, 3.0, n)
    raise RuntimeError("no seed kept every pre-activation off the kink")


@pytest.mark.parametrize("loss, output", LOSS_OUTPUTS, ids=lambda v: str(v))
@pytest.mark.parametrize("hidden", sorted(HIDDEN_ACTIVATIONS))
def test_small_on_correct_networks(hidden, loss, output):
    net, X, Y, sw = make_problem(hidden, loss, output, seed=len(hidden) + 7 * len(loss))
    assert check_gradients(net, X, Y) < TOL
    assert check_gradients(net, X, Y, alpha=0.3, sample_weight=sw) < TOL


class FunctionNet:
    """A stand-in "network" whose loss and gradient are known in closed form."""

    def __init__(self, theta, f, grad):
        self.params = np.array(theta, dtype=np.float64)
        self.f, self.grad = f, grad

    def loss_and_grad(self, X, Y, scale=1.0):
        return scale * self.f(self.params), scale * self.grad(self.params)


@pytest.mark.parametrize("f, grad", [
    (lambda t: np.sum(np.sin(t)), np.cos),
    (lambda t: np.log(np.sum(np.exp(t))), lambda t: np.exp(t) / np.sum(np.exp(t))),
    (lambda t: 0.5 * np.sum(t ** 2) * 1e3, lambda t: t * 1e3),
], ids=["sin", "logsumexp", "quadratic"])
def test_known_functions(f, grad):
    theta = np.random.default_rng(0).uniform(-3, 3, 20)
    theta[0] = 250.0  # the step scales with |theta_i|
    net = FunctionNet(theta, f, grad)
    assert check_gradients(net, None, None) < TOL
    assert check_gradients(net, None, None, scale=1e-3) < TOL   # kwargs reach loss_and_grad
    net.grad = lambda t: grad(t) * np.where(np.arange(t.size) == 0, 1.05, 1.0)
    err = check_gradients(net, None, None)
    assert 0.045 < err < 0.055  # |1.05 g - g| / (1.05 |g|)


class PerturbedNetwork(Network):
    """A network whose gradient is deliberately wrong."""

    perturb = None

    def loss_and_grad(self, X, Y, *args, **kwargs):
        value, grad = super().loss_and_grad(X, Y, *args, **kwargs)
        return value, self.perturb(grad, kwargs)


@pytest.mark.parametrize("perturb", [
    lambda g, kw: g * 1.02,                                       # a global factor
    lambda g, kw: np.where(np.arange(g.size) == g.size - 1, 1.1 * g, g),   # one bias
    lambda g, kw: np.where(np.arange(g.size) == 5, -g, g),        # one weight's sign
    lambda g, kw: g[np.r_[1:g.size, 0]],                          # entries shuffled
], ids=["scaled", "one-bias", "sign", "rolled"])
@pytest.mark.parametrize("hidden, loss, output", [("tanh", "squared_error", "identity"),
                                                  ("logistic", "log_loss", "softmax"),
                                                  ("elu", "poisson", "exp")])
def test_large_on_wrong_gradients(hidden, loss, output, perturb):
    net, X, Y, _ = make_problem(hidden, loss, output, seed=3, cls=PerturbedNetwork)
    net.perturb = staticmethod(perturb)
    assert check_gradients(net, X, Y) > WRONG


def test_large_when_the_penalty_gradient_is_missing():
    """A gradient that forgets L2 passes without alpha and fails with it."""
    net, X, Y, _ = make_problem("tanh", "squared_error", "identity", seed=4,
                                cls=PerturbedNetwork)

    def drop_l2(grad, kw):
        alpha = kw.get("alpha", 0.0)
        w_end = sum(a * b for a, b in zip(net.layer_sizes, net.layer_sizes[1:]))
        grad[:w_end] -= alpha * net.params[:w_end] / X.shape[0]
        return grad

    net.perturb = staticmethod(drop_l2)
    assert check_gradients(net, X, Y) < TOL
    assert check_gradients(net, X, Y, alpha=1.0) > WRONG


def test_params_restored_bit_for_bit():
    net, X, Y, _ = make_problem("tanh", "log_loss", "softmax", seed=5)
    net.params[3] = 1e300 / 3e299   # values whose +-h round, and a huge one
    net.params[4] = -0.0
    before = net.params.tobytes()
    params, coef = net.params, net.coefs[0]
    check_gradients(net, X, Y, alpha=0.1)
    assert net.params is params and net.params.tobytes() == before
    assert np.shares_memory(coef, net.params)


def test_buffers_restored_too():
    class Running(Network):
        def loss_and_grad(self, X, Y, **kwargs):
            self.buffers += 1.0   # as a loss that updated running statistics would
            return super().loss_and_grad(X, Y, **kwargs)

    net, X, Y, _ = make_problem("tanh", "squared_error", "identity", seed=8, cls=Running)
    net.buffers = np.linspace(0.0, 1.0, 7)
    before, buffers = net.buffers.tobytes(), net.buffers
    assert check_gradients(net, X, Y) < TOL
    assert net.buffers is buffers and buffers.tobytes() == before


def test_training_mode_with_dropout_and_batch_norm():
    """TOOLBOX section 1: a training-mode loss with a fixed dropout seed is a
    fixed smooth function of the parameters."""
    import inspect

    if not {"dropout", "batch_norm"} <= set(inspect.signature(Network).parameters):
        pytest.skip("Network has no dropout/batch_norm yet (TOOLBOX section 1, issue #11)")
    rng = np.random.default_rng(9)
    X, Y = rng.standard_normal((16, 4)), rng.standard_normal((16, 2))
    net = Network([4, 6, 5, 2], activation="tanh", dropout=0.3, batch_norm=True,
                  random_state=0)
    assert check_gradients(net, X, Y, training=True, seed=3) < TOL
    assert check_gradients(net, X, Y, training=True, seed=3, alpha=0.2, l1=0.1) < TOL


def test_params_restored_when_loss_and_grad_raises():
    class Flaky(Network):
        calls = 0

        def loss_and_grad(self, X, Y, **kwargs):
            self.calls += 1
            if self.calls == 6:
                raise RuntimeError("boom")
            return super().loss_and_grad(X, Y, **kwargs)

    net, X, Y, _ = make_problem("tanh", "squared_error", "identity", seed=6, cls=Flaky)
    before = net.params.tobytes()
    with pytest.raises(RuntimeError, match="boom"):
        check_gradients(net, X, Y)
    assert net.params.tobytes() == before


def test_max_params_checks_a_seeded_subset():
    net, X, Y, _ = make_problem("tanh", "squared_error", "identity", seed=7,
                                cls=PerturbedNetwork)
    calls = []
    wrong_at = 10

    def one_wrong(grad, kw):
        calls.append(1)
        grad[wrong_at] *= 1.5
        return grad

    net.perturb = staticmethod(one_wrong)
    found = []
    for seed in range(12):
        calls.clear()
        err = check_gradients(net, X, Y, max_params=5, random_state=seed)
        assert len(calls) == 1 + 2 * 5
        chosen = np.sort(np.random.RandomState(seed).choice(net.n_params, 5, replace=False))
        assert (err > WRONG) == (wrong_at in chosen)
        found.append(err > WRONG)
    assert True in found and False in found  # the seeds drew both kinds of subset
    calls.clear()
    assert check_gradients(net, X, Y, max_params=10 ** 6) > WRONG   # more than n: all
    assert len(calls) == 1 + 2 * net.n_params
    assert check_gradients(net, X, Y, max_params=5, random_state=3) == \
        check_gradients(net, X, Y, max_params=5, random_state=3)


def test_bad_input():
    net32 = Network([2, 3, 1], dtype="float32", random_state=0)
    X, Y = np.ones((4, 2)), np.ones((4, 1))
    with pytest.raises(ValueError, match=r"check_gradients needs a float64 network, got float32"):
        check_gradients(net32, X, Y)
    with pytest.raises(TypeError, match=r"net must have a flat `params` array and a "
                                        r"`loss_and_grad\(X, Y, \.\.\.\)` method \(a "
                                        r"bpcore.Network\), got list"):
        check_gradients([1.0], X, Y)
    net = Network([2, 3, 1], random_state=0)
    with pytest.raises(ValueError, match=r"eps must be in \(0\.0, 0\.1\], got 0"):
        check_gradients(net, X, Y, eps=0)
    with pytest.raises(ValueError, match=r"max_params must be an integer >= 1, got 0"):
        check_gradients(net, X, Y, max_params=0)
    with pytest.raises(ValueError, match=r"X has 3 columns, expected 2"):
        check_gradients(net, np.ones((4, 3)), Y)
    with pytest.raises(TypeError, match=r"unexpected keyword argument 'gamma'"):
        check_gradients(net, X, Y, gamma=1.0)
    bad_shape = FunctionNet(np.zeros(3), np.sum, lambda t: np.ones(4))
    with pytest.raises(ValueError, match=r"loss_and_grad returned a gradient of shape \(4,\), "
                                         r"expected \(3,\) like net.params"):
        check_gradients(bad_shape, None, None)
    not_finite = FunctionNet(np.zeros(3), lambda t: np.sum(np.log(t)), lambda t: 1 / t)
    with np.errstate(all="ignore"), pytest.raises(
            ValueError, match=r"the loss or its gradient is not finite"):
        check_gradients(not_finite, None, None)


def test_docstring_examples():
    import doctest

    import bpcore.gradcheck as module

    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
