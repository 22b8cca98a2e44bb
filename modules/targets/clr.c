/* "clr": TencentPretrain's ClrTarget, CLIP's contrastive loss over the two streams of a dual model.
 * Each stream's encoder output is pooled (the stream's `pooling`: Hugging Face CLIP pools the text
 * at its end-of-text token, the last real one -- "last" -- and the image at its class token,
 * "first"), projected to feature_size without bias (`projection`, default true), and L2-normalized:
 *   logits_0 = exp(logit_scale) f_0 f_1^T   [B, B]   (Hugging Face's logits_per_text)
 *   logits_1 = exp(logit_scale) f_1 f_0^T            (logits_per_image)
 *   loss = (CE(logits_0, arange B) + CE(logits_1, arange B)) / 2
 * The result's logits are logits_0; correct counts the texts whose own image scores highest.
 * Data-parallel training contrasts the global batch, as one rank with every rank's rows would: see
 * global_features.
 * Parameters: target.clr.logit_scale [1] (initialised log(1 / 0.07)) and
 * target.clr.encoder_<i>_projection [feature_size, hidden_size_i] -- TencentPretrain's names, but
 * stored as a linear weight (Hugging Face's text_projection / visual_projection layout), the
 * transpose of TencentPretrain's [hidden_size_i, feature_size]. */
#include <stdio.h>

#include "core/distributed.h"
#include "modules/layers/layers.h"
#include "modules/layers/streams.h"

typedef struct clr_target {
    tp_stream_build builds[TP_STREAMS];
    tp_pooling pooling[TP_STREAMS];
    tp_tensor *projection[TP_STREAMS]; /* NULL with projection false */
    tp_tensor *logit_scale;
} clr_target;

static void *clr_create(tp_build *build, const char *prefix)
{
    clr_target *self = tp_xcalloc(1, sizeof *self);
    int64_t feature_size = 0, one = 1;
    int projection = 1;
    char name[TP_NAME_MAX];
    if (tp_config_int(build->config, "feature_size", 512, 1, 1 << 16, &feature_size) < 0 ||
        tp_config_bool(build->config, "projection", 1, &projection) < 0)
        goto fail;
    for (int s = 0; s < TP_STREAMS; s++) {
        tp_stream_build *stream = &self->builds[s];
        if (tp_stream_build_init(stream, build, s) < 0 || tp_pooling_read(stream->build.config, &self->pooling[s]) < 0)
            goto fail;
        if (!projection) continue;
        int64_t shape[2] = {feature_size, stream->hp.hidden_size};
        snprintf(name, sizeof name, "%s.encoder_%d_projection", prefix, s);
        self->projection[s] = tp_param_new(build->params, name, 2, shape, TP_INIT_NORMAL);
    }
    if (!projection && self->builds[0].hp.hidden_size != self->builds[1].hp.hidden_size) {
        tp_fail("%s: key 'projection': false needs the streams' hidden_size equal (%lld, %lld)",
                tp_config_name(build->config), (long long)self->builds[0].hp.hidden_size,
                (long long)self->builds[1].hp.hidden_size);
        goto fail;
    }
    tp_name(name, prefix, "logit_scale");
    self->logit_scale = tp_param_new(build->params, name, 1, &one, TP_INIT_CLIP_LOGIT_SCALE);
    return self;
fail:
    free(self);
    return NULL;
}

/* Stream s's pooled, projected, normalized features [B, feature_size]. */
static tp_tensor *features(const clr_target *clr, tp_ctx *ctx, int s, tp_tensor *hidden, const tp_model_batch *batch)
{
    tp_model_batch view = tp_stream_batch(ctx, batch, clr->builds[s].is_image, tp_rows(hidden) / batch->batch_size);
    tp_tensor *pooled = tp_pooling_forward(ctx, clr->pooling[s], hidden, &view);
    if (clr->projection[s]) pooled = tp_linear(ctx, pooled, clr->projection[s], NULL);
    return tp_l2_normalize(ctx, pooled);
}

/* Training on N > 1 ranks (each with its own B rows of the global batch, core/preprocess_clip.h):
 * every rank's features [B, feature_size] are gathered into the global batch's [N * B, feature_size],
 * over which every rank computes the same loss L as one rank with batch N * B.  The factor N in the
 * gather's backward: the trainer weights each rank's loss by its share of the counts (every rank
 * counts the N * B rows: 1 / N) and sums the ranks' gradients, and rank r's backward reaches the
 * parameters only through its own rows G_r (the other rows are constants on it), so with the gather's
 * backward scaled by s the summed gradient is
 *   sum_r (1 / N) * s * dL/dG_r * dG_r/dtheta,
 * the full dL/dtheta = sum_r dL/dG_r * dG_r/dtheta exactly when s = N.  (OpenCLIP's gather_with_grad
 * all-reduces the gathered gradient in backward; the ranks' dL/dG are equal, so that sum is N times
 * this rank's own, had here without a collective inside backward.)  logit_scale comes after the
 * gather: every rank has the full dL/dlogit_scale, and the 1 / N weights sum it back to once.  The
 * counts and correct summed over the ranks are N times the global batch's (its accuracy unchanged).
 * Evaluation (tp_image_text_zero_shot) scores each rank's own batch. */
static tp_tensor *global_features(tp_ctx *ctx, tp_tensor *features, const char *what)
{
    tp_comm *comm = tp_comm_current();
    if (!ctx->training || !comm || tp_comm_size(comm) == 1) return features;
    return tp_all_gather_rows(ctx, features, comm, (float)tp_comm_size(comm), what);
}

/* hidden is stream 0's output; the batch holds both (tp_model_forward). */
static int clr_forward(void *self, tp_ctx *ctx, tp_tensor *hidden, const tp_model_batch *batch, tp_target_result *out)
{
    const clr_target *clr = self;
    (void)hidden;
    tp_tensor *text = global_features(ctx, features(clr, ctx, 0, batch->stream_hidden[0], batch),
                                       "all-gather of the clr target's text features");
    if (!text) return -1;
    tp_tensor *image = global_features(ctx, features(clr, ctx, 1, batch->stream_hidden[1], batch),
                                       "all-gather of the clr target's image features");
    if (!image) return -1;
    int64_t batch_size = tp_rows(text); /* the global batch's */
    int32_t *diagonal = tp_arena_alloc(&ctx->host_arena, (size_t)batch_size * sizeof *diagonal);
    for (int64_t b = 0; b < batch_size; b++) diagonal[b] = (int32_t)b;
    const int32_t *targets = tp_ids_upload(ctx, diagonal, batch_size);
    out->logits = tp_scale_exp(ctx, tp_linear(ctx, text, image, NULL), clr->logit_scale);
    out->classes = batch_size;
    tp_tensor *text_loss = tp_cross_entropy(ctx, out->logits, targets, batch_size, &out->count, &out->correct);
    tp_tensor *image_logits = tp_scale_exp(ctx, tp_linear(ctx, image, text, NULL), clr->logit_scale);
    tp_tensor *image_loss = tp_cross_entropy(ctx, image_logits, targets, batch_size, NULL, NULL);
    out->loss = tp_scale(ctx, tp_add(ctx, text_loss, image_loss), 0.5f);
    return 0;
}

/* reads_marked_rows NULL: two-stream models keep every row */
const tp_target_type tp_target_clr = {"clr", clr_create, clr_forward, NULL, NULL};
