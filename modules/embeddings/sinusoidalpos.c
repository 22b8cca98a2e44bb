/* "sinusoidalpos" (TencentPretrain's name): fixed sinusoidal positions of the source tokens, no
 * parameters; the table is modules/layers/sinusoid.c's (Hugging Face Pegasus's layout). */
#include "modules/layers/layers.h"

static void *sinusoidalpos_create(tp_build *build, const char *prefix)
{
    (void)prefix;
    return tp_sinusoid_embedding_create(build, TP_SINUSOID_INTERLEAVED);
}

static tp_tensor *sinusoidalpos_forward(void *self, tp_ctx *ctx, const tp_model_batch *batch)
{
    return tp_sinusoid_embedding_forward(self, ctx, batch->batch_size, batch->seq_length);
}

const tp_embedding_type tp_embedding_sinusoidalpos = {"sinusoidalpos", sinusoidalpos_create, sinusoidalpos_forward,
                                                      tp_sinusoid_embedding_destroy};
