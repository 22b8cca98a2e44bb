/* "lm": next-token prediction at every position (TencentPretrain's LmTarget, GPT-2's head):
 * output_layer (hidden_size -> vocabulary, a bias with has_lmtarget_bias; with tie_weights the
 * weight is the word embedding) and the mean cross-entropy over the real vocabulary at every
 * position that has a next token.  The
 * next-token ids come with the batch in `tags` ([B*S], -1 at padding and where a window ends:
 * core/dataset.h's lm datasets); without them (inference) the logits of every position are the
 * output and there is no loss.  Encoder-decoder batches (t5, bart, mt datasets) score the decoder's
 * rows with the tags of the target shifted left.  `label_smoothing` eps (TencentPretrain's LmTarget):
 * (1 - eps - eps_i) * nll + eps_i * sum over the vocabulary of -log p, eps_i = eps / (V - 1), both
 * means over the scored rows (-1 tags, padding, are left out, as its ignore_index leaves out [PAD]):
 * the target gets 1 - eps, every other class eps / (V - 1) -- torch's cross_entropy with
 * label_smoothing eps * V / (V - 1). */
#include "modules/layers/layers.h"

typedef struct lm_target {
    tp_linear_layer output_layer;
    int64_t vocab_size;
    double label_smoothing;
} lm_target;

static void *lm_create(tp_build *build, const char *prefix)
{
    const tp_model_config *hp = build->hp;
    double label_smoothing = 0;
    if (tp_config_double(build->config, "label_smoothing", 0.0, 0.0, 0.99, &label_smoothing) < 0) return NULL;
    lm_target *self = tp_xcalloc(1, sizeof *self);
    self->label_smoothing = label_smoothing;
    char name[TP_NAME_MAX];
    self->vocab_size = hp->vocab_size;
    if (hp->tie_weights) {
        tp_param *word = tp_params_find(build->params, "embedding.word.embedding.weight");
        if (!word) word = tp_params_find(build->params, "tgt_embedding.word.embedding.weight"); /* speech-to-text */
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
    /* TencentPretrain's has_lmtarget_bias: output_layer.bias [vocab] (Hugging Face BART's and
     * Pegasus's final_logits_bias), rows padded as the weight's. */
    int with_bias = 0;
    if (tp_config_bool(build->config, "has_lmtarget_bias", 0, &with_bias) < 0) {
        free(self);
        return NULL;
    }
    if (with_bias) {
        tp_name(name, prefix, "output_layer.bias");
        self->output_layer.bias = tp_param_new_padded(build->params, name, 1, &hp->vocab_size, TP_INIT_NORMAL,
                                                      hp->vocab_row_multiple);
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
    if (lm->label_smoothing > 0 && out->count > 0) {
        double eps = lm->label_smoothing, vocab = (double)lm->vocab_size, eps_i = eps / (vocab - 1);
        tp_tensor *uniform = tp_uniform_cross_entropy(ctx, out->logits, batch->tags, lm->vocab_size); /* summed */
        out->loss = tp_add(ctx, tp_scale(ctx, out->loss, (float)(1 - eps - eps_i)),
                           tp_scale(ctx, uniform, (float)(eps_i * vocab / (double)out->count)));
    }
    return 0;
}

const tp_target_type tp_target_lm = {"lm", lm_create, lm_forward, NULL, NULL}; /* reads every row */
