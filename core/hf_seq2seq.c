#include "hf_seq2seq.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"

static const tp_hf_seq2seq_family *const families[] = {&tp_hf_t5, &tp_hf_bart, &tp_hf_pegasus, &tp_hf_s2t};
#define FAMILY_COUNT (sizeof families / sizeof families[0])

static const tp_hf_seq2seq_family *family_of_json(const cJSON *root)
{
    const char *type = tp_hf_json_string(root, "model_type", "");
    for (size_t i = 0; i < FAMILY_COUNT; i++)
        if (!strcmp(type, families[i]->model_type)) return families[i];
    return NULL;
}

int tp_hf_seq2seq_is(const cJSON *root) { return family_of_json(root) != NULL; }

int tp_hf_seq2seq_config(const char *path, const cJSON *root, cJSON *tp)
{
    return family_of_json(root)->config(path, root, tp);
}

int tp_hf_seq2seq_model(const tp_model *model) { return model->decoder_type != NULL; }

/* T5 has relative positions, BART a learned position table, Speech2Text a speech embedding, Pegasus none of
 * these (fixed sinusoids). */
static const tp_hf_seq2seq_family *family_of_model(const tp_model *model)
{
    if (model->hp.relative_position_embedding) return &tp_hf_t5;
    if (!strcmp(model->embedding_types[0]->name, "speech")) return &tp_hf_s2t;
    return tp_params_find(&model->params, "embedding.pos.embedding.weight") ? &tp_hf_bart : &tp_hf_pegasus;
}

/* ---- names --------------------------------------------------------------------------- */

/* If name matches pattern ("{i}" standing for digits), the digits (or "") into index. */
static int match(const char *pattern, const char *name, char *index, size_t cap)
{
    const char *hole = strstr(pattern, "{i}");
    index[0] = '\0';
    if (!hole) return !strcmp(pattern, name);
    size_t head = (size_t)(hole - pattern), digits = 0;
    if (strncmp(pattern, name, head)) return 0;
    while (name[head + digits] >= '0' && name[head + digits] <= '9') digits++;
    if (!digits || digits >= cap || strcmp(hole + 3, name + head + digits)) return 0;
    memcpy(index, name + head, digits);
    index[digits] = '\0';
    return 1;
}

static int hf_name_in(const tp_hf_rename *table, const char *tp_name, char *out, size_t cap)
{
    char index[32];
    for (; table->tp; table++) {
        if (!match(table->tp, tp_name, index, sizeof index)) continue;
        const char *hole = strstr(table->hf, "{i}");
        if (hole)
            snprintf(out, cap, "%.*s%s%s", (int)(hole - table->hf), table->hf, index, hole + 3);
        else
            snprintf(out, cap, "%s", table->hf);
        return 1;
    }
    return 0;
}

/* ---- tp_hf_names hooks (self: the tp model) -------------------------------------- */

static int seq2seq_name(const void *self, const char *tp_name, int form, char *out, size_t cap)
{
    const tp_model *model = self;
    const tp_hf_seq2seq_family *family = family_of_model(model);
    if (form) return 0; /* one spelling */
    return (model->hp.feed_forward_gated && family->gated_names && hf_name_in(family->gated_names, tp_name, out, cap)) ||
           hf_name_in(family->names, tp_name, out, cap);
}

/* final_logits_bias is [1, vocab]; tp's lm bias [vocab]. */
static int seq2seq_layout(const void *self, const tp_param *param, int64_t *shape, int64_t *offset)
{
    (void)self;
    if (strcmp(param->name, "target.lm.output_layer.bias")) return 0;
    shape[0] = 1;
    shape[1] = param->logical_rows;
    *offset = 0;
    return 2;
}

static int seq2seq_droppable(const void *self, const char *hf_name)
{
    for (const char *const *name = family_of_model(self)->droppable; *name; name++)
        if (!strcmp(*name, hf_name)) return 1;
    return 0;
}

tp_hf_names tp_hf_seq2seq_names(const tp_model *model)
{
    return (tp_hf_names){.model_type = family_of_model(model)->model_type, .self = model, .name = seq2seq_name,
                         .layout = seq2seq_layout, .droppable = seq2seq_droppable};
}

/* ---- tp -> Hugging Face -------------------------------------------------------------- */

int tp_hf_seq2seq_refuse(tp_config *config, const char *model_type, const char *key, const char *why)
{
    return tp_fail("%s: key '%s': %s (Hugging Face's %s has no equivalent)", tp_config_name(config), key, why,
                   model_type);
}

int tp_hf_seq2seq_embeddings_are(const tp_model *model, int target_side, const char *const *names, int count)
{
    int have = target_side ? model->tgt_embedding_count : model->embedding_count;
    const tp_embedding_type *const *types = target_side ? model->tgt_embedding_types : model->embedding_types;
    if (have != count) return 0;
    for (int i = 0; i < count; i++)
        if (strcmp(types[i]->name, names[i])) return 0;
    return 1;
}

void tp_hf_put_number(cJSON *hf, const char *key, double value) { tp_hf_put(hf, key, cJSON_CreateNumber(value)); }
void tp_hf_put_bool(cJSON *hf, const char *key, int value) { tp_hf_put(hf, key, cJSON_CreateBool(value)); }

/* What every family needs: one lm target, one shared word table, no ALBERT options. */
static int check_common(const tp_model *model, tp_config *config, const char *type)
{
    const tp_model_config *hp = &model->hp;
    if (model->target_count != 1 || strcmp(tp_model_target_name(model, 0), "lm"))
        return tp_hf_seq2seq_refuse(config, type, "target", "needs [lm]");
    if (!hp->share_embedding && strcmp(type, tp_hf_s2t.model_type)) /* speech: no source word table */
        return tp_hf_seq2seq_refuse(config, type, "share_embedding", "needs true");
    if (hp->mask != TP_MASK_FULLY_VISIBLE) return tp_hf_seq2seq_refuse(config, type, "mask", "needs fully_visible");
    if (hp->parameter_sharing) return tp_hf_seq2seq_refuse(config, type, "parameter_sharing", "needs false");
    if (hp->factorized_embedding_parameterization)
        return tp_hf_seq2seq_refuse(config, type, "factorized_embedding_parameterization", "needs false");
    return 0;
}

int tp_hf_seq2seq_architecture(const tp_model *model, tp_config *config, const char **architecture)
{
    const tp_hf_seq2seq_family *family = family_of_model(model);
    if (check_common(model, config, family->model_type) < 0 || family->expressible(model, config) < 0) return -1;
    *architecture = family->architecture;
    return 0;
}

void tp_hf_seq2seq_config_json(const tp_model *model, tp_config *config, const char *architecture, cJSON *hf)
{
    const tp_hf_seq2seq_family *family = family_of_model(model);
    const char *names[1] = {architecture};
    tp_hf_put(hf, "architectures", cJSON_CreateStringArray(names, 1));
    tp_hf_put(hf, "model_type", cJSON_CreateString(family->model_type));
    tp_hf_put_number(hf, "vocab_size", (double)model->hp.vocab_size);
    tp_hf_put_bool(hf, "is_encoder_decoder", 1);
    tp_hf_put_bool(hf, "tie_word_embeddings", model->hp.tie_weights);
    family->config_json(model, config, hf);
}
