"""Full-batch loss+gradient evaluation (one L-BFGS step's work) in memory vs on dask.

Workload: 400,000 x 64 -> (64,) -> 10, softmax + log loss, float64, L2
alpha=1e-4 (4,810 parameters; X is 205 MB). Contenders, timed in alternation
(``timing.time_alternating``: a burst of load from another tenant hits all of
them alike), median per evaluation:

* in memory, as ``bpcore._lbfgs`` evaluates (one kernel call), BLAS at its
  default threads and limited to one thread;
* ``bpcore.dask.BlockwiseObjective`` on a LocalCluster of 1 and of 2 worker
  processes (1 thread each), X in 4 row blocks persisted on the workers, the
  parameters sent once per worker (``client.scatter``) or inside each block
  task (``broadcast="tasks"``); block tasks pinned to their block's worker;
* the same on a 4,000-row slice, where the fixed cost per evaluation
  (scheduler round trips) is all there is.

Communication per evaluation: parameter bytes to the workers and partial-sum
bytes back (``BlockwiseObjective.bytes_per_evaluation``, an upper bound), and
the bytes workers actually sent each other (``transfer_outgoing_bytes_total``).

Run from the repository root with the dask extra installed::

    python benchmarks/dask_lbfgs.py [--repeats 7] [--rows 400000]
"""
import argparse
import logging
import os
import platform
import statistics
import sys
import time
import warnings

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from timing import time_alternating  # noqa: E402


class Contender:
    def __init__(self, name, fn, rows, workers=0, objective=None, client=None):
        self.name, self.fn, self.rows, self.workers = name, fn, rows, workers
        self.objective, self.client = objective, client

        self.cpu = []  # client CPU seconds per call

    def run(self, i):
        c0 = time.process_time()
        self.fn()
        self.cpu.append(time.process_time() - c0)


def _sent_bytes(client):
    return sum(client.run(lambda dask_worker: dask_worker.transfer_outgoing_bytes_total).values())


def _worker_cpu(client):
    """CPU seconds each worker process has used so far (all its threads)."""
    return client.run(time.process_time)


def _evaluations(contenders, client):
    return sum(c.objective.n_evaluations for c in contenders
               if c.objective is not None and c.client is client)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=400_000)
    ap.add_argument("--small-rows", type=int, default=4_000)
    ap.add_argument("--blocks", type=int, default=4)
    ap.add_argument("--repeats", type=int, default=7)
    args = ap.parse_args()

    import dask.array as da
    import distributed
    from threadpoolctl import threadpool_limits

    import bpcore
    import bpcore.dask as bd
    from bpcore import _kernels

    # from_array ships X inside the graph once (the "large graph" warning):
    # fine here, X then lives on the workers.
    warnings.filterwarnings("ignore", message=".*large graph.*")
    rs = np.random.RandomState(0)
    X = rs.standard_normal((args.rows, 64))
    y = (X @ rs.standard_normal((64, 10))).argmax(axis=1)
    Y = np.eye(10)[y]
    net = bpcore.Network([64, 64, 10], activation="relu", output="softmax",
                         loss="log_loss", random_state=0)
    alpha = 1e-4

    def in_memory(rows):
        Xr, Yr = X[:rows], Y[:rows]
        chunk = net._block_rows(rows)
        ws = np.empty(net.layout.workspace_size(chunk))
        grad = np.empty(net.n_params)

        def evaluate():  # bpcore._lbfgs.minimize_lbfgs's evaluation
            _kernels.loss_grad(net.layout, net.params, Xr, Yr, None, alpha, grad, ws, chunk)
        return evaluate

    def single_blas(fn):
        def evaluate():
            with threadpool_limits(1, user_api="blas"):
                fn()
        return evaluate

    clusters = {}
    for n_workers in (1, 2):
        cluster = distributed.LocalCluster(n_workers=n_workers, threads_per_worker=1,
                                           processes=True, dashboard_address=None,
                                           silence_logs=logging.CRITICAL)
        clusters[n_workers] = (cluster, distributed.Client(cluster, set_as_default=False))

    contenders = []
    for rows in (args.rows, args.small_rows):
        f = in_memory(rows)
        contenders.append(Contender("in memory (BLAS default threads)", f, rows))
        contenders.append(Contender("in memory (BLAS 1 thread)", single_blas(f), rows))
        row_chunk = -(-rows // args.blocks)
        Xd = da.from_array(X[:rows], chunks=(row_chunk, 64))
        Yd = da.from_array(Y[:rows], chunks=(row_chunk, 10))
        for n_workers, (cluster, client) in clusters.items():
            for mode in ("scatter", "tasks"):
                obj = bd.BlockwiseObjective(net, Xd, Yd, alpha=alpha, client=client,
                                            broadcast=mode)
                theta = net.params.copy()
                obj(theta)  # persist and warm up
                contenders.append(Contender(f"dask, {n_workers} worker(s), {mode}",
                                            lambda o=obj, t=theta: o(t), rows, n_workers,
                                            obj, client))

    # The answer itself, once: the distributed loss equals the in-memory one.
    loss0, _ = net.loss_and_grad(X, Y, alpha=alpha)
    for c in contenders:
        if c.objective is not None and c.rows == args.rows:
            loss, _ = c.objective(net.params.copy())
            assert abs(loss - loss0) <= 1e-12 * loss0, (c.name, loss, loss0)

    load0 = os.getloadavg()[0]
    record, transfers, worker_cpu = {}, {}, {}
    for rows in (args.rows, args.small_rows):
        group = [c for c in contenders if c.rows == rows]
        for c in group:
            c.cpu.clear()
        before = {n: (_sent_bytes(cl), _evaluations(contenders, cl), _worker_cpu(cl))
                  for n, (_, cl) in clusters.items()}
        rec = time_alternating(group, repeats=args.repeats, warmup=1)
        for n, (_, cl) in clusters.items():
            sent0, evals0, cpu0 = before[n]
            evals = max(_evaluations(contenders, cl) - evals0, 1)
            transfers[(rows, n)] = (_sent_bytes(cl) - sent0) / evals
            cpu1 = _worker_cpu(cl)
            worker_cpu[(rows, n)] = max(cpu1[w] - cpu0[w] for w in cpu1) / evals
        for c in group:
            times = rec[id(c)]["times"]
            if rec[id(c)]["error"]:
                print(f"{c.name}: {rec[id(c)]['error']}")
            record[(rows, c.name)] = (c, statistics.median(times) if times else None,
                                      statistics.median(c.cpu) if c.cpu else None)
    load1 = os.getloadavg()[0]

    print(f"# dask full-batch evaluation: 64 -> (64,) -> 10, {net.n_params:,} parameters "
          f"({net.n_params * 8 / 1e3:.1f} kB), {args.blocks} row blocks\n")
    print(f"{platform.machine()}, {os.cpu_count()} cores; load average {load0:.2f} -> "
          f"{load1:.2f}; {args.repeats} alternating rounds, median per evaluation. "
          "Worker CPU: the busiest worker's CPU time per evaluation, averaged over "
          "both broadcast modes (the compute that parallelizes, free of waiting for "
          "a core on a shared machine).\n")
    print("| rows | contender | wall ms / eval | wall speed vs in memory 1 thread | "
          "client CPU ms / eval | worker CPU ms / eval | params sent / eval | "
          "partial sums / eval | measured worker sends / eval |")
    print("|---:|---|---:|---:|---:|---:|---:|---:|---:|")
    for rows in (args.rows, args.small_rows):
        base = record[(rows, "in memory (BLAS 1 thread)")][1]
        for (r, name), (c, t, cpu) in record.items():
            if r != rows:
                continue
            sent = sums = wcpu = measured = ""
            if c.objective is not None:
                b = c.objective.bytes_per_evaluation(c.workers)
                sent, sums = f"{b['params'] / 1e3:.1f} kB", f"{b['gradients'] / 1e3:.1f} kB"
                wcpu = f"{worker_cpu[(rows, c.workers)] * 1e3:.1f}"
                measured = f"{transfers[(rows, c.workers)] / 1e3:.1f} kB"
            ms = f"{t * 1e3:.1f}" if t else "-"
            ratio = f"{base / t:.2f}x" if t and base else "-"
            ccpu = f"{cpu * 1e3:.1f}" if cpu is not None else "-"
            print(f"| {rows:,} | {name} | {ms} | {ratio} | {ccpu} | {wcpu} | {sent} | "
                  f"{sums} | {measured} |")
    print(f"\nX is {X.nbytes / 1e6:.0f} MB at {args.rows:,} rows; it was sent to the "
          "workers once and never moved again (measured sends include the result "
          "vector each evaluation returns to the client).")
    for cluster, client in clusters.values():
        client.close()
        cluster.close()
        time.sleep(1)  # let the workers stop before the next cluster's teardown


if __name__ == "__main__":
    main()
