/* "lm": next-token prediction at every position (TencentPretrain's LmTarget, GPT-2's head):
 * output_layer (hidden_size -> vocabulary, no bias; with tie_weights it is the word embedding) and
 * the mean cross-entropy over the real vocabulary at every position that has a next token.  The
 * next-token ids come with the batch in `tags` ([B*S], -1 at padding and where a window ends:
 * core/dataset.h's lm datasets); without them (inference) the logits of every position are the
 * output and there is no loss.  TencentPretrain's `label_smoothing` is refused when non-zero: tp
 * does not implement it yet. */
#include "modules/layers/layers.h"

typedef struct lm_target {
    tp_linear_layer output_layer;
    int64_t vocab_size;
} lm_target;

static void *lm_create(tp_build *build, const char *prefix)
{
    const tp_model_config *hp = build->hp;
    double label_smoothing = 0;
    if (tp_config_double(build->config, "label_smoothing", 0.0, 0.0, 0.99, &label_smoothing) < 0) return NULL;
    if (label_smoothing > 0) {
        tp_fail("%s: key 'label_smoothing': %g is not supported yet (0 only)", tp_config_name(build->config),
                label_smoothing);
        return NULL;
    }
    lm_target *self = tp_xcalloc(1, sizeof *self);
    char name[TP_NAME_MAX];
    self->vocab_size = hp->vocab_size;
    if (hp->tie_weights) {
        tp_param *word = tp_params_find(build->params, "embedding.word.embedding.weight");
        if (!word || hp->emb_size != hp->hidden_size) {
            free(self);
            tp_fail("%s: key 'tie_weights': the lm target ties its output to the 'word' embedding, which the model "
                    "%s", tp_config_name(build->config), word ? "has with emb_size != hidden_size" : "does not have");
            return NULL;
        }
        self->output_layer.weight = &word->tensor;
    } else {
        int64_t shape[2] = {hp->vocab_size, hp->hidden_size};
        tp_name(name, prefix, "output_layer.weight");
        self->output_layer.weight =
            tp_param_new_padded(build->params, name, 2, shape, TP_INIT_NORMAL, hp->vocab_row_multiple);
    }
    return self;
}

static int lm_forward(void *self, tp_ctx *ctx, tp_tensor *hidden, const tp_model_batch *batch, tp_target_result *out)
{
    lm_target *lm = self;
    out->logits = tp_linear_layer_forward(ctx, &lm->output_layer, hidden); /* [B*S, vocabulary rows] */
    out->classes = lm->vocab_size;
    if (!batch->tags) return 0;
    out->loss = tp_cross_entropy(ctx, out->logits, batch->tags, lm->vocab_size, &out->count, &out->correct);
    return 0;
}

const tp_target_type tp_target_lm = {"lm", lm_create, lm_forward, NULL};
