"""Full-batch L-BFGS on a Network's flat parameter buffer.

scipy's L-BFGS-B works on one float64 vector; ``Network.params`` already is
one vector in scikit-learn's ``_pack`` order (all weights, then all biases),
so nothing is packed or unpacked: each evaluation copies the optimizer's
``x`` into ``params`` and makes one kernel call for the loss and gradient.
"""
import numpy as np
import scipy.optimize

from . import _kernels


def minimize_lbfgs(net, X, Y, sample_weight, alpha, *, options):
    """Minimize the full-batch loss of ``net`` on (X, Y) with L-BFGS-B, in place.

    Parameters
    ----------
    net : Network
        Its ``params`` are the starting point and receive the result.
    X, Y : C-contiguous arrays of ``net.dtype``
        Inputs (n_samples, n_features) and targets (n_samples, n_outputs).
    sample_weight : array of ``net.dtype`` or None
    alpha : float
        L2 strength (``0.5 * alpha * sum(||W||^2) / sum(sample_weight)``).
    options : dict
        Passed to ``scipy.optimize.minimize(method="L-BFGS-B")``.

    Returns
    -------
    scipy.optimize.OptimizeResult
    """
    params = net.params
    rows = net._block_rows(X.shape[0])
    work = np.empty(net.layout.workspace_size(rows), dtype=params.dtype)
    grad = np.empty_like(params)

    def loss_and_grad(x):
        params[...] = x
        loss = _kernels.loss_grad(net.layout, params, X, Y, sample_weight, alpha,
                                  grad, work, rows)
        # A fresh float64 array: scipy keeps the gradients it is given.
        return loss, grad.astype(np.float64)

    result = scipy.optimize.minimize(
        loss_and_grad, params.astype(np.float64), method="L-BFGS-B", jac=True,
        options=options,
    )
    params[...] = result.x
    return result
