/* fairseq's sinusoidal position embedding, which Hugging Face's Speech2Text copies
 * (Speech2TextSinusoidalPositionalEmbedding): row p of a dim-column table is
 *   [sin(p w_0) .. sin(p w_{h-1}), cos(p w_0) .. cos(p w_{h-1})],  w_i = 10000^(-i / (h - 1)),  h = dim / 2
 * (the sines and cosines side by side, not interleaved as in TencentPretrain's sinusoidalpos; a zero
 * last column when dim is odd).  Token s sits at position s + position_offset (Hugging Face:
 * padding_idx + 1 = 2).  Fixed values: no parameters. */
#ifndef TP_SINUSOIDAL_H
#define TP_SINUSOIDAL_H

#include "modules/layers/layers.h"

typedef struct tp_fairseq_sinusoid {
    int64_t offset, dim;
} tp_fairseq_sinusoid;

/* The embedding module's state (emb_size columns, the config's position_offset); NULL + tp_fail
 * (naming the config) when emb_size has no two frequencies. */
void *tp_fairseq_sinusoid_create(tp_build *build, const char *prefix);
/* The rows of batch sequences of seq tokens -> [batch*seq, dim] in the step arena, no gradient. */
tp_tensor *tp_fairseq_sinusoid_positions(tp_ctx *ctx, const tp_fairseq_sinusoid *table, int64_t batch, int64_t seq);

#endif
