"""bpcore._threads: the thread count the kernels use, and training after fork.

Issue #13, defects 1 (a child forked after the parent trained on two OpenMP
threads hung in ``train_epoch``) and 11 (the count followed
``omp_get_max_threads``, above a container's CPU quota). The fork and the
cgroup checks run in subprocesses with a timeout, so a regression fails the
test instead of hanging the suite.
"""
import os
import shutil
import signal
import subprocess
import sys
import textwrap

import pytest

from bpcore import _kernels, _threads

TIMEOUT = 60  # seconds; the fork script takes ~3 s on a loaded 2-core machine

needs_two_threads = pytest.mark.skipif(
    not _kernels.has_openmp() or (os.cpu_count() or 1) < 2,
    reason="needs OpenMP and two CPUs")


def _clean_env(**extra):
    env = {k: v for k, v in os.environ.items()
           if k not in ("OMP_NUM_THREADS", "LOKY_MAX_CPU_COUNT")}
    env.update(extra)
    return env


def _run(args, env=None, timeout=TIMEOUT):
    """Run ``args`` in its own process group; kill the whole group on timeout
    (a hung grandchild included) and fail."""
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        pytest.fail(f"timed out after {timeout} s (hang):\n{out}\n{err}")
    assert proc.returncode == 0, f"exit {proc.returncode}\n{out}\n{err}"
    return out


# ---------------------------------------------------------------------------
# Defect 1: fork after OpenMP threads ran
# ---------------------------------------------------------------------------

FORK_SCRIPT = textwrap.dedent("""
    import multiprocessing, os, sys
    import numpy as np
    from bpcore import Adam, Network, train, _threads
    from bpcore._engine import choose_threads

    rng = np.random.default_rng(0)
    X = rng.standard_normal((600, 64))
    Y = np.eye(10)[rng.integers(0, 10, 600)]

    def fit():
        net = Network([64, 128, 10], output="softmax", loss="log_loss", random_state=0)
        return float(train(net, X, Y, optimizer=Adam(), batch_size=32, random_state=0).loss[-1])

    # The parent trains on two threads (the hidden-unit split), starting
    # libgomp's thread pool.
    assert choose_threads(Network([64, 128, 10]).layout, 32) == (2, True)
    parent_loss = fit()

    # os.fork, as in the issue.
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        loss = fit()
        os.write(w, f"{_threads.thread_limit()} {loss!r}".encode())
        os._exit(0)
    os.close(w)
    _, status = os.waitpid(pid, 0)
    limit, child_loss = os.read(r, 200).decode().split()
    assert status == 0, status
    assert limit == "1", limit
    # One thread reorders no sum that matters here: the same fit, to rounding.
    assert abs(float(child_loss) - parent_loss) <= 1e-12 * abs(parent_loss), (child_loss, parent_loss)

    # multiprocessing's fork start method, the way existing code meets it.
    with multiprocessing.get_context("fork").Pool(1) as pool:
        losses = pool.starmap(fit, [()] * 2)
    assert all(abs(l - parent_loss) <= 1e-12 * abs(parent_loss) for l in losses), losses

    # The parent keeps its threads.
    assert _threads.thread_limit() == 2
    print("ok", parent_loss)
""")


@needs_two_threads
def test_training_in_a_forked_child_finishes():
    """Without the at-fork hook the child waits forever for the parent's
    OpenMP threads; here it finishes on one thread with the parent's loss."""
    out = _run([sys.executable, "-c", FORK_SCRIPT], env=_clean_env())
    assert out.startswith("ok")


def test_fork_hook_sets_single_thread_only_after_a_team(monkeypatch):
    monkeypatch.setattr(_threads, "_forked_after_team", False)
    monkeypatch.setattr(_threads, "_team_started", False)
    _threads._after_fork_in_child()
    assert not _threads._forked_after_team      # no team yet: the child keeps its threads
    monkeypatch.setattr(_threads, "_team_started", True)
    _threads._after_fork_in_child()
    assert _threads._forked_after_team
    monkeypatch.setattr(_kernels, "max_threads", lambda: 8)
    monkeypatch.setattr(_threads, "_OMP_ENV_SET", True)       # even when asked explicitly
    assert _threads.thread_limit() == 1


# ---------------------------------------------------------------------------
# Defect 11: the cap at the CPUs this process may use
# ---------------------------------------------------------------------------


@pytest.fixture
def fresh_cpus():
    _threads.available_cpus.cache_clear()
    yield
    _threads.available_cpus.cache_clear()


def _omp(monkeypatch, current, default, env_set=False):
    monkeypatch.setattr(_kernels, "max_threads", lambda: current)
    monkeypatch.setattr(_threads, "_OMP_DEFAULT", default)
    monkeypatch.setattr(_threads, "_OMP_ENV_SET", env_set)
    monkeypatch.setattr(_threads, "_forked_after_team", False)
    monkeypatch.delenv("LOKY_MAX_CPU_COUNT", raising=False)


@pytest.mark.skipif(not hasattr(os, "sched_getaffinity"), reason="no CPU affinity")
def test_limit_capped_at_affinity(monkeypatch, fresh_cpus):
    _omp(monkeypatch, current=32, default=32)            # OpenMP's default: 32
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2})
    assert _threads.available_cpus() == min(3, os.cpu_count())
    assert _threads.thread_limit() == min(3, os.cpu_count())


@pytest.mark.skipif(not hasattr(os, "sched_getaffinity"), reason="no CPU affinity")
@pytest.mark.parametrize("current, default, env_set, expected", [
    (32, 32, False, 1),   # OpenMP's default: capped at the one CPU
    (32, 32, True, 32),   # OMP_NUM_THREADS=32 at import: the user asked
    (8, 32, False, 8),    # threadpool_limits(8) in force: the user asked
    (1, 32, False, 1),    # threadpool_limits(1)
])
def test_explicit_counts_are_not_capped(monkeypatch, fresh_cpus, current, default,
                                        env_set, expected):
    _omp(monkeypatch, current, default, env_set)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0})
    assert _threads.thread_limit() == expected


def test_limit_follows_threadpoolctl():
    threadpoolctl = pytest.importorskip("threadpoolctl")
    with threadpoolctl.threadpool_limits(limits=1, user_api="openmp"):
        assert _kernels.max_threads() == 1
        assert _threads.thread_limit() == 1
    assert _threads.thread_limit() == min(_kernels.max_threads(), _threads.available_cpus())


# Runs in a subprocess, as root in a private mount namespace with a tmpfs over
# /sys/fs/cgroup when it can: for each case, write the fake quota files, then
# print (OpenMP's count, CPUs available, thread_limit()). Last, pin the
# process to one CPU (taskset-like) and print the same.
CPU_SCRIPT = textwrap.dedent("""
    import json, os, shutil, sys
    from bpcore import _kernels, _threads
    root = "/sys/fs/cgroup"
    cases = json.loads(sys.argv[1])
    if cases and os.environ.get("BPCORE_FAKE_CGROUP") != "1":
        sys.exit("refusing to write to the real /sys/fs/cgroup")
    for files in cases:
        for entry in os.listdir(root):
            path = os.path.join(root, entry)
            shutil.rmtree(path) if os.path.isdir(path) else os.remove(path)
        for name, value in files.items():
            os.makedirs(os.path.dirname(os.path.join(root, name)), exist_ok=True)
            with open(os.path.join(root, name), "w") as f:
                f.write(value + "\\n")
        _threads.available_cpus.cache_clear()
        print(_kernels.max_threads(), _threads.available_cpus(), _threads.thread_limit())
    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    _threads.available_cpus.cache_clear()
    print(_kernels.max_threads(), _threads.available_cpus(), _threads.thread_limit())
""")

CGROUP_CASES = [   # (fake files, expected thread_limit; "all": no quota)
    ({"cpu.max": "50000 100000"}, 1),                              # v2: half a CPU
    ({"cpu.max": "max 100000"}, "all"),                            # v2: no quota
    ({"cpu/cpu.cfs_quota_us": "100000", "cpu/cpu.cfs_period_us": "100000"}, 1),  # v1
    ({"cpu/cpu.cfs_quota_us": "-1", "cpu/cpu.cfs_period_us": "100000"}, "all"),  # v1: none
]


def _can_fake_cgroup():
    if not hasattr(os, "geteuid") or os.geteuid() != 0 or shutil.which("unshare") is None:
        return False
    probe = subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c",
                            "mount -t tmpfs none /sys/fs/cgroup"], capture_output=True)
    return probe.returncode == 0


def _lines(out):
    return [tuple(map(int, line.split())) for line in out.strip().splitlines()]


@needs_two_threads
@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="no CPU affinity")
@pytest.mark.skipif(not _can_fake_cgroup(),
                    reason="needs root and unshare to mount a fake /sys/fs/cgroup")
def test_cgroup_quota_and_affinity_cap_the_limit():
    """What a container with a CPU quota (cgroup v2, v1), or a process pinned
    to one CPU, shows: OpenMP's default stays 2, bpcore uses what it may."""
    import json

    cases = json.dumps([files for files, _ in CGROUP_CASES])
    mount = 'mount -t tmpfs none /sys/fs/cgroup && BPCORE_FAKE_CGROUP=1 exec "$0" -c "$1" "$2"'
    out = _run(["unshare", "--mount", "--propagation", "private", "sh", "-c", mount,
                sys.executable, CPU_SCRIPT, cases], env=_clean_env())
    lines = _lines(out)
    n_all = len(os.sched_getaffinity(0))
    for (files, expected), (omp, cpus, limit) in zip(CGROUP_CASES, lines):
        assert omp >= 2, files
        expected = min(omp, n_all) if expected == "all" else expected
        assert (cpus, limit) == (min(n_all, expected), expected), files
    omp, cpus, limit = lines[-1]           # pinned to one CPU, no quota
    assert (omp, cpus, limit) == (lines[0][0], 1, 1)


@needs_two_threads
@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="no CPU affinity")
def test_omp_num_threads_is_not_capped():
    """OMP_NUM_THREADS is the user's explicit choice: kept on one CPU."""
    out = _run([sys.executable, "-c", CPU_SCRIPT, "[]"], env=_clean_env(OMP_NUM_THREADS="2"))
    assert _lines(out) == [(2, 1, 2)]
