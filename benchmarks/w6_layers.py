"""W6: the layer toolbox against PyTorch eager and against bpcore's plain net.

W1's data (20000 x 64, 10 classes) through (128, 128) hidden units, batch
norm and dropout 0.1 on both, a residual skip around the second, batch 32,
Adam (lr 1e-3) and L2 1e-4: bpcore and PyTorch eager (Linear, BatchNorm1d,
ReLU, Dropout, the same skip, cross-entropy, fused Adam) run alternately in
one process, seconds per epoch, median of per-round ratios after a warm-up;
beside them bpcore's plain (128, 128) network and the products-only floor of
the W6 plan. Run: ``python benchmarks/w6_layers.py [--rounds 5] [--threads 1 2]
[--dtypes float32 float64]``. Ratios only carry over between runs.
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
    args = ap.parse_args()
    try:
        import torch
    except ImportError:
        torch = None
    print("| dtype | threads | W6 bpcore s/epoch | plain (128,128) | floor | torch eager "
          "| torch/W6 | W6/plain | W6/floor | accuracy W6 / torch |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for dtype in args.dtypes:
        for nt in args.threads:
            if torch is not None:
                torch.set_num_threads(nt)
            with threadpool_limits(nt):
                cs = {"w6": Bp(dtype, True), "plain": Bp(dtype, False),
                      "floor": Bp(dtype, True, floor=True)}
                if torch is not None and not args.no_torch:
                    cs["torch"] = Torch(dtype)
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
            print(f"| {dtype} | {nt} | {med['w6']:.4f} | {med['plain']:.4f} | "
                  f"{med['floor']:.4f} | {tt} | {tr} | {ratio('w6', 'plain'):.2f} | "
                  f"{ratio('w6', 'floor'):.2f} | {cs['w6'].accuracy():.3f} / {acc_t} |",
                  flush=True)


if __name__ == "__main__":
    main()
