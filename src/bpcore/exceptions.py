"""The exceptions bpcore raises beyond Python's own."""
from __future__ import annotations

__all__ = ["DivergenceError"]


class DivergenceError(ValueError):
    """Training produced a non-finite loss or non-finite parameters.

    The network is left with the parameters (and running statistics) it had
    at the start of the epoch in which training diverged if its training
    loss there is finite and no higher than at the start of the fit, else
    with those it had at the start of the fit (the message says which); the
    optimizer's state (moments, velocities, step count) is reset, so that
    training can resume, e.g. with a lower learning rate. A ``ValueError``.

    Parameters
    ----------
    message : str
        What diverged, in which epoch, and the remedy.
    epoch_loss_so_far : float or None, default=None
        The mean loss of the epoch's batches before the divergence.

    Examples
    --------
    >>> import numpy as np, bpcore
    >>> X = np.random.default_rng(0).standard_normal((64, 3))
    >>> net = bpcore.Network([3, 4, 1], random_state=0)
    >>> try:
    ...     bpcore.train(net, X, X[:, :1] * 1e200, optimizer=bpcore.SGD(1.0), random_state=0)
    ... except bpcore.DivergenceError as exc:
    ...     print("diverged:", np.isfinite(net.params).all())
    diverged: True
    """

    def __init__(self, message: str, epoch_loss_so_far: float | None = None) -> None:
        super().__init__(message)
        self.epoch_loss_so_far = epoch_loss_so_far
