"""Optimizers: each update rule written out by hand, PyTorch as an independent
check, and hyperparameter validation."""
import re

import numpy as np
import pytest

import reference as ref
from bpcore import RPROP, SGD, AdaGrad, Adam, AdamW, NAdam, Network, RMSProp, train
from bpcore.optimizers import OPTIMIZERS
from conftest import DTYPES, OPTIMIZER_CASES, assert_close, require_optimizer_reference

N_STEPS = 8


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name, hyper", OPTIMIZER_CASES)
def test_update_rule_over_several_steps(name, hyper, dtype, rng):
    """Optimizer.step against the rule in reference.py for N_STEPS steps."""
    require_optimizer_reference(name, hyper)
    opt = OPTIMIZERS[name](**hyper)
    theta = rng.standard_normal(31).astype(dtype)
    expected, state = theta.astype(np.float64), {}
    for step in range(N_STEPS):
        # Gradients of varied size and sign, some exactly zero.
        g = (rng.standard_normal(31) * 10.0 ** rng.uniform(-3, 1, 31)).astype(dtype)
        g[step % 31] = 0.0
        opt.step(theta, g)
        expected = ref.OPTIMIZER_STEPS[name](expected, g, state, **hyper)
        assert theta.dtype == dtype
        assert_close(theta, expected, dtype, scale=1.0, err_msg=f"step {step + 1}")
    assert opt.t == N_STEPS


# Hand-computed single values (no reference code at all): one parameter, a
# fixed gradient sequence, the rule unrolled on paper.

def test_sgd_by_hand():
    theta = np.array([1.0])
    SGD(learning_rate=0.1).step(theta, np.array([2.0]))
    assert theta[0] == pytest.approx(0.8, abs=1e-15)

    theta, opt = np.array([1.0]), SGD(learning_rate=0.1, momentum=0.5)
    opt.step(theta, np.array([2.0]))       # v = -0.2, theta = 0.8
    opt.step(theta, np.array([1.0]))       # v = -0.1 - 0.1 = -0.2, theta = 0.6
    assert theta[0] == pytest.approx(0.6, abs=1e-15)

    theta, opt = np.array([1.0]), SGD(learning_rate=0.1, momentum=0.5, nesterov=True)
    opt.step(theta, np.array([2.0]))       # v = -0.2; theta += 0.5 * -0.2 - 0.2 -> 0.7
    opt.step(theta, np.array([1.0]))       # v = -0.2; theta += -0.1 - 0.1 -> 0.5
    assert theta[0] == pytest.approx(0.5, abs=1e-15)


def test_adam_by_hand():
    # First step of Adam moves every parameter by about lr against the sign of g.
    for variant in ("sklearn", "paper"):
        theta = np.array([1.0, 1.0])
        Adam(learning_rate=0.01, variant=variant).step(theta, np.array([3.0, -0.1]))
        np.testing.assert_allclose(theta, [0.99, 1.01], rtol=1e-6)
    # Where epsilon sits shows at small gradients. With g = eps = 1e-3,
    # b1 = 0.9, b2 = 0.99: m = 1e-4, v = 1e-8, and
    #   sklearn: lr * sqrt(0.01) / 0.1 * 1e-4 / (sqrt(1e-8) + 1e-3) = lr / 11
    #   paper:   lr / 0.1 * 1e-4 / (sqrt(1e-8 / 0.01) + 1e-3)       = lr / 2
    for variant, expected in (("sklearn", 0.1 / 11), ("paper", 0.1 / 2)):
        theta = np.array([0.0])
        Adam(learning_rate=0.1, beta_1=0.9, beta_2=0.99, epsilon=1e-3, variant=variant).step(
            theta, np.array([1e-3]))
        assert theta[0] == pytest.approx(-expected, rel=1e-12)


def test_adamw_by_hand():
    # No gradient: m = v = 0, Adam's step is 0 / eps = 0, only the decay acts.
    theta = np.array([2.0, -4.0, 8.0])
    AdamW(learning_rate=0.1, weight_decay=0.5).step(theta, np.zeros(3))
    np.testing.assert_array_equal(theta, [1.9, -3.8, 8.0 * 0.95])
    # On the weights only: the last entry is a bias.
    theta = np.array([2.0, -4.0, 8.0])
    AdamW(learning_rate=0.1, weight_decay=0.5).step(theta, np.zeros(3), n_weights=2)
    np.testing.assert_array_equal(theta, [1.9, -3.8, 8.0])
    # First step with a gradient: decay, then about lr against the sign of g.
    theta = np.array([1.0])
    AdamW(learning_rate=0.01, weight_decay=0.1).step(theta, np.array([3.0]))
    assert theta[0] == pytest.approx(1.0 * (1 - 0.001) - 0.01, rel=1e-9)


def test_amsgrad_by_hand():
    # b1 = 0, b2 = 0.5, eps tiny: m = g; v = 0.5 v + 0.5 g^2; vmax = max(vmax, v).
    # Step 1: g = 2: v = 2, bc2 = 0.5, vhat = 2 / 0.5 = 4 -> theta -= lr * 2 / 2.
    # Step 2: g = 0.5: v = 1.125 < vmax = 2, bc2 = 0.75 -> theta -= lr * 0.5 / sqrt(2 / 0.75);
    # plain Adam would divide by sqrt(1.125 / 0.75) instead.
    lr = 0.1
    for amsgrad, v2 in ((True, 2.0), (False, 1.125)):
        theta, opt = np.array([0.0]), Adam(learning_rate=lr, beta_1=0.0, beta_2=0.5,
                                           epsilon=1e-300, variant="paper", amsgrad=amsgrad)
        opt.step(theta, np.array([2.0]))
        opt.step(theta, np.array([0.5]))
        assert theta[0] == pytest.approx(-lr - lr * 0.5 / np.sqrt(v2 / 0.75), rel=1e-12)
        assert opt.state.shape[0] == (3 if amsgrad else 2)


def test_nadam_by_hand():
    # Step 1: m = (1 - b1) g, v = (1 - b2) g^2, so sqrt(v / bc2) = |g| and
    #   theta -= lr sign(g) ((1 - mu1) / (1 - mu1) + mu2 (1 - b1) / (1 - mu1 mu2))
    b1, psi, lr = 0.9, 4e-3, 0.1
    mu1, mu2 = (b1 * (1 - 0.5 * 0.96 ** (k * psi)) for k in (1, 2))
    theta = np.array([0.0, 0.0])
    NAdam(learning_rate=lr, epsilon=1e-300).step(theta, np.array([3.0, -0.5]))
    expected = lr * (1 + mu2 * (1 - b1) / (1 - mu1 * mu2))
    np.testing.assert_allclose(theta, [-expected, expected], rtol=1e-13)


def test_rprop_by_hand():
    # lr 0.1, etas (0.5, 1.2): g keeps its sign -> 0.1 then 0.12; flips -> no
    # move and the step halves (0.05); then g counts as fresh (no sign) -> 0.05.
    theta, opt = np.array([0.0, 0.0]), RPROP(learning_rate=0.1)
    opt.step(theta, np.array([1.0, 1.0]))
    np.testing.assert_allclose(theta, [-0.1, -0.1], rtol=1e-15)
    opt.step(theta, np.array([2.0, -1.0]))
    np.testing.assert_allclose(theta, [-0.22, -0.1], rtol=1e-15)
    np.testing.assert_allclose(opt.state, [[2.0, 0.0], [0.12, 0.05]], rtol=1e-15)
    opt.step(theta, np.array([2.0, -1.0]))
    np.testing.assert_allclose(theta, [-0.364, -0.05], rtol=1e-15)
    # The bounds: tiny steps stop at step_sizes[0], large ones at step_sizes[1].
    theta, opt = np.array([0.0, 0.0]), RPROP(learning_rate=1.0, step_sizes=(0.4, 1.3))
    for sign in (1, -1, 1, -1):
        opt.step(theta, np.array([1.0, 1.0]) * [sign, 1])
    np.testing.assert_allclose(opt.state[1], [0.4, 1.3], rtol=1e-15)


def test_optimizer_step_is_one_kernel_call(monkeypatch):
    import bpcore.optimizers as optimizers

    calls = []
    kernel = optimizers._kernels.optimizer_step
    monkeypatch.setattr(optimizers._kernels, "optimizer_step",
                        lambda *args: calls.append(args) or kernel(*args))
    theta, g = np.ones(50), np.ones(50)
    for case in OPTIMIZER_CASES:
        name, hyper = case.values
        calls.clear()
        OPTIMIZERS[name](**hyper).step(theta, g, n_weights=30)
        assert len(calls) == 1, name


def test_nadam_catches_up_its_momentum_product(rng):
    """A driver that writes back only t (not mu_product) loses nothing: the
    next step multiplies in the missing mu's in order, bitwise as if kept."""
    grads = rng.standard_normal((8, 6))
    theta, opt = np.zeros(6), NAdam(learning_rate=0.05, momentum_decay=0.3)
    for g in grads[:5]:
        opt.step(theta, g)
    lagging, theta_l = NAdam(learning_rate=0.05, momentum_decay=0.3), theta.copy()
    lagging.state = opt.state.copy()
    lagging._config.t = 5                     # mu_product still at step 0
    for g in grads[5:]:
        opt.step(theta, g)
        lagging.step(theta_l, g)
    np.testing.assert_array_equal(theta_l, theta)
    assert lagging._config.mu_product == opt._config.mu_product
    # reset() restarts the product with the step count.
    fresh, theta_f = NAdam(learning_rate=0.05, momentum_decay=0.3), np.zeros(6)
    opt.reset()
    theta_r = np.zeros(6)
    for g in grads[:3]:
        opt.step(theta_r, g)
        fresh.step(theta_f, g)
    np.testing.assert_array_equal(theta_r, theta_f)
    # Every other optimizer keeps it at 1 (nothing computed for them).
    adam = Adam()
    adam.step(np.zeros(2), np.ones(2))
    assert adam._config.mu_product == 1.0


def test_step_checks_n_weights():
    opt = AdamW()
    for bad in (-1, 4, 1.5, True, "2"):
        with pytest.raises(ValueError, match=re.escape(
                f"n_weights must be an integer in [0, 3] (the number of weights in params), "
                f"got {bad!r}")):
            opt.step(np.zeros(3), np.zeros(3), n_weights=bad)


def test_new_optimizer_defaults_and_repr():
    assert repr(AdamW()) == ("AdamW(learning_rate=0.001, beta_1=0.9, beta_2=0.999, "
                             "epsilon=1e-08, weight_decay=0.01)")
    assert repr(AdamW(amsgrad=True)).endswith("weight_decay=0.01, amsgrad=True)")
    assert repr(Adam(variant="paper", amsgrad=True)).endswith("variant='paper', amsgrad=True)")
    assert repr(NAdam()) == ("NAdam(learning_rate=0.002, beta_1=0.9, beta_2=0.999, "
                             "epsilon=1e-08, momentum_decay=0.004)")
    assert repr(RPROP()) == ("RPROP(learning_rate=0.01, etas=(0.5, 1.2), "
                             "step_sizes=(1e-06, 50.0))")
    assert AdamW().variant == "paper"


def test_rmsprop_and_adagrad_by_hand():
    theta = np.array([0.0])
    opt = RMSProp(learning_rate=0.1, rho=0.5, epsilon=1e-12)
    opt.step(theta, np.array([2.0]))       # v = 0.5 * 4 = 2, theta -= 0.1 * 2 / sqrt(2)
    opt.step(theta, np.array([2.0]))       # v = 1 + 2 = 3, theta -= 0.2 / sqrt(3)
    assert theta[0] == pytest.approx(-0.2 / np.sqrt(2) - 0.2 / np.sqrt(3), rel=1e-10)

    theta = np.array([0.0])
    opt = AdaGrad(learning_rate=0.1, epsilon=1e-12)
    opt.step(theta, np.array([3.0]))       # G = 9, theta -= 0.1
    opt.step(theta, np.array([4.0]))       # G = 25, theta -= 0.1 * 4 / 5
    assert theta[0] == pytest.approx(-0.18, rel=1e-10)


def test_optimizer_state_and_reset():
    net = Network([3, 2], random_state=0)
    opt = Adam()
    opt.step(net.params, np.ones(net.n_params))
    assert opt.state.shape == (2, net.n_params) and opt.t == 1
    other = Network([4, 2], random_state=0)
    with pytest.raises(ValueError, match=r"call reset\(\) before using it on another network"):
        opt.step(other.params, np.ones(other.n_params))
    opt.reset()
    assert opt.state is None and opt.t == 0
    opt.step(other.params, np.ones(other.n_params))
    assert opt.t == 1


def test_step_checks_arguments():
    opt = SGD()
    with pytest.raises(TypeError, match="params must be a writable, contiguous 1-D float32"):
        opt.step(np.zeros((2, 2)), np.zeros((2, 2)))
    with pytest.raises(TypeError, match="params must be a writable, contiguous 1-D float32"):
        opt.step([0.0, 1.0], [0.0, 1.0])
    with pytest.raises(ValueError, match=re.escape("grad has shape (3,), params (2,)")):
        opt.step(np.zeros(2), np.zeros(3))


def test_sgd_without_momentum_keeps_no_state():
    opt = SGD(learning_rate=0.1)
    opt.step(np.zeros(3), np.ones(3))
    assert opt.state.shape == (0, 3)


@pytest.mark.parametrize("dtype", DTYPES)
def test_optimizer_keeps_float32_state(dtype):
    opt = Adam()
    theta = np.ones(5, dtype=dtype)
    opt.step(theta, np.ones(5, dtype=np.float64))  # a float64 grad is cast
    assert theta.dtype == dtype and opt.state.dtype == dtype


@pytest.mark.parametrize("name, hyper", OPTIMIZER_CASES)
def test_pickled_optimizer_resumes_identically(name, hyper, rng):
    import pickle

    require_optimizer_reference(name, hyper)
    opt = OPTIMIZERS[name](**hyper)
    theta = rng.standard_normal(11)
    grads = rng.standard_normal((6, 11))
    for g in grads[:3]:
        opt.step(theta, g)
    copy, theta_copy = pickle.loads(pickle.dumps(opt)), theta.copy()
    assert repr(copy) == repr(opt)
    for g in grads[3:]:
        opt.step(theta, g)
        copy.step(theta_copy, g)
    np.testing.assert_array_equal(theta_copy, theta)
    assert copy.t == opt.t == 6


# ---------------------------------------------------------------------------
# PyTorch as an independent implementation
# ---------------------------------------------------------------------------

TORCH_CASES = [
    ("adam-paper", lambda: Adam(learning_rate=0.01, beta_1=0.8, beta_2=0.95, epsilon=1e-4,
                                variant="paper"),
     lambda torch, p: torch.optim.Adam([p], lr=0.01, betas=(0.8, 0.95), eps=1e-4)),
    ("rmsprop", lambda: RMSProp(learning_rate=0.01, rho=0.7, epsilon=1e-3),
     lambda torch, p: torch.optim.RMSprop([p], lr=0.01, alpha=0.7, eps=1e-3)),
    ("adagrad", lambda: AdaGrad(learning_rate=0.1, epsilon=1e-3),
     lambda torch, p: torch.optim.Adagrad([p], lr=0.1, eps=1e-3)),
    ("sgd-momentum", lambda: SGD(learning_rate=0.05, momentum=0.9),
     lambda torch, p: torch.optim.SGD([p], lr=0.05, momentum=0.9)),
    ("sgd-nesterov", lambda: SGD(learning_rate=0.05, momentum=0.9, nesterov=True),
     lambda torch, p: torch.optim.SGD([p], lr=0.05, momentum=0.9, nesterov=True)),
]


@pytest.mark.parametrize("name, make_ours, make_torch", TORCH_CASES,
                         ids=[c[0] for c in TORCH_CASES])
def test_against_torch(name, make_ours, make_torch, rng):
    torch = pytest.importorskip("torch")
    theta = rng.standard_normal(17)
    p = torch.nn.Parameter(torch.tensor(theta.copy(), dtype=torch.float64))
    topt = make_torch(torch, p)
    ours = make_ours()
    for _ in range(10):
        # Small gradients too, where the placement of epsilon matters.
        g = rng.standard_normal(17) * 10.0 ** rng.uniform(-5, 0, 17)
        p.grad = torch.tensor(g, dtype=torch.float64)
        topt.step()
        ours.step(theta, g)
    np.testing.assert_allclose(theta, p.detach().numpy(), rtol=1e-12, atol=1e-14)


def test_adam_sklearn_variant_differs_from_torch(rng):
    """The default (scikit-learn) variant is not PyTorch's: the check above can fail."""
    torch = pytest.importorskip("torch")
    theta = rng.standard_normal(5)
    p = torch.nn.Parameter(torch.tensor(theta.copy()))
    topt = torch.optim.Adam([p], lr=0.01, eps=1e-3)
    ours = Adam(learning_rate=0.01, epsilon=1e-3)
    for _ in range(3):
        g = rng.standard_normal(5) * 1e-3
        p.grad = torch.tensor(g)
        topt.step()
        ours.step(theta, g)
    assert not np.allclose(theta, p.detach().numpy(), rtol=1e-6, atol=0)


# ---------------------------------------------------------------------------
# Hyperparameter validation: ValueError naming the parameter and the bad value
# ---------------------------------------------------------------------------

BAD_HYPER = [
    (SGD, "learning_rate", 0.0, r"learning_rate must be in \(0\.0, inf\], got 0\.0"),
    (SGD, "learning_rate", -0.1, r"learning_rate must be in \(0\.0, inf\], got -0\.1"),
    (SGD, "learning_rate", float("nan"), r"learning_rate must be a finite real number, got nan"),
    (SGD, "learning_rate", float("inf"), r"learning_rate must be a finite real number, got inf"),
    (SGD, "learning_rate", "0.1", r"learning_rate must be a finite real number, got '0\.1'"),
    (SGD, "learning_rate", True, r"learning_rate must be a finite real number, got True"),
    (SGD, "momentum", -0.5, r"momentum must be in \[0\.0, 1\.0\], got -0\.5"),
    (SGD, "momentum", 1.5, r"momentum must be in \[0\.0, 1\.0\], got 1\.5"),
    (Adam, "learning_rate", -1, r"learning_rate must be in \(0\.0, inf\], got -1"),
    (Adam, "beta_1", 1.0, r"beta_1 must be in \[0\.0, 1\.0\), got 1\.0"),
    (Adam, "beta_1", -0.1, r"beta_1 must be in \[0\.0, 1\.0\), got -0\.1"),
    (Adam, "beta_2", 1.0, r"beta_2 must be in \[0\.0, 1\.0\), got 1\.0"),
    (Adam, "beta_2", float("nan"), r"beta_2 must be a finite real number, got nan"),
    (Adam, "epsilon", 0.0, r"epsilon must be in \(0\.0, inf\], got 0\.0"),
    (Adam, "variant", "pytorch",
     r"variant must be one of \('sklearn', 'paper'\), got 'pytorch'"),
    (RMSProp, "rho", 1.0, r"rho must be in \[0\.0, 1\.0\), got 1\.0"),
    (RMSProp, "rho", -1, r"rho must be in \[0\.0, 1\.0\), got -1"),
    (RMSProp, "epsilon", -1e-8, r"epsilon must be in \(0\.0, inf\], got -1e-08"),
    (RMSProp, "learning_rate", 0, r"learning_rate must be in \(0\.0, inf\], got 0"),
    (AdaGrad, "epsilon", 0, r"epsilon must be in \(0\.0, inf\], got 0"),
    (AdaGrad, "learning_rate", None, r"learning_rate must be a finite real number, got None"),
    (Adam, "amsgrad", "yes", r"amsgrad must be True or False, got 'yes'"),
    (AdamW, "weight_decay", -0.1, r"weight_decay must be in \[0\.0, inf\], got -0\.1"),
    (AdamW, "weight_decay", float("nan"), r"weight_decay must be a finite real number, got nan"),
    (AdamW, "beta_2", 1.5, r"beta_2 must be in \[0\.0, 1\.0\), got 1\.5"),
    (AdamW, "learning_rate", 0.0, r"learning_rate must be in \(0\.0, inf\], got 0\.0"),
    (NAdam, "momentum_decay", -4e-3, r"momentum_decay must be in \[0\.0, inf\], got -0\.004"),
    (NAdam, "beta_1", 1.0, r"beta_1 must be in \[0\.0, 1\.0\), got 1\.0"),
    (NAdam, "epsilon", 0.0, r"epsilon must be in \(0\.0, inf\], got 0\.0"),
    (RPROP, "etas", (1.5, 1.2),
     r"etas must satisfy 0 < etas\[0\] < 1 < etas\[1\], got \(1\.5, 1\.2\)"),
    (RPROP, "etas", (0.5, 1.0),
     r"etas must satisfy 0 < etas\[0\] < 1 < etas\[1\], got \(0\.5, 1\.0\)"),
    (RPROP, "etas", (0.0, 1.2),
     r"etas must satisfy 0 < etas\[0\] < 1 < etas\[1\], got \(0\.0, 1\.2\)"),
    (RPROP, "etas", 0.5, r"etas must be a pair of numbers, got 0\.5"),
    (RPROP, "etas", (0.5, 1.2, 2.0), r"etas must be a pair of numbers, got \(0\.5, 1\.2, 2\.0\)"),
    (RPROP, "etas", (0.5, "x"), r"etas\[1\] must be a finite real number, got 'x'"),
    (RPROP, "step_sizes", (1.0, 0.5),
     r"step_sizes must satisfy 0 <= step_sizes\[0\] <= step_sizes\[1\], got \(1\.0, 0\.5\)"),
    (RPROP, "step_sizes", (-1e-6, 50.0),
     r"step_sizes must satisfy 0 <= step_sizes\[0\] <= step_sizes\[1\], got \(-1e-06, 50\.0\)"),
    (RPROP, "step_sizes", (1e-6, float("inf")),
     r"step_sizes\[1\] must be a finite real number, got inf"),
    (RPROP, "learning_rate", -0.01, r"learning_rate must be in \(0\.0, inf\], got -0\.01"),
]


@pytest.mark.parametrize("cls, param, value, message", BAD_HYPER,
                         ids=[f"{c.__name__}-{p}-{v!r}" for c, p, v, _ in BAD_HYPER])
def test_invalid_hyperparameters(cls, param, value, message):
    with pytest.raises(ValueError, match=message):
        cls(**{param: value})


def test_amsgrad_needs_the_paper_variant():
    with pytest.raises(ValueError, match=re.escape(
            "amsgrad=True needs variant='paper' (torch.optim.Adam's form), got "
            "variant='sklearn': scikit-learn's variant has no AMSGrad")):
        Adam(amsgrad=True)


def test_nesterov_needs_momentum():
    with pytest.raises(ValueError, match="nesterov=True needs momentum > 0"):
        SGD(momentum=0.0, nesterov=True)


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_every_optimizer_validates_learning_rate(name):
    cls = OPTIMIZERS[name]
    with pytest.raises(ValueError, match=r"learning_rate must be in \(0\.0, inf\], got -3"):
        cls(learning_rate=-3)
    opt = cls(learning_rate=0.5)
    assert opt.learning_rate == 0.5
    with pytest.raises(ValueError, match=r"learning_rate must be in \[0\.0, inf\], got -1"):
        opt.learning_rate = -1
    opt.learning_rate = 0          # where an annealing schedule ends
    assert opt.learning_rate == 0.0
    opt.learning_rate = 0.25
    assert opt.learning_rate == 0.25
    assert repr(opt).startswith(cls.__name__ + "(learning_rate=0.25")


def test_learning_rate_change_takes_effect_in_training():
    X = np.ones((4, 1))
    Y = np.zeros((4, 1))
    net = Network([1, 1], output="identity", random_state=0)
    net.params[:] = [1.0, 0.0]
    opt = SGD(learning_rate=0.1)
    opt.learning_rate = 0.5
    train(net, X, Y, optimizer=opt, epochs=1, batch_size=4, shuffle=False)
    # L = 0.5 * mean((w + b)^2), dL/dw = dL/db = 1, one step at lr 0.5.
    np.testing.assert_allclose(net.params, [0.5, -0.5], rtol=1e-15)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("amsgrad", [False, True])
def test_adamw_decays_weights_only_against_reference(amsgrad, dtype, rng):
    """AdamW with a weight block and a bias block against reference.adamw_step."""
    hyper = dict(learning_rate=0.05, weight_decay=0.3, amsgrad=amsgrad)
    opt = AdamW(**hyper)
    theta = rng.standard_normal(40).astype(dtype)
    expected, state = theta.astype(np.float64), {}
    for step in range(N_STEPS):
        g = (rng.standard_normal(40) * 10.0 ** rng.uniform(-3, 1, 40)).astype(dtype)
        g[step] = 0.0
        opt.step(theta, g, n_weights=25)
        expected = ref.adamw_step(expected, g, state, n_weights=25, **hyper)
        assert_close(theta, expected, dtype, scale=1.0, err_msg=f"step {step + 1}")


def test_docstring_examples():
    """The Examples sections of bpcore.optimizers run as written."""
    import doctest

    import bpcore.optimizers

    result = doctest.testmod(bpcore.optimizers, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted >= 10 and result.failed == 0
