/* Target-side "fairseq_sinusoidalpos": fixed sinusoidal positions of the decoder's input tokens in
 * fairseq's layout (modules/layers/layers.h) -- Hugging Face Speech2Text's decoder positions.
 * No parameters. */
#include "modules/layers/layers.h"

static void *tgt_fairseq_pos_create(tp_build *build, const char *prefix)
{
    (void)prefix;
    return tp_sinusoid_embedding_create(build, TP_SINUSOID_FAIRSEQ);
}

static tp_tensor *tgt_fairseq_pos_forward(void *self, tp_ctx *ctx, const tp_model_batch *batch)
{
    return tp_sinusoid_embedding_forward(self, ctx, batch->batch_size, batch->tgt_seq_length);
}

const tp_embedding_type tp_tgt_embedding_fairseq_sinusoidalpos = {
    "fairseq_sinusoidalpos", tgt_fairseq_pos_create, tgt_fairseq_pos_forward, tp_sinusoid_embedding_destroy};
