#include "bp_elementwise.h"
#include "bp_enums.h"
#include "bp_math.h"
#include "bp_platform.h"
#include <math.h>
#include <stdint.h>
#include <string.h>

/* Vectors of 64 bytes and narrower, down to one element (GCC's vector
   extensions; each clone lowers a 64-byte vector to its own registers: one
   zmm, two ymm or four xmm). BP_STEPS_* walks j over [j, n) in steps of the
   widest that still fits, so a row of 100 float32 is six 16-vectors and one
   4-vector, and no row ends in a scalar remainder loop of more than 3: GCC's own
   vectorization left 4 of W1's 100 columns (and all 10 of the output's) to
   a scalar loop per row, which took half of these passes' time. Only
   element-wise operations and sums in the scalar code's order: bitwise the
   same results. Unaligned (aligned(sizeof T)) and may_alias, as the
   compilers' own _u intrinsic types. Other compilers (MSVC) take one
   element at a time, with the scalar selects. */
#if defined(__GNUC__) || defined(__clang__)
#define BP_VTYPE(name, T, n) \
    typedef T name __attribute__((vector_size(n), aligned(sizeof(T)), may_alias))
BP_VTYPE(bp_f16, float, 64);
BP_VTYPE(bp_f8, float, 32);
BP_VTYPE(bp_f4, float, 16);
BP_VTYPE(bp_i16, int32_t, 64);
BP_VTYPE(bp_i8, int32_t, 32);
BP_VTYPE(bp_i4, int32_t, 16);
BP_VTYPE(bp_d8, double, 64);
BP_VTYPE(bp_d4, double, 32);
BP_VTYPE(bp_d2, double, 16);
BP_VTYPE(bp_q8, int64_t, 64);
BP_VTYPE(bp_q4, int64_t, 32);
BP_VTYPE(bp_q2, int64_t, 16);
#define BP_STEPS_f(j, n, STEP)                                                   \
    for (; (j) + 16 <= (n); (j) += 16) STEP(bp_f16, bp_i16)                      \
    for (; (j) + 8 <= (n); (j) += 8) STEP(bp_f8, bp_i8)                          \
    for (; (j) + 4 <= (n); (j) += 4) STEP(bp_f4, bp_i4)                          \
    for (; (j) < (n); (j) += 1) STEP(float, int32_t)
#define BP_STEPS_d(j, n, STEP)                                                   \
    for (; (j) + 8 <= (n); (j) += 8) STEP(bp_d8, bp_q8)                          \
    for (; (j) + 4 <= (n); (j) += 4) STEP(bp_d4, bp_q4)                          \
    for (; (j) + 2 <= (n); (j) += 2) STEP(bp_d2, bp_q2)                          \
    for (; (j) < (n); (j) += 1) STEP(double, int64_t)
/* v < 0 ? 0 : v and a != 0 ? d : 0 as bit masks (see below), for vectors
   and scalars alike: a comparison gives -1/0 lanes for vectors and 1/0 for
   scalars, so the mask is 0 - (c & 1); the bits move through memcpy (a
   register move). The last step is plain T: GCC lowers a one-element
   vector's compare to a branch and keeps it in general registers. */
#define BP_MASK(I, c) (0 - ((I)(c) & 1))
#define BP_AND_BITS(V, I, x, m)                                                  \
    __extension__({                                                              \
        V x_ = (x), r_;                                                          \
        I b_;                                                                    \
        memcpy(&b_, &x_, sizeof b_);                                             \
        b_ &= (m);                                                               \
        memcpy(&r_, &b_, sizeof r_);                                             \
        r_;                                                                      \
    })
#define BP_RELU_OF(V, I, v) BP_AND_BITS(V, I, v, ~BP_MASK(I, (v) < 0))
#define BP_KEEP_OF(V, I, a, d) BP_AND_BITS(V, I, d, BP_MASK(I, (a) != 0))
#else
#define BP_STEPS_f(j, n, STEP) for (; (j) < (n); (j) += 1) STEP(float, int32_t)
#define BP_STEPS_d(j, n, STEP) for (; (j) < (n); (j) += 1) STEP(double, int64_t)
#define BP_RELU_OF(V, I, v) ((v) < 0 ? (V)0 : (v))
#define BP_KEEP_OF(V, I, a, d) ((a) != 0 ? (d) : (V)0)
#endif
#define BP_LD(V, p) (*(const V*)(p))
#define BP_ST(V, p, v) (*(V*)(p) = (v))
/* The steps (names are the enclosing function's locals). ReLU and its
   derivative as bit masks: v < 0 gives +0 (NaN and -0 stay), as the select
   `v < 0 ? 0 : v`; the derivative keeps d where a != 0 (NaN a too), else
   +0, as `a == 0 ? 0 : d`. Written as selects, GCC compiled a row's scalar
   remainder as compare-and-branch, which mispredicts on the data's signs
   (float32 W2 took as long as float64 in that pass). The column sums run
   down a column block, row after row, in the order of the scalar loop, with
   the block's sum in a register. */
#define BP_STEP_BIAS(V, I) BP_ST(V, row + j, BP_LD(V, row + j) + BP_LD(V, bias + j));
#define BP_STEP_BIAS_RELU(V, I)                                                  \
    {                                                                            \
        V v_ = BP_LD(V, row + j) + BP_LD(V, bias + j);                           \
        BP_ST(V, row + j, BP_RELU_OF(V, I, v_));                                 \
    }
#define BP_STEP_BIAS_SUB(V, I)                                                   \
    BP_ST(V, row + j, (BP_LD(V, row + j) + BP_LD(V, bias + j)) - vmax);
#define BP_STEP_DIV(V, I) BP_ST(V, row + j, BP_LD(V, row + j) / total);
/* d_ = the delta at pd, with ReLU's derivative applied (and stored) if RELU */
#define BP_DELTA_AT(V, I, RELU, pa, pd)                                          \
    V d_ = BP_LD(V, pd);                                                         \
    if (RELU) {                                                                  \
        d_ = BP_KEEP_OF(V, I, BP_LD(V, pa), d_);                                 \
        BP_ST(V, pd, d_);                                                        \
    }
#define BP_STEP_COLSUM(V, I, RELU)                                               \
    {                                                                            \
        ptrdiff_t i_ = 1;                                                        \
        V acc_;                                                                  \
        if (cacc) {                                                              \
            acc_ = BP_LD(V, colsum + j);                                         \
            i_ = 0;                                                              \
        } else {                                                                 \
            BP_DELTA_AT(V, I, RELU, ca + j, cd + j)                              \
            acc_ = d_;                                                           \
        }                                                                        \
        for (; i_ < nr; i_++) {                                                  \
            BP_DELTA_AT(V, I, RELU, ca + i_ * lda + j, cd + i_ * ldd + j)        \
            acc_ = acc_ + d_;                                                    \
        }                                                                        \
        BP_ST(V, colsum + j, acc_);                                              \
    }
/* Row by row (wide layers): the row's part of the sums added in place. */
#define BP_STEP_ROWSUM(V, I, RELU)                                               \
    {                                                                            \
        BP_DELTA_AT(V, I, RELU, ar + j, dr + j)                                  \
        if (first)                                                               \
            BP_ST(V, colsum + j, d_);                                            \
        else                                                                     \
            BP_ST(V, colsum + j, BP_LD(V, colsum + j) + d_);                     \
    }
#define BP_STEP_RELU_DELTA(V, I)                                                 \
    {                                                                            \
        BP_DELTA_AT(V, I, 1, ar + j, dr + j)                                     \
        (void)d_;                                                                \
    }
#define BP_STEP_SUM_DELTA(V, I) BP_STEP_COLSUM(V, I, 0)
#define BP_STEP_RELU_BACK(V, I) BP_STEP_COLSUM(V, I, 1)
#define BP_STEP_ROW_SUM_DELTA(V, I) BP_STEP_ROWSUM(V, I, 0)
#define BP_STEP_ROW_RELU_BACK(V, I) BP_STEP_ROWSUM(V, I, 1)

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
            /* The maximum from row + bias before anything is stored: read \
               back right after the vector stores, the row stalled on store \
               forwarding. */                                                \
            T vmax = row[0] + bias[0];                                           \
            for (j = 1; j < cols; j++) {                                         \
                T v = row[j] + bias[j];                                          \
                vmax = v > vmax ? v : vmax;                                      \
            }                                                                    \
            j = 0;                                                               \
            BP_STEPS_##SUF(j, cols, BP_STEP_BIAS_SUB)                            \
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
            j = 0;                                                               \
            BP_STEPS_##SUF(j, cols, BP_STEP_DIV)                                 \
        }                                                                        \
        return;                                                                  \
    }                                                                            \
    for (i = 0; i < rows; i++) {                                                 \
        T* row = z + i * ldz;                                                    \
        T* zr = zsave != NULL ? zsave + i * cols : NULL;                         \
        switch (code) {                                                          \
        case BP_IDENTITY:                                                        \
            j = 0;                                                               \
            BP_STEPS_##SUF(j, cols, BP_STEP_BIAS)                                \
            break;                                                               \
        case BP_RELU:  /* v < 0 keeps NaN as NaN, as np.maximum(v, 0) */         \
            j = 0;                                                               \
            BP_STEPS_##SUF(j, cols, BP_STEP_BIAS_RELU)                           \
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
    if (colsum != NULL && rows > 0 && cols > 0                                   \
        && (code == BP_RELU || code == BP_IDENTITY)) {                           \
        /* The hidden ReLU layers and the output bias: mask and sum in one \
           pass. Rows of up to 512 bytes go down each column block with its \
           sum in a register, over chunks of rows that stay in L1 (16 KB of \
           each matrix); wider rows go row by row, as column blocks 1-2 KB  \
           apart in memory conflicted in L1 (256 float32 / 128 rows: 2.0 vs \
           1.7 us; float64 4.0 vs 2.6 us). */                                 \
        ptrdiff_t r0, nr, chunk;                                                 \
        if ((size_t)cols * sizeof(T) > 512) {                                    \
            for (i = 0; i < rows; i++) {                                         \
                const T* ar = a + i * lda;                                       \
                T* dr = delta + i * ldd;                                         \
                int first = i == 0 && !accumulate;                               \
                j = 0;                                                           \
                if (code == BP_RELU) {                                           \
                    BP_STEPS_##SUF(j, cols, BP_STEP_ROW_RELU_BACK)               \
                } else {                                                         \
                    BP_STEPS_##SUF(j, cols, BP_STEP_ROW_SUM_DELTA)               \
                }                                                                \
            }                                                                    \
            return;                                                              \
        }                                                                        \
        chunk = (ptrdiff_t)(16384 / ((size_t)cols * sizeof(T)));                 \
        for (r0 = 0; r0 < rows; r0 += chunk) {                                   \
            const T* ca = a + r0 * lda;                                          \
            T* cd = delta + r0 * ldd;                                            \
            int cacc = accumulate || r0 > 0;                                     \
            nr = rows - r0 < chunk ? rows - r0 : chunk;                          \
            j = 0;                                                               \
            if (code == BP_RELU) {                                               \
                BP_STEPS_##SUF(j, cols, BP_STEP_RELU_BACK)                       \
            } else {                                                             \
                BP_STEPS_##SUF(j, cols, BP_STEP_SUM_DELTA)                       \
            }                                                                    \
        }                                                                        \
        return;                                                                  \
    }                                                                            \
    if (colsum != NULL && !accumulate)                                           \
        for (j = 0; j < cols; j++) colsum[j] = 0;                                \
    for (i = 0; i < rows; i++) {                                                 \
        const T* ar = a + i * lda;                                               \
        T* dr = delta + i * ldd;                                                 \
        const T* zr = z != NULL ? z + i * cols : NULL;                           \
        switch (code) {                                                          \
        case BP_RELU:                                                            \
            j = 0;                                                               \
            BP_STEPS_##SUF(j, cols, BP_STEP_RELU_DELTA)                          \
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
