"""NeuralNetRegressor's target scaling (issue 28) against independent oracles:
scikit-learn's MLPRegressor and bpcore's drop-in (the defaults), the same
estimator with ``target_scaling=None`` trained on a target standardized by
hand (what 'standard' must equal), NumPy's weighted averages (the scaler),
onnxruntime (export) and the saved file (persistence)."""
import inspect
import warnings

import numpy as np
import pytest
import sklearn.neural_network as sk
from sklearn.datasets import load_diabetes, make_regression
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import r2_score
from sklearn.preprocessing import StandardScaler

import bpcore
from bpcore import NeuralNetRegressor
from bpcore.schedules import StepLR

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


@pytest.fixture(scope="module")
def diabetes_raw():
    """Standardized features, the raw target (mean 152, sd 77)."""
    X, y = load_diabetes(return_X_y=True)
    return StandardScaler().fit_transform(X), y


def _far_data(n=600, mean=1000.0, sd=10.0, n_outputs=1, seed=0):
    X, y = make_regression(n_samples=n, n_features=8, n_informative=6, n_targets=n_outputs,
                           noise=5.0, random_state=seed)
    y = mean + sd * (y - y.mean(axis=0)) / y.std(axis=0)
    return StandardScaler().fit_transform(X), y


def _no_far_warning(record):
    return [str(w.message) for w in record if "target_scaling" in str(w.message)]


# -- the defaults: scikit-learn's numbers, a warning only from the toolbox ----------

@pytest.mark.parametrize("solver", ["adam", "sgd", "lbfgs"])
def test_defaults_keep_sklearn_numbers_on_raw_targets(diabetes_raw, solver):
    X, y = diabetes_raw
    kw = dict(hidden_layer_sizes=(20,), solver=solver, max_iter=40, random_state=0)
    theirs = sk.MLPRegressor(**kw).fit(X, y)
    dropin = bpcore.MLPRegressor(**kw).fit(X, y)
    with pytest.warns(UserWarning, match="target_scaling='standard'"):
        ours = NeuralNetRegressor(**kw).fit(X, y)
    assert ours.target_offset_ is None and ours.target_scale_ is None
    # Bit for bit the drop-in; the drop-in is scikit-learn up to rounding.
    np.testing.assert_array_equal(ours.network_.params, dropin._net.params)
    np.testing.assert_array_equal(ours.predict(X), dropin.predict(X))
    if solver != "lbfgs":
        np.testing.assert_array_equal(ours.loss_curve_, dropin.loss_curve_)
        np.testing.assert_allclose(ours.loss_curve_, theirs.loss_curve_, rtol=1e-10)
    np.testing.assert_allclose(ours.predict(X), theirs.predict(X), rtol=1e-8)


def test_dropin_warns_exactly_as_sklearn(diabetes_raw):
    X, y = diabetes_raw
    messages = []
    for cls in (sk.MLPRegressor, bpcore.MLPRegressor):
        with warnings.catch_warnings(record=True) as record:
            warnings.simplefilter("always")
            cls(hidden_layer_sizes=(10,), max_iter=5, random_state=0).fit(X, y)
        messages.append([(w.category, str(w.message)) for w in record])
    assert messages[0] == messages[1]
    assert not hasattr(bpcore.MLPRegressor(), "target_scaling")


def test_far_target_warning_says_what_to_do(diabetes_raw):
    X, y = diabetes_raw
    with pytest.warns(UserWarning, match=r"mean 152.1 and standard deviation 77.01.*"
                                         r"target_scaling='standard'.*target_scaling=None"):
        NeuralNetRegressor(hidden_layer_sizes=(4,), max_iter=2, random_state=0).fit(X, y)
    Xf, Y = _far_data(n_outputs=2)
    Y[:, 0] = (Y[:, 0] - Y[:, 0].mean()) / Y[:, 0].std()
    with pytest.warns(UserWarning, match=r"The target \(column 1\) has mean 1000"):
        NeuralNetRegressor(hidden_layer_sizes=(4,), max_iter=2, random_state=0).fit(Xf, Y)
    for quiet in (dict(target_scaling=None), dict(target_scaling="standard"),
                  dict(loss="poisson"), dict(solver="adamw")):
        with warnings.catch_warnings(record=True) as record:
            warnings.simplefilter("always")
            NeuralNetRegressor(hidden_layer_sizes=(4,), max_iter=2, random_state=0,
                               **quiet).fit(X, y)
        assert not _no_far_warning(record), quiet
    # A target near the output's range: no warning.
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        NeuralNetRegressor(hidden_layer_sizes=(4,), max_iter=2, random_state=0).fit(
            X, (y - y.mean()) / y.std() * 3 + 2)
    assert not _no_far_warning(record)


# -- 'auto': which parameters turn scaling on ---------------------------------

@pytest.mark.parametrize("params, scaled", [
    ({}, False),
    (dict(hidden_layer_sizes=(8, 8), early_stopping=True, solver="sgd", alpha=1e-2,
          learning_rate="adaptive", activation="tanh", loss="squared_error"), False),
    (dict(solver="adamw"), True),
    (dict(solver="rprop"), True),
    (dict(learning_rate="cosine"), True),
    (dict(learning_rate=StepLR(5)), True),
    (dict(activation="gelu"), True),
    (dict(activation=["relu", "relu"], hidden_layer_sizes=(4, 4)), True),
    (dict(loss="huber"), True),
    (dict(loss="absolute_error"), True),
    (dict(batch_norm=True), True),
    (dict(batch_norm=[False, False], hidden_layer_sizes=(4, 4)), False),
    (dict(dropout=0.1), True),
    (dict(dropout=[0.0, 0.0], hidden_layer_sizes=(4, 4)), False),
    (dict(init="he_uniform"), True),
    (dict(init=["sklearn", "sklearn"]), False),
    (dict(residual=True, hidden_layer_sizes=(4, 4)), True),
    (dict(l1=1e-4), True),
    (dict(max_norm=3.0), True),
    (dict(clip_norm=1.0), True),
    (dict(clip_value=1.0), True),
    (dict(restore_best_weights=False), True),
    (dict(scoring="r2"), True),
    (dict(weight_decay=0.5), False),                  # ignored by 'adam'
    (dict(weight_decay=0.5, solver="adamw"), True),
    (dict(huber_delta=2.0), False),                   # ignored by squared error
    (dict(target_scaling="standard"), True),
    (dict(target_scaling=None, solver="adamw"), False),
])
def test_auto_scales_when_the_toolbox_is_in_use(params, scaled):
    X, y = _far_data(n=80)
    params = {"hidden_layer_sizes": (4,), "max_iter": 2, "random_state": 0, **params}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est = NeuralNetRegressor(**params).fit(X, y)
    assert (est.target_scale_ is not None) is scaled
    assert est.get_params()["target_scaling"] == params.get("target_scaling", "auto")


def test_auto_covers_every_toolbox_parameter():
    """A new toolbox parameter must be considered by 'auto' (or exempted here)."""
    ours = set(inspect.signature(NeuralNetRegressor).parameters)
    theirs = set(inspect.signature(sk.MLPRegressor).parameters)
    covered = {"init", "dropout", "batch_norm", "residual", "l1", "max_norm", "clip_norm",
               "clip_value", "weight_decay", "restore_best_weights", "scoring",
               "huber_delta", "target_scaling"}
    covered |= {"loss"} - theirs        # scikit-learn 1.6's MLPRegressor has no loss
    assert ours - theirs == covered


# -- 'standard' is training on the standardized target ---------------------------

RECIPES = {
    "adamw-bn-dropout-earlystop": dict(hidden_layer_sizes=(16, 16), batch_norm=True,
                                       dropout=0.1, solver="adamw", learning_rate="cosine",
                                       early_stopping=True, max_iter=30),
    "huber-residual": dict(hidden_layer_sizes=(16, 16), loss="huber", huber_delta=0.5,
                           residual=True, max_iter=20),
    "absolute-nadam": dict(hidden_layer_sizes=(16,), loss="absolute_error", solver="nadam",
                           max_iter=20),
    "lbfgs": dict(hidden_layer_sizes=(16,), solver="lbfgs", max_iter=50),
    "sgd-sklearn-options": dict(hidden_layer_sizes=(16,), solver="sgd", max_iter=20,
                                learning_rate_init=0.01),
}


@pytest.mark.parametrize("n_outputs", [1, 3])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("name", list(RECIPES))
def test_standard_equals_training_on_a_standardized_target(name, weighted, n_outputs):
    X, y = _far_data(n=300, n_outputs=n_outputs, seed=1)
    if n_outputs > 1:
        y = y * np.array([1.0, 50.0, 0.01]) + np.array([0.0, -3e4, 2.0])
    sw = np.random.RandomState(0).uniform(0.2, 3.0, len(y)) if weighted else None
    kw = dict(random_state=0, **RECIPES[name])
    est = NeuralNetRegressor(target_scaling="standard", **kw).fit(X, y, sample_weight=sw)
    # The oracle: NumPy's weighted mean and (biased) standard deviation,
    # the target standardized by hand, and the same network unscaled.
    Y = y.reshape(len(y), -1)
    mean = np.average(Y, axis=0, weights=sw)
    sd = np.sqrt(np.average((Y - mean) ** 2, axis=0, weights=sw))
    np.testing.assert_allclose(est.target_offset_, mean, rtol=1e-13)
    np.testing.assert_allclose(est.target_scale_, sd, rtol=1e-13)
    assert est.target_offset_.shape == est.target_scale_.shape == (n_outputs,)
    ref = NeuralNetRegressor(target_scaling=None, **kw).fit(
        X, ((Y - est.target_offset_) / est.target_scale_).reshape(y.shape), sample_weight=sw)
    np.testing.assert_array_equal(est.network_.params, ref.network_.params)
    np.testing.assert_allclose(est.predict(X), ref.predict(X) * est.target_scale_.reshape(
        (-1,) if y.ndim == 1 else (1, -1)) + est.target_offset_.reshape(
        () if y.ndim == 1 else (1, -1)), rtol=1e-12)
    assert est.predict(X).shape == y.shape
    # Losses in scaled units (the optimizer's), scores in y's units: R^2 agrees.
    if est.solver != "lbfgs":
        np.testing.assert_array_equal(est.loss_curve_, ref.loss_curve_)
    assert est.loss_ == ref.loss_
    if est.early_stopping:
        np.testing.assert_allclose(est.validation_scores_, ref.validation_scores_,
                                   rtol=1e-10, atol=1e-12)
    assert est.score(X, y, sample_weight=sw) == pytest.approx(
        r2_score(y, est.predict(X), sample_weight=sw), rel=1e-12)


def test_poisson_divides_by_the_mean_without_centering():
    rs = np.random.RandomState(0)
    X = rs.randn(400, 5)
    y = rs.poisson(200 * np.exp(0.3 * X[:, 0]))
    sw = rs.uniform(0.5, 2.0, len(y))
    kw = dict(loss="poisson", hidden_layer_sizes=(8,), max_iter=15, random_state=0)
    est = NeuralNetRegressor(target_scaling="standard", **kw).fit(X, y, sample_weight=sw)
    np.testing.assert_array_equal(est.target_offset_, [0.0])
    np.testing.assert_allclose(est.target_scale_, [np.average(y, weights=sw)], rtol=1e-13)
    ref = NeuralNetRegressor(target_scaling=None, **kw).fit(X, y / est.target_scale_[0],
                                                            sample_weight=sw)
    np.testing.assert_array_equal(est.network_.params, ref.network_.params)
    np.testing.assert_allclose(est.predict(X), ref.predict(X) * est.target_scale_[0],
                               rtol=1e-12)
    assert (est.predict(X) > 0).all()


def test_constant_column_keeps_scale_one():
    X, y = _far_data(n=100, n_outputs=2)
    y[:, 1] = 7.0
    est = NeuralNetRegressor(target_scaling="standard", hidden_layer_sizes=(4,), max_iter=5,
                             random_state=0).fit(X, y)
    assert est.target_scale_[1] == 1.0 and est.target_offset_[1] == 7.0
    zeros = NeuralNetRegressor(loss="poisson", target_scaling="standard", hidden_layer_sizes=(4,),
                               max_iter=2, random_state=0).fit(X, np.zeros(len(X)))
    np.testing.assert_array_equal(zeros.target_scale_, [1.0])


def test_validation_loss_is_in_scaled_units():
    X, y = _far_data(n=400)
    Xv, yv = X[300:], y[300:]
    est = NeuralNetRegressor(solver="adamw", hidden_layer_sizes=(8,), max_iter=10,
                             random_state=0).fit(X[:300], y[:300], validation_data=(Xv, yv))
    scaled = (est.predict(Xv) - yv) / est.target_scale_[0]
    assert est.history_.val_loss[-1] == pytest.approx(0.5 * np.mean(scaled ** 2), rel=1e-10)
    assert est.history_.val_score[-1] == pytest.approx(est.score(Xv, yv), rel=1e-12)
    assert est.history_.loss == est.loss_curve_


# -- the first fit's scaling is kept ----------------------------------------------------

def test_partial_fit_keeps_the_first_chunks_scaling():
    X, y = _far_data(n=400)
    est = NeuralNetRegressor(solver="adamw", hidden_layer_sizes=(8,), random_state=0)
    est.partial_fit(X[:200], y[:200])
    offset, scale = est.target_offset_.copy(), est.target_scale_.copy()
    np.testing.assert_allclose(offset, [y[:200].mean()], rtol=1e-13)
    est.partial_fit(X[200:], y[200:] + 500.0)
    np.testing.assert_array_equal(est.target_offset_, offset)
    np.testing.assert_array_equal(est.target_scale_, scale)
    # The second chunk trained on the FIRST chunk's scaling.
    ref = NeuralNetRegressor(solver="adamw", hidden_layer_sizes=(8,), random_state=0,
                             target_scaling=None)
    ref.partial_fit(X[:200], (y[:200] - offset) / scale)
    ref.partial_fit(X[200:], (y[200:] + 500.0 - offset) / scale)
    np.testing.assert_array_equal(est.network_.params, ref.network_.params)


def test_warm_start_keeps_the_first_fits_scaling():
    X, y = _far_data(n=300)
    est = NeuralNetRegressor(solver="adamw", hidden_layer_sizes=(8,), max_iter=5,
                             warm_start=True, random_state=0).fit(X, y)
    scale = est.target_scale_.copy()
    est.set_params(target_scaling=None).fit(X, 3 * y)
    np.testing.assert_array_equal(est.target_scale_, scale)
    cold = NeuralNetRegressor(solver="adamw", hidden_layer_sizes=(8,), max_iter=5,
                              random_state=0).fit(X, 3 * y)
    assert cold.target_scale_[0] == pytest.approx(3 * scale[0], rel=1e-12)


# -- saved, exported ----------------------------------------------------------------------

@pytest.mark.parametrize("n_outputs", [1, 2])
def test_save_load_keeps_the_scaling(tmp_path, n_outputs):
    pytest.importorskip("safetensors", reason="the save extra is not installed")
    X, y = _far_data(n=200, n_outputs=n_outputs)
    est = NeuralNetRegressor(solver="adamw", hidden_layer_sizes=(8,), max_iter=5,
                             random_state=0).fit(X, y)
    bpcore.save(est, tmp_path / "m.bpcore")
    back = bpcore.load(tmp_path / "m.bpcore")
    np.testing.assert_array_equal(back.target_offset_, est.target_offset_)
    np.testing.assert_array_equal(back.target_scale_, est.target_scale_)
    np.testing.assert_array_equal(back.predict(X), est.predict(X))
    assert back.get_params() == est.get_params()


@pytest.mark.parametrize("edit, message", [
    (lambda e: setattr(e, "target_scale_", -e.target_scale_), "target_scale_ must be positive"),
    (lambda e: setattr(e, "target_scale_", np.r_[e.target_scale_, 1.0]),
     r"target_scale_ must be a finite float64 array of shape \(n_outputs_,\) = \(1,\)"),
    (lambda e: setattr(e, "target_offset_", None), "target_offset_ must be"),
    (lambda e: setattr(e, "target_offset_", e.target_offset_.astype(np.float32)),
     "target_offset_ must be .* got an array of dtype float32"),
    (lambda e: setattr(e, "target_offset_", np.array([np.nan])), "target_offset_ must be"),
])
def test_load_refuses_a_damaged_scaling(tmp_path, edit, message):
    pytest.importorskip("safetensors", reason="the save extra is not installed")
    X, y = _far_data(n=100)
    est = NeuralNetRegressor(solver="adamw", hidden_layer_sizes=(4,), max_iter=2,
                             random_state=0).fit(X, y)
    edit(est)       # bpcore.save stores what it is given; load must refuse it
    bpcore.save(est, tmp_path / "bad.bpcore")
    with pytest.raises(ValueError, match="invalid bpcore file: .*" + message):
        bpcore.load(tmp_path / "bad.bpcore")


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("kw", [dict(n_outputs=1), dict(n_outputs=3),
                                dict(n_outputs=1, loss="poisson")])
def test_onnx_graph_includes_the_scaling(dtype, kw):
    ort = pytest.importorskip("onnxruntime", reason="the onnx extra is not installed")
    import bpcore.onnx  # noqa: F401  (registers the skl2onnx converters)
    import skl2onnx
    n_outputs, loss = kw["n_outputs"], kw.get("loss", "squared_error")
    X, y = _far_data(n=200, n_outputs=n_outputs)
    if loss == "poisson":
        y = np.abs(y)
    X = X.astype(dtype)
    est = NeuralNetRegressor(loss=loss, target_scaling="standard", batch_norm=True,
                             hidden_layer_sizes=(8, 8), max_iter=5, random_state=0).fit(X, y)
    expected = est.predict(X).reshape(len(X), -1)
    tol = dict(rtol=1e-5, atol=1e-5 * np.abs(expected).max()) if dtype == np.float32 else \
        dict(rtol=1e-12, atol=1e-12 * np.abs(expected).max())
    for model in (bpcore.to_onnx(est, X), skl2onnx.to_onnx(est, X[:1])):
        sess = ort.InferenceSession(model.SerializeToString(),
                                    providers=["CPUExecutionProvider"])
        out, = sess.run(None, {sess.get_inputs()[0].name: X})
        assert out.shape == (len(X), n_outputs)
        np.testing.assert_allclose(out, expected, **tol)


# -- the scores, small -------------------------------------------------------------

def test_toolbox_recipe_learns_a_far_target():
    """The recipe on a target of mean 1000 and sd 10: scaled, it fits; as
    scikit-learn's default MLP and the unscaled recipe, it does not."""
    X, y = _far_data(n=800, seed=2)
    Xt, yt, Xv, yv = X[:600], y[:600], X[600:], y[600:]
    recipe = dict(hidden_layer_sizes=(64, 64), batch_norm=True, dropout=0.2, solver="adamw",
                  learning_rate="cosine", batch_size=128, max_iter=100, early_stopping=True,
                  random_state=0)
    scaled = NeuralNetRegressor(**recipe).fit(Xt, yt)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        raw = NeuralNetRegressor(target_scaling=None, **recipe).fit(Xt, yt)
        sklearn = sk.MLPRegressor(random_state=0).fit(Xt, yt)
    assert scaled.score(Xv, yv) > 0.9
    assert raw.score(Xv, yv) < 0 and sklearn.score(Xv, yv) < 0


def test_scorers_see_y_in_its_units():
    X, y = _far_data(n=400)
    Xv, yv = X[300:], y[300:]
    est = NeuralNetRegressor(solver="adamw", hidden_layer_sizes=(8,), max_iter=5,
                             scoring="neg_mean_absolute_error", random_state=0)
    est.fit(X[:300], y[:300], validation_data=(Xv, yv))
    mae = np.mean(np.abs(est.predict(Xv) - yv))
    assert mae > 1.0        # y's units (sd 10), not the scaled ones
    assert est.history_.val_score[-1] == pytest.approx(-mae, rel=1e-12)


def test_float32_predictions_stay_float32():
    X, y = _far_data(n=200)
    est = NeuralNetRegressor(solver="adamw", hidden_layer_sizes=(8,), max_iter=5,
                             random_state=0).fit(X.astype(np.float32), y)
    pred = est.predict(X.astype(np.float32))
    assert pred.dtype == np.float32
    out = est.network_.forward(X.astype(np.float32)).ravel()
    np.testing.assert_array_equal(
        pred, out * np.float32(est.target_scale_[0]) + np.float32(est.target_offset_[0]))
    assert est.target_scale_.dtype == np.float64
