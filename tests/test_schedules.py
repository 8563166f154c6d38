"""bpcore.schedules against torch.optim.lr_scheduler itself.

The oracle is the rate torch's optimizer actually uses
(``optimizer.param_groups[0]["lr"]``) in torch's usual loop: one
``scheduler.step()`` per epoch, or per batch for OneCycleLR. Every schedule of
the SCHEDULES registry must have cases in TORCH_CASES (a new one enrols
itself and fails until it has some).
"""
import json
import warnings

import numpy as np
import pytest

from bpcore import schedules as S

EPOCHS = 30
RTOL = 1e-12
BASE_LRS = [0.1, 0.0372]
TORCH_REASON = "torch==2.13.0 (the optional cross-check) is not installed"

#: Metric sequences for ReduceLROnPlateau: improvements, exact plateaus,
#: improvements below the threshold, a NaN.
PLATEAU_METRICS = [
    [1.0, 0.9, 0.8] + [0.8] * 14 + [0.79995, 0.5, 0.5, 0.5, 0.4] + [0.4] * 8,
    [3.0, 2.0, 2.5, 2.5, 1.9, 1.99, 2.0, 1.5, 1.5, 1.5, 1.5, 1.4999, 1.3, 1.3, 1.3,
     float("nan"), 1.3, 1.3, 1.2, 1.2, 1.2, 1.2, 1.2, 1.1, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0],
]


def _case(name, ours, theirs, id_):
    return pytest.param(name, ours, theirs, id=f"{name}-{id_}")


#: (registry name, our factory, torch factory taking (lr_scheduler, optimizer)).
TORCH_CASES = [
    _case("StepLR", lambda: S.StepLR(3), lambda L, o: L.StepLR(o, 3), "3"),
    _case("StepLR", lambda: S.StepLR(1, gamma=0.9), lambda L, o: L.StepLR(o, 1, gamma=0.9),
          "1-0.9"),
    _case("StepLR", lambda: S.StepLR(7, gamma=1.5), lambda L, o: L.StepLR(o, 7, gamma=1.5),
          "7-1.5"),
    _case("MultiStepLR", lambda: S.MultiStepLR([2, 5, 11]),
          lambda L, o: L.MultiStepLR(o, [2, 5, 11]), "2-5-11"),
    _case("MultiStepLR", lambda: S.MultiStepLR([0, 4, 4, 20], gamma=0.7),
          lambda L, o: L.MultiStepLR(o, [0, 4, 4, 20], gamma=0.7), "repeated"),
    _case("ConstantLR", lambda: S.ConstantLR(), lambda L, o: L.ConstantLR(o), "default"),
    _case("ConstantLR", lambda: S.ConstantLR(0.3, total_iters=13),
          lambda L, o: L.ConstantLR(o, 0.3, total_iters=13), "0.3-13"),
    _case("LinearLR", lambda: S.LinearLR(), lambda L, o: L.LinearLR(o), "default"),
    _case("LinearLR", lambda: S.LinearLR(0.01, 1.0, 17),
          lambda L, o: L.LinearLR(o, 0.01, 1.0, 17), "warmup17"),
    _case("LinearLR", lambda: S.LinearLR(1.0, 0.05, 9),
          lambda L, o: L.LinearLR(o, 1.0, 0.05, 9), "decay"),
    _case("ExponentialLR", lambda: S.ExponentialLR(0.9), lambda L, o: L.ExponentialLR(o, 0.9),
          "0.9"),
    _case("ExponentialLR", lambda: S.ExponentialLR(0.513),
          lambda L, o: L.ExponentialLR(o, 0.513), "0.513"),
    _case("CosineAnnealingLR", lambda: S.CosineAnnealingLR(10),
          lambda L, o: L.CosineAnnealingLR(o, 10), "10"),
    _case("CosineAnnealingLR", lambda: S.CosineAnnealingLR(7, eta_min=0.003),
          lambda L, o: L.CosineAnnealingLR(o, 7, eta_min=0.003), "7-eta"),
    _case("CosineAnnealingLR", lambda: S.CosineAnnealingLR(1, eta_min=0.001),
          lambda L, o: L.CosineAnnealingLR(o, 1, eta_min=0.001), "1-eta"),
    _case("CosineAnnealingWarmRestarts", lambda: S.CosineAnnealingWarmRestarts(3, T_mult=2),
          lambda L, o: L.CosineAnnealingWarmRestarts(o, 3, T_mult=2), "3x2"),
    _case("CosineAnnealingWarmRestarts",
          lambda: S.CosineAnnealingWarmRestarts(2, T_mult=2, eta_min=0.004),
          lambda L, o: L.CosineAnnealingWarmRestarts(o, 2, T_mult=2, eta_min=0.004), "2x2-eta"),
    _case("CosineAnnealingWarmRestarts", lambda: S.CosineAnnealingWarmRestarts(5),
          lambda L, o: L.CosineAnnealingWarmRestarts(o, 5), "5x1"),
    _case("SequentialLR",
          lambda: S.SequentialLR([S.LinearLR(0.1, total_iters=5), S.CosineAnnealingLR(20)], [5]),
          lambda L, o: L.SequentialLR(o, [L.LinearLR(o, 0.1, total_iters=5),
                                          L.CosineAnnealingLR(o, 20)], [5]),
          "warmup-cosine"),
    _case("SequentialLR",
          lambda: S.SequentialLR([S.LinearLR(0.2, total_iters=8),
                                  S.CosineAnnealingLR(6, eta_min=0.002)], [4]),
          lambda L, o: L.SequentialLR(o, [L.LinearLR(o, 0.2, total_iters=8),
                                          L.CosineAnnealingLR(o, 6, eta_min=0.002)], [4]),
          "cut-warmup-cosine"),
    _case("SequentialLR",
          lambda: S.SequentialLR([S.ConstantLR(0.1, 20), S.ExponentialLR(0.9)], [3]),
          lambda L, o: L.SequentialLR(o, [L.ConstantLR(o, 0.1, 20), L.ExponentialLR(o, 0.9)],
                                      [3]),
          "constant-exponential"),
    _case("SequentialLR",
          lambda: S.SequentialLR([S.LinearLR(0.5, total_iters=3), S.StepLR(4, 0.5),
                                  S.CosineAnnealingWarmRestarts(3, T_mult=2)], [3, 11]),
          lambda L, o: L.SequentialLR(o, [L.LinearLR(o, 0.5, total_iters=3), L.StepLR(o, 4, 0.5),
                                          L.CosineAnnealingWarmRestarts(o, 3, T_mult=2)],
                                      [3, 11]),
          "three"),
    _case("SequentialLR",
          lambda: S.SequentialLR([S.ExponentialLR(0.8), S.MultiStepLR([0, 3]),
                                  S.LinearLR(0.5, 0.1, 6)], [2, 9]),
          lambda L, o: L.SequentialLR(o, [L.ExponentialLR(o, 0.8), L.MultiStepLR(o, [0, 3]),
                                          L.LinearLR(o, 0.5, 0.1, 6)], [2, 9]),
          "exp-multistep-linear"),
]
TORCH_CASES += [
    _case("ReduceLROnPlateau", lambda: S.ReduceLROnPlateau(),
          lambda L, o: L.ReduceLROnPlateau(o), "default"),
    _case("ReduceLROnPlateau",
          lambda: S.ReduceLROnPlateau(factor=0.5, patience=2, cooldown=1, min_lr=0.004),
          lambda L, o: L.ReduceLROnPlateau(o, factor=0.5, patience=2, cooldown=1, min_lr=0.004),
          "cooldown"),
    _case("ReduceLROnPlateau",
          lambda: S.ReduceLROnPlateau(factor=0.3, patience=0, threshold=0.05, threshold_mode="abs"),
          lambda L, o: L.ReduceLROnPlateau(o, factor=0.3, patience=0, threshold=0.05,
                                           threshold_mode="abs"), "abs"),
    _case("ReduceLROnPlateau",
          lambda: S.ReduceLROnPlateau(mode="max", factor=0.7, patience=1, threshold=0.1),
          lambda L, o: L.ReduceLROnPlateau(o, mode="max", factor=0.7, patience=1, threshold=0.1),
          "max"),
    _case("ReduceLROnPlateau",
          lambda: S.ReduceLROnPlateau(factor=0.5, patience=1, min_lr=0.0249, eps=0.01),
          lambda L, o: L.ReduceLROnPlateau(o, factor=0.5, patience=1, min_lr=0.0249, eps=0.01),
          "eps"),
]
# OneCycleLR is compared per optimizer step, below.
ONECYCLE_CASES = [
    dict(max_lr=0.1, total_steps=None),
    dict(max_lr=0.3, total_steps=None, anneal_strategy="linear"),
    dict(max_lr=0.05, total_steps=None, three_phase=True, pct_start=0.25),
    dict(max_lr=1.0, total_steps=None, pct_start=0.4, div_factor=10.0, final_div_factor=100.0),
    dict(max_lr=0.2, total_steps="more", three_phase=True, anneal_strategy="linear"),
    dict(max_lr=0.2, total_steps="more", pct_start=0.0),
    dict(max_lr=0.2, total_steps=None, pct_start=1.0),
    dict(max_lr=0.2, total_steps=None, pct_start=0.05, three_phase=True),  # phase ends < 0
]
STEPS_PER_EPOCH = [1, 3, 7, 16]


def _torch():
    return pytest.importorskip("torch", reason=TORCH_REASON)


def _torch_optimizer(torch, lr):
    p = torch.nn.Parameter(torch.zeros(2, dtype=torch.float64))
    p.grad = torch.ones_like(p)
    return torch.optim.SGD([p], lr=lr, momentum=0.9)


def torch_epoch_rates(make_torch, lr, metrics):
    """The rate torch's optimizer uses in each epoch, one step() per epoch."""
    torch = _torch()
    opt = _torch_optimizer(torch, lr)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "step() before optimizer.step()" and the like
        sched = make_torch(torch.optim.lr_scheduler, opt)
        rates = []
        for epoch in range(EPOCHS):
            rates.append(opt.param_groups[0]["lr"])
            opt.step()
            if metrics is None:
                sched.step()
            else:
                sched.step(metrics[epoch])
    return np.array(rates)


def our_epoch_rates(schedule, lr, steps_per_epoch, metrics):
    schedule.bind(lr, steps_per_epoch)
    rates = []
    for epoch in range(EPOCHS):
        r = schedule.epoch_rates(epoch)
        assert r.shape == (steps_per_epoch,) and r.dtype == np.float64
        assert np.all(r == r[0]), "an epoch-counting schedule varies within an epoch"
        rates.append(r[0])
        if metrics is not None:
            schedule.observe(epoch, {"loss": 1e9, "val_loss": metrics[epoch], "lr": r[0]})
    return np.array(rates)


def assert_rates_equal(ours, theirs):
    theirs = np.asarray(theirs, dtype=np.float64)
    err = np.abs(ours - theirs)
    bad = ~(err <= RTOL * np.abs(theirs) + np.finfo(np.float64).tiny)
    assert not bad.any(), (
        f"{bad.sum()} rates differ from torch's beyond {RTOL} relative; first at step "
        f"{np.argmax(bad)}: ours {ours[bad][0]!r}, torch {theirs[bad][0]!r}")


#: Registry entries that follow scikit-learn's rules, not torch's: their
#: oracle is scikit-learn (the estimator parity tests), not this file.
SKLEARN_RULES = {"InvScaling", "Adaptive"}


def test_every_schedule_has_torch_cases():
    covered = {p.values[0] for p in TORCH_CASES} | {"OneCycleLR"}  # OneCycleLR: per step, below
    missing = set(S.SCHEDULES) - covered - SKLEARN_RULES
    assert not missing, "add torch cases for " + ", ".join(sorted(missing))


@pytest.mark.parametrize("lr", BASE_LRS)
@pytest.mark.parametrize("name, make_ours, make_torch", TORCH_CASES)
def test_epoch_schedule_matches_torch(name, make_ours, make_torch, lr):
    """Over 30 epochs, one rate per epoch, whatever the steps per epoch.
    ReduceLROnPlateau is fed each metric sequence (as ``val_loss``)."""
    changed = False
    for metrics in (PLATEAU_METRICS if name == "ReduceLROnPlateau" else [None]):
        theirs = torch_epoch_rates(make_torch, lr, metrics)
        changed |= len(set(theirs)) > 1
        for spe in (1, 5):
            assert_rates_equal(our_epoch_rates(make_ours(), lr, spe, metrics), theirs)
    assert changed, "the case should exercise a change of rate"


def torch_step_rates(kwargs, n_steps):
    """The rate torch's optimizer uses at each step, one step() per batch."""
    torch = _torch()
    opt = _torch_optimizer(torch, 0.5)  # OneCycleLR ignores the optimizer's rate
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, **kwargs)
    rates = []
    for step in range(n_steps):
        rates.append(opt.param_groups[0]["lr"])
        opt.step()
        if step < n_steps - 1:  # the rate after the last step is never used (and with
            sched.step()        # pct_start=1 torch divides by zero computing it)
    return np.array(rates)


@pytest.mark.parametrize("spe", STEPS_PER_EPOCH)
@pytest.mark.parametrize("case", ONECYCLE_CASES, ids=lambda c: "-".join(
    f"{k}={v}" for k, v in c.items()))
def test_onecycle_matches_torch_per_step(case, spe):
    epochs = 12
    kwargs = dict(case)
    kwargs["total_steps"] = epochs * spe + (5 if case["total_steps"] == "more" else 0)
    theirs = torch_step_rates(kwargs, epochs * spe)
    s = S.OneCycleLR(**kwargs)
    s.bind(0.5, spe)
    ours = np.concatenate([s.epoch_rates(e) for e in range(epochs)])
    assert ours.shape == (epochs * spe,)
    assert_rates_equal(ours, theirs)
    if spe > 1:
        assert len(set(s.epoch_rates(0))) > 1, "OneCycleLR should vary within an epoch"


@pytest.mark.parametrize("extra", [0, 2])
def test_onecycle_past_total_steps_raises_where_torch_does(extra):
    """torch raises within the epoch that runs past total_steps; so do we, before it runs."""
    torch = _torch()
    spe, total = 4, 3 * 4 + extra
    s = S.OneCycleLR(max_lr=0.1, total_steps=total)
    s.bind(0.5, spe)
    for e in range(3):
        s.epoch_rates(e)
    with pytest.raises(ValueError, match=rf"Tried to step 16 times\. The specified number of "
                                         rf"total steps is {total}: epoch 3 needs optimizer "
                                         rf"steps 12\.\.15"):
        s.epoch_rates(3)
    opt = _torch_optimizer(torch, 0.5)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=0.1, total_steps=total)
    with pytest.raises(ValueError, match=r"Tried to step \d+ times\. The specified number of "
                                         rf"total steps is {total}$"):
        for step in range(4 * spe):
            opt.step()
            sched.step()
    assert 3 * spe <= step < 4 * spe  # torch failed within epoch 3 too


def test_onecycle_step_rates():
    s = S.OneCycleLR(max_lr=0.1, total_steps=20, three_phase=True)
    s.bind(1.0, 4)
    np.testing.assert_array_equal(s.step_rates([[4, 5], [6, 7]]), s.epoch_rates(1).reshape(2, 2))
    for bad in ([20], [-1], [0.5]):
        with pytest.raises(ValueError, match=r"steps must be integers in \[0, total_steps=20\)"):
            s.step_rates(bad)


def test_onecycle_zero_length_phase_refused():
    with pytest.raises(ValueError, match=r"pct_start=0\.1 with total_steps=10 makes the first "
                                         r"phase of OneCycleLR zero steps long"):
        S.OneCycleLR(max_lr=0.1, total_steps=10, pct_start=0.1)


def test_plateau_monitor_choice():
    """val_loss when present, else loss; monitor= forces a key."""
    logs = [{"loss": 1.0 / (e + 1), "val_loss": 1.0} for e in range(4)]
    for monitor, expect_drop in [(None, True), ("val_loss", True), ("loss", False)]:
        s = S.ReduceLROnPlateau(patience=1, monitor=monitor)
        s.bind(1.0, 1)
        for e, log in enumerate(logs):
            s.epoch_rates(e)
            s.observe(e, log)
        assert (s.epoch_rates(len(logs))[0] < 1.0) == expect_drop, monitor
    s = S.ReduceLROnPlateau(patience=0)
    s.bind(1.0, 1)
    for e, loss in enumerate([1.0, 2.0, 3.0]):  # training loss only: it is monitored
        s.observe(e, {"loss": loss})
    assert s.epoch_rates(3)[0] == pytest.approx(0.01)


def test_plateau_errors():
    s = S.ReduceLROnPlateau(monitor="val_loss")
    s.bind(1.0, 2)
    with pytest.raises(ValueError, match=r"monitors 'val_loss', which is not in the epoch logs "
                                         r"\(keys: epoch_time, loss, lr\); pass validation data "
                                         r"or set monitor="):
        s.observe(0, {"loss": 1.0, "lr": 1.0, "epoch_time": 0.1})
    s.observe(0, {"val_loss": 1.0})
    with pytest.raises(ValueError, match=r"has observed 1 epochs, so the next epoch is 1, not 2"):
        s.epoch_rates(2)
    with pytest.raises(ValueError, match=r"expects the logs of epoch 1, got epoch 0"):
        s.observe(0, {"val_loss": 1.0})


def _run(schedule, epochs, start=0, metrics=PLATEAU_METRICS[1]):
    rates = []
    for e in range(start, start + epochs):
        rates.append(schedule.epoch_rates(e))
        schedule.observe(e, {"loss": metrics[e]})
    return np.concatenate(rates)


@pytest.mark.parametrize("name, make_ours, make_torch", TORCH_CASES[::2])
def test_state_dict_resumes_through_json(name, make_ours, make_torch):
    a = make_ours()
    a.bind(0.1, 3)
    _run(a, 9)
    state = json.loads(json.dumps(a.state_dict(), allow_nan=False))
    b = S.schedule_from_config(name, json.loads(json.dumps(a.get_config())))
    assert repr(b) == repr(a)
    b.load_state_dict(state)
    np.testing.assert_array_equal(_run(b, 12, start=9), _run(a, 12, start=9))


@pytest.mark.parametrize("mode", ["min", "max"])
def test_plateau_state_before_any_observation(mode):
    """torch's best starts at +-inf, which JSON cannot hold: saved as None."""
    a = S.ReduceLROnPlateau(mode=mode, patience=0)
    a.bind(1.0, 1)
    state = json.loads(json.dumps(a.state_dict(), allow_nan=False))
    assert state["best"] is None
    b = S.ReduceLROnPlateau(mode=mode, patience=0)
    b.load_state_dict(state)
    assert b.best == a.best == (np.inf if mode == "min" else -np.inf)
    for s in (a, b):
        s.observe(0, {"loss": 1e300 if mode == "min" else -1e300})
    assert b.best == a.best


def test_onecycle_state_and_config_round_trip():
    a = S.OneCycleLR(max_lr=0.2, total_steps=40, three_phase=True)
    a.bind(0.1, 4)
    b = S.schedule_from_config("OneCycleLR", a.get_config())
    b.load_state_dict(json.loads(json.dumps(a.state_dict())))
    np.testing.assert_array_equal(b.epoch_rates(7), a.epoch_rates(7))
    with pytest.raises(ValueError, match=r"not a StepLR state dict \(its 'schedule' entry is "
                                         r"'OneCycleLR'\)"):
        S.StepLR(2).load_state_dict(a.state_dict())


def test_bind_restarts():
    s = S.ExponentialLR(0.5)
    s.bind(1.0, 2)
    first = _run(s, 6)
    s.bind(1.0, 2)
    np.testing.assert_array_equal(_run(s, 6), first)
    s.bind(2.0, 1)
    assert s.epoch_rates(3)[0] == 0.25
    with pytest.raises(ValueError, match=r"ExponentialLR is at epoch 3 and cannot go back to "
                                         r"epoch 1; call bind\(\) to restart it"):
        s.epoch_rates(1)
    np.testing.assert_array_equal(s.epoch_rates(3), [0.25])  # the same epoch again is fine


@pytest.mark.parametrize("make, message", [
    (lambda: S.StepLR(0), r"step_size must be an integer >= 1, got 0"),
    (lambda: S.StepLR(2, gamma=-0.1), r"gamma must be in \(0\.0, inf\], got -0\.1"),
    (lambda: S.MultiStepLR(3), r"milestones must be a sequence of epoch indices, got 3"),
    (lambda: S.MultiStepLR([2, -1]),
     r"every milestone \(in \[2, -1\]\) must be an integer >= 0, got -1"),
    (lambda: S.ConstantLR(factor=0.0), r"factor must be in \(0\.0, 1\.0\], got 0\.0"),
    (lambda: S.LinearLR(start_factor=1.5), r"start_factor must be in \(0\.0, 1\.0\], got 1\.5"),
    (lambda: S.LinearLR(end_factor=-1), r"end_factor must be in \[0\.0, 1\.0\], got -1"),
    (lambda: S.LinearLR(total_iters=2.5), r"total_iters must be an integer >= 1, got 2\.5"),
    (lambda: S.ExponentialLR(float("nan")), r"gamma must be a finite real number, got nan"),
    (lambda: S.CosineAnnealingLR(0), r"T_max must be an integer >= 1, got 0"),
    (lambda: S.CosineAnnealingLR(5, eta_min=-1e-3), r"eta_min must be in \[0\.0, inf\], got"),
    (lambda: S.CosineAnnealingWarmRestarts(4, T_mult=0), r"T_mult must be an integer >= 1, got 0"),
    (lambda: S.OneCycleLR(0.1, total_steps=0), r"total_steps must be an integer >= 1, got 0"),
    (lambda: S.OneCycleLR(-0.1, 10), r"max_lr must be in \(0\.0, inf\], got -0\.1"),
    (lambda: S.OneCycleLR(0.1, 10, pct_start=1.2),
     r"pct_start must be in \[0\.0, 1\.0\], got 1\.2"),
    (lambda: S.OneCycleLR(0.1, 10, anneal_strategy="exp"),
     r"anneal_strategy must be 'cos' or 'linear', got 'exp'"),
    (lambda: S.OneCycleLR(0.1, 10, three_phase="yes"), r"three_phase must be True or False"),
    (lambda: S.ReduceLROnPlateau(factor=1.0), r"factor must be in \[0\.0, 1\.0\), got 1\.0"),
    (lambda: S.ReduceLROnPlateau(patience=-1), r"patience must be an integer >= 0, got -1"),
    (lambda: S.ReduceLROnPlateau(mode="minimum"), r"mode must be 'min' or 'max', got 'minimum'"),
    (lambda: S.ReduceLROnPlateau(threshold_mode="pct"),
     r"threshold_mode must be 'rel' or 'abs', got 'pct'"),
    (lambda: S.ReduceLROnPlateau(monitor=3), r"monitor must be a log key \(str\) or None, got 3"),
    (lambda: S.SequentialLR([], []), r"SequentialLR needs at least one schedule, got none"),
    (lambda: S.SequentialLR([S.StepLR(2), S.ReduceLROnPlateau()], [3]),
     r"schedules\[1\] is ReduceLROnPlateau\("),
    (lambda: S.SequentialLR([S.StepLR(2), S.OneCycleLR(0.1, 10)], [3]),
     r"schedules\[1\] is OneCycleLR\("),
    (lambda: S.SequentialLR([S.StepLR(2), S.StepLR(3)], [3, 5]),
     r"one milestone fewer than schedules: got 2 schedules and milestones=\[3, 5\]"),
    (lambda: S.SequentialLR([S.StepLR(2), S.StepLR(3), S.StepLR(4)], [5, 5]),
     r"milestones must be strictly increasing, got \[5, 5\]"),
    (lambda: S.SequentialLR([S.StepLR(2), S.StepLR(3)], [0]),
     r"every milestone \(in \[0\]\) must be an integer >= 1, got 0"),
])
def test_bad_hyperparameters(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_sequential_refuses_a_shared_schedule():
    s = S.StepLR(2)
    with pytest.raises(ValueError, match=r"distinct schedule objects; one appears twice"):
        S.SequentialLR([s, s], [3])


def test_bind_and_call_errors():
    s = S.StepLR(2)
    with pytest.raises(RuntimeError, match=r"StepLR is not bound to an optimizer yet; call "
                                           r"bind\(base_lr, steps_per_epoch\) first"):
        s.epoch_rates(0)
    with pytest.raises(ValueError, match=r"base_lr must be in \(0\.0, inf\], got 0"):
        s.bind(0, 3)
    with pytest.raises(ValueError, match=r"steps_per_epoch must be an integer >= 1, got 0"):
        s.bind(0.1, 0)
    s.bind(0.1, 3)
    with pytest.raises(ValueError, match=r"epoch must be an integer >= 0, got -1"):
        s.epoch_rates(-1)
    with pytest.raises(ValueError, match=r"unknown schedule 'Cosine'; choose one of StepLR"):
        S.schedule_from_config("Cosine", {})


def test_docstring_examples():
    import doctest

    import bpcore.schedules as module

    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0


def test_training_goes_through_a_zero_rate():
    """Cosine annealing reaches 0 at T_max (torch's rate there too): training
    runs through that epoch (no update) and on, and a drop-in estimator fitted
    for exactly T_max epochs can go on with partial_fit."""
    from bpcore import SGD, NeuralNetRegressor, Network, train
    rng = np.random.default_rng(0)
    X = rng.standard_normal((40, 3))
    Y = rng.standard_normal((40, 1))
    net = Network([3, 4, 1], random_state=0)
    opt = SGD(0.1)
    hist = train(net, X, Y, optimizer=opt, epochs=3, batch_size=40,
                 schedule=S.CosineAnnealingLR(2))
    np.testing.assert_allclose(hist.lr, [0.1, 0.05, 0.0], atol=1e-17)
    assert opt.learning_rate == 0.0
    before = net.params.copy()
    assert train(net, X, Y, optimizer=opt, epochs=1, batch_size=40).lr == [0.0]
    np.testing.assert_array_equal(net.params, before)
    est = NeuralNetRegressor(hidden_layer_sizes=(4,), solver="adamw", learning_rate="cosine",
                             max_iter=6, tol=0.0, n_iter_no_change=100, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est.fit(X, Y.ravel())
        assert est.n_iter_ == 6
        est.partial_fit(X, Y.ravel())
    assert np.isfinite(est.loss_)
