/* Optimizer updates over a range [s, e) of the flat parameter buffer,
   compiled per vector width (bp_updates.c). Each finishes the raw gradient
   sum on the fly, g' = (g + l2 * theta) * inv, and returns sum(theta**2)
   over the range before the update (the L2 term of the loss). */
#ifndef BP_UPDATES_H
#define BP_UPDATES_H
#include <stddef.h>

double bp_adam_d(double* th, const double* g, double* m, double* v, ptrdiff_t s,
                 ptrdiff_t e, double b1, double b2, double c1, double c2, double eps,
                 double step, double inv_sqrt_bc2, int paper, double l2, double inv);
double bp_adam_f(float* th, const float* g, float* m, float* v, ptrdiff_t s,
                 ptrdiff_t e, float b1, float b2, float c1, float c2, float eps,
                 float step, float inv_sqrt_bc2, int paper, float l2, float inv);
double bp_rmsprop_d(double* th, const double* g, double* v, ptrdiff_t s, ptrdiff_t e,
                    double rho, double c, double lr, double eps, double l2, double inv);
double bp_rmsprop_f(float* th, const float* g, float* v, ptrdiff_t s, ptrdiff_t e,
                    float rho, float c, float lr, float eps, float l2, float inv);

#endif /* BP_UPDATES_H */
