"""The network: layer spec, the flat parameter buffer and its per-layer views."""
import numpy as np
from sklearn.utils import check_random_state

from . import _kernels
from .activations import (
    ELU_ALPHA,
    LEAKY_RELU_SLOPE,
    hidden_code,
    loss_code,
    output_code,
)
from ._validation import as_input, as_matrix, as_sample_weight, check_dtype, check_real

# Rows per block in inference and full-batch gradients: large enough for
# efficient matrix products, small enough that scratch stays a few MiB.
_BLOCK_ELEMENTS = 1 << 19


class Network:
    """A dense feed-forward network whose parameters live in one flat buffer.

    Parameters
    ----------
    layer_sizes : sequence of int
        Unit counts from input to output, e.g. ``[64, 100, 10]``; at least two
        entries (no hidden layer is a linear/logistic model).
    activation : str or sequence of str, default="relu"
        Hidden activation, one of ``bpcore.activations.HIDDEN_ACTIVATIONS``,
        or one name per hidden layer.
    output : str, default="identity"
        Output activation, one of ``bpcore.activations.OUTPUT_ACTIVATIONS``.
    loss : {"squared_error", "log_loss", "poisson"}, default="squared_error"
        ``log_loss`` needs a ``softmax`` (multiclass) or ``logistic`` (binary,
        multilabel) output; ``poisson`` needs ``exp``.
    dtype : {"float64", "float32"}, default="float64"
    random_state : int, RandomState instance or None
        Seeds the Glorot-uniform initialization, drawn exactly as
        scikit-learn's MLP draws it.

    Attributes
    ----------
    params : ndarray of shape (n_params,)
        Every weight and bias: all weight matrices first, then all biases.
    coefs : list of ndarray
        ``coefs[i]`` is a ``(fan_in, fan_out)`` view into ``params``.
    intercepts : list of ndarray
        ``intercepts[i]`` is a ``(fan_out,)`` view into ``params``.

    Notes
    -----
    Loss conventions are scikit-learn's: squared error is
    ``0.5 * mean((out - y)**2)`` over samples and outputs, log loss and
    Poisson deviance are summed over outputs and averaged over samples, and
    the L2 term is ``0.5 * alpha * sum(||W||^2) / n_samples`` (biases are not
    penalized). With sample weights, "average" means the weighted average.
    """

    def __init__(self, layer_sizes, *, activation="relu", output="identity",
                 loss="squared_error", dtype="float64", random_state=None):
        sizes = _check_sizes(layer_sizes)
        n_hidden = len(sizes) - 2
        if isinstance(activation, str):
            hidden = [activation] * n_hidden
        else:
            hidden = list(activation)
            if len(hidden) != n_hidden:
                raise ValueError(
                    f"activation lists {len(hidden)} names but the network has "
                    f"{n_hidden} hidden layers"
                )
        for name in hidden:
            hidden_code(name)
        if isinstance(activation, str):
            hidden_code(activation)  # checked even when there is no hidden layer
        output_code(output)
        loss_code(loss, output)
        self.layer_sizes = tuple(sizes)
        self.activation = activation
        self.output = output
        self.loss = loss
        self.dtype = np.dtype(check_dtype(dtype))
        self._hidden = hidden
        self.layout = _layout_for(self)
        self.params = np.zeros(self.layout.n_params, dtype=self.dtype)
        self.coefs, self.intercepts = self._views(self.params)
        self.init_params(random_state)

    @property
    def n_params(self):
        return self.layout.n_params

    @property
    def n_features(self):
        return self.layer_sizes[0]

    @property
    def n_outputs(self):
        return self.layer_sizes[-1]

    def _views(self, flat):
        """Per-layer (coefs, intercepts) views into a flat parameter-shaped array."""
        s = self.layer_sizes
        coefs = [
            flat[w:w + s[i] * s[i + 1]].reshape(s[i], s[i + 1])
            for i, w in enumerate(self.layout.weight_offsets)
        ]
        intercepts = [
            flat[b:b + s[i + 1]] for i, b in enumerate(self.layout.bias_offsets)
        ]
        return coefs, intercepts

    def init_params(self, random_state=None):
        """Glorot-uniform initialization in scikit-learn's exact draw order.

        For each layer in turn: ``W = rs.uniform(-b, b, (fan_in, fan_out))``,
        then ``bias = rs.uniform(-b, b, fan_out)``, with
        ``b = sqrt(factor / (fan_in + fan_out))``; factor is 2 for logistic
        hidden units and 6 otherwise (the output layer uses the factor of the
        hidden layer below it). Drawn in float64, then cast.
        """
        rs = check_random_state(random_state)
        s = self.layer_sizes
        for i in range(len(s) - 1):
            act = self._hidden[min(i, len(self._hidden) - 1)] if self._hidden else self.activation
            factor = 2.0 if act == "logistic" else 6.0
            bound = np.sqrt(factor / (s[i] + s[i + 1]))
            self.coefs[i][...] = rs.uniform(-bound, bound, (s[i], s[i + 1]))
            self.intercepts[i][...] = rs.uniform(-bound, bound, s[i + 1])
        return self

    def _block_rows(self, n):
        return max(1, min(n, max(64, _BLOCK_ELEMENTS // max(self.layout.sizes[1:]))))

    def forward(self, X):
        """Network output for ``X`` (n_samples, n_features), as a new array.

        ``X`` may be dense or a scipy.sparse matrix (multiplied row by row,
        never densified).

        Re-entrant: each call allocates its own scratch, so several threads
        may call ``forward`` on one network at once.
        """
        X = as_input(X, "X", self.dtype, self.n_features)
        out = np.empty((X.shape[0], self.n_outputs), dtype=self.dtype)
        rows = self._block_rows(X.shape[0])
        work = np.empty(self.layout.inference_workspace_size(rows), dtype=self.dtype)
        _kernels.forward(self.layout, self.params, X, out, work, rows)
        return out

    def loss_and_grad(self, X, Y, alpha=0.0, sample_weight=None):
        """Loss on (X, Y) and its exact gradient with respect to ``params``.

        Returns
        -------
        loss : float
        grad : ndarray of shape (n_params,), laid out like ``params``
            (``self._views(grad)`` splits it per layer).
        """
        X, Y, sample_weight = self._check_xy(X, Y, sample_weight)
        alpha = check_real(alpha, "alpha", low=0.0)
        grad = np.empty_like(self.params)
        rows = self._block_rows(X.shape[0])
        work = np.empty(self.layout.workspace_size(rows), dtype=self.dtype)
        loss = _kernels.loss_grad(self.layout, self.params, X, Y, sample_weight,
                                  alpha, grad, work, rows)
        return float(loss), grad

    def _check_xy(self, X, Y, sample_weight):
        X = as_input(X, "X", self.dtype, self.n_features)
        Y = as_matrix(Y, "Y", self.dtype, self.n_outputs, allow_1d=self.n_outputs == 1)
        if Y.shape[0] != X.shape[0]:
            raise ValueError(f"X has {X.shape[0]} rows but Y has {Y.shape[0]}")
        sample_weight = as_sample_weight(sample_weight, X.shape[0], self.dtype)
        return X, Y, sample_weight

    def _use_sklearn_gradient(self):
        """Make the squared-error gradient sum over outputs, as scikit-learn's does.

        scikit-learn reports 0.5 * mean over outputs but differentiates
        0.5 * sum over outputs; the estimators reproduce that. Only
        multi-output squared error is affected.
        """
        self._sklearn_gradient = True
        self.layout = _layout_for(self)
        return self

    def __repr__(self):
        return (f"Network({list(self.layer_sizes)}, activation={self.activation!r}, "
                f"output={self.output!r}, loss={self.loss!r}, dtype={self.dtype.name!r})")

    def __getstate__(self):
        state = self.__dict__.copy()
        for key in ("layout", "coefs", "intercepts"):
            state.pop(key)
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self.layout = _layout_for(self)
        self.coefs, self.intercepts = self._views(self.params)


def _layout_for(net):
    # By default the gradient is exactly that of the reported loss (0.5 * mean
    # over outputs for squared error). The estimators switch to scikit-learn's
    # convention, whose gradient sums over outputs (sq_scale=1).
    codes = [hidden_code(a) for a in net._hidden] + [output_code(net.output)]
    sklearn_grad = getattr(net, "_sklearn_gradient", False)
    return _kernels.NetLayout(
        net.layer_sizes, codes, loss_code(net.loss, net.output),
        sq_scale=1.0 if sklearn_grad else 1.0 / net.layer_sizes[-1],
        leaky_slope=LEAKY_RELU_SLOPE, elu_alpha=ELU_ALPHA,
    )


def _check_sizes(layer_sizes):
    try:
        sizes = [int(s) for s in layer_sizes]
    except (TypeError, ValueError):
        raise TypeError(f"layer_sizes must be a sequence of integers, got {layer_sizes!r}")
    if any(int(s) != s for s in layer_sizes):
        raise TypeError(f"layer_sizes must be integers, got {layer_sizes!r}")
    if len(sizes) < 2:
        raise ValueError(
            f"layer_sizes needs at least an input and an output size, got {list(sizes)}"
        )
    if min(sizes) < 1:
        raise ValueError(f"every layer size must be >= 1, got {list(sizes)}")
    return sizes
