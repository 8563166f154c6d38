"""Learning-rate schedules, computed exactly as ``torch.optim.lr_scheduler``'s.

Design
------
The training loop binds a schedule to the optimizer's base rate and the
number of optimizer steps per epoch (``bind``), asks it before every epoch for
the rate of each step of that epoch (``epoch_rates``: one float64 array the
epoch kernel reads, so no Python runs per batch), and shows it the epoch's
logs afterwards (``observe``; only ``ReduceLROnPlateau`` reads them).

Most of torch's schedulers are *chainable*: ``scheduler.step()`` computes the
next rate from the optimizer's current one (``lr * gamma``, a ratio of
cosines, ...), not from a closed form. The two agree mathematically but not
in the last bits, and they differ in substance inside ``SequentialLR``. Each
class here replays torch's recurrence in the same floating-point order, so
the rates equal what torch's optimizer uses (``param_groups[0]["lr"]``); the
tests compare them with torch itself.

Epoch-counting schedules model torch's usual loop, one ``scheduler.step()``
at the end of each epoch: the rate of epoch ``e`` is the optimizer's rate
after ``e`` steps, constant over the epoch. ``OneCycleLR`` counts optimizer
steps as in torch (one ``step()`` per batch), so its rates vary within an
epoch.
"""
from __future__ import annotations

import math
import numbers
from bisect import bisect_right
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any, Literal, cast

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ._validation import check_positive_int, check_real

__all__ = [
    "Schedule", "StepLR", "MultiStepLR", "ConstantLR", "LinearLR", "ExponentialLR",
    "CosineAnnealingLR", "CosineAnnealingWarmRestarts", "OneCycleLR",
    "ReduceLROnPlateau", "SequentialLR", "SCHEDULES", "schedule_from_config",
    "named_schedule",
]


class Schedule:
    """Base class: a learning rate for every optimizer step, epoch by epoch.

    Subclasses set ``_PARAMS`` (constructor arguments, stored under the same
    names) and ``_STATE`` (what ``state_dict`` saves), and implement
    ``_reset`` (the state right after ``bind``) and ``_epoch_rate`` (the
    constant rate of one epoch), or override ``epoch_rates``.

    Examples
    --------
    >>> from bpcore.schedules import StepLR
    >>> s = StepLR(step_size=2, gamma=0.5)
    >>> s.bind(base_lr=0.1, steps_per_epoch=3)
    >>> [float(s.epoch_rates(e)[0]) for e in range(5)]
    [0.1, 0.1, 0.05, 0.05, 0.025]
    >>> s.epoch_rates(5)
    array([0.025, 0.025, 0.025])
    """

    _PARAMS: tuple[str, ...] = ()
    _STATE: tuple[str, ...] = ("last_epoch", "lr")
    base_lr: float  # set by bind
    steps_per_epoch: int  # set by bind

    def bind(self, base_lr: float, steps_per_epoch: int) -> None:
        """(Re)start the schedule from the optimizer's base rate.

        Parameters
        ----------
        base_lr : float
            The optimizer's learning rate, torch's ``initial_lr``.
        steps_per_epoch : int
            Optimizer steps (batches) in one epoch: the length of every
            ``epoch_rates`` array.
        """
        self.base_lr = check_real(base_lr, "base_lr", low=0.0, low_open=True)
        self.steps_per_epoch = check_positive_int(steps_per_epoch, "steps_per_epoch")
        self._reset()

    def epoch_rates(self, epoch: int) -> NDArray[np.float64]:
        """The learning rate of every optimizer step of epoch ``epoch``.

        Parameters
        ----------
        epoch : int
            0-based index of the epoch about to run, counted from ``bind``.
            Epochs are asked for in order (asking for the same epoch again is
            allowed).

        Returns
        -------
        rates : ndarray of shape (steps_per_epoch,), float64
        """
        self._check_bound()
        epoch = check_positive_int(epoch, "epoch", minimum=0)
        return np.full(self.steps_per_epoch, self._epoch_rate(epoch), dtype=np.float64)

    def observe(self, epoch: int, logs: Mapping[str, float]) -> None:
        """Show the schedule the logs of the epoch that just ran.

        Parameters
        ----------
        epoch : int
            0-based index of that epoch.
        logs : dict
            At least ``loss``; ``val_loss`` with validation data. Only
            ``ReduceLROnPlateau`` reads them.
        """

    def state_dict(self) -> dict[str, Any]:
        """The schedule's progress as plain JSON-able values.

        Returns
        -------
        state : dict
            Includes the bound ``base_lr`` and ``steps_per_epoch``; the
            hyperparameters are in ``get_config()``.
        """
        self._check_bound()
        state: dict[str, Any] = {"schedule": type(self).__name__, "base_lr": self.base_lr,
                                 "steps_per_epoch": self.steps_per_epoch}
        state.update((k, _to_json(getattr(self, k))) for k in self._STATE)
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Resume from ``state_dict()``'s output (binds the schedule too).

        Parameters
        ----------
        state : dict
            What ``state_dict()`` returned (the rate it was bound to, the
            steps per epoch and the schedule's own counters).
        """
        name = state.get("schedule") if isinstance(state, dict) else None
        if name != type(self).__name__:
            raise ValueError(
                f"this state is not a {type(self).__name__} state dict "
                f"(its 'schedule' entry is {name!r})")
        self.bind(state["base_lr"], state["steps_per_epoch"])
        for key in self._STATE:
            if key not in state:
                raise ValueError(f"this {type(self).__name__} state dict has no {key!r} entry")
            setattr(self, key, _checked_state(key, state[key]))

    def get_config(self) -> dict[str, Any]:
        """The constructor arguments, as plain JSON-able values.

        ``schedule_from_config`` rebuilds an unbound copy from them.

        Returns
        -------
        config : dict
            Argument name to value.
        """
        return {k: _to_json(getattr(self, k)) for k in self._PARAMS}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={getattr(self, k)!r}" for k in self._PARAMS)
        return f"{type(self).__name__}({args})"

    def _check_bound(self) -> None:
        if not hasattr(self, "base_lr"):
            raise RuntimeError(
                f"{type(self).__name__} is not bound to an optimizer yet; call "
                "bind(base_lr, steps_per_epoch) first")

    def _reset(self) -> None:
        raise NotImplementedError(
            f"{type(self).__name__} does not implement _reset(), which a Schedule subclass "
            "must: set the state the schedule has right after bind() (e.g. "
            "self.last_epoch = -1; self.lr = self.base_lr); see bpcore.schedules.Schedule")

    def _epoch_rate(self, epoch: int) -> float:
        raise NotImplementedError(
            f"{type(self).__name__} does not implement _epoch_rate(epoch), which a Schedule "
            "subclass must (the learning rate of every step of that epoch), unless it "
            "overrides epoch_rates(epoch); see bpcore.schedules.Schedule")


#: The range of each state entry (a hostile saved file may hold anything):
#: (integer?, least value); ``best`` is any real but NaN.
_STATE_RANGES: dict[str, tuple[bool, float]] = {
    "last_epoch": (True, -1), "lr": (False, 0.0), "num_bad_epochs": (True, 0),
    "cooldown_counter": (True, 0), "T_cur": (False, -1), "T_i": (True, 1)}


def _checked_state(key: str, value: object) -> object:
    """A state entry of ``load_state_dict``, refused if no schedule has it."""
    real = (type(value) is not bool and not isinstance(value, np.bool_)
            and isinstance(value, numbers.Real))
    number = float(value) if real else math.nan  # type: ignore[arg-type]
    if key == "best":       # None before the first observation
        ok = value is None or (real and not math.isnan(number))
        what = "a number or None"
    else:
        integer, low = _STATE_RANGES.get(key, (False, -math.inf))
        ok = (real and (not integer or isinstance(value, numbers.Integral))
              and math.isfinite(number) and number >= low)
        what = f"{'an integer' if integer else 'a finite number'} >= {low:g}"
    if not ok:
        raise ValueError(f"the schedule state's {key!r} must be {what}, got {value!r}")
    return value


def _to_json(value: object) -> object:
    if isinstance(value, Counter):
        return sorted(value.elements())
    if isinstance(value, float) and math.isinf(value):
        return None  # "no best value yet" (JSON has no infinity)
    return value


class _Chainable(Schedule):
    """torch's ``LRScheduler``: a recurrence on the optimizer's current rate.

    ``_next_lr(lr)`` is torch's ``get_lr`` for one parameter group; it reads
    ``self.last_epoch`` (already advanced) and ``self._is_initial`` (True only
    in the first step, which torch's constructor takes).
    """

    _is_initial = False
    lr: float
    last_epoch: int

    def _reset(self) -> None:
        self.lr = self.base_lr
        self.last_epoch = -1
        self._initial_step()

    def _initial_step(self) -> None:
        self._is_initial = True
        self._step()
        self._is_initial = False

    def _step(self) -> None:
        """torch's ``scheduler.step()``."""
        self.last_epoch += 1
        self.lr = self._next_lr(self.lr)

    def _restart(self) -> None:
        """torch's ``_update_lr(0)``, which ``SequentialLR`` runs at a milestone:
        the closed form at epoch 0 where there is one, else the recurrence."""
        self.last_epoch = 0
        closed = getattr(self, "_closed_form_lr", None)
        self.lr = closed() if closed is not None else self._next_lr(self.lr)

    def _epoch_rate(self, epoch: int) -> float:
        if epoch < self.last_epoch:
            raise ValueError(
                f"{type(self).__name__} is at epoch {self.last_epoch} and cannot go back to "
                f"epoch {epoch}; call bind() to restart it")
        while self.last_epoch < epoch:
            self._step()
        return self.lr

    def _next_lr(self, lr: float) -> float:
        raise NotImplementedError


class StepLR(_Chainable):
    """Multiply the rate by ``gamma`` every ``step_size`` epochs (torch's ``StepLR``).

    Parameters
    ----------
    step_size : int
        Period of the decay, in epochs.
    gamma : float, default=0.1
        Factor of each decay.

    Notes
    -----
    Epoch ``e`` runs at ``base_lr * gamma ** (e // step_size)``, computed as
    torch does by repeated multiplication.

    Examples
    --------
    >>> from bpcore.schedules import StepLR
    >>> s = StepLR(step_size=3, gamma=0.1)
    >>> s.bind(1.0, steps_per_epoch=1)
    >>> [float(s.epoch_rates(e)[0]) for e in range(7)]
    [1.0, 1.0, 1.0, 0.1, 0.1, 0.1, 0.010000000000000002]
    """

    _PARAMS = ("step_size", "gamma")

    def __init__(self, step_size: int, gamma: float = 0.1) -> None:
        self.step_size = check_positive_int(step_size, "step_size")
        self.gamma = _check_factor(gamma, "gamma")

    def _next_lr(self, lr: float) -> float:
        if self.last_epoch == 0 or self.last_epoch % self.step_size != 0:
            return lr
        return lr * self.gamma

    def _closed_form_lr(self) -> float:
        return self.base_lr * self.gamma ** (self.last_epoch // self.step_size)


class MultiStepLR(_Chainable):
    """Multiply the rate by ``gamma`` at each milestone epoch (torch's ``MultiStepLR``).

    Parameters
    ----------
    milestones : sequence of int
        Epoch indices (>= 0) at which the rate decays; a milestone listed
        ``n`` times decays by ``gamma ** n``, as in torch.
    gamma : float, default=0.1
        Factor of each decay.

    Examples
    --------
    >>> from bpcore.schedules import MultiStepLR
    >>> s = MultiStepLR(milestones=[2, 4], gamma=0.5)
    >>> s.bind(1.0, steps_per_epoch=1)
    >>> [float(s.epoch_rates(e)[0]) for e in range(6)]
    [1.0, 1.0, 0.5, 0.5, 0.25, 0.25]
    """

    _PARAMS = ("milestones", "gamma")

    def __init__(self, milestones: Iterable[int], gamma: float = 0.1) -> None:
        if isinstance(milestones, (str, bytes)) or not hasattr(milestones, "__iter__"):
            raise ValueError(f"milestones must be a sequence of epoch indices, got {milestones!r}")
        milestones = list(milestones)
        for m in milestones:
            check_positive_int(m, f"every milestone (in {milestones!r})", minimum=0)
        self.milestones = Counter(int(m) for m in milestones)
        self.gamma = _check_factor(gamma, "gamma")

    def _next_lr(self, lr: float) -> float:
        if self.last_epoch not in self.milestones:
            return lr
        return lr * self.gamma ** self.milestones[self.last_epoch]

    def _closed_form_lr(self) -> float:
        milestones = sorted(self.milestones.elements())
        return self.base_lr * self.gamma ** bisect_right(milestones, self.last_epoch)

    def __repr__(self) -> str:
        return f"MultiStepLR(milestones={sorted(self.milestones.elements())}, gamma={self.gamma!r})"


class ConstantLR(_Chainable):
    """Run the first ``total_iters`` epochs at ``factor * base_lr`` (torch's ``ConstantLR``).

    Parameters
    ----------
    factor : float in (0, 1], default=1/3
        Fraction of ``base_lr`` used for the first ``total_iters`` epochs.
    total_iters : int, default=5
        Epochs at the reduced rate; from then on the rate is ``base_lr``.

    Examples
    --------
    >>> from bpcore.schedules import ConstantLR
    >>> s = ConstantLR(factor=0.5, total_iters=2)
    >>> s.bind(1.0, steps_per_epoch=1)
    >>> [float(s.epoch_rates(e)[0]) for e in range(4)]
    [0.5, 0.5, 1.0, 1.0]
    """

    _PARAMS = ("factor", "total_iters")

    def __init__(self, factor: float = 1.0 / 3, total_iters: int = 5) -> None:
        self.factor = check_real(factor, "factor", low=0.0, high=1.0, low_open=True)
        self.total_iters = check_positive_int(total_iters, "total_iters")

    def _next_lr(self, lr: float) -> float:
        if self.last_epoch == 0:
            return lr * self.factor
        if self.last_epoch != self.total_iters:
            return lr
        return lr * (1.0 / self.factor)

    def _closed_form_lr(self) -> float:
        return self.base_lr * (self.factor
                               + (self.last_epoch >= self.total_iters) * (1 - self.factor))


class LinearLR(_Chainable):
    """Scale the rate by a factor going linearly from ``start_factor`` to
    ``end_factor`` over ``total_iters`` epochs (torch's ``LinearLR``; the usual
    warm-up).

    Parameters
    ----------
    start_factor : float in (0, 1], default=1/3
        Factor of ``base_lr`` at epoch 0.
    end_factor : float in [0, 1], default=1.0
        Factor of ``base_lr`` from epoch ``total_iters`` on.
    total_iters : int, default=5
        Epoch at which the factor reaches ``end_factor`` and stays.

    Examples
    --------
    >>> from bpcore.schedules import LinearLR
    >>> s = LinearLR(start_factor=0.25, total_iters=3)
    >>> s.bind(1.0, steps_per_epoch=1)
    >>> [float(s.epoch_rates(e)[0]) for e in range(5)]
    [0.25, 0.5, 0.75, 1.0, 1.0]
    """

    _PARAMS = ("start_factor", "end_factor", "total_iters")

    def __init__(self, start_factor: float = 1.0 / 3, end_factor: float = 1.0,
                 total_iters: int = 5) -> None:
        self.start_factor = check_real(start_factor, "start_factor", low=0.0, high=1.0,
                                       low_open=True)
        self.end_factor = check_real(end_factor, "end_factor", low=0.0, high=1.0)
        self.total_iters = check_positive_int(total_iters, "total_iters")

    def _next_lr(self, lr: float) -> float:
        if self.last_epoch == 0:
            return lr * self.start_factor
        if self._is_initial or self.last_epoch > self.total_iters:
            return lr
        return lr * (1.0 + (self.end_factor - self.start_factor)
                     / (self.total_iters * self.start_factor
                        + (self.last_epoch - 1) * (self.end_factor - self.start_factor)))

    def _closed_form_lr(self) -> float:
        return self.base_lr * (self.start_factor
                               + (self.end_factor - self.start_factor)
                               * min(self.total_iters, self.last_epoch) / self.total_iters)


class ExponentialLR(_Chainable):
    """Multiply the rate by ``gamma`` every epoch (torch's ``ExponentialLR``).

    Parameters
    ----------
    gamma : float
        Factor applied after every epoch: epoch ``e`` runs at
        ``base_lr * gamma ** e``.

    Examples
    --------
    >>> from bpcore.schedules import ExponentialLR
    >>> s = ExponentialLR(gamma=0.5)
    >>> s.bind(1.0, steps_per_epoch=2)
    >>> s.epoch_rates(0), s.epoch_rates(1), s.epoch_rates(2)
    (array([1., 1.]), array([0.5, 0.5]), array([0.25, 0.25]))
    """

    _PARAMS = ("gamma",)

    def __init__(self, gamma: float) -> None:
        self.gamma = _check_factor(gamma, "gamma")

    def _next_lr(self, lr: float) -> float:
        return lr if self._is_initial else lr * self.gamma

    def _closed_form_lr(self) -> float:
        return self.base_lr * self.gamma ** self.last_epoch


class CosineAnnealingLR(_Chainable):
    """Cosine annealing from ``base_lr`` to ``eta_min`` over ``T_max`` epochs
    (torch's ``CosineAnnealingLR``).

    Parameters
    ----------
    T_max : int
        Half period, in epochs.
    eta_min : float, default=0
        Lowest rate.

    Notes
    -----
    The closed form is ``eta_min + (base_lr - eta_min) * (1 + cos(pi * e /
    T_max)) / 2``; as torch, the rate is computed by the recurrence

        lr_e = eta_min + (lr_{e-1} - eta_min)
               * (1 + cos(pi e / T_max)) / (1 + cos(pi (e-1) / T_max))

    (at ``e = T_max + 1 (mod 2 T_max)``, where the denominator vanishes, by
    torch's additive step). Past ``T_max`` the rate climbs back: the cosine
    continues, it does not restart (see ``CosineAnnealingWarmRestarts``).

    Examples
    --------
    >>> from bpcore.schedules import CosineAnnealingLR
    >>> s = CosineAnnealingLR(T_max=4)
    >>> s.bind(1.0, steps_per_epoch=1)
    >>> [round(float(s.epoch_rates(e)[0]), 4) for e in range(6)]
    [1.0, 0.8536, 0.5, 0.1464, 0.0, 0.1464]
    """

    _PARAMS = ("T_max", "eta_min")

    def __init__(self, T_max: int, eta_min: float = 0.0) -> None:
        self.T_max = check_positive_int(T_max, "T_max")
        self.eta_min = check_real(eta_min, "eta_min", low=0.0)

    def _next_lr(self, lr: float) -> float:
        # torch's branch for a first step taken at last_epoch > 0 (`_step_count
        # == 1`) is unreachable here: every schedule starts at epoch 0.
        if self._is_initial:
            return lr
        if (self.last_epoch - 1 - self.T_max) % (2 * self.T_max) == 0:
            return lr + (self.base_lr - self.eta_min) * (1 - math.cos(math.pi / self.T_max)) / 2
        return ((1 + math.cos(math.pi * self.last_epoch / self.T_max))
                / (1 + math.cos(math.pi * (self.last_epoch - 1) / self.T_max))
                * (lr - self.eta_min) + self.eta_min)

    def _closed_form_lr(self) -> float:
        return (self.eta_min + (self.base_lr - self.eta_min)
                * (1 + math.cos(math.pi * self.last_epoch / self.T_max)) / 2)


class CosineAnnealingWarmRestarts(_Chainable):
    """Cosine annealing restarted every ``T_i`` epochs, ``T_i`` growing by
    ``T_mult`` after each restart (SGDR; torch's ``CosineAnnealingWarmRestarts``).

    Parameters
    ----------
    T_0 : int
        Epochs until the first restart.
    T_mult : int, default=1
        Factor by which the period grows after each restart.
    eta_min : float, default=0
        Lowest rate, reached at the end of each period.

    Notes
    -----
    Epoch ``e`` runs at ``eta_min + (base_lr - eta_min) * (1 + cos(pi *
    T_cur / T_i)) / 2``, with ``T_cur`` the epochs since the last restart.

    Examples
    --------
    >>> from bpcore.schedules import CosineAnnealingWarmRestarts
    >>> s = CosineAnnealingWarmRestarts(T_0=2, T_mult=2)
    >>> s.bind(1.0, steps_per_epoch=1)
    >>> [round(float(s.epoch_rates(e)[0]), 4) for e in range(7)]
    [1.0, 0.5, 1.0, 0.8536, 0.5, 0.1464, 1.0]
    """

    _PARAMS = ("T_0", "T_mult", "eta_min")
    _STATE = ("last_epoch", "lr", "T_cur", "T_i")

    def __init__(self, T_0: int, T_mult: int = 1, eta_min: float = 0.0) -> None:
        self.T_0 = check_positive_int(T_0, "T_0")
        self.T_mult = check_positive_int(T_mult, "T_mult")
        self.eta_min = check_real(eta_min, "eta_min", low=0.0)

    def _reset(self) -> None:
        self.T_i = self.T_0
        self.T_cur = -1
        super()._reset()

    def _step(self) -> None:
        if self.last_epoch < 0:   # torch's first step is step(epoch=0)
            self.T_i, self.T_cur = self.T_0, 0
            self.last_epoch = 0
        else:
            self.last_epoch += 1
            self.T_cur = self.T_cur + 1
            if self.T_cur >= self.T_i:
                self.T_cur = self.T_cur % self.T_i
                self.T_i = self.T_i * self.T_mult
        self.lr = self._next_lr(self.lr)

    def _next_lr(self, lr: float) -> float:
        return (self.eta_min + (self.base_lr - self.eta_min)
                * (1 + math.cos(math.pi * self.T_cur / self.T_i)) / 2)


class OneCycleLR(Schedule):
    """The 1cycle policy, per optimizer step (torch's ``OneCycleLR``).

    The rate rises from ``max_lr / div_factor`` to ``max_lr`` over the first
    ``pct_start`` of ``total_steps`` optimizer steps, then falls to
    ``max_lr / div_factor / final_div_factor``. As in torch, the optimizer's
    own rate is not used.

    Parameters
    ----------
    max_lr : float
        The peak rate, reached after ``pct_start`` of the steps.
    total_steps : int
        Optimizer steps in the whole cycle: at least ``epochs *
        steps_per_epoch`` of the fit.
    pct_start : float in [0, 1], default=0.3
        Fraction of ``total_steps`` spent rising to ``max_lr``.
    anneal_strategy : {"cos", "linear"}, default="cos"
        How the rate moves between its phase ends: cosine or straight line.
    div_factor : float, default=25.0
        The first rate is ``max_lr / div_factor``.
    final_div_factor : float, default=1e4
        The last rate is ``max_lr / div_factor / final_div_factor``.
    three_phase : bool, default=False
        Use torch's third phase (rise, symmetric fall back to the initial
        rate, then the annihilation to the final rate).

    Notes
    -----
    torch's default ``cycle_momentum=True`` also cycles the optimizer's
    momentum (``beta_1``) inversely to the rate; that is not done here: only
    the rate follows the 1cycle policy.

    ``epoch_rates`` raises ``ValueError`` for an epoch that needs steps
    beyond ``total_steps``, as torch's ``step()`` raises during that epoch.

    Examples
    --------
    >>> from bpcore.schedules import OneCycleLR
    >>> s = OneCycleLR(max_lr=1.0, total_steps=6, pct_start=0.5, anneal_strategy="linear",
    ...                div_factor=4.0, final_div_factor=1.0)
    >>> s.bind(0.1, steps_per_epoch=3)
    >>> s.epoch_rates(0), s.epoch_rates(1)
    (array([0.25 , 0.625, 1.   ]), array([0.75, 0.5 , 0.25]))
    """

    _PARAMS = ("max_lr", "total_steps", "pct_start", "anneal_strategy", "div_factor",
               "final_div_factor", "three_phase")
    _STATE = ()

    def __init__(self, max_lr: float, total_steps: int, pct_start: float = 0.3,
                 anneal_strategy: Literal["cos", "linear"] = "cos",
                 div_factor: float = 25.0, final_div_factor: float = 1e4,
                 three_phase: bool = False) -> None:
        self.max_lr = check_real(max_lr, "max_lr", low=0.0, low_open=True)
        self.total_steps = check_positive_int(total_steps, "total_steps")
        self.pct_start = check_real(pct_start, "pct_start", low=0.0, high=1.0)
        if anneal_strategy not in ("cos", "linear"):
            raise ValueError(
                f"anneal_strategy must be 'cos' or 'linear', got {anneal_strategy!r}")
        self.anneal_strategy = anneal_strategy
        self.div_factor = check_real(div_factor, "div_factor", low=0.0, low_open=True)
        self.final_div_factor = check_real(final_div_factor, "final_div_factor", low=0.0,
                                           low_open=True)
        if not isinstance(three_phase, (bool, np.bool_)):
            raise ValueError(f"three_phase must be True or False, got {three_phase!r}")
        self.three_phase = bool(three_phase)
        self._phases = self._make_phases()

    def _make_phases(self) -> list[tuple[float, str, str]]:
        """torch's phase table: (end_step, start_lr, end_lr) by name."""
        T, p = self.total_steps, self.pct_start
        phases: list[tuple[float, str, str]]
        if self.three_phase:
            phases = [(float(p * T) - 1, "initial", "max"),
                      (float(2 * p * T) - 2, "max", "initial"),
                      (T - 1, "initial", "min")]
        else:
            phases = [(float(p * T) - 1, "initial", "max"), (T - 1, "max", "min")]
        # Step s falls in the first phase whose end_step >= s and is placed by
        # (s - start) / (end - start). Only step 0 can fall in a phase of zero
        # length: the first, when pct_start * total_steps == 1 (torch raises
        # ZeroDivisionError there).
        if phases[0][0] == 0.0:
            raise ValueError(
                f"pct_start={self.pct_start!r} with total_steps={T} makes the first phase of "
                "OneCycleLR zero steps long (pct_start * total_steps == 1; torch divides by "
                "zero there); change pct_start or total_steps")
        return phases

    def _reset(self) -> None:
        self._lrs = {"initial": self.max_lr / self.div_factor, "max": self.max_lr}
        self._lrs["min"] = self._lrs["initial"] / self.final_div_factor

    def epoch_rates(self, epoch: int) -> NDArray[np.float64]:
        self._check_bound()
        epoch = check_positive_int(epoch, "epoch", minimum=0)
        first = epoch * self.steps_per_epoch
        stop = first + self.steps_per_epoch
        if stop > self.total_steps:
            raise ValueError(
                f"Tried to step {stop} times. The specified number of total steps is "
                f"{self.total_steps}: epoch {epoch} needs optimizer steps {first}..{stop - 1} "
                f"but OneCycleLR(total_steps={self.total_steps}) covers "
                f"{self.total_steps // self.steps_per_epoch} whole epochs of "
                f"{self.steps_per_epoch} steps; set total_steps >= epochs * steps_per_epoch")
        return self.step_rates(np.arange(first, stop))

    def step_rates(self, steps: ArrayLike) -> NDArray[np.float64]:
        """The rate of each 0-based optimizer step in ``steps`` (torch's ``get_lr``).

        Parameters
        ----------
        steps : array-like of int in [0, total_steps)
            0-based optimizer step indices.

        Returns
        -------
        rates : ndarray of float64, shaped like ``steps``
        """
        self._check_bound()
        steps = np.asarray(steps)
        if steps.size and not (np.issubdtype(steps.dtype, np.integer)
                               and steps.min() >= 0 and steps.max() < self.total_steps):
            raise ValueError(f"steps must be integers in [0, total_steps={self.total_steps})")
        rates = np.empty(steps.shape, dtype=np.float64)
        todo = np.ones(steps.shape, dtype=bool)
        start = 0.0
        for i, (end, lr_from, lr_to) in enumerate(self._phases):
            # A step belongs to the first phase that ends at or after it (the last
            # phase takes the rest), placed from the previous phase's end.
            mask = todo if i == len(self._phases) - 1 else todo & (steps <= end)
            if mask.any():
                pct = (steps[mask] - start) / (end - start)
                rates[mask] = self._anneal(self._lrs[lr_from], self._lrs[lr_to], pct)
            todo &= ~mask
            start = end
        return rates

    def _anneal(self, start: float, end: float,
                pct: NDArray[np.float64]) -> NDArray[np.float64]:
        if self.anneal_strategy == "cos":
            return end + (start - end) / 2.0 * (np.cos(math.pi * pct) + 1)
        return (end - start) * pct + start


class ReduceLROnPlateau(Schedule):
    """Divide the rate when a monitored value stops improving (torch's
    ``ReduceLROnPlateau``).

    Parameters
    ----------
    factor : float in [0, 1), default=0.1
        New rate = ``max(rate * factor, min_lr)``.
    patience : int, default=10
        Epochs without improvement tolerated; the rate drops after the next one.
    threshold : float, default=1e-4
        Smallest change counted as an improvement.
    threshold_mode : {"rel", "abs"}, default="rel"
        ``rel``: improved when ``value < best * (1 - threshold)`` (``mode="min"``)
        or ``value > best * (1 + threshold)`` (``"max"``); ``abs``: when
        ``value < best - threshold`` or ``value > best + threshold``.
    mode : {"min", "max"}, default="min"
        Whether the monitored value improves by going down or up.
    cooldown : int, default=0
        Epochs to wait after a drop before counting bad epochs again.
    min_lr : float, default=0
        The rate never drops below this.
    eps : float, default=1e-8
        A drop smaller than this is skipped, as in torch.
    monitor : str or None, default=None
        Key of the epoch logs to watch; None watches ``val_loss`` when the
        logs have it, else ``loss``.

    Examples
    --------
    >>> from bpcore.schedules import ReduceLROnPlateau
    >>> s = ReduceLROnPlateau(factor=0.5, patience=1)
    >>> s.bind(1.0, steps_per_epoch=1)
    >>> rates = []
    >>> for epoch, loss in enumerate([3.0, 2.0, 2.0, 2.0, 1.0, 1.0, 1.0]):
    ...     rates.append(float(s.epoch_rates(epoch)[0]))
    ...     s.observe(epoch, {"loss": loss})
    >>> rates
    [1.0, 1.0, 1.0, 1.0, 0.5, 0.5, 0.5]
    >>> float(s.epoch_rates(7)[0])
    0.25
    """

    _PARAMS = ("factor", "patience", "threshold", "threshold_mode", "mode", "cooldown",
               "min_lr", "eps", "monitor")
    _STATE = ("last_epoch", "lr", "best", "num_bad_epochs", "cooldown_counter")

    def __init__(self, factor: float = 0.1, patience: int = 10, threshold: float = 1e-4,
                 threshold_mode: Literal["rel", "abs"] = "rel",
                 mode: Literal["min", "max"] = "min", cooldown: int = 0,
                 min_lr: float = 0.0, eps: float = 1e-8, monitor: str | None = None) -> None:
        self.factor = check_real(factor, "factor", low=0.0, high=1.0, high_open=True)
        self.patience = check_positive_int(patience, "patience", minimum=0)
        self.threshold = check_real(threshold, "threshold", low=0.0)
        if threshold_mode not in ("rel", "abs"):
            raise ValueError(f"threshold_mode must be 'rel' or 'abs', got {threshold_mode!r}")
        self.threshold_mode = threshold_mode
        if mode not in ("min", "max"):
            raise ValueError(f"mode must be 'min' or 'max', got {mode!r}")
        self.mode = mode
        self.cooldown = check_positive_int(cooldown, "cooldown", minimum=0)
        self.min_lr = check_real(min_lr, "min_lr", low=0.0)
        self.eps = check_real(eps, "eps", low=0.0)
        if monitor is not None and not isinstance(monitor, str):
            raise ValueError(f"monitor must be a log key (str) or None, got {monitor!r}")
        self.monitor = monitor

    def _reset(self) -> None:
        self.lr = self.base_lr
        self.last_epoch = 0
        self.best = self._worst()
        self.num_bad_epochs = 0
        self.cooldown_counter = 0

    def _epoch_rate(self, epoch: int) -> float:
        if epoch != self.last_epoch:
            raise ValueError(
                f"ReduceLROnPlateau has observed {self.last_epoch} epochs, so the next "
                f"epoch is {self.last_epoch}, not {epoch}; call observe(epoch, logs) after "
                "every epoch")
        return self.lr

    def observe(self, epoch: int, logs: Mapping[str, float]) -> None:
        self._check_bound()
        if epoch != self.last_epoch:
            raise ValueError(
                f"ReduceLROnPlateau expects the logs of epoch {self.last_epoch}, got epoch {epoch}")
        key = self.monitor or ("val_loss" if "val_loss" in logs else "loss")
        if key not in logs:
            raise ValueError(
                f"ReduceLROnPlateau monitors {key!r}, which is not in the epoch logs "
                f"(keys: {', '.join(sorted(logs))}); "
                + ("pass validation data or " if key.startswith("val_") else "")
                + "set monitor= to one of those keys")
        current = float(logs[key])
        self.last_epoch += 1
        if self._is_better(current):
            self.best = current
            self.num_bad_epochs = 0
        else:
            self.num_bad_epochs += 1
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.num_bad_epochs = 0
        if self.num_bad_epochs > self.patience:
            new_lr = max(self.lr * self.factor, self.min_lr)
            if self.lr - new_lr > self.eps:
                self.lr = new_lr
            self.cooldown_counter = self.cooldown
            self.num_bad_epochs = 0

    def _worst(self) -> float:
        """torch's ``mode_worse``: the best value before any observation."""
        return math.inf if self.mode == "min" else -math.inf

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        # state_dict writes the infinite mode_worse as None, which the base
        # class's setattr has just stored (best is a float everywhere else).
        if self.best is None:
            self.best = self._worst()  # type: ignore[unreachable]

    def _is_better(self, a: float) -> bool:
        if self.mode == "min" and self.threshold_mode == "rel":
            return a < self.best * (1.0 - self.threshold)
        if self.mode == "min":
            return a < self.best - self.threshold
        if self.threshold_mode == "rel":
            return a > self.best * (self.threshold + 1.0)
        return a > self.best + self.threshold


class SequentialLR(Schedule):
    """Run ``schedules`` one after the other, switching at ``milestones``
    (torch's ``SequentialLR``; e.g. a warm-up before the main schedule).

    Parameters
    ----------
    schedules : sequence of Schedule
        Epoch-counting schedules (not ``OneCycleLR``, ``ReduceLROnPlateau``
        or another ``SequentialLR``), distinct objects.
    milestones : sequence of int
        Strictly increasing epochs (>= 1) at which the next schedule takes
        over; one fewer than the schedules.

    Notes
    -----
    As in torch, each schedule counts its own epochs from its milestone, and
    at a milestone it restarts from its closed form at epoch 0 (``base_lr``
    for ``CosineAnnealingLR``); the chainable ones then continue from the
    rate in force.

    Examples
    --------
    >>> from bpcore.schedules import CosineAnnealingLR, LinearLR, SequentialLR
    >>> s = SequentialLR([LinearLR(start_factor=0.5, total_iters=2),
    ...                   CosineAnnealingLR(T_max=2)], milestones=[2])
    >>> s.bind(1.0, steps_per_epoch=1)
    >>> [float(s.epoch_rates(e)[0]) for e in range(5)]
    [0.5, 0.75, 1.0, 0.5, 0.0]
    """

    _STATE = ("last_epoch", "lr")

    def __init__(self, schedules: Iterable[Schedule], milestones: Iterable[int]) -> None:
        schedules = list(schedules)
        if not schedules:
            raise ValueError("SequentialLR needs at least one schedule, got none")
        for i, s in enumerate(schedules):
            if not isinstance(s, _Chainable):
                raise ValueError(
                    f"SequentialLR chains epoch-counting schedules (StepLR, MultiStepLR, "
                    f"ConstantLR, LinearLR, ExponentialLR, CosineAnnealingLR, "
                    f"CosineAnnealingWarmRestarts); schedules[{i}] is {s!r}")
        if len({id(s) for s in schedules}) != len(schedules):
            raise ValueError("SequentialLR needs distinct schedule objects; one appears twice")
        milestones = list(milestones)
        if len(milestones) != len(schedules) - 1:
            raise ValueError(
                f"SequentialLR needs one milestone fewer than schedules: got {len(schedules)} "
                f"schedules and milestones={milestones!r}")
        for m in milestones:
            check_positive_int(m, f"every milestone (in {milestones!r})")
        if any(b <= a for a, b in zip(milestones, milestones[1:])):
            raise ValueError(f"milestones must be strictly increasing, got {milestones!r}")
        # Each one is a _Chainable (checked above).
        self.schedules = cast("list[_Chainable]", schedules)
        self.milestones = [int(m) for m in milestones]

    def _reset(self) -> None:
        # torch: each schedule's constructor takes its initial step, then
        # SequentialLR undoes one step of each and re-takes the first's.
        for s in self.schedules:
            s.bind(self.base_lr, self.steps_per_epoch)
            s.last_epoch -= 1
        self.last_epoch = 0
        first = self.schedules[0]
        first.lr = self.base_lr
        first._initial_step()
        self.lr = first.lr

    def _step(self) -> None:
        self.last_epoch += 1
        idx = bisect_right(self.milestones, self.last_epoch)
        s = self.schedules[idx]
        s.lr = self.lr   # chainable rules read the optimizer's current rate
        if idx > 0 and self.milestones[idx - 1] == self.last_epoch:
            s._restart()
        else:
            s._step()
        self.lr = s.lr

    _epoch_rate = _Chainable._epoch_rate

    def state_dict(self) -> dict[str, Any]:
        state = super().state_dict()
        state["schedules"] = [s.state_dict() for s in self.schedules]
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        for s, sub in zip(self.schedules, state["schedules"]):
            s.load_state_dict(sub)

    def get_config(self) -> dict[str, Any]:
        return {"schedules": [{"name": type(s).__name__, "config": s.get_config()}
                              for s in self.schedules],
                "milestones": list(self.milestones)}

    def __repr__(self) -> str:
        return f"SequentialLR(schedules={self.schedules!r}, milestones={self.milestones!r})"


def _check_factor(value: float, name: str) -> float:
    return check_real(value, name, low=0.0, low_open=True)


#: Every schedule by class name: ``schedule_from_config`` and the tests use it.
SCHEDULES: dict[str, type[Schedule]] = {cls.__name__: cls for cls in (
    StepLR, MultiStepLR, ConstantLR, LinearLR, ExponentialLR, CosineAnnealingLR,
    CosineAnnealingWarmRestarts, OneCycleLR, ReduceLROnPlateau, SequentialLR)}


def schedule_from_config(name: str, config: Mapping[str, Any]) -> Schedule:
    """Rebuild an unbound schedule from its class name and ``get_config()``.

    Parameters
    ----------
    name : str
        A key of ``SCHEDULES``.
    config : dict
        The output of ``get_config()``.

    Returns
    -------
    schedule : Schedule
        A new, unbound schedule.

    Examples
    --------
    >>> from bpcore.schedules import StepLR, schedule_from_config
    >>> schedule_from_config("StepLR", StepLR(5, gamma=0.5).get_config())
    StepLR(step_size=5, gamma=0.5)
    """
    if name not in SCHEDULES:
        raise ValueError(f"unknown schedule {name!r}; choose one of {', '.join(SCHEDULES)}")
    if name == "SequentialLR":
        config = dict(config, schedules=[schedule_from_config(c["name"], c["config"])
                                         for c in config["schedules"]])
    return SCHEDULES[name](**config)


class SklearnSchedule(Schedule):
    """scikit-learn's MLP step-size rules, as a schedule of the one training loop.

    - ``"constant"``: the base rate throughout.
    - ``"invscaling"``: after each epoch, ``lr = learning_rate_init /
      (t + 1) ** power_t``, with ``t`` the samples seen so far
      (``iteration_ends``).
    - ``"adaptive"``: when the estimator's stopping rule sees
      ``n_iter_no_change`` epochs without progress, ``on_stall`` divides the
      rate by 5 instead of stopping, until it is at most 1e-6.

    The estimators drive the two events in scikit-learn's order; like every
    schedule, the rate reaches the kernel as an array per epoch.

    Parameters
    ----------
    kind : {"constant", "invscaling", "adaptive"}
        scikit-learn's ``learning_rate`` name (the rules above).
    learning_rate_init : float
        scikit-learn's ``learning_rate_init`` (> 0): the numerator of
        ``invscaling``'s rate.
    power_t : float, default=0.5
        ``invscaling``'s exponent.

    Examples
    --------
    >>> from bpcore.schedules import SklearnSchedule
    >>> s = SklearnSchedule("invscaling", 0.1, power_t=0.5)
    >>> s.bind(0.1, steps_per_epoch=2)
    >>> s.iteration_ends(99)
    >>> s.epoch_rates(1)
    array([0.01, 0.01])
    """

    _PARAMS = ("kind", "learning_rate_init", "power_t")
    _STATE = ("lr",)
    KINDS = ("constant", "invscaling", "adaptive")

    def __init__(self, kind: Literal["constant", "invscaling", "adaptive"],
                 learning_rate_init: float, power_t: float = 0.5) -> None:
        if kind not in self.KINDS:
            raise ValueError(f"kind must be one of {self.KINDS}, got {kind!r}")
        self.kind = kind
        self.learning_rate_init = check_real(learning_rate_init, "learning_rate_init",
                                             low=0.0, low_open=True)
        self.power_t = check_real(power_t, "power_t")

    def _reset(self) -> None:
        self.lr = self.base_lr

    def _epoch_rate(self, epoch: int) -> float:
        return self.lr

    def iteration_ends(self, time_step: int) -> None:
        """After an epoch: ``invscaling``'s update, with ``time_step`` the
        samples seen so far."""
        if self.kind == "invscaling":
            self.lr = self.learning_rate_init / (time_step + 1) ** self.power_t

    def on_stall(self) -> str | None:
        """The stopping rule fired: ``adaptive`` divides the rate by 5 instead
        of stopping while it is above 1e-6. Returns what it did (scikit-learn's
        words, to follow the rule's message), or None: training stops."""
        if self.kind != "adaptive" or self.lr <= 1e-6:
            return None
        self.lr = self.lr / 5.0
        return " Setting learning rate to %f" % self.lr


#: scikit-learn's ``learning_rate`` names (``SklearnSchedule``).
SKLEARN_RATES: tuple[str, ...] = ("constant", "invscaling", "adaptive")
#: The schedule names the toolbox estimators' ``learning_rate`` takes.
SCHEDULE_NAMES: tuple[str, ...] = ("step", "exponential", "cosine", "cosine_restarts", "onecycle",
                                   "plateau")


def named_schedule(name: str, *, max_iter: int, learning_rate_init: float,
                   n_iter_no_change: int, steps_per_epoch: int = 1) -> Schedule:
    """The schedule a ``learning_rate`` name stands for, with its defaults.

    =============== ========================================================
    name            schedule (``E = max_iter`` epochs)
    =============== ========================================================
    step            ``StepLR(step_size=max(1, E // 3), gamma=0.1)``
    exponential     ``ExponentialLR(gamma=0.01 ** (1 / E))``: 1% at the end
    cosine          ``CosineAnnealingLR(T_max=E, eta_min=0)``
    cosine_restarts ``CosineAnnealingWarmRestarts(T_0=max(1, E // 4))``:
                    four cycles
    onecycle        ``OneCycleLR(max_lr=learning_rate_init, total_steps=E *
                    batches per epoch)``; past the cycle the final rate holds
    plateau         ``ReduceLROnPlateau(factor=0.1, patience=max(1,
                    n_iter_no_change // 2))`` (torch's relative threshold
                    1e-4) on the validation loss when there is validation
                    data, else the training loss
    =============== ========================================================

    Parameters
    ----------
    name : {'step', 'exponential', 'cosine', 'cosine_restarts', 'onecycle', 'plateau'}
        The ``learning_rate`` name.
    max_iter : int
        The estimator's ``max_iter`` (epochs, ``E`` above).
    learning_rate_init : float
        The estimator's initial rate (``OneCycleLR``'s peak).
    n_iter_no_change : int
        The estimator's patience (``ReduceLROnPlateau``'s is half of it).
    steps_per_epoch : int, default=1
        Batches per epoch (``OneCycleLR`` counts steps).

    Returns
    -------
    schedule : Schedule
        A new schedule, unbound.

    Examples
    --------
    >>> from bpcore.schedules import named_schedule
    >>> named_schedule("cosine", max_iter=50, learning_rate_init=1e-3, n_iter_no_change=10)
    CosineAnnealingLR(T_max=50, eta_min=0.0)
    """
    E = int(max_iter)
    if name == "step":
        return StepLR(step_size=max(1, E // 3), gamma=0.1)
    if name == "exponential":
        return ExponentialLR(gamma=0.01 ** (1.0 / E))
    if name == "cosine":
        return CosineAnnealingLR(T_max=E)
    if name == "cosine_restarts":
        return CosineAnnealingWarmRestarts(T_0=max(1, E // 4))
    if name == "onecycle":
        return OneCycleLR(learning_rate_init, total_steps=max(2, E * int(steps_per_epoch)))
    if name == "plateau":
        return ReduceLROnPlateau(factor=0.1, patience=max(1, n_iter_no_change // 2))
    raise ValueError(f"unknown schedule name {name!r}; choose one of {SCHEDULE_NAMES}")
