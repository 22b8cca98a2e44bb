/* Relative position biases: an index per (query i, key j) pair looked up in a learned table
 * [entries, heads], giving the [seq*kv_seq, heads] bias tp_attention_general adds to the scores
 * (the table's gradient is the embedding gather's).  Two index layouts share the lookup:
 *
 * T5's relative position bias (TencentPretrain's RelativePositionEmbedding, Hugging Face's
 * T5Attention.relative_attention_bias): an embedding "<prefix>.relative_attention_bias.weight"
 * [buckets, heads] looked up by the bucket of every (query i, key j) distance j - i, giving the
 * [seq*kv_seq, heads] bias tp_attention_general adds to the scores.  Bidirectional (encoder): half
 * the buckets for keys after the query; causal (decoder): only keys at or before it.  Within each
 * half, the first half of the buckets are exact distances, the rest logarithmic up to
 * relative_attention_max_distance (128), beyond which distances share the last bucket.
 *
 * BEiT's (Hugging Face's BeitRelativePositionBias, the original relative_position_bias_table): the
 * sequence is the class token then a grid_rows x grid_cols grid of patches in row-major order.  Two
 * patches read the entry of their 2-D offset, (dr + grid_rows - 1) * (2 * grid_cols - 1) +
 * (dc + grid_cols - 1) with (dr, dc) = query's (row, col) - key's; the last three of the
 * (2 * grid_rows - 1) * (2 * grid_cols - 1) + 3 entries are class -> patch, patch -> class and
 * class -> class. */
#ifndef TP_RELATIVE_POSITION_H
#define TP_RELATIVE_POSITION_H

#include "modules/layers/layers.h"

typedef enum tp_relative_layout { TP_RELATIVE_BUCKETS, TP_RELATIVE_GRID } tp_relative_layout;

typedef struct tp_relative_position {
    tp_tensor *table;
    tp_relative_layout layout;
    int64_t buckets, max_distance; /* T5 */
    int bidirectional;
    int64_t grid_rows, grid_cols;  /* BEiT */
} tp_relative_position;

/* T5: declares "<prefix>.relative_attention_bias.weight" with the config's relative_attention_buckets_num rows. */
void tp_relative_position_init(tp_relative_position *rp, tp_build *build, const char *prefix, int bidirectional);
/* BEiT: declares "<prefix>.relative_position_bias_table" [(2 * grid_rows - 1) * (2 * grid_cols - 1) + 3,
 * heads_num], zeros as Hugging Face starts it. */
void tp_relative_position_init_grid(tp_relative_position *rp, tp_build *build, const char *prefix, int64_t grid_rows,
                                    int64_t grid_cols);
/* BEiT's table entry for query row `query` over key row `key` (row 0: the class token). */
int32_t tp_relative_position_grid_index(int64_t query, int64_t key, int64_t grid_rows, int64_t grid_cols);
/* The bucket of relative distance key - query (Hugging Face's _relative_position_bucket). */
int32_t tp_relative_position_bucket(int64_t distance, int bidirectional, int64_t buckets, int64_t max_distance);
/* The bias [seq*kv_seq, heads] of queries 0..seq-1 over keys 0..kv_seq-1 (BEiT: at most the class
 * token + the grid each). */
tp_tensor *tp_relative_position_forward(tp_ctx *ctx, const tp_relative_position *rp, int64_t seq, int64_t kv_seq);
/* The same for queries first_query .. first_query+seq-1 (incremental decoding: one new query). */
tp_tensor *tp_relative_position_forward_from(tp_ctx *ctx, const tp_relative_position *rp, int64_t first_query,
                                             int64_t seq, int64_t kv_seq);

#endif
