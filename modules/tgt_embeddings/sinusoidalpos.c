/* Target-side "sinusoidalpos": the fixed sinusoidal positions of the decoder's input (the same
 * table as the source side's, modules/layers/sinusoid.c). */
#include "modules/layers/layers.h"

static void *tgt_sinusoidalpos_create(tp_build *build, const char *prefix)
{
    (void)prefix;
    return tp_sinusoid_embedding_create(build, TP_SINUSOID_INTERLEAVED);
}

static tp_tensor *tgt_sinusoidalpos_forward(void *self, tp_ctx *ctx, const tp_model_batch *batch)
{
    return tp_sinusoid_embedding_forward(self, ctx, batch->batch_size, batch->tgt_seq_length);
}

const tp_embedding_type tp_tgt_embedding_sinusoidalpos = {"sinusoidalpos", tgt_sinusoidalpos_create,
                                                          tgt_sinusoidalpos_forward, tp_sinusoid_embedding_destroy};
