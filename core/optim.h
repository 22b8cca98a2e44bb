/* AdamW, global-norm clipping and gradient checks over flat buffers.
 *
 * All parameters of a model live in one flat float buffer, their gradients in
 * a second and the two Adam moments in a third and fourth, all with the same
 * layout.  The model describes its parameters as segments of that layout; one
 * fused OpenMP pass over the segments updates everything.  Floats that no
 * segment covers (alignment padding) are never read or written.
 *
 * Every pass splits the trainable (non-frozen) elements into fixed chunks
 * whose size depends only on their count, so reductions (the norm) give the
 * same bits for any number of threads.  See docs/optim.md. */
#ifndef TP_OPTIM_H
#define TP_OPTIM_H

#include <stdint.h>

/* weight_decay and lr_scale are doubles so that lr * lr_scale and lr * weight_decay round as
 * they do in PyTorch's Python-side arithmetic. */
typedef struct tp_param_segment {
    int64_t offset, numel; /* into the flat buffers, in floats */
    double weight_decay;   /* TencentPretrain: 0.01, and 0 for names containing bias, gamma or beta */
    double lr_scale;       /* per-group learning-rate multiplier (1 normally) */
    int frozen;            /* 1: never updated, moments untouched, gradient ignored */
} tp_param_segment;

typedef enum tp_adamw_variant {
    /* TencentPretrain's AdamW (tencentpretrain/utils/optimizers.py, HF's old transformers.AdamW):
     * Adam update first (bias correction optional), then p += (-lr * wd) * p on the updated p. */
    TP_ADAMW_TENCENTPRETRAIN = 0,
    /* torch.optim.AdamW (single-tensor path of torch 1.13): p *= 1 - lr * wd first, then the
     * bias-corrected update with denom = sqrt(v) / sqrt(1 - beta2^t) + eps.  correct_bias is ignored. */
    TP_ADAMW_TORCH = 1,
} tp_adamw_variant;

typedef struct tp_adamw_options {
    double beta1, beta2, eps; /* TencentPretrain: 0.9, 0.999, 1e-6 */
    int correct_bias;         /* TencentPretrain's trainer: 0 (no bias correction, as BERT) */
    tp_adamw_variant variant;
} tp_adamw_options;

/* TencentPretrain's pre-training settings: 0.9, 0.999, 1e-6, no bias correction. */
tp_adamw_options tp_adamw_defaults(void);
/* The checks TencentPretrain's AdamW makes: 0 <= beta < 1, eps >= 0.  -1 + message. */
int tp_adamw_options_check(const tp_adamw_options *opt);
/* Segments must lie inside a buffer of buffer_floats floats, be sorted by offset and not
 * overlap; numel >= 0; weight_decay >= 0; lr_scale >= 0.  -1 + message naming the segment. */
int tp_param_segments_check(const tp_param_segment *segments, int64_t segment_count, int64_t buffer_floats);

/* One AdamW step over every non-frozen segment.  step counts optimizer steps from 1 (bias
 * correction); lr is the scheduled learning rate, multiplied by each segment's lr_scale for
 * both the update and the decay.  Computed in float32 with torch's operation order (see
 * docs/optim.md), so results match PyTorch to about an ulp. */
void tp_adamw_step(const tp_adamw_options *opt, double lr, int64_t step, float *params, const float *grads,
                   float *exp_avg, float *exp_avg_sq, const tp_param_segment *segments, int64_t segment_count);

/* sqrt(sum g^2) over the non-frozen segments, accumulated in double. */
double tp_grad_global_norm(const float *grads, const tp_param_segment *segments, int64_t segment_count);

/* torch.nn.utils.clip_grad_norm_: computes the global norm; when
 * coef = max_norm / (norm + 1e-6) is below 1, multiplies the non-frozen gradients by it
 * (so gradients whose norm is within 1e-6 under max_norm are scaled a hair, as in torch).
 * Returns the norm before clipping (not finite when a gradient is not: nothing is scaled then). */
double tp_clip_grad_norm(float *grads, const tp_param_segment *segments, int64_t segment_count, double max_norm);

/* 1 if every gradient of the non-frozen segments is finite, else 0. */
int tp_grads_finite(const float *grads, const tp_param_segment *segments, int64_t segment_count);

#endif
