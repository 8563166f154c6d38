"""What one more ``bpcore.train`` call costs, as a share of a W5 epoch.

    python benchmarks/train_loop_overhead.py [--rounds 61] [--calls 10]
        [--dtype float64] [--threads 1] [--clock cpu|wall]

A user driving epochs from Python calls ``train(net, X, Y, epochs=1, ...)``
in a loop on the same arrays. Each round times ``--calls`` such calls (A) and
one call of ``--calls`` epochs (B) on W5's data and network (digits, 64 ->
100 -> 10, batch 32, Adam at scikit-learn's rate, its L2), A then B in even
rounds and B then A in odd ones, so the machine's other tenants hit both
alike. Per call, the overhead is ``(A - B) / calls`` and the epoch is
``B / calls``; the overhead's share of the epoch is taken per round and the
median over rounds is reported (with the medians of both times). The target
(issue 16) is a share of at most 2%.

``--threads`` limits OpenMP and BLAS (threadpoolctl) for the whole run; 1 by
default, as the per-epoch figures of the issue were taken. On one thread the
clock is this process's CPU time by default (``time.process_time``): on a
machine shared with other builds and tests, wall time also counted the
milliseconds this process waited for a core (quartiles of the share spanning
0.5%..11% in one run); ``--clock wall`` takes wall time, the default with
more threads. Short rounds (10 calls) interleave A and B finely.
"""
import argparse
import os
import statistics
import sys
import time

import numpy as np
from threadpoolctl import threadpool_limits

import bpcore

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from workloads import ALPHA, LEARNING_RATE, WORKLOADS, make_dataset  # noqa: E402

TARGET = 0.02


def measure(dtype="float64", rounds=61, calls=10, clock=time.process_time):
    w = WORKLOADS["W5"]
    data = make_dataset(w)
    X, Y = data.X_train[dtype], data.Y_train[dtype]
    net = bpcore.Network(w.layer_units(), output="softmax", loss="log_loss",
                         dtype=dtype, random_state=0)
    opt = bpcore.Adam(LEARNING_RATE)
    rs = np.random.RandomState(0)

    def train(epochs):
        bpcore.train(net, X, Y, optimizer=opt, epochs=epochs, batch_size=w.batch_size,
                     random_state=rs, alpha=ALPHA)

    def loop():
        t0 = clock()
        for _ in range(calls):
            train(1)
        return clock() - t0

    def one_call():
        t0 = clock()
        train(calls)
        return clock() - t0

    train(5)                                   # warm up
    shares, overheads, epochs = [], [], []
    for r in range(rounds):
        if r % 2 == 0:
            a = loop()
            b = one_call()
        else:
            b = one_call()
            a = loop()
        overhead, epoch = (a - b) / calls, b / calls
        shares.append(overhead / epoch)
        overheads.append(overhead)
        epochs.append(epoch)
    return {
        "share": statistics.median(shares),
        "overhead_us": statistics.median(overheads) * 1e6,
        "epoch_ms": statistics.median(epochs) * 1e3,
        "shares": shares,
    }


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=61)
    p.add_argument("--calls", type=int, default=10)
    p.add_argument("--dtype", default="float64", choices=("float64", "float32"))
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--clock", choices=("cpu", "wall"), default=None,
                   help="default: cpu on one thread, wall otherwise")
    args = p.parse_args(argv)
    clock = args.clock or ("cpu" if args.threads == 1 else "wall")
    with threadpool_limits(args.threads):
        res = measure(args.dtype, args.rounds, args.calls,
                      time.process_time if clock == "cpu" else time.perf_counter)
    q1, q3 = np.percentile(res["shares"], [25, 75])
    print(f"W5 {args.dtype}, {args.threads} thread(s), {clock} time, {args.rounds} rounds of "
          f"{args.calls} calls: per-call overhead {res['overhead_us']:.1f} us = "
          f"{100 * res['share']:.2f}% of a {res['epoch_ms']:.3f} ms epoch "
          f"(median of per-round shares; quartiles {100 * q1:.2f}%..{100 * q3:.2f}%); "
          f"target <= {100 * TARGET:.0f}%: {'met' if res['share'] <= TARGET else 'NOT met'}")
    return res


if __name__ == "__main__":
    main()
