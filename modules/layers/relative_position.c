#include "relative_position.h"

#include <math.h>
#include <string.h>

void tp_relative_position_init(tp_relative_position *rp, tp_build *build, const char *prefix, int bidirectional)
{
    char name[TP_NAME_MAX];
    int64_t shape[2] = {build->hp->relative_attention_buckets_num, build->hp->heads_num};
    tp_name(name, prefix, "relative_attention_bias.weight");
    rp->table = tp_param_new(build->params, name, 2, shape, TP_INIT_NORMAL);
    rp->buckets = shape[0];
    rp->max_distance = build->hp->relative_attention_max_distance;
    rp->bidirectional = bidirectional;
    rp->layout = TP_RELATIVE_BUCKETS;
}

void tp_relative_position_init_grid(tp_relative_position *rp, tp_build *build, const char *prefix, int64_t grid_rows,
                                    int64_t grid_cols)
{
    char name[TP_NAME_MAX];
    int64_t shape[2] = {(2 * grid_rows - 1) * (2 * grid_cols - 1) + 3, build->hp->heads_num};
    tp_name(name, prefix, "relative_position_bias_table");
    memset(rp, 0, sizeof *rp);
    rp->table = tp_param_new(build->params, name, 2, shape, TP_INIT_ZEROS);
    rp->layout = TP_RELATIVE_GRID;
    rp->grid_rows = grid_rows;
    rp->grid_cols = grid_cols;
}

int32_t tp_relative_position_grid_index(int64_t query, int64_t key, int64_t grid_rows, int64_t grid_cols)
{
    int64_t offsets = (2 * grid_rows - 1) * (2 * grid_cols - 1);
    if (query == 0) return (int32_t)(key == 0 ? offsets + 2 : offsets);
    if (key == 0) return (int32_t)(offsets + 1);
    int64_t rows = (query - 1) / grid_cols - (key - 1) / grid_cols;
    int64_t cols = (query - 1) % grid_cols - (key - 1) % grid_cols;
    return (int32_t)((rows + grid_rows - 1) * (2 * grid_cols - 1) + cols + grid_cols - 1);
}

int32_t tp_relative_position_bucket(int64_t distance, int bidirectional, int64_t buckets, int64_t max_distance)
{
    int64_t bucket = 0;
    if (bidirectional) {
        buckets /= 2;
        if (distance > 0) bucket += buckets;
        distance = distance < 0 ? -distance : distance;
    } else {
        distance = distance < 0 ? -distance : 0;
    }
    int64_t exact = buckets / 2;
    if (distance < exact) return (int32_t)(bucket + distance);
    /* In float, as torch computes it, so that the boundaries fall where they do there. */
    float scaled = logf((float)distance / (float)exact) / (float)log((double)max_distance / (double)exact) *
                   (float)(buckets - exact);
    int64_t large = exact + (int64_t)scaled;
    return (int32_t)(bucket + (large < buckets - 1 ? large : buckets - 1));
}

tp_tensor *tp_relative_position_forward(tp_ctx *ctx, const tp_relative_position *rp, int64_t seq, int64_t kv_seq)
{
    return tp_relative_position_forward_from(ctx, rp, 0, seq, kv_seq);
}

tp_tensor *tp_relative_position_forward_from(tp_ctx *ctx, const tp_relative_position *rp, int64_t first_query,
                                             int64_t seq, int64_t kv_seq)
{
    int64_t pairs = seq * kv_seq;
    int32_t *ids = tp_arena_alloc(&ctx->host_arena, (size_t)pairs * sizeof *ids);
    for (int64_t i = 0; i < seq; i++)
        for (int64_t j = 0; j < kv_seq; j++)
            ids[i * kv_seq + j] =
                rp->layout == TP_RELATIVE_GRID
                    ? tp_relative_position_grid_index(first_query + i, j, rp->grid_rows, rp->grid_cols)
                    : tp_relative_position_bucket(j - (first_query + i), rp->bidirectional, rp->buckets,
                                                  rp->max_distance);
    return tp_embedding(ctx, rp->table, tp_ids_upload(ctx, ids, pairs), pairs);
}
