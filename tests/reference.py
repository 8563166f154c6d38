"""Plain NumPy reference implementations of everything the kernels compute.

Written from the mathematics (and scikit-learn's documented conventions), not
from the kernels: every function here works in float64 on copies of its
inputs, so a kernel's result in float32 or float64 can be compared against it
with a per-dtype tolerance. Nothing here is imported by the package.
"""
import numpy as np
import scipy.sparse as sp

LEAKY_RELU_SLOPE = 0.01
ELU_ALPHA = 1.0
SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946


def _f64(a):
    return np.array(a, dtype=np.float64, copy=True)


# ---------------------------------------------------------------------------
# BLAS
# ---------------------------------------------------------------------------

def gemm(trans_a, trans_b, alpha, a, b, beta, c):
    """alpha * op(a) @ op(b) + beta * c."""
    a, b, c = _f64(a), _f64(b), _f64(c)
    op_a = a.T if trans_a else a
    op_b = b.T if trans_b else b
    return alpha * (op_a @ op_b) + beta * c


def gemm_scale(trans_a, trans_b, alpha, a, b, beta, c):
    """Elementwise magnitude |alpha| |op(a)| @ |op(b)| + |beta| |c|: the error scale of gemm."""
    return gemm(trans_a, trans_b, abs(alpha), np.abs(a), np.abs(b), abs(beta), np.abs(c))


# ---------------------------------------------------------------------------
# Activations, as functions of the pre-activation z
# ---------------------------------------------------------------------------

def logistic(z):
    z = _f64(z)
    out = np.empty_like(z)
    pos = z >= 0
    out[pos] = 1.0 / (1.0 + np.exp(-z[pos]))
    ez = np.exp(z[~pos])
    out[~pos] = ez / (1.0 + ez)
    return out


def softmax(z):
    z = _f64(z)
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


ACTIVATIONS = {
    "identity": lambda z: _f64(z),
    "logistic": logistic,
    "tanh": lambda z: np.tanh(_f64(z)),
    "relu": lambda z: np.maximum(_f64(z), 0.0),
    "leaky_relu": lambda z: np.where(_f64(z) > 0, _f64(z), LEAKY_RELU_SLOPE * _f64(z)),
    "elu": lambda z: np.where(_f64(z) > 0, _f64(z), ELU_ALPHA * np.expm1(np.minimum(_f64(z), 0.0))),
    "softmax": softmax,
    "exp": lambda z: np.exp(_f64(z)),
    # Textbook definitions (the kernels follow torch's operation order):
    "gelu": lambda z: 0.5 * _f64(z) * (1.0 + _erf(_f64(z) / np.sqrt(2.0))),
    "silu": lambda z: _f64(z) * logistic(z),
    "softplus": lambda z: np.where(_f64(z) > 20, _f64(z), np.logaddexp(0.0, _f64(z))),
    "selu": lambda z: SELU_SCALE * np.where(_f64(z) > 0, _f64(z),
                                            SELU_ALPHA * np.expm1(np.minimum(_f64(z), 0.0))),
}


def _erf(x):
    from scipy.special import erf
    return erf(x)


def activation_forward(name, z, bias=None):
    """f(z + bias)."""
    z = _f64(z)
    if bias is not None:
        z = z + _f64(bias)
    return ACTIVATIONS[name](z)


def _elementwise_derivative(name, z):
    z = _f64(z)
    if name == "identity":
        return np.ones_like(z)
    if name == "logistic":
        s = logistic(z)
        return s * (1.0 - s)
    if name == "tanh":
        return 1.0 - np.tanh(z) ** 2
    if name == "relu":
        return (z > 0).astype(np.float64)
    if name == "leaky_relu":
        return np.where(z > 0, 1.0, LEAKY_RELU_SLOPE)
    if name == "elu":
        return np.where(z > 0, 1.0, ELU_ALPHA * np.exp(np.minimum(z, 0.0)))
    if name == "exp":
        return np.exp(z)
    if name == "gelu":
        return 0.5 * (1.0 + _erf(z / np.sqrt(2.0))) + z * np.exp(-0.5 * z * z) / np.sqrt(2 * np.pi)
    if name == "silu":
        s = logistic(z)
        return s * (1.0 + z * (1.0 - s))
    if name == "softplus":
        return np.where(z > 20, 1.0, logistic(z))
    if name == "selu":
        return SELU_SCALE * np.where(z > 0, 1.0, SELU_ALPHA * np.exp(np.minimum(z, 0.0)))
    raise KeyError(f"no reference derivative for activation {name!r}")


def activation_backward(name, z, delta):
    """delta (times) the Jacobian of f at z: dL/dz from dL/da.

    Elementwise activations multiply by f'(z); softmax applies its Jacobian
    J = diag(s) - s s^T row by row (J is symmetric, so this is also J^T delta).
    """
    z, delta = _f64(z), _f64(delta)
    if name == "softmax":
        s = softmax(z)
        out = np.empty_like(delta)
        for i in range(z.shape[0]):
            jac = np.diag(s[i]) - np.outer(s[i], s[i])
            out[i] = jac @ delta[i]
        return out
    return delta * _elementwise_derivative(name, z)


# ---------------------------------------------------------------------------
# Losses: per-row values, their weighted sum, and the output delta dL/dz
# ---------------------------------------------------------------------------

def _xlogy(x, y):
    x, y = _f64(x), _f64(y)
    out = np.zeros(np.broadcast(x, y).shape)
    nz = x != 0
    out[nz] = x[nz] * np.log(y[nz])
    return out


def _clip(p, dtype):
    eps = np.finfo(dtype).eps
    return np.clip(_f64(p), eps, 1 - eps)


def row_losses(loss_kind, out, y, dtype=np.float64):
    """Per-row loss. ``loss_kind`` is "squared_error", "log_loss" (softmax
    output), "binary_log_loss" (logistic output) or "poisson" (exp output).

    squared_error: 0.5 * mean over outputs of (out - y)**2.
    log losses clip probabilities to [eps, 1 - eps] of ``dtype``, as
    scikit-learn does; Poisson is the half deviance y log(y/out) - y + out.
    """
    out, y = _f64(out), _f64(y)
    if loss_kind == "squared_error":
        return 0.5 * np.mean((out - y) ** 2, axis=1)
    if loss_kind == "log_loss":
        return -_xlogy(y, _clip(out, dtype)).sum(axis=1)
    if loss_kind == "binary_log_loss":
        p = _clip(out, dtype)
        return -(_xlogy(y, p) + _xlogy(1 - y, 1 - p)).sum(axis=1)
    if loss_kind == "poisson":
        return (_xlogy(y, y / out) - y + out).sum(axis=1)
    if loss_kind == "absolute_error":
        return np.mean(np.abs(out - y), axis=1)
    if loss_kind == "huber":
        d = np.abs(out - y)
        return np.mean(np.where(d <= HUBER_DELTA, 0.5 * d * d,
                                HUBER_DELTA * (d - 0.5 * HUBER_DELTA)), axis=1)
    raise KeyError(f"no reference for loss {loss_kind!r}")


def loss_delta(loss_kind, out, y, sample_weight=None, sq_scale=1.0, dtype=np.float64):
    """(sum_i sw_i * loss_i, delta) with delta_i = sw_i * (out_i - y_i) (times
    ``sq_scale`` for squared error): the kernel's contract."""
    out, y = _f64(out), _f64(y)
    sw = np.ones(out.shape[0]) if sample_weight is None else _f64(sample_weight)
    total = float(np.sum(sw * row_losses(loss_kind, out, y, dtype)))
    delta = _output_derivative(loss_kind, out, y) * sw[:, None]
    if loss_kind in REGRESSION_LOSSES:
        delta = delta * sq_scale
    return total, delta


#: Losses that take any output activation; their delta is scaled by sq_scale.
REGRESSION_LOSSES = ("squared_error", "absolute_error", "huber")
HUBER_DELTA = 1.0


def _output_derivative(loss_kind, out, y):
    """d(per-row loss summed over outputs, unscaled)/d(out) as the kernels form it:
    out - y, sign(out - y) (0 at 0), or Huber's clamp of out - y."""
    d = out - y
    if loss_kind == "absolute_error":
        return np.sign(d)
    if loss_kind == "huber":
        return np.clip(d, -HUBER_DELTA, HUBER_DELTA)
    return d


def loss_kind(loss, output):
    """The loss as the reference names it, for a (loss, output activation) pair."""
    if loss == "log_loss":
        return "log_loss" if output == "softmax" else "binary_log_loss"
    return loss


# ---------------------------------------------------------------------------
# Whole networks
# ---------------------------------------------------------------------------

def network_forward(coefs, intercepts, activations, X):
    """Pre-activations and activations of every layer; ``activations`` has one
    name per weight layer, the output's last."""
    a = _f64(X)
    zs, acts = [], []
    for W, b, name in zip(coefs, intercepts, activations):
        z = a @ _f64(W) + _f64(b)
        a = ACTIVATIONS[name](z)
        zs.append(z)
        acts.append(a)
    return zs, acts


def network_loss_grad(coefs, intercepts, activations, loss, X, Y, alpha=0.0,
                      sample_weight=None, dtype=np.float64):
    """Loss and gradient (as per-layer lists) of a network, by backpropagation.

    Loss = weighted mean over samples of the per-row loss
    + 0.5 * alpha * sum(||W||^2) / sum(sw).
    """
    X, Y = _f64(X), _f64(Y)
    n = X.shape[0]
    sw = np.ones(n) if sample_weight is None else _f64(sample_weight)
    sw_sum = sw.sum()
    zs, acts = network_forward(coefs, intercepts, activations, X)
    kind = loss_kind(loss, activations[-1])
    rows = row_losses(kind, acts[-1], Y, dtype)
    sq = sum(float(np.sum(_f64(W) ** 2)) for W in coefs)
    value = float(np.sum(sw * rows) / sw_sum + 0.5 * alpha * sq / sw_sum)

    # dL/d(output activation), per sample, already weighted and averaged.
    out = acts[-1]
    if kind in REGRESSION_LOSSES:
        d_out = _output_derivative(kind, out, Y) / Y.shape[1]
        delta = activation_backward(activations[-1], zs[-1], d_out)
    else:
        # Canonical link: dL/dz = out - y (clipping ignored: it only matters
        # for probabilities within eps of 0 or 1).
        delta = out - Y
    delta = delta * sw[:, None] / sw_sum

    g_coefs = [None] * len(coefs)
    g_inter = [None] * len(coefs)
    for layer in range(len(coefs) - 1, -1, -1):
        a_in = X if layer == 0 else acts[layer - 1]
        g_coefs[layer] = a_in.T @ delta + alpha * _f64(coefs[layer]) / sw_sum
        g_inter[layer] = delta.sum(axis=0)
        if layer > 0:
            delta = activation_backward(activations[layer - 1], zs[layer - 1],
                                        delta @ _f64(coefs[layer]).T)
    return value, g_coefs, g_inter


def flatten(coefs, intercepts):
    """The flat layout: all weight matrices (row-major), then all biases."""
    return np.concatenate([np.ravel(c) for c in coefs] + [np.ravel(b) for b in intercepts])


def glorot_init(layer_sizes, activation, rs):
    """scikit-learn's MLP initialization, drawn from ``rs`` layer by layer."""
    factor = 2.0 if activation == "logistic" else 6.0
    coefs, intercepts = [], []
    for fan_in, fan_out in zip(layer_sizes[:-1], layer_sizes[1:]):
        bound = np.sqrt(factor / (fan_in + fan_out))
        coefs.append(rs.uniform(-bound, bound, (fan_in, fan_out)))
        intercepts.append(rs.uniform(-bound, bound, fan_out))
    return coefs, intercepts


# ---------------------------------------------------------------------------
# Optimizers: one step of each rule on float64 copies. ``state`` is a dict
# (empty before the first step) that the function updates.
# ---------------------------------------------------------------------------

def sgd_step(theta, g, state, *, learning_rate, momentum=0.0, nesterov=False):
    theta, g = _f64(theta), _f64(g)
    if momentum == 0 and not nesterov:
        return theta - learning_rate * g
    v = state.get("velocity", np.zeros_like(theta))
    v = momentum * v - learning_rate * g
    state["velocity"] = v
    if nesterov:
        return theta + momentum * v - learning_rate * g
    return theta + v


def adam_step(theta, g, state, *, learning_rate, beta_1=0.9, beta_2=0.999, epsilon=1e-8,
              variant="sklearn", amsgrad=False):
    theta, g = _f64(theta), _f64(g)
    t = state.get("t", 0) + 1
    m = beta_1 * state.get("m", 0.0) + (1 - beta_1) * g
    v = beta_2 * state.get("v", 0.0) + (1 - beta_2) * g * g
    state.update(t=t, m=m, v=v)
    if amsgrad:
        v = np.maximum(state.get("vmax", 0.0), v)
        state["vmax"] = v
    if variant == "sklearn" and not amsgrad:
        lr_t = learning_rate * np.sqrt(1 - beta_2 ** t) / (1 - beta_1 ** t)
        return theta - lr_t * m / (np.sqrt(v) + epsilon)
    if variant == "paper":
        m_hat = m / (1 - beta_1 ** t)
        v_hat = v / (1 - beta_2 ** t)
        return theta - learning_rate * m_hat / (np.sqrt(v_hat) + epsilon)
    raise KeyError(variant)


def adamw_step(theta, g, state, *, learning_rate=1e-3, beta_1=0.9, beta_2=0.999,
               epsilon=1e-8, weight_decay=1e-2, amsgrad=False, n_weights=None):
    """Loshchilov & Hutter's decoupled decay of theta[:n_weights] (None: all),
    then Adam's paper step."""
    theta = _f64(theta).copy()
    theta[:n_weights] *= 1 - learning_rate * weight_decay
    return adam_step(theta, g, state, learning_rate=learning_rate, beta_1=beta_1,
                     beta_2=beta_2, epsilon=epsilon, variant="paper", amsgrad=amsgrad)


def nadam_step(theta, g, state, *, learning_rate=2e-3, beta_1=0.9, beta_2=0.999,
               epsilon=1e-8, momentum_decay=4e-3):
    """Dozat's NAdam in PyTorch's form: m_hat mixes the new gradient (weight
    1 - mu_t) and the momentum (weight mu_{t+1}), each bias-corrected by the
    product of the mu's."""
    theta, g = _f64(theta), _f64(g)
    t = state.get("t", 0) + 1
    mu = [beta_1 * (1 - 0.5 * 0.96 ** (k * momentum_decay)) for k in (t, t + 1)]
    prod = state.get("mu_product", 1.0) * mu[0]
    m = beta_1 * state.get("m", 0.0) + (1 - beta_1) * g
    v = beta_2 * state.get("v", 0.0) + (1 - beta_2) * g * g
    state.update(t=t, m=m, v=v, mu_product=prod)
    m_hat = (1 - mu[0]) * g / (1 - prod) + mu[1] * m / (1 - prod * mu[1])
    return theta - learning_rate * m_hat / (np.sqrt(v / (1 - beta_2 ** t)) + epsilon)


def rprop_step(theta, g, state, *, learning_rate=1e-2, etas=(0.5, 1.2),
               step_sizes=(1e-6, 50.0)):
    """Riedmiller & Braun's Rprop without backtracking (PyTorch's form)."""
    theta, g = _f64(theta), _f64(g)
    prev = state.get("prev", np.zeros_like(g))
    size = state.get("size", np.full_like(g, learning_rate))
    same = np.sign(g) * np.sign(prev)
    size = np.clip(size * np.where(same > 0, etas[1], np.where(same < 0, etas[0], 1.0)),
                   *step_sizes)
    g = np.where(same < 0, 0.0, g)
    state.update(prev=g, size=size)
    return theta - np.sign(g) * size


def rmsprop_step(theta, g, state, *, learning_rate, rho=0.9, epsilon=1e-8):
    theta, g = _f64(theta), _f64(g)
    v = rho * state.get("v", 0.0) + (1 - rho) * g * g
    state["v"] = v
    return theta - learning_rate * g / (np.sqrt(v) + epsilon)


def adagrad_step(theta, g, state, *, learning_rate, epsilon=1e-10):
    theta, g = _f64(theta), _f64(g)
    acc = state.get("G", 0.0) + g * g
    state["G"] = acc
    return theta - learning_rate * g / (np.sqrt(acc) + epsilon)


#: optimizer registry name -> reference step (keyword arguments as the class's).
OPTIMIZER_STEPS = {
    "sgd": sgd_step,
    "adam": adam_step,
    "rmsprop": rmsprop_step,
    "adagrad": adagrad_step,
    "adamw": adamw_step,
    "nadam": nadam_step,
    "rprop": rprop_step,
}


# ---------------------------------------------------------------------------
# Training: a plain minibatch loop
# ---------------------------------------------------------------------------

def train_loop(coefs, intercepts, activations, loss, X, Y, *, optimizer, hyper, orders,
               batch_size, alpha=0.0, sample_weight=None):
    """Minibatch training in float64: for each epoch's row order, consecutive
    batches (the last one short), loss and gradient by backprop, one optimizer
    step per batch. Returns (per-epoch losses, coefs, intercepts)."""
    coefs = [_f64(c) for c in coefs]
    intercepts = [_f64(b) for b in intercepts]
    shapes = [c.shape for c in coefs] + [b.shape for b in intercepts]
    theta = flatten(coefs, intercepts)
    step = OPTIMIZER_STEPS[optimizer]
    state = {}
    X, Y = _f64(X), _f64(Y)
    n = X.shape[0]
    bs = max(1, min(batch_size, n))

    def unflatten(flat):
        parts, off = [], 0
        for shape in shapes:
            size = int(np.prod(shape))
            parts.append(flat[off:off + size].reshape(shape))
            off += size
        k = len(coefs)
        return parts[:k], parts[k:]

    losses = []
    for order in orders:
        total = 0.0
        for start in range(0, n, bs):
            idx = order[start:start + bs]
            sw = None if sample_weight is None else sample_weight[idx]
            cs, bs_ = unflatten(theta)
            value, gc, gb = network_loss_grad(cs, bs_, activations, loss, X[idx], Y[idx],
                                              alpha=alpha, sample_weight=sw)
            total += value * len(idx)
            theta = step(theta, flatten(gc, gb), state, **hyper)
        losses.append(total / n)
    cs, bs_ = unflatten(theta)
    return np.array(losses), cs, bs_


# ---------------------------------------------------------------------------
# The layer toolbox (TOOLBOX.md section 1): dropout masks and a forward pass
# with batch norm, dropout and residual skips
# ---------------------------------------------------------------------------

_U64 = np.uint64


def _mix64(z):
    """splitmix64's finalizer on uint64 arrays (wrapping arithmetic)."""
    z = (z ^ (z >> _U64(30))) * _U64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> _U64(27))) * _U64(0x94D049BB133111EB)
    return z ^ (z >> _U64(31))


def row_keys(X):
    """The sample key of every row of X (dense, or scipy CSR): the kernels'
    bp_row_key redone in NumPy. Each nonzero entry hashes (its column, its
    value's float64 bits); the row's key mixes the sum of those hashes."""
    if sp.issparse(X):
        X = X.toarray()
    X = np.asarray(X, dtype=np.float64)
    with np.errstate(over="ignore"):
        bits = X.view(_U64)
        cols = np.arange(1, X.shape[1] + 1, dtype=_U64) * _U64(0xD1B54A32D192ED03)
        t = _mix64(_mix64(bits) + cols[None, :])
        t = np.where(X != 0, t, _U64(0))
        return _mix64(t.sum(axis=1, dtype=_U64))


def dropout_keep(seed, epoch, layer, samples, n_units, p):
    """The kept-unit mask (bool, (len(samples), n_units)) that the kernels
    draw for ``layer`` of ``samples`` (their keys, ``row_keys``) in
    ``epoch``: src/c/bp_layers.c's bp_dropout_key and bp_dropout, redone
    in NumPy."""
    with np.errstate(over="ignore"):
        key = np.array([seed], dtype=_U64) ^ _U64(0x5851F42D4C957F2D)
        key = _mix64(_mix64(_mix64(key) ^ _U64(epoch)) ^ _U64(layer))
        s = np.asarray(samples, dtype=_U64)
        rk = _mix64(key ^ (s * _U64(0x9E3779B97F4A7C15)))
        j = np.arange(1, n_units + 1, dtype=_U64) * _U64(0xD1B54A32D192ED03)
        h = _mix64(rk[:, None] + j[None, :])
    u = (h >> _U64(11)).astype(np.float64) * 2.0 ** -53
    return u >= p


def toolbox_forward(net, X, *, training=False, seed=0, epoch=0, samples=None,
                    bn_eps=1e-5, sample_weight=None):
    """Pre-activations (after batch norm and bias) of every layer and the
    output of a ``bpcore.Network`` with the toolbox's layers, in float64.

    Training: batch statistics (biased variance; weighted by
    ``sample_weight`` when given) and the dropout masks of (seed, epoch,
    sample), the samples by default the keys of X's rows in the net's dtype
    (``row_keys``, as the kernels key the rows they train on); otherwise the
    running statistics and no dropout.
    """
    if samples is None:
        samples = row_keys(np.asarray(X.toarray() if sp.issparse(X) else X, dtype=net.dtype))
    X = _f64(X)
    acts = list(net._hidden) + [net.output]
    n_hidden = len(net._hidden)
    a = X
    zs = []
    for l in range(len(net.coefs)):
        z = a @ _f64(net.coefs[l])
        if l < n_hidden and net._batch_norm[l]:
            if training:
                mean = np.average(z, axis=0, weights=sample_weight)
                var = np.average((z - mean) ** 2, axis=0, weights=sample_weight)
            else:
                mean, var = _f64(net.bn_means[l]), _f64(net.bn_vars[l])
            z = (z - mean) / np.sqrt(var + bn_eps) * _f64(net.bn_scales[l])
        z = z + _f64(net.intercepts[l])
        zs.append(z)
        h = ACTIVATIONS[acts[l]](z)
        if l < n_hidden:
            p = net._dropout[l]
            if training and p > 0:
                keep = dropout_keep(seed, epoch, l, samples, h.shape[1], p)
                h = np.where(keep, h / (1 - p), 0.0)
            if net._residual[l]:
                h = h + a
        a = h
    return zs, a


def perturb_bn(net, rng):
    """Give a network's batch-norm layers non-trivial gamma, shift and
    running statistics (they start at 1, 0, 0 and 1)."""
    for l, g in enumerate(net.bn_scales):
        if g is not None:
            g[...] = rng.uniform(0.5, 1.5, g.shape)
            net.intercepts[l][...] = 0.3 * rng.standard_normal(g.shape)
            net.bn_means[l][...] = 0.5 * rng.standard_normal(g.shape)
            net.bn_vars[l][...] = rng.uniform(0.5, 2.0, g.shape)
