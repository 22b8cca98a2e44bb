/* "mlm": masked language model head, run only at the masked positions:
 * gather -> linear_1 (hidden_size -> emb_size) -> act -> layer_norm (emb_size) -> linear_2
 * (emb_size -> vocabulary, tied to the word embedding with tie_weights) -> cross-entropy over
 * the real vocabulary.  emb_size equals hidden_size except in ALBERT's factorized models. */
#include "modules/layers/layers.h"

typedef struct mlm_target {
    tp_linear_layer linear_1, linear_2;
    tp_norm_layer layer_norm;
    tp_activation act;
    int64_t vocab_size;
} mlm_target;

static void *mlm_create(tp_build *build, const char *prefix)
{
    const tp_model_config *hp = build->hp;
    mlm_target *self = tp_xcalloc(1, sizeof *self);
    char name[TP_NAME_MAX];
    int64_t vocab_shape[1] = {hp->vocab_size};
    self->act = hp->hidden_act;
    self->vocab_size = hp->vocab_size;
    tp_name(name, prefix, "linear_1");
    tp_linear_layer_init(&self->linear_1, build, name, hp->hidden_size, hp->emb_size, 1);
    tp_name(name, prefix, "layer_norm");
    tp_norm_layer_init_kind(&self->layer_norm, build, name, hp->emb_size, hp->target_layernorm);
    if (hp->tie_weights) {
        tp_param *word = tp_params_find(build->params, "embedding.word.embedding.weight");
        if (!word) {
            free(self);
            tp_fail("%s: key 'tie_weights': the mlm target ties its output to the 'word' embedding, which the "
                    "model does not have", tp_config_name(build->config));
            return NULL;
        }
        self->linear_2.weight = &word->tensor;
    } else {
        int64_t weight_shape[2] = {hp->vocab_size, hp->emb_size};
        tp_name(name, prefix, "linear_2.weight");
        self->linear_2.weight = tp_param_new_padded(build->params, name, 2, weight_shape, TP_INIT_NORMAL,
                                                    hp->vocab_row_multiple);
    }
    tp_name(name, prefix, "linear_2.bias");
    self->linear_2.bias = tp_param_new_padded(build->params, name, 1, vocab_shape, TP_INIT_NORMAL,
                                              hp->vocab_row_multiple);
    return self;
}

static int mlm_forward(void *self, tp_ctx *ctx, tp_tensor *hidden, const tp_model_batch *batch,
                       tp_target_result *out)
{
    mlm_target *mlm = self;
    tp_tensor *masked = tp_gather_rows(ctx, hidden, batch->mlm_positions, batch->mlm_count);
    tp_tensor *h = tp_act(ctx, tp_linear_layer_forward(ctx, &mlm->linear_1, masked), mlm->act);
    h = tp_norm_layer_forward(ctx, &mlm->layer_norm, h);
    out->classes = mlm->vocab_size;
    out->loss = tp_linear_cross_entropy(ctx, h, mlm->linear_2.weight, mlm->linear_2.bias, batch->mlm_labels,
                                        mlm->vocab_size, &out->count, &out->correct, &out->logits);
    return 0;
}

const tp_target_type tp_target_mlm = {"mlm", mlm_create, mlm_forward, NULL, tp_target_reads_marked_rows};
