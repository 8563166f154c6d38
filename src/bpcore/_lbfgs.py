"""Full-batch L-BFGS on a Network's flat parameter buffer.

scipy's L-BFGS-B works on one float64 vector; ``Network.params`` already is
one vector in scikit-learn's ``_pack`` order (all weights, then all biases),
so nothing is packed or unpacked: each evaluation copies the optimizer's
``x`` into ``params`` and makes one kernel call for the loss and gradient.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import scipy.optimize

from . import _engine, _kernels
from .optimizers import LBFGS as LBFGS  # defined there; importable from here too

if TYPE_CHECKING:  # pragma: no cover - typing only
    from .network import Network


def minimize_lbfgs(
    net: Network,
    X: np.ndarray,
    Y: np.ndarray,
    sample_weight: np.ndarray | None,
    alpha: float,
    *,
    options: dict[str, Any],
    l1: float = 0.0,
    callback: Any = None,
) -> scipy.optimize.OptimizeResult:
    """Minimize the full-batch loss of ``net`` on (X, Y) with L-BFGS-B, in place.

    Parameters
    ----------
    net : Network
        Its ``params`` are the starting point and receive the result.
    X, Y : C-contiguous arrays of ``net.dtype``
        Inputs (n_samples, n_features) and targets (n_samples, n_outputs).
    sample_weight : array of ``net.dtype`` or None
        Per-sample weights; None weighs every sample 1.
    alpha : float
        L2 strength (``0.5 * alpha * sum(||W||^2) / sum(sample_weight)``).
    options : dict
        Passed to ``scipy.optimize.minimize(method="L-BFGS-B")``.
    l1 : float, default=0.0
        L1 strength (``l1 * sum(|W|) / sum(sample_weight)``).
    callback : callable, optional
        scipy's ``callback(xk)`` after every iteration (raise
        ``StopIteration`` to stop).

    Returns
    -------
    scipy.optimize.OptimizeResult
    """
    if any(net._batch_norm) or any(net._dropout):
        raise ValueError(
            "L-BFGS trains on the whole data at once, and batch norm and dropout are "
            "defined by minibatch training; use a minibatch optimizer (e.g. Adam) for "
            "this network"
        )
    params = net.params
    rows = net._block_rows(X.shape[0])
    work = np.empty(net.layout.workspace_size(rows), dtype=params.dtype)
    grad = np.empty_like(params)

    def loss_and_grad(x: np.ndarray) -> tuple[float, np.ndarray]:
        params[...] = x
        loss = _kernels.loss_grad(net.layout, params, X, Y, sample_weight, alpha,
                                  grad, work, rows, buffers=net.buffers, l1=l1)
        # A fresh float64 array: scipy keeps the gradients it is given.
        return loss, grad.astype(np.float64)

    # Small products run faster on one BLAS thread (the epoch's rule,
    # _engine.blas_threads_pay): forward and backward over one block of rows.
    with _engine.blas_for(3 * rows * net.layout.macs_per_row):
        result = scipy.optimize.minimize(
            loss_and_grad, params.astype(np.float64), method="L-BFGS-B", jac=True,
            options=options, callback=callback,
        )
    params[...] = result.x
    return result
