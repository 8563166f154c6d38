"""W6: the layer toolbox against PyTorch eager and against bpcore's plain net.

W1's data (20000 x 64, 10 classes) through (128, 128) hidden units, batch
norm and dropout 0.1 on both, a residual skip around the second, batch 32,
Adam (lr 1e-3) and L2 1e-4: bpcore and PyTorch eager (Linear, BatchNorm1d,
ReLU, Dropout, the same skip, cross-entropy, fused Adam) run alternately in
one process, seconds per epoch, median of per-round ratios after a warm-up;
beside them bpcore's plain (128, 128) network and the products-only floor of
the W6 plan, and with ``--jax`` JAX/XLA's whole-epoch jit of W6 on the same
number of threads. Run: ``python benchmarks/w6_layers.py [--rounds 5]
[--threads 1 2] [--dtypes float32 float64] [--jax]``. Ratios only carry over between runs.
"""
import argparse
import time

import numpy as np
from threadpoolctl import threadpool_limits

import bpcore
from bpcore._engine import EpochRunner, reshuffle

try:
    from bpcore.benchmark.floor import FloorRunner
except ImportError:  # a tree from before issue 22
    from bpcore._engine import FloorRunner

N, D, K, H, BS, LR, ALPHA = 20000, 64, 10, 128, 32, 1e-3, 1e-4


def data(dtype):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((N, D)).astype(dtype)
    y = (X[:, :K] @ rng.standard_normal((K, K))).argmax(1)
    return X, np.eye(K, dtype=dtype)[y], y


class Bp:
    def __init__(self, dtype, toolbox, floor=False):
        X, Y, self.y = data(dtype)
        kw = dict(batch_norm=True, dropout=0.1, residual=[False, True]) if toolbox else {}
        self.net = bpcore.Network([D, H, H, K], activation="relu", output="softmax",
                                  loss="log_loss", dtype=dtype, random_state=0, **kw)
        opt = bpcore.Adam(LR, variant="paper")
        self.floor = FloorRunner(self.net, opt, X, Y, BS) if floor else None
        self.runner = None if floor else EpochRunner(self.net, opt, X, Y, None, BS, ALPHA,
                                                     seed=1)
        self.order, self.rs, self.X, self.epoch = np.arange(N), np.random.RandomState(0), X, 0

    def run(self):
        if self.floor is not None:
            return self.floor.run()
        self.order = reshuffle(self.order, self.rs)
        self.runner.epoch = self.epoch
        self.epoch += 1
        self.runner.run(self.order)

    def accuracy(self):
        return None if self.floor else float(
            (self.net.forward(self.X).argmax(1) == self.y).mean())


class Torch:
    def __init__(self, dtype):
        import torch
        from torch import nn
        self.torch = torch
        torch.manual_seed(0)
        tdt = getattr(torch, dtype)
        X, Y, y = data(dtype)
        self.X, self.y = torch.from_numpy(X), torch.from_numpy(y)

        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.l1, self.b1 = nn.Linear(D, H, dtype=tdt), nn.BatchNorm1d(H, dtype=tdt)
                self.l2, self.b2 = nn.Linear(H, H, dtype=tdt), nn.BatchNorm1d(H, dtype=tdt)
                self.out, self.drop = nn.Linear(H, K, dtype=tdt), nn.Dropout(0.1)

            def forward(self, x):
                a1 = self.drop(torch.relu(self.b1(self.l1(x))))
                a2 = self.drop(torch.relu(self.b2(self.l2(a1)))) + a1
                return self.out(a2)

        self.net = Net()
        # L2 on the weights only, as bpcore's alpha (0.5 alpha |W|^2 / batch).
        w = [self.net.l1.weight, self.net.l2.weight, self.net.out.weight]
        rest = [p for p in self.net.parameters() if all(p is not q for q in w)]
        self.opt = torch.optim.Adam([{"params": w, "weight_decay": ALPHA / BS},
                                     {"params": rest}], lr=LR, fused=True)
        self.loss = nn.CrossEntropyLoss()

    def run(self):
        torch = self.torch
        self.net.train()
        perm = torch.randperm(N)
        for s in range(0, N, BS):
            idx = perm[s:s + BS]
            if idx.numel() < 2:
                continue
            self.opt.zero_grad(set_to_none=True)
            self.loss(self.net(self.X[idx]), self.y[idx]).backward()
            self.opt.step()

    def accuracy(self):
        self.net.eval()
        with self.torch.no_grad():
            return float((self.net(self.X).argmax(1) == self.y).float().mean())


class Jax:
    """W6 in JAX/XLA: the whole epoch one jitted ``lax.scan`` (the peers'
    fastest form on a CPU), the same layers (batch statistics with biased
    variance, running statistics with momentum 0.1 and the unbiased
    variance, dropout 0.1 with inverted scaling, the skip around the second
    layer), softmax cross-entropy, Adam (optax, lr 1e-3) and L2 as bpcore's
    ``alpha`` (0.5 alpha |W|^2 / batch on the three weight matrices).
    XLA's pool size is set before the client starts (``set_xla_threads``)."""

    def __init__(self, dtype, threads):
        import jax
        import optax
        from bpcore.benchmark.contenders import set_xla_threads
        self.note = set_xla_threads(threads, restart=True)
        self.jax, jnp = jax, jax.numpy
        self._x64 = jax.enable_x64(dtype == "float64")
        X, Y, self.y = data(dtype)
        with self._x64:
            self.X, self.Y = jnp.asarray(X), jnp.asarray(Y)
            rng = np.random.default_rng(0)

            def dense(n_in, n_out):
                bound = np.sqrt(6 / (n_in + n_out))
                return jnp.asarray(rng.uniform(-bound, bound, (n_in, n_out)).astype(dtype))
            zeros, ones = (lambda n: jnp.zeros(n, dtype)), (lambda n: jnp.ones(n, dtype))
            self.params = {"W1": dense(D, H), "b1": zeros(H), "g1": ones(H),
                           "W2": dense(H, H), "b2": zeros(H), "g2": ones(H),
                           "W3": dense(H, K), "b3": zeros(K)}
            self.stats = {"m1": zeros(H), "v1": ones(H), "m2": zeros(H), "v2": ones(H)}
            self.tx = optax.adam(LR)
            self.opt_state = self.tx.init(self.params)
            self.key = jax.random.PRNGKey(0)
            self.epoch = jax.jit(self._build(optax))
            self.rs = np.random.RandomState(0)

    def _build(self, optax):
        jax, jnp, tx = self.jax, self.jax.numpy, self.tx

        def bn(z, g, b, m, v):
            mean, var = z.mean(0), z.var(0)
            out = g * (z - mean) / jnp.sqrt(var + 1e-5) + b
            n = z.shape[0]
            return out, 0.9 * m + 0.1 * mean, 0.9 * v + 0.1 * var * n / (n - 1)

        def drop(a, key):
            keep = jax.random.bernoulli(key, 0.9, a.shape)
            return jnp.where(keep, a / 0.9, 0)

        def loss(p, stats, xb, yb, key):
            k1, k2 = jax.random.split(key)
            h1, m1, v1 = bn(xb @ p["W1"], p["g1"], p["b1"], stats["m1"], stats["v1"])
            a1 = drop(jax.nn.relu(h1), k1)
            h2, m2, v2 = bn(a1 @ p["W2"], p["g2"], p["b2"], stats["m2"], stats["v2"])
            a2 = drop(jax.nn.relu(h2), k2) + a1
            data_loss = optax.softmax_cross_entropy(a2 @ p["W3"] + p["b3"], yb).mean()
            l2 = sum(jnp.sum(p[w] * p[w]) for w in ("W1", "W2", "W3"))
            new = {"m1": m1, "v1": v1, "m2": m2, "v2": v2}
            return data_loss + 0.5 * ALPHA / xb.shape[0] * l2, new

        grad = jax.value_and_grad(loss, has_aux=True)

        def epoch(p, opt_state, stats, X, Y, perm, key):
            def step(carry, i):
                p, opt_state, stats = carry
                idx = jax.lax.dynamic_slice_in_dim(perm, i * BS, BS)
                (value, stats), g = grad(p, stats, X[idx], Y[idx], jax.random.fold_in(key, i))
                updates, opt_state = tx.update(g, opt_state, p)
                return (optax.apply_updates(p, updates), opt_state, stats), value

            (p, opt_state, stats), losses = jax.lax.scan(
                step, (p, opt_state, stats), jnp.arange(N // BS))
            return p, opt_state, stats, losses.mean()

        return epoch

    def run(self):
        with self._x64:
            perm = self.jax.numpy.asarray(self.rs.permutation(N).astype(np.int32))
            self.key, sub = self.jax.random.split(self.key)
            self.params, self.opt_state, self.stats, loss = self.epoch(
                self.params, self.opt_state, self.stats, self.X, self.Y, perm, sub)
            self.jax.block_until_ready(loss)

    def accuracy(self):
        jnp, p, s = self.jax.numpy, self.params, self.stats
        with self._x64:
            def bn(z, g, b, m, v):
                return g * (z - m) / jnp.sqrt(v + 1e-5) + b
            a1 = self.jax.nn.relu(bn(self.X @ p["W1"], p["g1"], p["b1"], s["m1"], s["v1"]))
            a2 = self.jax.nn.relu(bn(a1 @ p["W2"], p["g2"], p["b2"], s["m2"], s["v2"])) + a1
            return float(((a2 @ p["W3"] + p["b3"]).argmax(1) == jnp.asarray(self.y)).mean())


def timed(c):
    t0 = time.perf_counter()
    c.run()
    return time.perf_counter() - t0


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--dtypes", nargs="+", default=["float32", "float64"])
    ap.add_argument("--no-torch", action="store_true")
    ap.add_argument("--jax", action="store_true",
                    help="add JAX/XLA's whole-epoch jit of W6 (same threads)")
    args = ap.parse_args()
    try:
        import torch
    except ImportError:
        torch = None
    print("| dtype | threads | W6 bpcore s/epoch | plain (128,128) | floor | torch eager "
          "| torch/W6 | W6/plain | W6/floor | accuracy W6 / torch | jax jit | jax/W6 |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|")
    for dtype in args.dtypes:
        for nt in args.threads:
            if torch is not None:
                torch.set_num_threads(nt)
            with threadpool_limits(nt):
                cs = {"w6": Bp(dtype, True), "plain": Bp(dtype, False),
                      "floor": Bp(dtype, True, floor=True)}
                if torch is not None and not args.no_torch:
                    cs["torch"] = Torch(dtype)
                if args.jax:
                    cs["jax"] = Jax(dtype, nt)
                    cs["jax"].run()                     # compile
                for c in cs.values():
                    c.run()                             # warm-up
                times = {k: [] for k in cs}
                for _ in range(args.rounds):
                    for k, c in cs.items():
                        times[k].append(timed(c))
            med = {k: float(np.median(v)) for k, v in times.items()}

            def ratio(a, b):
                return float(np.median(np.array(times[a]) / np.array(times[b])))
            tt = f"{med['torch']:.3f}" if "torch" in cs else "—"
            tr = f"{ratio('torch', 'w6'):.2f}x" if "torch" in cs else "—"
            acc_t = f"{cs['torch'].accuracy():.3f}" if "torch" in cs else "—"
            jt = f"{med['jax']:.4f} (acc. {cs['jax'].accuracy():.3f})" if "jax" in cs else "—"
            jr = f"{ratio('jax', 'w6'):.2f}x" if "jax" in cs else "—"
            print(f"| {dtype} | {nt} | {med['w6']:.4f} | {med['plain']:.4f} | "
                  f"{med['floor']:.4f} | {tt} | {tr} | {ratio('w6', 'plain'):.2f} | "
                  f"{ratio('w6', 'floor'):.2f} | {cs['w6'].accuracy():.3f} / {acc_t} | "
                  f"{jt} | {jr} |", flush=True)


if __name__ == "__main__":
    main()
