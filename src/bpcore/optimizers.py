"""Optimizers: a class holds validated hyperparameters and state, a kernel does the maths.

Each optimizer updates one flat parameter buffer in place, in one pass, with
one kernel call (``step``), and the whole-epoch kernel calls the same update
after every minibatch. State buffers (velocity, moments) are laid out like the
parameters and created on the first step.
"""
import numpy as np

from . import _kernels
from ._validation import check_real


class Optimizer:
    """Base class: hyperparameters in ``self._config``, state in ``self.state``."""

    _kind = None

    def __init__(self, learning_rate):
        self._config = None
        self.state = None
        self._build(check_real(learning_rate, "learning_rate", low=0.0, low_open=True))

    def _build(self, learning_rate):
        raise NotImplementedError

    @property
    def learning_rate(self):
        """The current step size (schedules may change it between epochs)."""
        return self._config.lr

    @learning_rate.setter
    def learning_rate(self, value):
        self._config.lr = check_real(value, "learning_rate", low=0.0, low_open=True)

    def state_for(self, params):
        """The state buffers for ``params``, created zeroed on first use."""
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

    def reset(self):
        """Forget all state (moments, velocities, step count)."""
        self.state = None
        self._config.t = 0

    def step(self, params, grad):
        """Update ``params`` in place from ``grad`` (both flat, same dtype)."""
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
        _kernels.optimizer_step(self._config, params, grad, self.state_for(params))

    def __repr__(self):
        return f"{type(self).__name__}({self._repr_args()})"

    # The kernel config is a C struct without pickle support: carry its two
    # mutable numbers (step size, step count) and rebuild it on load, so a
    # pickled estimator can resume training with its optimizer state.
    def __getstate__(self):
        state = self.__dict__.copy()
        config = state.pop("_config")
        state["_lr"], state["_t"] = config.lr, config.t
        return state

    def __setstate__(self, state):
        state = dict(state)
        lr, t = state.pop("_lr"), state.pop("_t")
        self.__dict__.update(state)
        self._build(lr)
        self._config.t = t


class SGD(Optimizer):
    """Stochastic gradient descent with optional (Nesterov) momentum.

    Update, as scikit-learn writes it::

        v = momentum * v - learning_rate * g
        theta += v                                  # classical momentum
        theta += momentum * v - learning_rate * g   # nesterov=True

    With ``momentum=0`` this is ``theta -= learning_rate * g`` and keeps no state.
    """

    _kind = _kernels.OptimizerKind.SGD

    def __init__(self, learning_rate=0.01, momentum=0.0, nesterov=False):
        self.momentum = check_real(momentum, "momentum", low=0.0, high=1.0)
        self.nesterov = bool(nesterov)
        if self.nesterov and self.momentum == 0:
            raise ValueError("nesterov=True needs momentum > 0")
        super().__init__(learning_rate)

    def _build(self, lr):
        self._config = _kernels.OptimizerConfig(
            self._kind, lr, momentum=self.momentum, nesterov=self.nesterov)

    def _repr_args(self):
        return (f"learning_rate={self.learning_rate!r}, momentum={self.momentum!r}, "
                f"nesterov={self.nesterov!r}")


class Adam(Optimizer):
    """Adam (Kingma & Ba, 2014).

    Update at step ``t`` (counted from 1)::

        m = beta_1 * m + (1 - beta_1) * g
        v = beta_2 * v + (1 - beta_2) * g**2
        # variant="sklearn" (default; scikit-learn's form):
        theta -= learning_rate * sqrt(1 - beta_2**t) / (1 - beta_1**t) * m / (sqrt(v) + epsilon)
        # variant="paper" (the paper's and PyTorch's form):
        theta -= learning_rate / (1 - beta_1**t) * m / (sqrt(v) / sqrt(1 - beta_2**t) + epsilon)

    The two differ only in where ``epsilon`` sits relative to the bias
    correction of ``v``.
    """

    _kind = _kernels.OptimizerKind.ADAM
    _VARIANTS = ("sklearn", "paper")

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-8,
                 variant="sklearn"):
        self.beta_1 = check_real(beta_1, "beta_1", low=0.0, high=1.0, high_open=True)
        self.beta_2 = check_real(beta_2, "beta_2", low=0.0, high=1.0, high_open=True)
        self.epsilon = check_real(epsilon, "epsilon", low=0.0, low_open=True)
        if variant not in self._VARIANTS:
            raise ValueError(f"variant must be one of {self._VARIANTS}, got {variant!r}")
        self.variant = variant
        super().__init__(learning_rate)

    def _build(self, lr):
        self._config = _kernels.OptimizerConfig(
            self._kind, lr, beta_1=self.beta_1, beta_2=self.beta_2,
            epsilon=self.epsilon, paper_adam=self.variant == "paper")

    @property
    def t(self):
        """Number of steps taken."""
        return self._config.t

    def _repr_args(self):
        return (f"learning_rate={self.learning_rate!r}, beta_1={self.beta_1!r}, "
                f"beta_2={self.beta_2!r}, epsilon={self.epsilon!r}, variant={self.variant!r}")


class RMSProp(Optimizer):
    """RMSProp (Tieleman & Hinton, 2012)::

        v = rho * v + (1 - rho) * g**2
        theta -= learning_rate * g / (sqrt(v) + epsilon)
    """

    _kind = _kernels.OptimizerKind.RMSPROP

    def __init__(self, learning_rate=0.001, rho=0.9, epsilon=1e-8):
        self.rho = check_real(rho, "rho", low=0.0, high=1.0, high_open=True)
        self.epsilon = check_real(epsilon, "epsilon", low=0.0, low_open=True)
        super().__init__(learning_rate)

    def _build(self, lr):
        self._config = _kernels.OptimizerConfig(
            self._kind, lr, rho=self.rho, epsilon=self.epsilon)

    def _repr_args(self):
        return f"learning_rate={self.learning_rate!r}, rho={self.rho!r}, epsilon={self.epsilon!r}"


class AdaGrad(Optimizer):
    """AdaGrad (Duchi, Hazan & Singer, 2011)::

        G += g**2
        theta -= learning_rate * g / (sqrt(G) + epsilon)
    """

    _kind = _kernels.OptimizerKind.ADAGRAD

    def __init__(self, learning_rate=0.01, epsilon=1e-10):
        self.epsilon = check_real(epsilon, "epsilon", low=0.0, low_open=True)
        super().__init__(learning_rate)

    def _build(self, lr):
        self._config = _kernels.OptimizerConfig(self._kind, lr, epsilon=self.epsilon)

    def _repr_args(self):
        return f"learning_rate={self.learning_rate!r}, epsilon={self.epsilon!r}"


#: name -> class, for the estimators and the tests.
OPTIMIZERS = {"sgd": SGD, "adam": Adam, "rmsprop": RMSProp, "adagrad": AdaGrad}
