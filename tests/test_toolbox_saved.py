"""The toolbox estimators saved, loaded and exported: what the layer plan
added (batch norm with its running statistics, dropout, residual skips, new
activations and losses, schedules, clipping, class weights) survives
``bpcore.save``/``load`` bit for bit and resumes training identically, and
``bpcore.to_onnx`` reproduces ``predict``/``predict_proba`` in onnxruntime.
"""
import warnings

import numpy as np
import pytest
from sklearn.datasets import load_diabetes, load_wine
from sklearn.exceptions import ConvergenceWarning
from sklearn.preprocessing import StandardScaler

import bpcore
from bpcore import NeuralNetClassifier, NeuralNetRegressor

pytest.importorskip("safetensors", reason="the save extra is not installed")

CLASSIFIERS = {
    "bn-dropout-adamw-cosine": dict(hidden_layer_sizes=(16, 16), batch_norm=True, dropout=0.2,
                                    solver="adamw", learning_rate="cosine", activation="gelu"),
    "residual-nadam-clip-classweight": dict(hidden_layer_sizes=(12, 12, 12), residual=True,
                                         solver="nadam", clip_norm=1.0,
                                         class_weight={0: 1.0, 1: 2.0, 2: 0.5},
                                         activation=["silu", "softplus", "elu"]),
}
REGRESSORS = {
    "huber-residual-clip": dict(hidden_layer_sizes=(16, 16), loss="huber", residual=True,
                                clip_value=0.5, l1=1e-4),
    "absolute-bn-selu-maxnorm": dict(hidden_layer_sizes=(16, 16), loss="absolute_error",
                                     batch_norm=True, activation="selu", max_norm=2.0,
                                     solver="adamw", learning_rate="onecycle"),
}


@pytest.fixture(scope="module")
def wine():
    X, y = load_wine(return_X_y=True)
    return StandardScaler().fit_transform(X), y


@pytest.fixture(scope="module")
def diabetes():
    X, y = load_diabetes(return_X_y=True)
    return StandardScaler().fit_transform(X), (y - y.mean()) / y.std()


def _fit(est, X, y, dtype):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return est.fit(X.astype(dtype), y)


def _cases(table, cls):
    return [pytest.param(cls, kw, dt, id=f"{name}-{np.dtype(dt).name}")
            for name, kw in table.items() for dt in (np.float64, np.float32)]


@pytest.mark.parametrize("cls, kwargs, dtype",
                         _cases(CLASSIFIERS, NeuralNetClassifier)
                         + _cases(REGRESSORS, NeuralNetRegressor))
def test_save_load_resume(cls, kwargs, dtype, wine, diabetes, tmp_path):
    X, y = wine if cls is NeuralNetClassifier else diabetes
    est = _fit(cls(max_iter=15, random_state=0, **kwargs), X, y, dtype)
    path = tmp_path / "model.bpcore"
    bpcore.save(est, path)
    back = bpcore.load(path)
    Xd = X.astype(dtype)
    np.testing.assert_array_equal(back.predict(Xd), est.predict(Xd))
    if cls is NeuralNetClassifier:
        np.testing.assert_array_equal(back.predict_proba(Xd), est.predict_proba(Xd))
    for a, b in zip(est.coefs_ + est.intercepts_, back.coefs_ + back.intercepts_):
        np.testing.assert_array_equal(a, b)
    assert back.get_params() == est.get_params()
    np.testing.assert_array_equal(back.loss_curve_, est.loss_curve_)
    if est.network_.buffers.size:
        np.testing.assert_array_equal(back.network_.buffers, est.network_.buffers)
    # Training resumes identically: optimizer state, schedule position, the
    # dropout seed and the shuffling RNG were all saved.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for m in (est, back):
            for _ in range(3):
                m.partial_fit(Xd, y)
    np.testing.assert_array_equal(back.network_.params, est.network_.params)
    np.testing.assert_array_equal(back.loss_curve_, est.loss_curve_)


@pytest.mark.parametrize("cls, kwargs, dtype",
                         _cases(CLASSIFIERS, NeuralNetClassifier)
                         + _cases(REGRESSORS, NeuralNetRegressor))
def test_onnx_matches_predict(cls, kwargs, dtype, wine, diabetes):
    ort = pytest.importorskip("onnxruntime", reason="the onnx extra is not installed")
    X, y = wine if cls is NeuralNetClassifier else diabetes
    est = _fit(cls(max_iter=15, random_state=0, **kwargs), X, y, dtype)
    Xd = X.astype(dtype)
    model = bpcore.to_onnx(est, Xd)
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    out = sess.run(None, {"X": Xd})
    # GELU: onnxruntime has no float64 Erf (it computes in float32 there).
    gelu = kwargs.get("activation") == "gelu"
    tol = 1e-5 if dtype == np.float32 else (1e-7 if gelu else 1e-12)
    if cls is NeuralNetClassifier:
        label, proba = out
        np.testing.assert_allclose(proba, est.predict_proba(Xd), rtol=tol, atol=tol)
        agree = np.mean(label == est.predict(Xd))
        assert agree == 1.0
    else:
        np.testing.assert_allclose(out[0].ravel(), est.predict(Xd).ravel(), rtol=tol, atol=tol)
