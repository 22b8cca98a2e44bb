/* One seeded, counter-based random source for everything in tp.
 *
 * Every random number is a pure function of (seed, stream, index): the
 * splitmix64 finaliser applied to seed*K1 + stream*K2 + index (mod 2^64).
 * Results therefore do not depend on thread count, batch grouping or launch
 * shape, a resumed run only needs its counters, and the PyTorch reference
 * scripts can reproduce the same numbers (tests/reference/tp_rng.py). */
#ifndef TP_RNG_H
#define TP_RNG_H

#include <stdint.h>

/* Streams: one per purpose, so that e.g. changing dropout does not shift masking. */
enum {
    TP_STREAM_INIT = 1,       /* parameter initialisation: stream TP_STREAM_INIT + fnv1a64(name), index = element */
    TP_STREAM_DATA_ORDER = 2, /* shuffling of dataset instances per epoch */
    TP_STREAM_MASKING = 3,    /* dynamic MLM masking */
    TP_STREAM_DROPOUT = 4,    /* dropout masks */
    TP_STREAM_PREPROCESS = 5, /* tp-preprocess: pairing, static masking */
    TP_STREAM_SPECAUGMENT = 6, /* SpecAugment time and frequency masks (core/audio.h) */
    TP_STREAM_SAMPLING = 7,   /* tp-generate's token draws (core/generate.h) */
    TP_STREAM_IMAGE_MISMATCH = 8, /* ViLT's mismatched image-text pairs (core/preprocess_clip.h) */
    TP_STREAM_IMAGE_AUGMENT = 9, /* image_preprocess's crops and flips (core/image_augment.h) */
};

#define TP_RNG_K1 0x9E3779B97F4A7C15ull
#define TP_RNG_K2 0xD1B54A32D192ED03ull

static inline uint64_t tp_mix64(uint64_t z)
{
    z ^= z >> 30;
    z *= 0xBF58476D1CE4E5B9ull;
    z ^= z >> 27;
    z *= 0x94D049BB133111EBull;
    z ^= z >> 31;
    return z;
}

static inline uint64_t tp_hash3(uint64_t seed, uint64_t stream, uint64_t index)
{
    return tp_mix64(seed * TP_RNG_K1 + stream * TP_RNG_K2 + index);
}

/* Uniform in [0, 1) with 24 random bits: exactly representable as float.  The bits go through
 * int32 because AVX2 converts int32 to float but not 64-bit integers: this way GCC vectorises
 * the dropout loops (the value is the same). */
static inline float tp_uniform(uint64_t seed, uint64_t stream, uint64_t index)
{
    return (float)(int32_t)(tp_hash3(seed, stream, index) >> 40) * (1.0f / 16777216.0f);
}

/* Standard normal by Box-Muller from the uniforms at 2*index and 2*index+1. */
float tp_normal(uint64_t seed, uint64_t stream, uint64_t index);

/* FNV-1a 64 of a string: turns a parameter name into a stream number. */
uint64_t tp_fnv1a64(const char *s);

/* Sequential generator over one stream: counter is all the state (saved in checkpoints). */
typedef struct tp_rng {
    uint64_t seed;
    uint64_t stream;
    uint64_t counter;
} tp_rng;

static inline tp_rng tp_rng_make(uint64_t seed, uint64_t stream, uint64_t start)
{
    tp_rng rng = {seed, stream, start};
    return rng;
}
static inline uint64_t tp_rng_next(tp_rng *rng) { return tp_hash3(rng->seed, rng->stream, rng->counter++); }
/* Uniform double in [0, 1) with 53 bits. */
static inline double tp_rng_uniform(tp_rng *rng) { return (double)(tp_rng_next(rng) >> 11) * 0x1.0p-53; }
/* Uniform integer in [0, bound) (bound > 0), without modulo bias. */
uint64_t tp_rng_below(tp_rng *rng, uint64_t bound);
/* Fisher-Yates shuffle of n int64 values. */
void tp_rng_shuffle_i64(tp_rng *rng, int64_t *values, int64_t n);

#endif
