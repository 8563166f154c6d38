"""The toolbox optimizers (AdamW, Adam with AMSGrad, NAdam, Rprop) against
``torch.optim`` itself, step for step: 100 steps on random shapes, with exact
zeros in the gradients (single entries, entries that are always zero, and
whole steps), float64 at 1e-12 and float32 at 1e-5, relative to
max(|theta|, 1). AdamW's decay acts on the weights only: torch gets the
weights and the biases as two parameter groups, the second without decay."""
import numpy as np
import pytest

import bpcore
from bpcore import RPROP, Adam, AdamW, NAdam, Network, train

torch = pytest.importorskip("torch")

N_STEPS = 100
RTOL = {np.float64: 1e-12, np.float32: 1e-5}
TORCH_DTYPE = {np.float64: torch.float64, np.float32: torch.float32}


def _groups(weights, biases, weight_decay=None):
    if weight_decay is None:
        return [{"params": [weights]}, {"params": [biases]}]
    return [{"params": [weights], "weight_decay": weight_decay},
            {"params": [biases], "weight_decay": 0.0}]


# name -> (ours, torch's over the (weights, biases) tensors); every torch
# optimizer on its single-tensor path (foreach=False), torch's default on CPU.
CASES = {
    "adamw-defaults": (
        lambda: AdamW(),
        lambda w, b: torch.optim.AdamW(_groups(w, b, 1e-2), foreach=False)),
    "adamw": (
        lambda: AdamW(learning_rate=0.02, beta_1=0.8, beta_2=0.95, epsilon=1e-6,
                      weight_decay=0.5),
        lambda w, b: torch.optim.AdamW(_groups(w, b, 0.5), lr=0.02, betas=(0.8, 0.95),
                                       eps=1e-6, foreach=False)),
    "adamw-amsgrad": (
        lambda: AdamW(learning_rate=0.01, weight_decay=0.1, amsgrad=True),
        lambda w, b: torch.optim.AdamW(_groups(w, b, 0.1), lr=0.01, amsgrad=True,
                                       foreach=False)),
    "adam-amsgrad": (
        lambda: Adam(learning_rate=0.01, beta_1=0.8, beta_2=0.95, epsilon=1e-4,
                     variant="paper", amsgrad=True),
        lambda w, b: torch.optim.Adam(_groups(w, b), lr=0.01, betas=(0.8, 0.95), eps=1e-4,
                                      amsgrad=True, foreach=False)),
    "nadam-defaults": (
        lambda: NAdam(),
        lambda w, b: torch.optim.NAdam(_groups(w, b), foreach=False)),
    "nadam": (
        lambda: NAdam(learning_rate=0.02, beta_1=0.8, beta_2=0.95, epsilon=1e-4,
                      momentum_decay=0.1),
        lambda w, b: torch.optim.NAdam(_groups(w, b), lr=0.02, betas=(0.8, 0.95), eps=1e-4,
                                       momentum_decay=0.1, foreach=False)),
    "rprop-defaults": (
        lambda: RPROP(),
        lambda w, b: torch.optim.Rprop(_groups(w, b), foreach=False)),
    "rprop": (
        lambda: RPROP(learning_rate=0.05, etas=(0.3, 1.5), step_sizes=(1e-3, 0.1)),
        lambda w, b: torch.optim.Rprop(_groups(w, b), lr=0.05, etas=(0.3, 1.5),
                                       step_sizes=(1e-3, 0.1), foreach=False)),
}


@pytest.fixture
def torch_default_dtype(request):
    """torch keeps scalar state (NAdam's mu_product, the step count) in its
    default dtype: float64 for the float64 runs, as bpcore keeps them."""
    old = torch.get_default_dtype()
    torch.set_default_dtype(TORCH_DTYPE[request.param])
    yield request.param
    torch.set_default_dtype(old)


def gradients(rng, n, n_steps, dtype):
    """Gradients of varied size and sign with exact zeros: 20% of the entries
    at random, the first two entries always, and all of steps 8, 31 and 32."""
    g = rng.standard_normal((n_steps, n)) * 10.0 ** rng.uniform(-5, 1, (n_steps, n))
    g[rng.random((n_steps, n)) < 0.2] = 0.0
    g[:, :2] = 0.0
    g[[7, 30, 31]] = 0.0
    return g.astype(dtype)


def trajectories(name, dtype, seed, n_steps=N_STEPS):
    """(ours, torch's) parameters after n_steps on one random problem."""
    make_ours, make_torch = CASES[name]
    rng = np.random.default_rng(seed)
    n = int(rng.integers(3, 400))
    n_weights = int(rng.integers(1, n))
    theta = rng.standard_normal(n).astype(dtype)
    w = torch.nn.Parameter(torch.tensor(theta[:n_weights].copy()))
    b = torch.nn.Parameter(torch.tensor(theta[n_weights:].copy()))
    theirs, ours = make_torch(w, b), make_ours()
    for g in gradients(rng, n, n_steps, dtype):
        w.grad = torch.tensor(g[:n_weights].copy())
        b.grad = torch.tensor(g[n_weights:].copy())
        theirs.step()
        ours.step(theta, g, n_weights=n_weights)
    assert ours.t == n_steps
    expected = np.concatenate([w.detach().numpy(), b.detach().numpy()])
    return theta, expected


def deviation(actual, expected):
    """max |actual - expected| / max(|expected|, 1)."""
    expected = expected.astype(np.float64)
    return float(np.max(np.abs(actual - expected) / np.maximum(np.abs(expected), 1.0)))


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("torch_default_dtype", [np.float64, np.float32], indirect=True,
                         ids=["float64", "float32"])
@pytest.mark.parametrize("name", sorted(CASES))
def test_against_torch_100_steps(name, torch_default_dtype, seed):
    dtype = torch_default_dtype
    actual, expected = trajectories(name, dtype, seed)
    assert actual.dtype == expected.dtype == dtype
    dev = deviation(actual, expected)
    assert dev <= RTOL[dtype], f"{name} {dtype.__name__}: deviation {dev:.3g}"


def test_adamw_weight_decay_reaches_only_the_weights():
    """The two-group comparison above can fail: decaying the biases too (all
    parameters weights) leaves torch's trajectory."""
    rng = np.random.default_rng(0)
    theta = rng.standard_normal(10)
    both, weights_only = theta.copy(), theta.copy()
    opt_both, opt_w = AdamW(learning_rate=0.1, weight_decay=0.5), AdamW(learning_rate=0.1,
                                                                       weight_decay=0.5)
    g = rng.standard_normal(10)
    opt_both.step(both, g)
    opt_w.step(weights_only, g, n_weights=6)
    np.testing.assert_array_equal(both[:6], weights_only[:6])
    # Biases: Adam's step alone, which AdamW with no weights at all also gives.
    plain = theta.copy()
    AdamW(learning_rate=0.1, weight_decay=0.5).step(plain, g, n_weights=0)
    np.testing.assert_array_equal(weights_only[6:], plain[6:])
    assert np.all(np.abs(both[6:] - weights_only[6:]) > 1e-3)


# ---------------------------------------------------------------------------
# Through train(): the epoch kernel's update (weights/biases split by the
# layout, threads, several epochs) against torch fed with loss_and_grad.
# ---------------------------------------------------------------------------

TRAIN_CASES = ["adamw", "adamw-amsgrad", "adam-amsgrad", "nadam", "rprop"]


@pytest.mark.parametrize("name", TRAIN_CASES)
def test_train_full_batch_matches_torch(name):
    """Full-batch train() with an L2 term, 12 epochs, one hidden layer of 50
    units (large enough for the unit split on 2 threads, which AMSGrad's third
    state buffer turns off), against torch stepping on loss_and_grad."""
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        rng = np.random.default_rng(1)
        X, Y = rng.standard_normal((100, 20)), rng.standard_normal((100, 4))
        kw = dict(activation="tanh", output="identity", loss="squared_error", random_state=0)
        net, ref = Network([20, 50, 4], **kw), Network([20, 50, 4], **kw)
        n_weights = sum(c.size for c in ref.coefs)
        w = torch.nn.Parameter(torch.tensor(ref.params[:n_weights].copy()))
        b = torch.nn.Parameter(torch.tensor(ref.params[n_weights:].copy()))
        make_ours, make_torch = CASES[name]
        theirs = make_torch(w, b)
        for _ in range(12):
            _, g = ref.loss_and_grad(X, Y, alpha=1e-3)
            w.grad, b.grad = torch.tensor(g[:n_weights]), torch.tensor(g[n_weights:])
            theirs.step()
            ref.params[:n_weights], ref.params[n_weights:] = w.detach(), b.detach()
        ours = make_ours()
        train(net, X, Y, optimizer=ours, epochs=7, batch_size=100, shuffle=False, alpha=1e-3)
        train(net, X, Y, optimizer=ours, epochs=5, batch_size=100, shuffle=False, alpha=1e-3)
    finally:
        torch.set_default_dtype(old)
    assert ours.t == 12
    assert deviation(net.params, ref.params) <= 1e-12


def test_unit_split_refuses_three_state_buffers():
    net = Network([5, 8, 2], random_state=0)
    X, Y = np.ones((4, 5)), np.ones((4, 2))
    opt = Adam(variant="paper", amsgrad=True)
    batches = bpcore._kernels.Minibatches(
        X, Y, None, None, 4, 0.0, np.zeros(net.layout.units_workspace_size(4, 2)),
        np.zeros(1))
    with pytest.raises(ValueError, match="by_units takes optimizers with at most two "
                                         "state buffers"):
        bpcore._kernels.train_epoch(net.layout, opt._config, batches, net.params,
                                    np.zeros((2, net.n_params)), opt.state_for(net.params),
                                    2, True)
