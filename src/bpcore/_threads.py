"""How many OpenMP threads bpcore's kernels may use, and fork safety.

Two problems with taking OpenMP's own count (``omp_get_max_threads``):

* **Containers.** OpenMP's default is the number of CPUs in the affinity
  mask; it knows nothing of a cgroup CPU quota, so a container given 2 CPUs
  of a 32-core host ran 32 threads, and the row split 4x slower than on 2.
  ``thread_limit`` caps the count at the CPUs this process may use
  (``joblib.cpu_count``: affinity mask and cgroup v1/v2 quota), unless the
  user asked for a count explicitly: ``OMP_NUM_THREADS`` set when bpcore was
  imported, or a limit set since (``threadpoolctl.threadpool_limits``,
  ``omp_set_num_threads``), seen as OpenMP's count differing from its value
  at import. (A limit equal to that value is indistinguishable from none;
  set ``OMP_NUM_THREADS`` to force a count above the CPUs.)
* **fork.** GNU libgomp does not survive ``fork``: a child of a process whose
  OpenMP thread pool exists waits forever at the first parallel region for
  the parent's threads, which the child does not have. ``multiprocessing``'s
  fork start method (Linux's default before Python 3.14) hit this as soon as
  the parent had trained on two threads. An ``os.register_at_fork`` hook,
  installed when bpcore is imported, makes such a child run bpcore's kernels
  on one thread for the rest of its life (and its own children likewise),
  whatever limit is asked for: correct results, no hang.

"The parent started OpenMP threads" is judged conservatively: once
``thread_limit`` has returned more than one thread in a process, the kernels
may have started a team there. A process forked before that keeps its full
thread count.
"""
from __future__ import annotations

import functools
import os

from . import _kernels

# OpenMP's count and environment as libgomp read them when bpcore loaded it.
_OMP_ENV_SET = bool(os.environ.get("OMP_NUM_THREADS", "").strip())
_OMP_DEFAULT: int = _kernels.max_threads()

# True once this process may have run an OpenMP team of more than one thread.
_team_started = False
# True in a child forked after that: single-threaded from then on.
_forked_after_team = False


@functools.lru_cache(maxsize=None)
def available_cpus() -> int:
    """CPUs this process may use: the affinity mask and the cgroup CPU quota.

    ``joblib.cpu_count(only_physical_cores=False)``, which reads
    ``os.sched_getaffinity`` and the cgroup v2 (``/sys/fs/cgroup/cpu.max``)
    or v1 (``cpu.cfs_quota_us / cpu.cfs_period_us``) quota, rounded up, and
    honours ``LOKY_MAX_CPU_COUNT``. Cached per process (reading it costs
    ~40 us, 4% of a small epoch); ``available_cpus.cache_clear()`` forgets it.
    """
    import joblib

    return max(1, int(joblib.cpu_count(only_physical_cores=False)))


def thread_limit() -> int:
    """The number of threads bpcore's kernels may use now (at least 1).

    OpenMP's current count (``omp_get_max_threads``, which
    ``threadpoolctl.threadpool_limits`` sets), capped at ``available_cpus()``
    unless the user set the count explicitly (``OMP_NUM_THREADS`` at import,
    or a limit in force that differs from OpenMP's default); always 1 in a
    child forked after this process ran OpenMP threads (libgomp cannot run a
    team there).

    Examples
    --------
    >>> from bpcore._threads import thread_limit
    >>> thread_limit() >= 1
    True
    """
    global _team_started
    if _forked_after_team:
        return 1
    n = max(1, int(_kernels.max_threads()))
    explicit = _OMP_ENV_SET or n != _OMP_DEFAULT
    if not explicit:
        n = min(n, available_cpus())
    if n > 1:
        _team_started = True
    return n


def probe_team(n_threads: int) -> int:
    """The team a probe that starts its own threads may use: ``n_threads``
    capped at ``available_cpus()`` and the kernels' 64, or 1 in a child
    forked after this process ran threads. A team of two or more counts as
    threads started (a child forked from then on runs one thread)."""
    global _team_started
    if _forked_after_team:
        return 1
    team = max(1, min(int(n_threads), 64, available_cpus()))
    if team > 1:
        _team_started = True
    return team


def _after_fork_in_child() -> None:
    global _forked_after_team
    if _team_started:
        _forked_after_team = True
    available_cpus.cache_clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
