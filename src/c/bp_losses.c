#include "bp_losses.h"
#include "bp_platform.h"
#include <math.h>
#include <string.h>

/* Log loss of a block without sample weights, over its n = rows * cols
   entries as one flat array: delta = p - y, and the return value
   -sum(y * log(clip(p))) (clip to [eps, 1 - eps] of T, scikit-learn's).
   Targets exactly 1 (one-hot rows) need no log each: their clipped
   probabilities are multiplied in double, in 8 lanes (entry i into lane
   i % 8: one vector, and no single chain of dependent multiplications),
   each lane rescaled by 2^900 whenever it drops below 2^-900 (a factor
   is at least eps >= 2^-52, so no lane ever underflows); the loss is the
   sum of the lanes' -log plus 900 ln 2 per rescale. Each multiplication
   adds at most one rounding, so the error is that of adding the logs
   (200 rows: a few hundred ulp of the product, ~1e-14 on a sum near
   100). Other non-zero targets (soft labels) take their own log, in T as
   the weighted row loop does. NaN probabilities propagate to the loss.
   Whole groups of 8 run as GCC/Clang vector extensions (exact IEEE
   operations lane by lane, so every target_clones clone agrees), the
   rest (and everything elsewhere) per lane in scalar code, which does
   the very same operations in each lane. */
#include <float.h>
#if defined(__GNUC__) || defined(__clang__)
#define BP_V8 1
typedef double bp_v8d __attribute__((vector_size(64)));
typedef long long bp_v8q __attribute__((vector_size(64)));
/* m ? a : b lane by lane, m a comparison's all-ones / zero mask */
#define BP_SEL8(m, a, b) \
    ((bp_v8d)(((bp_v8q)(m) & (bp_v8q)(a)) | (~(bp_v8q)(m) & (bp_v8q)(b))))
#define BP_LD8_d(dst, src) memcpy(&(dst), (src), sizeof(bp_v8d))
/* Lane by lane: __builtin_convertvector here crashed GCC 12 (internal
   compiler error) in the AVX2 and baseline clones. */
#define BP_LD8_f(dst, src) do { const float* s_ = (src); int k_;          \
    for (k_ = 0; k_ < 8; k_++) (dst)[k_] = s_[k_]; } while (0)
#else
#define BP_V8 0
#endif
#if BP_V8
/* bp_log_loss_*'s whole groups of 8 (names are its locals). */
#define BP_LOG_LOSS_V8(SUF)                                                    \
    {                                                                          \
        bp_v8d vp = {1, 1, 1, 1, 1, 1, 1, 1}, one = vp, zero = vp - vp;        \
        bp_v8d vr = zero, vok = zero, pv, t, pc;                               \
        for (; i + 8 <= n; i += 8) {                                           \
            BP_LD8_##SUF(pv, p + i);                                           \
            BP_LD8_##SUF(t, y + i);                                            \
            pc = BP_SEL8(pv < lo, zero + lo, pv);                              \
            pc = BP_SEL8(pc > hi, zero + hi, pc);                              \
            vp = vp * BP_SEL8(t == one, pc, one);                              \
            vok += BP_SEL8(t == zero, one, zero) + BP_SEL8(t == one, one, zero); \
            vr += BP_SEL8(vp < below, one, zero);                              \
            vp = BP_SEL8(vp < below, vp * by, vp);                             \
        }                                                                      \
        for (l = 0; l < 8; l++) prod[l] = vp[l], resc[l] = vr[l], ok[l] = vok[l]; \
    }
#else
#define BP_LOG_LOSS_V8(SUF)
#endif
#define BP_DEFINE_LOG_LOSS(T, SUF, LOG, EPS)                                   \
BP_CLONES double bp_log_loss_##SUF(const T* p, const T* y, T* delta,    \
                                          ptrdiff_t n) {                       \
    const double lo = EPS, hi = (double)((T)1 - EPS);                          \
    const double below = 0x1p-900, by = 0x1p900;                               \
    double prod[8], resc[8], ok[8], total = 0, n_resc = 0, n_ok = 0;           \
    ptrdiff_t i = 0, l;                                                        \
    for (l = 0; l < 8; l++) prod[l] = 1, resc[l] = 0, ok[l] = 0;               \
    for (i = 0; i < n; i++) delta[i] = p[i] - y[i];                            \
    i = 0;                                                                     \
    BP_LOG_LOSS_V8(SUF)                                                        \
    for (; i < n; i++) {                                                       \
        double pv = (double)p[i], t = (double)y[i], pc;                        \
        l = i % 8;                                                             \
        pc = pv < lo ? lo : pv;                                                \
        pc = pc > hi ? hi : pc;                                                \
        prod[l] = prod[l] * (t == 1 ? pc : 1.0);                               \
        ok[l] += (t == 0 ? 1.0 : 0.0) + (t == 1 ? 1.0 : 0.0);                  \
        resc[l] += prod[l] < below ? 1.0 : 0.0;                                \
        prod[l] = prod[l] < below ? prod[l] * by : prod[l];                    \
    }                                                                          \
    for (l = 0; l < 8; l++) {                                                  \
        total -= log(prod[l]);                                                 \
        n_resc += resc[l];                                                     \
        n_ok += ok[l];                                                         \
    }                                                                          \
    if (n_ok < (double)n) {                                                    \
        for (i = 0; i < n; i++) {                                              \
            T t = y[i];                                                        \
            if (t != 0 && t != 1) {                                            \
                T pl = p[i] < (T)lo ? (T)lo : p[i];                            \
                total -= (double)(t * LOG(pl > (T)hi ? (T)hi : pl));           \
            }                                                                  \
        }                                                                      \
    }                                                                          \
    return total + n_resc * (900.0 * M_LN2);                                   \
}
BP_DEFINE_LOG_LOSS(double, d, log, DBL_EPSILON)
BP_DEFINE_LOG_LOSS(float, f, logf, FLT_EPSILON)
