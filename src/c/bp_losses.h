/* Losses of a block of rows (bp_losses.c). */
#ifndef BP_LOSSES_H
#define BP_LOSSES_H
#include <stddef.h>

/* Unweighted log loss over n entries: delta = p - y; returns -sum(y log clip(p)). */
double bp_log_loss_d(const double* p, const double* y, double* delta, ptrdiff_t n);
double bp_log_loss_f(const float* p, const float* y, float* delta, ptrdiff_t n);

#endif /* BP_LOSSES_H */
