// The optimizer entries (core/optim.h semantics) over the flat buffers.  The segment list stays on
// the host: trainable segments are packed SEGMENTS_PER_LAUNCH at a time into a kernel argument,
// with each segment's float constants computed on the host exactly as core/optim.c computes them.
// Each segment gets blocks in proportion to its size (a fixed 64 per segment left a 23M-element
// word embedding on 64 blocks: AdamW ran at a fifth of the memory bandwidth).  Reductions write one
// partial per block and one block adds them in a fixed order: deterministic for a given segment
// list (not the CPU's bits: another order).  Only the reductions' results are downloaded (the one
// host sync each).
#include <math.h>

#include "cuda/cuda_common.cuh"

enum { SEGMENTS_PER_LAUNCH = 32, BLOCK_ELEMENTS = TP_CUDA_THREADS * 8, MAX_SEGMENT_BLOCKS = 1024 };

// One segment's piece of a launch.  The constants mirror adamw_constants in core/optim.c.
struct segment_piece {
    int64_t offset, numel;
    int first_block, blocks; // this segment's blocks of the launch
    float beta1, one_minus_beta1, beta2, one_minus_beta2, eps;
    float neg_step_size, denom_divisor, decay_alpha, decay_factor;
};

struct segment_batch {
    segment_piece pieces[SEGMENTS_PER_LAUNCH];
    int count, blocks;
};

static void set_adamw_constants(segment_piece *k, const tp_adamw_options *opt, double base_lr, int64_t step,
                                const tp_param_segment *segment)
{
    double lr = base_lr * segment->lr_scale;
    double correction1 = 1.0 - pow(opt->beta1, (double)step);
    double correction2 = 1.0 - pow(opt->beta2, (double)step);
    double step_size = lr;
    if (opt->variant == TP_ADAMW_TORCH)
        step_size = lr / correction1;
    else if (opt->correct_bias)
        step_size = lr * sqrt(correction2) / correction1;
    k->beta1 = (float)opt->beta1;
    k->one_minus_beta1 = (float)(1.0 - opt->beta1);
    k->beta2 = (float)opt->beta2;
    k->one_minus_beta2 = (float)(1.0 - opt->beta2);
    k->eps = (float)opt->eps;
    k->neg_step_size = (float)-step_size;
    k->denom_divisor = (float)sqrt(correction2);
    k->decay_alpha = (float)(-lr * segment->weight_decay);
    k->decay_factor = (float)(1.0 - lr * segment->weight_decay);
}

// Calls launch(batch) for each batch of trainable segments; fill(piece, segment) sets the constants.
template <typename Fill, typename Launch>
static void for_each_batch(const tp_param_segment *segments, int64_t segment_count, Fill fill, Launch launch)
{
    segment_batch batch;
    batch.count = batch.blocks = 0;
    for (int64_t i = 0; i < segment_count; i++) {
        const tp_param_segment *s = &segments[i];
        if (s->frozen || s->numel <= 0) continue;
        segment_piece *piece = &batch.pieces[batch.count++];
        *piece = segment_piece{};
        piece->offset = s->offset;
        piece->numel = s->numel;
        int64_t blocks = (s->numel + BLOCK_ELEMENTS - 1) / BLOCK_ELEMENTS;
        piece->blocks = (int)(blocks < MAX_SEGMENT_BLOCKS ? blocks : MAX_SEGMENT_BLOCKS);
        piece->first_block = batch.blocks;
        batch.blocks += piece->blocks;
        fill(piece, s);
        if (batch.count == SEGMENTS_PER_LAUNCH) {
            launch(batch);
            batch.count = batch.blocks = 0;
        }
    }
    if (batch.count) launch(batch);
}

// The segment whose blocks include this one.
__device__ const segment_piece &block_piece(const segment_batch &batch)
{
    int p = batch.count - 1;
    while (p > 0 && batch.pieces[p].first_block > (int)blockIdx.x) p--;
    return batch.pieces[p];
}

#define FOR_EACH_PIECE_INDEX(i, piece)                                                                             \
    for (int64_t i = (piece).offset + (int64_t)(blockIdx.x - (piece).first_block) * blockDim.x + threadIdx.x;        \
         i < (piece).offset + (piece).numel; i += (int64_t)(piece).blocks * blockDim.x)

// The same float operations, in the same order, as core/optim.c (fmaf is exact on both sides).
__global__ void adamw_kernel(segment_batch batch, int torch_variant, float *p, const float *g, float *m, float *v)
{
    const segment_piece k = block_piece(batch);
    FOR_EACH_PIECE_INDEX(i, k)
    {
        if (torch_variant) p[i] = p[i] * k.decay_factor;
        m[i] = fmaf(g[i], k.one_minus_beta1, m[i] * k.beta1);
        v[i] = fmaf(k.one_minus_beta2 * g[i], g[i], v[i] * k.beta2);
        if (torch_variant) {
            float denom = __fdiv_rn(sqrtf(v[i]), k.denom_divisor) + k.eps;
            p[i] = p[i] + __fdiv_rn(k.neg_step_size * m[i], denom);
        } else {
            float denom = sqrtf(v[i]) + k.eps;
            p[i] = p[i] + __fdiv_rn(k.neg_step_size * m[i], denom);
            p[i] = fmaf(p[i], k.decay_alpha, p[i]);
        }
    }
}

void tp_cuda_adamw_step(const tp_adamw_options *opt, double lr, int64_t step, float *params, const float *grads,
                        float *exp_avg, float *exp_avg_sq, const tp_param_segment *segments, int64_t segment_count)
{
    int torch_variant = opt->variant == TP_ADAMW_TORCH;
    for_each_batch(
        segments, segment_count,
        [&](segment_piece *piece, const tp_param_segment *s) { set_adamw_constants(piece, opt, lr, step, s); },
        [&](const segment_batch &batch) {
            adamw_kernel<<<batch.blocks, TP_CUDA_THREADS>>>(batch, torch_variant, params, grads,
                                                                                 exp_avg, exp_avg_sq);
            CUDA_CHECK_LAUNCH();
        });
}

// ---- reductions ----------------------------------------------------------------------

__device__ double reduce_partials[SEGMENTS_PER_LAUNCH * MAX_SEGMENT_BLOCKS];
__device__ double reduce_total;

enum reduce_kind { SUM_OF_SQUARES, NON_FINITE_COUNT };

__global__ void reduce_pieces_kernel(segment_batch batch, reduce_kind kind, const float *g)
{
    const segment_piece piece = block_piece(batch);
    double sum = 0.0;
    FOR_EACH_PIECE_INDEX(i, piece) { sum += kind == SUM_OF_SQUARES ? (double)g[i] * g[i] : (double)!isfinite(g[i]); }
    sum = tp_block_reduce(sum, tp_sum_op());
    if (threadIdx.x == 0) reduce_partials[blockIdx.x] = sum;
}

// One block: each thread adds its stride of the partials in order, then the block's fixed tree.
__global__ void reduce_finish_kernel(int partial_count)
{
    double sum = 0.0;
    for (int i = threadIdx.x; i < partial_count; i += blockDim.x) sum += reduce_partials[i];
    sum = tp_block_reduce(sum, tp_sum_op());
    if (threadIdx.x == 0) reduce_total += sum;
}

static double reduce(const float *grads, const tp_param_segment *segments, int64_t segment_count, reduce_kind kind)
{
    double total = 0.0;
    CUDA_CHECK(cudaMemcpyToSymbolAsync(reduce_total, &total, sizeof total, 0, cudaMemcpyHostToDevice));
    for_each_batch(
        segments, segment_count, [](segment_piece *, const tp_param_segment *) {},
        [&](const segment_batch &batch) {
            reduce_pieces_kernel<<<batch.blocks, TP_CUDA_THREADS>>>(batch, kind, grads);
            CUDA_CHECK_LAUNCH();
            reduce_finish_kernel<<<1, TP_CUDA_THREADS>>>(batch.blocks);
            CUDA_CHECK_LAUNCH();
        });
    CUDA_CHECK(cudaMemcpyFromSymbol(&total, reduce_total, sizeof total, 0, cudaMemcpyDeviceToHost));
    return total;
}

int tp_cuda_grads_finite(const float *grads, const tp_param_segment *segments, int64_t segment_count)
{
    return reduce(grads, segments, segment_count, NON_FINITE_COUNT) == 0.0;
}

double tp_cuda_grad_norm(const float *grads, const tp_param_segment *segments, int64_t segment_count)
{
    return sqrt(reduce(grads, segments, segment_count, SUM_OF_SQUARES));
}

__global__ void scale_pieces_kernel(segment_batch batch, float factor, float *g)
{
    const segment_piece piece = block_piece(batch);
    FOR_EACH_PIECE_INDEX(i, piece) g[i] *= factor;
}

double tp_cuda_clip_grad_norm(float *grads, const tp_param_segment *segments, int64_t segment_count,
                              double max_norm)
{
    double norm = tp_cuda_grad_norm(grads, segments, segment_count);
    double coefficient = max_norm / (norm + 1e-6);
    if (isfinite(norm) && coefficient < 1.0) {
        float factor = (float)coefficient;
        for_each_batch(
            segments, segment_count, [](segment_piece *, const tp_param_segment *) {},
            [&](const segment_batch &batch) {
                scale_pieces_kernel<<<batch.blocks, TP_CUDA_THREADS>>>(batch, factor, grads);
                CUDA_CHECK_LAUNCH();
            });
    }
    return norm;
}
