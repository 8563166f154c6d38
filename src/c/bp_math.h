/* Scalar math the compiler can vectorize (header only, static inline). */
#ifndef BP_MATH_H
#define BP_MATH_H
#define _USE_MATH_DEFINES
#include <math.h>
#include <stdint.h>
#include <string.h>
#ifndef M_SQRT1_2
#define M_SQRT1_2 0.70710678118654752440
#endif
#ifndef M_2_SQRTPI
#define M_2_SQRTPI 1.12837916709551257390
#endif
#ifndef M_LN2
#define M_LN2 0.69314718055994530942
#endif
/* exp that the compiler can vectorize (libm's exp is an opaque call).
   exp(x) = 2^k * exp(r), k = round(x / ln 2), r = x - k ln 2 (Cody-Waite,
   two constants), exp(r) by its Taylor series on |r| <= ln(2)/2
   (degree 13 for double: truncation < 5e-18; degree 7 for float:
   < 6e-9). k is rounded by the 1.5 * 2^52 shifter, whose low mantissa
   bits then hold k; 2^k is applied as two halves, 2^k1 * 2^k2, so that
   every scale factor is a normal number and overflow to inf and gradual
   underflow happen in the final IEEE multiplications, as for libm.
   Accuracy: within 1-2 ulp of libm. NaN propagates. */
#include <stdint.h>
#include <string.h>
static inline double bp_pow2_d(double t) {
    uint64_t b; double r;
    memcpy(&b, &t, 8);
    b = (b + 1023u) << 52;
    memcpy(&r, &b, 8);
    return r;
}
static inline double bp_exp_d(double x) {
    const double shifter = 6755399441055744.0;  /* 1.5 * 2^52 */
    double xc = x > 709.79 ? 709.79 : x;
    xc = xc < -745.2 ? -745.2 : xc;
    double kf = (xc * 1.4426950408889634 + shifter) - shifter;
    double r = (xc - kf * 6.93147180369123816490e-01) - kf * 1.90821492927058770002e-10;
    double p = 1.0 / 6227020800.0;
    p = p * r + 1.0 / 479001600.0;
    p = p * r + 1.0 / 39916800.0;
    p = p * r + 1.0 / 3628800.0;
    p = p * r + 1.0 / 362880.0;
    p = p * r + 1.0 / 40320.0;
    p = p * r + 1.0 / 5040.0;
    p = p * r + 1.0 / 720.0;
    p = p * r + 1.0 / 120.0;
    p = p * r + 1.0 / 24.0;
    p = p * r + 1.0 / 6.0;
    p = p * r + 0.5;
    p = p * r + 1.0;
    p = p * r + 1.0;
    double t1 = kf * 0.5 + shifter;
    double kf1 = t1 - shifter;
    double t2 = (kf - kf1) + shifter;
    double res = (p * bp_pow2_d(t1)) * bp_pow2_d(t2);
    res = x > 709.79 ? HUGE_VAL : res;
    res = x < -745.2 ? 0.0 : res;
    return res;
}
static inline float bp_pow2_f(float t) {
    uint32_t b; float r;
    memcpy(&b, &t, 4);
    b = (b + 127u) << 23;
    memcpy(&r, &b, 4);
    return r;
}
static inline float bp_exp_f(float x) {
    const float shifter = 12582912.0f;  /* 1.5 * 2^23 */
    float xc = x > 88.73f ? 88.73f : x;
    xc = xc < -103.98f ? -103.98f : xc;
    float kf = (xc * 1.44269504f + shifter) - shifter;
    float r = (xc - kf * 0.693145752f) - kf * 1.42860677e-06f;
    float p = 1.0f / 5040.0f;
    p = p * r + 1.0f / 720.0f;
    p = p * r + 1.0f / 120.0f;
    p = p * r + 1.0f / 24.0f;
    p = p * r + 1.0f / 6.0f;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    float t1 = kf * 0.5f + shifter;
    float kf1 = t1 - shifter;
    float t2 = (kf - kf1) + shifter;
    float res = (p * bp_pow2_f(t1)) * bp_pow2_f(t2);
    res = x > 88.73f ? HUGE_VALF : res;
    res = x < -103.98f ? 0.0f : res;
    return res;
}

#endif /* BP_MATH_H */
