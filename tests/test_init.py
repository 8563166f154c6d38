"""Initialization schemes (TOOLBOX.md section 1, ``bpcore.initializers``).

Distribution checks on a 200 x 300 layer (N = 60000 draws): uniform draws
stay within their bound and fill it; normal draws have mean within
5 sigma / sqrt(N) of 0 and a variance within 5 standard errors
(sqrt(2 / N) relative) of the scheme's; both pass a Kolmogorov-Smirnov test
against the exact distribution (p > 1e-4, fixed seeds). scikit-learn's own
draw is checked against MLPClassifier/MLPRegressor in tests/test_network.py
(test_init_equals_sklearn, test_init_is_sklearns_glorot_uniform).
"""
import numpy as np
import pytest
from scipy import stats

from bpcore import Network
from bpcore.initializers import INITIALIZERS

FI, FO = 200, 300
N = FI * FO

UNIFORM = {
    "glorot_uniform": np.sqrt(6.0 / (FI + FO)),
    "he_uniform": np.sqrt(6.0 / FI),
    "lecun_uniform": np.sqrt(3.0 / FI),
}
NORMAL = {                                  # variances
    "glorot_normal": 2.0 / (FI + FO),
    "he_normal": 2.0 / FI,
    "lecun_normal": 1.0 / FI,
}


def test_every_scheme_is_tested():
    assert set(INITIALIZERS) == set(UNIFORM) | set(NORMAL) | {"sklearn"}


@pytest.mark.parametrize("name", sorted(UNIFORM))
def test_uniform_schemes(name):
    net = Network([FI, FO, 1], init=name, random_state=0)
    W, bound = net.coefs[0].ravel(), UNIFORM[name]
    assert np.abs(W).max() <= bound
    assert np.abs(W).max() > bound * (1 - 1e-3)       # the whole range is used
    assert stats.kstest(W, stats.uniform(-bound, 2 * bound).cdf).pvalue > 1e-4
    # Var U(-b, b) = b^2 / 3; the sample variance's relative standard error is
    # sqrt(Var(X^2)) / (E X^2 sqrt(N)) = sqrt(4/5) / sqrt(N) for a uniform.
    assert abs(W.var() / (bound ** 2 / 3) - 1) <= 5 * np.sqrt(0.8 / N)
    for b in net.intercepts:
        np.testing.assert_array_equal(b, 0.0)


@pytest.mark.parametrize("name", sorted(NORMAL))
def test_normal_schemes(name):
    net = Network([FI, FO, 1], init=name, random_state=0)
    W, var = net.coefs[0].ravel(), NORMAL[name]
    sigma = np.sqrt(var)
    assert abs(W.mean()) <= 5 * sigma / np.sqrt(N)
    assert abs(W.var() / var - 1) <= 5 * np.sqrt(2.0 / N)
    assert stats.kstest(W, stats.norm(0, sigma).cdf).pvalue > 1e-4
    # Plain, not truncated: draws beyond 2 sigma (expected 4.6% of N).
    assert np.mean(np.abs(W) > 2 * sigma) > 0.04
    for b in net.intercepts:
        np.testing.assert_array_equal(b, 0.0)


@pytest.mark.parametrize("name", sorted(INITIALIZERS))
def test_seeding(name):
    a = Network([5, 7, 3], init=name, random_state=1).params
    b = Network([5, 7, 3], init=name, random_state=1).params
    c = Network([5, 7, 3], init=name, random_state=2).params
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)
    rs = np.random.RandomState(1)
    np.testing.assert_array_equal(Network([5, 7, 3], init=name, random_state=rs).params, a)
    assert not np.array_equal(Network([5, 7, 3], init=name, random_state=rs).params, a)
    # float32 draws in float64, then casts.
    a32 = Network([5, 7, 3], init=name, random_state=1, dtype="float32").params
    np.testing.assert_array_equal(a32, a.astype(np.float32))


def test_per_layer_list_draws_layer_by_layer_from_one_random_state():
    init = ["he_normal", "sklearn", "lecun_uniform"]
    net = Network([4, 6, 5, 2], activation="tanh", init=init, random_state=3)
    rs = np.random.RandomState(3)
    W0 = rs.normal(0.0, np.sqrt(2.0 / 4), (4, 6))
    bound = np.sqrt(6.0 / (6 + 5))                        # scikit-learn's, tanh
    W1 = rs.uniform(-bound, bound, (6, 5))
    b1 = rs.uniform(-bound, bound, 5)
    W2 = rs.uniform(-np.sqrt(3.0 / 5), np.sqrt(3.0 / 5), (5, 2))
    for ours, theirs in zip(net.coefs + net.intercepts,
                            [W0, W1, W2, np.zeros(6), b1, np.zeros(2)]):
        np.testing.assert_array_equal(ours, theirs)


@pytest.mark.parametrize("name", sorted(INITIALIZERS))
def test_batch_norm_state_starts_at_identity(name):
    net = Network([4, 6, 5, 2], init=name, batch_norm=[True, False], random_state=0)
    assert net.bn_scales[1] is None and net.bn_means[1] is None and net.bn_scales[2] is None
    np.testing.assert_array_equal(net.bn_scales[0], 1.0)
    np.testing.assert_array_equal(net.intercepts[0], 0.0)     # BN's shift
    np.testing.assert_array_equal(net.bn_means[0], 0.0)
    np.testing.assert_array_equal(net.bn_vars[0], 1.0)
    # The weights are the scheme's draw whatever batch norm does with the bias.
    plain = Network([4, 6, 5, 2], init=name, random_state=0)
    for W, W0 in zip(net.coefs, plain.coefs):
        np.testing.assert_array_equal(W, W0)
    # init_params resets the running statistics too.
    net.bn_means[0][...] = 3.0
    net.bn_vars[0][...] = 5.0
    net.bn_scales[0][...] = 2.0
    net.init_params(0)
    np.testing.assert_array_equal(net.bn_means[0], 0.0)
    np.testing.assert_array_equal(net.bn_vars[0], 1.0)
    np.testing.assert_array_equal(net.bn_scales[0], 1.0)
    np.testing.assert_array_equal(net.params, Network([4, 6, 5, 2], init=name,
                                                      batch_norm=[True, False],
                                                      random_state=0).params)
