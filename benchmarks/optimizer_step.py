"""The cost of one optimizer pass over W1's and W3's parameter counts.

    python benchmarks/optimizer_step.py [--repeats 15] [--number 200]

Times ``opt.step(params, grad)`` (one kernel call, plus the Python checks)
and the bare kernel call ``_kernels.optimizer_step``, for every optimizer of
the registry on 7,510 parameters (W1: 64 -> 100 -> 10) and 134,154 (W3:
256 -> 256 -> 256 -> 10), float64 and float32. The optimizers take turns
(A B C A B C ..., see timing.py), and each row is reported as a ratio to
Adam's paper form timed in the same rounds, so the machine's other tenants
hit every optimizer alike. Gradients are ordinary random numbers (a zero
gradient lets the divider finish early and flatters Adam-like updates).
"""
import argparse
import statistics
import timeit

import numpy as np

from bpcore import _kernels
from bpcore.optimizers import RPROP, SGD, AdaGrad, Adam, AdamW, NAdam, RMSProp

SIZES = {"W1": 7_510, "W3": 134_154}
W1_WEIGHTS = {"W1": 64 * 100 + 100 * 10, "W3": 256 * 256 * 2 + 256 * 10}

OPTIMIZERS = {
    "Adam (paper)": lambda: Adam(variant="paper"),
    "Adam (sklearn)": lambda: Adam(),
    "AdamW": lambda: AdamW(),
    "Adam amsgrad": lambda: Adam(variant="paper", amsgrad=True),
    "AdamW amsgrad": lambda: AdamW(amsgrad=True),
    "NAdam": lambda: NAdam(),
    "RPROP": lambda: RPROP(),
    "RMSProp": lambda: RMSProp(),
    "AdaGrad": lambda: AdaGrad(),
    "SGD momentum": lambda: SGD(momentum=0.9),
}


def time_pass(n, n_weights, dtype, repeats, number):
    rng = np.random.default_rng(0)
    runs = {}
    for name, make in OPTIMIZERS.items():
        opt = make()
        params = rng.standard_normal(n).astype(dtype)
        grad = (rng.standard_normal(n) * 1e-2).astype(dtype)
        state = opt.state_for(params)
        runs[name] = (
            lambda opt=opt, p=params, g=grad: opt.step(p, g, n_weights=n_weights),
            lambda opt=opt, p=params, g=grad, s=state: _kernels.optimizer_step(
                opt._config, p, g, s, n_weights),
        )
    times = {name: ([], []) for name in runs}
    for r in range(repeats + 1):           # round 0 warms up
        for name, (step, kernel) in runs.items():
            for k, fn in enumerate((step, kernel)):
                t = timeit.timeit(fn, number=number) / number
                if r:
                    times[name][k].append(t)
    return {name: tuple(statistics.median(t) for t in ts) for name, ts in times.items()}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--number", type=int, default=200)
    args = ap.parse_args()
    print("| params | dtype | optimizer | opt.step us | ratio | kernel us | ratio |")
    print("|---|---|---|---|---|---|---|")
    for wl, n in SIZES.items():
        for dtype in (np.float64, np.float32):
            med = time_pass(n, W1_WEIGHTS[wl], dtype, args.repeats, args.number)
            base = med["Adam (paper)"]
            for name, (step, kernel) in med.items():
                print(f"| {wl} {n:,} | {np.dtype(dtype).name} | {name} | {step * 1e6:.1f} | "
                      f"{step / base[0]:.3f} | {kernel * 1e6:.1f} | {kernel / base[1]:.3f} |")


if __name__ == "__main__":
    main()
