"""W3's and W4's matrix products: OpenBLAS sgemm (bpcore's BLAS) against XLA's dot.

On the GEMM-bound workloads (W3, W4) JAX/XLA float32 beat bpcore float32
(issue 16). bpcore sits at ~1.0x of its floor there, so the question is the
BLAS: this times every product of one W3 / W4 minibatch (the shapes and
transpositions the epoch kernel issues: forward ``A @ W``, weight gradient
``A.T @ D``, back-propagated delta ``D @ W.T``), each in its own process,
on one thread:

- ``openblas[<coretype>]``: bpcore's own row-major wrapper
  (``bpcore._kernels.gemm``, the one the epoch kernel calls, over SciPy's
  OpenBLAS) with ``OPENBLAS_CORETYPE`` as in this environment, unset (OpenBLAS
  picks the kernels for this CPU) and forced to ``SkylakeX`` (AVX-512); the
  kernels OpenBLAS actually runs are read back from threadpoolctl. Only
  this script's child processes change the variable.
- ``xla``: ``jax.jit`` of the same product (``jnp.dot`` with the same
  transpositions), the process pinned to one CPU before XLA starts (as the
  JAX contender does), blocked on; its dispatch cost (a jitted call that
  does no arithmetic) is printed apart.

Processes run in rounds (every variant once per round, each timing every
shape as the median of ``--calls`` calls), so load from other tenants of
a shared machine hits them alike; the table is the median over rounds.
Each child checks its products against float64 NumPy.

    python benchmarks/gemm_xla.py [--rounds 5] [--calls 30] [--dtype float32]

Needs jax (``pip install ".[bench]"``); without it only the OpenBLAS rows run.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

# (workload, batches per epoch at full size, product, trans_a, trans_b, m, n, k):
# C (m x n) = op(A) @ op(B), as the epoch kernel issues them for one batch.
# W3: 40,000 training rows, batch 128, 256 -> 256 -> 256 -> 10.
# W4: 40,000 training rows, batch 512, 784 -> 1024 -> 1024 -> 10.
SHAPES = []
for _w, _rows, _units, _batches in (("W3", 128, (256, 256, 256, 10), 313),
                                     ("W4", 512, (784, 1024, 1024, 10), 79)):
    for _l in range(len(_units) - 1):
        _fi, _fo = _units[_l], _units[_l + 1]
        SHAPES.append((_w, _batches, f"fwd  A{_l} @ W{_l}", False, False, _rows, _fo, _fi))
    for _l in range(len(_units) - 2, -1, -1):
        _fi, _fo = _units[_l], _units[_l + 1]
        if _l > 0:
            SHAPES.append((_w, _batches, f"bwd  D{_l} @ W{_l}.T", False, True, _rows, _fi, _fo))
        SHAPES.append((_w, _batches, f"grad A{_l}.T @ D{_l}", True, False, _fi, _fo, _rows))

VARIANTS = ("openblas[env]", "openblas[auto]", "openblas[SkylakeX]", "xla")


def _operands(rng, dtype, ta, tb, m, n, k):
    import numpy as np
    a = rng.standard_normal((k, m) if ta else (m, k)).astype(dtype)
    b = rng.standard_normal((n, k) if tb else (k, n)).astype(dtype)
    return a, b


def _median_call(f, calls):
    f()
    f()
    times = []
    for _ in range(calls):
        t0 = time.perf_counter()
        f()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def _check(c, a, b, ta, tb):
    import numpy as np
    ref = (a.T if ta else a).astype(np.float64) @ (b.T if tb else b).astype(np.float64)
    err = float(np.max(np.abs(np.asarray(c, dtype=np.float64) - ref)) / np.max(np.abs(ref)))
    if not err < 1e-4:
        raise AssertionError(f"product differs from float64 NumPy by {err:.3g} (relative)")
    return err


def child_openblas(dtype, calls):
    """Time every shape through bpcore's GEMM wrapper on one BLAS thread."""
    import numpy as np
    from threadpoolctl import threadpool_info, threadpool_limits

    from bpcore import _kernels
    rng = np.random.default_rng(0)
    out = {}
    with threadpool_limits(1):
        for w, _, name, ta, tb, m, n, k in SHAPES:
            a, b = _operands(rng, dtype, ta, tb, m, n, k)
            c = np.zeros((m, n), dtype)
            _kernels.gemm(ta, tb, 1.0, a, b, 0.0, c)
            _check(c, a, b, ta, tb)
            out[f"{w} {name}"] = _median_call(lambda: _kernels.gemm(ta, tb, 1.0, a, b, 0.0, c),
                                              calls)
    arch = sorted({i.get("architecture") for i in threadpool_info()
                   if i.get("internal_api") == "openblas" and "scipy" in i.get("filepath", "")
                   and "64_" not in i.get("filepath", "")})
    return {"times": out, "kernels": ",".join(map(str, arch)),
            "gemm_split": _kernels.get_gemm_split()}


def child_xla(dtype, calls):
    """Time every shape as a jitted jnp.dot, XLA started on one CPU."""
    if hasattr(os, "sched_setaffinity"):
        cpus = os.sched_getaffinity(0)
        os.sched_setaffinity(0, {min(cpus)})
    import numpy as np
    import jax
    if dtype == "float64":
        jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp
    rng = np.random.default_rng(0)
    out = {}
    noop = jax.jit(lambda a, b: a[0, 0])
    for w, _, name, ta, tb, m, n, k in SHAPES:
        a, b = _operands(rng, dtype, ta, tb, m, n, k)
        ja, jb = jax.device_put(a), jax.device_put(b)
        f = jax.jit(lambda x, y, ta=ta, tb=tb: jnp.dot(x.T if ta else x, y.T if tb else y))
        _check(f(ja, jb).block_until_ready(), a, b, ta, tb)
        out[f"{w} {name}"] = _median_call(lambda: f(ja, jb).block_until_ready(), calls)
        out.setdefault("dispatch", _median_call(lambda: noop(ja, jb).block_until_ready(),
                                                calls))
    return {"times": out, "kernels": f"XLA (jax {jax.__version__})",
            "threads_visible": len(os.sched_getaffinity(0))}


def run_child(variant, dtype, calls):
    env = dict(os.environ)
    if variant.startswith("openblas["):
        core = variant[len("openblas["):-1]
        if core == "auto":
            # Both go together (see the environment's notes): OpenBLAS then
            # picks its kernels for this CPU.
            env.pop("OPENBLAS_CORETYPE", None)
            env.pop("OPENBLAS_L2_SIZE", None)
        elif core != "env":
            env["OPENBLAS_CORETYPE"] = core
            env.pop("OPENBLAS_L2_SIZE", None)
    cmd = [sys.executable, os.path.abspath(__file__), "--child", variant, "--dtype", dtype,
           "--calls", str(calls)]
    res = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if res.returncode != 0:
        return {"error": (res.stderr.strip().splitlines() or ["failed"])[-1]}
    return json.loads(res.stdout.strip().splitlines()[-1])


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--calls", type=int, default=30)
    p.add_argument("--dtype", choices=("float32", "float64"), default="float32")
    p.add_argument("--child", choices=VARIANTS, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        fn = child_xla if args.child == "xla" else child_openblas
        print(json.dumps(fn(args.dtype, args.calls)))
        return

    variants = list(VARIANTS)
    try:
        import jax  # noqa: F401
    except ImportError:
        variants.remove("xla")
        print("jax not installed: XLA column skipped (pip install '.[bench]')")
    times = {v: {} for v in variants}
    info = {}
    for r in range(args.rounds):
        for v in variants:
            res = run_child(v, args.dtype, args.calls)
            if "error" in res:
                info[v] = "failed: " + res["error"]
                continue
            info[v] = res["kernels"] + (f", GEMM cut {res['gemm_split']}"
                                        if "gemm_split" in res else "")
            for key, t in res["times"].items():
                times[v].setdefault(key, []).append(t)
        print(f"round {r + 1}/{args.rounds} done", file=sys.stderr, flush=True)

    env_core = os.environ.get("OPENBLAS_CORETYPE", "(unset)")
    print(f"{args.dtype}, 1 thread, median over {args.rounds} rounds of the median of "
          f"{args.calls} calls; OPENBLAS_CORETYPE here: {env_core}")
    for v in variants:
        print(f"  {v:20s} {info.get(v)}")
    med = {v: {key: statistics.median(ts) for key, ts in times[v].items()} for v in variants}
    cols = [v for v in variants if med[v]]
    head = "".join(f"{v:>20s}" for v in cols)
    print(f"\n{'product (us per call)':30s}{'m x n x k':>18s}{head}   xla/env  auto/env")
    per_batch = {v: {} for v in cols}
    for w, batches, name, ta, tb, m, n, k in SHAPES:
        key = f"{w} {name}"
        row = "".join(f"{med[v].get(key, float('nan')) * 1e6:20.1f}" for v in cols)
        ratios = ""
        env = med["openblas[env]"].get(key) if "openblas[env]" in med else None
        if env:
            if "xla" in med and key in med["xla"]:
                ratios += f"{med['xla'][key] / env:10.2f}"
            if key in med.get("openblas[auto]", {}):
                ratios += f"{med['openblas[auto]'][key] / env:10.2f}"
        print(f"{key:30s}{f'{m}x{n}x{k}':>18s}{row}{ratios}")
        for v in cols:
            if key in med[v]:
                per_batch[v].setdefault(w, [0.0, batches])[0] += med[v][key]
    print()
    for w in ("W3", "W4"):
        line = "".join(f"{per_batch[v][w][0] * 1e6:20.1f}" for v in cols if w in per_batch[v])
        print(f"{w + ' all products, one batch':48s}{line}")
    for w in ("W3", "W4"):
        line = "".join(f"{per_batch[v][w][0] * per_batch[v][w][1] * 1e3:20.1f}"
                       for v in cols if w in per_batch[v])
        print(f"{w + ' x batches per epoch (ms)':48s}{line}")
    if "xla" in med and "dispatch" in med["xla"]:
        print(f"\nXLA dispatch of a jitted call doing no arithmetic: "
              f"{med['xla']['dispatch'] * 1e6:.1f} us (included in every xla time)")


if __name__ == "__main__":
    main()
