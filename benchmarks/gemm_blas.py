"""The GEMMs of W4 alone: SciPy's BLAS (what bpcore calls) against PyTorch's.

W4 is nothing but large matrix products, so bpcore's W4 epoch is bounded by
the BLAS it calls through ``scipy.linalg.cython_blas``. This times each of
W4's GEMM shapes (batch 512, 784 -> 1024 -> 1024) on one thread through
bpcore's row-major wrapper and through ``torch.mm`` (MKL in the x86 CPU
build), alternating, median of 15 after a warm-up, and prints GFLOP/s and
the ratio. Needs torch (``pip install ".[bench]"``).

    python benchmarks/gemm_blas.py
"""
import statistics
import time

import numpy as np
import torch
from threadpoolctl import threadpool_limits

from bpcore import _kernels

ROWS = 512
# (name, trans_a, trans_b, m, n, k) for C (m x n) = op(A) @ op(B), as the epoch issues them.
SHAPES = [
    ("forward 784->1024", False, False, ROWS, 1024, 784),
    ("forward 1024->1024", False, False, ROWS, 1024, 1024),
    ("weight grad 1024x1024", True, False, 1024, 1024, ROWS),
    ("weight grad 784x1024", True, False, 784, 1024, ROWS),
    ("delta 1024<-1024", False, True, ROWS, 1024, 1024),
]


def _median_time(f, repeats=15):
    f()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        f()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main():
    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    print(f"{'dtype':8s} {'GEMM':24s} {'SciPy BLAS':>12s} {'torch.mm':>12s}  torch/SciPy speed")
    with threadpool_limits(1):
        for dtype in (np.float32, np.float64):
            for name, ta, tb, m, n, k in SHAPES:
                a = rng.random((k, m) if ta else (m, k)).astype(dtype)
                b = rng.random((n, k) if tb else (k, n)).astype(dtype)
                c = np.zeros((m, n), dtype)
                at, bt = torch.from_numpy(a), torch.from_numpy(b)
                at, bt = (at.T if ta else at), (bt.T if tb else bt)
                ours = _median_time(lambda: _kernels.gemm(ta, tb, 1.0, a, b, 0.0, c))
                theirs = _median_time(lambda: torch.mm(at, bt))
                gflop = 2 * m * n * k / 1e9
                print(f"{np.dtype(dtype).name:8s} {name:24s} {gflop / ours:8.1f} GF/s "
                      f"{gflop / theirs:8.1f} GF/s  {ours / theirs:.2f}x")


if __name__ == "__main__":
    main()
