#include "support/check.h"

#include <math.h>

int tp_test_passed, tp_test_failed;

int tp_close(double actual, double expected, double tol, double floor)
{
    double scale = fabs(expected) > floor ? fabs(expected) : floor;
    return fabs(actual - expected) <= tol * scale;
}

double tp_max_normalised_error(const float *actual, const float *expected, long n)
{
    double scale = 1e-30, worst = 0;
    for (long i = 0; i < n; i++)
        if (fabs(expected[i]) > scale) scale = fabs(expected[i]);
    for (long i = 0; i < n; i++) {
        double err = fabs((double)actual[i] - expected[i]);
        if (!(err <= worst)) worst = err; /* NaN propagates */
    }
    return worst / scale;
}

void tp_check_normalised(const char *what, const float *actual, const float *expected, long n, double tolerance)
{
    double err = tp_max_normalised_error(actual, expected, n);
    CHECK_MSG(err <= tolerance, "%s: normalised error %.3g", what, err);
    fprintf(stderr, "  %-58s normalised error %.2g\n", what, err);
}

int tp_test_finish(const char *name)
{
    printf("%s: %d passed, %d failed\n", name, tp_test_passed, tp_test_failed);
    return tp_test_failed ? 1 : 0;
}
