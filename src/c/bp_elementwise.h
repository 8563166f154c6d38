/* Element-wise passes of the layer walk (bp_elementwise.c, bp_layers.c). */
#ifndef BP_ELEMENTWISE_H
#define BP_ELEMENTWISE_H
#include <stddef.h>
#include <stdint.h>

/* z = f(z + bias) in place; with zsave (rows x cols, contiguous) also keeps
   z + bias for the activations whose derivative needs it. */
void bp_bias_act_d(int code, double* z, ptrdiff_t ldz, const double* bias,
                   ptrdiff_t rows, ptrdiff_t cols, double slope, double ealpha,
                   double* zsave);
void bp_bias_act_f(int code, float* z, ptrdiff_t ldz, const float* bias,
                   ptrdiff_t rows, ptrdiff_t cols, float slope, float ealpha,
                   float* zsave);
/* delta *= f'(.) in place, from the output a (or the saved z); with colsum
   also colsum (+)= delta.sum(axis=0). */
void bp_act_back_d(int code, const double* a, ptrdiff_t lda, const double* z,
                   double* delta, ptrdiff_t ldd, ptrdiff_t rows, ptrdiff_t cols,
                   double slope, double ealpha, double* colsum, int accumulate);
void bp_act_back_f(int code, const float* a, ptrdiff_t lda, const float* z,
                   float* delta, ptrdiff_t ldd, ptrdiff_t rows, ptrdiff_t cols,
                   float slope, float ealpha, float* colsum, int accumulate);

/* Batch normalization over the rows of a (rows x cols) block. Column sums
   are accumulated in double and ADDED to the outputs (threads add their
   partial sums; the caller zeroes). With sample weights w (NULL: none)
   each row counts w[i] times: sum += w z, sq += w (z - mean)^2. */
void bp_col_sums_d(const double* z, const double* w, ptrdiff_t rows, ptrdiff_t cols,
                   double* sum);
void bp_col_sums_f(const float* z, const float* w, ptrdiff_t rows, ptrdiff_t cols,
                   double* sum);
void bp_col_sqdev_d(const double* z, const double* w, ptrdiff_t rows, ptrdiff_t cols,
                    const double* mean, double* sq);
void bp_col_sqdev_f(const float* z, const float* w, ptrdiff_t rows, ptrdiff_t cols,
                    const double* mean, double* sq);
/* xhat = (z - mean) * istd (kept in xhat, or not when xhat is NULL);
   z = xhat * gamma. */
void bp_bn_norm_d(double* z, double* xhat, ptrdiff_t rows, ptrdiff_t cols,
                  const double* mean, const double* istd, const double* gamma);
void bp_bn_norm_f(float* z, float* xhat, ptrdiff_t rows, ptrdiff_t cols,
                  const double* mean, const double* istd, const float* gamma);
/* sum_d += delta.sum(0), sum_dx += (delta * xhat).sum(0) */
void bp_bn_back_sums_d(const double* d, const double* xhat, ptrdiff_t rows,
                       ptrdiff_t cols, double* sum_d, double* sum_dx);
void bp_bn_back_sums_f(const float* d, const float* xhat, ptrdiff_t rows,
                       ptrdiff_t cols, double* sum_d, double* sum_dx);
/* delta = (delta - mean_d - xhat * mean_dx) * istd * gamma (torch's order);
   with sample weights w (NULL: none)
   delta = (delta - w * (mean_d + xhat * mean_dx)) * istd * gamma. */
void bp_bn_back_d(double* d, const double* xhat, const double* w, ptrdiff_t rows,
                  ptrdiff_t cols, const double* mean_d, const double* mean_dx,
                  const double* istd, const double* gamma);
void bp_bn_back_f(float* d, const float* xhat, const float* w, ptrdiff_t rows,
                  ptrdiff_t cols, const double* mean_d, const double* mean_dx,
                  const double* istd, const float* gamma);

/* Inverted dropout: dst = keep ? src * (1 / (1 - p)) : 0, element by element
   (dst may be src). Row i is row s = ids[i] of X (first + i when ids is
   NULL), whose sample is keys[s] (bp_row_key); keep is a pure function of
   (key, sample, column), see bp_dropout_key; the columns are col0 .. col0 +
   cols - 1 of the layer (a thread of the hidden-unit split draws its block
   of units with the whole layer's masks). Every driver that draws masks
   passes keys (train_epoch refuses data without them, loss_grad computes
   them); NULL falls back to s itself, so that a new driver that forgot them
   draws index-keyed masks instead of reading through NULL.
   It also stores each unit's multiplier, 1 / (1 - p) or 0, in mult (rows x
   cols, packed) for the backward pass: bp_dropout_back applies the same
   mask to a delta without recomputing the hash (d = mult ? d * mult : 0). */
uint64_t bp_dropout_key(uint64_t seed, uint64_t epoch, uint64_t layer);
void bp_dropout_d(const double* src, double* dst, ptrdiff_t rows, ptrdiff_t cols,
                  ptrdiff_t col0, const ptrdiff_t* ids, ptrdiff_t first, const uint64_t* keys,
                  uint64_t key, double p, double* mult);
void bp_dropout_f(const float* src, float* dst, ptrdiff_t rows, ptrdiff_t cols,
                  ptrdiff_t col0, const ptrdiff_t* ids, ptrdiff_t first, const uint64_t* keys,
                  uint64_t key, double p, float* mult);
void bp_dropout_back_d(double* d, const double* mult, ptrdiff_t n);
void bp_dropout_back_f(float* d, const float* mult, ptrdiff_t n);
/* The dropout key of a row of n entries: values v, columns cols (NULL:
   0..n-1, a dense row; else distinct columns, as canonical CSR has). A hash
   of the nonzero (column, value) pairs, in the caller's floating-point
   mode (row_keys calls it in the kernels' FTZ/DAZ mode). */
uint64_t bp_row_key_d(const double* v, const ptrdiff_t* cols, ptrdiff_t n);
uint64_t bp_row_key_f(const float* v, const ptrdiff_t* cols, ptrdiff_t n);

#endif /* BP_ELEMENTWISE_H */
