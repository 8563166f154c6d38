"""Network: layout, forward and loss_and_grad against the reference, dtypes,
validation, pickling, thread safety and scikit-learn's initialization."""
import pickle
import re
import threading
import warnings

import numpy as np
import pytest
import scipy.sparse as sp

import reference as ref
from bpcore import Adam, Network, train
from bpcore.activations import HIDDEN_ACTIVATIONS, LOSSES, OUTPUT_ACTIVATIONS
from conftest import DTYPES, assert_close, make_targets

# ---------------------------------------------------------------------------
# Layout: one flat buffer, per-layer views
# ---------------------------------------------------------------------------


def test_params_layout_weights_first_then_biases():
    net = Network([3, 4, 2], random_state=0)
    assert net.n_params == 3 * 4 + 4 * 2 + 4 + 2
    assert [c.shape for c in net.coefs] == [(3, 4), (4, 2)]
    assert [b.shape for b in net.intercepts] == [(4,), (2,)]
    np.testing.assert_array_equal(net.params, ref.flatten(net.coefs, net.intercepts))
    # Views, not copies: writing a layer writes the flat buffer and back.
    net.coefs[1][2, 1] = 42.0
    assert net.params[12 + 2 * 2 + 1] == 42.0
    net.params[12 + 8] = -7.0
    assert net.intercepts[0][0] == -7.0
    for view in net.coefs + net.intercepts:
        assert np.shares_memory(view, net.params)


# ---------------------------------------------------------------------------
# forward and loss_and_grad against the reference
# ---------------------------------------------------------------------------

NETWORKS = [
    # layer sizes, activation, output, loss
    ([6, 3], "relu", "identity", "squared_error"),
    ([5, 8, 4], "tanh", "softmax", "log_loss"),
    ([5, 8, 7, 3], "relu", "logistic", "log_loss"),
    ([4, 6, 2], "elu", "exp", "poisson"),
    ([4, 5, 5, 5, 2], "leaky_relu", "tanh", "squared_error"),
    ([4, 6, 3], "logistic", "softmax", "squared_error"),
    ([3, 5, 4, 2], ["tanh", "relu"], "identity", "squared_error"),
]


def _hidden_list(activation, sizes):
    return [activation] * (len(sizes) - 2) if isinstance(activation, str) else list(activation)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("sizes, activation, output, loss", NETWORKS)
def test_forward(sizes, activation, output, loss, dtype, rng):
    net = Network(sizes, activation=activation, output=output, loss=loss, dtype=dtype,
                  random_state=3)
    X = rng.standard_normal((30, sizes[0]))
    out = net.forward(X)
    assert out.dtype == dtype and out.shape == (30, sizes[-1])
    _, acts = ref.network_forward(net.coefs, net.intercepts,
                                  _hidden_list(activation, sizes) + [output], X.astype(dtype))
    assert_close(out, acts[-1], dtype, scale=np.abs(acts[-1]) + 1e-2)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("alpha", [0.0, 0.01])
@pytest.mark.parametrize("sizes, activation, output, loss", NETWORKS)
def test_loss_and_grad(sizes, activation, output, loss, alpha, weighted, dtype, rng):
    net = Network(sizes, activation=activation, output=output, loss=loss, dtype=dtype,
                  random_state=3)
    X = rng.standard_normal((30, sizes[0])).astype(dtype)
    Y = make_targets(loss, output, 30, sizes[-1], rng).astype(dtype)
    sw = rng.uniform(0.1, 2.0, 30).astype(dtype) if weighted else None
    value, grad = net.loss_and_grad(X, Y, alpha=alpha, sample_weight=sw)
    assert isinstance(value, float)
    assert grad.dtype == dtype and grad.shape == net.params.shape
    value_ref, gc, gb = ref.network_loss_grad(net.coefs, net.intercepts,
                                              _hidden_list(activation, sizes) + [output],
                                              loss, X, Y, alpha=alpha, sample_weight=sw,
                                              dtype=dtype)
    assert_close(value, value_ref, dtype)
    g_ref = ref.flatten(gc, gb)
    assert_close(grad, g_ref, dtype, scale=np.abs(g_ref).max())


def test_loss_and_grad_accepts_1d_targets_for_one_output():
    net = Network([3, 1], random_state=0)
    X = np.arange(12.0).reshape(4, 3)
    y = np.array([1.0, 2.0, 3.0, 4.0])
    assert net.loss_and_grad(X, y)[0] == net.loss_and_grad(X, y[:, None])[0]


def test_sample_weight_equals_repetition(rng):
    """Integer sample weights act like repeated rows (the L2 term included)."""
    net = Network([3, 4, 2], activation="tanh", output="softmax", loss="log_loss",
                  random_state=0)
    X = rng.standard_normal((6, 3))
    Y = np.eye(2)[[0, 1, 1, 0, 1, 0]]
    w = np.array([1, 3, 2, 1, 1, 2])
    lw, gw = net.loss_and_grad(X, Y, alpha=0.1, sample_weight=w)
    lr, gr = net.loss_and_grad(np.repeat(X, w, axis=0), np.repeat(Y, w, axis=0), alpha=0.1)
    assert lw == pytest.approx(lr, rel=1e-13)
    np.testing.assert_allclose(gw, gr, rtol=1e-12, atol=1e-15)


def test_sklearn_gradient_convention(rng):
    """After _use_sklearn_gradient, squared error's gradient sums over outputs
    (scikit-learn's), while the reported loss stays 0.5 * mean over outputs."""
    net = Network([3, 4, 5], activation="tanh", random_state=0)
    X, Y = rng.standard_normal((8, 3)), rng.standard_normal((8, 5))
    loss, grad = net.loss_and_grad(X, Y, alpha=0.0)
    net._use_sklearn_gradient()
    loss_sk, grad_sk = net.loss_and_grad(X, Y, alpha=0.0)
    assert loss_sk == loss
    np.testing.assert_allclose(grad_sk, 5 * grad, rtol=1e-13, atol=1e-16)
    # ... and survives pickling.
    again = pickle.loads(pickle.dumps(net))
    np.testing.assert_array_equal(again.loss_and_grad(X, Y)[1], grad_sk)


# ---------------------------------------------------------------------------
# dtypes
# ---------------------------------------------------------------------------


def test_float32_network_stays_float32(rng):
    net = Network([4, 6, 3], activation="tanh", output="softmax", loss="log_loss",
                  dtype="float32", random_state=0)
    assert net.dtype == np.float32 and net.params.dtype == np.float32
    assert all(c.dtype == np.float32 for c in net.coefs + net.intercepts)
    X = rng.standard_normal((20, 4))              # float64 input
    Y = np.eye(3)[rng.integers(0, 3, 20)]
    assert net.forward(X).dtype == np.float32
    assert net.loss_and_grad(X, Y)[1].dtype == np.float32
    opt = Adam(learning_rate=0.01)
    train(net, X, Y, optimizer=opt, epochs=2, batch_size=8, random_state=0)
    assert net.params.dtype == np.float32 and opt.state.dtype == np.float32
    assert all(np.shares_memory(v, net.params) for v in net.coefs + net.intercepts)
    assert pickle.loads(pickle.dumps(net)).params.dtype == np.float32


@pytest.mark.parametrize("dtype", [np.float32, "float32", np.dtype("float32")])
def test_dtype_spellings(dtype):
    assert Network([2, 1], dtype=dtype).params.dtype == np.float32


def test_float32_matches_float64(rng):
    net64 = Network([5, 7, 3], activation="tanh", output="softmax", loss="log_loss",
                    random_state=0)
    net32 = Network([5, 7, 3], activation="tanh", output="softmax", loss="log_loss",
                    dtype="float32", random_state=0)
    # Same draws, cast to float32.
    np.testing.assert_array_equal(net32.params, net64.params.astype(np.float32))
    X = rng.standard_normal((10, 5))
    np.testing.assert_allclose(net32.forward(X), net64.forward(X), rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------------------
# Per-layer activations
# ---------------------------------------------------------------------------


def test_per_layer_activation_list(rng):
    acts = ["tanh", "relu", "logistic"]
    net = Network([4, 5, 6, 3, 2], activation=acts, output="identity", random_state=1)
    X = rng.standard_normal((7, 4))
    _, a = ref.network_forward(net.coefs, net.intercepts, acts + ["identity"], X)
    np.testing.assert_allclose(net.forward(X), a[-1], rtol=1e-12, atol=1e-14)
    # It differs from using any single one of them throughout.
    for single in acts:
        other = Network([4, 5, 6, 3, 2], activation=single, random_state=1)
        other.params[:] = net.params
        assert not np.allclose(other.forward(X), a[-1])


def test_empty_activation_list_without_hidden_layers():
    net = Network([3, 2], activation=[], random_state=0)
    np.testing.assert_array_equal(net.params, Network([3, 2], random_state=0).params)


def test_per_layer_activation_list_length_is_checked():
    with pytest.raises(ValueError, match="activation lists 1 names but the network has 2 hidden"):
        Network([3, 4, 4, 2], activation=["tanh"])
    with pytest.raises(ValueError, match="unknown hidden activation 'softmax'"):
        Network([3, 4, 4, 2], activation=["tanh", "softmax"])


# ---------------------------------------------------------------------------
# Initialization: scikit-learn's draws
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("activation", sorted(HIDDEN_ACTIVATIONS))
@pytest.mark.parametrize("sizes", [[5, 3], [8, 6, 4], [3, 7, 5, 2]])
def test_init_is_sklearns_glorot_uniform(sizes, activation):
    net = Network(sizes, activation=activation, random_state=np.random.RandomState(0))
    coefs, inter = ref.glorot_init(sizes, activation, np.random.RandomState(0))
    np.testing.assert_array_equal(net.params, ref.flatten(coefs, inter))
    # An int seed is the same as RandomState(seed); the same seed, the same net.
    np.testing.assert_array_equal(Network(sizes, activation=activation, random_state=0).params,
                                  net.params)


def test_init_consumes_the_shared_random_state():
    rs = np.random.RandomState(0)
    a = Network([3, 4, 2], random_state=rs).params.copy()
    b = Network([3, 4, 2], random_state=rs).params.copy()
    assert not np.array_equal(a, b)
    rs2 = np.random.RandomState(0)
    ref.glorot_init([3, 4, 2], "relu", rs2)
    np.testing.assert_array_equal(b, ref.flatten(*ref.glorot_init([3, 4, 2], "relu", rs2)))


def _sklearn_initial_weights(estimator, X, y):
    """The weights scikit-learn initializes, captured right after _initialize."""
    captured = {}
    cls = type(estimator)

    class Capture(cls):
        def _initialize(self, y, layer_units, dtype):
            super()._initialize(y, layer_units, dtype)
            captured["coefs"] = [c.copy() for c in self.coefs_]
            captured["intercepts"] = [b.copy() for b in self.intercepts_]

    Capture.__name__ = cls.__name__
    capture = Capture(**estimator.get_params())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ConvergenceWarning after max_iter=1
        capture.fit(X, y)
    return captured["coefs"], captured["intercepts"]


@pytest.mark.parametrize("activation", ["relu", "logistic", "tanh"])
@pytest.mark.parametrize("kind", ["classifier", "regressor"])
def test_init_equals_sklearn(kind, activation):
    from sklearn.neural_network import MLPClassifier, MLPRegressor

    rng = np.random.default_rng(0)
    X = rng.standard_normal((40, 6))
    if kind == "classifier":
        y = rng.integers(0, 3, 40)
        est = MLPClassifier(hidden_layer_sizes=(9, 5), activation=activation, max_iter=1,
                            random_state=0)
        n_out, output, loss = 3, "softmax", "log_loss"
    else:
        y = rng.standard_normal((40, 2))
        est = MLPRegressor(hidden_layer_sizes=(9, 5), activation=activation, max_iter=1,
                           random_state=0)
        n_out, output, loss = 2, "identity", "squared_error"
    coefs, inter = _sklearn_initial_weights(est, X, y)
    net = Network([6, 9, 5, n_out], activation=activation, output=output, loss=loss,
                  random_state=np.random.RandomState(0))
    for ours, theirs in zip(net.coefs + net.intercepts, coefs + inter):
        np.testing.assert_array_equal(ours, theirs)


# ---------------------------------------------------------------------------
# Pickle
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
def test_pickle_round_trip(dtype, rng):
    net = Network([4, 5, 3], activation=["elu"], output="softmax", loss="log_loss",
                  dtype=dtype, random_state=0)
    X = rng.standard_normal((9, 4))
    Y = np.eye(3)[rng.integers(0, 3, 9)]
    train(net, X, Y, optimizer=Adam(0.01), epochs=2, batch_size=4, random_state=0)
    again = pickle.loads(pickle.dumps(net))
    assert again is not net and repr(again) == repr(net)
    assert again.layer_sizes == net.layer_sizes and again.dtype == net.dtype
    np.testing.assert_array_equal(again.params, net.params)
    np.testing.assert_array_equal(again.forward(X), net.forward(X))
    assert again.loss_and_grad(X, Y, alpha=0.1)[0] == net.loss_and_grad(X, Y, alpha=0.1)[0]
    # The copy's views point into its own buffer.
    assert not np.shares_memory(again.params, net.params)
    again.coefs[0][0, 0] += 1.0
    assert again.params[0] == net.params[0] + 1.0
    # ... and it trains.
    train(again, X, Y, optimizer=Adam(0.01), epochs=1, batch_size=4, random_state=0)
    assert np.isfinite(again.params).all()


# ---------------------------------------------------------------------------
# Validation of Network arguments
# ---------------------------------------------------------------------------

HIDDEN_CHOICES = ", ".join(repr(n) for n in HIDDEN_ACTIVATIONS)
OUTPUT_CHOICES = ", ".join(repr(n) for n in OUTPUT_ACTIVATIONS)
LOSS_CHOICES = ", ".join(repr(n) for n in LOSSES)

BAD_NETWORK_ARGS = [
    (dict(layer_sizes=[3, 4, 2], activation="sigmoid"), ValueError,
     "unknown hidden activation 'sigmoid'; choose one of " + HIDDEN_CHOICES),
    (dict(layer_sizes=[3, 2], activation="swish"), ValueError,
     "unknown hidden activation 'swish'; choose one of " + HIDDEN_CHOICES),
    (dict(layer_sizes=[3, 4, 2], activation="softmax"), ValueError,
     "unknown hidden activation 'softmax'; choose one of " + HIDDEN_CHOICES),
    (dict(layer_sizes=[3, 2], output="sigmoid"), ValueError,
     "unknown output activation 'sigmoid'; choose one of " + OUTPUT_CHOICES),
    (dict(layer_sizes=[3, 2], loss="hinge"), ValueError,
     "unknown loss 'hinge'; choose one of " + LOSS_CHOICES),
    (dict(layer_sizes=[3, 2], loss="log_loss", output="identity"), ValueError,
     "loss 'log_loss' needs the output activation to be one of 'softmax', 'logistic', "
     "got 'identity'"),
    (dict(layer_sizes=[3, 2], loss="poisson", output="softmax"), ValueError,
     "loss 'poisson' needs the output activation to be one of 'exp', got 'softmax'"),
    (dict(layer_sizes=[3]), ValueError,
     "layer_sizes needs at least an input and an output size, got [3]"),
    (dict(layer_sizes=[3, 0, 2]), ValueError, "every layer size must be >= 1, got [3, 0, 2]"),
    (dict(layer_sizes=[3, -4, 2]), ValueError, "every layer size must be >= 1, got [3, -4, 2]"),
    (dict(layer_sizes=[3, 2.5]), TypeError, "layer_sizes must be integers, got [3, 2.5]"),
    (dict(layer_sizes=[3, "a"]), TypeError,
     "layer_sizes must be a sequence of integers, got [3, 'a']"),
    (dict(layer_sizes=5), TypeError, "layer_sizes must be a sequence of integers, got 5"),
    (dict(layer_sizes=[3, 2], dtype="float16"), ValueError,
     "dtype must be 'float32' or 'float64', got 'float16'"),
    (dict(layer_sizes=[3, 2], dtype=np.int64), ValueError,
     "dtype must be 'float32' or 'float64', got <class 'numpy.int64'>"),
    (dict(layer_sizes=[3, 2], dtype="double precision"), ValueError,
     "dtype must be 'float32' or 'float64', got 'double precision'"),
]


@pytest.mark.parametrize("kwargs, error, message", BAD_NETWORK_ARGS,
                         ids=[m.split(";")[0][:40] for _, _, m in BAD_NETWORK_ARGS])
def test_bad_network_arguments(kwargs, error, message):
    with pytest.raises(error, match=re.escape(message)):
        Network(**kwargs)


@pytest.mark.parametrize("loss", sorted(LOSSES))
def test_every_allowed_loss_output_pair_builds(loss):
    outputs = LOSSES[loss] or OUTPUT_ACTIVATIONS
    for output in outputs:
        net = Network([3, 4, 2], loss=loss, output=output, random_state=0)
        assert np.isfinite(net.forward(np.ones((2, 3)))).all()


# ---------------------------------------------------------------------------
# Validation of data
# ---------------------------------------------------------------------------


@pytest.fixture
def small_net():
    return Network([3, 4, 2], activation="tanh", random_state=0)


@pytest.mark.parametrize("bad, where", [(np.nan, "(1, 2)"), (np.inf, "(1, 2)"),
                                        (-np.inf, "(1, 2)")])
def test_nonfinite_inputs(small_net, bad, where):
    X = np.ones((4, 3))
    X[1, 2] = bad
    Y = np.zeros((4, 2))
    msg = re.escape(f"X contains NaN or infinity (first at index {where}); "
                    "remove or impute those values first")
    with pytest.raises(ValueError, match=msg):
        small_net.forward(X)
    with pytest.raises(ValueError, match=msg):
        small_net.loss_and_grad(X, Y)
    Y[1, 2 - 1] = bad
    with pytest.raises(ValueError, match=re.escape("Y contains NaN or infinity (first at index (1, 1))")):
        small_net.loss_and_grad(np.ones((4, 3)), Y)


@pytest.mark.filterwarnings("error")
def test_float32_overflow_is_reported():
    net32 = Network([3, 2], dtype="float32", random_state=0)
    X = np.full((2, 3), 1e300)   # finite in float64, inf once cast to float32
    with pytest.raises(ValueError, match=r"X has values too large for float32 \(first at "
                       r"index \(0, 0\).*use dtype='float64'"):
        net32.forward(X)


@pytest.mark.parametrize("sw, error, message", [
    ([1.0, np.nan, 1.0, 1.0], ValueError, "sample_weight contains NaN or infinity"),
    ([1.0, np.inf, 1.0, 1.0], ValueError, "sample_weight contains NaN or infinity"),
    ([1.0, -1.0, 1.0, 1.0], ValueError, "sample_weight must be non-negative"),
    ([0.0, 0.0, 0.0, 0.0], ValueError, "sample_weight sums to zero"),
    ([1.0, 1.0], ValueError, re.escape("sample_weight must have shape (4,), got (2,)")),
    (np.ones((4, 1)), ValueError, re.escape("sample_weight must have shape (4,), got (4, 1)")),
])
def test_bad_sample_weight(small_net, sw, error, message):
    with pytest.raises(error, match=message):
        small_net.loss_and_grad(np.ones((4, 3)), np.zeros((4, 2)), sample_weight=sw)


def test_scalar_sample_weight_is_uniform(small_net, rng):
    X, Y = rng.standard_normal((4, 3)), rng.standard_normal((4, 2))
    l1, g1 = small_net.loss_and_grad(X, Y, alpha=0.2)
    l2, g2 = small_net.loss_and_grad(X, Y, alpha=0.2, sample_weight=1.0)
    assert l1 == pytest.approx(l2, rel=1e-14)
    np.testing.assert_allclose(g1, g2, rtol=1e-13)


@pytest.mark.parametrize("X, error, message", [
    (np.ones(3), ValueError, "X must be a 2-D array (n_samples, n_columns), got shape (3,); "
                             "reshape a single column with x.reshape(-1, 1)"),
    (np.ones((2, 3, 1)), ValueError, "X must be a 2-D array (n_samples, n_columns), got shape "
                                     "(2, 3, 1)"),
    (np.ones((2, 4)), ValueError, "X has 4 columns, expected 3"),
    (np.ones((0, 3)), ValueError, "X has no rows; at least one sample is required"),
    (np.array([["a", "b", "c"]]), TypeError, "X must be numeric, got an array of dtype <U1"),
    (np.ones((2, 3), dtype=object), TypeError, "X must be numeric, got an array of dtype object"),
    (np.ones((2, 3)) * 1j, TypeError, "X must be real, got complex values"),
    (sp.csr_matrix(np.ones((2, 4))), ValueError, "X has 4 columns, expected 3"),
    (sp.csr_matrix((0, 3)), ValueError, "X has no rows; at least one sample is required"),
])
def test_bad_X(small_net, X, error, message):
    with pytest.raises(error, match=re.escape(message)):
        small_net.forward(X)
    with pytest.raises(error, match=re.escape(message)):
        small_net.loss_and_grad(X, np.zeros((2, 2)))


def test_bad_Y(small_net):
    X = np.ones((4, 3))
    with pytest.raises(ValueError, match=re.escape("Y has 3 columns, expected 2")):
        small_net.loss_and_grad(X, np.zeros((4, 3)))
    with pytest.raises(ValueError, match=re.escape("X has 4 rows but Y has 5")):
        small_net.loss_and_grad(X, np.zeros((5, 2)))
    with pytest.raises(ValueError, match=re.escape("Y must be a 2-D array")):
        small_net.loss_and_grad(X, np.zeros(4))    # two outputs: 1-D is ambiguous
    with pytest.raises(TypeError, match="Y must be a dense array, got a sparse matrix"):
        small_net.loss_and_grad(X, sp.csr_matrix(np.zeros((4, 2))))
    with pytest.raises(ValueError, match=re.escape("alpha must be in [0.0, inf], got -1")):
        small_net.loss_and_grad(X, np.zeros((4, 2)), alpha=-1)


def test_inputs_are_not_modified(small_net, rng):
    X = np.asfortranarray(rng.standard_normal((5, 3)))   # non-contiguous input is fine
    Y = rng.standard_normal((5, 2))
    X0, Y0 = X.copy(), Y.copy()
    small_net.forward(X)
    small_net.loss_and_grad(X, Y)
    np.testing.assert_array_equal(X, X0)
    np.testing.assert_array_equal(Y, Y0)
    np.testing.assert_array_equal(small_net.forward(X), small_net.forward(np.ascontiguousarray(X)))


def test_integer_and_bool_inputs_are_converted(small_net):
    Xi = np.array([[1, 0, 2], [0, 1, 1]])
    np.testing.assert_array_equal(small_net.forward(Xi), small_net.forward(Xi.astype(float)))
    np.testing.assert_array_equal(small_net.forward(Xi > 0),
                                  small_net.forward((Xi > 0).astype(float)))


# ---------------------------------------------------------------------------
# Sparse X: the same results as the dense array
# ---------------------------------------------------------------------------


def _sparse_versions(dense, rng):
    """The same matrix in several scipy.sparse formats, including a CSR with
    unsorted indices and duplicate entries (which sum)."""
    csr = sp.csr_matrix(dense)
    yield "csr", csr
    yield "csc", sp.csc_matrix(dense)
    yield "coo", sp.coo_matrix(dense)
    yield "csr_array", sp.csr_array(dense)
    # Split every stored value into two duplicates, in reversed column order.
    rows, cols = np.nonzero(dense)
    vals = dense[rows, cols]
    half = np.round(vals / 2, 3)
    data = np.concatenate([half, vals - half])
    r = np.concatenate([rows, rows])
    c = np.concatenate([cols, cols])
    order = np.lexsort((-c, r))
    messy = sp.csr_matrix((data[order], c[order], np.searchsorted(r[order], np.arange(
        dense.shape[0] + 1))), shape=dense.shape)
    assert not messy.has_canonical_format
    yield "duplicates", messy


def _sparse_dense_pair(rng, n=23, d=12, density=0.3):
    dense = rng.standard_normal((n, d)) * (rng.uniform(size=(n, d)) < density)
    dense[3] = 0.0  # an empty row
    return dense


@pytest.mark.parametrize("dtype", DTYPES)
def test_sparse_forward_matches_dense(dtype, rng):
    net = Network([12, 9, 3], activation="relu", output="softmax", loss="log_loss",
                  dtype=dtype, random_state=0)
    dense = _sparse_dense_pair(rng)
    expected = ref.network_forward(net.coefs, net.intercepts, ["relu", "softmax"],
                                   dense.astype(dtype))[1][-1]
    for fmt, X in _sparse_versions(dense, rng):
        out = net.forward(X)
        assert out.dtype == dtype
        assert_close(out, expected, dtype, scale=np.abs(expected) + 1e-2, err_msg=fmt)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("weighted", [False, True])
def test_sparse_loss_and_grad_matches_dense(dtype, weighted, rng):
    net = Network([12, 9, 7, 3], activation="tanh", output="logistic", loss="log_loss",
                  dtype=dtype, random_state=0)
    dense = _sparse_dense_pair(rng)
    Y = rng.integers(0, 2, (23, 3)).astype(float)
    sw = rng.uniform(0.5, 2, 23) if weighted else None
    value_ref, gc, gb = ref.network_loss_grad(net.coefs, net.intercepts,
                                              ["tanh", "tanh", "logistic"], "log_loss",
                                              dense.astype(dtype), Y, alpha=0.1,
                                              sample_weight=None if sw is None
                                              else sw.astype(dtype), dtype=dtype)
    g_ref = ref.flatten(gc, gb)
    for fmt, X in _sparse_versions(dense, rng):
        value, grad = net.loss_and_grad(X, Y, alpha=0.1, sample_weight=sw)
        assert_close(value, value_ref, dtype, err_msg=fmt)
        assert_close(grad, g_ref, dtype, scale=np.abs(g_ref).max(), err_msg=fmt)


def test_sparse_all_zero_matrix(rng):
    net = Network([5, 4, 2], activation="tanh", random_state=0)
    X = sp.csr_matrix((6, 5))
    np.testing.assert_allclose(net.forward(X), net.forward(np.zeros((6, 5))), rtol=1e-15)
    Y = rng.standard_normal((6, 2))
    l1, g1 = net.loss_and_grad(X, Y)
    l2, g2 = net.loss_and_grad(np.zeros((6, 5)), Y)
    assert l1 == pytest.approx(l2, rel=1e-15)
    np.testing.assert_allclose(g1, g2, rtol=1e-14, atol=1e-300)


def test_sparse_nonfinite_and_input_untouched(small_net):
    X = sp.csr_matrix(np.array([[1.0, 0, 2.0], [0, np.nan, 0]]))
    with pytest.raises(ValueError, match="X contains NaN or infinity; remove or impute"):
        small_net.forward(X)
    X = sp.csr_matrix(np.array([[1.0, 0, 2.0], [0, np.inf, 0]]))
    with pytest.raises(ValueError, match="X contains NaN or infinity"):
        small_net.loss_and_grad(X, np.zeros((2, 2)))
    messy = sp.csr_matrix((np.array([1.0, 2.0, 3.0]), np.array([2, 0, 2]),
                           np.array([0, 3, 3])), shape=(2, 3))
    before = (messy.data.copy(), messy.indices.copy(), messy.indptr.copy())
    out = small_net.forward(messy)
    np.testing.assert_array_equal(out, small_net.forward(np.array([[2.0, 0, 4.0], [0, 0, 0]])))
    for a, b in zip((messy.data, messy.indices, messy.indptr), before):
        np.testing.assert_array_equal(a, b)


def test_csr_input_validates_structure():
    from bpcore import _kernels as K

    data, ind, ptr = np.ones(2), np.array([0, 1], dtype=np.intp), np.array([0, 1, 2], dtype=np.intp)
    K.CSRInput(data, ind, ptr, 2, 2)
    with pytest.raises(ValueError, match=re.escape("CSR column index 5 out of range [0, 2)")):
        K.CSRInput(data, np.array([0, 5], dtype=np.intp), ptr, 2, 2)
    with pytest.raises(ValueError, match="inconsistent CSR structure"):
        K.CSRInput(data, ind, np.array([0, 1, 3], dtype=np.intp), 2, 2)
    with pytest.raises(ValueError, match="CSR indptr must be non-decreasing"):
        K.CSRInput(np.ones(2), ind, np.array([0, 2, 1, 2], dtype=np.intp), 3, 2)
    with pytest.raises(TypeError, match="CSR data must be a 1-D float32 or float64 array"):
        K.CSRInput(np.ones(2, dtype=np.int64), ind, ptr, 2, 2)


@pytest.mark.parametrize("sparse", [False, True], ids=["dense", "sparse"])
def test_large_inputs_are_processed_in_blocks(sparse, rng):
    """With a wide layer, forward and loss_and_grad run in blocks of rows
    (here 64); the blocks' results and gradient sums must join up exactly."""
    net = Network([12, 8192, 3], activation="tanh", output="softmax", loss="log_loss",
                  random_state=0)
    assert net._block_rows(300) < 300 / 4
    dense = rng.standard_normal((300, 12)) * (rng.uniform(size=(300, 12)) < 0.4)
    X = sp.csr_matrix(dense) if sparse else dense
    Y = np.eye(3)[rng.integers(0, 3, 300)]
    sw = rng.uniform(0.5, 2.0, 300)
    _, acts = ref.network_forward(net.coefs, net.intercepts, ["tanh", "softmax"], dense)
    assert_close(net.forward(X), acts[-1], np.float64, scale=np.abs(acts[-1]) + 1e-2)
    value, grad = net.loss_and_grad(X, Y, alpha=0.1, sample_weight=sw)
    value_ref, gc, gb = ref.network_loss_grad(net.coefs, net.intercepts, ["tanh", "softmax"],
                                              "log_loss", dense, Y, alpha=0.1, sample_weight=sw)
    g_ref = ref.flatten(gc, gb)
    assert_close(value, value_ref, np.float64)
    assert_close(grad, g_ref, np.float64, scale=np.abs(g_ref).max())


# ---------------------------------------------------------------------------
# Re-entrant inference
# ---------------------------------------------------------------------------


def test_concurrent_forward_matches_serial():
    rng = np.random.default_rng(0)
    net = Network([40, 256, 128, 10], activation="tanh", output="softmax", loss="log_loss",
                  random_state=0)
    inputs = [rng.standard_normal((n, 40)) for n in (300, 1, 57, 300)]
    # The serial results come from a thread of their own: SciPy's OpenBLAS
    # (0.3.30) rounds some products of a Python thread other than the main
    # one as if it ran threaded, whatever the thread limit (main thread,
    # one BLAS thread vs any other thread: 1 ulp on some rows here).
    serial = []
    ref_thread = threading.Thread(target=lambda: serial.extend(net.forward(X) for X in inputs))
    ref_thread.start()
    ref_thread.join()
    n_threads, repeats = 8, 25
    mismatches = []
    barrier = threading.Barrier(n_threads)

    def work(k):
        barrier.wait()
        for r in range(repeats):
            i = (k + r) % len(inputs)  # every thread visits every input, same or not
            out = net.forward(inputs[i])
            if not np.array_equal(out, serial[i]):
                mismatches.append((k, r, i))

    threads = [threading.Thread(target=work, args=(k,)) for k in range(n_threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not mismatches, f"{len(mismatches)} concurrent results differ from the serial ones"


def test_summary_table_and_totals():
    """TOOLBOX.md section 9: one row per layer; the totals are n_params and
    the buffer count, and each row's counts are its blocks' sizes."""
    net = Network([5, 6, 6, 4, 3], activation=["relu", "tanh", "gelu"],
                         output="softmax", loss="log_loss", batch_norm=[True, False, True],
                         dropout=[0.0, 0.25, 0.0], residual=[False, True, False],
                         random_state=0)
    text = net.summary()
    lines = text.splitlines()
    assert lines[0] == "Network: 5 -> 6 -> 6 -> 4 -> 3, float64, log_loss loss"
    assert lines[1].split() == ["layer", "kind", "width", "activation", "batch", "norm",
                                "dropout", "skip", "params", "buffers"]
    rows = [line.split() for line in lines[2:7]]
    assert rows[0] == ["0", "input", "5"]
    assert rows[1] == ["1", "dense", "6", "relu", "yes", "42", "12"]
    assert rows[2] == ["2", "dense", "6", "tanh", "no", "0.25", "yes", "42", "0"]
    assert rows[3] == ["3", "dense", "4", "gelu", "yes", "32", "8"]
    assert rows[4] == ["4", "output", "3", "softmax", "15", "0"]
    per_layer = {}
    for _, layer, _, size in net.blocks:
        per_layer[layer] = per_layer.get(layer, 0) + size
    assert [int(r[-2].replace(",", "")) for r in rows[1:]] == [per_layer[i] for i in range(4)]
    assert f"Trainable parameters: {net.n_params:,} (net.n_params = {net.n_params})" in text
    assert net.n_params == 42 + 42 + 32 + 15
    assert f"Buffers (batch-norm running statistics, not trained): {net.buffers.size}" in text
    assert net.buffers.size == 12 + 8
    assert lines[-1] == f"Total: {net.n_params + net.buffers.size:,} values"


def test_repr_rebuilds_the_network():
    net = Network([4, 8, 8, 2], output="logistic", loss="huber", huber_delta=0.5,
                         dropout=[0.1, 0.0], batch_norm=True, residual=True, dtype="float32")
    text = repr(net)
    assert text == ("Network([4, 8, 8, 2], activation='relu', output='logistic', loss='huber', "
                    "dropout=[0.1, 0.0], batch_norm=True, residual=True, huber_delta=0.5, "
                    "dtype='float32')")
    assert repr(eval(text)) == text
