/* "fairseq_sinusoidalpos": fixed sinusoidal positions of the source rows in fairseq's layout
 * (modules/layers/sinusoidal.h) -- Hugging Face Speech2Text's encoder positions.  No parameters. */
#include "modules/layers/sinusoidal.h"

static tp_tensor *fairseq_pos_forward(void *self, tp_ctx *ctx, const tp_model_batch *batch)
{
    return tp_fairseq_sinusoid_positions(ctx, self, batch->batch_size, batch->seq_length);
}

const tp_embedding_type tp_embedding_fairseq_sinusoidalpos = {"fairseq_sinusoidalpos", tp_fairseq_sinusoid_create,
                                                              fairseq_pos_forward, NULL};
