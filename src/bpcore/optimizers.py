"""Optimizers: a class holds validated hyperparameters and state, a kernel does the maths.

Each optimizer updates one flat parameter buffer in place, in one pass, with
one kernel call (``step``), and the whole-epoch kernel calls the same update
after every minibatch. State buffers (velocity, moments) are laid out like the
parameters and created on the first step.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal, Protocol

import numpy as np
from numpy.typing import ArrayLike, NDArray

from . import _kernels

if TYPE_CHECKING:  # pragma: no cover - typing only
    import scipy.optimize
from ._validation import check_positive_int, check_real


class _Config(Protocol):
    """What Python reads and writes of a ``_kernels.OptimizerConfig`` (which
    has no stub): the C struct's fields behind its properties."""

    lr: float
    t: int
    mu_product: float

    @property
    def n_state(self) -> int: ...


class Optimizer:
    """Base class of the optimizers: hyperparameters, state and one-kernel ``step``.

    A subclass validates its hyperparameters and names its update rule;
    the base keeps the step size (:attr:`learning_rate`, which schedules
    change between epochs), the per-parameter state (``state``: moments,
    velocities; created on the first :meth:`step`, of the parameters' size
    and dtype) and the step count :attr:`t`. Not used directly: pick
    :class:`SGD`, :class:`Adam`, :class:`AdamW`, :class:`NAdam`,
    :class:`RMSProp`, :class:`AdaGrad` or :class:`RPROP`.

    Parameters
    ----------
    learning_rate : float
        Step size, > 0.

    Attributes
    ----------
    state : ndarray of shape (n_state, n_params) or None
        The optimizer's buffers (None before the first step or after
        :meth:`reset`).

    Examples
    --------
    >>> import numpy as np, bpcore
    >>> opt = bpcore.Adam(learning_rate=0.1)
    >>> isinstance(opt, bpcore.Optimizer)
    True
    >>> params = np.array([1.0, -2.0])
    >>> opt.step(params, grad=2 * params)     # one step on sum(params**2)
    >>> np.round(params, 6), opt.t   # Adam's first step: lr * sign(g)
    (array([ 0.9, -1.9]), 1)
    """

    _kind: int | None = None
    _config: _Config
    state: NDArray[np.floating[Any]] | None

    def __init__(self, learning_rate: float) -> None:
        self._config = None  # type: ignore[assignment]  # built by _build just below
        self.state = None
        self._build(check_real(learning_rate, "learning_rate", low=0.0, low_open=True))

    def _build(self, learning_rate: float) -> None:
        raise NotImplementedError

    @property
    def learning_rate(self) -> float:
        """The current step size (schedules may change it between epochs).

        It may be set to 0 (an annealing schedule reaches 0 at its end, as
        torch's do); the constructors ask for a positive rate."""
        return self._config.lr

    @learning_rate.setter
    def learning_rate(self, value: float) -> None:
        self._config.lr = check_real(value, "learning_rate", low=0.0)

    def state_for(self, params: NDArray[np.floating[Any]]) -> NDArray[np.floating[Any]]:
        """The state buffers for ``params``, created zeroed on first use.

        Parameters
        ----------
        params : ndarray of shape (n_params,)
            The flat parameters the state belongs to.

        Returns
        -------
        state : ndarray of shape (n_state, n_params)
            The buffers, of ``params``' dtype; a ValueError if the optimizer
            already holds state of another size or dtype.
        """
        n_state = self._config.n_state
        shape = (n_state, params.shape[0])
        if self.state is None:
            self.state = np.zeros(shape, dtype=params.dtype)
        elif self.state.shape != shape or self.state.dtype != params.dtype:
            raise ValueError(
                f"{type(self).__name__} holds state for {self.state.shape[1]} "
                f"{self.state.dtype} parameters but got {params.shape[0]} "
                f"{params.dtype}; call reset() before using it on another network"
            )
        return self.state

    @property
    def t(self) -> int:
        """Number of steps taken."""
        return self._config.t

    def reset(self) -> None:
        """Forget all state (moments, velocities, step count)."""
        self.state = None
        self._config.t = 0
        self._config.mu_product = 1.0

    def step(self, params: NDArray[np.floating[Any]], grad: ArrayLike,
             n_weights: int | np.integer[Any] | None = None) -> None:
        """Update ``params`` in place from ``grad`` (both flat, same dtype).

        One kernel call.

        Parameters
        ----------
        params : ndarray of shape (n_params,)
            Writable, contiguous float32 or float64 parameters (e.g.
            ``Network.params``), updated in place.
        grad : array-like of shape (n_params,)
            The gradient of the loss with respect to ``params``.
        n_weights : int or None, default=None
            ``params[:n_weights]`` are weights, the rest biases or
            batch-norm parameters (for a ``Network``:
            ``sum(W.size for W in net.coefs)``); only :class:`AdamW`'s decay
            tells them apart. None: all are weights.
        """
        if not (isinstance(params, np.ndarray) and params.ndim == 1
                and params.dtype in (np.float32, np.float64)
                and params.flags.c_contiguous and params.flags.writeable):
            raise TypeError(
                "params must be a writable, contiguous 1-D float32 or float64 ndarray "
                "(e.g. Network.params)"
            )
        grad = np.asarray(grad)
        if grad.shape != params.shape:
            raise ValueError(f"grad has shape {grad.shape}, params {params.shape}")
        grad = np.ascontiguousarray(grad, dtype=params.dtype)
        if n_weights is None:
            n_weights = params.shape[0]
        elif (isinstance(n_weights, (bool, np.bool_))
              or not isinstance(n_weights, (int, np.integer))
              or not 0 <= n_weights <= params.shape[0]):
            raise ValueError(f"n_weights must be an integer in [0, {params.shape[0]}] "
                             f"(the number of weights in params), got {n_weights!r}")
        _kernels.optimizer_step(self._config, params, grad, self.state_for(params),
                                int(n_weights))

    def __repr__(self) -> str:
        # Every optimizer class defines _repr_args; the base class is abstract.
        return f"{type(self).__name__}({self._repr_args()})"  # type: ignore[attr-defined]

    # The kernel config is a C struct without pickle support: carry its
    # mutable numbers (step size, step count, NAdam's running product of
    # momentum factors) and rebuild it on load, so a pickled estimator can
    # resume training with its optimizer state.
    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        config = state.pop("_config")
        state["_lr"], state["_t"] = config.lr, config.t
        state["_mu_product"] = config.mu_product
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        state = dict(state)
        lr, t = state.pop("_lr"), state.pop("_t")
        mu_product = state.pop("_mu_product", None)
        self.__dict__.update(state)
        self._build(lr)
        self._config.t = t
        if mu_product is not None:
            self._config.mu_product = mu_product


def _check_moments(beta_1: float, beta_2: float,
                   epsilon: float) -> tuple[float, float, float]:
    """The moment hyperparameters of Adam, AdamW and NAdam, checked."""
    return (check_real(beta_1, "beta_1", low=0.0, high=1.0, high_open=True),
            check_real(beta_2, "beta_2", low=0.0, high=1.0, high_open=True),
            check_real(epsilon, "epsilon", low=0.0, low_open=True))


def _moments_repr(opt: Any) -> str:
    return (f"learning_rate={opt.learning_rate!r}, beta_1={opt.beta_1!r}, "
            f"beta_2={opt.beta_2!r}, epsilon={opt.epsilon!r}")


class SGD(Optimizer):
    """Stochastic gradient descent with optional (Nesterov) momentum.

    Update, as scikit-learn writes it::

        v = momentum * v - learning_rate * g
        theta += v                                  # classical momentum
        theta += momentum * v - learning_rate * g   # nesterov=True

    With ``momentum=0`` this is ``theta -= learning_rate * g`` and keeps no state.

    Parameters
    ----------
    learning_rate : float, default=0.01
        Step size, > 0.
    momentum : float, default=0.0
        Momentum, in [0, 1].
    nesterov : bool, default=False
        Nesterov's momentum (needs ``momentum > 0``).

    Examples
    --------
    >>> import numpy as np, bpcore
    >>> opt = bpcore.SGD(learning_rate=0.1, momentum=0.9, nesterov=True)
    >>> params = np.array([1.0])
    >>> opt.step(params, grad=np.array([1.0]))
    >>> params            # 1 + 0.9 * (-0.1) - 0.1 * 1
    array([0.81])
    """

    _kind = _kernels.OptimizerKind.SGD

    def __init__(self, learning_rate: float = 0.01, momentum: float = 0.0,
                 nesterov: bool = False) -> None:
        self.momentum = check_real(momentum, "momentum", low=0.0, high=1.0)
        self.nesterov = bool(nesterov)
        if self.nesterov and self.momentum == 0:
            raise ValueError("nesterov=True needs momentum > 0")
        super().__init__(learning_rate)

    def _build(self, lr: float) -> None:
        self._config = _kernels.OptimizerConfig(
            self._kind, lr, momentum=self.momentum, nesterov=self.nesterov)

    def _repr_args(self) -> str:
        return (f"learning_rate={self.learning_rate!r}, momentum={self.momentum!r}, "
                f"nesterov={self.nesterov!r}")


class Adam(Optimizer):
    """Adam (Kingma & Ba, 2014), optionally with AMSGrad (Reddi et al., 2018).

    Parameters
    ----------
    learning_rate : float, default=0.001
        Step size, > 0.
    beta_1, beta_2 : float, default=0.9, 0.999
        Decay rates of the first and second moment estimates, in [0, 1).
    epsilon : float, default=1e-8
        Added to the denominator, > 0.
    variant : {"sklearn", "paper"}, default="sklearn"
        Where ``epsilon`` sits (see Notes). ``"paper"`` is the paper's and
        ``torch.optim.Adam``'s form, ``"sklearn"`` scikit-learn's.
    amsgrad : bool, default=False
        Normalize by the running maximum of ``v`` (a third state buffer), as
        ``torch.optim.Adam(amsgrad=True)``. Needs ``variant="paper"``: AMSGrad
        is defined on the paper's form, and scikit-learn has none.

    Notes
    -----
    Update at step ``t`` (counted from 1), ``g`` the gradient::

        m = beta_1 * m + (1 - beta_1) * g
        v = beta_2 * v + (1 - beta_2) * g**2
        # variant="sklearn" (default; scikit-learn's form):
        theta -= learning_rate * sqrt(1 - beta_2**t) / (1 - beta_1**t) * m / (sqrt(v) + epsilon)
        # variant="paper" (the paper's and PyTorch's form):
        theta -= learning_rate / (1 - beta_1**t) * m / (sqrt(v) / sqrt(1 - beta_2**t) + epsilon)
        # amsgrad=True (paper form): vmax = max(vmax, v), and vmax replaces v
        # in the line above

    The two variants differ only in where ``epsilon`` sits relative to the
    bias correction of ``v``. As in PyTorch (and unlike Reddi et al.'s
    algorithm), AMSGrad keeps the bias correction and takes the maximum of
    the uncorrected ``v``.

    Examples
    --------
    >>> import numpy as np
    >>> from bpcore import Adam
    >>> theta = np.array([1.0, -2.0])
    >>> opt = Adam(learning_rate=0.1, variant="paper", amsgrad=True)
    >>> opt.step(theta, np.array([0.5, -3.0]))  # the first step moves each by ~lr
    >>> theta
    array([ 0.9, -1.9])
    >>> opt.state.shape                          # m, v and the maximum of v
    (3, 2)
    """

    _kind = _kernels.OptimizerKind.ADAM
    _VARIANTS = ("sklearn", "paper")
    _weight_decay = 0.0

    def __init__(self, learning_rate: float = 0.001, beta_1: float = 0.9,
                 beta_2: float = 0.999, epsilon: float = 1e-8,
                 variant: Literal["sklearn", "paper"] = "sklearn",
                 amsgrad: bool = False) -> None:
        self.beta_1, self.beta_2, self.epsilon = _check_moments(beta_1, beta_2, epsilon)
        if variant not in self._VARIANTS:
            raise ValueError(f"variant must be one of {self._VARIANTS}, got {variant!r}")
        if not isinstance(amsgrad, (bool, np.bool_)):
            raise ValueError(f"amsgrad must be True or False, got {amsgrad!r}")
        if amsgrad and variant != "paper":
            raise ValueError(
                f"amsgrad=True needs variant='paper' (torch.optim.Adam's form), got "
                f"variant={variant!r}: scikit-learn's variant has no AMSGrad"
            )
        self.variant = variant
        self.amsgrad = bool(amsgrad)
        super().__init__(learning_rate)

    def _build(self, lr: float) -> None:
        self._config = _kernels.OptimizerConfig(
            self._kind, lr, beta_1=self.beta_1, beta_2=self.beta_2,
            epsilon=self.epsilon, paper_adam=self.variant == "paper",
            weight_decay=self._weight_decay, amsgrad=self.amsgrad)

    def _repr_args(self) -> str:
        return (_moments_repr(self) + f", variant={self.variant!r}"
                + (", amsgrad=True" if self.amsgrad else ""))


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter, 2019), as ``torch.optim.AdamW``.

    Parameters
    ----------
    learning_rate, beta_1, beta_2, epsilon : float, default=0.001, 0.9, 0.999, 1e-8
        As for :class:`Adam`.
    weight_decay : float, default=0.01
        Decoupled decay rate, >= 0. It applies to the weight blocks only
        (``theta[:n_weights]``, the ``W_l``): biases and batch-norm
        parameters are not decayed.
    amsgrad : bool, default=False
        As ``torch.optim.AdamW(amsgrad=True)``: see :class:`Adam`.

    Notes
    -----
    Adam in the paper's form (``Adam(variant="paper")``) after a decay of the
    weights, at step ``t`` (counted from 1)::

        theta *= 1 - learning_rate * weight_decay         # weights only
        # then Adam's step (m, v and theta) in the paper's form

    As in PyTorch, the decay is scaled by the learning rate; the paper scales
    it by the schedule multiplier only (``theta *= 1 - eta_t * weight_decay``
    with a separate ``eta_t``). Unlike ``alpha`` (the L2 penalty), the decay
    does not enter ``m`` and ``v``, nor the loss.

    Examples
    --------
    >>> import numpy as np
    >>> from bpcore import AdamW
    >>> theta = np.array([1.0, -2.0])
    >>> opt = AdamW(learning_rate=0.1, weight_decay=0.5)
    >>> opt.step(theta, np.array([0.0, 0.0]))   # no gradient: only the decay acts
    >>> theta
    array([ 0.95, -1.9 ])
    """

    def __init__(self, learning_rate: float = 0.001, beta_1: float = 0.9,
                 beta_2: float = 0.999, epsilon: float = 1e-8, weight_decay: float = 1e-2,
                 amsgrad: bool = False) -> None:
        self.weight_decay = check_real(weight_decay, "weight_decay", low=0.0)
        super().__init__(learning_rate, beta_1=beta_1, beta_2=beta_2, epsilon=epsilon,
                         variant="paper", amsgrad=amsgrad)

    # A property over Adam's class constant 0.0, which nothing assigns.
    @property
    def _weight_decay(self) -> float:  # type: ignore[override]
        return self.weight_decay

    def _repr_args(self) -> str:
        return (_moments_repr(self) + f", weight_decay={self.weight_decay!r}"
                + (", amsgrad=True" if self.amsgrad else ""))


class RMSProp(Optimizer):
    """RMSProp (Tieleman & Hinton, 2012).

    Update rule::

        v = rho * v + (1 - rho) * g**2
        theta -= learning_rate * g / (sqrt(v) + epsilon)

    Parameters
    ----------
    learning_rate : float, default=0.001
        Step size, > 0.
    rho : float, default=0.9
        Decay rate of the running mean of squared gradients, in [0, 1).
    epsilon : float, default=1e-8
        Added to the denominator, > 0.

    Examples
    --------
    >>> import numpy as np, bpcore
    >>> opt = bpcore.RMSProp(learning_rate=0.01)
    >>> params = np.array([1.0])
    >>> opt.step(params, grad=np.array([2.0]))
    >>> round(float(params[0]), 6)     # 1 - 0.01 * 2 / (sqrt(0.1 * 4) + 1e-8)
    0.968377
    """

    _kind = _kernels.OptimizerKind.RMSPROP

    def __init__(self, learning_rate: float = 0.001, rho: float = 0.9,
                 epsilon: float = 1e-8) -> None:
        self.rho = check_real(rho, "rho", low=0.0, high=1.0, high_open=True)
        self.epsilon = check_real(epsilon, "epsilon", low=0.0, low_open=True)
        super().__init__(learning_rate)

    def _build(self, lr: float) -> None:
        self._config = _kernels.OptimizerConfig(
            self._kind, lr, rho=self.rho, epsilon=self.epsilon)

    def _repr_args(self) -> str:
        return f"learning_rate={self.learning_rate!r}, rho={self.rho!r}, epsilon={self.epsilon!r}"


class AdaGrad(Optimizer):
    """AdaGrad (Duchi, Hazan & Singer, 2011).

    Update rule::

        G += g**2
        theta -= learning_rate * g / (sqrt(G) + epsilon)

    Parameters
    ----------
    learning_rate : float, default=0.01
        Step size, > 0.
    epsilon : float, default=1e-10
        Added to the denominator, > 0.

    Examples
    --------
    >>> import numpy as np, bpcore
    >>> opt = bpcore.AdaGrad(learning_rate=0.5)
    >>> params = np.array([1.0, 1.0])
    >>> opt.step(params, grad=np.array([2.0, -4.0]))
    >>> params             # each moves by the rate: g / sqrt(g**2) = sign(g)
    array([0.5, 1.5])
    """

    _kind = _kernels.OptimizerKind.ADAGRAD

    def __init__(self, learning_rate: float = 0.01, epsilon: float = 1e-10) -> None:
        self.epsilon = check_real(epsilon, "epsilon", low=0.0, low_open=True)
        super().__init__(learning_rate)

    def _build(self, lr: float) -> None:
        self._config = _kernels.OptimizerConfig(self._kind, lr, epsilon=self.epsilon)

    def _repr_args(self) -> str:
        return f"learning_rate={self.learning_rate!r}, epsilon={self.epsilon!r}"


class NAdam(Optimizer):
    """Adam with Nesterov momentum (Dozat, 2016), as ``torch.optim.NAdam``.

    Parameters
    ----------
    learning_rate : float, default=0.002
        Step size, > 0.
    beta_1, beta_2, epsilon : float, default=0.9, 0.999, 1e-8
        As for :class:`Adam`.
    momentum_decay : float, default=0.004
        ``psi`` of the momentum schedule below, >= 0.

    Notes
    -----
    At step ``t`` (counted from 1), with the momentum schedule
    ``mu_t = beta_1 * (1 - 0.5 * 0.96**(t * momentum_decay))`` and its
    running product ``mu_product = mu_1 * ... * mu_t``::

        m = beta_1 * m + (1 - beta_1) * g
        v = beta_2 * v + (1 - beta_2) * g**2
        d = sqrt(v / (1 - beta_2**t)) + epsilon
        theta -= learning_rate * (1 - mu_t) / (1 - mu_product) * g / d
        theta -= learning_rate * mu_{t+1} / (1 - mu_product * mu_{t+1}) * m / d

    This is PyTorch's form. It departs from Dozat's paper in taking ``m``
    with ``beta_1`` rather than ``mu_t`` as its decay and in adding
    ``epsilon`` after the square root. ``mu_product`` is kept in float64
    for either dtype (PyTorch keeps it in its default dtype, float32 unless
    ``torch.set_default_dtype(torch.float64)``).

    Examples
    --------
    >>> import numpy as np
    >>> from bpcore import NAdam
    >>> theta = np.array([1.0, -2.0])
    >>> opt = NAdam(learning_rate=0.1)
    >>> for _ in range(3):
    ...     opt.step(theta, np.array([0.5, -3.0]))
    >>> theta.round(3)
    array([ 0.743, -1.743])
    >>> opt.t
    3
    """

    _kind = _kernels.OptimizerKind.NADAM

    def __init__(self, learning_rate: float = 0.002, beta_1: float = 0.9,
                 beta_2: float = 0.999, epsilon: float = 1e-8,
                 momentum_decay: float = 4e-3) -> None:
        self.beta_1, self.beta_2, self.epsilon = _check_moments(beta_1, beta_2, epsilon)
        self.momentum_decay = check_real(momentum_decay, "momentum_decay", low=0.0)
        super().__init__(learning_rate)

    def _build(self, lr: float) -> None:
        self._config = _kernels.OptimizerConfig(
            self._kind, lr, beta_1=self.beta_1, beta_2=self.beta_2, epsilon=self.epsilon,
            momentum_decay=self.momentum_decay)

    def _repr_args(self) -> str:
        return _moments_repr(self) + f", momentum_decay={self.momentum_decay!r}"


def _check_pair(value: tuple[float, float], name: str) -> tuple[float, float]:
    """Two finite reals as a tuple of floats."""
    try:
        first, second = value
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a pair of numbers, got {value!r}") from None
    return (check_real(first, f"{name}[0]"), check_real(second, f"{name}[1]"))


class RPROP(Optimizer):
    """Resilient backpropagation (Riedmiller & Braun, 1993), as ``torch.optim.Rprop``.

    Each parameter has its own step size, which grows while its gradient
    keeps its sign and shrinks when the sign flips; only the sign of the
    gradient is used. Meant for full batches (``batch_size`` at least the
    number of samples): minibatch noise flips signs at random.

    Parameters
    ----------
    learning_rate : float, default=0.01
        The initial step size of every parameter, > 0.
    etas : (float, float), default=(0.5, 1.2)
        ``(eta_minus, eta_plus)``, the factors that shrink and grow a step
        size, with ``0 < eta_minus < 1 < eta_plus``.
    step_sizes : (float, float), default=(1e-06, 50.0)
        ``(step_min, step_max)``, the bounds of a step size, with
        ``0 <= step_min <= step_max``.

    Notes
    -----
    At every step (``size = learning_rate`` and ``g_prev = 0`` before the
    first)::

        s = sign(g * g_prev)
        size = clip(size * (eta_plus if s > 0 else eta_minus if s < 0 else 1),
                    step_min, step_max)
        g = 0 where s < 0          # after a sign flip: no move, no sign remembered
        theta -= sign(g) * size
        g_prev = g

    This is PyTorch's form, the paper's Rprop- variant without weight
    backtracking. The state buffers are ``g_prev`` and ``size``.

    Examples
    --------
    >>> import numpy as np
    >>> from bpcore import RPROP
    >>> theta = np.array([1.0, -2.0])
    >>> opt = RPROP(learning_rate=0.1)
    >>> opt.step(theta, np.array([0.5, -3.0]))   # each moves by lr against its sign
    >>> opt.step(theta, np.array([0.5, 3.0]))    # same sign: 1.2 lr; flipped: no move
    >>> theta
    array([ 0.78, -1.9 ])
    """

    _kind = _kernels.OptimizerKind.RPROP

    def __init__(self, learning_rate: float = 0.01, etas: tuple[float, float] = (0.5, 1.2),
                 step_sizes: tuple[float, float] = (1e-6, 50.0)) -> None:
        eta_minus, eta_plus = _check_pair(etas, "etas")
        if not 0.0 < eta_minus < 1.0 < eta_plus:
            raise ValueError(f"etas must satisfy 0 < etas[0] < 1 < etas[1], got {etas!r}")
        step_min, step_max = _check_pair(step_sizes, "step_sizes")
        if not 0.0 <= step_min <= step_max:
            raise ValueError("step_sizes must satisfy 0 <= step_sizes[0] <= step_sizes[1], "
                             f"got {step_sizes!r}")
        self.etas = (eta_minus, eta_plus)
        self.step_sizes = (step_min, step_max)
        super().__init__(learning_rate)

    def _build(self, lr: float) -> None:
        self._config = _kernels.OptimizerConfig(
            self._kind, lr, etas=self.etas, step_sizes=self.step_sizes)

    def _repr_args(self) -> str:
        return (f"learning_rate={self.learning_rate!r}, etas={self.etas!r}, "
                f"step_sizes={self.step_sizes!r}")


class LBFGS:
    """Full-batch L-BFGS-B (scipy) on ``net.params``, for ``bpcore.train``.

    ``train(net, X, Y, optimizer=LBFGS())`` minimizes the loss over the whole
    data (with ``alpha``/``l1`` penalties and sample weights); ``epochs``,
    ``batch_size`` and schedules do not apply. Networks with batch norm or
    dropout are refused: both are defined by minibatch training.

    Parameters
    ----------
    max_iter : int, default=200
        Maximum number of L-BFGS iterations.
    tol : float, default=1e-4
        scipy's ``gtol``: stop when every projected gradient component is
        at most ``tol``.
    max_fun : int, default=15000
        Maximum number of loss evaluations.

    Attributes
    ----------
    result_ : scipy.optimize.OptimizeResult
        The last run's result (``nit``, ``nfev``, ``message``, ...).

    Examples
    --------
    >>> import numpy as np, bpcore
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((100, 3)); Y = X @ np.ones((3, 1))
    >>> net = bpcore.Network([3, 8, 1], random_state=0)
    >>> h = bpcore.train(net, X, Y, optimizer=bpcore.LBFGS(max_iter=50))
    >>> h.loss[0] < 0.01
    True
    """

    result_: scipy.optimize.OptimizeResult  # set by bpcore.train

    def __init__(self, max_iter: int = 200, tol: float = 1e-4, max_fun: int = 15000) -> None:
        self.max_iter = check_positive_int(max_iter, "max_iter")
        self.tol = check_real(tol, "tol", low=0.0)
        self.max_fun = check_positive_int(max_fun, "max_fun")

    def __repr__(self) -> str:
        return f"LBFGS(max_iter={self.max_iter}, tol={self.tol!r}, max_fun={self.max_fun})"


#: name -> class, for the estimators and the tests (the minibatch optimizers;
#: LBFGS is full batch).
OPTIMIZERS: dict[str, type[Optimizer]] = {
    "sgd": SGD, "adam": Adam, "rmsprop": RMSProp, "adagrad": AdaGrad,
    "adamw": AdamW, "nadam": NAdam, "rprop": RPROP}
