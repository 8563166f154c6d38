/* The input scan (bp_scan.h).

   ``np.isfinite(X).all()`` allocates a bool array the size of X and makes
   two passes; ``train`` called in a loop scans X and Y on every call (the
   data may have been changed in place since the last one), so the scan is
   one allocation-free pass, by blocks. The test is two ordered comparisons
   per entry (NaN fails both), vectorized per target clone; the caller finds
   and reports the offending entry the slow way. */
#include "bp_scan.h"
#include "bp_platform.h"
#include <float.h>
#include <math.h>

BP_CLONES int bp_in_range_d(const double* x, ptrdiff_t n, double lo, double hi) {
    int ok = 1;
    for (ptrdiff_t i = 0; i < n; i++)
        ok &= (x[i] >= lo) & (x[i] <= hi);
    return ok;
}

BP_CLONES int bp_in_range_f(const float* x, ptrdiff_t n, float lo, float hi) {
    int ok = 1;
    for (ptrdiff_t i = 0; i < n; i++)
        ok &= (x[i] >= lo) & (x[i] <= hi);
    return ok;
}

/* Finiteness alone, float64: one comparison per entry (NaN fails it); W5's
   X scanned in ~4 us against ~6 us by two. (float32 measured no better this
   way: it takes the two comparisons.) */
BP_CLONES int bp_finite_d(const double* x, ptrdiff_t n) {
    int ok = 1;
    for (ptrdiff_t i = 0; i < n; i++)
        ok &= fabs(x[i]) <= DBL_MAX;
    return ok;
}
