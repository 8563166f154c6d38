# What the drivers ask of the runtime: OpenMP's thread limit and Python's
# signal handlers (Ctrl-C between batches).
# Included by src/_kernels.pyx (see its Design docstring for the order).

def max_threads():
    """Threads the epoch driver may use: OpenMP's current limit (which
    threadpoolctl sets), or 1 when the extension was built without OpenMP."""
    return bp_max_threads()


def has_openmp():
    return bool(BP_OPENMP)


cdef inline bint _signal_raised(Py_ssize_t* since_poll, Py_ssize_t poll_every) noexcept nogil:
    """Every ``poll_every``-th call, run Python's signal handlers (Ctrl-C);
    True if one raised (the exception is then pending)."""
    cdef bint raised = False
    since_poll[0] += 1
    if since_poll[0] >= poll_every:
        since_poll[0] = 0
        with gil:
            raised = PyErr_CheckSignals() != 0
    return raised


cdef int _reraise() except -1:
    # Called with an exception pending (set by PyErr_CheckSignals): returning
    # the error value makes Cython propagate that exception.
    return -1
