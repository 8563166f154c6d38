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

/* The toolbox optimizers: Adam's paper form with decoupled decay and optional
   AMSGrad (vmax NULL: none), NAdam, Rprop. */
double bp_adamw_d(double* th, const double* g, double* m, double* v, double* vmax,
                  ptrdiff_t s, ptrdiff_t e, double b1, double b2, double c1, double c2,
                  double eps, double step, double inv_sqrt_bc2, double decay, double l2,
                  double inv);
double bp_adamw_f(float* th, const float* g, float* m, float* v, float* vmax,
                  ptrdiff_t s, ptrdiff_t e, float b1, float b2, float c1, float c2,
                  float eps, float step, float inv_sqrt_bc2, float decay, float l2,
                  float inv);
double bp_nadam_d(double* th, const double* g, double* m, double* v, ptrdiff_t s,
                  ptrdiff_t e, double b1, double b2, double c1, double c2, double eps,
                  double inv_bc2, double cg, double cm, double l2, double inv);
double bp_nadam_f(float* th, const float* g, float* m, float* v, ptrdiff_t s,
                  ptrdiff_t e, float b1, float b2, float c1, float c2, float eps,
                  float inv_bc2, float cg, float cm, float l2, float inv);
double bp_rprop_d(double* th, const double* g, double* prev, double* size, ptrdiff_t s,
                  ptrdiff_t e, double eta_minus, double eta_plus, double smin, double smax,
                  int first, double lr0, double l2, double inv);
double bp_rprop_f(float* th, const float* g, float* prev, float* size, ptrdiff_t s,
                  ptrdiff_t e, float eta_minus, float eta_plus, float smin, float smax,
                  int first, float lr0, float l2, float inv);

#endif /* BP_UPDATES_H */
