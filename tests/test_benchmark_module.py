"""bpcore.benchmark: compare() and python -m bpcore.benchmark.

No speed is asserted (the machine is shared): the tests check that the
result's fields are sane, that every contender trains the same problem
(loss and initial weights against bpcore's own), and the error messages.
"""
import importlib.util
import json
import subprocess
import sys

import numpy as np
import pytest

import bpcore
from bpcore.benchmark import ComparisonResult, compare, main, synthetic_data
from bpcore.benchmark.contenders import JaxEpoch, Task, TorchEpoch
from bpcore.benchmark.timing import paired_ratio, summarize

HAVE_TORCH = importlib.util.find_spec("torch") is not None
HAVE_JAX = (importlib.util.find_spec("jax") is not None
            and importlib.util.find_spec("optax") is not None)
needs_torch = pytest.mark.skipif(not HAVE_TORCH, reason="torch not installed (bench extra)")
needs_jax = pytest.mark.skipif(not HAVE_JAX, reason="jax/optax not installed (bench extra)")

TINY = dict(hidden_layer_sizes=(16,), n_samples=300, n_features=8, n_classes=3,
            epochs=1, rounds=2, progress=False)


def _check_rows(result, libraries, dtype):
    assert [r["library"] for r in result.rows] == list(libraries)
    for r in result.rows:
        assert r["error"] is None, r["error"]
        assert r["dtype"] == dtype
        assert len(r["times"]) == result.config["rounds"]
        assert all(t > 0 for t in r["times"])
        assert r["min"] <= r["seconds_per_epoch"] <= r["max"]
        assert 0.0 <= r["score"] <= 1.0
        if r["library"] == "bpcore":
            assert r["vs_bpcore"] is None
        else:
            assert r["vs_bpcore"] == pytest.approx(
                float(np.median([a / b for a, b in zip(r["times"], result.rows[0]["times"])])))


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_compare_bpcore_sklearn(dtype):
    result = compare(contenders=("bpcore", "sklearn"), dtype=dtype, **TINY)
    assert isinstance(result, ComparisonResult)
    _check_rows(result, ["bpcore", "sklearn"], dtype)
    assert result.config["layers"] == [8, 16, 3]
    assert result.config["n_train"] + result.config["n_test"] == 300
    # The synthetic labelling is learnable: a few epochs beat chance (1/3).
    assert result.row("bpcore")["score"] > 0.4
    text = str(result)
    assert "bpcore f" in text and "sklearn f" in text and "vs bpcore" in text
    data = json.loads(json.dumps(result.as_dict()))
    assert data["rows"][1]["library"] == "sklearn"


@pytest.mark.skipif(not (HAVE_TORCH and HAVE_JAX), reason="needs torch and jax (bench extra)")
def test_compare_every_contender_float32():
    result = compare(dtype="float32", **{**TINY, "rounds": 1})
    _check_rows(result, ["bpcore", "sklearn", "torch", "jax"], "float32")
    assert result.row("jax")["extra"]["compile_seconds"] > 0


def test_compare_on_user_data_with_string_labels():
    from sklearn.datasets import load_iris
    X, y = load_iris(return_X_y=True)
    labels = np.array(["setosa", "versicolor", "virginica"])[y]
    result = compare(X, labels, hidden_layer_sizes=(8,), batch_size=16, epochs=2, rounds=1,
                     contenders=("bpcore", "sklearn"), progress=False)
    _check_rows(result, ["bpcore", "sklearn"], "float64")
    assert result.config["data"] == "user"
    assert result.config["layers"] == [4, 8, 3]
    assert result.config["n_test"] == 30


def test_missing_contender_is_skipped_with_a_note(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)  # `import torch` raises ImportError
    result = compare(contenders=("bpcore", "torch"), **TINY)
    assert [r["library"] for r in result.rows] == ["bpcore"]
    assert any("torch skipped" in n and "pip install" in n for n in result.notes)
    assert "torch skipped" in str(result)


def test_progress_bar_silent_without_tqdm(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "tqdm", None)
    monkeypatch.setitem(sys.modules, "tqdm.auto", None)
    compare(contenders=("bpcore",), **{**TINY, "progress": True})
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""


@pytest.mark.skipif(importlib.util.find_spec("tqdm") is None, reason="tqdm not installed")
def test_progress_bar_with_tqdm(capsys):
    compare(contenders=("bpcore",), **{**TINY, "progress": True})
    assert "bpcore.benchmark" in capsys.readouterr().err


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(hidden_layer_sizes=()), ValueError, "at least one hidden layer"),
    (dict(hidden_layer_sizes=(16, 0)), ValueError, "every hidden layer size must be >= 1"),
    (dict(hidden_layer_sizes="big"), TypeError, "every hidden layer size must be an int"),
    (dict(batch_size=0), ValueError, "batch_size must be >= 1, got 0"),
    (dict(epochs=1.5), TypeError, "epochs must be an int"),
    (dict(rounds=0), ValueError, "rounds must be >= 1"),
    (dict(dtype="float16"), ValueError, "dtype must be 'float64' or 'float32'"),
    (dict(contenders=("bpcore", "mxnet")), ValueError, r"unknown contender\(s\) \['mxnet'\]"),
    (dict(contenders=("sklearn",)), ValueError, "must include 'bpcore'"),
    (dict(test_size=1.0), ValueError, "test_size must be a fraction"),
    (dict(learning_rate=0.0), ValueError, "learning_rate must be a finite number > 0"),
    (dict(n_classes=1), ValueError, "n_classes must be >= 2"),
])
def test_compare_rejects_bad_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        compare(**{**TINY, **kwargs})


def test_compare_rejects_bad_data():
    X = np.random.default_rng(0).standard_normal((50, 3))
    with pytest.raises(ValueError, match="X was given without y"):
        compare(X, progress=False)
    with pytest.raises(ValueError, match="y was given without X"):
        compare(y=np.zeros(50), progress=False)
    with pytest.raises(ValueError, match="y must hold class labels, got a 'continuous'"):
        compare(X, X[:, 0], progress=False)


def _tiny_task(dtype="float64", batch_size=32):
    X, y = synthetic_data(200, 5, 3, random_state=1)
    X = X.astype(dtype)
    return Task(X[:160], y[:160], X[160:], y[160:], 3, (7,), batch_size)


@needs_jax
def test_jax_loss_is_bpcore_loss():
    """One full-batch JAX epoch reports the loss at the initial weights, which
    must be bpcore's loss (cross-entropy + 0.5 alpha sum W^2 / n) for the same
    initial weights and rows."""
    task = _tiny_task(batch_size=1000)
    jx = JaxEpoch(task, measure_threads=False)
    jx.run(0)
    net = bpcore.Network(task.layer_units(), activation="relu", output="softmax",
                         loss="log_loss", dtype="float64", random_state=task.seed)
    loss, _ = net.loss_and_grad(task.X_train, task.Y_train, alpha=task.alpha)
    assert float(jx.loss) == pytest.approx(loss, rel=1e-12)


@needs_jax
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_jax_keeps_its_dtype_and_trains(dtype):
    task = _tiny_task(dtype)
    jx = JaxEpoch(task, epochs_per_run=3, measure_threads=False)
    before = jx.score()
    jx.run(0)
    assert all(W.dtype == np.dtype(dtype) for W, _ in jx.params)
    assert jx.extra()["compile_seconds"] > 0
    assert jx.score() >= before - 0.05  # training does not wreck it (3 epochs)


@needs_torch
def test_torch_starts_from_bpcore_weights():
    task = _tiny_task()
    tc = TorchEpoch(task)
    net = bpcore.Network(task.layer_units(), activation="relu", output="softmax",
                         loss="log_loss", dtype="float64", random_state=task.seed)
    import torch
    with torch.inference_mode():
        P = torch.softmax(tc.model(torch.from_numpy(task.X_test)), 1).numpy()
    np.testing.assert_allclose(P, net.forward(task.X_test), rtol=1e-12, atol=1e-15)


@needs_jax
def test_xla_runs_on_one_thread():
    """threads=1 starts XLA's pool pinned to one CPU (in a fresh process, as
    XLA starts once): one thread does the JAX work, per /proc/self/task."""
    code = ("from bpcore.benchmark import compare\n"
            "r = compare(hidden_layer_sizes=(64,), n_samples=4000, n_features=32, epochs=1,"
            " rounds=1, contenders=('bpcore', 'jax'), progress=False)\n"
            "print(r.row('jax')['extra']['busy_threads'])\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "1"


def test_cli_runs_and_prints_the_table():
    out = subprocess.run([sys.executable, "-m", "bpcore.benchmark", "--layers", "8", "16",
                          "3", "--epochs", "1", "--rounds", "1"],
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    assert "8 -> (16,) -> 3 classes" in out.stdout
    assert "bpcore f64" in out.stdout and "sklearn f64" in out.stdout


def test_cli_writes_json(tmp_path, capsys):
    path = tmp_path / "r.json"
    status = main(["--layers", "6", "5", "4", "2", "--dtype", "float32", "--epochs", "1",
                   "--rounds", "1", "--samples", "200", "--contenders", "bpcore", "sklearn",
                   "--no-progress", "--json", str(path)])
    assert status == 0
    out = capsys.readouterr()
    assert "6 -> (5, 4) -> 2 classes (one logistic output unit)" in out.out and out.err == ""
    data = json.loads(path.read_text())
    assert data["config"]["layers"] == [6, 5, 4, 2]
    assert [r["dtype"] for r in data["rows"]] == ["float32", "float32"]


@pytest.mark.parametrize("args, match", [
    (["--layers", "8", "3"], "at least three sizes"),
    (["--layers", "8", "0", "3"], "must be at least 1, got 0"),
    (["--layers", "8", "x", "3"], "expected a whole number, got 'x'"),
    (["--layers", "8", "4", "1"], "the last size is the number of classes"),
    (["--layers", "8", "4", "3", "--dtype", "float16"], "invalid choice: 'float16'"),
    (["--layers", "8", "4", "3", "--contenders", "sklearn"], "must include bpcore"),
])
def test_cli_rejects_bad_arguments(args, match, capsys):
    with pytest.raises(SystemExit) as exc:
        main(args)
    assert exc.value.code == 2
    assert match in capsys.readouterr().err


@pytest.mark.parametrize("where, match", [
    ("missing/dir/x.json", "does not exist; create it first"),
    (".", "is a directory; give a file name"),
])
def test_cli_checks_the_json_path_before_running(where, match, tmp_path, capsys,
                                                 monkeypatch):
    """Issue #27, defect 10: a bad --json path ran the whole benchmark, then
    died with a traceback."""
    import bpcore.benchmark as cli

    def not_run(**kwargs):
        raise AssertionError("the benchmark ran before the --json path was checked")

    monkeypatch.setattr(cli, "compare", not_run)
    with pytest.raises(SystemExit) as exc:
        main(["--layers", "8", "4", "3", "--json", str(tmp_path / where)])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert f"--json {tmp_path / where}: " in err and match in err, err


def test_timing_helpers():
    assert summarize([]) == {"median": None, "min": None, "max": None}
    assert paired_ratio([1.0, 6.0, 3.0], [1.0, 2.0, 1.0]) == 3.0
    assert paired_ratio([], []) is None


def test_cli_default_shape_is_w1():
    """No arguments runs a default: W1's 64 -> (100,) -> 10."""
    from bpcore.benchmark import DEFAULT_LAYERS, _parser
    args = _parser().parse_args([])
    assert args.layers == [64, 100, 10] == list(DEFAULT_LAYERS)


def test_binary_problem_trains_the_same_network_everywhere():
    """Two classes: every contender trains scikit-learn's network for them,
    one logistic output unit, from the same initial weights."""
    from bpcore.benchmark.contenders import BpcoreEpoch, SklearnEpoch
    X, y = synthetic_data(200, 5, 2, random_state=1)
    task = Task(X[:160], y[:160], X[160:], y[160:], 2, (7,), 32)
    assert task.layer_units() == [5, 7, 1] and task.Y_train.shape == (160, 1)
    bp, sk = BpcoreEpoch(task), SklearnEpoch(task)
    sk.run(0)  # partial_fit builds the network: check its first weights
    assert sk.clf.n_outputs_ == 1 and sk.clf.out_activation_ == "logistic"
    assert bp.net.layer_sizes == (5, 7, 1) and bp.net.output == "logistic"
    coefs, _ = task.initial_weights()
    np.testing.assert_array_equal(bp.net.coefs[1], coefs[1])
    bp.run(0)
    assert set(np.unique(bp.predict_codes(task.X_test))) <= {0, 1}
    result = compare(X, y, hidden_layer_sizes=(7,), epochs=1, rounds=1,
                     contenders=("bpcore", "sklearn"), progress=False)
    assert result.config["layers"] == [5, 7, 2] and result.config["output"] == "logistic"
    assert "2 classes (one logistic output unit)" in str(result)
    if HAVE_TORCH:
        import torch
        tc = TorchEpoch(task)
        with torch.inference_mode():
            p = torch.sigmoid(tc.model(torch.from_numpy(task.X_test))).numpy()
        fresh = bpcore.Network([5, 7, 1], output="logistic", loss="log_loss", random_state=0)
        np.testing.assert_allclose(p, fresh.forward(task.X_test), rtol=1e-12)
        tc.run(0)
        assert set(np.unique(tc.predict_codes(task.X_test))) <= {0, 1}
    if HAVE_JAX:
        jx = JaxEpoch(Task(X[:160], y[:160], X[160:], y[160:], 2, (7,), 1000),
                      measure_threads=False)
        jx.run(0)
        net = bpcore.Network([5, 7, 1], output="logistic", loss="log_loss", random_state=0)
        loss, _ = net.loss_and_grad(task.X_train, task.Y_train, alpha=task.alpha)
        assert float(jx.loss) == pytest.approx(loss, rel=1e-12)
