"""Turn timing rows into Markdown tables, target checks, results.json and a chart.

A row is a dict: workload, kind ("epoch" | "lbfgs" | "predict"), threads,
library ("bpcore" | "sklearn" | "torch" | "jax" | "floor"), dtype, label, times (s),
median/min/max (s), accuracy, extra, notes, error.

Every ratio compares two rows of the same run, workload, thread count and
dtype, as ``contender time / bpcore time`` (the median over rounds of the
per-round ratio, see ``paired_ratio``): "sklearn/bpcore = 8.3x" means bpcore
did the same work 8.3 times faster.
"""
import json

from bpcore.benchmark.timing import paired_ratio as _paired_times

SHORT = {"float64": "f64", "float32": "f32"}
UNIT = {"epoch": "s/epoch", "lbfgs": "s/fit", "predict": "rows/s"}

# (workload, minimum sklearn/bpcore speedup), float64, 1 thread.
SKLEARN_TARGETS = [("W1", 8.0), ("W5", 6.0), ("W2", 3.5), ("W3", 1.8), ("W4", 1.4)]
FLOOR_TARGET = 1.2       # bpcore time <= 1.2 x floor time
# Issue #16: float32 is the fast path, ahead of XLA, and both cores pay.
F32_FLOOR_TARGET = 1.1   # bpcore f32 time <= 1.1 x its f32 floor, every workload, 1 thread
F32_VS_F64 = {"W1": 0.75, "W2": 0.75, "W5": 0.75, "W3": 0.6, "W4": 0.6}  # f32/f64 time, 1T
XLA_WORKLOADS = ("W1", "W2", "W3", "W4", "W5")  # bpcore f32 faster than XLA f32 (1T, 2T)
THREAD_TARGET = 1.8      # 2-thread bpcore >= 1.8 x its 1-thread speed
THREAD_WORKLOADS = ("W1", "W2", "W5")
NOISY = 1.5              # flag a row whose slowest run took 1.5x its fastest
# Bars of the chart, in order, with their colours.
SERIES = {"sklearn f64": "#1f77b4", "sklearn f32": "#9ecae1",
          "torch f64": "#d62728", "torch f32": "#fc9272",
          "jax f64": "#2ca02c", "jax f32": "#a1d99b"}
BUSY = 0.10              # flag a workload during which others used 10% of the CPUs
SLOW_BARRIER_S = 100e-9  # flag a barrier round slower than this (28 ns when the vCPUs share an L3)


# --------------------------------------------------------------------------
# Lookups and ratios
# --------------------------------------------------------------------------

def find(rows, workload, threads, library, dtype):
    for r in rows:
        if (r["workload"], r["threads"], r["library"], r["dtype"]) == (
                workload, threads, library, dtype) and r["median"] is not None:
            return r
    return None


def paired_ratio(num, den):
    """Median over rounds of ``num`` row's time / ``den`` row's time in the same round.

    Contenders run in alternation, so the two times of one round were taken
    seconds apart under the same background load; the median of the per-round
    ratios is steadier than the ratio of the two medians when that load drifts.
    """
    return _paired_times(num["times"], den["times"])


def speedup(rows, row):
    """``row``'s time over bpcore's time for the same work, or None."""
    if row is None or row["median"] is None or row["library"] in ("bpcore", "floor"):
        return None
    bp = find(rows, row["workload"], row["threads"], "bpcore", row["dtype"])
    return None if bp is None else paired_ratio(row, bp)


def floor_multiple(rows, row):
    """bpcore's time as a multiple of the floor's (bpcore rows only)."""
    if row["library"] != "bpcore" or row["median"] is None:
        return None
    fl = find(rows, row["workload"], row["threads"], "floor", row["dtype"])
    return None if fl is None else paired_ratio(row, fl)


# --------------------------------------------------------------------------
# Markdown
# --------------------------------------------------------------------------

def _fmt_time(row, seconds):
    if seconds is None:
        return "—"
    if row["kind"] == "predict":
        return f"{row['extra']['rows'] / seconds:,.0f}"
    return f"{seconds:.3g}"


def _fmt_range(row):
    if row["median"] is None:
        return "—"
    lo, hi = row["min"], row["max"]
    if row["kind"] == "predict":  # rows/s: the fastest call gives the highest rate
        lo, hi = hi, lo
    return f"{_fmt_time(row, lo)}–{_fmt_time(row, hi)}"


def _notes(row):
    parts = []
    if row.get("error"):
        parts.append(f"FAILED: {row['error']}")
    extra = row.get("extra") or {}
    if "n_iter" in extra:
        parts.append(f"n_iter={extra['n_iter']}")
    if row["median"] is not None and row["min"] > 0 and row["max"] / row["min"] > NOISY:
        parts.append(f"noisy: max/min {row['max'] / row['min']:.1f}")
    parts.extend(row.get("notes") or [])
    return "; ".join(parts)


def markdown_table(rows, threads):
    rows = [r for r in rows if r["threads"] == threads]
    lines = [
        f"### {threads} BLAS thread{'s' if threads > 1 else ''}",
        "",
        "| workload | contender | unit | median | min–max | speedup of bpcore "
        "| bpcore/floor | test acc | notes |",
        "|---|---|---|---:|---:|---|---:|---:|---|",
    ]
    for r in rows:
        s = speedup(rows, r)
        f = floor_multiple(rows, r)
        speed = f"{r['library']}/bpcore = {s:.2f}x" if s is not None else ""
        if r["library"] == "floor":
            speed = "(floor)"
        acc = "—" if r["accuracy"] is None else f"{r['accuracy']:.3f}"
        lines.append(
            f"| {r['workload']} | {r['label']} | {UNIT[r['kind']]} "
            f"| {_fmt_time(r, r['median'])} | {_fmt_range(r)} | {speed} "
            f"| {'' if f is None else f'{f:.2f}x'} | {acc} | {_notes(r)} |"
        )
    shares = {r["workload"]: r.get("background_cpu") for r in rows}
    if any(v is not None for v in shares.values()):
        busy = [w for w, v in shares.items() if v is not None and v > BUSY]
        lines += [
            "",
            "Other processes' CPU use during each workload (share of all cores): "
            + ", ".join(f"{w} {v:.0%}" for w, v in shares.items() if v is not None)
            + (f". **Busy machine during {', '.join(busy)}**: absolute times are "
               "inflated" + (" and multithreaded timings unreliable, ratios included"
                             if threads > 1 else "; the in-run ratios still hold")
               if busy else "."),
        ]
    barriers = {r["workload"]: r["barrier_s"] for r in rows if r.get("barrier_s")}
    if threads > 1 and barriers:
        slow = [w for w, (a, b) in barriers.items() if max(a, b) > SLOW_BARRIER_S]
        lines += [
            "",
            f"One round of the {threads}-thread barrier, before / after each workload "
            "(`bpcore.benchmark.floor.barrier_latency`; where the host put the vCPUs): "
            + ", ".join(f"{w} {a * 1e9:.0f} / {b * 1e9:.0f} ns" for w, (a, b) in barriers.items())
            + (f". **Slow cross-CPU synchronization during {', '.join(slow)}** "
               f"(over {SLOW_BARRIER_S * 1e9:.0f} ns): the synchronized small-workload "
               "epochs lose much of their 2-thread speedup in such phases"
               if slow else "."),
        ]
    return "\n".join(lines) + "\n"


def _ratio_rows(rows, wl, threads, num, den):
    """Paired ratio of two (library, dtype) rows of one workload and thread count."""
    a, b = find(rows, wl, threads, *num), find(rows, wl, threads, *den)
    return paired_ratio(a, b) if a and b else None


def _fmt_ratio(v):
    return "—" if v is None else f"{v:.2f}x"


def float32_xla_table(rows, threads_run):
    """Issue #16 at a glance: float32 vs float64, vs the floor, vs XLA, 2 vs 1 thread."""
    epoch = [r for r in rows if r["kind"] == "epoch"]
    workloads = list(dict.fromkeys(r["workload"] for r in epoch))
    if not workloads:
        return ""
    lines = [
        "### float32, XLA and threads",
        "",
        "Ratios of times, each the median of per-round ratios within one pass: "
        "`f32/f64` below 1 means float32 is faster; `xla/bpcore` above 1 means "
        "bpcore is faster. `2T/1T` is bpcore's 1-thread time over its 2-thread "
        "time (between passes). XLA compile time is not in any epoch time.",
        "",
        "| workload | threads | bpcore f32 s/epoch | bpcore f32/f64 | bpcore f32/floor f32 "
        "| xla f32 s/epoch | xla f32/bpcore f32 | xla f64/bpcore f64 | xla compile s f32, f64 "
        "| xla busy threads | bpcore 2T/1T f64, f32 |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for wl in workloads:
        for t in threads_run:
            bp32 = find(rows, wl, t, "bpcore", "float32")
            jx32 = find(rows, wl, t, "jax", "float32")
            jx64 = find(rows, wl, t, "jax", "float64")
            comp = [r["extra"].get("compile_seconds") if r else None for r in (jx32, jx64)]
            busy = [r["extra"].get("busy_threads") if r else None for r in (jx32, jx64)]
            gains = []
            for dtype in ("float64", "float32"):
                one, two = find(rows, wl, 1, "bpcore", dtype), find(rows, wl, 2, "bpcore", dtype)
                gains.append(one["median"] / two["median"] if one and two and t == 2 else None)
            lines.append(
                f"| {wl} | {t} | {_fmt_time(bp32, bp32['median']) if bp32 else '—'} "
                f"| {_fmt_ratio(_ratio_rows(rows, wl, t, ('bpcore', 'float32'), ('bpcore', 'float64')))} "
                f"| {_fmt_ratio(_ratio_rows(rows, wl, t, ('bpcore', 'float32'), ('floor', 'float32')))} "
                f"| {_fmt_time(jx32, jx32['median']) if jx32 else '—'} "
                f"| {_fmt_ratio(_ratio_rows(rows, wl, t, ('jax', 'float32'), ('bpcore', 'float32')))} "
                f"| {_fmt_ratio(_ratio_rows(rows, wl, t, ('jax', 'float64'), ('bpcore', 'float64')))} "
                f"| {', '.join('—' if c is None else f'{c:.2f}' for c in comp)} "
                f"| {', '.join('—' if b is None else str(b) for b in busy)} "
                f"| {', '.join(_fmt_ratio(g) for g in gains) if t == 2 else ''} |")
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------
# Targets (informational: PASS / MISS / n/a)
# --------------------------------------------------------------------------

def _target(name, value, ok, detail=""):
    status = "n/a" if value is None else ("PASS" if ok else "MISS")
    return {"target": name, "value": value, "status": status, "detail": detail}


def _per_workload(rows, value, **match):
    """[(value(r), workload)] over the rows whose fields equal ``match``,
    where value(r) is not None."""
    vals = []
    for r in rows:
        if all(r[k] == v for k, v in match.items()):
            v = value(r)
            if v is not None:
                vals.append((v, r["workload"]))
    return vals


def check_targets(rows, threads_run, dtypes_run):
    out = []

    # 1. float64, 1 thread: sklearn/bpcore.
    for wl, goal in SKLEARN_TARGETS:
        s = speedup(rows, find(rows, wl, 1, "sklearn", "float64"))
        out.append(_target(f"{wl} f64 1T sklearn/bpcore >= {goal}x", s,
                           s is not None and s >= goal,
                           "" if s is None else f"{s:.2f}x"))

    # 2. bpcore within FLOOR_TARGET of the floor, every epoch workload.
    for threads in threads_run:
        for dtype in dtypes_run:
            vals = _per_workload(
                rows, lambda r: floor_multiple(rows, r), kind="epoch", threads=threads,
                library="bpcore", dtype=dtype)
            worst = max(vals) if vals else None
            out.append(_target(
                f"bpcore/floor <= {FLOOR_TARGET}x, {SHORT[dtype]} {threads}T, all workloads",
                None if worst is None else worst[0],
                worst is not None and worst[0] <= FLOOR_TARGET,
                ", ".join(f"{w} {v:.2f}x" for v, w in vals),
            ))

    # 2b. Issue #16: bpcore float32 within F32_FLOOR_TARGET of its float32 floor.
    if 1 in threads_run and "float32" in dtypes_run:
        vals = _per_workload(rows, lambda r: floor_multiple(rows, r), kind="epoch",
                             threads=1, library="bpcore", dtype="float32")
        worst = max(vals) if vals else None
        out.append(_target(
            f"bpcore/floor <= {F32_FLOOR_TARGET}x, f32 1T, all workloads (#16)",
            None if worst is None else worst[0],
            worst is not None and worst[0] <= F32_FLOOR_TARGET,
            ", ".join(f"{w} {v:.2f}x" for v, w in vals)))

    # 2c. Issue #16: float32 is the fast path (bpcore f32 time / f64 time, 1T).
    if 1 in threads_run and set(dtypes_run) >= {"float32", "float64"}:
        for wl, goal in F32_VS_F64.items():
            v = _ratio_rows(rows, wl, 1, ("bpcore", "float32"), ("bpcore", "float64"))
            out.append(_target(f"{wl} bpcore f32/f64 time <= {goal}x, 1T (#16)", v,
                               v is not None and v <= goal, _fmt_ratio(v) if v else ""))

    # 2d. Issue #16: bpcore float32 faster than XLA float32, at every thread count.
    if "float32" in dtypes_run:
        for threads in threads_run:
            vals = [(v, wl) for wl in XLA_WORKLOADS
                    if (v := _ratio_rows(rows, wl, threads, ("jax", "float32"),
                                         ("bpcore", "float32"))) is not None]
            worst = min(vals) if vals else None
            out.append(_target(
                f"bpcore f32 faster than XLA f32 on W1-W5, {threads}T (#16)",
                None if worst is None else worst[0],
                worst is not None and worst[0] > 1.0,
                ", ".join(f"{w} {v:.2f}x" for v, w in vals)
                + "".join(f", {w} not run" for w in XLA_WORKLOADS
                          if w not in {x for _, x in vals})))

    # 3. 2 threads vs 1 thread for bpcore.
    if 1 in threads_run and 2 in threads_run:
        for wl in THREAD_WORKLOADS:
            for dtype in dtypes_run:
                one = find(rows, wl, 1, "bpcore", dtype)
                two = find(rows, wl, 2, "bpcore", dtype)
                g = one["median"] / two["median"] if one and two else None
                out.append(_target(
                    f"{wl} {SHORT[dtype]} bpcore 2T speed >= {THREAD_TARGET}x 1T", g,
                    g is not None and g >= THREAD_TARGET,
                    "" if g is None else f"{g:.2f}x"))

    # 4. bpcore float32 faster than torch float32 everywhere.
    if "float32" in dtypes_run:
        for threads in threads_run:
            vals = _per_workload(rows, lambda r: speedup(rows, r), threads=threads,
                                 library="torch", dtype="float32")
            worst = min(vals) if vals else None
            out.append(_target(
                f"bpcore f32 faster than torch f32 everywhere, {threads}T",
                None if worst is None else worst[0],
                worst is not None and worst[0] > 1.0,
                ", ".join(f"{w} {v:.2f}x" for v, w in vals)))

    # 5. L-BFGS faster than sklearn's.
    for threads in threads_run:
        for dtype in dtypes_run:
            s = speedup(rows, find(rows, "LBFGS", threads, "sklearn", dtype))
            out.append(_target(f"LBFGS {SHORT[dtype]} {threads}T sklearn/bpcore > 1x", s,
                               s is not None and s > 1.0,
                               "" if s is None else f"{s:.2f}x"))
    return out


def targets_text(targets):
    lines = ["### Targets (informational)", ""]
    for t in targets:
        detail = f"  [{t['detail']}]" if t["detail"] else ""
        lines.append(f"- {t['status']:4}  {t['target']}{detail}")
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------
# Files
# --------------------------------------------------------------------------

def write_json(path, environment, config, rows, targets, notes):
    payload = {
        "environment": environment,
        "config": config,
        "notes": notes,
        "results": [{k: v for k, v in r.items() if k != "traceback"} for r in rows],
        "targets": targets,
    }
    with open(path, "w") as fh:
        json.dump(payload, fh, indent=2, default=str)


def plot_speedups(path, rows, threads_run):
    """Grouped bars: contender time / bpcore time, per workload, per thread count."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    fig, axes = plt.subplots(len(threads_run), 1, figsize=(10, 3.6 * len(threads_run)),
                             squeeze=False)
    for ax, threads in zip(axes[:, 0], threads_run):
        sub = [r for r in rows if r["threads"] == threads]
        workloads = list(dict.fromkeys(r["workload"] for r in sub))
        series = [lab for lab in SERIES if any(r["label"] == lab for r in sub)]
        values = {lab: [] for lab in series}
        for wl in workloads:
            for lab in series:
                r = next((x for x in sub if x["workload"] == wl and x["label"] == lab), None)
                s = speedup(sub, r)
                values[lab].append(s)
        if not any(v is not None for vals in values.values() for v in vals):
            ax.text(0.5, 0.5, "no bpcore timings in this run", ha="center",
                    va="center", transform=ax.transAxes)
            ax.set_axis_off()
            continue
        width = 0.8 / max(len(series), 1)
        for k, lab in enumerate(series):
            xs = [i + (k - (len(series) - 1) / 2) * width for i in range(len(workloads))]
            present = [(x, v) for x, v in zip(xs, values[lab]) if v is not None]
            # Bars grow from 1x: up where bpcore is faster, down where slower.
            bars = ax.bar([x for x, _ in present], [v - 1.0 for _, v in present], width,
                          bottom=1.0, color=SERIES[lab],
                          label=lab.replace(" ", "/bpcore, "))
            for b, (_, v) in zip(bars, present):
                ax.annotate(f"{v:.1f}", (b.get_x() + b.get_width() / 2, v),
                            ha="center", va="bottom" if v >= 1 else "top", fontsize=7)
        # Log scale: a 10x and a 0.5x must both stay readable on one axis.
        ax.set_yscale("log", base=2)
        ax.yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}x"))
        ax.axhline(1.0, color="black", linewidth=0.8)
        ax.set_xticks(range(len(workloads)), workloads)
        ax.set_ylabel("speedup of bpcore")
        ax.set_title(f"{threads} BLAS thread{'s' if threads > 1 else ''}: contender time / "
                     "bpcore time, same dtype (above 1: bpcore faster)")
        ax.margins(y=0.15)
        ax.legend(fontsize=8, ncol=len(series))
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
