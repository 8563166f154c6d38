"""The public gradient check: ``loss_and_grad`` against central finite differences."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import numpy as np
from numpy.typing import ArrayLike, NDArray
from sklearn.utils import check_random_state

from ._validation import check_positive_int, check_real

__all__ = ["check_gradients"]

#: Relative step of the finite differences: ``h_i = eps * max(1, |theta_i|)``.
#: Central differences err by ~h**2 (truncation) plus ~1e-16 * |loss| / h
#: (rounding). Measured on the activation x loss matrix of
#: tests/test_gradients.py (532 cases), the worst error is 2.4e-6 with 1e-5
#: and 2.3e-5 with 1e-6: rounding dominates on small gradient entries.
DEFAULT_EPS = 1e-5

#: Floor of the relative error's denominator: ``max(FLOOR * |loss|, MIN_FLOOR)``.
#: Below ~1e-5 |loss| a gradient entry is lost in the rounding noise of the
#: differences (~1e-11 |loss| at the default step), so such entries are
#: compared in absolute terms at that scale, and rounding alone costs at most
#: ~1e-6 of error. With a floor of 1e-8 (tests/test_gradients.py's, which
#: measures per-block norms instead) single entries of ~1e-7 reach 1e-4.
FLOOR = 1e-5
MIN_FLOOR = 1e-8


class _Differentiable(Protocol):
    """What ``check_gradients`` needs of ``net`` (a bpcore.Network has it)."""

    @property
    def params(self) -> NDArray[np.floating[Any]]: ...

    @property
    def loss_and_grad(self) -> Callable[..., tuple[float, ArrayLike]]: ...


def check_gradients(
    net: _Differentiable, X: ArrayLike, Y: ArrayLike, *, eps: float | None = None,
    max_params: int | None = None, random_state: int | np.random.RandomState | None = 0,
    **loss_kwargs: Any,
) -> float:
    """Largest relative error between ``net.loss_and_grad`` and finite differences.

    For every checked parameter ``i``, the loss is evaluated at
    ``theta_i + h_i`` and ``theta_i - h_i`` (``h_i = eps * max(1,
    |theta_i|)``), the other parameters fixed, and the central difference::

        fd_i = (L(theta_i + h_i) - L(theta_i - h_i)) / (2 h_i)

    is compared with the analytic gradient ``g_i``::

        err_i = |g_i - fd_i| / max(|g_i|, |fd_i|, floor)
        floor = max(1e-5 * |L|, 1e-8)

    with ``L`` the loss at ``theta``. The result is ``max_i err_i``. On a
    correct gradient it is typically below 1e-5 in float64 (rounding and
    truncation of the differences); a wrong gradient gives errors of order
    1e-2 to 1. The floor keeps entries where both are ~0 from dividing
    noise by noise: below ``1e-5 |L|`` the differences are dominated by
    rounding (``~1e-16 |L| / h_i``). ``2 h_i`` is taken as the difference of the
    two perturbed values as stored, so the step carries no rounding error.

    Parameters
    ----------
    net : Network
        A float64 network (finite differences are meaningless in float32).
        ``net.params`` is perturbed in place and restored exactly, bit for
        bit, before returning, also on error; so is ``net.buffers`` (batch
        norm's running statistics), if the network has them.
    X : array-like of shape (n_samples, n_features)
        Inputs; a few rows suffice.
    Y : array-like of shape (n_samples, n_outputs)
        Targets, as ``net.loss_and_grad`` takes them.
    eps : float, optional
        Relative step; default 1e-5.
    max_params : int, optional
        Check a random subset of this many parameters (without replacement)
        instead of all of them: each one costs two loss evaluations.
    random_state : int, RandomState instance or None, default=0
        Draws the subset when ``max_params`` is smaller than ``net.n_params``.
    **loss_kwargs
        Passed to ``net.loss_and_grad`` (``alpha``, ``sample_weight``, ...).
        A training-mode check (``training=True``) must fix ``seed`` so that
        every evaluation draws the same dropout masks.

    Returns
    -------
    error : float
        The largest relative error ``max_i err_i``.

    Notes
    -----
    Kinks break finite differences: where a ReLU-like unit's pre-activation
    lies within a step of 0, ``fd_i`` straddles the kink and disagrees with
    the (one-sided) analytic gradient. Keep the data away from the kinks, or
    use a smooth activation, when checking a gradient implementation.

    Examples
    --------
    >>> import numpy as np
    >>> import bpcore
    >>> from bpcore.gradcheck import check_gradients
    >>> rng = np.random.default_rng(0)
    >>> net = bpcore.Network([3, 5, 2], activation="tanh", random_state=0)
    >>> X, Y = rng.standard_normal((8, 3)), rng.standard_normal((8, 2))
    >>> check_gradients(net, X, Y, alpha=0.1) < 1e-6
    True
    """
    params = getattr(net, "params", None)
    if not isinstance(params, np.ndarray) or params.ndim != 1 or not callable(
            getattr(net, "loss_and_grad", None)):
        raise TypeError(
            "net must have a flat `params` array and a `loss_and_grad(X, Y, ...)` method "
            f"(a bpcore.Network), got {type(net).__name__}")
    if params.dtype != np.float64:
        raise ValueError(
            f"check_gradients needs a float64 network, got {params.dtype}: finite "
            "differences in float32 carry ~1e-3 of rounding noise; build the network "
            "with dtype='float64'")
    eps = DEFAULT_EPS if eps is None else check_real(eps, "eps", low=0.0, high=0.1,
                                                     low_open=True)
    n = params.size
    if max_params is None or check_positive_int(max_params, "max_params") >= n:
        indices = np.arange(n)
    else:
        indices = np.sort(check_random_state(random_state).choice(n, max_params, replace=False))

    saved = params.copy()
    buffers: Any = getattr(net, "buffers", None)  # an array if saved_buffers is not None
    saved_buffers = buffers.copy() if isinstance(buffers, np.ndarray) else None
    try:
        loss, grad = net.loss_and_grad(X, Y, **loss_kwargs)
        grad = np.asarray(grad, dtype=np.float64)
        if grad.shape != params.shape:
            raise ValueError(f"loss_and_grad returned a gradient of shape {grad.shape}, "
                             f"expected {params.shape} like net.params")
        fd = np.empty(indices.size)
        for k, i in enumerate(indices):
            fd[k] = _central_difference(net, params, i, eps, X, Y, loss_kwargs)
            params[i] = saved[i]
    finally:
        np.copyto(params, saved)
        if saved_buffers is not None:  # in case a training-mode loss updates running stats
            np.copyto(buffers, saved_buffers)
    g = grad[indices]
    if not (np.isfinite(loss) and np.isfinite(g).all() and np.isfinite(fd).all()):
        raise ValueError("the loss or its gradient is not finite at these parameters; "
                         "check the inputs and the network's scale")
    floor = max(FLOOR * abs(loss), MIN_FLOOR)
    err = np.abs(g - fd) / np.maximum(np.maximum(np.abs(g), np.abs(fd)), floor)
    return float(err.max())


def _central_difference(
    net: _Differentiable, params: NDArray[np.float64], i: np.integer[Any], eps: float,
    X: ArrayLike, Y: ArrayLike, loss_kwargs: dict[str, Any],
) -> float:
    theta: float = params[i]
    h = eps * max(1.0, abs(theta))
    params[i] = theta + h
    up: float = params[i]
    loss_up, _ = net.loss_and_grad(X, Y, **loss_kwargs)
    params[i] = theta - h
    down: float = params[i]
    loss_down, _ = net.loss_and_grad(X, Y, **loss_kwargs)
    return (loss_up - loss_down) / (up - down)
