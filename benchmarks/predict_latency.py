"""Prediction latency: scikit-learn, bpcore before and after, ONNX Runtime, PyTorch.

Per call, median over rounds, on one thread unless a row says otherwise:

* the digits model of issue 23 (``MLPClassifier(hidden_layer_sizes=(100,))``,
  64 features, 10 classes, float64, as scikit-learn fits it) through
  scikit-learn, bpcore's drop-in now ("after") and at the baseline commit
  ("before", in a worker process importing ``--baseline``, default
  ``/work/baseline/src``), an ONNX Runtime session of the same model
  (``bpcore.to_onnx``, one intra-op thread) and a PyTorch twin under
  ``torch.inference_mode`` (``torch.set_num_threads(1)``);
* a toolbox model, ``NeuralNetClassifier(hidden_layer_sizes=(64, 64),
  batch_norm=True, dropout=0.2)``, through bpcore (after, before), ONNX
  Runtime and PyTorch (scikit-learn has no batch norm);
* ``predict_proba`` and ``predict`` on 1, 32 and 1,000 rows;
  ``predict_proba`` on 100,000 rows with 1 and 2 threads; ``Network.forward``
  on one row.

The machine is shared: each round measures every case once, in an order
rotated from round to round, each process's contenders interleaved (the
baseline worker measures while this process waits), and the table gives the
median over rounds with the spread (min-max) of the per-round medians.
``--cpu-time`` times by the calling thread's CPU time instead of wall time
(less sensitive to other processes; it does not count other threads, so the
100,000-row rows, whose thread ratio it would falsify, stay on wall time).

    python benchmarks/predict_latency.py                      # ~3-5 min
    python benchmarks/predict_latency.py --rounds 3 --out benchmarks/results/predict_latency.md
"""
import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import time
import warnings

import numpy as np

ROWS = (1, 32, 1000)
BIG_ROWS = 100_000
SEED = 0


# --------------------------------------------------------------------------
# Models (fitted the same way in this process and in the baseline worker)
# --------------------------------------------------------------------------

def digits():
    from sklearn.datasets import load_digits
    X, y = load_digits(return_X_y=True)
    return np.ascontiguousarray(X, dtype=np.float64), y


def fit_models(bpcore, with_sklearn):
    """{"digits": {...}, "toolbox": {...}}: estimators and the big input."""
    import sklearn.neural_network as skn
    X, y = digits()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        models = {
            "digits": {"bpcore": bpcore.MLPClassifier(
                hidden_layer_sizes=(100,), max_iter=30, random_state=SEED).fit(X, y)},
            "toolbox": {"bpcore": bpcore.NeuralNetClassifier(
                hidden_layer_sizes=(64, 64), batch_norm=True, dropout=0.2, max_iter=30,
                random_state=SEED).fit(X, y)},
        }
        if with_sklearn:
            models["digits"]["sklearn"] = skn.MLPClassifier(
                hidden_layer_sizes=(100,), max_iter=30, random_state=SEED).fit(X, y)
    rng = np.random.default_rng(SEED)
    inputs = {n: np.ascontiguousarray(X[rng.integers(0, len(X), n)]) for n in ROWS}
    inputs[BIG_ROWS] = np.ascontiguousarray(X[rng.integers(0, len(X), BIG_ROWS)])
    return models, inputs


def onnx_session(est, X):
    import onnxruntime as ort
    import bpcore
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    sess = ort.InferenceSession(bpcore.to_onnx(est, X[:1]).SerializeToString(), opts,
                                providers=["CPUExecutionProvider"])
    return sess, sess.get_inputs()[0].name


def torch_twin(est):
    """The fitted network as a torch Sequential (eval mode): Linear (no bias
    under batch norm), BatchNorm1d with the running statistics, ReLU,
    softmax; dropout is the identity in inference."""
    import torch
    net = est._net
    layers = []
    n_hidden = len(net.coefs) - 1
    for l, (W, b) in enumerate(zip(net.coefs, net.intercepts)):
        bn = l < n_hidden and net._batch_norm[l]
        lin = torch.nn.Linear(*W.shape, bias=not bn, dtype=torch.float64)
        with torch.no_grad():
            lin.weight.copy_(torch.from_numpy(np.ascontiguousarray(W.T)))
            if not bn:
                lin.bias.copy_(torch.from_numpy(np.array(b)))
        layers.append(lin)
        if bn:
            m = torch.nn.BatchNorm1d(W.shape[1], eps=1e-5, dtype=torch.float64)
            with torch.no_grad():
                m.weight.copy_(torch.from_numpy(np.array(net.bn_scales[l])))
                m.bias.copy_(torch.from_numpy(np.array(b)))
                m.running_mean.copy_(torch.from_numpy(np.array(net.bn_means[l])))
                m.running_var.copy_(torch.from_numpy(np.array(net.bn_vars[l])))
            layers.append(m)
        layers.append(torch.nn.ReLU() if l < n_hidden else torch.nn.Softmax(dim=1))
    return torch.nn.Sequential(*layers).eval()


# --------------------------------------------------------------------------
# Cases: (model, library, call, rows, threads) -> a zero-argument callable
# --------------------------------------------------------------------------

def bpcore_cases(models, inputs, version):
    cases = {}
    for model, ests in models.items():
        est = ests["bpcore"]
        for rows in ROWS:
            X = inputs[rows]
            cases[(model, f"bpcore {version}", "predict_proba", rows, 1)] = \
                (lambda e=est, X=X: e.predict_proba(X))
            cases[(model, f"bpcore {version}", "predict", rows, 1)] = \
                (lambda e=est, X=X: e.predict(X))
        for threads in (1, 2):
            cases[(model, f"bpcore {version}", "predict_proba", BIG_ROWS, threads)] = \
                (lambda e=est, X=inputs[BIG_ROWS]: e.predict_proba(X))
        net, x1 = est._net, inputs[1]
        cases[(model, f"bpcore {version}", "Network.forward", 1, 1)] = \
            (lambda n=net, X=x1: n.forward(X))
    return cases


def other_cases(models, inputs):
    import torch
    cases = {}
    sk = models["digits"]["sklearn"]
    for rows in ROWS:
        X = inputs[rows]
        cases[("digits", "scikit-learn", "predict_proba", rows, 1)] = \
            (lambda X=X: sk.predict_proba(X))
        cases[("digits", "scikit-learn", "predict", rows, 1)] = (lambda X=X: sk.predict(X))
    for threads in (1, 2):
        cases[("digits", "scikit-learn", "predict_proba", BIG_ROWS, threads)] = \
            (lambda X=inputs[BIG_ROWS]: sk.predict_proba(X))
    for model, ests in models.items():
        est = ests["bpcore"]
        sess, name = onnx_session(est, inputs[1])
        twin = torch_twin(est)
        classes = est.classes_
        for rows in ROWS:
            X = inputs[rows]
            Xt = torch.from_numpy(X)
            cases[(model, "ONNX Runtime", "predict_proba", rows, 1)] = \
                (lambda X=X, s=sess, n=name: s.run(["probabilities"], {n: X})[0])
            cases[(model, "ONNX Runtime", "predict", rows, 1)] = \
                (lambda X=X, s=sess, n=name: s.run(["label"], {n: X})[0])

            def proba(Xt=Xt, m=twin):
                with torch.inference_mode():
                    return m(Xt).numpy()

            def predict(Xt=Xt, m=twin, c=classes):
                with torch.inference_mode():
                    return c[m(Xt).argmax(1).numpy()]
            cases[(model, "PyTorch", "predict_proba", rows, 1)] = proba
            cases[(model, "PyTorch", "predict", rows, 1)] = predict
    return cases


def check_answers(models, inputs):
    """The contenders compute the same model (a benchmark of wrong answers
    measures nothing)."""
    import torch
    X = inputs[1000]
    for model, ests in models.items():
        est = ests["bpcore"]
        p = est.predict_proba(X)
        sess, name = onnx_session(est, X)
        assert np.abs(sess.run(["probabilities"], {name: X})[0] - p).max() < 1e-9, model
        with torch.inference_mode():
            assert np.abs(torch_twin(est)(torch.from_numpy(X)).numpy() - p).max() < 1e-9, model
    sk = models["digits"]["sklearn"]
    agree = (sk.predict(X) == models["digits"]["bpcore"].predict(X)).mean()
    return float(agree)


def number_for(rows, seconds=0.02, per_row_us=0.8):
    """Calls per timed block: about ``seconds`` of work."""
    return int(max(1, min(20000, seconds / (max(5.0, rows * per_row_us) * 1e-6))))


def measure(f, rows, cpu_time, blocks=5):
    """Median seconds per call over ``blocks`` blocks of ``number_for(rows)`` calls."""
    clock = time.thread_time if cpu_time else time.perf_counter
    number = number_for(rows)
    f()
    out = []
    for _ in range(blocks):
        t0 = clock()
        for _ in range(number):
            f()
        out.append((clock() - t0) / number)
    return float(np.median(out))


def limits(threads):
    from threadpoolctl import threadpool_limits
    return threadpool_limits(threads)


# --------------------------------------------------------------------------
# The baseline worker (bpcore before): a process that imports --baseline
# --------------------------------------------------------------------------

def worker():
    import bpcore
    models, inputs = fit_models(bpcore, with_sklearn=False)
    cases = bpcore_cases(models, inputs, "before")
    print(json.dumps({"ready": [list(k) for k in cases], "file": bpcore.__file__}), flush=True)
    for line in sys.stdin:
        req = json.loads(line)
        key = tuple(req["key"])
        with limits(key[4]):
            t = measure(cases[key], key[3], req["cpu_time"])
        print(json.dumps({"t": t}), flush=True)


class Baseline:
    def __init__(self, path):
        env = dict(os.environ, PYTHONPATH=path)
        self.proc = subprocess.Popen([sys.executable, __file__, "--worker"], env=env,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        hello = json.loads(self.proc.stdout.readline())
        self.keys = [tuple(k) for k in hello["ready"]]
        self.file = hello["file"]

    def measure(self, key, cpu_time):
        self.proc.stdin.write(json.dumps({"key": list(key), "cpu_time": cpu_time}) + "\n")
        self.proc.stdin.flush()
        return json.loads(self.proc.stdout.readline())["t"]

    def close(self):
        self.proc.stdin.close()
        self.proc.wait()


# --------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------

def machine():
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        model = next(line.split(":", 1)[1].strip() for line in out.splitlines()
                     if line.startswith("Model name"))
    except (OSError, StopIteration):
        model = platform.processor() or "unknown"
    return f"{model}, {os.cpu_count()} logical CPUs"


def fmt(seconds):
    us = seconds * 1e6
    return f"{us:.1f} µs" if us < 1000 else f"{us / 1000:.2f} ms"


def cell(samples):
    if not samples:
        return "—"
    s = np.array(samples)
    return f"{fmt(np.median(s))} ({fmt(s.min())}–{fmt(s.max())})"


def ratio(num, den):
    if not num or not den:
        return "—"
    # the ratio of each round's pair, then their median and range
    r = np.array(num[:len(den)]) / np.array(den[:len(num)])
    return f"{np.median(r):.2f} ({r.min():.2f}–{r.max():.2f})"


def report(results, args, info):
    lines = [
        "# Prediction latency (issue 23)",
        "",
        f"Run {info['date']} UTC on {info['machine']}, load average at start "
        f"{info['load']} "
        f"({'quiet: no other job' if float(info['load'].split()[0]) < 1.5 else 'shared with other jobs: read the ratios, not the times'}). "
        f"{args.rounds} rounds, each case once per round in rotated order; a cell is "
        "the median over rounds of per-call times (each the median of 5 blocks), with "
        "the range of the rounds in parentheses; ratios are taken per round. "
        f"Clock: {'thread CPU time (wall time for the 100,000-row rows)' if args.cpu_time else 'wall time'}.",
        f"Versions: {info['versions']}. bpcore after: {info['after']}; before: "
        f"{info['before']}.",
        f"scikit-learn and bpcore predict the same label on {info['agree']:.1%} of 1,000 "
        "digits rows (each fitted with its own rounding); ONNX Runtime and PyTorch "
        "compute bpcore's model (checked to 1e-9).",
        "",
    ]
    get = results.get
    for model, title in (("digits", "Digits `(100,)` drop-in `MLPClassifier`, float64"),
                         ("toolbox", "Toolbox `NeuralNetClassifier((64, 64), batch_norm=True, "
                                     "dropout=0.2)`, float64")):
        lines += [f"## {title}", "",
                  "| call | rows | scikit-learn | bpcore before | bpcore after | ONNX Runtime "
                  "| PyTorch | after / ORT | sklearn / after | before / after |",
                  "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for call in ("predict_proba", "predict"):
            for rows in ROWS:
                k = lambda lib: get((model, lib, call, rows, 1), [])  # noqa: E731
                lines.append(
                    f"| `{call}` | {rows:,} | {cell(k('scikit-learn'))} | "
                    f"{cell(k('bpcore before'))} | {cell(k('bpcore after'))} | "
                    f"{cell(k('ONNX Runtime'))} | {cell(k('PyTorch'))} | "
                    f"{ratio(k('bpcore after'), k('ONNX Runtime'))} | "
                    f"{ratio(k('scikit-learn'), k('bpcore after'))} | "
                    f"{ratio(k('bpcore before'), k('bpcore after'))} |")
        lines += ["", "| call | rows | threads | scikit-learn | bpcore before | bpcore after "
                      "| after 1 thread / 2 threads |", "|---|---:|---:|---:|---:|---:|---:|"]
        for threads in (1, 2):
            k = lambda lib, t=threads: get((model, lib, "predict_proba", BIG_ROWS, t), [])  # noqa: E731
            lines.append(
                f"| `predict_proba` | {BIG_ROWS:,} | {threads} | {cell(k('scikit-learn'))} | "
                f"{cell(k('bpcore before'))} | {cell(k('bpcore after'))} | "
                + (ratio(k('bpcore after', 1), k('bpcore after', 2)) if threads == 2 else "")
                + " |")
        before = get((model, "bpcore before", "Network.forward", 1, 1), [])
        after = get((model, "bpcore after", "Network.forward", 1, 1), [])
        lines += ["", f"`Network.forward`, 1 row: before {cell(before)}, after {cell(after)}, "
                      f"before / after {ratio(before, after)}.", ""]
    return "\n".join(lines) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--baseline", default="/work/baseline/src",
                        help="PYTHONPATH of bpcore before (empty: skip)")
    parser.add_argument("--cpu-time", action="store_true",
                        help="time 1-thread cases by thread CPU time")
    parser.add_argument("--skip-big", action="store_true", help="skip the 100,000-row rows")
    parser.add_argument("--out", help="also write the markdown table here")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker()

    import onnxruntime
    import sklearn
    import torch
    import bpcore
    torch.set_num_threads(1)
    models, inputs = fit_models(bpcore, with_sklearn=True)
    agree = check_answers(models, inputs)
    here = {**bpcore_cases(models, inputs, "after"), **other_cases(models, inputs)}
    base = Baseline(args.baseline) if args.baseline else None
    keys = list(here) + ([k for k in base.keys if k not in here] if base else [])
    if args.skip_big:
        keys = [k for k in keys if k[3] != BIG_ROWS]
    info = {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M"),
        "machine": machine(), "load": " ".join(f"{v:.1f}" for v in os.getloadavg()),
        "versions": f"Python {platform.python_version()}, NumPy {np.__version__}, "
                    f"scikit-learn {sklearn.__version__}, ONNX Runtime "
                    f"{onnxruntime.__version__}, PyTorch {torch.__version__}",
        "after": os.path.dirname(bpcore.__file__), "agree": agree,
        "before": base.file if base else "not run",
    }
    results = {}
    for r in range(args.rounds):
        shift = (r * 7) % len(keys)
        for key in keys[shift:] + keys[:shift]:
            cpu = args.cpu_time and key[3] != BIG_ROWS
            if key in here:
                with limits(key[4]):
                    torch.set_num_threads(key[4])
                    t = measure(here[key], key[3], cpu)
                    torch.set_num_threads(1)
            else:
                t = base.measure(key, cpu)
            results.setdefault(key, []).append(t)
        print(f"round {r + 1}/{args.rounds} done", file=sys.stderr, flush=True)
    if base:
        base.close()
    text = report(results, args, info)
    print(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text)


if __name__ == "__main__":
    main()
