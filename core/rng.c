#include "rng.h"

#include <math.h>

float tp_normal(uint64_t seed, uint64_t stream, uint64_t index)
{
    /* 1 - u keeps the logarithm's argument in (0, 1]. */
    double u1 = 1.0 - (double)tp_uniform(seed, stream, 2 * index);
    double u2 = (double)tp_uniform(seed, stream, 2 * index + 1);
    return (float)(sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2));
}

uint64_t tp_fnv1a64(const char *s)
{
    uint64_t hash = 0xcbf29ce484222325ull;
    for (; *s; s++) {
        hash ^= (unsigned char)*s;
        hash *= 0x100000001b3ull;
    }
    return hash;
}

uint64_t tp_rng_below(tp_rng *rng, uint64_t bound)
{
    /* Rejection sampling on the top of the range removes modulo bias. */
    uint64_t limit = UINT64_MAX - UINT64_MAX % bound;
    uint64_t draw;
    do {
        draw = tp_rng_next(rng);
    } while (draw >= limit);
    return draw % bound;
}

void tp_rng_shuffle_i64(tp_rng *rng, int64_t *values, int64_t n)
{
    for (int64_t i = n - 1; i > 0; i--) {
        int64_t j = (int64_t)tp_rng_below(rng, (uint64_t)i + 1);
        int64_t tmp = values[i];
        values[i] = values[j];
        values[j] = tmp;
    }
}
