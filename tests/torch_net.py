"""A torch twin of a ``bpcore.Network`` (TOOLBOX.md section 1), for the tests.

``TorchNet(net)`` copies the network's weights, biases, batch-norm scales,
shifts and running statistics into ``torch.nn.Linear`` and
``torch.nn.BatchNorm1d(momentum=0.1, eps=1e-5)`` modules; dropout is applied
with a given keep mask (the kernel's, from ``reference.dropout_keep``) and the
inverted scale ``1 / (1 - p)``; a residual layer adds its input. The losses
are torch's (``L1Loss``, ``HuberLoss``) or the formulas of TOOLBOX.md
section 2 written with torch operations. Import only after
``pytest.importorskip("torch")``.
"""
import numpy as np
import torch
import torch.nn.functional as F

import reference as ref

TORCH_ACTIVATIONS = {
    "identity": lambda z: z,
    "logistic": torch.sigmoid,
    "tanh": torch.tanh,
    "relu": torch.relu,
    "leaky_relu": lambda z: F.leaky_relu(z, ref.LEAKY_RELU_SLOPE),
    "elu": lambda z: F.elu(z, ref.ELU_ALPHA),
    "gelu": F.gelu,                 # exact erf form (torch's default)
    "silu": F.silu,
    "softplus": F.softplus,         # beta=1, threshold=20
    "selu": F.selu,
    "softmax": lambda z: torch.softmax(z, dim=1),
    "exp": torch.exp,
}


def _t(a, dtype):
    return torch.tensor(np.asarray(a, dtype=np.float64), dtype=dtype)


def weighted_batch_norm(bn, z, w):
    """``bn`` (a BatchNorm1d in training) with each row of ``z`` counting
    ``w`` times, in torch operations (autograd differentiates it): mean =
    sum(w z) / W, biased var = sum(w (z - mean)**2) / W, W = sum(w); the
    running statistics move as BatchNorm1d's would on the repeated rows
    (unbiased var * W / (W - 1)), and not at all when W <= 1."""
    W = w.sum()
    wc = w[:, None]
    mean = (wc * z).sum(dim=0) / W
    var = (wc * (z - mean) ** 2).sum(dim=0) / W
    if W.item() > 1:
        with torch.no_grad():
            m = bn.momentum
            bn.running_mean.mul_(1 - m).add_(m * mean)
            bn.running_var.mul_(1 - m).add_(m * var * W / (W - 1))
    return (z - mean) / torch.sqrt(var + bn.eps) * bn.weight + bn.bias


class TorchNet(torch.nn.Module):
    """The torch twin of ``net`` (see the module docstring)."""

    def __init__(self, net, dtype=torch.float64):
        super().__init__()
        self.net = net
        self.dtype = dtype
        self.linears = torch.nn.ModuleList()
        self.bns = torch.nn.ModuleList()
        n_hidden = len(net._hidden)
        for l, W in enumerate(net.coefs):
            fi, fo = W.shape
            bn = l < n_hidden and net._batch_norm[l]
            lin = torch.nn.Linear(fi, fo, bias=not bn, dtype=dtype)
            with torch.no_grad():
                lin.weight.copy_(_t(W.T, dtype))
                if not bn:
                    lin.bias.copy_(_t(net.intercepts[l], dtype))
            self.linears.append(lin)
            if bn:
                m = torch.nn.BatchNorm1d(fo, momentum=0.1, eps=1e-5, dtype=dtype)
                with torch.no_grad():
                    m.weight.copy_(_t(net.bn_scales[l], dtype))
                    m.bias.copy_(_t(net.intercepts[l], dtype))
                    m.running_mean.copy_(_t(net.bn_means[l], dtype))
                    m.running_var.copy_(_t(net.bn_vars[l], dtype))
                self.bns.append(m)
            else:
                self.bns.append(torch.nn.Identity())

    def forward(self, X, keep=None, sample_weight=None):
        """Output for X; ``keep[l]`` is layer l's boolean keep mask (or None).
        With ``sample_weight`` in training, batch norm takes weighted batch
        statistics (``weighted_batch_norm``)."""
        net = self.net
        a = X
        n_hidden = len(net._hidden)
        for l, lin in enumerate(self.linears):
            bn = self.bns[l]
            if (sample_weight is not None and self.training
                    and isinstance(bn, torch.nn.BatchNorm1d)):
                z = weighted_batch_norm(bn, lin(a), sample_weight)
            else:
                z = bn(lin(a))
            if l == n_hidden:
                return TORCH_ACTIVATIONS[net.output](z)
            h = TORCH_ACTIVATIONS[net._hidden[l]](z)
            p = net._dropout[l]
            if keep is not None and keep[l] is not None and p > 0:
                scale = torch.tensor(1.0, dtype=self.dtype) / torch.tensor(1.0 - p,
                                                                           dtype=self.dtype)
                h = torch.where(_t(keep[l], torch.float64).to(torch.bool), h * scale,
                                torch.zeros((), dtype=self.dtype))
            if net._residual[l]:
                h = h + a
            a = h
        raise AssertionError("unreachable")

    def loss(self, out, Y, sample_weight=None):
        """The network's loss (TOOLBOX.md section 2) of ``out`` against Y."""
        net = self.net
        loss, output = net.loss, net.output
        if sample_weight is None and loss == "absolute_error":
            return torch.nn.L1Loss()(out, Y)
        if sample_weight is None and loss == "huber":
            return torch.nn.HuberLoss(delta=net.huber_delta)(out, Y)
        if loss == "squared_error":
            rows = 0.5 * ((out - Y) ** 2).mean(dim=1)
        elif loss == "absolute_error":
            rows = (out - Y).abs().mean(dim=1)
        elif loss == "huber":
            rows = torch.nn.HuberLoss(delta=net.huber_delta, reduction="none")(out, Y).mean(dim=1)
        elif loss == "log_loss" and output == "softmax":
            rows = -(Y * torch.log(out)).sum(dim=1)
        elif loss == "log_loss":
            rows = -(Y * torch.log(out) + (1 - Y) * torch.log(1 - out)).sum(dim=1)
        elif loss == "poisson":
            rows = (torch.special.xlogy(Y, Y / out) - Y + out).sum(dim=1)
        else:
            raise KeyError(loss)
        if sample_weight is None:
            return rows.mean()
        return (sample_weight * rows).sum() / sample_weight.sum()

    def penalty(self, alpha, l1, batch_weight):
        """0.5 alpha sum(W**2) / batch_weight + l1 sum(|W|) / batch_weight."""
        total = 0.0
        for lin in self.linears:
            total = total + (0.5 * alpha * (lin.weight ** 2).sum()
                             + l1 * lin.weight.abs().sum()) / batch_weight
        return total

    def flat_grad(self):
        """The parameters' ``.grad`` in the layout of ``net.params``."""
        return self._flat(lambda p: p.grad)

    def flat_params(self):
        return self._flat(lambda p: p.data)

    def _flat(self, get):
        net = self.net
        flat = np.zeros(net.n_params)
        coefs, inter = net._views(flat)
        scales = net._scale_views(flat)
        for l, lin in enumerate(self.linears):
            coefs[l][...] = get(lin.weight).detach().double().numpy().T
            if scales[l] is None:
                inter[l][...] = get(lin.bias).detach().double().numpy()
            else:
                scales[l][...] = get(self.bns[l].weight).detach().double().numpy()
                inter[l][...] = get(self.bns[l].bias).detach().double().numpy()
        return flat

    def running_stats(self):
        """(means, vars) per layer as float64 arrays, None without batch norm."""
        means, vars_ = [], []
        for bn in self.bns:
            if isinstance(bn, torch.nn.BatchNorm1d):
                means.append(bn.running_mean.double().numpy().copy())
                vars_.append(bn.running_var.double().numpy().copy())
            else:
                means.append(None)
                vars_.append(None)
        return means, vars_


def torch_loss_and_grad(net, X, Y, *, alpha=0.0, l1=0.0, sample_weight=None,
                        training=False, seed=0, dtype=torch.float64):
    """(loss, flat gradient) of ``net``'s torch twin, as ``net.loss_and_grad``
    defines them (training: batch statistics, weighted by ``sample_weight``,
    and the kernel's masks of seed)."""
    tn = TorchNet(net, dtype)
    tn.train(training)
    keep = None
    if training:
        # The masks are keyed by the rows as the kernel sees them (net's dtype).
        keys = ref.row_keys(np.asarray(X, dtype=net.dtype))
        keep = [ref.dropout_keep(seed, 0, l, keys, net.coefs[l].shape[1], p)
                if p > 0 else None for l, p in enumerate(net._dropout)]
    Xt, Yt = _t(X, dtype), _t(Y, dtype)
    sw = None if sample_weight is None else _t(sample_weight, dtype)
    bw = float(X.shape[0]) if sample_weight is None else float(np.sum(sample_weight))
    loss = tn.loss(tn(Xt, keep, sw), Yt, sw) + tn.penalty(alpha, l1, bw)
    loss.backward()
    return loss.item(), tn.flat_grad()
