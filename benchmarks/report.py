"""Turn timing rows into Markdown tables, target checks, results.json and a chart.

A row is a dict: workload, kind ("epoch" | "lbfgs" | "predict"), threads,
library ("bpcore" | "sklearn" | "torch" | "floor"), dtype, label, times (s),
median/min/max (s), accuracy, extra, notes, error.

Every ratio compares two rows of the same run, workload, thread count and
dtype, as ``contender time / bpcore time`` (the median over rounds of the
per-round ratio, see ``paired_ratio``): "sklearn/bpcore = 8.3x" means bpcore
did the same work 8.3 times faster.
"""
import json
import statistics

SHORT = {"float64": "f64", "float32": "f32"}
UNIT = {"epoch": "s/epoch", "lbfgs": "s/fit", "predict": "rows/s"}

# (workload, minimum sklearn/bpcore speedup), float64, 1 thread.
SKLEARN_TARGETS = [("W1", 8.0), ("W5", 6.0), ("W2", 3.5), ("W3", 1.8), ("W4", 1.4)]
FLOOR_TARGET = 1.2       # bpcore time <= 1.2 x floor time
THREAD_TARGET = 1.5      # 2-thread bpcore >= 1.5 x its 1-thread speed
THREAD_WORKLOADS = ("W1", "W2")
NOISY = 1.5              # flag a row whose slowest run took 1.5x its fastest
# Bars of the chart, in order, with their colours.
SERIES = {"sklearn f64": "#1f77b4", "sklearn f32": "#9ecae1",
          "torch f64": "#d62728", "torch f32": "#fc9272"}
BUSY = 0.10              # flag a workload during which others used 10% of the CPUs


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
    """Median over rounds of ``num`` time / ``den`` time in the same round.

    Contenders run in alternation, so the two times of one round were taken
    seconds apart under the same background load; the median of the per-round
    ratios is steadier than the ratio of the two medians when that load drifts.
    """
    pairs = [a / b for a, b in zip(num["times"], den["times"]) if b > 0]
    return statistics.median(pairs) if pairs else None


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
