/* "fairseq_sinusoidalpos": fixed sinusoidal positions of the source rows in fairseq's layout
 * (modules/layers/layers.h) -- Hugging Face Speech2Text's encoder positions.  No parameters. */
#include "modules/layers/layers.h"

static void *fairseq_pos_create(tp_build *build, const char *prefix)
{
    (void)prefix;
    return tp_sinusoid_embedding_create(build, TP_SINUSOID_FAIRSEQ);
}

static tp_tensor *fairseq_pos_forward(void *self, tp_ctx *ctx, const tp_model_batch *batch)
{
    return tp_sinusoid_embedding_forward(self, ctx, batch->batch_size, batch->seq_length);
}

const tp_embedding_type tp_embedding_fairseq_sinusoidalpos = {"fairseq_sinusoidalpos", fairseq_pos_create,
                                                              fairseq_pos_forward, tp_sinusoid_embedding_destroy};
