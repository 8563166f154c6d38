"""The training loop of the core API: epochs, shuffling, one kernel call per epoch."""
import numpy as np
from sklearn.utils import check_random_state

from ._engine import EpochRunner, reshuffle
from ._validation import check_positive_int, check_real
from .network import Network
from .optimizers import Optimizer


def train(net, X, Y, *, optimizer, epochs=1, batch_size=32, shuffle=True,
          random_state=None, alpha=0.0, sample_weight=None):
    """Train ``net`` in place by minibatch backpropagation.

    Parameters
    ----------
    net : Network
    X : array-like of shape (n_samples, n_features)
    Y : array-like of shape (n_samples, n_outputs)
        Targets (one-hot rows for log loss with a softmax output).
    optimizer : Optimizer
        ``SGD``, ``Adam``, ``RMSProp`` or ``AdaGrad``; its state carries over
        between calls, so calling ``train`` again continues training.
    epochs : int, default=1
    batch_size : int, default=32
        Clipped to the number of samples; the last batch of an epoch may be
        shorter.
    shuffle : bool, default=True
        Reorder the samples before every epoch, composing with the previous
        order exactly as scikit-learn's MLP does.
    random_state : int, RandomState instance or None
        Seeds the shuffling.
    alpha : float, default=0.0
        L2 strength: adds ``0.5 * alpha * sum(||W||^2) / batch_weight`` to
        every batch loss.
    sample_weight : array-like of shape (n_samples,), optional

    Returns
    -------
    losses : ndarray of shape (epochs,)
        Per-epoch training loss: each batch's loss taken before its update,
        averaged over batches weighted by batch size.

    Raises
    ------
    DivergenceError
        If the loss or the parameters become non-finite; ``net`` keeps finite
        parameters.
    KeyboardInterrupt
        On Ctrl-C, within a few milliseconds of work; ``net`` keeps the
        parameters reached so far and stays usable.
    """
    if not isinstance(net, Network):
        raise TypeError(f"net must be a bpcore.Network, got {type(net).__name__}")
    if not isinstance(optimizer, Optimizer):
        raise TypeError(
            "optimizer must be a bpcore optimizer instance (SGD, Adam, RMSProp, AdaGrad), "
            f"got {optimizer!r}"
        )
    epochs = check_positive_int(epochs, "epochs")
    batch_size = check_positive_int(batch_size, "batch_size")
    alpha = check_real(alpha, "alpha", low=0.0)
    X, Y, sample_weight = net._check_xy(X, Y, sample_weight)
    rs = check_random_state(random_state)
    runner = EpochRunner(net.layout, net.params, optimizer, X, Y, sample_weight,
                         batch_size, alpha)
    order = np.arange(X.shape[0], dtype=np.intp)
    losses = np.empty(epochs)
    for epoch in range(epochs):
        if shuffle:
            order = reshuffle(order, rs)
        losses[epoch] = runner.run(order if shuffle else None)
    return losses
