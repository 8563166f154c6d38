"""bpcore.to_onnx and the skl2onnx registration, checked with onnxruntime.

Oracle: bpcore's own ``forward``, ``predict`` and ``predict_proba``. The
largest deviation per model kind goes to the session's deviation table
(pytest's terminal summary; ``-v`` shows it whole).
Skipped with a reason when the ``onnx`` extra is not installed.
"""
import warnings
from collections import defaultdict

import numpy as np
import pytest
from sklearn.datasets import make_classification, make_regression

import bpcore
from bpcore.activations import HIDDEN_ACTIVATIONS

onnx = pytest.importorskip("onnx", reason="the onnx extra is not installed")
ort = pytest.importorskip("onnxruntime", reason="the onnx extra is not installed")
import bpcore.onnx  # noqa: E402  (registers with skl2onnx)

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

#: Absolute tolerance on outputs (probabilities, regression targets of order 1).
TOL = {np.float32: 2e-6, np.float64: 1e-12}
_DEVIATIONS = defaultdict(float)


def _run(model, X):
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(None, {sess.get_inputs()[0].name: X})


def _check(kind, actual, desired, dtype, tol=None):
    dev = float(np.max(np.abs(actual.astype(np.float64) - desired.astype(np.float64))))
    key = f"{kind} {np.dtype(dtype).name}"
    _DEVIATIONS[key] = max(_DEVIATIONS[key], dev)
    assert dev <= (tol or TOL[dtype]), f"{key}: {dev}"


@pytest.fixture(scope="module", autouse=True)
def report_deviations(deviation_record):
    """The largest deviation per model kind joins the session's deviation
    table (tests/conftest.py), printed in pytest's terminal summary."""
    yield
    for key, dev in _DEVIATIONS.items():
        kind, dtype = key.rsplit(" ", 1)
        deviation_record.add(f"ONNX {kind}", dtype, dev)


def _net(activation, dtype, output="identity", loss="squared_error"):
    rng = np.random.default_rng(0)
    net = bpcore.Network([4, 6, 6, 5, 3], activation=activation, output=output, loss=loss,
                         batch_norm=[True, True, False], dropout=[0.3, 0.0, 0.2],
                         residual=[False, True, False], dtype=dtype, random_state=0)
    net.params[...] = rng.standard_normal(net.params.shape)
    for m, v in zip(net.bn_means, net.bn_vars):
        if m is not None:
            m[...] = rng.standard_normal(m.shape)
            v[...] = rng.random(v.shape) + 0.3
    return net


def _X(dtype, n=300, d=4):
    # Wide enough that every activation sees both signs and softplus' threshold.
    return (np.random.default_rng(1).standard_normal((n, d)) * 4).astype(dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("activation", list(HIDDEN_ACTIVATIONS))
def test_network_every_activation_and_layer_kind(activation, dtype):
    net = _net(activation, dtype)
    X = _X(dtype)
    model = bpcore.to_onnx(net, X)
    assert model.graph.input[0].type.tensor_type.elem_type == (
        onnx.TensorProto.FLOAT if dtype == np.float32 else onnx.TensorProto.DOUBLE)
    ops = {n.op_type for n in model.graph.node}
    assert "BatchNormalization" not in ops and "Dropout" not in ops
    out, = _run(model, X)
    assert out.shape == (len(X), 3) and out.dtype == dtype
    scale = max(1.0, float(np.abs(net.forward(X)).max()))
    # float64 GELU: onnxruntime has no float64 Erf, which runs in float32.
    tol = 1e-6 if (activation == "gelu" and dtype == np.float64) else TOL[dtype] * 10
    _check(f"Network[{activation}]", out / scale, net.forward(X) / scale, dtype, tol)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("output, loss", [("softmax", "log_loss"), ("logistic", "log_loss"),
                                          ("exp", "poisson"), ("tanh", "squared_error")])
def test_network_every_output(output, loss, dtype):
    net = _net("relu", dtype, output, loss)
    net.params[...] *= 0.3                       # keep exp's outputs of order 1
    X = _X(dtype)
    out, = _run(bpcore.to_onnx(net, X), X)
    ref = net.forward(X)
    _check(f"Network[output={output}]", out / max(1.0, np.abs(ref).max()),
           ref / max(1.0, np.abs(ref).max()), dtype, TOL[dtype] * 10)


def test_default_input_type_is_float32():
    net = _net("relu", np.float64)
    model = bpcore.to_onnx(net)
    assert model.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    X = _X(np.float32)
    out, = _run(model, X)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, net.forward(X.astype(np.float64)), rtol=1e-4, atol=1e-4)


def _classifier_data(kind):
    X, y = make_classification(n_samples=200, n_features=6, n_informative=4, n_classes=3,
                               random_state=0)
    if kind == "binary":
        y = y % 2
    elif kind == "str":
        y = np.array(["cat", "dog", "emu"])[y]
    elif kind == "multilabel":
        y = np.stack([y == 0, y == 1, y != 1], axis=1).astype(int)
    return X, y


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("kind", ["binary", "multiclass", "str", "multilabel"])
def test_classifier(kind, dtype):
    X, y = _classifier_data(kind)
    X = X.astype(dtype)
    clf = bpcore.MLPClassifier((8, 8), activation="tanh", max_iter=60, random_state=0)
    clf.fit(X, y)
    model = bpcore.to_onnx(clf, X)
    assert [o.name for o in model.graph.output] == ["label", "probabilities"]
    assert "ZipMap" not in {n.op_type for n in model.graph.node}
    label, proba = _run(model, X)
    _check(f"MLPClassifier[{kind}]", proba, clf.predict_proba(X), dtype)
    assert proba.shape == clf.predict_proba(X).shape
    pred = clf.predict(X)
    assert label.shape == pred.shape
    assert (label.astype(pred.dtype) == pred).all()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("loss, n_outputs", [("squared_error", 1), ("squared_error", 3),
                                             ("poisson", 2)])
def test_regressor(loss, n_outputs, dtype):
    X, y = make_regression(n_samples=150, n_features=5, n_targets=n_outputs, random_state=0)
    if loss == "poisson":
        y = np.abs(y) / 100
    X = (X / 2).astype(dtype)
    reg = bpcore.MLPRegressor(loss=loss, hidden_layer_sizes=(7,), max_iter=80,
                              random_state=0).fit(X, y)
    out, = _run(bpcore.to_onnx(reg, X), X)
    assert out.shape == (len(X), n_outputs)
    ref = reg.predict(X).reshape(len(X), n_outputs)
    _check(f"MLPRegressor[{loss}, {n_outputs} outputs]", out / max(1.0, np.abs(ref).max()),
           ref / max(1.0, np.abs(ref).max()), dtype)


def test_errors():
    with pytest.raises(TypeError, match="bpcore.to_onnx takes a bpcore Network or estimator"):
        bpcore.to_onnx(object())
    from sklearn.exceptions import NotFittedError
    with pytest.raises(NotFittedError):
        bpcore.to_onnx(bpcore.MLPClassifier())
    net = _net("relu", np.float64)
    with pytest.raises(ValueError, match="X_sample must be float32 or float64"):
        bpcore.to_onnx(net, np.ones((1, 4), dtype=np.int64))
    with pytest.raises(ValueError, match=r"X_sample must have shape \(n_samples, 4\)"):
        bpcore.to_onnx(net, np.ones((1, 5)))


# -- skl2onnx -----------------------------------------------------------------------

skl2onnx = pytest.importorskip("skl2onnx", reason="skl2onnx is not installed")


@pytest.mark.parametrize("kind", ["binary", "multiclass", "str"])
def test_skl2onnx_converts_the_drop_in_classifier(kind):
    X, y = _classifier_data(kind)
    clf = bpcore.MLPClassifier((8,), max_iter=60, random_state=0).fit(X, y)
    X32 = X.astype(np.float32)
    # skl2onnx's defaults, as for scikit-learn's MLPClassifier: ZipMap'd probabilities.
    label, proba = _run(skl2onnx.to_onnx(clf, X32[:1]), X32)
    assert (label == clf.predict(X)).all()
    assert isinstance(proba, list) and set(proba[0]) == set(clf.classes_.tolist())
    # zipmap=False: the plain tensor, in float64 too.
    model = skl2onnx.to_onnx(clf, X[:1], options={"zipmap": False})
    label, proba = _run(model, X)
    assert (label == clf.predict(X)).all()
    _check(f"skl2onnx MLPClassifier[{kind}]", proba, clf.predict_proba(X), np.float64)


def test_skl2onnx_converts_the_drop_in_regressor_in_a_pipeline():
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    X, y = make_regression(n_samples=100, n_features=5, n_targets=2, random_state=0)
    pipe = make_pipeline(StandardScaler(),
                         bpcore.MLPRegressor(hidden_layer_sizes=(6,), activation="logistic",
                                             max_iter=50, random_state=0)).fit(X, y)
    out, = _run(skl2onnx.to_onnx(pipe, X[:1]), X)
    assert out.shape == (100, 2)
    _check("skl2onnx Pipeline[MLPRegressor]", out / np.abs(y).max(),
           pipe.predict(X) / np.abs(y).max(), np.float64)


def test_docstring_examples():
    import doctest
    result = doctest.testmod(bpcore.onnx, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0


_AFTER_IMPORT_BPCORE = """
import sys, warnings
import numpy as np
{first}
import bpcore
assert ("skl2onnx" in sys.modules) == {skl_first}, "import bpcore imported skl2onnx"
assert "bpcore.onnx" not in sys.modules or {skl_first}
from sklearn.datasets import load_iris
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
X, y = load_iris(return_X_y=True)
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    clf = bpcore.MLPClassifier(hidden_layer_sizes=(6,), max_iter=30, random_state=0).fit(X, y)
    pipe = make_pipeline(StandardScaler(), bpcore.NeuralNetRegressor(
        hidden_layer_sizes=(5,), max_iter=30, random_state=0)).fit(X, X[:, 0])
import skl2onnx, onnxruntime as ort
X32 = X.astype(np.float32)
for model, est in ((skl2onnx.to_onnx(clf, X32[:1], options={{"zipmap": False}}), clf),
                   (skl2onnx.to_onnx(pipe, X32[:1]), pipe)):
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    out = sess.run(None, {{sess.get_inputs()[0].name: X32}})
    if est is clf:
        assert (out[0] == clf.predict(X)).all()
        assert np.abs(out[1] - clf.predict_proba(X)).max() < 1e-5
    else:
        assert np.abs(out[0].ravel() - pipe.predict(X)).max() < 1e-4
print("ok")
"""


@pytest.mark.parametrize("skl2onnx_first", [False, True])
def test_skl2onnx_converts_after_import_bpcore_alone(skl2onnx_first):
    """skl2onnx.to_onnx on a bpcore estimator and on a pipeline holding one,
    with no `import bpcore.onnx`, whichever of bpcore and skl2onnx is imported
    first; `import bpcore` itself does not import skl2onnx (a fresh process)."""
    import subprocess
    import sys
    code = _AFTER_IMPORT_BPCORE.format(first="import skl2onnx" if skl2onnx_first else "",
                                       skl_first=skl2onnx_first)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


@pytest.mark.parametrize("name", ["MLPClassifier", "MLPRegressor"])
def test_to_onnx_after_set_params_follows_the_estimator(name):
    # scikit-learn reads ``activation`` at predict time: after
    # set_params(activation=...) on a fitted model its predictions change, and
    # bpcore's follow (tests/test_inference.py). The exported graph must be
    # the model's predictions now, not as of the last fit, and exporting must
    # not leave anything stale behind for the next set_params.
    make = make_classification if name == "MLPClassifier" else make_regression
    X, y = make(n_samples=60, n_features=5, random_state=0)
    est = getattr(bpcore, name)(hidden_layer_sizes=(7,), max_iter=20, random_state=0).fit(X, y)
    for activation in ("tanh", "logistic", "relu"):
        est.set_params(activation=activation)
        out = _run(bpcore.to_onnx(est, X[:1]), X)
        if name == "MLPClassifier":
            _check("set_params classifier", out[1], est.predict_proba(X), np.float64)
            assert np.array_equal(out[0], est.predict(X))
        else:
            _check("set_params regressor", out[0].ravel(), est.predict(X), np.float64)
