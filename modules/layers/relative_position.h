/* T5's relative position bias (TencentPretrain's RelativePositionEmbedding, Hugging Face's
 * T5Attention.relative_attention_bias): an embedding "<prefix>.relative_attention_bias.weight"
 * [buckets, heads] looked up by the bucket of every (query i, key j) distance j - i, giving the
 * [seq*kv_seq, heads] bias tp_attention_general adds to the scores.  Bidirectional (encoder): half
 * the buckets for keys after the query; causal (decoder): only keys at or before it.  Within each
 * half, the first half of the buckets are exact distances, the rest logarithmic up to
 * relative_attention_max_distance (128), beyond which distances share the last bucket. */
#ifndef TP_RELATIVE_POSITION_H
#define TP_RELATIVE_POSITION_H

#include "modules/layers/layers.h"

typedef struct tp_relative_position {
    tp_tensor *table;
    int64_t buckets, max_distance;
    int bidirectional;
} tp_relative_position;

/* Declares the table with the config's relative_attention_buckets_num rows. */
void tp_relative_position_init(tp_relative_position *rp, tp_build *build, const char *prefix, int bidirectional);
/* The bucket of relative distance key - query (Hugging Face's _relative_position_bucket). */
int32_t tp_relative_position_bucket(int64_t distance, int bidirectional, int64_t buckets, int64_t max_distance);
/* The bias [seq*kv_seq, heads] of queries 0..seq-1 over keys 0..kv_seq-1. */
tp_tensor *tp_relative_position_forward(tp_ctx *ctx, const tp_relative_position *rp, int64_t seq, int64_t kv_seq);
/* The same for queries first_query .. first_query+seq-1 (incremental decoding: one new query). */
tp_tensor *tp_relative_position_forward_from(tp_ctx *ctx, const tp_relative_position *rp, int64_t first_query,
                                             int64_t seq, int64_t kv_seq);

#endif
