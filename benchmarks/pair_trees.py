"""Two source trees of bpcore, timed in strict alternation: is a change free?

    python benchmarks/pair_trees.py /work/baseline/src src --pairs 21
    python benchmarks/pair_trees.py A/src B/src --workloads W1 W5 --threads 2

Starts one persistent worker process per tree (``PYTHONPATH=<tree>``), then,
per case (the W1, W2, W5 shapes at their batch sizes, W3 on 2,000 rows;
float64 and float32; 1 and 2 threads), a warm-up and ``--pairs`` timed
epochs from each, alternating which goes first. One thread is timed by the
thread's CPU time (a loaded machine's waiting drops out), two by wall time.
Prints, per case, the best times, their ratio and the median (and
interquartile range) of the paired ratios, second tree over first.
"""
import argparse
import os
import statistics
import subprocess
import sys
import time

SHAPES = {"W1": (4000, 64, [100], 10, 32, 2), "W2": (4000, 64, [100], 10, 200, 2),
          "W3": (2000, 256, [256, 256], 10, 128, 1), "W5": (1797, 64, [100], 10, 32, 5)}


def worker():
    import numpy as np
    from threadpoolctl import threadpool_limits
    from bpcore import Adam, Network, train
    cache = {}
    for line in sys.stdin:
        name, dtype, threads = line.split()
        threads = int(threads)
        n, d, hidden, k, bs, epochs = SHAPES[name]
        if (name, dtype) not in cache:
            rng = np.random.default_rng(0)
            X = rng.standard_normal((n, d))
            Y = np.eye(k)[rng.integers(0, k, n)]
            net = Network([d] + hidden + [k], output="softmax", loss="log_loss", dtype=dtype,
                          random_state=0)
            cache[name, dtype] = (X, Y, net, Adam(1e-3))
        X, Y, net, opt = cache[name, dtype]
        clock = time.thread_time if threads == 1 else time.perf_counter
        with threadpool_limits(limits=threads):
            t0 = clock()
            train(net, X, Y, optimizer=opt, epochs=epochs, batch_size=bs, random_state=0,
                  alpha=1e-4)
            print((clock() - t0) / epochs, flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("first")
    parser.add_argument("second")
    parser.add_argument("--pairs", type=int, default=21)
    parser.add_argument("--workloads", nargs="+", default=list(SHAPES), choices=list(SHAPES))
    parser.add_argument("--threads", nargs="+", type=int, default=[1, 2])
    args = parser.parse_args()
    procs = [subprocess.Popen([sys.executable, os.path.abspath(__file__), "--worker"],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                              env=dict(os.environ, PYTHONPATH=os.path.abspath(tree)))
             for tree in (args.first, args.second)]

    def ask(p, cmd):
        p.stdin.write(cmd + "\n")
        p.stdin.flush()
        return float(p.stdout.readline())

    for name in args.workloads:
        for dtype in ("float64", "float32"):
            for threads in args.threads:
                cmd = f"{name} {dtype} {threads}"
                for p in procs:
                    ask(p, cmd)
                times = ([], [])
                for i in range(args.pairs):
                    for j in ((0, 1) if i % 2 == 0 else (1, 0)):
                        times[j].append(ask(procs[j], cmd))
                ratios = sorted(b / a for a, b in zip(*times))
                q = lambda f: ratios[int(f * (len(ratios) - 1))]  # noqa: E731
                print(f"{name}/{dtype[5:]}/t{threads}: best {min(times[0]) * 1e3:.2f} ms vs "
                      f"{min(times[1]) * 1e3:.2f} ms ({min(times[1]) / min(times[0]):.3f}), "
                      f"paired median {statistics.median(ratios):.3f} "
                      f"(IQR {q(0.25):.2f}-{q(0.75):.2f})", flush=True)
    for p in procs:
        p.stdin.close()
        p.wait()


if __name__ == "__main__":
    if sys.argv[1:] == ["--worker"]:
        worker()
    else:
        main()
