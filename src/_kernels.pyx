# cython: language_level=3
"""Hot loops of bpcore: every per-sample and per-parameter loop lives here.

Design
------
This file is the entry point; the kernels are cut by role into included
files under ``src/kernels/`` (each section uses only the ones before it) and
the element-wise C under ``src/c/`` (every enum defined once, in
``bp_enums.h``):

1. ``blas.pxi``: row-major ``gemm`` over ``scipy.linalg.cython_blas``.
2. ``activations.pxi``: bias + activation forward, derivative backward
   (``bp_elementwise.c``).
3. ``losses.pxi``: the per-block loss sum and the output delta
   (``bp_losses.c``).
4. ``layout.pxi``: the network as the kernels see it; sparse input rows.
5. ``walk.pxi``: forward, loss and backward over one block of rows.
6. ``regularizers.pxi``: the L2 term folded into the gradient.
7. ``optimizers.pxi``: updates over the flat parameter buffer
   (``bp_updates.c``).
8. Drivers: ``runtime.pxi`` (thread limit, signals), ``inputs.pxi`` (input
   binding, the input scan of ``bp_scan.c``, dropout's row keys),
   ``data.pxi`` (an epoch's settings by role: the batches, the step rules,
   the workspace; the gather), ``batch_end.pxi`` (the end of a batch, for
   both epoch drivers), ``epoch_units.pxi`` and ``epoch_rows.pxi`` (the
   whole-epoch minibatch loop, split by hidden units or by rows),
   ``full_batch.pxi`` (loss and gradient), ``inference.pxi``, ``floor.pxi``
   (the benchmark floor).

Conventions
-----------
* Arrays are row-major. A network with ``L`` weight layers has unit counts
  ``sizes[0..L]``; all weights come first in ``theta`` (``W_0 .. W_{L-1}``,
  each ``(fan_in, fan_out)`` row-major), then all biases, which is the order
  of scikit-learn's ``_pack``: L-BFGS sees the same vector, and the weight
  block ``theta[:n_weights]`` is one contiguous range for L2.
* Deltas are unscaled sums over samples (times the sample weight), exactly as
  scikit-learn forms them; the division by the (weighted) sample count happens
  once, in ``_finalize_grad``. Losses are accumulated in double.
* Everything under ``nogil`` reports failure by a status code; the Python layer
  turns it into an exception.
* Kernels run with flush-to-zero/denormals-are-zero on and restore the
  caller's floating-point mode before returning (see DESIGN.md, Denormals).
"""

from cython cimport floating
from cython.parallel cimport parallel
from libc.math cimport log, logf, sqrt, pow, isfinite
from libc.string cimport memcpy, memset
from libc.stdint cimport uint64_t
from libc.float cimport DBL_EPSILON, FLT_EPSILON
from scipy.linalg.cython_blas cimport sgemm, dgemm

cdef extern from "Python.h":
    # Declared without an exception spec: the caller inspects the return value
    # and re-raises the pending exception itself after leaving the nogil block.
    int PyErr_CheckSignals()

cdef extern from "bp_platform.h" nogil:
    ctypedef int bp_fpstate
    bp_fpstate bp_fp_enter() noexcept
    void bp_fp_exit(bp_fpstate s) noexcept
    void bp_prefetch(const void* p) noexcept
    int bp_max_threads() noexcept
    int bp_team_size() noexcept
    int bp_thread_id() noexcept
    ctypedef struct bp_barrier_t:
        pass
    void bp_barrier_init(bp_barrier_t* b) noexcept
    void bp_barrier_wait(bp_barrier_t* b, int* local_sense, int team) noexcept
    long long bp_claim(long long* next) noexcept
    int BP_OPENMP

cdef extern from "bp_updates.h" nogil:
    double bp_adam_d(double* th, const double* g, double* m, double* v, Py_ssize_t s,
                     Py_ssize_t e, double b1, double b2, double c1, double c2, double eps,
                     double step, double isb, int paper, double l2, double inv) noexcept
    double bp_adam_f(float* th, const float* g, float* m, float* v, Py_ssize_t s,
                     Py_ssize_t e, float b1, float b2, float c1, float c2, float eps,
                     float step, float isb, int paper, float l2, float inv) noexcept
    double bp_rmsprop_d(double* th, const double* g, double* v, Py_ssize_t s, Py_ssize_t e,
                        double rho, double c, double lr, double eps, double l2,
                        double inv) noexcept
    double bp_rmsprop_f(float* th, const float* g, float* v, Py_ssize_t s, Py_ssize_t e,
                        float rho, float c, float lr, float eps, float l2,
                        float inv) noexcept
    double bp_adamw_d(double* th, const double* g, double* m, double* v, double* vmax,
                      Py_ssize_t s, Py_ssize_t e, double b1, double b2, double c1,
                      double c2, double eps, double step, double isb, double decay,
                      double l2, double inv) noexcept
    double bp_adamw_f(float* th, const float* g, float* m, float* v, float* vmax,
                      Py_ssize_t s, Py_ssize_t e, float b1, float b2, float c1, float c2,
                      float eps, float step, float isb, float decay, float l2,
                      float inv) noexcept
    double bp_nadam_d(double* th, const double* g, double* m, double* v, Py_ssize_t s,
                      Py_ssize_t e, double b1, double b2, double c1, double c2, double eps,
                      double inv_bc2, double cg, double cm, double l2, double inv) noexcept
    double bp_nadam_f(float* th, const float* g, float* m, float* v, Py_ssize_t s,
                      Py_ssize_t e, float b1, float b2, float c1, float c2, float eps,
                      float inv_bc2, float cg, float cm, float l2, float inv) noexcept
    double bp_rprop_d(double* th, const double* g, double* prev, double* size,
                      Py_ssize_t s, Py_ssize_t e, double eta_minus, double eta_plus,
                      double smin, double smax, int first, double lr0, double l2,
                      double inv) noexcept
    double bp_rprop_f(float* th, const float* g, float* prev, float* size, Py_ssize_t s,
                      Py_ssize_t e, float eta_minus, float eta_plus, float smin,
                      float smax, int first, float lr0, float l2, float inv) noexcept

cdef extern from "bp_losses.h" nogil:
    double bp_log_loss_d(const double* p, const double* y, double* delta,
                         Py_ssize_t n) noexcept
    double bp_log_loss_f(const float* p, const float* y, float* delta,
                         Py_ssize_t n) noexcept

cdef extern from "bp_elementwise.h" nogil:
    void bp_col_sums_d(const double* z, const double* w, Py_ssize_t rows, Py_ssize_t cols,
                       double* sum) noexcept
    void bp_col_sums_f(const float* z, const float* w, Py_ssize_t rows, Py_ssize_t cols,
                       double* sum) noexcept
    void bp_col_sqdev_d(const double* z, const double* w, Py_ssize_t rows, Py_ssize_t cols,
                        const double* mean, double* sq) noexcept
    void bp_col_sqdev_f(const float* z, const float* w, Py_ssize_t rows, Py_ssize_t cols,
                        const double* mean, double* sq) noexcept
    void bp_bn_norm_d(double* z, double* xhat, Py_ssize_t rows, Py_ssize_t cols,
                      const double* mean, const double* istd, const double* gamma) noexcept
    void bp_bn_norm_f(float* z, float* xhat, Py_ssize_t rows, Py_ssize_t cols,
                      const double* mean, const double* istd, const float* gamma) noexcept
    void bp_bn_back_sums_d(const double* d, const double* xhat, Py_ssize_t rows,
                           Py_ssize_t cols, double* sum_d, double* sum_dx) noexcept
    void bp_bn_back_sums_f(const float* d, const float* xhat, Py_ssize_t rows,
                           Py_ssize_t cols, double* sum_d, double* sum_dx) noexcept
    void bp_bn_back_d(double* d, const double* xhat, const double* w, Py_ssize_t rows,
                      Py_ssize_t cols, const double* mean_d, const double* mean_dx,
                      const double* istd, const double* gamma) noexcept
    void bp_bn_back_f(float* d, const float* xhat, const float* w, Py_ssize_t rows,
                      Py_ssize_t cols, const double* mean_d, const double* mean_dx,
                      const double* istd, const float* gamma) noexcept
    uint64_t bp_dropout_key(uint64_t seed, uint64_t epoch, uint64_t layer) noexcept
    void bp_dropout_d(const double* src, double* dst, Py_ssize_t rows, Py_ssize_t cols,
                      Py_ssize_t col0, const Py_ssize_t* ids, Py_ssize_t first, const uint64_t* keys,
                      uint64_t key, double p, double* mult) noexcept
    void bp_dropout_back_d(double* d, const double* mult, Py_ssize_t n) noexcept
    void bp_dropout_f(const float* src, float* dst, Py_ssize_t rows, Py_ssize_t cols,
                      Py_ssize_t col0, const Py_ssize_t* ids, Py_ssize_t first, const uint64_t* keys,
                      uint64_t key, double p, float* mult) noexcept
    void bp_dropout_back_f(float* d, const float* mult, Py_ssize_t n) noexcept
    uint64_t bp_row_key_d(const double* v, const Py_ssize_t* cols, Py_ssize_t n) noexcept
    uint64_t bp_row_key_f(const float* v, const Py_ssize_t* cols, Py_ssize_t n) noexcept
    void bp_bias_act_d(int code, double* z, Py_ssize_t ldz, const double* bias,
                       Py_ssize_t rows, Py_ssize_t cols, double slope, double ealpha,
                       double* zsave) noexcept
    void bp_bias_act_f(int code, float* z, Py_ssize_t ldz, const float* bias,
                       Py_ssize_t rows, Py_ssize_t cols, float slope, float ealpha,
                       float* zsave) noexcept
    void bp_act_back_d(int code, const double* a, Py_ssize_t lda, const double* z,
                       double* delta, Py_ssize_t ldd, Py_ssize_t rows, Py_ssize_t cols,
                       double slope, double ealpha, double* colsum, int accumulate) noexcept
    void bp_act_back_f(int code, const float* a, Py_ssize_t lda, const float* z,
                       float* delta, Py_ssize_t ldd, Py_ssize_t rows, Py_ssize_t cols,
                       float slope, float ealpha, float* colsum, int accumulate) noexcept


# Codes shared with the Python layer (defined once, in bp_enums.h); names
# map to these once, in bpcore.
cdef extern from "bp_enums.h":
    cpdef enum Activation "bp_activation":
        IDENTITY "BP_IDENTITY"
        LOGISTIC "BP_LOGISTIC"
        TANH "BP_TANH"
        RELU "BP_RELU"
        LEAKY_RELU "BP_LEAKY_RELU"
        ELU "BP_ELU"
        SOFTMAX "BP_SOFTMAX"
        EXP "BP_EXP"
        GELU "BP_GELU"
        SILU "BP_SILU"
        SOFTPLUS "BP_SOFTPLUS"
        SELU "BP_SELU"

    cpdef enum Loss "bp_loss":
        SQUARED_ERROR "BP_SQUARED_ERROR"
        LOG_LOSS "BP_LOG_LOSS"
        BINARY_LOG_LOSS "BP_BINARY_LOG_LOSS"
        POISSON "BP_POISSON"
        ABSOLUTE_ERROR "BP_ABSOLUTE_ERROR"
        HUBER "BP_HUBER"

    cpdef enum OptimizerKind "bp_optimizer":
        SGD "BP_SGD"
        ADAM "BP_ADAM"
        RMSPROP "BP_RMSPROP"
        ADAGRAD "BP_ADAGRAD"
        NADAM "BP_NADAM"
        RPROP "BP_RPROP"

    cpdef enum BlockKind "bp_block":
        WEIGHTS "BP_WEIGHTS"
        BIASES "BP_BIASES"
        BN_SCALE "BP_BN_SCALE"
        BN_SHIFT "BP_BN_SHIFT"

    cpdef enum Status "bp_status":
        OK "BP_OK"
        NONFINITE_LOSS "BP_NONFINITE_LOSS"
        NONFINITE_PARAMS "BP_NONFINITE_PARAMS"
        INTERRUPTED "BP_INTERRUPTED"

    bint bp_act_needs_z(int code) noexcept nogil

DEF MAX_LAYERS = 256
DEF MAX_THREADS = 64

# Poll for signals after about this many multiply-adds (a few ms of work).
DEF POLL_MACS = 8000000

# Prefetch the first PREFETCH_ROW values of each of the next batch's rows
# (the hardware prefetcher follows the rest of a long row).
DEF PREFETCH_ROW = 64
# _gather asks for the row this many ahead of the one it copies.
DEF GATHER_AHEAD = 8
DEF CACHE_LINE = 64
# Per-thread blocks of the workspace are padded to this many elements (64
# bytes of float32 or more of float64) so no two threads write one cache line.
DEF PAD = 16

include "kernels/blas.pxi"
include "kernels/activations.pxi"
include "kernels/losses.pxi"
include "kernels/layout.pxi"
include "kernels/walk.pxi"
include "kernels/regularizers.pxi"
include "kernels/optimizers.pxi"
include "kernels/runtime.pxi"
include "kernels/inputs.pxi"
include "kernels/data.pxi"
include "kernels/batch_end.pxi"
include "kernels/epoch_units.pxi"
include "kernels/epoch_rows.pxi"
include "kernels/full_batch.pxi"
include "kernels/inference.pxi"
include "kernels/floor.pxi"
