"""Benchmark bpcore against scikit-learn and PyTorch; print and save the ratios.

Usage (from the repository root)::

    python benchmarks/run.py [--quick] [--threads 1 2] [--workloads W1 W2 ...]
                             [--repeats N] [--out DIR]

See benchmarks/README.md for what is measured and how to read it.
"""
import argparse
import datetime
import gc
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import threadpoolctl

import contenders
import report
from bpcore.benchmark.contenders import set_xla_threads
from bpcore.benchmark.timing import summarize, time_alternating
from workloads import DTYPES, WORKLOADS, make_dataset

HERE = Path(__file__).resolve().parent


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true",
                   help="fewer samples, iterations and repeats (about 1-2 minutes)")
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2],
                   help="BLAS thread counts to run, each a full pass (default: 1 2)")
    p.add_argument("--workloads", nargs="+", default=list(WORKLOADS),
                   choices=list(WORKLOADS), metavar="W",
                   help=f"subset of {', '.join(WORKLOADS)} (default: all)")
    p.add_argument("--repeats", type=int, default=None,
                   help="timed runs per contender after one warm-up, for every "
                        "workload (default: 5, 3 for W4, 3 for all with --quick)")
    p.add_argument("--out", type=Path, default=HERE / "results",
                   help="output directory (default: benchmarks/results/)")
    args = p.parse_args(argv)
    if args.repeats is not None and args.repeats < 1:
        p.error("--repeats must be at least 1")
    if any(t < 1 for t in args.threads):
        p.error("--threads must be positive")
    return args


def log(msg):
    print(msg, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------
# Environment
# --------------------------------------------------------------------------

def cpu_model():
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def git_commit():
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=HERE, capture_output=True,
                             text=True, timeout=10)
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def environment(libs):
    env = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "cpu_model": cpu_model(),
        "logical_cpus": os.cpu_count(),
        "usable_cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "versions": libs.versions(),
        "blas": threadpoolctl.threadpool_info(),
        "git_commit": git_commit(),
        "loadavg_start": os.getloadavg() if hasattr(os, "getloadavg") else None,
        # Overrides OpenBLAS's CPU detection (blas_note).
        "openblas_coretype": os.environ.get("OPENBLAS_CORETYPE"),
    }
    if libs.bpcore is not None:
        env["bpcore_file"] = getattr(libs.bpcore, "__file__", None)
        # Row blocks GEMMs just above OpenBLAS's small-matrix limit are cut
        # into (1: never; BPCORE_GEMM_SPLIT overrides; docs/DESIGN.md).
        env["bpcore_gemm_split"] = libs.bpcore._kernels.get_gemm_split()
    if libs.torch is not None:
        env["torch_default_threads"] = libs.torch.get_num_threads()
    return env


def blas_note(env):
    """Which OpenBLAS kernels ran, and whether the environment chose them.

    ``OPENBLAS_CORETYPE`` overrides OpenBLAS's CPU detection; on the AMD EPYC
    (Zen 5) this project is measured on, the environment sets it to Haswell
    (AVX2 kernels), and the small-workload epochs ran 1.9x faster without it
    (docs/DESIGN.md, "float32: its floor ratio and the XLA gap").
    """
    blas = [b for b in env["blas"] if b.get("internal_api") == "openblas"]
    kinds = ", ".join(sorted({f"{b.get('prefix')} {b.get('version')} "
                              f"({b.get('architecture')} kernels)" for b in blas})) or "none"
    core = env["openblas_coretype"]
    return (f"BLAS: {kinds}; OPENBLAS_CORETYPE="
            f"{core if core is not None else '(unset: detected from the CPU)'}")


def cpu_counters():
    """(wall s, CPU-seconds busy on the whole machine, CPU-seconds of this process).

    None where /proc/stat is missing (not Linux).
    """
    try:
        with open("/proc/stat") as fh:
            fields = [int(v) for v in fh.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    # user nice system idle iowait irq softirq steal ...: all but idle and
    # iowait is busy; steal (the hypervisor's other guests) counts as busy.
    busy = sum(fields[:8]) - fields[3] - fields[4]
    own = os.times()
    return (time.perf_counter(), busy / os.sysconf("SC_CLK_TCK"), own.user + own.system)


def barrier_round(threads, probes=5):
    """Median seconds per round of bpcore's per-batch barrier among
    ``threads`` threads doing nothing else (None for one thread): on a VM,
    how far apart the host put the vCPUs (see report.SLOW_BARRIER_S)."""
    if threads < 2:
        return None
    try:
        from bpcore.benchmark.floor import barrier_latency
    except ImportError:  # a tree from before issue 22
        from bpcore._kernels import barrier_latency
    times = sorted(barrier_latency(20_000, threads) for _ in range(probes))
    return times[len(times) // 2]


def background_share(before, after):
    """Share of all CPUs used by other processes (and the hypervisor) in between."""
    if before is None or after is None or after[0] <= before[0]:
        return None
    other = (after[1] - before[1]) - (after[2] - before[2])
    return max(0.0, other / ((after[0] - before[0]) * (os.cpu_count() or 1)))


# --------------------------------------------------------------------------
# One workload at one thread count
# --------------------------------------------------------------------------

def repeats_for(workload, args):
    if args.repeats is not None:
        repeats = args.repeats
    else:
        repeats = 3 if args.quick else workload.repeats
    # A predict call is short (tens of ms): take more of them.
    return 2 * repeats if workload.kind == "predict" else repeats


def run_workload(workload, data, libs, threads, args):
    repeats = repeats_for(workload, args)
    if workload.kind == "epoch":
        specs = contenders.epoch_contenders(workload, data, libs, DTYPES)
    elif workload.kind == "lbfgs":
        max_iter = workload.quick_max_iter if args.quick else workload.max_iter
        specs = contenders.lbfgs_contenders(workload, data, libs, DTYPES, max_iter)
    else:
        specs = contenders.predict_contenders(workload, data, libs, DTYPES,
                                              train_epochs=1 if args.quick else 2)

    rows, built = [], []
    for library, dtype, build in specs:
        row = {"workload": workload.name, "kind": workload.kind, "threads": threads,
               "library": library, "dtype": dtype,
               "label": f"{library} {contenders.SHORT_DTYPE[dtype]}",
               "times": [], "accuracy": None, "extra": {}, "notes": [], "error": None,
               "repeats": repeats}
        try:
            c = build()
        except Exception as exc:
            row["error"] = f"setup failed: {type(exc).__name__}: {exc}"
            c = None
        rows.append(row)
        built.append(c)

    live = [c for c in built if c is not None]
    # Worker threads spin after a parallel region (OpenBLAS's for ~100 ms here,
    # measured); with more than one thread, let them sleep before the next
    # contender starts, or they steal its second core.
    settle = 0.12 if threads > 1 else 0.0
    record = time_alternating(live, repeats, warmup=1, settle=settle,
                              calls_per_run=workload.epochs_per_run)

    for row, c in zip(rows, built):
        if c is not None:
            rec = record[id(c)]
            row["error"] = rec["error"]
            # A contender that failed or was dropped gets no timings, so no ratio.
            row["times"] = [] if rec["error"] else rec["times"]
            row["notes"] = list(c.notes)
            if rec["error"] is None:
                try:
                    row["accuracy"] = c.accuracy()
                    row["extra"] = c.extra()
                except Exception as exc:
                    row["notes"].append(f"accuracy failed: {type(exc).__name__}: {exc}")
        row.update(summarize(row["times"]))
    return rows


def main(argv=None):
    args = parse_args(argv)
    t_start = time.perf_counter()
    libs = contenders.Libraries()
    for note in libs.notes:
        log(f"note: {note}")
    env = environment(libs)
    # torch and sklearn leave ~10^6 long-lived objects; freezing them makes the
    # gc.collect() before every timed call take ~1 ms instead of ~200 ms.
    gc.collect()
    gc.freeze()

    datasets, data_info = {}, {}
    rows = []
    for threads in args.threads:
        if libs.jax is not None:
            # XLA sizes its pool when its client starts: (re)start it pinned
            # to `threads` CPUs (bpcore.benchmark.contenders.set_xla_threads).
            set_xla_threads(threads, restart=True)
        with threadpoolctl.threadpool_limits(limits=threads):
            if libs.torch is not None:
                libs.torch.set_num_threads(threads)
            for name in args.workloads:
                wl = WORKLOADS[name]
                key = (wl.source, wl.n_samples, wl.n_features, wl.n_classes, args.quick)
                if key not in datasets:
                    datasets[key] = make_dataset(wl, quick=args.quick)
                data_info[name] = datasets[key].info
                barrier_before = barrier_round(threads)
                t0, before = time.perf_counter(), cpu_counters()
                got = run_workload(wl, datasets[key], libs, threads, args)
                share = background_share(before, cpu_counters())
                barrier = (barrier_before, barrier_round(threads)) if threads > 1 else None
                for r in got:
                    r["background_cpu"] = share
                    r["barrier_s"] = barrier
                rows.extend(got)
                summary = ", ".join(
                    f"{r['label']} {r['median']:.3g}s" if r["median"] is not None
                    else f"{r['label']} FAILED" for r in got)
                busy = "" if share is None else f", others' CPU {share:.0%}"
                if barrier:
                    busy += f", barrier {barrier[0] * 1e9:.0f}/{barrier[1] * 1e9:.0f} ns"
                log(f"[{threads}T] {name} ({time.perf_counter() - t0:.1f}s{busy}): "
                    f"{summary}")

    env["loadavg_end"] = os.getloadavg() if hasattr(os, "getloadavg") else None
    env["wall_seconds"] = round(time.perf_counter() - t_start, 1)
    config = {
        "quick": args.quick, "threads": args.threads, "workloads": args.workloads,
        "repeats": {n: repeats_for(WORKLOADS[n], args) for n in args.workloads},
        "warmup": 1, "dtypes": list(DTYPES),
        "workload_specs": {n: {"description": WORKLOADS[n].description,
                               "layer_units": WORKLOADS[n].layer_units(),
                               "batch_size": WORKLOADS[n].batch_size,
                               "epochs_per_run": WORKLOADS[n].epochs_per_run}
                           for n in args.workloads},
        "data": data_info,
    }
    targets = report.check_targets(rows, args.threads, list(DTYPES))

    repeats_text = ", ".join(
        f"{n} {repeats_for(WORKLOADS[n], args)}"
        + (f" x {WORKLOADS[n].epochs_per_run} epochs" if WORKLOADS[n].epochs_per_run > 1 else "")
        for n in args.workloads)
    header = (
        f"## bpcore benchmarks{' (quick)' if args.quick else ''}\n\n"
        f"{env['date']} | {env['cpu_model']} | {env['usable_cpus']} usable CPUs | "
        f"load avg {env['loadavg_start'][0]:.2f} -> {env['loadavg_end'][0]:.2f} | "
        f"contenders alternated, 1 warm-up then timed runs: {repeats_text} | "
        + " ".join(f"{k} {v}" for k, v in env["versions"].items() if v) + "\n"
    )
    notes = list(libs.notes)
    notes.append(blas_note(env))
    if "bpcore_gemm_split" in env:
        notes.append(f"bpcore cuts GEMMs just above OpenBLAS's small-matrix limit into "
                     f"at most {env['bpcore_gemm_split']} row blocks (1: never; "
                     f"BPCORE_GEMM_SPLIT)")
    if notes:
        header += "\n" + "\n".join(f"- {n}" for n in notes) + "\n"
    text = header + "\n" + "\n".join(
        report.markdown_table(rows, t) for t in args.threads
    ) + "\n" + report.float32_xla_table(rows, args.threads) + "\n" + report.targets_text(targets)

    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.md").write_text(text)
    report.write_json(args.out / "results.json", env, config, rows, targets, libs.notes)
    try:
        report.plot_speedups(args.out / "speedups.png", rows, args.threads)
    except Exception as exc:  # a missing matplotlib must not cost the timings
        log(f"note: speedups.png not written ({type(exc).__name__}: {exc})")

    print(text)
    log(f"wrote {args.out / 'results.md'}, results.json, speedups.png "
        f"in {env['wall_seconds']:.0f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
