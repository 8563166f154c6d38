# The end of a batch, written once for both epoch drivers.
# Included by src/_kernels.pyx (see its Design docstring for the order).
#
# After the walk, every thread has left its share of the batch's data-loss
# sum in S.part[tid]; after its update, its share of sum(W**2) and
# sum(|W|) over the weights it updated in S.part[MAX_THREADS + tid] and
# S.part[2 * MAX_THREADS + tid]. Each thread reads the others' shares only
# after a barrier that follows their writes:
#
# * _batch_data_loss (every thread, after the barrier that follows the
#   loss shares): the batch's data loss, the same value on every thread, so
#   all take the same branch: update, skip a batch whose sample weights are
#   all zero (no update, no loss), or stop on a non-finite loss before any
#   update.
# * _end_batch (thread 0, after the barrier that follows the updates):
#   records the batch's loss (_record_batch: data loss + the penalty term,
#   and whether it is finite), then polls for signals. The unit split has
#   no barrier after its update: it holds the batch's books instead and
#   records them after the next batch's first barrier (or, for the last
#   batch, after the parallel block), so a loss that only the penalty term
#   makes non-finite stops the unit split one batch later.

cdef enum BatchFate:
    BATCH_UPDATE             # a finite data loss and a positive weight: update
    BATCH_EMPTY              # every sample weight zero: no update, loss 0
    BATCH_NONFINITE          # stop before any update


cdef struct BatchBooks:
    # What thread 0 needs to record a batch's loss.
    Py_ssize_t b
    double data_loss, sw_sum


cdef inline double _penalty_term(double alpha, double l1, double sq, double ab,
                                 double sw_sum) noexcept nogil:
    """The penalties' part of the loss, (0.5 alpha sum(W**2) + l1 sum(|W|)) / sw_sum:
    scikit-learn's L2 term (with L1 beside it) over the weights, divided by
    the (weighted) sample count. Every driver and bpcore.dask take it here."""
    return (0.5 * alpha * sq + l1 * ab) / sw_sum


cdef double _weight_total(const floating* w, Py_ssize_t n) noexcept nogil:
    """sum(w[:n]) in double, in order; ``n`` when ``w`` is NULL (unweighted)."""
    cdef double total = 0.0
    cdef Py_ssize_t r
    if w == NULL:
        return <double> n
    for r in range(n):
        total = total + w[r]
    return total


cdef BatchFate _batch_data_loss(const EpochShared* S, int team, double sw_sum,
                                double* data_loss) noexcept nogil:
    """The batch's data loss from the threads' shares, divided by the batch's
    weight (0 for a batch of zero weight), and what to do with the batch."""
    cdef double total = 0.0
    cdef int k
    for k in range(team):
        total = total + S.part[k]
    if not sw_sum > 0:
        data_loss[0] = 0.0
        return BATCH_EMPTY
    total = total / sw_sum
    data_loss[0] = total
    return BATCH_UPDATE if isfinite(total) else BATCH_NONFINITE


cdef inline void _no_penalty_share(EpochShared* S, int tid) noexcept nogil:
    # A batch without an update adds nothing to the penalty term.
    S.part[MAX_THREADS + tid] = 0.0
    S.part[2 * MAX_THREADS + tid] = 0.0


cdef void _record_batch(const EpochArgs* E, const EpochShared* S, int team,
                        const BatchBooks* k, Py_ssize_t* status) noexcept nogil:
    """Thread 0: batch k.b's loss (scikit-learn's: data loss + penalties,
    before the update) into batch_loss; a non-finite one stops the epoch."""
    cdef double sq = 0.0, ab = 0.0, loss = k.data_loss
    cdef int t
    for t in range(team):
        sq = sq + S.part[MAX_THREADS + t]
        ab = ab + S.part[2 * MAX_THREADS + t]
    if k.sw_sum > 0:
        loss = loss + _penalty_term(E.R.alpha, E.R.l1, sq, ab, k.sw_sum)
    E.B.batch_loss[k.b] = loss
    if not isfinite(loss) and status[0] == OK:
        status[0] = NONFINITE_LOSS


cdef void _end_batch(const EpochArgs* E, EpochShared* S, int team, const BatchBooks* k,
                     BatchBooks* held, Py_ssize_t* since_poll,
                     Py_ssize_t* status) noexcept nogil:
    """Thread 0, at the end of batch k.b: record its loss now, or with
    ``held`` (the unit split) keep its books there for after the next
    barrier; then, unless it was the last batch, poll for signals (Ctrl-C
    stops the epoch after this batch). ``status`` is what the threads read
    after the next barrier; the first reason to stop is kept."""
    if held != NULL:
        held[0] = k[0]
    else:
        _record_batch(E, S, team, k, status)
    if k.b + 1 < E.B.n_batches and _signal_raised(since_poll, E.B.poll_every):
        S.interrupted = 1
        if status[0] == OK:
            status[0] = INTERRUPTED
