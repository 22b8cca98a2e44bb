/* Target-side "fairseq_sinusoidalpos": fixed sinusoidal positions of the decoder's input tokens in
 * fairseq's layout (modules/layers/sinusoidal.h) -- Hugging Face Speech2Text's decoder positions.
 * No parameters. */
#include "modules/layers/sinusoidal.h"

static tp_tensor *tgt_fairseq_pos_forward(void *self, tp_ctx *ctx, const tp_model_batch *batch)
{
    return tp_fairseq_sinusoid_positions(ctx, self, batch->batch_size, batch->tgt_seq_length);
}

const tp_embedding_type tp_tgt_embedding_fairseq_sinusoidalpos = {
    "fairseq_sinusoidalpos", tp_fairseq_sinusoid_create, tgt_fairseq_pos_forward, NULL};
