#include "layers.h"


int tp_pooling_read(tp_config *config, tp_pooling *out)
{
    static const char *const pooling_names[] = {"first", "mean", "max", "last", "patch_mean", NULL};
    int pooling = 0;
    if (tp_config_enum(config, "pooling", "first", pooling_names, &pooling) < 0) return -1;
    *out = (tp_pooling)pooling;
    return 0;
}

int tp_pooled_head_init(tp_pooled_head *head, tp_build *build, const char *prefix, int64_t outputs)
{
    char name[TP_NAME_MAX];
    if (tp_pooling_read(build->config, &head->pooling) < 0 ||
        tp_config_bool(build->config, "pooler", 1, &head->pooler) < 0 ||
        tp_config_bool(build->config, "pooled_layernorm", 0, &head->pooled_layernorm) < 0)
        return -1;
    head->outputs = outputs;
    if (head->pooled_layernorm) {
        tp_name(name, prefix, "layer_norm");
        tp_norm_layer_init_kind(&head->layer_norm, build, name, build->hp->hidden_size, TP_NORM_TORCH);
    }
    if (head->pooler) {
        tp_name(name, prefix, "linear_1");
        tp_linear_layer_init(&head->linear_1, build, name, build->hp->hidden_size, build->hp->hidden_size, 1);
    }
    tp_name(name, prefix, "linear_2");
    tp_linear_layer_init(&head->linear_2, build, name, build->hp->hidden_size, outputs, 1);
    return 0;
}

/* The mean over rows 1.. of each sequence (seg lives in backend memory: the rows are taken as real). */
static tp_tensor *patch_mean(tp_ctx *ctx, tp_tensor *hidden, const tp_model_batch *batch)
{
    int64_t rows = batch->batch_size * batch->seq_length;
    int32_t *valid = tp_arena_alloc(&ctx->host_arena, (size_t)rows * sizeof *valid);
    for (int64_t r = 0; r < rows; r++) valid[r] = r % batch->seq_length != 0;
    return tp_pool(ctx, hidden, TP_POOL_MEAN, tp_ids_upload(ctx, valid, rows), batch->batch_size, batch->seq_length);
}

tp_tensor *tp_pooling_forward(tp_ctx *ctx, tp_pooling pooling, tp_tensor *hidden, const tp_model_batch *batch)
{
    switch (pooling) {
    case TP_POOLING_MEAN: return tp_pool(ctx, hidden, TP_POOL_MEAN, batch->seg, batch->batch_size, batch->seq_length);
    case TP_POOLING_MAX: return tp_pool(ctx, hidden, TP_POOL_MAX, batch->seg, batch->batch_size, batch->seq_length);
    case TP_POOLING_LAST: return tp_gather_rows(ctx, hidden, batch->last_rows, batch->batch_size);
    case TP_POOLING_PATCH_MEAN: return patch_mean(ctx, hidden, batch);
    default: return tp_gather_rows(ctx, hidden, batch->first_rows, batch->batch_size);
    }
}

int tp_pooled_target_reads_marked_rows(const void *target)
{
    const tp_pooled_head *head = target;
    return head->pooling == TP_POOLING_FIRST || head->pooling == TP_POOLING_LAST;
}

int tp_target_reads_marked_rows(const void *target)
{
    (void)target;
    return 1;
}

tp_tensor *tp_pooled_head_forward(tp_ctx *ctx, const tp_pooled_head *head, tp_tensor *hidden,
                                  const tp_model_batch *batch)
{
    tp_tensor *pooled = tp_pooling_forward(ctx, head->pooling, hidden, batch);
    if (head->pooled_layernorm) pooled = tp_norm_layer_forward(ctx, &head->layer_norm, pooled);
    if (head->pooler) pooled = tp_act(ctx, tp_linear_layer_forward(ctx, &head->linear_1, pooled), TP_ACT_TANH);
    return tp_linear_layer_forward(ctx, &head->linear_2, pooled);
}
