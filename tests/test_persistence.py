"""bpcore.save / bpcore.load: round trips, resumed training, refusals and a fuzz.

Oracle: the saved object itself. A loaded object must predict bitwise the
same, hold bitwise the same parameters, buffers and optimizer state, and
resume training exactly as the original. The fuzz truncates a saved model at
every offset and mutates it at random; each load runs in a subprocess (many
per process, a crash shows as a failure) and must either be refused with a
ValueError or load an object identical to the original.

``BPCORE_FUZZ_MUTATIONS`` sets the number of mutations (2,000 by default).
"""
import json
import os
import pickle
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.datasets import make_classification, make_regression
from sklearn.exceptions import ConvergenceWarning

import bpcore
from bpcore import persistence
from bpcore.activations import HIDDEN_ACTIVATIONS

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

DTYPES = ["float32", "float64"]


def _roundtrip(obj, tmp_path, name="model.bpcore"):
    path = tmp_path / name
    bpcore.save(obj, path)
    return bpcore.load(path)


def _same(a, b, where="value"):
    """Bitwise equality of decoded values (arrays: dtype, shape and bytes)."""
    if isinstance(a, np.ndarray):
        assert isinstance(b, np.ndarray) and a.dtype == b.dtype and a.shape == b.shape, where
        if a.dtype.kind == "O":
            assert a.tolist() == b.tolist() and all(
                type(x) is type(y) for x, y in zip(a.ravel(), b.ravel())), where
        else:
            assert a.tobytes() == b.tobytes(), where
    elif isinstance(a, (list, tuple)):
        assert type(a) is type(b) and len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            _same(x, y, f"{where}[{i}]")
    elif isinstance(a, dict):
        assert isinstance(b, dict) and set(a) == set(b), where
        for k in a:
            _same(a[k], b[k], f"{where}[{k!r}]")
    elif isinstance(a, float) and np.isnan(a):
        assert isinstance(b, float) and np.isnan(b), where
    elif isinstance(a, np.random.RandomState):
        sa, sb = a.get_state(), b.get_state()
        assert sa[0] == sb[0] and (sa[1] == sb[1]).all() and sa[2:] == sb[2:], where
    elif isinstance(a, bpcore.Network):
        _same_network(a, b)
    elif isinstance(a, bpcore.Optimizer):
        assert type(a) is type(b) and repr(a) == repr(b), where
        assert a.t == b.t and a._config.mu_product == b._config.mu_product, where
        _same(a.state, b.state, f"{where}.state")
    elif hasattr(a, "get_config") and hasattr(a, "state_dict"):        # a schedule
        assert type(a) is type(b) and a.get_config() == b.get_config(), where
        _same(a.__dict__, b.__dict__, where)
    elif type(a).__name__ in ("LabelBinarizer", "History", "LBFGS"):
        assert type(a) is type(b), where
        _same(a.__dict__, b.__dict__, where)
    else:
        assert type(a) is type(b) and a == b, f"{where}: {a!r} != {b!r}"


def _same_network(a, b):
    assert a.get_config() == b.get_config()
    assert a.params.dtype == b.params.dtype
    assert a.params.tobytes() == b.params.tobytes()
    assert a.buffers.tobytes() == b.buffers.tobytes()
    assert getattr(a, "_sklearn_gradient", False) == getattr(b, "_sklearn_gradient", False)


def _same_estimator(a, b):
    assert type(a) is type(b)
    assert repr(a.get_params()) == repr(b.get_params())
    assert set(a.__dict__) == set(b.__dict__)
    for key, value in a.__dict__.items():
        if key in ("coefs_", "intercepts_"):
            views = getattr(b._net, key[:-1])
            assert all(x is y for x, y in zip(getattr(b, key), views)), key
        _same(value, b.__dict__[key], key)


# -- networks --------------------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("activation", list(HIDDEN_ACTIVATIONS))
def test_network_roundtrip_every_activation_and_layer_kind(activation, dtype, tmp_path):
    rng = np.random.default_rng(0)
    net = bpcore.Network([5, 7, 7, 6, 3], activation=activation, output="softmax",
                         loss="log_loss", batch_norm=[True, False, True],
                         dropout=[0.2, 0.0, 0.1], residual=[False, True, False],
                         init="he_normal", dtype=dtype, random_state=0)
    net.buffers[...] = rng.random(net.buffers.shape) + 0.5      # non-trivial running stats
    net.params[...] = rng.standard_normal(net.params.shape)
    back = _roundtrip(net, tmp_path)
    _same_network(net, back)
    X = rng.standard_normal((20, 5)).astype(dtype)
    assert back.forward(X).tobytes() == net.forward(X).tobytes()
    Y = np.eye(3)[rng.integers(0, 3, 20)]
    assert back.loss_and_grad(X, Y, training=True, seed=3)[1].tobytes() == \
        net.loss_and_grad(X, Y, training=True, seed=3)[1].tobytes()


@pytest.mark.parametrize("output, loss", [("identity", "squared_error"), ("exp", "poisson"),
                                          ("logistic", "log_loss"), ("tanh", "absolute_error"),
                                          ("identity", "huber")])
def test_network_roundtrip_every_output_and_loss(output, loss, tmp_path):
    net = bpcore.Network([3, 4, 2], output=output, loss=loss, huber_delta=0.5,
                         activation=["selu"], random_state=1)
    back = _roundtrip(net, tmp_path)
    _same_network(net, back)
    assert back.huber_delta == 0.5 and back.activation == ["selu"]
    X = np.linspace(-1, 1, 12).reshape(4, 3)
    assert back.forward(X).tobytes() == net.forward(X).tobytes()


def test_network_trained_with_the_sklearn_gradient_keeps_it(tmp_path):
    net = bpcore.Network([3, 4, 2], random_state=0)._use_sklearn_gradient()
    back = _roundtrip(net, tmp_path)
    assert back._sklearn_gradient is True
    X, Y = np.ones((3, 3)), np.zeros((3, 2))
    assert back.loss_and_grad(X, Y)[1].tobytes() == net.loss_and_grad(X, Y)[1].tobytes()


# -- estimators --------------------------------------------------------------------

def _clf_data(kind, dtype="float64", sparse=False):
    X, y = make_classification(n_samples=80, n_features=6, n_informative=4, n_classes=3,
                               random_state=0)
    X = X.astype(dtype)
    if kind == "binary":
        y = y % 2
    elif kind == "str":
        y = np.array(["cat", "dog", "émeu"])[y]
    elif kind == "object":
        y = np.array(["cat", "dog", "emu"], dtype=object)[y]
    elif kind == "bool":
        y = (y % 2).astype(bool)
    elif kind == "float":
        y = y + 10.0
    elif kind == "multilabel":
        y = np.stack([y == 0, y == 1, y != 1], axis=1).astype(int)
    if sparse:
        X[np.abs(X) < 0.8] = 0
        X = sp.csr_matrix(X)
    return X, y


CLASSIFIER_CASES = [
    ("multiclass", "adam", {}), ("binary", "sgd", {"momentum": 0.5}),
    ("str", "lbfgs", {}), ("object", "adam", {"early_stopping": True}),
    ("bool", "sgd", {"learning_rate": "invscaling"}), ("float", "adam", {}),
    ("multilabel", "adam", {}), ("binary", "sgd", {"learning_rate": "adaptive"}),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind, solver, extra", CLASSIFIER_CASES)
def test_classifier_roundtrip(kind, solver, extra, dtype, tmp_path):
    X, y = _clf_data(kind, dtype)
    clf = bpcore.MLPClassifier((7, 5), solver=solver, max_iter=30, random_state=0,
                               activation="tanh", **extra).fit(X, y)
    back = _roundtrip(clf, tmp_path)
    _same_estimator(clf, back)
    assert back.predict_proba(X).tobytes() == clf.predict_proba(X).tobytes()
    pred, pred_back = clf.predict(X), back.predict(X)
    assert pred_back.dtype == pred.dtype and (pred_back == pred).all()
    assert back.score(X, y) == clf.score(X, y)


@pytest.mark.parametrize("kind", ["binary", "multilabel"])
def test_sparse_fitted_classifier_roundtrip(kind, tmp_path):
    X, y = _clf_data(kind, sparse=True)
    clf = bpcore.MLPClassifier((6,), max_iter=20, random_state=0).fit(X, y)
    back = _roundtrip(clf, tmp_path)
    _same_estimator(clf, back)
    assert back.predict_proba(X).tobytes() == clf.predict_proba(X).tobytes()


REGRESSOR_CASES = [
    ("squared_error", 1, "adam", {}), ("squared_error", 3, "sgd", {"nesterovs_momentum": False}),
    ("poisson", 2, "adam", {}), ("squared_error", 2, "lbfgs", {}),
    ("squared_error", 1, "adam", {"early_stopping": True, "random_state": 3}),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("loss, n_outputs, solver, extra", REGRESSOR_CASES)
def test_regressor_roundtrip(loss, n_outputs, solver, extra, dtype, tmp_path):
    X, y = make_regression(n_samples=60, n_features=5, n_targets=n_outputs, random_state=0)
    X = X.astype(dtype)
    if loss == "poisson":
        y = np.abs(y) / 50
    params = dict(dict(hidden_layer_sizes=(6,), solver=solver, max_iter=25, random_state=0,
                       activation="logistic"), **extra)
    reg = bpcore.MLPRegressor(loss=loss, **params).fit(X, y)
    back = _roundtrip(reg, tmp_path)
    _same_estimator(reg, back)
    assert back.predict(X).tobytes() == reg.predict(X).tobytes()
    assert back.predict(X).shape == reg.predict(X).shape


@pytest.mark.parametrize("cls", [bpcore.MLPClassifier, bpcore.MLPRegressor])
def test_unfitted_estimator_roundtrip(cls, tmp_path):
    est = cls(hidden_layer_sizes=[3, 4], alpha=1e-3, batch_size=16, random_state=7,
              beta_2=0.99, tol=float("inf"))
    back = _roundtrip(est, tmp_path)
    assert back.__dict__.keys() == est.__dict__.keys()
    assert repr(back.get_params()) == repr(est.get_params())
    assert isinstance(back.hidden_layer_sizes, list)


def test_random_state_instance_parameter_roundtrip(tmp_path):
    X, y = _clf_data("binary")
    clf = bpcore.MLPClassifier((4,), max_iter=5, random_state=np.random.RandomState(3))
    clf.fit(X, y)
    back = _roundtrip(clf, tmp_path)
    _same(clf.random_state, back.random_state)
    clf.partial_fit(X, y)
    back.partial_fit(X, y)
    assert back._net.params.tobytes() == clf._net.params.tobytes()


@pytest.mark.parametrize("solver", ["adam", "sgd"])
def test_loaded_estimator_resumes_partial_fit_exactly(solver, tmp_path):
    X, y = _clf_data("multiclass")
    clf = bpcore.MLPClassifier((8,), solver=solver, random_state=0, learning_rate_init=0.01)
    clf.partial_fit(X[:40], y[:40], classes=np.unique(y))
    back = _roundtrip(clf, tmp_path)
    for _ in range(3):
        clf.partial_fit(X[40:], y[40:])
        back.partial_fit(X[40:], y[40:])
    _same_estimator(clf, back)
    assert back._optimizer.t == clf._optimizer.t > 0


@pytest.mark.parametrize("schedule", ["cosine", "linear"])
def test_schedule_that_reached_zero_saves_and_loads(schedule, tmp_path):
    # A schedule may end at a rate of 0 (cosine annealing to eta_min=0,
    # LinearLR to end_factor=0): the optimizer then holds lr 0, which the
    # file stores and the loader must take (it refused it: "learning_rate
    # must be in (0.0, inf]"; found by the forged-file fuzz's nightly run).
    from bpcore.schedules import CosineAnnealingLR, LinearLR
    sched = (CosineAnnealingLR(T_max=4) if schedule == "cosine"
             else LinearLR(start_factor=1.0, end_factor=0.0, total_iters=4))
    X, y = _clf_data("multiclass")
    clf = bpcore.NeuralNetClassifier((8,), learning_rate=sched, max_iter=4, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(X, y)
    clf.partial_fit(X, y)
    assert clf._optimizer.learning_rate == 0.0
    back = _roundtrip(clf, tmp_path)
    assert back._optimizer.learning_rate == 0.0
    for est in (clf, back):
        est.partial_fit(X, y)
    assert back._net.params.tobytes() == clf._net.params.tobytes()
    assert back.history_.loss == clf.history_.loss
    assert back.predict_proba(X).tobytes() == clf.predict_proba(X).tobytes()


def test_loaded_estimator_warm_start_fit_matches(tmp_path):
    X, y = make_regression(n_samples=50, n_features=4, random_state=1)
    reg = bpcore.MLPRegressor(hidden_layer_sizes=(5,), max_iter=10, warm_start=True,
                              random_state=0).fit(X, y)
    back = _roundtrip(reg, tmp_path)
    reg.fit(X, y)
    back.fit(X, y)
    assert back.predict(X).tobytes() == reg.predict(X).tobytes()
    assert back.loss_curve_ == reg.loss_curve_


def test_user_assigned_coefs_are_saved(tmp_path):
    X, y = _clf_data("binary")
    clf = bpcore.MLPClassifier((4,), max_iter=5, random_state=0).fit(X, y)
    clf.coefs_ = [np.full_like(c, 0.1) for c in clf.coefs_]
    back = _roundtrip(clf, tmp_path)
    assert all((c == 0.1).all() for c in back.coefs_)
    assert back.predict_proba(X).tobytes() == clf.predict_proba(X).tobytes()


def test_pickle_still_works():
    X, y = _clf_data("str")
    clf = bpcore.MLPClassifier((5,), max_iter=10, random_state=0).fit(X, y)
    back = pickle.loads(pickle.dumps(clf))
    assert back.predict_proba(X).tobytes() == clf.predict_proba(X).tobytes()


#: What skops.io needs to be told to trust for bpcore's estimators (docs/saving.md).
SKOPS_TRUSTED = [
    "bpcore.estimators.MLPClassifier", "bpcore.estimators.MLPRegressor",
    "bpcore.network.Network", "bpcore.optimizers.Adam", "bpcore.optimizers.SGD",
    "bpcore.schedules.SklearnSchedule", "numpy.dtype",
    "sklearn.preprocessing._label.LabelBinarizer",
]


@pytest.mark.parametrize("solver", ["adam", "sgd", "lbfgs"])
def test_skops_roundtrip_with_explicit_trusted_types(solver, tmp_path):
    sio = pytest.importorskip("skops.io", reason="skops is not installed")
    X, y = _clf_data("str")
    clf = bpcore.MLPClassifier((5,), solver=solver, max_iter=10, random_state=0).fit(X, y)
    data = sio.dumps(clf)
    untrusted = set(sio.get_untrusted_types(data=data))
    assert untrusted <= set(SKOPS_TRUSTED), sorted(untrusted - set(SKOPS_TRUSTED))
    back = sio.loads(data, trusted=sorted(untrusted))
    assert back.predict_proba(X).tobytes() == clf.predict_proba(X).tobytes()
    reg = bpcore.MLPRegressor(hidden_layer_sizes=(4,), solver=solver, max_iter=10,
                              random_state=0).fit(X, X[:, :2])
    data = sio.dumps(reg)
    untrusted = set(sio.get_untrusted_types(data=data))
    assert untrusted <= set(SKOPS_TRUSTED)
    assert sio.loads(data, trusted=sorted(untrusted)).predict(X).tobytes() == \
        reg.predict(X).tobytes()


# -- what cannot be stored, and hostile files ----------------------------------------

def test_save_refuses_labels_it_cannot_store_safely(tmp_path):
    X, _ = _clf_data("binary")
    y = np.array([(1, 2), "a"], dtype=object)[np.arange(len(X)) % 2]
    clf = bpcore.MLPClassifier((3,), max_iter=3, random_state=0)
    clf.fit(X, [str(v) for v in y])
    clf.classes_ = np.array([(1, 2), "a"], dtype=object)
    with pytest.raises(ValueError, match=r"classes_ holds values of type tuple.*cannot "
                                         r"store safely.*pickle/skops"):
        bpcore.save(clf, tmp_path / "m.bpcore")
    assert not (tmp_path / "m.bpcore").exists()


def test_save_refuses_other_objects(tmp_path):
    from sklearn.neural_network import MLPClassifier
    with pytest.raises(TypeError, match="bpcore.save takes a bpcore Network or one of"):
        bpcore.save(MLPClassifier(), tmp_path / "m.bpcore")
    with pytest.raises(ValueError, match="parameter random_state is a .*Generator.*cannot "
                                         "store safely"):
        bpcore.save(bpcore.MLPClassifier(random_state=np.random.default_rng(0)),
                    tmp_path / "m.bpcore")


def _rewrite(path, edit, out):
    """Re-save ``path`` with its content JSON changed by ``edit``, checksum recomputed:
    what a hostile author (who can compute SHA-256) would write."""
    import safetensors.numpy as stn
    data = path.read_bytes()
    tensors, metadata = persistence._read(data)
    content = json.loads(metadata["content"])
    edit(content, tensors)
    content = json.dumps(content)
    metadata = dict(metadata, content=content,
                    sha256=persistence._digest(content, tensors))
    out.write_bytes(stn.save(tensors, metadata=metadata))
    return out


@pytest.fixture
def saved_classifier(tmp_path):
    X, y = _clf_data("str")
    clf = bpcore.MLPClassifier((4,), max_iter=5, random_state=0).fit(X, y)
    bpcore.save(clf, tmp_path / "clf.bpcore")
    return tmp_path / "clf.bpcore"


def _set(*keys, value):
    def edit(content, tensors):
        d = content["object"]
        for k in keys[:-1]:
            d = d[k]
        d[keys[-1]] = value
    return edit


@pytest.mark.parametrize("edit, message", [
    (_set("estimator", value="os.system"), "unknown estimator class 'os.system'"),
    (_set("estimator", value="Network"), "unknown estimator class 'Network'"),
    (_set("attributes", "__class__", value="x"), "invalid attribute name '__class__'"),
    (_set("attributes", "_optimizer", "optimizer", "class", value="subprocess.Popen"),
     "unknown optimizer class 'subprocess.Popen'"),
    (_set("attributes", "_schedule", "schedule", 0, value="builtins.eval"),
     "unknown schedule 'builtins.eval'"),
    (_set("attributes", "_net", "network", "config", "dict", 0, 1,
          value=[1_000_000, 1_000_000, 1_000_000]),
     r"needs \d+ parameters .* but the file stores"),
    (_set("attributes", "n_iter_", value={"pickle": "cos\nsystem"}), "unknown value tag 'pickle'"),
    (_set("params", "solver", value={"array": "t999"}), "missing tensor 't999'"),
    (_set("params", "bogus", value=1), r"unknown MLPClassifier parameters \['bogus'\]"),
])
def test_hostile_content_with_a_valid_checksum_is_refused(saved_classifier, edit, message):
    bad = _rewrite(saved_classifier, edit, saved_classifier.with_name("bad.bpcore"))
    with pytest.raises(ValueError, match="invalid bpcore file: .*" + message):
        bpcore.load(bad)


def test_deeply_nested_content_is_refused(saved_classifier):
    def edit(content, tensors):
        content["object"]["attributes"]["n_iter_"] = "DEEP"
    bad = saved_classifier.with_name("deep.bpcore")
    import safetensors.numpy as stn
    tensors, metadata = persistence._read(saved_classifier.read_bytes())
    content = metadata["content"].replace('"n_iter_":5', '"n_iter_":' + "[" * 100_000
                                          + "]" * 100_000)
    assert content != metadata["content"]
    bad.write_bytes(stn.save(tensors, metadata=dict(
        metadata, content=content, sha256=persistence._digest(content, tensors))))
    with pytest.raises(ValueError, match="invalid bpcore file"):
        bpcore.load(bad)


def test_altered_file_gives_checksum_error(saved_classifier):
    data = bytearray(saved_classifier.read_bytes())
    data[-3] ^= 0x10                                     # a parameter byte
    saved_classifier.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="checksum mismatch: the bpcore file is corrupted "
                                         "or was altered"):
        bpcore.load(saved_classifier)


def test_truncated_file_and_foreign_files(saved_classifier, tmp_path):
    import safetensors.numpy as stn
    data = saved_classifier.read_bytes()
    saved_classifier.write_bytes(data[:len(data) // 2])
    with pytest.raises(ValueError, match="truncated"):
        bpcore.load(saved_classifier)
    plain = tmp_path / "plain.safetensors"
    plain.write_bytes(stn.save({"a": np.zeros(3)}))
    with pytest.raises(ValueError, match="not a bpcore file: the safetensors metadata has "
                                         "no 'format': 'bpcore'"):
        bpcore.load(plain)
    pkl = tmp_path / "model.pkl"
    pkl.write_bytes(pickle.dumps(bpcore.MLPClassifier()))
    with pytest.raises(ValueError, match="not a bpcore file"):
        bpcore.load(pkl)


def test_newer_format_version_is_refused(saved_classifier, tmp_path):
    import safetensors.numpy as stn
    tensors, metadata = persistence._read(saved_classifier.read_bytes())
    newer = tmp_path / "newer.bpcore"
    newer.write_bytes(stn.save(tensors, metadata=dict(metadata, format_version="2")))
    with pytest.raises(ValueError, match="format version 2; this bpcore reads version 1: "
                                         "upgrade bpcore"):
        bpcore.load(newer)


# -- the fuzz: truncation at every offset, random mutations, each load in a subprocess ---

_WORKER = textwrap.dedent("""
    import sys, numpy as np, bpcore
    from bpcore.persistence import loads
    blob = open(sys.argv[1], "rb").read()
    bounds = np.load(sys.argv[2])
    start = int(sys.argv[3])
    ref = bpcore.load(sys.argv[4])
    X = np.load(sys.argv[5])
    expected = ref.predict_proba(X).tobytes()
    out = sys.stdout
    for i in range(start, len(bounds) - 1):
        data = blob[bounds[i]:bounds[i + 1]]
        try:
            obj = loads(data)
        except ValueError:
            out.write("R")
        except BaseException as exc:
            out.write("E")
        else:
            try:
                same = (type(obj) is type(ref) and obj.predict_proba(X).tobytes() == expected
                        and obj._net.params.tobytes() == ref._net.params.tobytes())
            except BaseException:
                same = False
            out.write("I" if same else "D")
        out.flush()
""")


def _mutations(data, n, rng):
    out = []
    for k in range(n):
        b = bytearray(data)
        kind = k % 4
        if kind == 0:                                    # flip 1-3 bits
            for _ in range(rng.integers(1, 4)):
                pos = rng.integers(len(b))
                b[pos] ^= 1 << int(rng.integers(8))
        elif kind == 1:                                  # insert 1-16 random bytes
            pos = rng.integers(len(b) + 1)
            b[pos:pos] = rng.integers(0, 256, rng.integers(1, 17), dtype=np.uint8).tobytes()
        elif kind == 2:                                  # zero a range
            pos = int(rng.integers(len(b)))
            end = min(len(b), pos + int(rng.integers(1, 65)))
            b[pos:end] = bytes(end - pos)
        else:                                            # in the header: flip a byte there
            n_header = int.from_bytes(data[:8], "little") + 8
            pos = rng.integers(n_header)
            b[pos] = int(rng.integers(256))
        out.append(bytes(b))
    return out


def _run_fuzz(cases, model_path, X, tmp_path):
    """Outcome letters for every case: R refused, I identical, D different,
    E another exception, C crashed the subprocess."""
    blob = tmp_path / "cases.bin"
    bounds = np.cumsum([0] + [len(c) for c in cases])
    blob.write_bytes(b"".join(cases))
    np.save(tmp_path / "bounds.npy", bounds)
    np.save(tmp_path / "X.npy", X)
    script = tmp_path / "worker.py"
    script.write_text(_WORKER)
    results = ""
    while len(results) < len(cases):
        proc = subprocess.run(
            [sys.executable, str(script), str(blob), str(tmp_path / "bounds.npy"),
             str(len(results)), str(model_path), str(tmp_path / "X.npy")],
            capture_output=True, text=True, timeout=600)
        results += proc.stdout
        if proc.returncode != 0 and len(results) < len(cases):
            results += "C"                               # the case at which it died
    return results


def test_fuzz_truncation_and_mutation(tmp_path, capsys):
    X, y = _clf_data("str")
    clf = bpcore.MLPClassifier((4,), activation="relu", max_iter=5, random_state=0).fit(X, y)
    path = tmp_path / "model.bpcore"
    bpcore.save(clf, path)
    data = path.read_bytes()
    n_mut = int(os.environ.get("BPCORE_FUZZ_MUTATIONS", "2000"))
    truncations = [data[:k] for k in range(len(data))]
    mutations = _mutations(data, n_mut, np.random.default_rng(0))
    results = _run_fuzz(truncations + mutations, path, X, tmp_path)
    trunc, mut = results[:len(truncations)], results[len(truncations):]
    summary = (f"bpcore.load fuzz: {len(truncations)} truncations (every offset of a "
               f"{len(data)}-byte file): {trunc.count('R')} refused, {trunc.count('C')} "
               f"crashes; {len(mutations)} mutations: {mut.count('R')} refused, "
               f"{mut.count('I')} loaded identical, {mut.count('D')} loaded different, "
               f"{mut.count('E')} other errors, {mut.count('C')} crashes")
    with capsys.disabled():
        print("\n" + summary)
    assert trunc == "R" * len(truncations), summary
    assert set(mut) <= {"R", "I"}, summary


def test_docstring_examples():
    import doctest
    result = doctest.testmod(persistence, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
