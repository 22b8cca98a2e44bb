/* "tagging": a tag for every token (TencentPretrain's run_ner.py): output_layer, one linear map of
 * each token's hidden state to `labels_num` tag scores, then
 *   - without `crf` (the default): cross-entropy against the batch's tag ids, averaged over the
 *     tokens whose tag is >= 0 (the caller marks [CLS], [SEP], padding and the non-first pieces of
 *     a word with -1);
 *   - with `"crf": true` (run_ner.py's --crf_target): the scores are the emissions of a
 *     linear-chain CRF (pytorch-crf's, as run_ner.py uses) over each sequence's scored tokens in
 *     order (tp_crf_loss), with parameters crf.transitions [labels_num, labels_num] (from row to
 *     column), crf.start_transitions and crf.end_transitions [labels_num], initialised N(0, 0.02)
 *     as TencentPretrain's initialize_parameters does; the loss is the negative log-likelihood
 *     averaged over the sequences (count = sequences; correct stays 0: a per-token argmax says
 *     nothing about a CRF's prediction, which is the Viterbi path -- core/finetune_task.c).
 *     run_ner.py feeds log_softmax(scores) to the CRF: that subtracts one constant per position
 *     from every tag's score, which cancels between log Z and the gold path, so the loss and its
 *     gradient are the same on the raw scores. */
#include "modules/layers/layers.h"

typedef struct tagging_target {
    tp_linear_layer output_layer;
    int64_t labels_num;
    int crf;
    tp_tensor *transitions, *start_transitions, *end_transitions; /* with crf */
} tagging_target;

static void crf_create(tagging_target *self, tp_build *build, const char *prefix)
{
    char name[TP_NAME_MAX];
    const int64_t square[2] = {self->labels_num, self->labels_num}, vector[1] = {self->labels_num};
    tp_name(name, prefix, "crf.transitions");
    self->transitions = tp_param_new(build->params, name, 2, square, TP_INIT_NORMAL);
    tp_name(name, prefix, "crf.start_transitions");
    self->start_transitions = tp_param_new(build->params, name, 1, vector, TP_INIT_NORMAL);
    tp_name(name, prefix, "crf.end_transitions");
    self->end_transitions = tp_param_new(build->params, name, 1, vector, TP_INIT_NORMAL);
}

static void *tagging_create(tp_build *build, const char *prefix)
{
    tagging_target *self = tp_xcalloc(1, sizeof *self);
    char name[TP_NAME_MAX];
    if (tp_config_int(build->config, "labels_num", 2, 1, 1 << 20, &self->labels_num) < 0 ||
        tp_config_bool(build->config, "crf", 0, &self->crf) < 0) {
        free(self);
        return NULL;
    }
    tp_name(name, prefix, "output_layer");
    tp_linear_layer_init(&self->output_layer, build, name, build->hp->hidden_size, self->labels_num, 1);
    if (self->crf) crf_create(self, build, prefix);
    return self;
}

static int tagging_forward(void *self, tp_ctx *ctx, tp_tensor *hidden, const tp_model_batch *batch,
                           tp_target_result *out)
{
    tagging_target *target = self;
    out->logits = tp_linear_layer_forward(ctx, &target->output_layer, hidden); /* [B*S, labels_num] */
    out->classes = target->labels_num;
    if (!batch->tags) return 0; /* inference: scores only */
    if (target->crf) {
        out->loss = tp_crf_loss(ctx, out->logits, target->transitions, target->start_transitions,
                                target->end_transitions, batch->tags, batch->batch_size, batch->seq_length,
                                target->labels_num, &out->count);
        return 0;
    }
    out->loss = tp_cross_entropy(ctx, out->logits, batch->tags, target->labels_num, &out->count, &out->correct);
    return 0;
}

const tp_target_type tp_target_tagging = {"tagging", tagging_create, tagging_forward, NULL, NULL}; /* reads every row */
