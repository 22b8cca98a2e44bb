/* Hugging Face T5's initialisation (T5PreTrainedModel._init_weights, initializer_factor 1), the
 * model-config key `initializer: t5` (docs/model_config.md).  TencentPretrain draws every matrix
 * from N(0, 0.02); T5 scales each by its fan-in instead:
 *   word embeddings (both sides) and an untied lm head      N(0, 1)
 *   attention query                                        N(0, (d_model * d_kv)^-0.5)
 *   attention key and value                                N(0, d_model^-0.5)
 *   attention output                                       N(0, (heads * d_kv)^-0.5)
 *   feed-forward in (and gate)                             N(0, d_model^-0.5)
 *   feed-forward out                                       N(0, d_ff^-0.5)
 *   relative position bias                                 N(0, d_model^-0.5)
 * Norm gains stay 1 and biases 0.  With T5's tied head scaled by d_model^-0.5, unit-variance
 * embeddings give logits of unit scale from the start, where N(0, 0.02) gives 0.02 and Adam must
 * first grow the embeddings (docs/model_config.md has the measurements). */
#ifndef TP_INIT_T5_H
#define TP_INIT_T5_H

#include "model.h"

/* Rescales the N(0, 0.02) draws of tp_params_initialize to the standard deviations above (the same
 * normal draws, so the result still depends on the seed alone).  Parameters of other names keep
 * N(0, 0.02). */
void tp_model_initialize_t5(tp_model *model);

#endif
