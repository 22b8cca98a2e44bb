/* A tiny test harness: CHECK records failures with file:line and keeps going;
 * tp_test_finish() prints "N passed, N failed" and returns the exit status. */
#ifndef TP_TEST_CHECK_H
#define TP_TEST_CHECK_H

#include <stdio.h>

extern int tp_test_passed, tp_test_failed;

#define CHECK(cond)                                                                   \
    do {                                                                              \
        if (cond) {                                                                   \
            tp_test_passed++;                                                         \
        } else {                                                                      \
            tp_test_failed++;                                                         \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
        }                                                                             \
    } while (0)

#define CHECK_MSG(cond, ...)                                              \
    do {                                                                  \
        if (cond) {                                                       \
            tp_test_passed++;                                             \
        } else {                                                          \
            tp_test_failed++;                                             \
            fprintf(stderr, "%s:%d: check failed: %s: ", __FILE__, __LINE__, #cond); \
            fprintf(stderr, __VA_ARGS__);                                 \
            fputc('\n', stderr);                                          \
        }                                                                 \
    } while (0)

/* Relative closeness used by parity tests: |a-b| <= tol * max(|b|, floor). */
int tp_close(double actual, double expected, double tol, double floor);
/* Max over i of |a_i - b_i| / max(max_j |b_j|, tiny): error normalised by the reference's scale. */
double tp_max_normalised_error(const float *actual, const float *expected, long n);
/* CHECK that tp_max_normalised_error(actual, expected, n) <= tolerance, printing it after `what`. */
void tp_check_normalised(const char *what, const float *actual, const float *expected, long n, double tolerance);
int tp_test_finish(const char *name);

#endif
