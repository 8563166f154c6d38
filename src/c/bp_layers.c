/* Batch normalization and dropout passes (see bp_elementwise.h). Neither is
   on the path of a plain network, so they favour clarity: statistics in
   double, one pass per quantity. With sample weights w (NULL: none) the
   statistics are weighted, see bp_elementwise.h. */
#include "bp_elementwise.h"
#include "bp_platform.h"
#include <math.h>
#include <string.h>

#define BP_DEFINE_BN(T, SUF)                                                     \
BP_CLONES void bp_col_sums_##SUF(const T* z, const T* w, ptrdiff_t rows, ptrdiff_t cols, \
                                 double* sum) {                                  \
    ptrdiff_t i, j;                                                              \
    if (w == NULL) {                                                             \
        for (i = 0; i < rows; i++)                                               \
            for (j = 0; j < cols; j++) sum[j] += (double)z[i * cols + j];        \
        return;                                                                  \
    }                                                                            \
    for (i = 0; i < rows; i++) {                                                 \
        double wi = (double)w[i];                                                \
        for (j = 0; j < cols; j++) sum[j] += wi * (double)z[i * cols + j];       \
    }                                                                            \
}                                                                                \
BP_CLONES void bp_col_sqdev_##SUF(const T* z, const T* w, ptrdiff_t rows, ptrdiff_t cols, \
                        const double* mean, double* sq) {                        \
    ptrdiff_t i, j;                                                              \
    if (w == NULL) {                                                             \
        for (i = 0; i < rows; i++)                                               \
            for (j = 0; j < cols; j++) {                                         \
                double d = (double)z[i * cols + j] - mean[j];                    \
                sq[j] += d * d;                                                  \
            }                                                                    \
        return;                                                                  \
    }                                                                            \
    for (i = 0; i < rows; i++) {                                                 \
        double wi = (double)w[i];                                                \
        for (j = 0; j < cols; j++) {                                             \
            double d = (double)z[i * cols + j] - mean[j];                        \
            sq[j] += wi * (d * d);                                               \
        }                                                                        \
    }                                                                            \
}                                                                                \
BP_CLONES void bp_bn_norm_##SUF(T* z, T* xhat, ptrdiff_t rows, ptrdiff_t cols,  \
                      const double* mean, const double* istd, const T* gamma) {  \
    ptrdiff_t i, j;                                                              \
    for (i = 0; i < rows; i++) {                                                 \
        T* zr = z + i * cols;                                                    \
        if (xhat != NULL) {                                                      \
            T* xr = xhat + i * cols;                                             \
            for (j = 0; j < cols; j++) {                                         \
                T xh = (zr[j] - (T)mean[j]) * (T)istd[j];                        \
                xr[j] = xh;                                                      \
                zr[j] = xh * gamma[j];                                           \
            }                                                                    \
        } else {                                                                 \
            for (j = 0; j < cols; j++)                                           \
                zr[j] = ((zr[j] - (T)mean[j]) * (T)istd[j]) * gamma[j];          \
        }                                                                        \
    }                                                                            \
}                                                                                \
BP_CLONES void bp_bn_back_sums_##SUF(const T* d, const T* xhat, ptrdiff_t rows,           \
                           ptrdiff_t cols, double* sum_d, double* sum_dx) {      \
    ptrdiff_t i, j;                                                              \
    for (i = 0; i < rows; i++)                                                   \
        for (j = 0; j < cols; j++) {                                             \
            double dv = (double)d[i * cols + j];                                 \
            sum_d[j] += dv;                                                      \
            sum_dx[j] += dv * (double)xhat[i * cols + j];                        \
        }                                                                        \
}                                                                                \
BP_CLONES void bp_bn_back_##SUF(T* d, const T* xhat, const T* w, ptrdiff_t rows,  \
                      ptrdiff_t cols, const double* mean_d, const double* mean_dx, \
                      const double* istd, const T* gamma) {                      \
    ptrdiff_t i, j;                                                              \
    if (w == NULL) {                                                             \
        for (i = 0; i < rows; i++)                                               \
            for (j = 0; j < cols; j++) {                                         \
                T v = d[i * cols + j] - (T)mean_d[j] - xhat[i * cols + j] * (T)mean_dx[j]; \
                d[i * cols + j] = v * (T)istd[j] * gamma[j];                     \
            }                                                                    \
        return;                                                                  \
    }                                                                            \
    for (i = 0; i < rows; i++) {                                                 \
        T wi = w[i];                                                             \
        for (j = 0; j < cols; j++) {                                             \
            T v = d[i * cols + j]                                                \
                  - wi * ((T)mean_d[j] + xhat[i * cols + j] * (T)mean_dx[j]);    \
            d[i * cols + j] = v * (T)istd[j] * gamma[j];                         \
        }                                                                        \
    }                                                                            \
}
BP_DEFINE_BN(double, d)
BP_DEFINE_BN(float, f)

/* splitmix64's finalizer: a bijection of 64-bit integers whose output bits
   each depend on every input bit (Steele, Lea & Flood 2014). Chaining it
   over (seed, epoch, layer), then the sample, then the column gives a
   counter-based stream: the mask of any unit of any sample is computed
   from its coordinates alone, in any order, on any thread. */
static inline uint64_t bp_mix64(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

uint64_t bp_dropout_key(uint64_t seed, uint64_t epoch, uint64_t layer) {
    return bp_mix64(bp_mix64(bp_mix64(seed ^ 0x5851f42d4c957f2dULL) ^ epoch) ^ layer);
}

/* u in [0, 1) from the top 53 bits; the unit is kept when u >= p, so
   P(keep) = 1 - p up to 2^-53. u = k 2^-53 exactly (k = h >> 11), so the
   test is the integer k >= ceil(p 2^53): the same decision, and a loop the
   vector-width clones vectorize (10% of a W6 epoch as a scalar loop). */
#define BP_DEFINE_DROPOUT(T, SUF)                                                \
BP_CLONES_INT64 void bp_dropout_##SUF(const T* src, T* dst, ptrdiff_t rows,           \
                      ptrdiff_t cols, ptrdiff_t col0, const ptrdiff_t* ids, ptrdiff_t first, \
                      const uint64_t* keys, uint64_t key, double p, T* mult) {   \
    const T scale = (T)1 / (T)(1.0 - p);                                         \
    const uint64_t thr = (uint64_t)ceil(p * 0x1.0p53);                           \
    ptrdiff_t i, j;                                                              \
    for (i = 0; i < rows; i++) {                                                 \
        ptrdiff_t s = ids != NULL ? ids[i] : first + i;                          \
        uint64_t sample = keys != NULL ? keys[s] : (uint64_t)s;                  \
        uint64_t rk = bp_mix64(key ^ (sample * 0x9e3779b97f4a7c15ULL));          \
        const T* sr = src + i * cols;                                            \
        T* dr = dst + i * cols;                                                  \
        T* mr = mult + i * cols;                                                 \
        for (j = 0; j < cols; j++) {                                             \
            uint64_t h = bp_mix64(rk + (uint64_t)(col0 + j + 1) * 0xd1b54a32d192ed03ULL); \
            T m = (h >> 11) >= thr ? scale : (T)0;                               \
            mr[j] = m;                                                           \
            dr[j] = m != (T)0 ? sr[j] * m : (T)0;                                \
        }                                                                        \
    }                                                                            \
}                                                                                \
BP_CLONES void bp_dropout_back_##SUF(T* d, const T* mult, ptrdiff_t n) {         \
    ptrdiff_t k;                                                                 \
    for (k = 0; k < n; k++) d[k] = mult[k] != (T)0 ? d[k] * mult[k] : (T)0;      \
}
BP_DEFINE_DROPOUT(double, d)
BP_DEFINE_DROPOUT(float, f)

/* The key of a row of X for its dropout masks: a hash of its content, so
   that copies of a row draw the same masks, as one row of weight w does
   (sample weight w = w copies, exactly). Each nonzero entry contributes
   mix(mix(bits of the value as a double) + (column + 1) * c); the row's key
   mixes their sum (mod 2^64). Zeros contribute nothing (-0.0 included) and
   the sum ignores order, so a dense row, its CSR form with or without
   explicit zeros, and its float32 and float64 copies (a float32 is
   widened exactly) share the key. */
static inline uint64_t bp_entry_hash(double v, uint64_t col) {
    uint64_t bits;
    memcpy(&bits, &v, sizeof bits);
    return bp_mix64(bp_mix64(bits) + (col + 1) * 0xd1b54a32d192ed03ULL);
}

#define BP_DEFINE_ROW_KEY(T, SUF)                                                \
BP_CLONES_INT64 uint64_t bp_row_key_##SUF(const T* v, const ptrdiff_t* cols,     \
                                          ptrdiff_t n) {                         \
    uint64_t sum = 0;                                                            \
    ptrdiff_t k;                                                                 \
    if (cols == NULL) {                                                          \
        for (k = 0; k < n; k++)                                                  \
            sum += v[k] != (T)0 ? bp_entry_hash((double)v[k], (uint64_t)k) : 0;  \
    } else {                                                                     \
        for (k = 0; k < n; k++)                                                  \
            sum += v[k] != (T)0 ? bp_entry_hash((double)v[k], (uint64_t)cols[k]) \
                                : 0;                                             \
    }                                                                            \
    return bp_mix64(sum);                                                        \
}
BP_DEFINE_ROW_KEY(double, d)
BP_DEFINE_ROW_KEY(float, f)
