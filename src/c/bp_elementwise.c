#include "bp_elementwise.h"
#include "bp_enums.h"
#include "bp_math.h"
#include "bp_platform.h"
#include <math.h>
#include <stdint.h>
#include <string.h>

/* ReLU's derivative as a bit mask: d where a != 0, else +0 (NaN a keeps d,
   as the select `a == 0 ? 0 : d` does). Written as a select, GCC vectorizes
   the body of a row but compiles the row's scalar remainder (cols % 16 in
   float32 under AVX-512: 4 of W1's 100) as compare-and-branch, which
   mispredicts on the data's signs: float32 W2 took as long as float64 in
   this pass. The mask is branch-free in both, and bitwise the same. */
static inline float bp_keep_nz_f(float a, float d) {
    uint32_t x, m = (uint32_t)0 - (uint32_t)(a != 0);
    memcpy(&x, &d, sizeof x);
    x &= m;
    memcpy(&d, &x, sizeof d);
    return d;
}
static inline double bp_keep_nz_d(double a, double d) {
    uint64_t x, m = (uint64_t)0 - (uint64_t)(a != 0);
    memcpy(&x, &d, sizeof x);
    x &= m;
    memcpy(&d, &x, sizeof d);
    return d;
}

/* SELU's constants, as torch.nn.SELU: scale and scale * alpha. */
#define BP_SELU_SCALE 1.0507009873554804934193349852946
#define BP_SELU_NEGCOEF (1.6732632423543772848170429916717 * 1.0507009873554804934193349852946)

/* The per-element passes of forward and backward, compiled per vector
   width (BP_CLONES): bias + activation, and the activation's derivative
   times the delta, fused with the bias gradient's column sum. The
   derivative comes from the activation's output, as scikit-learn takes
   it, except for GELU, SiLU, softplus and SELU, whose forward pass saves
   the pre-activation (zsave) for their backward pass (z); those four
   follow PyTorch's formulas operation for operation. Every matrix is rows x cols with a row stride (ld), so a
   thread can work on a column block of a shared buffer. Branch-free
   selects vectorize; tanh and expm1 stay calls to libm. Every clone
   computes bitwise the same values: no contraction, and every sum
   (softmax's row sum, the column sums) runs in the same sequential order.
   The codes are the Activation enum's (checked when the module loads). */
#define BP_DEFINE_ELEMENTWISE(T, SUF, EXP, EXPM1, TANH, LEXP, ERF, LOG1P)                         \
BP_CLONES void bp_bias_act_##SUF(int code, T* z, ptrdiff_t ldz,          \
        const T* bias, ptrdiff_t rows, ptrdiff_t cols, T slope, T ealpha,        \
        T* zsave) {                                                              \
    ptrdiff_t i, j;                                                              \
    if (code == BP_SOFTMAX) {                                                    \
        /* Shifted by the row maximum so exp never overflows. Output rows    \
           are narrow (10 classes): exp runs over the whole block at once,   \
           not row by row, so it fills whole vectors. */                     \
        for (i = 0; i < rows; i++) {                                             \
            T* row = z + i * ldz;                                                \
            T vmax;                                                              \
            for (j = 0; j < cols; j++) row[j] = row[j] + bias[j];                \
            vmax = row[0];                                                       \
            for (j = 1; j < cols; j++) vmax = row[j] > vmax ? row[j] : vmax;     \
            for (j = 0; j < cols; j++) row[j] = row[j] - vmax;                   \
        }                                                                        \
        if (ldz == cols) {                                                       \
            for (j = 0; j < rows * cols; j++) z[j] = EXP(z[j]);                  \
        } else {                                                                 \
            for (i = 0; i < rows; i++)                                           \
                for (j = 0; j < cols; j++) z[i * ldz + j] = EXP(z[i * ldz + j]); \
        }                                                                        \
        for (i = 0; i < rows; i++) {                                             \
            T* row = z + i * ldz;                                                \
            T total = 0;                                                         \
            for (j = 0; j < cols; j++) total = total + row[j];                   \
            for (j = 0; j < cols; j++) row[j] = row[j] / total;                  \
        }                                                                        \
        return;                                                                  \
    }                                                                            \
    for (i = 0; i < rows; i++) {                                                 \
        T* row = z + i * ldz;                                                    \
        T* zr = zsave != NULL ? zsave + i * cols : NULL;                         \
        switch (code) {                                                          \
        case BP_IDENTITY:                                                        \
            for (j = 0; j < cols; j++) row[j] = row[j] + bias[j];                \
            break;                                                               \
        case BP_RELU:  /* v < 0 keeps NaN as NaN, as np.maximum(v, 0) */         \
            for (j = 0; j < cols; j++) {                                         \
                T v = row[j] + bias[j];                                          \
                row[j] = v < 0 ? (T)0 : v;                                       \
            }                                                                    \
            break;                                                               \
        case BP_LEAKY_RELU:                                                      \
            for (j = 0; j < cols; j++) {                                         \
                T v = row[j] + bias[j];                                          \
                row[j] = v < 0 ? slope * v : v;                                  \
            }                                                                    \
            break;                                                               \
        case BP_LOGISTIC:                                                        \
            for (j = 0; j < cols; j++)                                           \
                row[j] = (T)1 / ((T)1 + EXP(-(row[j] + bias[j])));               \
            break;                                                               \
        case BP_TANH:                                                            \
            for (j = 0; j < cols; j++) row[j] = TANH(row[j] + bias[j]);          \
            break;                                                               \
        case BP_ELU:                                                             \
            for (j = 0; j < cols; j++) {                                         \
                T v = row[j] + bias[j];                                          \
                row[j] = v < 0 ? ealpha * EXPM1(v) : v;                          \
            }                                                                    \
            break;                                                               \
        case BP_EXP:                                                             \
            for (j = 0; j < cols; j++) row[j] = EXP(row[j] + bias[j]);           \
            break;                                                               \
        case BP_GELU:                                                            \
            for (j = 0; j < cols; j++) {                                         \
                T v = row[j] + bias[j];                                          \
                if (zr != NULL) zr[j] = v;                                       \
                row[j] = (v * (T)0.5) * ((T)1 + ERF(v * (T)M_SQRT1_2));          \
            }                                                                    \
            break;                                                               \
        case BP_SILU:                                                            \
            for (j = 0; j < cols; j++) {                                         \
                T v = row[j] + bias[j];                                          \
                if (zr != NULL) zr[j] = v;                                       \
                row[j] = v / ((T)1 + LEXP(-v));                                  \
            }                                                                    \
            break;                                                               \
        case BP_SOFTPLUS:  /* torch: beta = 1, threshold = 20 */                 \
            for (j = 0; j < cols; j++) {                                         \
                T v = row[j] + bias[j];                                          \
                if (zr != NULL) zr[j] = v;                                       \
                row[j] = v > (T)20 ? v : LOG1P(LEXP(v));                         \
            }                                                                    \
            break;                                                               \
        case BP_SELU:                                                            \
            for (j = 0; j < cols; j++) {                                         \
                T v = row[j] + bias[j];                                          \
                if (zr != NULL) zr[j] = v;                                       \
                row[j] = v > 0 ? v * (T)BP_SELU_SCALE                            \
                               : EXPM1(v) * (T)BP_SELU_NEGCOEF;                  \
            }                                                                    \
            break;                                                               \
        default:                                                                 \
            break;                                                               \
        }                                                                        \
    }                                                                            \
}                                                                                \
BP_CLONES void bp_act_back_##SUF(int code, const T* a, ptrdiff_t lda,    \
        const T* z, T* delta, ptrdiff_t ldd, ptrdiff_t rows, ptrdiff_t cols,     \
        T slope, T ealpha, T* colsum, int accumulate) {                          \
    ptrdiff_t i, j;                                                              \
    if (colsum != NULL && !accumulate)                                           \
        for (j = 0; j < cols; j++) colsum[j] = 0;                                \
    for (i = 0; i < rows; i++) {                                                 \
        const T* ar = a + i * lda;                                               \
        T* dr = delta + i * ldd;                                                 \
        const T* zr = z != NULL ? z + i * cols : NULL;                           \
        if (code == BP_RELU && colsum != NULL && (i > 0 || accumulate)) {        \
            /* The common hidden layer: mask and sum in one loop (one loop   \
               overhead and one remainder per row instead of two). */        \
            for (j = 0; j < cols; j++) {                                         \
                T dj = bp_keep_nz_##SUF(ar[j], dr[j]);                                          \
                dr[j] = dj;                                                      \
                colsum[j] = colsum[j] + dj;                                      \
            }                                                                    \
            continue;                                                            \
        }                                                                        \
        switch (code) {                                                          \
        case BP_RELU:                                                            \
            for (j = 0; j < cols; j++) dr[j] = bp_keep_nz_##SUF(ar[j], dr[j]);  \
            break;                                                               \
        case BP_LOGISTIC:  /* scikit-learn's order: delta *= a; delta *= 1 - a */ \
            for (j = 0; j < cols; j++) dr[j] = (dr[j] * ar[j]) * ((T)1 - ar[j]); \
            break;                                                               \
        case BP_TANH:                                                            \
            for (j = 0; j < cols; j++) dr[j] = dr[j] * ((T)1 - ar[j] * ar[j]);   \
            break;                                                               \
        case BP_LEAKY_RELU:                                                      \
            for (j = 0; j < cols; j++) dr[j] = ar[j] > 0 ? dr[j] : dr[j] * slope; \
            break;                                                               \
        case BP_ELU:  /* z <= 0: a = alpha (exp(z) - 1), f'(z) = a + alpha */     \
            for (j = 0; j < cols; j++)                                           \
                dr[j] = ar[j] > 0 ? dr[j] : dr[j] * (ar[j] + ealpha);            \
            break;                                                               \
        case BP_EXP:                                                             \
            for (j = 0; j < cols; j++) dr[j] = dr[j] * ar[j];                    \
            break;                                                               \
        case BP_GELU: {  /* torch's GeluBackward (exact erf form) */           \
            const T kbeta = (T)(M_2_SQRTPI * M_SQRT1_2 * 0.5);                   \
            for (j = 0; j < cols; j++) {                                         \
                T x = zr[j];                                                     \
                T cdf = (T)0.5 * ((T)1 + ERF(x * (T)M_SQRT1_2));                 \
                T pdf = kbeta * LEXP(x * x * (T)-0.5);                           \
                dr[j] = dr[j] * (cdf + x * pdf);                                 \
            }                                                                    \
            break;                                                               \
        }                                                                        \
        case BP_SILU:                                                            \
            for (j = 0; j < cols; j++) {                                         \
                T x = zr[j];                                                     \
                T sg = (T)1 / ((T)1 + LEXP(-x));                                 \
                dr[j] = dr[j] * sg * ((T)1 + x * ((T)1 - sg));                   \
            }                                                                    \
            break;                                                               \
        case BP_SOFTPLUS:                                                        \
            for (j = 0; j < cols; j++) {                                         \
                T x = zr[j];                                                     \
                T ez = LEXP(x);                                                  \
                dr[j] = x > (T)20 ? dr[j] : dr[j] * ez / (ez + (T)1);            \
            }                                                                    \
            break;                                                               \
        case BP_SELU:                                                            \
            for (j = 0; j < cols; j++) {                                         \
                T x = zr[j];                                                     \
                dr[j] = x <= 0 ? dr[j] * (T)BP_SELU_NEGCOEF * LEXP(x)            \
                               : dr[j] * (T)BP_SELU_SCALE;                       \
            }                                                                    \
            break;                                                               \
        case BP_SOFTMAX: {  /* Jacobian-vector product: a * (delta - <delta, a>) */ \
            T dot = 0;                                                           \
            for (j = 0; j < cols; j++) dot = dot + dr[j] * ar[j];                \
            for (j = 0; j < cols; j++) dr[j] = ar[j] * (dr[j] - dot);            \
            break;                                                               \
        }                                                                        \
        default:  /* identity */                                                 \
            break;                                                               \
        }                                                                        \
        if (colsum != NULL) {                                                    \
            if (i == 0 && !accumulate)                                           \
                for (j = 0; j < cols; j++) colsum[j] = dr[j];                    \
            else                                                                 \
                for (j = 0; j < cols; j++) colsum[j] = colsum[j] + dr[j];        \
        }                                                                        \
    }                                                                            \
}
BP_DEFINE_ELEMENTWISE(double, d, bp_exp_d, expm1, tanh, exp, erf, log1p)
BP_DEFINE_ELEMENTWISE(float, f, bp_exp_f, expm1f, tanhf, expf, erff, log1pf)
