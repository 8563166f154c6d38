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
    training can resume, e.g. with a lower learning rate.
    """

    def __init__(self, message: str, epoch_loss_so_far: float | None = None) -> None:
        super().__init__(message)
        self.epoch_loss_so_far = epoch_loss_so_far
