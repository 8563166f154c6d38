#include "bp_updates.h"
#include "bp_platform.h"
#include <math.h>

/* The divider-bound optimizer updates (Adam, RMSProp; AdaGrad is RMSProp
   with rho = c = 1), compiled
   for AVX-512, AVX2 and baseline x86-64 and chosen once at load time
   (GCC target_clones / ifunc, Linux). On this project's 2-core EPYC the
   Adam pass over 7,510 parameters took 17.9 us with SSE2, 9.2 with AVX2
   and 6.9 with AVX-512: sqrt and division throughput scale with vector
   width. setup.py passes -ffp-contract=off, so no clone fuses a*b + c into
   an FMA: every target rounds exactly like the baseline (and NumPy).
   Each returns sum(theta**2) over its range before the update; the
   gradient is finished on the fly as (g + l2 * theta) * inv. */

/* sum(th[s:e]**2) of float32 parameters, in double. Each square is rounded
   in float as before; the squares go to 16 interleaved double partial sums,
   added in a fixed order at the end, so every clone returns the same value.
   Summed inside the update loop in sequence, as float64 still is, the
   float->double conversion in an in-order reduction kept GCC 12 from
   vectorizing the whole float32 loop: every clone ran scalar and
   bpcore.Adam().step on 7,510 float32 parameters took 3x its float64 time
   (AMD EPYC Zen 5, issue #16). */
#define BP_SUMSQ_LANES 16
static inline double bp_sumsq_f(const float* th, ptrdiff_t s, ptrdiff_t e) {
    double part[BP_SUMSQ_LANES] = {0};
    double sq = 0.0;
    ptrdiff_t i = s;
    int k;
    for (; i + BP_SUMSQ_LANES <= e; i += BP_SUMSQ_LANES) {
        /* Squares first, then the adds: written as one loop, GCC unrolls it
           and leaves 16 scalar conversions (0.3 vs 4.1 us on 7,510). */
        double sq_block[BP_SUMSQ_LANES];
        for (k = 0; k < BP_SUMSQ_LANES; k++)
            sq_block[k] = (double)(th[i + k] * th[i + k]);
        for (k = 0; k < BP_SUMSQ_LANES; k++) part[k] += sq_block[k];
    }
    for (k = 0; k < BP_SUMSQ_LANES; k++) sq += part[k];
    for (; i < e; i++) {
        float t = th[i];
        sq += (double)(t * t);
    }
    return sq;
}
/* How each dtype gets sum(theta**2): float64 in the loop, in sequence
   (bitwise as before); float32 in a vectorizable pass of its own first. */
#define BP_SQ_IN_LOOP_d(t) sq += t * t;
#define BP_SQ_IN_LOOP_f(t)
#define BP_SQ_BEFORE_d 0.0
#define BP_SQ_BEFORE_f bp_sumsq_f(th, s, e)

/* What every update loop starts with: theta's entry t (its square summed
   for the L2 term) and the gradient finished on the fly, gi. */
#define BP_FINISHED_GRAD(T, SUF)                                                 \
        T t = th[i];                                                             \
        BP_SQ_IN_LOOP_##SUF(t)                                                   \
        T gi = (g[i] + l2 * t) * inv;
/* And in every Adam-family loop (Adam, AdamW, NAdam), the two moments. */
#define BP_MOMENTS(T, SUF)                                                       \
        BP_FINISHED_GRAD(T, SUF)                                                 \
        T mi = b1 * m[i] + c1 * gi;                                              \
        T vi = b2 * v[i] + c2 * (gi * gi);                                       \
        m[i] = mi;                                                               \
        v[i] = vi;

/* One Adam step over th[s:e]; SCALE is empty or `* inv_sqrt_bc2`. */
#define BP_ADAM_LOOP(T, SUF, SQRT, SCALE)                                        \
    for (i = s; i < e; i++) {                                                    \
        BP_MOMENTS(T, SUF)                                                       \
        th[i] = t + step * mi / (SQRT(vi) SCALE + eps);                          \
    }
#define BP_DEFINE_UPDATES(T, SUF, SQRT)                                          \
BP_CLONES double bp_adam_##SUF(T* th, const T* g, T* m, T* v,            \
        ptrdiff_t s, ptrdiff_t e, T b1, T b2, T c1, T c2, T eps, T step,         \
        T inv_sqrt_bc2, int paper, T l2, T inv) {                                \
    double sq = BP_SQ_BEFORE_##SUF;                                              \
    ptrdiff_t i;                                                                 \
    /* Two loops, so neither tests `paper` per element. */                      \
    if (!paper) {                                                                \
        BP_ADAM_LOOP(T, SUF, SQRT, )                                                  \
    } else {                                                                     \
        BP_ADAM_LOOP(T, SUF, SQRT, * inv_sqrt_bc2)                                    \
    }                                                                            \
    return sq;                                                                   \
}                                                                                \
BP_CLONES double bp_rmsprop_##SUF(T* th, const T* g, T* v, ptrdiff_t s,  \
        ptrdiff_t e, T rho, T c, T lr, T eps, T l2, T inv) {                     \
    double sq = BP_SQ_BEFORE_##SUF;                                              \
    ptrdiff_t i;                                                                 \
    for (i = s; i < e; i++) {                                                    \
        BP_FINISHED_GRAD(T, SUF)                                                 \
        T vi = rho * v[i] + c * (gi * gi);                                       \
        v[i] = vi;                                                               \
        th[i] = t - lr * gi / (SQRT(vi) + eps);                                  \
    }                                                                            \
    return sq;                                                                   \
}
BP_DEFINE_UPDATES(double, d, sqrt)
BP_DEFINE_UPDATES(float, f, sqrtf)

/* ---------------------------------------------------------------------------
   The toolbox optimizers (issue #11), each checked against torch.optim.
   Same conventions as above: vector-width clones, no FMA contraction,
   sum(theta**2) before the update, the gradient finished on the fly.
   --------------------------------------------------------------------------- */

/* sum(theta**2): bp_sumsq_f and the BP_SQ_* macros above (float32 in a
   vectorizable pass of its own, float64 in the loop, in sequence). Without
   it the float->double reduction kept every clone of the float32 loops
   scalar (and the scalar Rprop loop's sign branches mispredicted: 20 ns a
   parameter on 134k parameters against 3 for float64). */

/* Adam in the paper's (torch's) form with decoupled weight decay and optional
   AMSGrad: torch.optim.AdamW, and torch.optim.Adam(amsgrad=True) with
   decay = 1 (t * 1 is exact). One loop per kind of second moment, so
   neither tests `vmax` per element:
       theta = theta * decay - lr / bc1 * m / (sqrt(vhat) / sqrt(bc2) + eps)
   with vhat = v, or vhat = vmax = max(vmax, v) (AMSGrad). */
#define BP_ADAMW_LOOP(T, SUF, SQRT, VHAT)                                             \
    for (i = s; i < e; i++) {                                                    \
        BP_MOMENTS(T, SUF)                                                       \
        VHAT                                                                     \
        th[i] = t * decay + step * mi / (SQRT(vi) * inv_sqrt_bc2 + eps);         \
    }
#define BP_AMSGRAD_MAX(T) { T w = vmax[i]; vi = vi > w ? vi : w; vmax[i] = vi; }

/* NAdam (Dozat 2016) as torch.optim.NAdam writes it:
       theta += (cg * g + cm * m) / (sqrt(v / bc2) + eps)
   with cg = -lr (1 - mu_t) / (1 - prod mu_1..t) and
        cm = -lr mu_{t+1} / (1 - prod mu_1..t+1), computed once per step.
   torch adds the two terms with two divisions; one division here (the
   divider bounds this loop) differs from it by rounding only. */

/* Rprop as torch.optim.Rprop writes it: the step size of each parameter
   grows by eta_plus where g * g_prev > 0 and shrinks by eta_minus where
   g * g_prev < 0 (clamped to [smin, smax]); where it shrank, the gradient
   counts as 0 (no move, and no sign for the next step);
       theta -= sign(g) * step;  g_prev = g.
   `first` reads every step size as lr0 (torch initializes them to lr on the
   first step), so zeroed state needs no separate initialization. */
#define BP_DEFINE_TOOLBOX_UPDATES(T, SUF, SQRT)                                  \
BP_CLONES double bp_adamw_##SUF(T* th, const T* g, T* m, T* v, T* vmax,          \
        ptrdiff_t s, ptrdiff_t e, T b1, T b2, T c1, T c2, T eps, T step,         \
        T inv_sqrt_bc2, T decay, T l2, T inv) {                                  \
    double sq = BP_SQ_BEFORE_##SUF;                                           \
    ptrdiff_t i;                                                                 \
    if (vmax == NULL) {                                                          \
        BP_ADAMW_LOOP(T, SUF, SQRT, )                                               \
    } else {                                                                     \
        BP_ADAMW_LOOP(T, SUF, SQRT, BP_AMSGRAD_MAX(T))                                 \
    }                                                                            \
    return sq;                                                                   \
}                                                                                \
BP_CLONES double bp_nadam_##SUF(T* th, const T* g, T* m, T* v, ptrdiff_t s,     \
        ptrdiff_t e, T b1, T b2, T c1, T c2, T eps, T inv_bc2, T cg, T cm,       \
        T l2, T inv) {                                                           \
    double sq = BP_SQ_BEFORE_##SUF;                                           \
    ptrdiff_t i;                                                                 \
    for (i = s; i < e; i++) {                                                    \
        BP_MOMENTS(T, SUF)                                                       \
        th[i] = t + (cg * gi + cm * mi) / (SQRT(vi * inv_bc2) + eps);            \
    }                                                                            \
    return sq;                                                                   \
}                                                                                \
BP_CLONES double bp_rprop_##SUF(T* th, const T* g, T* prev, T* size,             \
        ptrdiff_t s, ptrdiff_t e, T eta_minus, T eta_plus, T smin, T smax,       \
        int first, T lr0, T l2, T inv) {                                         \
    double sq = BP_SQ_BEFORE_##SUF;                                           \
    ptrdiff_t i;                                                                 \
    for (i = s; i < e; i++) {                                                    \
        BP_FINISHED_GRAD(T, SUF)                                                 \
        T p = gi * prev[i];                                                      \
        T z = (first ? lr0 : size[i])                                            \
              * (p > 0 ? eta_plus : (p < 0 ? eta_minus : (T)1));                 \
        z = z < smin ? smin : z;                                                 \
        z = z > smax ? smax : z;                                                 \
        gi = p < 0 ? (T)0 : gi;                                                  \
        size[i] = z;                                                             \
        prev[i] = gi;                                                            \
        /* t + gi where gi is 0 (no move) or NaN (propagated, as torch). */     \
        th[i] = gi > 0 ? t - z : (gi < 0 ? t + z : t + gi);                      \
    }                                                                            \
    return sq;                                                                   \
}
BP_DEFINE_TOOLBOX_UPDATES(double, d, sqrt)
BP_DEFINE_TOOLBOX_UPDATES(float, f, sqrtf)
