#include "core/optim.h"

#include <inttypes.h>
#include <math.h>
#include <omp.h>

#include "core/error.h"

tp_adamw_options tp_adamw_defaults(void)
{
    return (tp_adamw_options){.beta1 = 0.9, .beta2 = 0.999, .eps = 1e-6, .correct_bias = 0,
                              .variant = TP_ADAMW_TENCENTPRETRAIN};
}

int tp_adamw_options_check(const tp_adamw_options *opt)
{
    if (!(opt->beta1 >= 0.0 && opt->beta1 < 1.0))
        return tp_fail("adamw: beta1 %g must be in [0, 1)", opt->beta1);
    if (!(opt->beta2 >= 0.0 && opt->beta2 < 1.0))
        return tp_fail("adamw: beta2 %g must be in [0, 1)", opt->beta2);
    if (!(opt->eps >= 0.0))
        return tp_fail("adamw: eps %g must be >= 0", opt->eps);
    if (opt->variant != TP_ADAMW_TENCENTPRETRAIN && opt->variant != TP_ADAMW_TORCH)
        return tp_fail("adamw: unknown variant %d", (int)opt->variant);
    return 0;
}

int tp_param_segments_check(const tp_param_segment *segments, int64_t segment_count, int64_t buffer_floats)
{
    int64_t end_of_previous = 0;
    for (int64_t i = 0; i < segment_count; i++) {
        const tp_param_segment *s = &segments[i];
        if (s->offset < 0 || s->numel < 0 || s->numel > buffer_floats - s->offset)
            return tp_fail("parameter segment %" PRId64 ": offset %" PRId64 " + numel %" PRId64
                           " outside the buffer of %" PRId64 " floats", i, s->offset, s->numel, buffer_floats);
        if (s->offset < end_of_previous)
            return tp_fail("parameter segment %" PRId64 ": offset %" PRId64 " overlaps or precedes the previous "
                           "segment (which ends at %" PRId64 ")", i, s->offset, end_of_previous);
        if (!(s->weight_decay >= 0.0) || !(s->lr_scale >= 0.0))
            return tp_fail("parameter segment %" PRId64 ": weight_decay %g and lr_scale %g must be >= 0", i,
                           s->weight_decay, s->lr_scale);
        end_of_previous = s->offset + s->numel;
    }
    return 0;
}

/* ---- Parallel traversal of the trainable elements ----
 *
 * The non-frozen segments, concatenated, are cut into chunks of a size that depends only on
 * their total; each thread takes a contiguous run of chunks and walks the segments with a
 * cursor.  A visitor is called once per (segment, range) piece and returns a partial result;
 * partials are summed per chunk, then over chunks in order: the same bits for any thread count. */

enum { CHUNKS_MAX = 1024, CHUNK_MIN_FLOATS = 8192 };

/* Returns a partial result for elements [begin, end) of the flat buffers, all inside segment. */
typedef double (*piece_visitor)(const void *context, const tp_param_segment *segment, int64_t begin, int64_t end);

typedef struct segment_cursor {
    const tp_param_segment *segments;
    int64_t count;
    int64_t index; /* current segment */
    int64_t done;  /* elements of it already visited */
} segment_cursor;

static int is_trainable(const tp_param_segment *s) { return !s->frozen && s->numel > 0; }

static int64_t trainable_floats(const tp_param_segment *segments, int64_t segment_count)
{
    int64_t total = 0;
    for (int64_t i = 0; i < segment_count; i++)
        if (is_trainable(&segments[i])) total += segments[i].numel;
    return total;
}

/* A cursor at the position-th trainable element. */
static segment_cursor cursor_at(const tp_param_segment *segments, int64_t segment_count, int64_t position)
{
    segment_cursor cursor = {segments, segment_count, 0, 0};
    while (cursor.index < segment_count) {
        const tp_param_segment *s = &segments[cursor.index];
        if (is_trainable(s)) {
            if (position < s->numel) break;
            position -= s->numel;
        }
        cursor.index++;
    }
    cursor.done = position;
    return cursor;
}

/* Visits the next `count` trainable elements and advances the cursor past them. */
static double visit_next(segment_cursor *cursor, int64_t count, piece_visitor visit, const void *context)
{
    double sum = 0.0;
    while (count > 0 && cursor->index < cursor->count) {
        const tp_param_segment *s = &cursor->segments[cursor->index];
        if (!is_trainable(s)) {
            cursor->index++;
            continue;
        }
        int64_t take = s->numel - cursor->done < count ? s->numel - cursor->done : count;
        int64_t begin = s->offset + cursor->done;
        sum += visit(context, s, begin, begin + take);
        count -= take;
        cursor->done += take;
        if (cursor->done == s->numel) {
            cursor->index++;
            cursor->done = 0;
        }
    }
    return sum;
}

static double for_each_trainable_piece(const tp_param_segment *segments, int64_t segment_count, piece_visitor visit,
                                       const void *context)
{
    int64_t total = trainable_floats(segments, segment_count);
    if (total == 0) return 0.0;
    int64_t chunk = (total + CHUNKS_MAX - 1) / CHUNKS_MAX;
    if (chunk < CHUNK_MIN_FLOATS) chunk = CHUNK_MIN_FLOATS;
    int64_t chunks = (total + chunk - 1) / chunk;
    double partial[CHUNKS_MAX];

#pragma omp parallel if (chunks > 1)
    {
        int64_t threads = omp_get_num_threads(), thread = omp_get_thread_num();
        int64_t first = chunks * thread / threads, last = chunks * (thread + 1) / threads;
        segment_cursor cursor = cursor_at(segments, segment_count, first * chunk);
        for (int64_t c = first; c < last; c++) {
            int64_t count = c == chunks - 1 ? total - c * chunk : chunk;
            partial[c] = visit_next(&cursor, count, visit, context);
        }
    }
    double sum = 0.0;
    for (int64_t c = 0; c < chunks; c++) sum += partial[c];
    return sum;
}

/* ---- AdamW ---- */

typedef struct adamw_pass {
    const tp_adamw_options *opt;
    double lr;
    int64_t step;
    float *params;
    const float *grads;
    float *exp_avg, *exp_avg_sq;
} adamw_pass;

/* Float constants of one segment's update.  PyTorch converts each Python scalar to float at
 * the op that uses it, after computing it in double; so does this. */
typedef struct adamw_constants {
    float beta1, one_minus_beta1, beta2, one_minus_beta2, eps;
    float neg_step_size;  /* addcdiv value */
    float denom_divisor;  /* torch variant: sqrt(1 - beta2^t) */
    float decay_alpha;    /* TencentPretrain: p.add_(p, alpha=-lr*wd) */
    float decay_factor;   /* torch: p.mul_(1 - lr*wd) */
} adamw_constants;

static adamw_constants adamw_constants_for(const adamw_pass *pass, const tp_param_segment *segment)
{
    const tp_adamw_options *opt = pass->opt;
    double lr = pass->lr * segment->lr_scale;
    double correction1 = 1.0 - pow(opt->beta1, (double)pass->step);
    double correction2 = 1.0 - pow(opt->beta2, (double)pass->step);
    double step_size = lr;
    if (opt->variant == TP_ADAMW_TORCH)
        step_size = lr / correction1;
    else if (opt->correct_bias)
        step_size = lr * sqrt(correction2) / correction1;
    return (adamw_constants){
        .beta1 = (float)opt->beta1,
        .one_minus_beta1 = (float)(1.0 - opt->beta1),
        .beta2 = (float)opt->beta2,
        .one_minus_beta2 = (float)(1.0 - opt->beta2),
        .eps = (float)opt->eps,
        .neg_step_size = (float)-step_size,
        .denom_divisor = (float)sqrt(correction2),
        .decay_alpha = (float)(-lr * segment->weight_decay),
        .decay_factor = (float)(1.0 - lr * segment->weight_decay),
    };
}

/* The moment updates as PyTorch's CPU kernels compute exp_avg.mul_(b1).add_(g, alpha=1-b1) and
 * exp_avg_sq.mul_(b2).addcmul_(g, g, value=1-b2): both end in a fused multiply-add. */
static inline void update_moments(const adamw_constants *k, float g, float *m, float *v)
{
    *m = fmaf(g, k->one_minus_beta1, *m * k->beta1);
    *v = fmaf(k->one_minus_beta2 * g, g, *v * k->beta2);
}

static double adamw_tencentpretrain_piece(const void *context, const tp_param_segment *segment, int64_t begin,
                                          int64_t end)
{
    const adamw_pass *pass = context;
    const adamw_constants k = adamw_constants_for(pass, segment);
    float *restrict p = pass->params;
    float *restrict m = pass->exp_avg;
    float *restrict v = pass->exp_avg_sq;
    const float *restrict g = pass->grads;
    /* TencentPretrain skips the decay when weight_decay is 0; decay_alpha is then -0.0 and
     * fmaf(p, -0.0, p) == p for every finite p, so one branch-free loop serves both. */
#pragma omp simd
    for (int64_t i = begin; i < end; i++) {
        update_moments(&k, g[i], &m[i], &v[i]);
        float denom = sqrtf(v[i]) + k.eps;
        p[i] = p[i] + k.neg_step_size * m[i] / denom; /* addcdiv_: p + value * m / denom */
        p[i] = fmaf(p[i], k.decay_alpha, p[i]);        /* add_(p, alpha): applied to the updated p */
    }
    return 0.0;
}

static double adamw_torch_piece(const void *context, const tp_param_segment *segment, int64_t begin, int64_t end)
{
    const adamw_pass *pass = context;
    const adamw_constants k = adamw_constants_for(pass, segment);
    float *restrict p = pass->params;
    float *restrict m = pass->exp_avg;
    float *restrict v = pass->exp_avg_sq;
    const float *restrict g = pass->grads;
#pragma omp simd
    for (int64_t i = begin; i < end; i++) {
        p[i] = p[i] * k.decay_factor; /* decay before the update, on the old p */
        update_moments(&k, g[i], &m[i], &v[i]);
        float denom = sqrtf(v[i]) / k.denom_divisor + k.eps;
        p[i] = p[i] + k.neg_step_size * m[i] / denom;
    }
    return 0.0;
}

void tp_adamw_step(const tp_adamw_options *opt, double lr, int64_t step, float *params, const float *grads,
                   float *exp_avg, float *exp_avg_sq, const tp_param_segment *segments, int64_t segment_count)
{
    adamw_pass pass = {opt, lr, step, params, grads, exp_avg, exp_avg_sq};
    piece_visitor visit = opt->variant == TP_ADAMW_TORCH ? adamw_torch_piece : adamw_tencentpretrain_piece;
    for_each_trainable_piece(segments, segment_count, visit, &pass);
}

/* ---- Norm, clipping, finiteness ---- */

enum { SUM_LANES = 8 };

/* SUM_LANES independent accumulators in a fixed order: vectorisable and not bound by the
 * latency of one chain of additions, with the same result on every run. */
static double sum_of_squares_piece(const void *context, const tp_param_segment *segment, int64_t begin, int64_t end)
{
    const float *grads = context;
    double lanes[SUM_LANES] = {0.0};
    int64_t i = begin;
    for (; i + SUM_LANES <= end; i += SUM_LANES)
        for (int lane = 0; lane < SUM_LANES; lane++) lanes[lane] += (double)grads[i + lane] * grads[i + lane];
    double sum = 0.0;
    for (; i < end; i++) sum += (double)grads[i] * grads[i];
    for (int lane = 0; lane < SUM_LANES; lane++) sum += lanes[lane];
    return sum;
}

double tp_grad_global_norm(const float *grads, const tp_param_segment *segments, int64_t segment_count)
{
    return sqrt(for_each_trainable_piece(segments, segment_count, sum_of_squares_piece, grads));
}

typedef struct scale_pass {
    float *grads;
    float factor;
} scale_pass;

static double scale_piece(const void *context, const tp_param_segment *segment, int64_t begin, int64_t end)
{
    const scale_pass *pass = context;
    for (int64_t i = begin; i < end; i++) pass->grads[i] *= pass->factor;
    return 0.0;
}

double tp_clip_grad_norm(float *grads, const tp_param_segment *segments, int64_t segment_count, double max_norm)
{
    double norm = tp_grad_global_norm(grads, segments, segment_count);
    double coefficient = max_norm / (norm + 1e-6);
    if (isfinite(norm) && coefficient < 1.0) {
        scale_pass pass = {grads, (float)coefficient};
        for_each_trainable_piece(segments, segment_count, scale_piece, &pass);
    }
    return norm;
}

static double non_finite_piece(const void *context, const tp_param_segment *segment, int64_t begin, int64_t end)
{
    const float *grads = context;
    int64_t bad = 0;
    for (int64_t i = begin; i < end; i++) bad += !isfinite(grads[i]);
    return (double)bad;
}

int tp_grads_finite(const float *grads, const tp_param_segment *segments, int64_t segment_count)
{
    return for_each_trainable_piece(segments, segment_count, non_finite_piece, grads) == 0.0;
}
