/* The input scan: every entry finite and within bounds, without allocating
   (bp_scan.c; all_in_range in src/kernels/inputs.pxi runs it by blocks). */
#ifndef BP_SCAN_H
#define BP_SCAN_H
#include <stddef.h>

/* all_in_range scans this many entries at a time and stops at the first
   block that fails. */
#define BP_SCAN_BLOCK 4096

/* 1 if every x[i] satisfies lo <= x[i] <= hi (NaN fails both), else 0. */
int bp_in_range_d(const double* x, ptrdiff_t n, double lo, double hi);
int bp_in_range_f(const float* x, ptrdiff_t n, float lo, float hi);
/* 1 if every x[i] is finite, else 0 (float64). */
int bp_finite_d(const double* x, ptrdiff_t n);

#endif
