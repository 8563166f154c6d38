"""The network: layer spec, its compiled plan, the flat buffers and their views."""
from __future__ import annotations

import numbers
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
from numpy.typing import ArrayLike, DTypeLike, NDArray
from sklearn.utils import check_random_state

from . import _engine, _kernels
from .activations import (
    ELU_ALPHA,
    LEAKY_RELU_SLOPE,
    check_targets,
    hidden_code,
    loss_code,
    output_code,
)
from .initializers import INITIALIZERS, init_layer
from ._validation import as_input, as_matrix, as_sample_weight, check_dtype, check_real

if TYPE_CHECKING:  # pragma: no cover - typing only
    from scipy.sparse import sparray, spmatrix  # Any to mypy: SciPy ships no types

# Rows per block in inference and full-batch gradients: large enough for
# efficient matrix products, small enough that scratch stays a few MiB.
_BLOCK_ELEMENTS = 1 << 19
# The network's output as it is (the other heads are the estimators').
_HEAD_OUTPUT = int(_kernels.InferenceHead.HEAD_OUTPUT)

# The targets each loss accepts (activations.check_targets), for the scan
# in check_xy's fast path; other losses take any finite value.
_ANY = (-np.inf, np.inf)
_TARGET_RANGE = {"log_loss": (0.0, 1.0), "poisson": (0.0, np.inf)}

# torch.nn.BatchNorm1d's defaults (TOOLBOX.md section 1).
BN_MOMENTUM = 0.1
BN_EPS = 1e-5


class _Layout(Protocol):
    """What Python reads of a ``_kernels.Layout`` (which has no stub): its
    properties and size methods, as declared in src/kernels/layout.pxi."""

    @property
    def n_params(self) -> int: ...
    @property
    def n_weights(self) -> int: ...
    @property
    def n_buffers(self) -> int: ...
    @property
    def has_dropout(self) -> bool: ...
    @property
    def plain(self) -> bool: ...
    @property
    def macs_per_row(self) -> int: ...
    @property
    def sizes(self) -> tuple[int, ...]: ...
    @property
    def weight_offsets(self) -> tuple[int, ...]: ...
    @property
    def bias_offsets(self) -> tuple[int, ...]: ...
    @property
    def scale_offsets(self) -> tuple[int | None, ...]: ...
    @property
    def running_offsets(self) -> tuple[int | None, ...]: ...
    @property
    def blocks(self) -> list[tuple[int, int, int, int]]: ...  # (BlockKind, layer, offset, size)
    def workspace_size(self, rows: int) -> int: ...
    def stats_size(self, n_threads: int) -> int: ...
    def units_workspace_size(self, rows: int, n_threads: int) -> int: ...
    def inference_workspace_size(self, rows: int) -> int: ...


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
    loss : str, default="squared_error"
        One of ``bpcore.activations.LOSSES``: ``squared_error``,
        ``absolute_error`` and ``huber`` take any output; ``log_loss`` needs
        a ``softmax`` (multiclass) or ``logistic`` (binary, multilabel)
        output; ``poisson`` needs ``exp``.
    init : str or sequence of str, default="sklearn"
        Weight initialization, one of ``bpcore.initializers.INITIALIZERS``,
        or one name per layer (hidden layers and the output layer).
        ``"sklearn"`` is scikit-learn's exact draw, biases included; the
        others draw weights only and set biases to zero.
    dropout : float or sequence of float, default=0.0
        Dropout probability in [0, 1) after each hidden layer's activation
        (inverted: kept units are scaled by ``1 / (1 - p)``; training only).
        The masks are a function of (seed, epoch, sample, unit), a sample
        being its row's values: identical rows share their masks within an
        epoch, and a row of weight w draws the masks its w copies would (so
        a full-batch step or ``loss_and_grad`` with weight w equals w copies,
        as scikit-learn's sample-weight checks require; with minibatches the
        copies may land in different batches, dropout or not).
    batch_norm : bool or sequence of bool, default=False
        Batch normalization of each hidden layer's pre-activation, as
        ``torch.nn.BatchNorm1d(momentum=0.1, eps=1e-5)``; the layer's bias
        is then BN's shift. With sample weights the batch statistics are
        weighted (a row of weight w counts as w rows).
    residual : bool or sequence of bool, default=False
        Identity skip ``a_l = h_l + a_{l-1}`` around hidden layers whose width
        is unchanged (``True``: every such layer; a sequence: one flag per
        hidden layer). A ValueError says so when no layer qualifies.
    huber_delta : float, default=1.0
        The ``delta`` of the Huber loss.
    dtype : {"float64", "float32"}, default="float64"
    random_state : int, RandomState instance or None
        Seeds the initialization.

    Attributes
    ----------
    params : ndarray of shape (n_params,)
        Every trainable value: all weight matrices, then all biases (for a
        network without batch norm, scikit-learn's ``_pack`` order), then
        the batch-norm scales. Assigning to it copies into the buffer.
    coefs : list of ndarray
        ``coefs[i]`` is a ``(fan_in, fan_out)`` view into ``params``.
    intercepts : list of ndarray
        ``intercepts[i]`` is a ``(fan_out,)`` view into ``params`` (BN's
        shift on a batch-normalized layer).
    bn_scales : list of ndarray or None
        Batch norm's gamma of each layer (a view), None without batch norm.
    buffers : ndarray
        Every non-trainable value (the running statistics), one flat array.
    bn_means, bn_vars : list of ndarray or None
        Running mean and variance of each layer (views into ``buffers``).

    Notes
    -----
    Loss conventions are scikit-learn's: squared error is
    ``0.5 * mean((out - y)**2)`` over samples and outputs, log loss and
    Poisson deviance are summed over outputs and averaged over samples, and
    the L2 term is ``0.5 * alpha * sum(||W||^2) / n_samples`` (biases are not
    penalized). Absolute and Huber error are means over samples and outputs
    (torch's ``L1Loss`` and ``HuberLoss``). With sample weights, "average"
    means the weighted average.

    Examples
    --------
    >>> import numpy as np, bpcore
    >>> net = bpcore.Network([4, 8, 8, 3], output="softmax", loss="log_loss",
    ...                      batch_norm=True, dropout=0.1, residual=True,
    ...                      init="he_normal", random_state=0)
    >>> net.forward(np.ones((2, 4))).shape
    (2, 3)
    >>> [s is None for s in net.bn_scales]
    [False, False, True]
    """

    layout: _Layout  # the compiled layout, a _kernels.Layout
    _params: NDArray[np.floating[Any]]
    buffers: NDArray[np.floating[Any]]
    coefs: list[NDArray[np.floating[Any]]]
    intercepts: list[NDArray[np.floating[Any]]]
    bn_scales: list[NDArray[np.floating[Any]] | None]
    bn_means: list[NDArray[np.floating[Any]] | None]
    bn_vars: list[NDArray[np.floating[Any]] | None]
    _sklearn_gradient: bool  # set by _use_sklearn_gradient (read with getattr's default)
    _epochs_trained: int  # set by bpcore.train (read with getattr's default)

    def __init__(self, layer_sizes: Iterable[int], *,
                 activation: str | Sequence[str] = "relu", output: str = "identity",
                 loss: str = "squared_error", init: str | Sequence[str] = "sklearn",
                 dropout: float | Sequence[float] = 0.0,
                 batch_norm: bool | Sequence[bool] = False,
                 residual: bool | Sequence[bool] = False, huber_delta: float = 1.0,
                 dtype: DTypeLike = "float64",
                 random_state: int | np.random.RandomState | None = None) -> None:
        sizes = _check_sizes(layer_sizes)
        n_hidden = len(sizes) - 2
        hidden = _per_layer(activation, n_hidden, "activation", str)
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
        self.init = init
        self.dropout = dropout
        self.batch_norm = batch_norm
        self.residual = residual
        self.huber_delta = check_real(huber_delta, "huber_delta", low=0.0, low_open=True)
        self.dtype: np.dtype[np.floating[Any]] = np.dtype(check_dtype(dtype))
        self._hidden: list[str] = hidden
        self._inits = _check_inits(init, len(sizes) - 1)
        self._dropout = [check_real(p, "dropout", low=0.0, high=1.0, high_open=True)
                         for p in _per_layer(dropout, n_hidden, "dropout", numbers.Real)]
        self._batch_norm = [bool(b) for b in _per_layer(batch_norm, n_hidden, "batch_norm",
                                                         (bool, np.bool_))]
        self._residual = _check_residual(residual, sizes)
        self.layout = _layout_for(self)
        self._params = np.zeros(self.layout.n_params, dtype=self.dtype)
        self.buffers = np.zeros(self.layout.n_buffers, dtype=self.dtype)
        self._make_views()
        self.init_params(random_state)

    # -- buffers and their views --------------------------------------------

    @property
    def params(self) -> NDArray[np.floating[Any]]:
        """The flat trainable buffer (every view points into it)."""
        return self._params

    @params.setter
    def params(self, value: ArrayLike) -> None:
        # Copy into the one buffer, so that coefs, intercepts and every
        # optimizer holding it keep pointing at the live values.
        arr = np.asarray(value)
        if arr.shape != self._params.shape:
            raise ValueError(
                f"params must have shape {self._params.shape} (this network's "
                f"{self.n_params} parameters), got {arr.shape}"
            )
        if not (np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)):
            raise TypeError(f"params must be real numbers ({self.dtype.name}), got {arr.dtype}")
        self._params[...] = arr

    @property
    def blocks(self) -> list[tuple[str, int, int, int]]:
        """The parameter-block table: ``(kind, layer, offset, size)`` for every
        range of ``params``; ``kind`` is one of "weights", "biases",
        "bn_shift", "bn_scale"."""
        names = {_kernels.BlockKind.WEIGHTS: "weights", _kernels.BlockKind.BIASES: "biases",
                 _kernels.BlockKind.BN_SHIFT: "bn_shift", _kernels.BlockKind.BN_SCALE: "bn_scale"}
        return [(names[k], layer, off, size) for k, layer, off, size in self.layout.blocks]

    @property
    def n_params(self) -> int:
        """Number of trainable values: the length of ``params``."""
        return self.layout.n_params

    @property
    def n_features(self) -> int:
        """Width of the input layer."""
        return self.layer_sizes[0]

    @property
    def n_outputs(self) -> int:
        """Width of the output layer."""
        return self.layer_sizes[-1]

    @property
    def has_batch_norm(self) -> bool:
        """True if any hidden layer is batch-normalized."""
        return any(self._batch_norm)

    def _make_views(self) -> None:
        self.coefs, self.intercepts = self._views(self._params)
        self.bn_scales = self._scale_views(self._params)
        s = self.layer_sizes
        self.bn_means, self.bn_vars = [], []
        for i, off in enumerate(self.layout.running_offsets):
            fo = s[i + 1]
            self.bn_means.append(None if off is None else self.buffers[off:off + fo])
            self.bn_vars.append(None if off is None else self.buffers[off + fo:off + 2 * fo])

    def _views(self, flat: NDArray[np.floating[Any]],
               ) -> tuple[list[NDArray[np.floating[Any]]], list[NDArray[np.floating[Any]]]]:
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

    def _scale_views(self, flat: NDArray[np.floating[Any]],
                     ) -> list[NDArray[np.floating[Any]] | None]:
        s = self.layer_sizes
        return [None if g is None else flat[g:g + s[i + 1]]
                for i, g in enumerate(self.layout.scale_offsets)]

    def init_params(self, random_state: int | np.random.RandomState | None = None,
                    ) -> Network:
        """Draw the initial parameters and reset the running statistics.

        Layer by layer from one ``RandomState``: ``init="sklearn"`` draws
        ``W = rs.uniform(-b, b, (fan_in, fan_out))`` then
        ``bias = rs.uniform(-b, b, fan_out)`` with
        ``b = sqrt(factor / (fan_in + fan_out))``, factor 2 for logistic
        hidden units and 6 otherwise (the output layer uses the factor of the
        hidden layer below it), exactly as scikit-learn; the other schemes
        draw ``W`` only (``bpcore.initializers``) and zero the bias. Drawn in
        float64, then cast. Batch norm: gamma 1, shift 0, running mean 0,
        running variance 1.

        Parameters
        ----------
        random_state : int, RandomState instance or None, default=None
            Seeds the draw (scikit-learn's ``check_random_state``).

        Returns
        -------
        self : Network
            This network, re-initialized in place.
        """
        rs = check_random_state(random_state)
        s = self.layer_sizes
        for i in range(len(s) - 1):
            act = self._hidden[min(i, len(self._hidden) - 1)] if self._hidden else self.activation
            # act: a str, or without hidden layers an empty sequence (one name
            # per hidden layer), which every scheme treats as not "logistic".
            W, b = init_layer(self._inits[i], s[i], s[i + 1], act,  # type: ignore[arg-type]
                              rs)
            self.coefs[i][...] = W
            self.intercepts[i][...] = b
            # mypy does not narrow bn_scales[i]; a batch-normalized layer has
            # all three views (_make_views: from the same plan).
            if self.bn_scales[i] is not None:
                self.bn_scales[i][...] = 1.0  # type: ignore[index]
                self.intercepts[i][...] = 0.0
                self.bn_means[i][...] = 0.0  # type: ignore[index]
                self.bn_vars[i][...] = 1.0  # type: ignore[index]
        return self

    # -- computing ------------------------------------------------------------

    def _block_rows(self, n: int) -> int:
        # (layer_sizes is the layout's sizes as a stored tuple; the layout builds
        # its tuple at each read, 1.5 us of a one-row prediction)
        return max(1, min(n, max(64, _BLOCK_ELEMENTS // max(self.layer_sizes[1:]))))

    def forward(self, X: ArrayLike | spmatrix | sparray) -> NDArray[np.floating[Any]]:
        """Network output for ``X`` (n_samples, n_features), as a new array.

        Inference: no dropout, batch norm with its running statistics. ``X``
        may be dense or a scipy.sparse matrix (multiplied row by row, never
        densified).

        Re-entrant: each call allocates its own scratch, so several threads
        may call ``forward`` on one network at once.

        Threads: large inputs are cut into row chunks shared by bpcore's own
        threads (as many as the epochs would use), BLAS on one thread each
        (``_engine.inference_plan``). BLAS's own threads are never woken:
        they keep spinning for ~0.1 s after a call, and a training epoch
        started meanwhile ran 2-8x slower. Every row's output is the same
        for any thread count.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Inputs.

        Returns
        -------
        out : ndarray of shape (n_samples, n_outputs)
            The output layer's activations, of the network's dtype.
        """
        # The common input (an array of this dtype and width) by the short
        # path; anything else is validated and converted first.
        short: NDArray[np.floating[Any]] | None = self._infer(X, _HEAD_OUTPUT,
                                                              check_finite=True)
        if short is not None:
            return short
        X = as_input(X, "X", self.dtype, self.n_features)
        n = X.shape[0]
        out = np.empty((n, self.n_outputs), dtype=self.dtype)
        n_threads, rows = _engine.inference_plan(self.layout, n, self._block_rows(n))
        work = np.empty(n_threads * self.layout.inference_workspace_size(rows),
                        dtype=self.dtype)
        with _engine._single_threaded_blas():
            _kernels.forward(self.layout, self._params, X, out, work, rows, self.buffers,
                             n_threads)
        return out

    def _set_activation(self, activation: str | Sequence[str]) -> None:
        """Give the hidden layers ``activation`` (as the constructor takes
        it), keeping the parameters: the estimators read their
        ``activation`` at each prediction, as scikit-learn does. The plan is
        rebuilt only when the names change."""
        hidden = _per_layer(activation, len(self.layer_sizes) - 2, "activation", str)
        for name in hidden:
            hidden_code(name)
        if isinstance(activation, str):
            hidden_code(activation)
        if hidden != self._hidden:
            self._hidden = hidden
            self.layout = _layout_for(self)
        self.activation = activation

    def _infer(self, X: Any, head: int, check_finite: bool) -> Any:
        """``forward`` with ``head`` applied, by the short compiled path; None
        when X is not a C-contiguous array of this network's dtype and width
        with at least one row and (with ``check_finite``) only finite values.

        Reads the parameters and running statistics as they are now (nothing
        is cached between calls) and computes each row bitwise as
        ``forward``'s general path does (the same chunks and threads).
        """
        if type(X) is not np.ndarray or X.ndim != 2:
            return None
        n = X.shape[0]
        layout = self.layout
        if n <= 64 and n * layout.macs_per_row < 2 * _engine._MIN_MACS_PER_THREAD:
            # inference_plan's answer, without its 2 us: one chunk (k = 1,
            # and _block_rows is n up to 64 rows), so one thread
            n_threads, rows = 1, n
        else:
            n_threads, rows = _engine.inference_plan(layout, n, self._block_rows(n))
        if _kernels.blas_threads_idle(layout, rows):
            return _kernels.infer(layout, self._params, self.buffers, X, head, check_finite,
                                  rows, n_threads)
        with _engine._single_threaded_blas():
            return _kernels.infer(layout, self._params, self.buffers, X, head, check_finite,
                                  rows, n_threads)

    def loss_and_grad(self, X: ArrayLike | spmatrix | sparray, Y: ArrayLike,
                      alpha: float = 0.0, sample_weight: ArrayLike | None = None, *,
                      l1: float = 0.0, training: bool = False, seed: int = 0,
                      ) -> tuple[float, NDArray[np.floating[Any]]]:
        """Loss on (X, Y) and its gradient with respect to ``params``.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Inputs.
        Y : array-like of shape (n_samples, n_outputs) or (n_samples,)
            Targets. For log loss with a softmax output, one-hot rows or 1-D
            integer class labels in ``[0, n_outputs)`` (the same numbers, bit
            for bit); with a single output unit, a 1-D array is its column.
        alpha : float, default=0.0
            L2 strength: ``0.5 * alpha * sum(||W||^2) / sum(sample_weight)``.
        sample_weight : array-like of shape (n_samples,), optional
            Per-sample weights (>= 0): the loss and gradient are weighted
            means. None weighs every sample 1.
        l1 : float, default=0.0
            L1 strength: ``l1 * sum(|W|) / sum(sample_weight)``; its
            subgradient is 0 at 0.
        training : bool, default=False
            Use batch statistics (over the whole of X) for batch norm and the
            dropout masks of ``seed``, as one training step would; else
            inference (running statistics, no dropout).
        seed : int, default=0
            Dropout seed (the masks of epoch 0; each row's sample is keyed
            by its values, see ``dropout``).

        Returns
        -------
        loss : float
        grad : ndarray of shape (n_params,), laid out like ``params``
            (``self._views(grad)`` splits it per layer).

        Notes
        -----
        ``grad`` is the derivative of the returned loss wherever the loss is
        differentiable, with two conventions: probabilities in log loss are
        clipped to ``[eps, 1 - eps]`` as scikit-learn clips them, and the
        gradient is that of the unclipped loss (so it stays informative where
        the clipped loss is flat); ``|x|`` (L1, absolute error) takes the
        subgradient 0 at 0.

        BLAS runs on one thread for small blocks, as in ``forward``.
        """
        X, Y, sample_weight = self._check_xy(X, Y, sample_weight)
        alpha = check_real(alpha, "alpha", low=0.0)
        l1 = check_real(l1, "l1", low=0.0)
        training = bool(training)
        if training and self.has_batch_norm and X.shape[0] < 2:
            raise ValueError(
                "batch norm in training needs at least 2 samples to compute a batch "
                f"variance, got {X.shape[0]}; pass more rows or training=False")
        grad = np.empty_like(self._params)
        rows = X.shape[0] if training and self.has_batch_norm else self._block_rows(X.shape[0])
        work = np.empty(self.layout.workspace_size(rows), dtype=self.dtype)
        with _engine.blas_for(rows * self.layout.macs_per_row):
            loss = _kernels.loss_grad(self.layout, self._params, X, Y, sample_weight, alpha,
                                      grad, work, rows, buffers=self.buffers,
                                      training=training, seed=_check_seed(seed), l1=l1)
        return float(loss), grad

    def check_xy(self, X: ArrayLike | spmatrix | sparray, Y: ArrayLike,
                 sample_weight: ArrayLike | None = None,
                 ) -> tuple[NDArray[np.floating[Any]] | _kernels.CSRInput,
                            NDArray[np.floating[Any]], NDArray[np.floating[Any]] | None]:
        """Validated ``(X, Y, sample_weight)`` as the kernels take them.

        X becomes a C-contiguous array of the network's dtype (or a CSR
        ``CSRInput``), Y a 2-D array checked against the loss (log loss needs
        targets in [0, 1], Poisson non-negative ones), sample_weight a 1-D
        array or None.

        Every call checks the values again (``train`` in a loop may be handed
        arrays changed in place since the last call): arrays that already
        are what the kernels take pass one allocation-free scan
        (``_kernels.all_in_range``: finite, and in the loss's target range);
        anything else, and any array that fails the scan, goes through the
        full validation, which converts and names the problem.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Inputs.
        Y : array-like of shape (n_samples, n_outputs) or (n_samples,)
            Targets (1-D integer class labels for a softmax output become
            one-hot rows).
        sample_weight : array-like of shape (n_samples,), default=None
            Per-sample weights.

        Returns
        -------
        X, Y, sample_weight : tuple
            As the kernels take them.
        """
        if (sample_weight is None and type(X) is np.ndarray and type(Y) is np.ndarray
                and X.dtype == self.dtype and Y.dtype == self.dtype
                and X.ndim == 2 and Y.ndim == 2
                and X.flags.c_contiguous and Y.flags.c_contiguous
                and X.shape[0] == Y.shape[0] and X.shape[0] > 0
                and X.shape[1] == self.layer_sizes[0] and Y.shape[1] == self.layer_sizes[-1]
                and _kernels.all_in_range(X)
                and _kernels.all_in_range(Y, *_TARGET_RANGE.get(self.loss, _ANY))):
            return X, Y, None
        X = as_input(X, "X", self.dtype, self.n_features)
        Y = as_matrix(self._one_hot(Y), "Y", self.dtype, self.n_outputs,
                      allow_1d=self.n_outputs == 1)
        if Y.shape[0] != X.shape[0]:
            raise ValueError(f"X has {X.shape[0]} rows but Y has {Y.shape[0]}")
        check_targets(self.loss, Y)
        sample_weight = as_sample_weight(sample_weight, X.shape[0], self.dtype)
        return X, Y, sample_weight

    _check_xy = check_xy

    def _one_hot(self, Y: ArrayLike) -> ArrayLike:
        """1-D integer class labels as one-hot rows for a softmax output.

        PyTorch's and Keras' users pass class indices; the rows built here
        hold exact 0s and 1s, so training on them is the one-hot training bit
        for bit. A single-unit logistic output takes 0/1 labels as its column
        already (``as_matrix``'s 1-D case); anything else passes unchanged.
        """
        if self.output != "softmax" or self.n_outputs < 2:
            return Y
        labels = np.asarray(Y)
        if labels.ndim != 1:
            return Y
        if not (np.issubdtype(labels.dtype, np.integer) or labels.dtype == np.bool_):
            raise ValueError(
                f"Y is 1-D with dtype {labels.dtype}, but a softmax output takes integer "
                f"class labels in [0, {self.n_outputs}) or one-hot rows of shape "
                f"(n_samples, {self.n_outputs}); cast labels with y.astype(int)")
        if labels.size and (labels.min() < 0 or labels.max() >= self.n_outputs):
            bad = labels[(labels < 0) | (labels >= self.n_outputs)][0]
            raise ValueError(
                f"Y holds class label {bad}, outside [0, {self.n_outputs}) for a softmax "
                f"output of {self.n_outputs} units; number the classes 0..{self.n_outputs - 1} "
                "(sklearn.preprocessing.LabelEncoder does)")
        one_hot = np.zeros((labels.size, self.n_outputs), dtype=self.dtype)
        one_hot[np.arange(labels.size), labels.astype(np.intp)] = 1
        return one_hot

    def _use_sklearn_gradient(self) -> Network:
        """Make the squared-error gradient sum over outputs, as scikit-learn's does.

        scikit-learn reports 0.5 * mean over outputs but differentiates
        0.5 * sum over outputs; the estimators reproduce that. Only
        multi-output squared error is affected.
        """
        self._sklearn_gradient = True
        self.layout = _layout_for(self)
        return self

    def get_config(self) -> dict[str, Any]:
        """The constructor arguments (JSON-able), as ``Network(**config)`` takes them.

        Returns
        -------
        config : dict
            ``layer_sizes``, ``activation``, ``output``, ``loss``, ``init``,
            ``dropout``, ``batch_norm``, ``residual``, ``huber_delta``, ``dtype``.
        """
        def plain(v: object) -> object:
            if isinstance(v, (list, tuple)):
                return [plain(x) for x in v]
            if isinstance(v, np.generic):
                return v.item()
            return v
        return {
            "layer_sizes": list(self.layer_sizes), "activation": plain(self.activation),
            "output": self.output, "loss": self.loss, "init": plain(self.init),
            "dropout": plain(self.dropout), "batch_norm": plain(self.batch_norm),
            "residual": plain(self.residual), "huber_delta": self.huber_delta,
            "dtype": self.dtype.name,
        }

    def summary(self) -> str:
        """A table of the layers and their parameter counts, as text.

        One row per layer: its kind (input, dense hidden, output), width,
        activation, batch norm, dropout rate, identity skip, and its counts
        (weights, bias or batch norm's shift, batch norm's scale; running
        statistics are buffers). The totals are ``n_params`` (every
        trainable value, the length of ``params``) and the buffer count
        (``buffers.size``).

        Returns
        -------
        table : str
            ``print(net.summary())`` shows it.

        Examples
        --------
        >>> import bpcore
        >>> net = bpcore.Network([64, 128, 128, 10], output="softmax", loss="log_loss",
        ...                      batch_norm=[True, False], dropout=0.1, residual=True)
        >>> print(net.summary())
        Network: 64 -> 128 -> 128 -> 10, float64, log_loss loss
        layer  kind    width  activation  batch norm  dropout  skip  params  buffers
        0      input      64
        1      dense     128  relu        yes             0.1         8,448      256
        2      dense     128  relu        no              0.1  yes   16,512        0
        3      output     10  softmax                                 1,290        0
        Trainable parameters: 26,250 (net.n_params = 26250)
        Buffers (batch-norm running statistics, not trained): 256
        Total: 26,506 values
        """
        sizes = self.layer_sizes
        header = ("layer", "kind", "width", "activation", "batch norm", "dropout", "skip",
                  "params", "buffers")
        rows: list[tuple[str, ...]] = [("0", "input", str(sizes[0]), "", "", "", "", "", "")]
        n_hidden = len(sizes) - 2
        for i in range(1, len(sizes)):
            fan_in, fan_out = sizes[i - 1], sizes[i]
            hidden = i <= n_hidden
            bn = hidden and self._batch_norm[i - 1]
            params = fan_in * fan_out + fan_out + (fan_out if bn else 0)
            buffers = 2 * fan_out if bn else 0
            rows.append((
                str(i), "dense" if hidden else "output", str(fan_out),
                self._hidden[i - 1] if hidden else self.output,
                ("yes" if bn else "no") if hidden else "",
                f"{self._dropout[i - 1]:g}" if hidden and self._dropout[i - 1] else "",
                "yes" if hidden and self._residual[i - 1] else "",
                f"{params:,}", f"{buffers:,}"))
        numeric = {"width", "dropout", "params", "buffers"}
        widths = [max(len(r[c]) for r in (header, *rows)) for c in range(len(header))]

        def line(cells: tuple[str, ...]) -> str:
            return "  ".join(cell.rjust(w) if name in numeric else cell.ljust(w)
                             for cell, w, name in zip(cells, widths, header)).rstrip()

        n_buffers = int(self.buffers.size)
        title = (f"Network: {' -> '.join(map(str, sizes))}, {self.dtype.name}, "
                 f"{self.loss} loss")
        return "\n".join([
            title, line(header), *(line(r) for r in rows),
            f"Trainable parameters: {self.n_params:,} (net.n_params = {self.n_params})",
            f"Buffers (batch-norm running statistics, not trained): {n_buffers:,}",
            f"Total: {self.n_params + n_buffers:,} values",
        ])

    def __repr__(self) -> str:
        extra = ""
        for name, default in (("init", "sklearn"), ("dropout", 0.0), ("batch_norm", False),
                              ("residual", False)):
            value = getattr(self, name)
            if not (isinstance(value, type(default)) and value == default):
                extra += f", {name}={value!r}"
        if self.huber_delta != 1.0:
            extra += f", huber_delta={self.huber_delta!r}"
        return (f"Network({list(self.layer_sizes)}, activation={self.activation!r}, "
                f"output={self.output!r}, loss={self.loss!r}{extra}, "
                f"dtype={self.dtype.name!r})")

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        for key in ("layout", "coefs", "intercepts", "bn_scales", "bn_means", "bn_vars",
                    "_train_lock"):
            state.pop(key, None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        state = dict(state)
        if "params" in state:                   # pickled before params became a property
            state["_params"] = state.pop("params")
        defaults = {"init": "sklearn", "dropout": 0.0, "batch_norm": False, "residual": False,
                    "huber_delta": 1.0}
        for key, value in defaults.items():
            state.setdefault(key, value)
        self.__dict__.update(state)
        n_hidden = len(self.layer_sizes) - 2
        self.__dict__.setdefault("_inits", _check_inits(self.init, len(self.layer_sizes) - 1))
        self.__dict__.setdefault("_dropout", [0.0] * n_hidden)
        self.__dict__.setdefault("_batch_norm", [False] * n_hidden)
        self.__dict__.setdefault("_residual", [False] * n_hidden)
        self.layout = _layout_for(self)
        self.__dict__.setdefault("buffers", np.zeros(self.layout.n_buffers, dtype=self.dtype))
        self._make_views()


def _layout_for(net: Network) -> _kernels.Layout:
    # By default the gradient is exactly that of the reported loss (a mean
    # over outputs for the regression losses). The estimators switch to
    # scikit-learn's convention, whose squared-error gradient sums over
    # outputs (sq_scale=1).
    codes = [hidden_code(a) for a in net._hidden] + [output_code(net.output)]
    sklearn_grad = getattr(net, "_sklearn_gradient", False)
    return _kernels.Layout(
        net.layer_sizes, codes, loss_code(net.loss, net.output),
        sq_scale=1.0 if sklearn_grad else 1.0 / net.layer_sizes[-1],
        leaky_slope=LEAKY_RELU_SLOPE, elu_alpha=ELU_ALPHA,
        batch_norm=net._batch_norm, dropout=net._dropout, residual=net._residual,
        huber_delta=net.huber_delta, bn_eps=BN_EPS, bn_momentum=BN_MOMENTUM,
    )


# value: a scalar of scalar_types or a sequence of n of anything (each caller
# checks the values), hence Any.
def _per_layer(value: Any, n: int, name: str,
               scalar_types: type | tuple[type, ...]) -> list[Any]:
    """One value per layer from a scalar or a sequence of exactly n."""
    if isinstance(value, scalar_types) and not isinstance(value, (list, tuple)):
        return [value] * n
    if isinstance(value, str) or not hasattr(value, "__len__"):
        raise TypeError(f"{name} must be a single value or one per hidden layer, got {value!r}")
    values = list(value)
    if len(values) != n:
        noun = "names" if name == "activation" else "values"
        raise ValueError(
            f"{name} lists {len(values)} {noun} but the network has {n} hidden layers"
        )
    return values


def _check_inits(init: str | Sequence[str], n_layers: int) -> list[str]:
    if not isinstance(init, (str, list, tuple)):
        raise TypeError(
            f"init must be an initializer name or a list of one per layer, got {init!r}; "
            "choose one of " + ", ".join(repr(k) for k in INITIALIZERS))
    inits = [init] * n_layers if isinstance(init, str) else list(init)
    if len(inits) != n_layers:
        raise ValueError(
            f"init lists {len(inits)} names but the network has {n_layers} layers "
            "(one per hidden layer and one for the output layer)"
        )
    for name in inits:
        if not isinstance(name, str) or name not in INITIALIZERS:
            raise ValueError(
                f"unknown init {name!r}; choose one of "
                + ", ".join(repr(k) for k in INITIALIZERS)
            )
    return inits


def _check_residual(residual: bool | Sequence[bool], sizes: list[int]) -> list[bool]:
    n_hidden = len(sizes) - 2
    fits = [sizes[l] == sizes[l + 1] for l in range(n_hidden)]
    if isinstance(residual, (bool, np.bool_)):
        if residual and not any(fits):
            raise ValueError(
                "residual=True but no hidden layer keeps its width (fan_in == fan_out) in "
                f"layer_sizes={list(sizes)}: an identity skip applies nowhere; make two "
                "consecutive hidden layers the same width or drop residual"
            )
        return [bool(residual) and f for f in fits]
    flags = [bool(r) for r in _per_layer(residual, n_hidden, "residual", (bool, np.bool_))]
    for l, (flag, fit) in enumerate(zip(flags, fits)):
        if flag and not fit:
            raise ValueError(
                f"residual on hidden layer {l} needs fan_in == fan_out, got "
                f"{sizes[l]} -> {sizes[l + 1]}"
            )
    return flags


def _check_seed(seed: int | np.integer[Any]) -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    return int(seed) & 0xFFFFFFFFFFFFFFFF


def _check_sizes(layer_sizes: Iterable[int]) -> list[int]:
    layer_sizes = list(layer_sizes) if hasattr(layer_sizes, "__iter__") else layer_sizes
    if isinstance(layer_sizes, list) and any(isinstance(s, (bool, np.bool_))
                                             for s in layer_sizes):
        # int(True) == 1: a bool is almost surely a mistake (batch_size=True is refused too)
        raise TypeError(f"layer_sizes must be integers, got {layer_sizes!r} (a bool is not "
                        "a layer size)")
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
