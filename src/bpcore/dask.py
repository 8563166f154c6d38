"""Scale bpcore out on dask: full-batch training over data spread on workers.

The engine-level pieces the estimators call when they get dask arrays:

* ``BlockwiseObjective`` / ``minimize_lbfgs``: data-parallel full-batch
  L-BFGS, as Spark MLlib's ``MultilayerPerceptronClassifier`` trains (each
  partition computes its share of the loss and gradient, a tree aggregate
  sums them, the optimizer runs on the driver).
* ``compute_classes`` / ``binarize``: label handling on the cluster.
* ``compute_target_moments``: the regressor's target scaling (weighted mean
  and variance per column) in one pass on the cluster.
* ``predict`` / ``predict_proba``: blockwise inference returning dask arrays,
  as dask-ml's ``ParallelPostFit`` does.

How one evaluation of the loss and gradient runs
------------------------------------------------
``X`` (n, d), ``Y`` (n, k) and the sample weights are chunked by rows only.
Once per fit, each row block's three parts are cast to the network's dtype
and kept together on one worker as one object (persisted: a lazy X is not
recomputed per evaluation); nothing of them comes back to the client. Per
evaluation:

1. the client scatters the parameter vector to every worker once
   (``client.scatter(theta, broadcast=True)``: n_params floats per worker);
2. one task per row block, pinned to the worker holding the block (else
   dask's work stealing moves whole blocks to idle workers), rebuilds the
   network from a small pickled spec (``pickle.loads`` of the Network, about
   40 us and n_params floats, shipped once per fit), copies the parameters in
   and calls ``Network.loss_and_grad(Xb, Yb, alpha=0.0, sample_weight=swb)``.
   That returns the weighted MEAN loss and the gradient of that mean, so the
   task multiplies both back by the block's weight sum ``sw_b``: the block
   returns one float64 vector ``[sum loss, sw_b, sum grad]`` (n_params + 2);
3. the vectors are summed by a tree of tasks (``split_every`` at a time), so
   the client receives ONE vector of n_params + 2 floats;
4. the client divides by the total weight and adds the penalties,
   ``(0.5 * alpha * sum(W**2) + l1 * sum(|W|)) / sw_total`` and their
   gradient ``(alpha * W + l1 * sign(W)) / sw_total`` (weights only, found
   from ``net.coefs``), the in-memory formulas of ``Network.loss_and_grad``.

scipy's L-BFGS-B then runs on the client exactly as ``bpcore._lbfgs`` does for
in-memory data, so both fits agree up to the rounding of the regrouped sums.

Why columns must be one block: a row's forward pass needs all of its
features (the first layer multiplies the whole row) and its loss all of its
outputs, so a task needs every column of its rows. Column chunks are merged
(``rechunk({1: -1})``) once before the data is persisted.

Why batch normalization is refused: in training mode a batch-normalized
layer normalizes by the mean and variance over the whole batch, here all n
rows across every block. A block cannot compute its loss or gradient from
its own rows alone; an exact evaluation needs a reduction of the layer
statistics before each batch-normalized layer in the forward pass and of
the matching sums in the backward pass: a synchronizing round trip per
normalized layer and direction per evaluation, which is not what
``Network.loss_and_grad`` offers per block. Such networks get a
``ValueError``. So are networks with dropout, as in-memory L-BFGS refuses
them: dropout is defined by minibatch training.

Threads: dask's nanny starts each worker with ``OMP_NUM_THREADS=1``,
``OPENBLAS_NUM_THREADS=1`` and ``MKL_NUM_THREADS=1``
(``distributed.nanny.pre-spawn-environ``), so bpcore's OpenMP team and the
BLAS it calls run one thread per worker thread: a worker with T threads runs
T single-threaded bpcore tasks at once, with no oversubscription. The tests
check it inside a worker task. Workers started without a nanny do not get
these variables: set them yourself there. The nanny sets them in the
environment of the process that starts it too (``os.environ.update``, never
undone): a ``LocalCluster`` started in your session leaves
``OMP_NUM_THREADS=1`` there, and an OpenMP library initialized afterwards
(importing torch, for one) then pins bpcore's kernels in that process to
one thread. Start the cluster in its own process, or restore ``os.environ``
after starting it, as ``tests/test_dask.py`` does.
"""
from __future__ import annotations

import numbers
import pickle
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import scipy.optimize
from numpy.typing import ArrayLike, DTypeLike, NDArray

try:
    import dask
    import dask.array as da
    import distributed
except ImportError as exc:  # pragma: no cover - exercised without the extra
    raise ImportError(
        "bpcore.dask needs dask and distributed: install the optional extra with "
        "pip install 'bpcore[dask]' (dask[distributed] and dask-ml)"
    ) from exc

from . import _kernels
from .network import Network

__all__ = [
    "BlockwiseObjective",
    "binarize",
    "compute_classes",
    "minimize_lbfgs",
    "predict",
    "predict_proba",
]

# Partial sums added per reduction task. A two-level tree up to 64 blocks;
# each level moves at most one vector per task.
_SPLIT_EVERY = 8


# ---------------------------------------------------------------- input checks

def _client_or_default(client: object) -> distributed.Client:
    if client is not None:
        if not isinstance(client, distributed.Client):
            raise TypeError(f"client must be a distributed.Client, got {type(client).__name__}")
        return client
    try:
        return distributed.get_client()
    except ValueError:
        raise ValueError(
            "no dask.distributed Client is running: start one "
            "(client = distributed.Client(...)) or pass client="
        ) from None


def _uses_batch_norm(net: Network) -> bool:
    flag = getattr(net, "batch_norm", False)
    if isinstance(flag, (list, tuple, np.ndarray)):
        flag = any(bool(f) for f in flag)
    scales = getattr(net, "bn_scales", None) or []
    return bool(flag) or any(s is not None for s in scales)


def _uses_dropout(net: Network) -> bool:
    rate = getattr(net, "dropout", 0.0)
    return any(float(r) > 0 for r in np.atleast_1d(rate))


def _check_net(net: object) -> None:
    if not isinstance(net, Network):
        raise TypeError(f"net must be a bpcore.Network, got {type(net).__name__}")
    if _uses_dropout(net):
        raise ValueError(
            "bpcore.dask trains on the whole data at once, and dropout is defined by "
            "minibatch training (as for in-memory L-BFGS); use dropout=0, or a minibatch "
            "optimizer through dask_ml.wrappers.Incremental"
        )
    if _uses_batch_norm(net):
        raise ValueError(
            "bpcore.dask does not train batch-normalized networks: batch "
            "normalization needs the mean and variance of every layer over all "
            "rows, which the row blocks on different workers cannot compute "
            "alone (an exact evaluation needs a cluster-wide reduction before "
            "each normalized layer). Use batch_norm=False, or train on the data "
            "in memory / with dask_ml.wrappers.Incremental."
        )


def _check_rows_known(a: da.Array, name: str) -> None:
    if any(np.isnan(c) for c in a.chunks[0]):
        raise ValueError(
            f"{name} has unknown row-chunk sizes (from a dask DataFrame?): call "
            f"{name}.compute_chunk_sizes() or use df.to_dask_array(lengths=True) first"
        )


def _as_dask(a: Any, name: str, row_chunks: tuple[int, ...]) -> da.Array:
    """``a`` as a dask array chunked by ``row_chunks`` along its first axis."""
    if isinstance(a, da.Array):
        _check_rows_known(a, name)
    else:
        a = np.asarray(a)
    if a.ndim == 0 or a.shape[0] != sum(row_chunks):
        raise ValueError(f"X has {sum(row_chunks)} rows but {name} has shape {a.shape}")
    if not isinstance(a, da.Array):
        a = da.from_array(a, chunks=(row_chunks,) + a.shape[1:])
    if a.chunks[0] != row_chunks:
        # Blocks must pair up row for row; moves only the misaligned rows.
        a = a.rechunk((row_chunks,) + tuple(-1 for _ in a.shape[1:]))
    elif a.ndim > 1 and a.numblocks[1] > 1:
        a = a.rechunk({1: -1})
    return a


def _pack_block(X: ArrayLike, Y: ArrayLike, sw: ArrayLike | None, dtype: DTypeLike,
                ) -> tuple[NDArray[Any] | None, ...]:
    """One row block's (X, Y, sample_weight) as C-contiguous arrays of ``dtype``."""
    return tuple(None if a is None else np.ascontiguousarray(a, dtype=dtype)
                 for a in (X, Y, sw))


def _weight_mask(net: Network) -> NDArray[np.bool_]:
    """Boolean mask of the penalized entries of ``net.params`` (every ``W``).

    Found from the ``net.coefs`` views rather than assumed (today all weights
    come first, then the biases), so a layout change cannot silently
    penalize biases.
    """
    mask = np.zeros(net.params.shape[0], dtype=bool)
    base = net.params.__array_interface__["data"][0]
    size = net.params.itemsize
    for W in net.coefs:
        if not (np.shares_memory(W, net.params) and W.flags.c_contiguous):
            raise ValueError("net.coefs must be contiguous views into net.params")
        start = (W.__array_interface__["data"][0] - base) // size
        mask[start:start + W.size] = True
    return mask


# -------------------------------------------------------------- worker side

def _block_sums(spec: bytes, theta: NDArray[Any],
                block: tuple[NDArray[Any], NDArray[Any], NDArray[Any] | None],
                ) -> NDArray[np.float64]:
    """[sum of losses, sum of weights, sum of gradients] of one row block.

    Runs on the worker holding the block. ``loss_and_grad`` returns weighted
    means; multiplying by the block's weight sum gives the sums (its kernel
    divides by the same sum, so this undoes it up to one rounding).
    """
    X, Y, sw = block
    out = np.zeros(theta.shape[0] + 2)
    w = float(X.shape[0]) if sw is None else float(np.sum(sw, dtype=np.float64))
    if w == 0.0:  # a block of zero weights adds nothing (and its mean is 0/0)
        return out
    net = pickle.loads(spec)
    net.params[...] = theta
    loss, grad = net.loss_and_grad(X, Y, alpha=0.0, sample_weight=sw)
    out[0] = loss * w
    out[1] = w
    np.multiply(grad, w, out=out[2:])
    return out


def _sum_parts(*parts: NDArray[np.float64]) -> NDArray[np.float64]:
    total: NDArray[np.float64] = np.sum(parts, axis=0)
    return total


def _worker_threads() -> dict[str, Any]:
    """What bpcore and threadpoolctl see inside a worker task (tests, docs)."""
    from threadpoolctl import threadpool_info

    from . import _kernels
    return {"bpcore_max_threads": int(_kernels.max_threads()),
            "threadpools": [{k: i.get(k) for k in ("user_api", "internal_api", "num_threads")}
                            for i in threadpool_info()]}


# -------------------------------------------------------------- the objective

class BlockwiseObjective:
    """Full-batch loss and gradient of a Network over dask arrays, summed on the cluster.

    ``obj(theta)`` returns ``(loss, grad)`` (float, float64 array) for the
    parameter vector ``theta``: the weighted mean data loss over all rows plus
    ``(0.5 * alpha * sum(W**2) + l1 * sum(|W|)) / sum(sample_weight)``, and
    its gradient, as ``Network.loss_and_grad(X, Y, alpha, sample_weight,
    l1=l1)`` would compute in memory. Networks with batch norm or dropout are
    refused (both are defined by minibatch training). Each row block is evaluated where it lives; only the parameters
    (broadcast once) and one partial-sum vector per block travel.

    Parameters
    ----------
    net : Network
        Gives the architecture, loss and dtype; its ``params`` are not changed.
        Batch-normalized networks are refused (see the module docstring).
    X : dask array of shape (n_samples, n_features)
        Chunked by rows; column chunks are merged.
    Y : dask or NumPy array of shape (n_samples, n_outputs) or (n_samples,)
        Targets, already in the network's output encoding (see ``binarize``).
        Re-chunked to X's rows if needed.
    sample_weight : dask or NumPy array of shape (n_samples,), default=None
        Per-row weights: the loss and gradient are weighted means. None
        weighs every row 1. Re-chunked to X's rows if needed.
    alpha : float, default=0.0
        L2 strength, added on the client.
    l1 : float, default=0.0
        L1 strength (``l1 * sum(|W|) / sum(sample_weight)``, subgradient 0
        at 0), added on the client.
    client : distributed.Client, default=None
        The default client (``distributed.get_client()``) when None.
    broadcast : {"scatter", "tasks"}, default="scatter"
        How the parameters reach the workers each evaluation: ``"scatter"``
        sends one copy to every worker before the block tasks are submitted;
        ``"tasks"`` ships a copy inside each block task (no separate round
        trip, one copy per block). ``benchmarks/dask_lbfgs.py`` measures both.
    split_every : int, default=8
        Partial sums added per reduction task.

    Attributes
    ----------
    n_blocks : int
        Row blocks (tasks per evaluation).
    n_evaluations : int
    sw_total : float or None
        Total sample weight, known after the first evaluation.

    Examples
    --------
    >>> import dask.array as da, distributed, bpcore                # doctest: +SKIP
    >>> client = distributed.Client(n_workers=2, threads_per_worker=1)  # doctest: +SKIP
    >>> X = da.random.random((10_000, 8), chunks=(2_500, 8))         # doctest: +SKIP
    >>> Y = X.sum(axis=1, keepdims=True)                             # doctest: +SKIP
    >>> net = bpcore.Network([8, 16, 1], random_state=0)             # doctest: +SKIP
    >>> obj = bpcore.dask.BlockwiseObjective(net, X, Y, alpha=1e-4)  # doctest: +SKIP
    >>> loss, grad = obj(net.params)                                 # doctest: +SKIP
    """

    def __init__(self, net: Network, X: Any, Y: Any, sample_weight: Any = None, *,
                 alpha: float = 0.0, l1: float = 0.0, client: Any = None,
                 broadcast: str = "scatter", split_every: int = _SPLIT_EVERY) -> None:
        _check_net(net)
        if not isinstance(X, da.Array):
            raise TypeError(
                f"X must be a dask array, got {type(X).__name__}; in-memory data "
                "trains with bpcore.train or the estimators directly"
            )
        if X.ndim != 2:
            raise ValueError(f"X must be 2-D (n_samples, n_features), got shape {X.shape}")
        if X.shape[1] != net.n_features:
            raise ValueError(f"X has {X.shape[1]} columns, the network expects {net.n_features}")
        _check_rows_known(X, "X")
        if broadcast not in ("scatter", "tasks"):
            raise ValueError(f"broadcast must be 'scatter' or 'tasks', got {broadcast!r}")
        # int and float beside the numbers ABCs: to mypy they are not ABC subclasses.
        if (isinstance(split_every, bool)
                or not isinstance(split_every, (int, numbers.Integral)) or split_every < 2):
            raise ValueError(f"split_every must be an integer >= 2, got {split_every!r}")
        for name, value in (("alpha", alpha), ("l1", l1)):
            if (isinstance(value, bool) or not isinstance(value, (int, float, numbers.Real))
                    or not 0 <= value < np.inf):
                raise ValueError(f"{name} must be a non-negative real number, got {value!r}")
        self.client = _client_or_default(client)
        self.alpha = float(alpha)
        self.l1 = float(l1)
        self.broadcast = broadcast
        self.split_every = int(split_every)
        self.dtype = net.dtype
        self.n_params = net.n_params
        self._plan = net.layout
        mask = _weight_mask(net)
        if mask[net.layout.n_weights:].any() or not mask[:net.layout.n_weights].all():
            raise ValueError("the penalized weights are not params[:n_weights], as the "
                             "kernels' penalties (and this objective's) assume")

        X = X.rechunk({1: -1}) if X.numblocks[1] > 1 else X
        rows = X.chunks[0]
        Y = _as_dask(Y, "Y", rows)
        if Y.ndim == 1:
            Y = Y.reshape((-1, 1), merge_chunks=False)
        if Y.ndim != 2 or Y.shape[1] != net.n_outputs:
            raise ValueError(
                f"Y must have shape (n_samples, {net.n_outputs}) for this network, got "
                f"{Y.shape}; encode class labels with bpcore.dask.binarize first"
            )
        arrays = [X, Y]
        if sample_weight is not None:
            sw = _as_dask(sample_weight, "sample_weight", rows)
            if sw.ndim != 1:
                raise ValueError(f"sample_weight must be 1-D, got shape {sw.shape}")
            arrays.append(sw)
        # One object per row block holding its X, Y and weight rows, cast once
        # and kept on the workers: every evaluation reuses it (a lazy X would
        # otherwise be recomputed each time), and the three parts cannot be
        # split across workers (separately persisted, a Y block on another
        # worker than its X block moved at every evaluation: dask's active
        # memory manager drops the extra replica).
        blocks = [a.to_delayed().ravel() for a in arrays]
        if sample_weight is None:
            blocks.append([None] * len(rows))
        self._blocks = self.client.compute(
            [dask.delayed(_pack_block)(Xb, Yb, swb, self.dtype)
             for Xb, Yb, swb, n in zip(*blocks, rows) if n > 0])
        self.n_blocks = len(self._blocks)
        with self.client.as_current():  # wait() asks the current client
            distributed.wait(self._blocks)
        who = self.client.who_has(self._blocks)
        self._where = [sorted(who[b.key])[0] for b in self._blocks]
        self._spec = self.client.scatter(pickle.dumps(net), broadcast=True, hash=False)
        self.sw_total: float | None = None
        self.n_evaluations = 0

    # theta: the parameters, or (broadcast="scatter") their future on the workers.
    def _partial_sums(self, theta: Any) -> NDArray[np.float64]:
        """The tree-summed ``[loss sum, weight sum, gradient sum]`` for ``theta``."""
        if self.broadcast == "scatter":
            theta = self.client.scatter(theta, broadcast=True, hash=False)
        # Each block task runs on the worker holding its block. The
        # restriction is strict: with a loose one, dask's work stealing may
        # run the task on an idle worker and copy the whole block there.
        parts = [self.client.submit(_block_sums, self._spec, theta, block, workers=[where],
                                    allow_other_workers=False, pure=False)
                 for block, where in zip(self._blocks, self._where)]
        while len(parts) > 1:
            groups = [parts[j:j + self.split_every]
                      for j in range(0, len(parts), self.split_every)]
            parts = [self.client.submit(_sum_parts, *g, pure=False) if len(g) > 1 else g[0]
                     for g in groups]
        sums: NDArray[np.float64] = parts[0].result()
        return sums

    def __call__(self, theta: ArrayLike) -> tuple[float, NDArray[np.float64]]:
        theta = np.ascontiguousarray(theta, dtype=self.dtype)
        if theta.shape != (self.n_params,):
            raise ValueError(f"theta must have shape ({self.n_params},), got {theta.shape}")
        sums = self._partial_sums(theta)
        self.n_evaluations += 1
        sw_total = sums[1]
        if not sw_total > 0:
            raise ValueError("sample_weight sums to zero; at least one weight must be positive")
        self.sw_total = float(sw_total)
        loss = sums[0] / sw_total
        grad = sums[2:] / sw_total
        if self.alpha or self.l1:
            # The kernels' penalty term and its gradient, on the weights.
            loss += _kernels.penalty_add(self._plan, theta, self.alpha, self.l1,
                                         float(sw_total), grad)
        return float(loss), grad

    def bytes_per_evaluation(self, n_workers: int | None = None) -> dict[str, int]:
        """Bytes the parameters and gradients move per evaluation.

        ``n_params`` values of the network's dtype to each worker
        (``broadcast="scatter"``) or in each block task (``"tasks"``), and
        one float64 vector of ``n_params + 2`` per block and per reduction
        task (an upper bound: parts summed where they were computed do not
        move), the last one to the client.

        Parameters
        ----------
        n_workers : int or None, default=None
            Workers the parameters go to (``broadcast="scatter"``); None
            counts the cluster's.

        Returns
        -------
        n_bytes : dict of str to int
            Bytes moved per evaluation of the loss and gradient:
            ``{"params": ..., "gradients": ...}``.
        """
        if n_workers is None:
            n_workers = len(set(self._where))
        copies = n_workers if self.broadcast == "scatter" else self.n_blocks
        params = copies * self.n_params * self.dtype.itemsize
        n_parts, level = self.n_blocks, self.n_blocks
        while level > 1:
            level = -(-level // self.split_every)
            n_parts += level
        grads = n_parts * (self.n_params + 2) * 8
        return {"params": params, "gradients": grads}

    def close(self) -> None:
        """Release the persisted blocks on the workers."""
        self._blocks = []
        self._where = []
        self._spec = None


# ------------------------------------------------------------------ L-BFGS

def minimize_lbfgs(net: Network, X: Any, Y: Any, sample_weight: Any = None, *,
                   alpha: float = 0.0, l1: float = 0.0, options: Mapping[str, Any] | None = None,
                   client: Any = None) -> Any:
    """Full-batch L-BFGS-B on dask arrays; ``net.params`` receives the result.

    The data-parallel counterpart of ``bpcore._lbfgs.minimize_lbfgs``: each
    evaluation computes the loss and gradient blockwise on the workers and
    tree-sums them (``BlockwiseObjective``); scipy's L-BFGS-B runs on the
    client on the float64 parameter vector. The data are never collected to
    the client. Same result as the in-memory fit up to rounding.

    Parameters
    ----------
    net : Network
        Its ``params`` are the starting point and receive the result.
    X : dask array of shape (n_samples, n_features)
        Chunked by rows (column chunks are merged: a row needs all features).
    Y : dask or NumPy array of shape (n_samples, n_outputs)
        Targets in the network's encoding (``binarize`` for class labels).
    sample_weight : dask or NumPy array of shape (n_samples,), default=None
        Per-row weights: the loss and gradient are weighted means. None
        weighs every row 1.
    alpha : float, default=0.0
        L2 strength: ``0.5 * alpha * sum(W**2) / sum(sample_weight)``.
    l1 : float, default=0.0
        L1 strength: ``l1 * sum(|W|) / sum(sample_weight)``.
    options : dict, default=None
        Passed to ``scipy.optimize.minimize(method="L-BFGS-B")``
        (``maxiter``, ``maxfun``, ``gtol``, ...).
    client : distributed.Client, default=None
        The default client when None.

    Returns
    -------
    scipy.optimize.OptimizeResult
        With ``n_blocks`` (tasks per evaluation) added.

    Examples
    --------
    >>> import dask.array as da, distributed, bpcore, bpcore.dask  # doctest: +SKIP
    >>> client = distributed.Client(n_workers=2, threads_per_worker=1)  # doctest: +SKIP
    >>> X = da.random.random((100_000, 8), chunks=(25_000, 8))        # doctest: +SKIP
    >>> y = (X[:, 0] > 0.5).astype(int)                                # doctest: +SKIP
    >>> classes = bpcore.dask.compute_classes(y)                       # doctest: +SKIP
    >>> Y = bpcore.dask.binarize(y, classes)                           # doctest: +SKIP
    >>> net = bpcore.Network([8, 16, 1], output="logistic", loss="log_loss",
    ...                      random_state=0)                           # doctest: +SKIP
    >>> result = bpcore.dask.minimize_lbfgs(net, X, Y, alpha=1e-4,
    ...                                     options={"maxiter": 50})   # doctest: +SKIP
    >>> proba = bpcore.dask.predict_proba(net, X)   # a dask array     # doctest: +SKIP
    """
    objective = BlockwiseObjective(net, X, Y, sample_weight, alpha=alpha, l1=l1,
                                   client=client)
    try:
        result = scipy.optimize.minimize(
            objective, net.params.astype(np.float64), method="L-BFGS-B", jac=True,
            options=options,
        )
    finally:
        objective.close()
    net.params[...] = result.x
    result.n_blocks = objective.n_blocks
    return result


# ------------------------------------------------------------------ labels

def compute_target_moments(Y: Any, sample_weight: Any = None,
                           ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Weighted mean and (biased) variance of each column of a dask ``Y``, in
    one ``dask.compute`` (the regressor's target scaling, ``bpcore._target``).

    Returns
    -------
    mean, var : ndarray of shape (n_outputs,)
    """
    from ._target import target_moments
    if isinstance(Y, da.Array):
        _check_rows_known(Y, "y")
    else:
        Y = da.from_array(np.asarray(Y))
    Y = Y.astype(np.float64)
    sw = None if sample_weight is None else _as_dask(sample_weight, "sample_weight",
                                                     Y.chunks[0]).astype(np.float64)
    mean, var = dask.compute(*target_moments(Y, sw))
    return mean, var


def compute_classes(y: Any) -> NDArray[Any]:
    """Sorted unique labels of a dask (or NumPy) label vector, computed on the cluster.

    Only the unique values come back to the client.

    Parameters
    ----------
    y : dask array of shape (n_samples,)
        Class labels (a NumPy array or a list is wrapped as one block).

    Returns
    -------
    classes : ndarray, sorted

    Examples
    --------
    >>> import dask.array as da, bpcore.dask
    >>> y = da.from_array(["b", "a", "b", "c"], chunks=2)
    >>> bpcore.dask.compute_classes(y)
    array(['a', 'b', 'c'], dtype='<U1')
    """
    y = y if isinstance(y, da.Array) else da.asarray(y)
    if y.ndim != 1:
        raise ValueError(
            f"y must be 1-D class labels, got shape {y.shape}; a 2-D indicator "
            "matrix (multilabel) is already binarized"
        )
    return np.asarray(da.unique(y).compute())


def _binarize_block(y: NDArray[Any], classes: NDArray[Any], dtype: np.dtype[Any],
                    ) -> NDArray[Any]:
    from sklearn.preprocessing import LabelBinarizer
    lb = LabelBinarizer().fit(classes)
    Y: NDArray[Any] = lb.transform(y).astype(dtype, copy=False)
    return Y


def binarize(y: Any, classes: ArrayLike, dtype: DTypeLike = "float64") -> Any:
    """One-hot targets (n, k) from dask labels, block by block on the workers.

    As scikit-learn's ``LabelBinarizer`` fitted on ``classes`` (and as
    ``MLPClassifier`` encodes its targets): one column per class, or a single
    0/1 column for two classes. Labels missing from ``classes`` raise on the
    worker.

    Parameters
    ----------
    y : dask array of shape (n_samples,)
        Class labels, each one of ``classes``.
    classes : array-like
        All the class labels (``compute_classes(y)``).
    dtype : {"float64", "float32"}, default="float64"
        The targets' dtype: the network's.

    Returns
    -------
    Y : dask array of shape (n_samples, k), chunked like ``y``

    Examples
    --------
    >>> import dask.array as da, bpcore.dask
    >>> y = da.from_array([2, 0, 1, 2], chunks=2)
    >>> bpcore.dask.binarize(y, [0, 1, 2]).compute()
    array([[0., 0., 1.],
           [1., 0., 0.],
           [0., 1., 0.],
           [0., 0., 1.]])
    """
    y = y if isinstance(y, da.Array) else da.asarray(y)
    if y.ndim != 1:
        raise ValueError(f"y must be 1-D class labels, got shape {y.shape}")
    classes = np.asarray(classes)
    if classes.ndim != 1 or classes.shape[0] < 2:
        raise ValueError(f"classes must list at least two labels, got {classes!r}")
    k = 1 if classes.shape[0] == 2 else classes.shape[0]
    dtype = np.dtype(dtype)
    return y.map_blocks(_binarize_block, classes, dtype, dtype=dtype,
                        chunks=(y.chunks[0], (k,)), new_axis=1)


# -------------------------------------------------------------- prediction

def _apply(block: NDArray[Any], fn: Callable[[NDArray[Any]], NDArray[Any]],
           trailing: tuple[int, ...]) -> NDArray[Any]:
    out = fn(block)
    return out.reshape((block.shape[0],) + trailing)


def _blockwise(fn: Callable[[NDArray[Any]], NDArray[Any]], X: Any, n_features: int | None,
               ) -> da.Array:
    if not isinstance(X, da.Array):
        raise TypeError(f"X must be a dask array, got {type(X).__name__}")
    if X.ndim != 2:
        raise ValueError(f"X must be 2-D (n_samples, n_features), got shape {X.shape}")
    if n_features is not None and X.shape[1] != n_features:
        raise ValueError(f"X has {X.shape[1]} columns, the model expects {n_features}")
    X = X.rechunk({1: -1}) if X.numblocks[1] > 1 else X
    # The output's dtype and trailing shape, from one row (estimators refuse
    # empty input, so dask's own zero-row probe cannot be used).
    sample = np.asarray(fn(np.zeros((1, X.shape[1]), dtype=X.dtype)))
    trailing = sample.shape[1:]
    if trailing:
        return X.map_blocks(_apply, fn, trailing, dtype=sample.dtype,
                            chunks=(X.chunks[0],) + tuple((t,) for t in trailing))
    return X.map_blocks(_apply, fn, trailing, dtype=sample.dtype,
                        chunks=(X.chunks[0],), drop_axis=1)


def _n_features(model: Any) -> int | None:
    if isinstance(model, Network):
        return model.n_features
    return getattr(model, "n_features_in_", None)


def predict(model: Any, X: Any) -> Any:
    """Blockwise ``predict`` (estimators) or ``forward`` (Network) over a dask array.

    Parameters
    ----------
    model : fitted estimator with ``predict``, or Network
        Applied to every row block on the workers: ``predict`` of an
        estimator, ``forward`` of a Network.
    X : dask array of shape (n_samples, n_features), chunked by rows
        The rows to predict; column chunks are merged first.

    Returns
    -------
    dask array of shape (n_samples,) or (n_samples, n_outputs)
        Computed on the workers when asked; chunked like X's rows.

    Examples
    --------
    >>> import numpy as np, dask.array as da, bpcore, bpcore.dask
    >>> X = np.random.RandomState(0).rand(40, 3)
    >>> clf = bpcore.MLPClassifier((5,), max_iter=5, random_state=0).fit(X, X[:, 0] > 0.5)
    >>> yd = bpcore.dask.predict(clf, da.from_array(X, chunks=10))
    >>> bool((yd.compute() == clf.predict(X)).all())
    True
    """
    fn = model.forward if isinstance(model, Network) else model.predict
    return _blockwise(fn, X, _n_features(model))


def predict_proba(model: Any, X: Any) -> Any:
    """Blockwise ``predict_proba`` (classifiers) or the probabilities of a Network.

    For a Network, ``forward`` of a ``softmax`` or ``logistic`` output.

    Parameters
    ----------
    model : fitted classifier with ``predict_proba``, or Network
        Applied to every row block on the workers: ``predict_proba`` of a
        classifier, ``forward`` of a softmax or logistic Network.
    X : dask array of shape (n_samples, n_features), chunked by rows
        The rows to predict; column chunks are merged first.

    Returns
    -------
    dask array of shape (n_samples, n_classes)

    Examples
    --------
    >>> import numpy as np, dask.array as da, bpcore, bpcore.dask
    >>> X = np.random.RandomState(0).rand(40, 3)
    >>> clf = bpcore.MLPClassifier((5,), max_iter=5, random_state=0).fit(X, X[:, 0] > 0.5)
    >>> P = bpcore.dask.predict_proba(clf, da.from_array(X, chunks=10))
    >>> P.shape, bool(np.allclose(P.compute(), clf.predict_proba(X)))
    ((40, 2), True)
    """
    if isinstance(model, Network):
        if model.output not in ("softmax", "logistic"):
            raise ValueError(
                f"predict_proba needs a softmax or logistic output, the network has "
                f"{model.output!r}; use bpcore.dask.predict for its raw output"
            )
        fn = model.forward
    else:
        if not hasattr(model, "predict_proba"):
            raise TypeError(f"{type(model).__name__} has no predict_proba")
        fn = model.predict_proba
    return _blockwise(fn, X, _n_features(model))
