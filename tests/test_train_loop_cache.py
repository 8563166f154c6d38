"""train() called in a loop: what is reused between calls, and what is not.

Nothing about the inputs is remembered between calls: every call scans X and
Y again (``_kernels.all_in_range``, checked here against NumPy), so data
changed in place since the last call, another array, another dtype or a
view are validated as on a first call and give the same error or the same
result. What is reused is the runner's scratch (``_engine._scratch_pool``),
keyed by plan, dtype, batch size, n and thread limit; results with and
without reuse agree bitwise and with a NumPy minibatch loop.

Also here: small products run on one BLAS thread in inference, in L-BFGS and
in the validation loss, by the epoch's rule (``_engine.blas_threads_pay``).
"""
import gc
import re
import threading
import weakref

import numpy as np
import pytest

import reference as ref
import bpcore
from bpcore import _engine, _kernels
from bpcore import SGD, Adam, Network, train
from bpcore._lbfgs import minimize_lbfgs
from bpcore._validation import csr_input
from conftest import DTYPES, assert_close

threadpoolctl = pytest.importorskip("threadpoolctl")


# ---------------------------------------------------------------------------
# The scan
# ---------------------------------------------------------------------------

def _numpy_in_range(a, lo, hi):
    return bool(np.isfinite(a).all() and (a >= lo).all() and (a <= hi).all())


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(1, 1), (3, 5), (4096, 1), (1, 4097), (70, 131)])
def test_all_in_range_matches_numpy(dtype, shape, rng):
    big = np.finfo(dtype).max
    specials = [np.nan, np.inf, -np.inf, -1e-30, 1.0 + 1e-6, -0.0, 0.0, 1.0, big, -big,
                np.finfo(dtype).smallest_subnormal, -np.finfo(dtype).smallest_subnormal]
    n = shape[0] * shape[1]
    checked = 0
    for value in specials:
        # First, last, a block boundary and a random entry.
        for pos in {0, n - 1, min(4095, n - 1), min(4096, n - 1), int(rng.integers(n))}:
            a = rng.uniform(0.0, 1.0, shape).astype(dtype)
            a.flat[pos] = value
            for lo, hi in ((-np.inf, np.inf), (0.0, 1.0), (0.0, np.inf)):
                expect = _numpy_in_range(a, lo, hi)
                assert _kernels.all_in_range(a, lo, hi) is expect, (value, pos, lo, hi)
                checked += 1
    assert checked >= 36


def test_all_in_range_float32_bounds_beyond_its_range_still_refuse_inf():
    a = np.array([[1.0, np.inf]], dtype=np.float32)
    assert _kernels.all_in_range(a, -1e300, 1e300) is False
    assert _kernels.all_in_range(a[:, :1], -1e300, 1e300) is True
    assert _kernels.all_in_range(np.zeros((0, 3))) is True


# ---------------------------------------------------------------------------
# check_xy: the fast path returns what the full validation returns
# ---------------------------------------------------------------------------

def _net(dtype=np.float64, sizes=(5, 8, 3), loss="log_loss", output="softmax", **kw):
    return Network(list(sizes), activation="tanh", output=output, loss=loss, dtype=dtype,
                   random_state=0, **kw)


def _data(rng, n=37, n_in=5, k=3, dtype=np.float64):
    X = rng.standard_normal((n, n_in)).astype(dtype)
    Y = np.eye(k, dtype=dtype)[rng.integers(0, k, n)]
    return X, Y


def _first_call_error(make_net, X, Y, **kw):
    """The message a fresh network's first call raises on (X, Y)."""
    with pytest.raises((ValueError, TypeError)) as exc:
        train(make_net(), X, Y, optimizer=SGD(0.1), **kw)
    return str(exc.value)


@pytest.mark.parametrize("dtype", DTYPES)
def test_check_xy_fast_path_returns_the_callers_arrays(dtype, rng):
    net = _net(dtype)
    X, Y = _data(rng, dtype=dtype)
    Xc, Yc, sw = net.check_xy(X, Y)
    assert Xc is X and Yc is Y and sw is None


@pytest.mark.parametrize("loss, output, bad, where", [
    ("log_loss", "softmax", np.nan, "X"),
    ("log_loss", "softmax", np.inf, "X"),
    ("log_loss", "softmax", -np.inf, "Y"),
    ("log_loss", "softmax", np.nan, "Y"),
    ("log_loss", "softmax", 2.0, "Y"),          # outside log loss's [0, 1]
    ("log_loss", "softmax", -1e-300, "Y"),
    ("poisson", "exp", -0.5, "Y"),
    ("squared_error", "identity", np.nan, "Y"),
    ("squared_error", "identity", 1e300, "X"),  # too large for float32 only
])
@pytest.mark.parametrize("dtype", DTYPES)
def test_in_place_change_between_calls_is_caught_as_on_a_first_call(loss, output, bad, where,
                                                                      dtype, rng):
    k = 3
    X, Y = _data(rng, dtype=dtype)
    if loss == "poisson":
        Y = rng.poisson(1.0, (X.shape[0], k)).astype(dtype)
    elif loss == "squared_error":
        Y = rng.standard_normal((X.shape[0], k)).astype(dtype)

    def make():
        return _net(dtype, loss=loss, output=output)

    net, opt = make(), Adam(1e-2)
    for _ in range(2):
        train(net, X, Y, optimizer=opt, epochs=1, batch_size=8, random_state=0)
    params, state, t = net.params.copy(), opt.state.copy(), opt.t
    target = X if where == "X" else Y
    with np.errstate(over="ignore"):
        target[5, 1] = bad                       # in place, same object
    if np.isfinite(target[5, 1]) and _kernels.all_in_range(
            target, *{"log_loss": (0, 1), "poisson": (0, np.inf)}.get(loss, (-np.inf, np.inf))):
        # 1e300 fits float64: no error on a first call either, and none here.
        train(net, X, Y, optimizer=opt, epochs=1, batch_size=8, random_state=0)
        return
    expected = _first_call_error(make, X, Y, batch_size=8)
    with pytest.raises(ValueError, match=re.escape(expected)):
        train(net, X, Y, optimizer=opt, epochs=1, batch_size=8, random_state=0)
    # Refused before any work: nothing trained, the optimizer untouched.
    np.testing.assert_array_equal(net.params, params)
    np.testing.assert_array_equal(opt.state, state)
    assert opt.t == t


def test_nan_written_through_the_base_of_a_view_is_caught(rng):
    X, Y = _data(rng, n=60)
    net, opt = _net(), SGD(0.1)
    view = X[10:50]                              # C-contiguous view: the fast path
    train(net, view, Y[10:50], optimizer=opt, epochs=1, batch_size=8, random_state=0)
    X[20, 0] = np.nan                            # through the base, not the view
    expected = _first_call_error(_net, view, Y[10:50], batch_size=8)
    assert "NaN" in expected
    with pytest.raises(ValueError, match=re.escape(expected)):
        train(net, view, Y[10:50], optimizer=opt, epochs=1, batch_size=8, random_state=0)
    strided = X[::2]                             # not contiguous: copied, then checked
    X[20, 0] = 0.5
    train(net, strided, Y[::2], optimizer=opt, epochs=1, batch_size=8, random_state=0)
    X[22, 3] = np.inf
    with pytest.raises(ValueError, match=re.escape(
            _first_call_error(_net, X[::2], Y[::2], batch_size=8))):
        train(net, strided, Y[::2], optimizer=opt, epochs=1, batch_size=8, random_state=0)


def test_other_dtype_after_fast_calls_is_converted_and_checked(rng):
    X, Y = _data(rng)
    net, opt = _net(), SGD(0.1)
    train(net, X, Y, optimizer=opt, epochs=1, random_state=0)
    X32 = X.astype(np.float32)
    X32[3, 3] = np.nan
    with pytest.raises(ValueError, match=re.escape(_first_call_error(_net, X32, Y))):
        train(net, X32, Y, optimizer=opt, epochs=1, random_state=0)
    Xi = np.rint(X * 10).astype(np.int64)          # integers: converted to float64
    before = net.params.copy()
    train(net, Xi, Y, optimizer=opt, epochs=1, shuffle=False)
    twin = _net()
    twin.params = before
    train(twin, Xi.astype(np.float64), Y, optimizer=SGD(0.1), epochs=1, shuffle=False)
    np.testing.assert_array_equal(net.params, twin.params)


# ---------------------------------------------------------------------------
# Scratch reuse: same results as without, reused only when it fits
# ---------------------------------------------------------------------------

def _pooled(net):
    entry = _engine._scratch_pool.get(net)
    return None if entry is None else entry[1]


def _call_sequence(rng_seed, reuse, dtype=np.float64):
    """A loop of train calls whose inputs change in every way the brief names;
    ``reuse=False`` drops the pooled scratch before every call. Returns the
    parameters after each call and the scratch objects the calls left."""
    rng = np.random.default_rng(rng_seed)
    X, Y = _data(rng, n=45, dtype=dtype)
    X2, _ = _data(rng, n=45, dtype=dtype)
    net, opt = _net(dtype), Adam(1e-2)
    rs = np.random.RandomState(3)
    out, pooled = [], []
    calls = [
        dict(X=X, Y=Y), dict(X=X, Y=Y),                   # same arrays
        dict(X="mutate", Y=Y),                             # same object, new values
        dict(X=X2, Y=Y),                                   # another array, same shape
        dict(X="view", Y="view"),                          # a contiguous view (fewer rows)
        dict(X="strided", Y="strided"),                    # a strided view (copied)
        dict(X="f32", Y=Y),                                # another dtype (converted)
        dict(X=X, Y=Y, batch_size=16),                     # another batch size
        dict(X=X, Y=Y, epochs=3),                          # several epochs in one call
        dict(X=X, Y=Y),
    ]
    for c in calls:
        if not reuse:
            _engine.forget_scratch(net)
        Xc, Yc = c["X"], c["Y"]
        if Xc == "mutate" if isinstance(Xc, str) else False:
            X *= 0.5
            Xc = X
        elif isinstance(Xc, str) and Xc == "view":
            Xc, Yc = X[5:40], Y[5:40]
        elif isinstance(Xc, str) and Xc == "strided":
            Xc, Yc = X[::2], Y[::2]
        elif isinstance(Xc, str) and Xc == "f32":
            Xc = X.astype(np.float32)
        train(net, Xc, Yc, optimizer=opt, epochs=c.get("epochs", 1),
              batch_size=c.get("batch_size", 8), random_state=rs, alpha=1e-3)
        out.append(net.params.copy())
        pooled.append(_pooled(net))
    return out, pooled


@pytest.mark.parametrize("dtype", DTYPES)
def test_reused_scratch_gives_bitwise_the_results_of_fresh_scratch(dtype):
    with_reuse, pooled = _call_sequence(7, True, dtype)
    without, _ = _call_sequence(7, False, dtype)
    for a, b in zip(with_reuse, without):
        np.testing.assert_array_equal(a, b)
    # The calls really reused (else this test could not fail) ...
    assert pooled[0] is pooled[1] is pooled[2] is pooled[3]
    # ... and did not where the scratch does not fit: other row counts (the
    # views), another batch size (16, then 8 again).
    assert pooled[4] is not pooled[3] and pooled[5] is not pooled[4]
    assert pooled[7] is not pooled[6] and pooled[8] is not pooled[7]
    assert pooled[9] is pooled[8]


def test_loop_of_calls_matches_numpy_minibatch_loop(rng):
    # SGD without momentum has no state, so every call is the NumPy loop's
    # epoch from the parameters the previous call left.
    sizes, n, bs, lr, alpha = [5, 8, 3], 45, 8, 0.1, 1e-3
    X, Y = _data(rng, n=n)
    X2, _ = _data(rng, n=n)
    net = _net()
    rs_ref = np.random.RandomState(11)
    rs = np.random.RandomState(11)
    for Xc, Yc in [(X, Y), (X, Y), (X2, Y), (X[3:30], Y[3:30]), (X[::2], Y[::2]), (X, Y)]:
        coefs0 = [c.copy() for c in net.coefs]
        inter0 = [b.copy() for b in net.intercepts]
        order = _engine.reshuffle(np.arange(Xc.shape[0]), rs_ref)
        _, rc, rb = ref.train_loop(coefs0, inter0, ["tanh", "softmax"], "log_loss", Xc, Yc,
                                   optimizer="sgd", hyper=dict(learning_rate=lr),
                                   orders=[order], batch_size=bs, alpha=alpha)
        train(net, Xc, Yc, optimizer=SGD(lr), epochs=1, batch_size=bs, random_state=rs,
              alpha=alpha)
        assert_close(net.params, ref.flatten(rc, rb), np.float64, rtol=1e-11, scale=1.0)


def test_changed_architecture_does_not_reuse_scratch(rng):
    X, Y = _data(rng)
    net = _net(loss="squared_error", output="identity")
    train(net, X, Y, optimizer=SGD(0.1), epochs=1, random_state=0)
    first = _pooled(net)
    old_layout = net.layout
    net._use_sklearn_gradient()                  # a new plan for the same network
    assert net.layout is not old_layout
    twin = _net(loss="squared_error", output="identity")
    twin.params = net.params
    twin._use_sklearn_gradient()
    train(net, X, Y, optimizer=SGD(0.1), epochs=1, random_state=1)
    train(twin, X, Y, optimizer=SGD(0.1), epochs=1, random_state=1)
    assert _pooled(net) is not first
    np.testing.assert_array_equal(net.params, twin.params)
    other = _net(sizes=(5, 9, 3))                # another network: its own entry
    train(other, X, Y, optimizer=SGD(0.1), epochs=1, random_state=0)
    assert _pooled(other) is not _pooled(net)


def test_thread_limit_change_does_not_reuse_scratch(rng):
    X, Y = _data(rng, n=300)
    net = Network([5, 64, 3], output="softmax", loss="log_loss", random_state=0)
    with threadpoolctl.threadpool_limits(1):
        train(net, X, Y, optimizer=SGD(0.1), epochs=1, batch_size=100, random_state=0)
        one = _pooled(net)
    with threadpoolctl.threadpool_limits(2):
        if _engine._threads.thread_limit() < 2:
            pytest.skip("one CPU: no second thread limit to switch to")
        train(net, X, Y, optimizer=SGD(0.1), epochs=1, batch_size=100, random_state=0)
        assert _pooled(net) is not one
        assert _pooled(net).grad.shape[0] == 2


def test_divergence_restores_the_right_parameters_with_reused_scratch(rng):
    X, Y = _data(rng, n=64)
    results = []
    for reuse in (True, False):
        net = _net(loss="squared_error", output="identity")
        Yr = rng.standard_normal((64, 3)) * 0 + Y
        train(net, X, Yr, optimizer=SGD(0.01), epochs=2, batch_size=8, random_state=0)
        if not reuse:
            _engine.forget_scratch(net)
        start = net.params.copy()
        with pytest.raises(bpcore.DivergenceError) as exc:
            train(net, X * 1e150, Yr, optimizer=SGD(1e10), epochs=4, batch_size=8,
                  random_state=0)
        results.append((str(exc.value), net.params.copy(), start))
    (m1, p1, s1), (m2, p2, s2) = results
    assert m1 == m2
    np.testing.assert_array_equal(p1, p2)
    assert np.isfinite(p1).all()


def test_divergence_in_a_later_epoch_falls_back_to_the_fit_start():
    # Weights that explode over several epochs of finite losses: the start of
    # the diverging epoch is itself unusable, so the fit's start comes back.
    X = np.linspace(-1, 1, 40).reshape(-1, 1)
    Y = 3 * X
    net = Network([1, 4, 1], activation="identity", random_state=0)
    train(net, X, Y, optimizer=SGD(0.01), epochs=1, batch_size=4, random_state=0)
    start = net.params.copy()
    with pytest.raises(bpcore.DivergenceError, match="start of (this fit|that epoch)") as exc:
        train(net, X, Y, optimizer=SGD(3.0), epochs=200, batch_size=40, shuffle=False)
    if "this fit" in str(exc.value):
        np.testing.assert_array_equal(net.params, start)
    assert np.isfinite(net.params).all()


def test_released_runner_refuses_to_run(rng):
    X, Y = _data(rng)
    net = _net()
    runner = _engine.EpochRunner(net, SGD(0.1), X, Y, None, 8)
    runner.run()
    runner.release()
    with pytest.raises(RuntimeError, match="released"):
        runner.run()
    # The next runner of this network takes over the scratch.
    again = _engine.EpochRunner(net, SGD(0.1), X, Y, None, 8)
    assert _pooled(net) is None and again.grad is not None


def test_pool_does_not_keep_a_network_alive(rng):
    X, Y = _data(rng)
    net = _net()
    train(net, X, Y, optimizer=SGD(0.1), epochs=1)
    ref_net = weakref.ref(net)
    assert ref_net() in _engine._scratch_pool
    del net
    gc.collect()
    assert ref_net() is None


def test_concurrent_fits_of_two_networks_do_not_share_scratch(rng):
    X, Y = _data(rng, n=200)
    nets = [_net(), _net()]
    expected = []
    for _ in range(2):
        twin = _net()
        for _ in range(5):
            _engine.forget_scratch(twin)
            train(twin, X, Y, optimizer=SGD(0.1), epochs=1, batch_size=8, random_state=0)
        expected.append(twin.params.copy())
    errors = []

    def fit(net):
        try:
            for _ in range(5):
                train(net, X, Y, optimizer=SGD(0.1), epochs=1, batch_size=8, random_state=0)
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=fit, args=(n,)) for n in nets]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    for net, exp in zip(nets, expected):
        np.testing.assert_array_equal(net.params, exp)


# ---------------------------------------------------------------------------
# One BLAS thread for small products: inference, L-BFGS, validation loss
# ---------------------------------------------------------------------------

def _kernel_blas_threads():
    info = _engine._scipy_blas_info(threadpoolctl.threadpool_info())
    return None if info is None else info["num_threads"]


@pytest.fixture
def two_blas_threads():
    """BLAS on two threads for the test (skipped where it cannot be)."""
    with threadpoolctl.threadpool_limits(limits=2, user_api="blas"):
        if _kernel_blas_threads() != 2:
            pytest.skip("the kernels' BLAS cannot run two threads here "
                        f"(threadpoolctl reports {_kernel_blas_threads()})")
        yield


def _spy(monkeypatch, name):
    seen = []
    real = getattr(_kernels, name)

    def spy(*args, **kwargs):
        seen.append(_kernel_blas_threads())
        return real(*args, **kwargs)

    monkeypatch.setattr(_kernels, name, spy)
    return seen


def _spy_forward_threads(monkeypatch):
    """(BLAS threads, n_threads argument) of every inference kernel call:
    ``_kernels.forward``, or ``_kernels.infer`` (the short path), both with
    ``n_threads`` as their eighth argument."""
    seen = []
    for name in ("forward", "infer"):
        real = getattr(_kernels, name)

        def spy(*args, _real=real, **kwargs):
            seen.append((_kernel_blas_threads(), args[7] if len(args) > 7 else 1))
            return _real(*args, **kwargs)

        monkeypatch.setattr(_kernels, name, spy)
    return seen


@pytest.mark.parametrize("n_rows, sizes, ours", [
    (44, [64, 100, 10], 1),                      # 44 x 7,400 MACs: one thread
    (135, [64, 128, 128, 10], 2),                # 3.5 M MACs: 4 chunks of 34 rows
    (4000, [64, 256, 256, 10], 2),               # 16 chunks of 250 rows, 84k MACs/row
])
def test_forward_splits_rows_among_our_threads_not_blas(n_rows, sizes, ours, two_blas_threads,
                                                        monkeypatch, rng):
    if _engine._threads.thread_limit() < 2:
        pytest.skip("one CPU")
    net = Network(sizes, output="softmax", loss="log_loss", random_state=0)
    X = rng.standard_normal((n_rows, sizes[0]))
    seen = _spy_forward_threads(monkeypatch)
    out = net.forward(X)
    assert seen == [(1, ours)]                   # BLAS's threads are never woken
    assert _kernel_blas_threads() == 2           # restored
    with threadpoolctl.threadpool_limits(1):
        one = net.forward(X)
    assert seen[-1] == (1, 1)
    np.testing.assert_array_equal(out, one)      # rows do not interact
    _, acts = ref.network_forward(net.coefs, net.intercepts,
                                  ["relu"] * (len(sizes) - 2) + ["softmax"], X)
    assert_close(out, acts[-1], np.float64)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", [{}, {"batch_norm": True, "residual": True}])
@pytest.mark.parametrize("sparse", [False, True])
@pytest.mark.parametrize("n_rows, chunk", [(1, 1), (7, 2), (300, 64), (301, 100)])
def test_forward_kernel_is_bitwise_the_same_on_any_thread_count(dtype, case, sparse, n_rows,
                                                                chunk, rng):
    import scipy.sparse as sps
    net = Network([12, 9, 9, 3], output="softmax", loss="log_loss", random_state=1,
                  dtype=dtype, **case)
    if case:
        ref.perturb_bn(net, rng)
    X = rng.standard_normal((n_rows, 12)).astype(dtype)
    X[X < 0.3] = 0
    inp = csr_input(sps.csr_matrix(X), dtype) if sparse else X
    outs = []
    for n_threads in (1, 2, 3):
        out = np.empty((n_rows, 3), dtype=dtype)
        work = np.empty(n_threads * net.layout.inference_workspace_size(chunk), dtype=dtype)
        _kernels.forward(net.layout, net.params, inp, out, work, chunk, net.buffers, n_threads)
        outs.append(out)
    np.testing.assert_array_equal(outs[0], outs[1])
    np.testing.assert_array_equal(outs[0], outs[2])
    n_threads, rows = _engine.inference_plan(net.layout, n_rows, net._block_rows(n_rows))
    if rows == chunk:
        np.testing.assert_array_equal(outs[0], net.forward(sps.csr_matrix(X) if sparse else X))
    with pytest.raises(ValueError, match="workspace too small"):
        _kernels.forward(net.layout, net.params, inp, out, work[:1], chunk, net.buffers, 2)


def test_loss_and_grad_limits_blas_on_small_inputs(two_blas_threads, monkeypatch, rng):
    X, Y = _data(rng, n=100)
    net = _net()
    expected = net.loss_and_grad(X, Y, alpha=1e-4)
    seen = _spy(monkeypatch, "loss_grad")
    loss, grad = net.loss_and_grad(X, Y, alpha=1e-4)
    assert seen == [1] and _kernel_blas_threads() == 2
    assert loss == expected[0]
    np.testing.assert_array_equal(grad, expected[1])


def test_lbfgs_limits_blas_on_small_problems(two_blas_threads, monkeypatch, rng):
    X, Y = _data(rng, n=100)
    results = []
    for limited in (True, False):
        net = _net()
        if not limited:
            monkeypatch.setattr(_engine, "blas_for", lambda macs: _engine.contextlib.nullcontext())
        seen = _spy(monkeypatch, "loss_grad")
        res = minimize_lbfgs(net, X, Y, None, 1e-4, options={"maxiter": 30})
        assert seen and set(seen) == {1 if limited else 2}
        results.append((res.fun, net.params.copy()))
        monkeypatch.undo()
    assert _kernel_blas_threads() == 2
    # The same optimization either way (and a real one).
    assert results[0][0] == pytest.approx(results[1][0], rel=1e-10)
    np.testing.assert_allclose(results[0][1], results[1][1], rtol=1e-8, atol=1e-10)
    assert results[0][0] < _net().loss_and_grad(X, Y, alpha=1e-4)[0]


def test_validation_loss_limits_blas_on_small_sets(two_blas_threads, monkeypatch, rng):
    X, Y = _data(rng, n=100)
    seen = _spy(monkeypatch, "loss_value")
    h = train(_net(), X, Y, optimizer=SGD(0.1), epochs=2, random_state=0,
              validation_data=(X[:30], Y[:30]))
    assert seen == [1, 1]
    net = _net()
    train(net, X, Y, optimizer=SGD(0.1), epochs=2, random_state=0)
    assert h.val_loss[-1] == pytest.approx(net.loss_and_grad(X[:30], Y[:30])[0], rel=1e-12)


def test_blas_limit_nests_and_overlaps_across_threads(two_blas_threads):
    # threadpoolctl's own limit restores what it found on entry: overlapping
    # limits from two threads could leave BLAS on one thread for good. The
    # first context here sets the limit and the last one restores it.
    a, b = _engine._single_threaded_blas(), _engine._single_threaded_blas()
    a.__enter__()
    assert _kernel_blas_threads() == 1
    done = threading.Event()

    def other():
        with _engine._single_threaded_blas():
            assert _kernel_blas_threads() == 1
            done.wait(5)

    t = threading.Thread(target=other)
    t.start()
    b.__enter__()
    a.__exit__(None, None, None)                 # first in, first out: still limited
    assert _kernel_blas_threads() == 1
    done.set()
    t.join()
    assert _kernel_blas_threads() == 1
    b.__exit__(None, None, None)
    assert _kernel_blas_threads() == 2


def test_between_epochs_blas_stays_on_the_epochs_threading(two_blas_threads, monkeypatch):
    # A forward pass large enough for BLAS threads on its own (135 rows of
    # 64-128-128-10 is 3.5 M multiply-adds), run by scikit-learn's early
    # stopping between epochs that our own threads split: it runs on one
    # BLAS thread, as the epochs do. (With two, OpenBLAS's threads kept
    # spinning into the next epoch: 10.8 ms per epoch instead of 2.8.)
    from sklearn.datasets import load_digits
    from bpcore import MLPClassifier
    X, y = load_digits(return_X_y=True)
    X = X / 16.0
    est = MLPClassifier(hidden_layer_sizes=(128, 128), max_iter=3, early_stopping=True,
                        random_state=0)
    rows_val = int(np.ceil(0.1 * X.shape[0]))
    macs = rows_val * (64 * 128 + 128 * 128 + 128 * 10)
    assert _engine.blas_threads_pay(macs)        # alone, it would take two
    if _engine._threads.thread_limit() < 2:
        pytest.skip("one CPU: the epochs run on BLAS's threads")
    epochs = _spy(monkeypatch, "train_epoch")
    forwards = _spy(monkeypatch, "forward")
    short = _spy(monkeypatch, "infer")          # the validation set is an array: short path
    with pytest.warns(Warning):                  # 3 epochs do not converge
        est.fit(X, y)
    assert epochs == [1, 1, 1]
    assert forwards + short == [1, 1, 1]
    assert _kernel_blas_threads() == 2           # restored after the fit
    assert est.predict(X[:rows_val]).shape == (rows_val,)
    assert short[-1] == 1                        # inference never uses BLAS's threads
