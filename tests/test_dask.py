"""bpcore on a real dask cluster (bpcore.dask and the scikit-learn scale-out paths).

One ``distributed.LocalCluster`` (2 worker processes, 1 thread each) serves
the module. Oracles: ``Network.loss_and_grad`` and the in-memory L-BFGS fit
(the drop-in estimators with ``solver="lbfgs"``), scikit-learn's
``LabelBinarizer``, the estimators' own in-memory ``predict``, sequential
``partial_fit`` over the same blocks (for dask-ml's ``Incremental``) and the
same ``GridSearchCV`` run without dask.
"""
import copy
import os
import subprocess
import sys
import warnings

import numpy as np
import pytest

pytest.importorskip("dask", reason="the dask tests need the optional extra: pip install 'bpcore[dask]'")
pytest.importorskip("distributed", reason="the dask tests need dask.distributed: pip install 'bpcore[dask]'")
pytest.importorskip("dask_ml", reason="the dask tests need dask-ml: pip install 'bpcore[dask]'")

import dask.array as da  # noqa: E402
import distributed  # noqa: E402
import joblib  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.model_selection import GridSearchCV  # noqa: E402
from sklearn.preprocessing import LabelBinarizer  # noqa: E402

import bpcore  # noqa: E402
import bpcore.dask as bd  # noqa: E402


@pytest.fixture(scope="module")
def client():
    # The nanny sets OMP_NUM_THREADS=1 (and MKL/OpenBLAS) in THIS process's
    # os.environ before spawning a worker, and leaves it: torch, imported by
    # later test modules, would then pin bpcore's OpenMP to one thread.
    environ = dict(os.environ)
    try:
        with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                      dashboard_address=None) as cluster:
            with distributed.Client(cluster) as c:
                yield c
    finally:
        os.environ.clear()
        os.environ.update(environ)


def _data(n=1200, d=6, seed=0):
    rs = np.random.RandomState(seed)
    X = rs.rand(n, d)
    y = (X[:, 0] + X[:, 1] > 1).astype(int) + (X[:, 2] > 0.7)
    sw = rs.rand(n) + 0.5
    return X, y, sw


def _ragged(a):
    """Uneven row blocks (250, 350, 350, rest) and, for 2-D, two column blocks."""
    rows = (250, 350, 350, a.shape[0] - 950)
    cols = ((3, a.shape[1] - 3),) if a.ndim == 2 else ()
    return da.from_array(a, chunks=(rows,) + cols)


# --------------------------------------------------------- the objective

@pytest.mark.parametrize("broadcast", ["scatter", "tasks"])
@pytest.mark.parametrize("task", ["softmax", "logistic", "regression"])
def test_objective_equals_in_memory_loss_and_grad(client, broadcast, task):
    X, y, sw = _data()
    if task == "softmax":
        net = bpcore.Network([6, 7, 3], output="softmax", loss="log_loss", random_state=1)
        Y = np.eye(3)[y]
    elif task == "logistic":
        net = bpcore.Network([6, 7, 1], output="logistic", loss="log_loss", random_state=1)
        Y = (y > 0).astype(float).reshape(-1, 1)
    else:
        net = bpcore.Network([6, 7, 2], activation="tanh", random_state=1)
        Y = np.c_[X[:, 0] * X[:, 1], X[:, 2]]
    # Y and the weights in memory and in other chunks: re-chunked to X's rows.
    obj = bd.BlockwiseObjective(net, _ragged(X), da.from_array(Y, chunks=(500, 1)), sw,
                                alpha=0.3, l1=0.05, client=client, broadcast=broadcast)
    assert obj.n_blocks == 4
    rs = np.random.RandomState(2)
    for theta in (net.params.copy(), net.params + 0.1 * rs.randn(net.n_params)):
        loss, grad = obj(theta)
        ref = copy.deepcopy(net)
        ref.params[...] = theta
        loss0, grad0 = ref.loss_and_grad(X, Y, alpha=0.3, sample_weight=sw, l1=0.05)
        assert abs(loss - loss0) <= 1e-13 * abs(loss0)
        np.testing.assert_allclose(grad, grad0, rtol=1e-11, atol=1e-14 * np.abs(grad0).max())
    np.testing.assert_allclose(obj.sw_total, sw.sum(), rtol=1e-14)


def test_objective_float32_and_zero_weight_block(client):
    X, y, sw = _data()
    sw[:250] = 0.0  # the whole first block weighs nothing: it must add nothing
    net = bpcore.Network([6, 5, 3], output="softmax", loss="log_loss", dtype="float32",
                         random_state=0)
    Y = np.eye(3)[y]
    loss, grad = bd.BlockwiseObjective(net, _ragged(X), Y, sw, alpha=0.1)(net.params)
    loss0, grad0 = net.loss_and_grad(X, Y, alpha=0.1, sample_weight=sw)
    assert abs(loss - loss0) <= 1e-5 * abs(loss0)
    np.testing.assert_allclose(grad, grad0, rtol=1e-4, atol=1e-6 * np.abs(grad0).max())


def test_weight_mask_follows_coefs():
    net = bpcore.Network([4, 3, 2], random_state=0)
    mask = bd._weight_mask(net)
    assert mask.sum() == 4 * 3 + 3 * 2
    net.params[...] = 0
    for W in net.coefs:
        W[...] = 1
    np.testing.assert_array_equal(mask, net.params == 1)


def _sent_between_workers(client):
    return sum(client.run(lambda dask_worker: dask_worker.transfer_outgoing_bytes_total).values())


def test_blocks_stay_where_they_are_computed(client):
    """X is built on the workers; evaluations move only parameter-sized vectors."""
    def make_block(block_info=None):
        distributed.get_worker()  # raises outside a worker: never built on the client
        loc = block_info[None]["array-location"][0]
        return np.random.RandomState(loc[0]).rand(loc[1] - loc[0], 4)

    X = da.map_blocks(make_block, dtype=float, chunks=((3000,) * 4, (4,)))
    Y = da.from_array(np.arange(12000.0).reshape(-1, 1) / 12000, chunks=(5000, 1))
    net = bpcore.Network([4, 3, 1], random_state=0)
    obj = bd.BlockwiseObjective(net, X, Y, np.ones(12000), client=client)
    obj(net.params)
    sent = _sent_between_workers(client)
    for _ in range(4):
        obj(net.params)
    per_evaluation = (_sent_between_workers(client) - sent) / 4
    vector = 8 * (net.n_params + 2)
    block = 3000 * (4 + 1 + 1) * 8
    # At most: the parameters to each worker, the 4 partial sums, the result.
    assert per_evaluation <= 2 * vector + 4 * vector + vector < block / 10, per_evaluation
    who = client.who_has(obj._blocks)
    assert len(who) == 4
    assert all(len(where) == 1 for where in who.values()), who  # never copied elsewhere


# -------------------------------------------------------------- L-BFGS

def _lbfgs_options(est):
    return {"maxiter": est.max_iter, "maxfun": est.max_fun, "gtol": est.tol}


def test_lbfgs_equals_in_memory_classifier(client):
    X, y, sw = _data()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est = bpcore.MLPClassifier((8,), solver="lbfgs", alpha=1e-2, max_iter=30,
                                   random_state=0).fit(X, y, sample_weight=sw)
    Xd, yd = _ragged(X), da.from_array(y, chunks=300)
    classes = bd.compute_classes(yd)
    Yd = bd.binarize(yd, classes)
    # The estimator's starting point: Network draws scikit-learn's initial weights.
    net = bpcore.Network([6, 8, 3], output="softmax", loss="log_loss", random_state=0)
    result = bd.minimize_lbfgs(net, Xd, Yd, da.from_array(sw, chunks=400), alpha=1e-2,
                               options=_lbfgs_options(est), client=client)
    assert result.nit == est.n_iter_ == 30
    rel = abs(result.fun - est.loss_) / est.loss_
    pred = classes[bd.predict(net, Xd).compute().argmax(axis=1)]
    agree = np.mean(pred == est.predict(X))
    print(f"classifier: final loss {result.fun:.10g} vs {est.loss_:.10g} "
          f"(rel. {rel:.2e}), predictions agree {agree:.4f}")
    assert rel < 1e-5
    assert agree > 0.995
    np.testing.assert_array_equal(net.params, result.x)


def test_lbfgs_equals_in_memory_regressor(client):
    X, _, sw = _data(seed=3)
    y = np.sin(3 * X[:, 0]) + X[:, 1] * X[:, 2]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est = bpcore.MLPRegressor(hidden_layer_sizes=(8,), solver="lbfgs", alpha=1e-2, max_iter=30,
                                  random_state=0).fit(X, y, sample_weight=sw)
    net = bpcore.Network([6, 8, 1], random_state=0)
    result = bd.minimize_lbfgs(net, _ragged(X), da.from_array(y, chunks=300), sw,
                               alpha=1e-2, options=_lbfgs_options(est))
    rel = abs(result.fun - est.loss_) / est.loss_
    pred = bd.predict(net, _ragged(X)).compute().ravel()
    close = np.mean(np.isclose(pred, est.predict(X), rtol=1e-6, atol=1e-9))
    print(f"regressor: final loss {result.fun:.10g} vs {est.loss_:.10g} "
          f"(rel. {rel:.2e}), predictions equal to 1e-6: {close:.4f}")
    assert rel < 1e-5
    assert close > 0.995


# ---------------------------------------------------------------- errors

def test_batch_norm_and_dropout_networks_are_refused(client):
    X, y, _ = _data(n=100)
    Xd, Y = da.from_array(X, chunks=50), np.eye(3)[y]
    bn = bpcore.Network([6, 4, 3], output="softmax", loss="log_loss", batch_norm=[True],
                        random_state=0)
    with pytest.raises(ValueError, match="does not train batch-normalized networks"):
        bd.minimize_lbfgs(bn, Xd, Y)
    drop = bpcore.Network([6, 4, 3], output="softmax", loss="log_loss", dropout=0.1,
                          random_state=0)
    with pytest.raises(ValueError, match="dropout is defined by minibatch training"):
        bd.BlockwiseObjective(drop, Xd, Y)
    plain = bpcore.Network([6, 4, 3], output="softmax", loss="log_loss", batch_norm=[False],
                           dropout=0.0, random_state=0)
    bd.BlockwiseObjective(plain, Xd, Y)  # accepted


def test_bad_inputs_say_how_to_fix(client):
    X, y, _ = _data(n=100)
    net = bpcore.Network([6, 4, 3], output="softmax", loss="log_loss", random_state=0)
    Xd = da.from_array(X, chunks=50)
    with pytest.raises(TypeError, match="X must be a dask array, got ndarray"):
        bd.minimize_lbfgs(net, X, np.eye(3)[y])
    with pytest.raises(ValueError, match=r"encode class labels with bpcore.dask.binarize"):
        bd.minimize_lbfgs(net, Xd, y)
    with pytest.raises(ValueError, match=r"X has 100 rows but Y has shape \(99, 3\)"):
        bd.minimize_lbfgs(net, Xd, np.eye(3)[y][:99])
    with pytest.raises(ValueError, match="X has 6 columns, the network expects 5"):
        bd.minimize_lbfgs(bpcore.Network([5, 3]), Xd, np.eye(3)[y])
    unknown = Xd[Xd[:, 0] > 2]
    with pytest.raises(ValueError, match=r"unknown row-chunk sizes .*compute_chunk_sizes"):
        bd.minimize_lbfgs(net, unknown, np.eye(3)[y])
    with pytest.raises(ValueError, match="broadcast must be 'scatter' or 'tasks'"):
        bd.BlockwiseObjective(net, Xd, np.eye(3)[y], broadcast="tree")
    with pytest.raises(ValueError, match="sample_weight sums to zero"):
        bd.minimize_lbfgs(net, Xd, np.eye(3)[y], np.zeros(100))


# ---------------------------------------------------------------- labels

@pytest.mark.parametrize("labels", [np.array(["no", "yes"]), np.array([3, 1, 7, 5])])
def test_classes_and_binarize_equal_label_binarizer(client, labels):
    y = np.random.RandomState(0).choice(labels, 500)
    yd = da.from_array(y, chunks=120)
    classes = bd.compute_classes(yd)
    np.testing.assert_array_equal(classes, np.unique(y))
    Yd = bd.binarize(yd, classes)
    assert isinstance(Yd, da.Array) and Yd.chunks[0] == yd.chunks[0]
    np.testing.assert_array_equal(Yd.compute(), LabelBinarizer().fit(y).transform(y))


def test_compute_classes_refuses_indicator_matrix():
    with pytest.raises(ValueError, match="already binarized"):
        bd.compute_classes(da.zeros((10, 3), chunks=5))


# ------------------------------------------------------------ prediction

def test_blockwise_prediction_equals_in_memory(client):
    X, y, _ = _data()
    Xd = _ragged(X)
    clf = bpcore.MLPClassifier((5,), max_iter=20, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(X, np.array(["a", "b", "c"])[y])
        reg = bpcore.MLPRegressor(hidden_layer_sizes=(5,), max_iter=20, random_state=0).fit(X, X[:, :2])
    cases = [(bd.predict(clf, Xd), clf.predict(X)),
             (bd.predict_proba(clf, Xd), clf.predict_proba(X)),
             (bd.predict(reg, Xd), reg.predict(X))]
    for lazy, expected in cases:
        assert isinstance(lazy, da.Array)
        assert lazy.chunks[0] == Xd.chunks[0]
        assert lazy.shape == expected.shape and lazy.dtype == expected.dtype
        np.testing.assert_array_equal(lazy.compute(), expected)
    net = bpcore.Network([6, 4, 3], output="softmax", loss="log_loss", random_state=0)
    np.testing.assert_array_equal(bd.predict_proba(net, Xd).compute(), net.forward(X))
    with pytest.raises(ValueError, match="needs a softmax or logistic output"):
        bd.predict_proba(bpcore.Network([6, 2]), Xd)
    with pytest.raises(ValueError, match="X has 4 columns, the model expects 6"):
        bd.predict(clf, Xd[:, :4])


# ------------------------------------------- the scikit-learn scale-out paths

def test_incremental_equals_sequential_partial_fit(client):
    from dask_ml.wrappers import Incremental

    X, y, _ = _data()
    Xd, yd = da.from_array(X, chunks=(300, 6)), da.from_array(y, chunks=300)
    inc = Incremental(bpcore.MLPClassifier((10,), random_state=0), scoring="accuracy",
                      shuffle_blocks=False)
    inc.fit(Xd, yd, classes=[0, 1, 2])
    oracle = bpcore.MLPClassifier((10,), random_state=0)
    for start in range(0, 1200, 300):
        oracle.partial_fit(X[start:start + 300], y[start:start + 300], classes=[0, 1, 2])
    for a, b in zip(inc.estimator_.coefs_ + inc.estimator_.intercepts_,
                    oracle.coefs_ + oracle.intercepts_):
        np.testing.assert_array_equal(a, b)
    assert inc.score(Xd, yd) == pytest.approx(np.mean(oracle.predict(X) == y), abs=1e-12)
    assert isinstance(inc.predict(Xd), da.Array)


def test_gridsearch_on_joblib_dask_backend(client):
    X, y, _ = _data(n=600)
    grid = {"alpha": [1e-4, 1e-1], "hidden_layer_sizes": [(4,), (8,)]}

    def search():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            return GridSearchCV(bpcore.MLPClassifier(max_iter=30, random_state=0), grid,
                                cv=3).fit(X, y)

    local = search()
    with distributed.get_task_stream(client) as stream, joblib.parallel_backend("dask"):
        remote = search()
    # The 4 x 3 fits ran as tasks (joblib batches them) on both workers.
    assert len({task["worker"] for task in stream.data}) == 2
    np.testing.assert_array_equal(remote.cv_results_["mean_test_score"],
                                  local.cv_results_["mean_test_score"])
    assert remote.best_params_ == local.best_params_


def test_bpcore_threads_follow_the_worker(client):
    """1 worker thread -> 1 OpenMP thread for bpcore and 1 BLAS thread: no oversubscription."""
    in_task = client.submit(bd._worker_threads, pure=False).result()
    per_worker = client.run(bd._worker_threads)
    for info in [in_task, *per_worker.values()]:
        assert info["bpcore_max_threads"] == 1, info
        assert info["threadpools"], info
        assert all(p["num_threads"] == 1 for p in info["threadpools"]), info
    assert len(per_worker) == 2
    assert {w["nthreads"] for w in client.scheduler_info()["workers"].values()} == {1}


def test_missing_extra_names_it():
    """Without dask installed, importing bpcore.dask says which extra to install."""
    code = ("import sys; sys.modules['distributed'] = None\n"
            "try:\n    import bpcore.dask\nexcept ImportError as e:\n    print(e)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert "pip install 'bpcore[dask]'" in out, out


def test_lbfgs_with_l1_equals_in_memory_lbfgs(client):
    from bpcore._lbfgs import minimize_lbfgs as in_memory

    X, _, sw = _data(seed=4)
    Y = np.c_[np.sin(3 * X[:, 0]), X[:, 1] * X[:, 2]]
    options = {"maxiter": 40, "gtol": 1e-6}
    ref = bpcore.Network([6, 8, 2], activation="tanh", random_state=0)
    net = copy.deepcopy(ref)
    r0 = in_memory(ref, X, Y, sw, 1e-3, options=options, l1=1e-3)
    r = bd.minimize_lbfgs(net, _ragged(X), Y, sw, alpha=1e-3, l1=1e-3, options=options)
    assert r.nit == r0.nit
    assert abs(r.fun - r0.fun) <= 1e-5 * r0.fun
    np.testing.assert_allclose(net.forward(X), ref.forward(X), rtol=1e-4, atol=1e-6)


# ---------------------------------------------------------------- target scaling (issue 28)

def test_lbfgs_scales_the_target_as_in_memory(client):
    X, _, sw = _data(seed=5)
    y = 1000 + 10 * (np.sin(3 * X[:, 0]) + X[:, 1] * X[:, 2])
    kw = dict(hidden_layer_sizes=(8,), solver="lbfgs", alpha=1e-2, max_iter=30,
              target_scaling="standard", random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        mem = bpcore.NeuralNetRegressor(**kw).fit(X, y, sample_weight=sw)
        dsk = bpcore.NeuralNetRegressor(**kw).fit(_ragged(X), da.from_array(y, chunks=300),
                                                  sample_weight=da.from_array(sw, chunks=400))
    np.testing.assert_allclose(dsk.target_offset_, mem.target_offset_, rtol=1e-13)
    np.testing.assert_allclose(dsk.target_scale_, mem.target_scale_, rtol=1e-12)
    assert abs(dsk.loss_ - mem.loss_) <= 1e-5 * mem.loss_
    pred = bd.predict(dsk, _ragged(X)).compute()
    np.testing.assert_allclose(pred, mem.predict(X), rtol=1e-5)


def test_incremental_keeps_the_first_blocks_target_scaling(client):
    from dask_ml.wrappers import Incremental

    X, _, _ = _data()
    y = 1000 + 10 * (X[:, 0] - X[:, 1] + np.arange(len(X)) / len(X))
    kw = dict(hidden_layer_sizes=(10,), solver="adamw", random_state=0)
    inc = Incremental(bpcore.NeuralNetRegressor(**kw), scoring="r2", shuffle_blocks=False)
    inc.fit(da.from_array(X, chunks=(300, 6)), da.from_array(y, chunks=300))
    oracle = bpcore.NeuralNetRegressor(**kw)
    for start in range(0, 1200, 300):
        oracle.partial_fit(X[start:start + 300], y[start:start + 300])
    np.testing.assert_allclose(oracle.target_offset_, [y[:300].mean()], rtol=1e-13)
    np.testing.assert_array_equal(inc.estimator_.target_offset_, oracle.target_offset_)
    np.testing.assert_array_equal(inc.estimator_.target_scale_, oracle.target_scale_)
    np.testing.assert_array_equal(inc.estimator_.network_.params, oracle.network_.params)
