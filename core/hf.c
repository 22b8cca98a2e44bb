#include "hf.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "checkpoint.h"
#include "error.h"
#include "fileio.h"
#include "hf_gpt2.h"
#include "hf_seq2seq.h"
#include "hf_vit.h"
#include "hf_beit.h"
#include "hf_clip.h"
#include "safetensors.h"

#define PATH_CAP 4096
#define NAME_CAP 512

typedef enum { HF_BERT, HF_ROBERTA, HF_ALBERT } hf_family;
enum { HEAD_MLM = 1, HEAD_SP = 2, HEAD_CLS = 4, HEAD_OTHER = 8 }; /* a model's heads, as bits */

typedef struct name_pair {
    const char *tp, *hf;
} name_pair;

/* ---- the name maps ------------------------------------------------------------ */

static const name_pair embedding_modules[] = {
    {"embedding.word.embedding", "embeddings.word_embeddings"},
    {"embedding.pos.embedding", "embeddings.position_embeddings"},
    {"embedding.seg.embedding", "embeddings.token_type_embeddings"},
    {"embedding.layer_norm", "embeddings.LayerNorm"},
    {"encoder.linear", "encoder.embedding_hidden_mapping_in"}, /* ALBERT only */
    {NULL, NULL},
};
static const name_pair bert_layer_parts[] = {
    {"self_attn.linear_layers.0", "attention.self.query"}, {"self_attn.linear_layers.1", "attention.self.key"},
    {"self_attn.linear_layers.2", "attention.self.value"}, {"self_attn.final_linear", "attention.output.dense"},
    {"layer_norm_1", "attention.output.LayerNorm"},        {"feed_forward.linear_1", "intermediate.dense"},
    {"feed_forward.linear_2", "output.dense"},             {"layer_norm_2", "output.LayerNorm"},
    {NULL, NULL},
};
static const name_pair albert_layer_parts[] = {
    {"self_attn.linear_layers.0", "attention.query"}, {"self_attn.linear_layers.1", "attention.key"},
    {"self_attn.linear_layers.2", "attention.value"}, {"self_attn.final_linear", "attention.dense"},
    {"layer_norm_1", "attention.LayerNorm"},          {"feed_forward.linear_1", "ffn"},
    {"feed_forward.linear_2", "ffn_output"},          {"layer_norm_2", "full_layer_layer_norm"},
    {NULL, NULL},
};
/* Heads: whole Hugging Face names (an entry matches a tp module or, with a leaf, a whole name). */
static const name_pair bert_heads[] = {
    {"target.mlm.linear_1", "cls.predictions.transform.dense"},
    {"target.mlm.layer_norm", "cls.predictions.transform.LayerNorm"},
    {"target.mlm.linear_2.weight", "cls.predictions.decoder.weight"},
    {"target.mlm.linear_2.bias", "cls.predictions.bias"},
    {"target.sp.linear_1", "bert.pooler.dense"},
    {"target.sp.linear_2", "cls.seq_relationship"},
    {"target.cls.linear_1", "bert.pooler.dense"},
    {"target.cls.linear_2", "classifier"},
    {NULL, NULL},
};
static const name_pair roberta_heads[] = {
    {"target.mlm.linear_1", "lm_head.dense"},
    {"target.mlm.layer_norm", "lm_head.layer_norm"},
    {"target.mlm.linear_2.weight", "lm_head.decoder.weight"},
    {"target.mlm.linear_2.bias", "lm_head.bias"},
    {"target.cls.linear_1", "classifier.dense"},
    {"target.cls.linear_2", "classifier.out_proj"},
    {NULL, NULL},
};
static const name_pair albert_heads[] = {
    {"target.mlm.linear_1", "predictions.dense"},
    {"target.mlm.layer_norm", "predictions.LayerNorm"},
    {"target.mlm.linear_2.weight", "predictions.decoder.weight"},
    {"target.mlm.linear_2.bias", "predictions.bias"},
    {"target.sp.linear_1", "albert.pooler"},
    {"target.sp.linear_2", "sop_classifier.classifier"},
    {"target.cls.linear_1", "albert.pooler"},
    {"target.cls.linear_2", "classifier"},
    {NULL, NULL},
};

typedef struct hf_family_info {
    const char *model_type, *prefix;
    const name_pair *layer_parts, *heads;
    double default_dropout;
} hf_family_info;

static const hf_family_info families[] = {
    [HF_BERT] = {"bert", "bert", bert_layer_parts, bert_heads, 0.1},
    [HF_ROBERTA] = {"roberta", "roberta", bert_layer_parts, roberta_heads, 0.1},
    [HF_ALBERT] = {"albert", "albert", albert_layer_parts, albert_heads, 0.0},
};

static const struct hf_architecture {
    hf_family family;
    const char *name;
    int heads;
} architectures[] = {
    {HF_BERT, "BertModel", 0},
    {HF_BERT, "BertForMaskedLM", HEAD_MLM},
    {HF_BERT, "BertForPreTraining", HEAD_MLM | HEAD_SP},
    {HF_BERT, "BertForNextSentencePrediction", HEAD_SP},
    {HF_BERT, "BertForSequenceClassification", HEAD_CLS},
    {HF_ROBERTA, "RobertaModel", 0},
    {HF_ROBERTA, "RobertaForMaskedLM", HEAD_MLM},
    {HF_ROBERTA, "RobertaForSequenceClassification", HEAD_CLS},
    {HF_ALBERT, "AlbertModel", 0},
    {HF_ALBERT, "AlbertForMaskedLM", HEAD_MLM},
    {HF_ALBERT, "AlbertForPreTraining", HEAD_MLM | HEAD_SP},
    {HF_ALBERT, "AlbertForSequenceClassification", HEAD_CLS},
};
#define ARCHITECTURE_COUNT (sizeof architectures / sizeof architectures[0])

/* Tensors of Hugging Face files that tp has no place for and may drop (if the model does not
 * use them): non-persistent buffers older files saved, the pooler of bare models, and copies
 * of tied weights.  Matched as name suffixes; the heads of the family's other architectures are
 * droppable too (hf_droppable). */
static const char *const droppable_suffixes[] = {
    "embeddings.position_ids", "embeddings.token_type_ids", "pooler.dense.weight", "pooler.dense.bias",
    "pooler.weight",           "pooler.bias",               "decoder.bias",        NULL,
};

/* How tp names map for one model. */
typedef struct hf_map {
    hf_family family;
    int sharing;  /* ALBERT with one layer group */
    int prefixed; /* backbone names carry "<prefix>." (models with a head) */
    int64_t types; /* token types written back (type_vocab_size) */
} hf_map;

/* name == module + "." + leaf (leaf without dots): the leaf, else NULL. */
static const char *leaf_of(const char *name, const char *module)
{
    size_t length = strlen(module);
    if (strncmp(name, module, length) || name[length] != '.' || strchr(name + length + 1, '.')) return NULL;
    return name + length + 1;
}

/* A table entry matching a whole name or a module + leaf: the Hugging Face name in out. */
static int map_by_table(const name_pair *table, const char *name, const char *hf_prefix, char *out, size_t cap)
{
    for (const name_pair *entry = table; entry->tp; entry++) {
        const char *leaf = leaf_of(name, entry->tp);
        if (!strcmp(name, entry->tp)) return snprintf(out, cap, "%s%s", hf_prefix, entry->hf) > 0;
        if (leaf) return snprintf(out, cap, "%s%s.%s", hf_prefix, entry->hf, leaf) > 0;
    }
    return 0;
}

static int map_layer(const hf_map *map, const char *name, const char *hf_prefix, char *out, size_t cap)
{
    static const char layers[] = "encoder.transformer.";
    if (strncmp(name, layers, sizeof layers - 1)) return 0;
    const char *rest = name + sizeof layers - 1;
    int layer = 0, consumed = 0;
    if (!map->sharing) {
        if (sscanf(rest, "%d.%n", &layer, &consumed) != 1 || consumed == 0) return 0;
        rest += consumed;
    }
    char layer_prefix[NAME_CAP];
    if (map->family == HF_ALBERT)
        snprintf(layer_prefix, sizeof layer_prefix, "%sencoder.albert_layer_groups.%d.albert_layers.0.", hf_prefix,
                 layer);
    else
        snprintf(layer_prefix, sizeof layer_prefix, "%sencoder.layer.%d.", hf_prefix, layer);
    return map_by_table(families[map->family].layer_parts, rest, layer_prefix, out, cap);
}

/* The Hugging Face name of a tp parameter, backbone names with the prefix or without; 0 when unmapped. */
static int hf_name_of(const hf_map *map, const char *name, int prefixed, char *out, size_t cap)
{
    char prefix[64] = "";
    if (prefixed) snprintf(prefix, sizeof prefix, "%s.", families[map->family].prefix);
    if (!strncmp(name, "target.", 7)) return map_by_table(families[map->family].heads, name, "", out, cap);
    return map_by_table(embedding_modules, name, prefix, out, cap) || map_layer(map, name, prefix, out, cap);
}

static int hf_droppable(hf_family family, const char *name)
{
    size_t length = strlen(name);
    for (const char *const *suffix = droppable_suffixes; *suffix; suffix++) {
        size_t suffix_length = strlen(*suffix);
        if (length >= suffix_length && !strcmp(name + length - suffix_length, *suffix)) return 1;
    }
    for (const name_pair *entry = families[family].heads; entry->tp; entry++) {
        size_t head_length = strlen(entry->hf);
        if (!strncmp(name, entry->hf, head_length) && (name[head_length] == '.' || !name[head_length])) return 1;
    }
    return 0;
}

/* ---- the family of a tp model ------------------------------------------------- */

static int model_heads(const tp_model *model)
{
    int heads = 0;
    for (int i = 0; i < model->target_count; i++) {
        const char *name = tp_model_target_name(model, i);
        heads |= !strcmp(name, "mlm")   ? HEAD_MLM
                 : !strcmp(name, "sp")  ? HEAD_SP
                 : !strcmp(name, "cls") ? HEAD_CLS
                                        : HEAD_OTHER;
    }
    return heads;
}

/* ALBERT has the factorized embedding (Hugging Face's always maps it), RoBERTa the position offset. */
static hf_map model_map(const tp_model *model)
{
    const tp_model_config *hp = &model->hp;
    hf_map map = {HF_BERT, hp->parameter_sharing, model->target_count > 0, 2};
    if (hp->factorized_embedding_parameterization)
        map.family = HF_ALBERT;
    else if (hp->position_offset > 0)
        map.family = HF_ROBERTA;
    return map;
}

/* ---- config.json -> tp model config -------------------------------------------- */

int tp_hf_json_range(const char *path, const cJSON *root, const char *key, int64_t fallback, int64_t min, int64_t max,
                     int64_t *out)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(root, key);
    if (cJSON_IsNull(item)) item = NULL;
    if (!item && fallback != TP_HF_REQUIRED) {
        *out = fallback;
        return 0;
    }
    if (!item) return tp_fail("%s: key '%s': missing", path, key);
    /* Beyond 2^53 a double holds no exact integer (and casting it past int64_t is undefined). */
    if (!cJSON_IsNumber(item) || fabs(item->valuedouble) > 9007199254740992.0 ||
        item->valuedouble != (double)(int64_t)item->valuedouble)
        return tp_fail("%s: key '%s': expected an integer", path, key);
    if (item->valuedouble < (double)min || item->valuedouble > (double)max)
        return tp_fail("%s: key '%s': value %.0f out of range [%lld, %lld]", path, key, item->valuedouble,
                       (long long)min, (long long)max);
    *out = (int64_t)item->valuedouble;
    return 0;
}

int tp_hf_json_number(const char *path, const cJSON *root, const char *key, double fallback, double *out)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(root, key);
    *out = fallback;
    if (!item || cJSON_IsNull(item)) return 0;
    if (!cJSON_IsNumber(item)) return tp_fail("%s: key '%s': expected a number", path, key);
    *out = item->valuedouble;
    return 0;
}

static int hf_check_string(const char *path, const cJSON *root, const char *key, const char *expected)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(root, key);
    if (!item) return 0;
    if (!cJSON_IsString(item) || strcmp(item->valuestring, expected) != 0)
        return tp_fail("%s: key '%s': only '%s' is supported", path, key, expected);
    return 0;
}

static int hf_bool(const char *path, const cJSON *root, const char *key, int fallback, int *out)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(root, key);
    if (!item) {
        *out = fallback;
        return 0;
    }
    if (!cJSON_IsBool(item)) return tp_fail("%s: key '%s': expected true or false", path, key);
    *out = cJSON_IsTrue(item);
    return 0;
}

/* Hugging Face activation names and tp's; writing back uses the first Hugging Face name of each. */
static const struct hf_activation {
    const char *hf, *tp;
    tp_activation value;
} activations[] = {
    {"gelu", "gelu", TP_ACT_GELU}, {"gelu_new", "gelu_fast", TP_ACT_GELU_FAST},
    {"gelu_pytorch_tanh", "gelu_fast", TP_ACT_GELU_FAST}, {"relu", "relu", TP_ACT_RELU},
    {"silu", "silu", TP_ACT_SILU}, {"swish", "silu", TP_ACT_SILU},
    {"quick_gelu", "quick_gelu", TP_ACT_QUICK_GELU},
};
#define ACTIVATION_COUNT (sizeof activations / sizeof activations[0])

const char *tp_hf_activation_to_tp(const char *hf_name)
{
    for (size_t i = 0; i < ACTIVATION_COUNT; i++)
        if (!strcmp(hf_name, activations[i].hf)) return activations[i].tp;
    return NULL;
}

const char *tp_hf_activation_name(tp_activation activation)
{
    const char *name = "gelu";
    for (size_t i = ACTIVATION_COUNT; i-- > 0;)
        if (activations[i].value == activation) name = activations[i].hf;
    return name;
}

static int hf_activation(const char *path, const cJSON *root, const char **out)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(root, "hidden_act");
    const char *name = cJSON_IsString(item) ? item->valuestring : item ? "" : "gelu";
    for (size_t i = 0; i < ACTIVATION_COUNT; i++)
        if (!strcmp(name, activations[i].hf)) {
            *out = activations[i].tp;
            return 0;
        }
    return tp_fail("%s: key 'hidden_act': '%s' is not supported (supported: gelu, gelu_new, gelu_pytorch_tanh, relu, "
                   "silu, swish)", path, name);
}

static int hf_model_family(const char *path, const cJSON *root, hf_family *out)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(root, "model_type");
    if (!item) return tp_fail("%s: key 'model_type': missing", path);
    for (int i = 0; i < 3; i++)
        if (cJSON_IsString(item) && !strcmp(item->valuestring, families[i].model_type)) {
            *out = (hf_family)i;
            return 0;
        }
    return tp_fail("%s: key 'model_type': '%s' is not supported (supported: bert, roberta, albert, gpt2, vit, beit, clip, t5, bart)", path,
                   cJSON_IsString(item) ? item->valuestring : "?");
}

static void list_architectures(hf_family family, char *out, size_t cap)
{
    out[0] = '\0';
    for (size_t i = 0; i < ARCHITECTURE_COUNT; i++)
        if (architectures[i].family == family)
            snprintf(out + strlen(out), cap - strlen(out), "%s%s", out[0] ? ", " : "", architectures[i].name);
}

/* architectures[0] -> the heads (absent: the bare model). */
int tp_hf_json_int(const char *path, const cJSON *root, const char *key, int64_t fallback, int64_t *out)
{
    return tp_hf_json_range(path, root, key, fallback, 0, INT32_MAX, out);
}

int tp_hf_json_bool(const char *path, const cJSON *root, const char *key, int fallback, int *out)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(root, key);
    *out = fallback;
    if (!item) return 0;
    if (!cJSON_IsBool(item)) return tp_fail("%s: key '%s': expected true or false", path, key);
    *out = cJSON_IsTrue(item);
    return 0;
}

const char *tp_hf_json_string(const cJSON *root, const char *key, const char *fallback)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(root, key);
    return cJSON_IsString(item) ? item->valuestring : fallback;
}

int tp_hf_first_architecture(const char *path, const cJSON *root, const char **name)
{
    const cJSON *list = cJSON_GetObjectItemCaseSensitive(root, "architectures");
    *name = NULL;
    if (!list || cJSON_IsNull(list)) return 0;
    const cJSON *first = cJSON_IsArray(list) ? cJSON_GetArrayItem(list, 0) : NULL;
    if (!cJSON_IsString(first)) return tp_fail("%s: key 'architectures': expected a list of class names", path);
    *name = first->valuestring;
    return 0;
}

int tp_hf_headed_architecture(const char *path, const cJSON *root, const char *bare_name, const char *headed_name,
                              int *headed)
{
    const char *name;
    *headed = 0;
    if (tp_hf_first_architecture(path, root, &name) < 0) return -1;
    if (!name || !strcmp(name, bare_name)) return 0;
    if (strcmp(name, headed_name))
        return tp_fail("%s: key 'architectures': '%s' is not supported (supported: %s, %s)", path, name, bare_name,
                       headed_name);
    *headed = 1;
    return 0;
}

static int hf_heads(const char *path, const cJSON *root, hf_family family, int *heads)
{
    const char *name;
    *heads = 0;
    if (tp_hf_first_architecture(path, root, &name) < 0) return -1;
    if (!name) return 0;
    for (size_t i = 0; i < ARCHITECTURE_COUNT; i++)
        if (architectures[i].family == family && !strcmp(architectures[i].name, name)) {
            *heads = architectures[i].heads;
            return 0;
        }
    char supported[512];
    list_architectures(family, supported, sizeof supported);
    return tp_fail("%s: key 'architectures': '%s' is not supported (supported: %s)", path, name, supported);
}

static int hf_labels(const char *path, const cJSON *root, int64_t *labels)
{
    const cJSON *id2label = cJSON_GetObjectItemCaseSensitive(root, "id2label");
    if (cJSON_IsObject(id2label)) *labels = cJSON_GetArraySize(id2label);
    else if (tp_hf_json_range(path, root, "num_labels", 2, 1, 1 << 20, labels) < 0) return -1;
    if (*labels < 2)
        return tp_fail("%s: key 'id2label': %lld label(s): tp's cls head classifies into 2 or more (no regression)",
                       path, (long long)*labels);
    return 0;
}

static void add_strings(cJSON *object, const char *key, const char *const *values, int count)
{
    cJSON_AddItemToObject(object, key, cJSON_CreateStringArray(values, count));
}

/* The hyper-parameters every family shares, into the tp config object. */
static int read_common(const char *path, const cJSON *root, hf_family family, cJSON *tp)
{
    int64_t hidden = 0, layers = 0, heads = 0, intermediate = 0, vocab = 0, types = 0;
    double eps = 0, dropout = 0;
    const char *act = NULL;
    if (tp_hf_json_range(path, root, "hidden_size", TP_HF_REQUIRED, 1, 1 << 16, &hidden) < 0 ||
        tp_hf_json_range(path, root, "num_hidden_layers", TP_HF_REQUIRED, 1, 1024, &layers) < 0 ||
        tp_hf_json_range(path, root, "num_attention_heads", TP_HF_REQUIRED, 1, 1024, &heads) < 0 ||
        tp_hf_json_range(path, root, "intermediate_size", TP_HF_REQUIRED, 1, 1 << 20, &intermediate) < 0 ||
        tp_hf_json_range(path, root, "vocab_size", TP_HF_REQUIRED, 1, INT32_MAX, &vocab) < 0 ||
        tp_hf_json_range(path, root, "type_vocab_size", 2, 1, 2, &types) < 0 ||
        tp_hf_json_number(path, root, "layer_norm_eps", 1e-12, &eps) < 0 ||
        tp_hf_json_number(path, root, "hidden_dropout_prob", families[family].default_dropout, &dropout) < 0 ||
        hf_activation(path, root, &act) < 0 || hf_check_string(path, root, "position_embedding_type", "absolute") < 0)
        return -1;
    static const char *const embedding[] = {"word", "pos", "seg"};
    cJSON_AddNumberToObject(tp, "emb_size", (double)hidden);
    cJSON_AddNumberToObject(tp, "hidden_size", (double)hidden);
    cJSON_AddNumberToObject(tp, "feedforward_size", (double)intermediate);
    cJSON_AddNumberToObject(tp, "heads_num", (double)heads);
    cJSON_AddNumberToObject(tp, "layers_num", (double)layers);
    cJSON_AddNumberToObject(tp, "vocab_size", (double)vocab);
    cJSON_AddNumberToObject(tp, "dropout", dropout);
    cJSON_AddStringToObject(tp, "hidden_act", act);
    add_strings(tp, "embedding", embedding, 3);
    cJSON_AddStringToObject(tp, "encoder", "transformer");
    cJSON_AddStringToObject(tp, "mask", "fully_visible");
    cJSON_AddStringToObject(tp, "layernorm_positioning", "post");
    cJSON_AddStringToObject(tp, "layernorm", "normal_torch");
    cJSON_AddStringToObject(tp, "embedding_layernorm", "normal_torch");
    cJSON_AddStringToObject(tp, "target_layernorm", "normal_torch");
    cJSON_AddNumberToObject(tp, "layernorm_eps", eps);
    return 0;
}

/* Positions, and ALBERT's factorized, shared layers. */
static int read_family(const char *path, const cJSON *root, hf_family family, cJSON *tp)
{
    int64_t positions = 0, offset = 0, layers = (int64_t)cJSON_GetObjectItemCaseSensitive(tp, "layers_num")->valuedouble;
    if (tp_hf_json_range(path, root, "max_position_embeddings", TP_HF_REQUIRED, 1, 1 << 20, &positions) < 0) return -1;
    if (family == HF_ROBERTA) {
        int64_t padding = 0;
        if (tp_hf_json_range(path, root, "pad_token_id", 1, 0, 1 << 20, &padding) < 0) return -1;
        offset = padding + 1;
        if (positions <= offset)
            return tp_fail("%s: key 'max_position_embeddings': %lld rows leave no position after padding_idx + 1 = %lld",
                           path, (long long)positions, (long long)offset);
        cJSON_AddNumberToObject(tp, "position_offset", (double)offset);
    }
    cJSON_AddNumberToObject(tp, "max_seq_length", (double)(positions - offset));
    if (family != HF_ALBERT) return 0;
    int64_t emb = 0, groups = 0, inner = 0;
    if (tp_hf_json_range(path, root, "embedding_size", 128, 1, 1 << 16, &emb) < 0 ||
        tp_hf_json_range(path, root, "num_hidden_groups", 1, 1, layers, &groups) < 0 ||
        tp_hf_json_range(path, root, "inner_group_num", 1, 1, 1, &inner) < 0)
        return -1;
    if (groups != 1 && groups != layers)
        return tp_fail("%s: key 'num_hidden_groups': %lld groups for %lld layers: tp shares one layer or none",
                       path, (long long)groups, (long long)layers);
    cJSON_ReplaceItemInObjectCaseSensitive(tp, "emb_size", cJSON_CreateNumber((double)emb));
    cJSON_AddBoolToObject(tp, "factorized_embedding_parameterization", 1);
    cJSON_AddBoolToObject(tp, "parameter_sharing", groups == 1);
    return 0;
}

static int read_heads(const char *path, const cJSON *root, hf_family family, cJSON *tp)
{
    int heads = 0;
    if (hf_heads(path, root, family, &heads) < 0) return -1;
    const char *targets[3];
    int count = 0;
    if (heads & HEAD_MLM) {
        int tie = 1;
        const cJSON *act = cJSON_GetObjectItemCaseSensitive(tp, "hidden_act");
        if (hf_bool(path, root, "tie_word_embeddings", 1, &tie) < 0) return -1;
        /* RobertaLMHead applies the exact GELU whatever hidden_act says; tp's head uses hidden_act. */
        if (family == HF_ROBERTA && strcmp(act->valuestring, "gelu"))
            return tp_fail("%s: key 'hidden_act': RoBERTa's MLM head needs 'gelu'", path);
        cJSON_AddBoolToObject(tp, "tie_weights", tie);
        targets[count++] = "mlm";
    }
    if (heads & HEAD_SP) targets[count++] = "sp";
    if (heads & HEAD_CLS) {
        int64_t labels = 0;
        if (hf_labels(path, root, &labels) < 0) return -1;
        cJSON_AddNumberToObject(tp, "labels_num", (double)labels);
        cJSON_AddStringToObject(tp, "pooling", "first");
        targets[count++] = "cls";
    }
    if (count) add_strings(tp, "target", targets, count);
    return 0;
}

static cJSON *read_json_object(const char *path)
{
    char *text = tp_read_file(path, NULL);
    if (!text) return NULL;
    cJSON *root = cJSON_Parse(text);
    free(text);
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        tp_fail("%s: not a JSON object", path);
        return NULL;
    }
    return root;
}

tp_config *tp_hf_config(const char *dir)
{
    char path[PATH_CAP];
    snprintf(path, sizeof path, "%s/config.json", dir);
    cJSON *root = read_json_object(path);
    if (!root) return NULL;
    hf_family family = HF_BERT;
    cJSON *tp = cJSON_CreateObject();
    tp_config *config = NULL;
    int parsed = tp_hf_seq2seq_is(root) ? tp_hf_seq2seq_config(path, root, tp) == 0
                 : tp_hf_vit_is(root)    ? tp_hf_vit_config(path, root, tp) == 0
                 : tp_hf_beit_is(root)   ? tp_hf_beit_config(path, root, tp) == 0
                 : tp_hf_clip_is(root)   ? tp_hf_clip_config(path, root, tp) == 0
                 : tp_hf_gpt2_is(root) ? tp_hf_gpt2_config(path, root, tp) == 0
                                   : hf_model_family(path, root, &family) == 0 && read_common(path, root, family, tp) == 0 &&
                                         read_family(path, root, family, tp) == 0 &&
                                         read_heads(path, root, family, tp) == 0;
    if (parsed) {
        cJSON_AddItemToObject(tp, "huggingface", cJSON_Duplicate(root, 1));
        char *text = cJSON_PrintUnformatted(tp);
        config = tp_config_parse(path, text);
        free(text);
    }
    cJSON_Delete(tp);
    cJSON_Delete(root);
    return config;
}

/* ---- weights in ---------------------------------------------------------------- */

static int is_segment(const char *tp_name) { return !strcmp(tp_name, "embedding.seg.embedding.weight"); }

/* Token types [T, E] -> segments [3, E]: rows 0 (padding) and 1 (A) <- type 0, row 2 (B) <- type T-1. */
static int read_segments(const tp_st_file *file, const tp_st_tensor *tensor, int64_t emb, float *host)
{
    int64_t types = tensor->ndim == 2 ? tensor->shape[0] : 0, shape[2] = {types, emb};
    if (types < 1 || types > 2)
        return tp_fail("%s: tensor '%s': expected 1 or 2 token types of %lld values", tp_st_path(file), tensor->name,
                       (long long)emb);
    float *rows = tp_xmalloc((size_t)(2 * emb) * sizeof *rows);
    int status = tp_st_read_f32(file, tensor->name, 2, shape, rows);
    if (status == 0) {
        memcpy(host, rows, (size_t)emb * sizeof *host);
        memcpy(host + emb, rows, (size_t)emb * sizeof *host);
        memcpy(host + 2 * emb, rows + (types - 1) * emb, (size_t)emb * sizeof *host);
    }
    free(rows);
    return status;
}

/* The tp_hf_names hooks of BERT, RoBERTa and ALBERT (self: the hf_map). */
static int bert_name(const void *self, const char *tp_name, int form, char *out, size_t cap)
{
    const hf_map *map = self;
    if (form && !strncmp(tp_name, "target.", 7)) return 0; /* heads have one spelling */
    return hf_name_of(map, tp_name, form ? !map->prefixed : map->prefixed, out, cap);
}

/* Writing back, type t comes from segment row t + 1. */
static int bert_layout(const void *self, const tp_param *param, int64_t *shape, int64_t *offset)
{
    const hf_map *map = self;
    if (!is_segment(param->name)) return 0;
    shape[0] = map->types;
    shape[1] = param->tensor.shape[1];
    *offset = shape[1];
    return 2;
}

static int bert_read(const void *self, const tp_st_file *file, const char *hf_name, const tp_param *param, float *host)
{
    (void)self;
    if (!is_segment(param->name)) return 0;
    return read_segments(file, tp_st_find(file, hf_name), param->tensor.shape[1], host) < 0 ? -1 : 1;
}

static int bert_droppable(const void *self, const char *hf_name)
{
    return hf_droppable(((const hf_map *)self)->family, hf_name);
}

static tp_hf_names bert_names(const hf_map *map)
{
    return (tp_hf_names){.model_type = families[map->family].model_type, .self = map, .name = bert_name,
                         .layout = bert_layout, .read = bert_read, .droppable = bert_droppable};
}

/* The Hugging Face tensor's shape for param (ndim) and the offset of its values in tp's. */
static int hf_layout(const tp_hf_names *names, const tp_param *param, int64_t *shape, int64_t *offset)
{
    int ndim = names->layout ? names->layout(names->self, param, shape, offset) : 0;
    if (ndim == TP_HF_SCALAR) return 0;
    if (ndim) return ndim;
    memcpy(shape, param->tensor.shape, sizeof param->tensor.shape);
    shape[0] = param->logical_rows;
    *offset = 0;
    return param->tensor.ndim;
}

static int load_param(const tp_st_file *file, const char *hf_name, const tp_hf_names *names, const tp_params *params,
                      const tp_param *param)
{
    int64_t storage = tp_numel(&param->tensor), shape[TP_MAX_DIMS], offset = 0;
    float *host = tp_xcalloc((size_t)storage, sizeof *host);
    int ndim = hf_layout(names, param, shape, &offset);
    int status = names->read ? names->read(names->self, file, hf_name, param, host) : 0;
    if (status == 0) status = tp_st_read_f32(file, hf_name, ndim, shape, host + offset);
    if (status >= 0) params->backend->upload(param->tensor.data, host, (size_t)storage * sizeof *host);
    free(host);
    return status < 0 ? -1 : 0;
}

static void report_dropped(tp_hf_report *report, const char *name)
{
    size_t used = strlen(report->dropped_names), cap = sizeof report->dropped_names;
    report->dropped++;
    if (used + strlen(name) + 8 < cap)
        snprintf(report->dropped_names + used, cap - used, "%s%s", used ? ", " : "", name);
    else if (used + 4 < cap && strcmp(report->dropped_names + used - 3, "..."))
        snprintf(report->dropped_names + used, cap - used, ", ...");
}

/* Every tensor of the file is used or droppable; the droppable ones go into the report. */
static int check_file_used(const tp_st_file *file, const tp_hf_names *names, char **used, int64_t used_count,
                           tp_hf_report *report)
{
    for (int64_t i = 0; i < tp_st_count(file); i++) {
        const char *name = tp_st_at(file, i)->name;
        int found = 0;
        for (int64_t j = 0; j < used_count && !found; j++) found = !strcmp(used[j], name);
        if (found) continue;
        if (!names->droppable(names->self, name))
            return tp_fail("%s: tensor '%s' has no counterpart in tp's %s model with these heads", tp_st_path(file),
                           name, names->model_type);
        report_dropped(report, name);
    }
    return 0;
}

const char *tp_hf_pair_find(const tp_hf_name_pair *pairs, size_t count, const char *tp_name)
{
    for (size_t i = 0; i < count; i++)
        if (!strcmp(tp_name, pairs[i].tp)) return pairs[i].hf;
    return NULL;
}

const char *tp_hf_pair_find_part(const tp_hf_name_pair *pairs, size_t count, const char *part, const char **leaf)
{
    *leaf = strrchr(part, '.');
    for (size_t i = 0; *leaf && i < count; i++)
        if (strlen(pairs[i].tp) == (size_t)(*leaf - part) && !strncmp(part, pairs[i].tp, (size_t)(*leaf - part)))
            return pairs[i].hf;
    return NULL;
}

/* The tensor of tp parameter tp_name in either spelling; found names it (the usual spelling if absent).
 * -1 when the parameter has no Hugging Face name at all. */
static int find_hf(const tp_st_file *file, const tp_hf_names *names, const char *tp_name, char *found, size_t cap,
                   const tp_st_tensor **tensor)
{
    char other[NAME_CAP];
    if (!names->name(names->self, tp_name, 0, found, cap)) return -1;
    *tensor = tp_st_find(file, found);
    if (!*tensor && names->name(names->self, tp_name, 1, other, sizeof other) && (*tensor = tp_st_find(file, other)))
        snprintf(found, cap, "%s", other);
    return 0;
}

int tp_hf_load_names(const char *path, tp_model *model, const char *skip_prefix, const tp_hf_names *names,
                     tp_hf_report *report)
{
    char found[NAME_CAP];
    tp_st_file *file = tp_st_open(path);
    if (!file) return -1;
    tp_params *params = &model->params;
    char **used = tp_xcalloc((size_t)params->count + 1, sizeof *used);
    int64_t used_count = 0;
    int status = 0;
    for (int64_t i = 0; i < params->count && status == 0; i++) {
        tp_param *param = params->items[i];
        const tp_st_tensor *tensor = NULL;
        if (skip_prefix && !strncmp(param->name, skip_prefix, strlen(skip_prefix))) continue;
        if (find_hf(file, names, param->name, found, sizeof found, &tensor) < 0)
            status = tp_fail("%s: tp parameter '%s' has no Hugging Face counterpart in a %s model", path, param->name,
                             names->model_type);
        else if (!tensor && names->optional && names->optional(names->self, param->name))
            params->backend->zero(param->tensor.data, tp_numel(&param->tensor));
        else if (!tensor)
            status = tp_fail("%s: tensor '%s' is missing", path, found);
        else if ((status = load_param(file, found, names, params, param)) == 0)
            used[used_count++] = tp_xstrdup(found);
    }
    if (status == 0 && report) {
        status = check_file_used(file, names, used, used_count, report);
        report->written = used_count;
    }
    for (int64_t i = 0; i < used_count; i++) free(used[i]);
    free(used);
    tp_st_close(file);
    return status;
}

/* report NULL: lenient (unused tensors are ignored). */
static int load_weights(const char *dir, tp_model *model, const char *skip_prefix, tp_hf_report *report)
{
    char path[PATH_CAP];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    if (tp_hf_clip_model(model)) { /* first: its text stream's causal mask is the model's */
        tp_hf_names names = tp_hf_clip_names(model);
        return tp_hf_load_names(path, model, skip_prefix, &names, report);
    }
    if (tp_hf_gpt2_model(model)) return tp_hf_gpt2_load(path, model, skip_prefix, report);
    if (tp_hf_vit_model(model)) return tp_hf_vit_load(path, model, skip_prefix, report);
    if (tp_hf_beit_model(model)) {
        tp_hf_names names = tp_hf_beit_names(model);
        return tp_hf_load_names(path, model, skip_prefix, &names, report);
    }
    if (tp_hf_seq2seq_model(model)) {
        tp_hf_names names = tp_hf_seq2seq_names(model);
        return tp_hf_load_names(path, model, skip_prefix, &names, report);
    }
    hf_map map = model_map(model);
    tp_hf_names names = bert_names(&map);
    return tp_hf_load_names(path, model, skip_prefix, &names, report);
}

int tp_hf_load(const char *dir, tp_model *model, const char *skip_prefix)
{
    return load_weights(dir, model, skip_prefix, NULL);
}

/* ---- weights out --------------------------------------------------------------- */

/* Writes the model's parameters to path: tp names (names NULL; model_config_json into the metadata)
 * or Hugging Face's. */
static int write_weights(const char *path, const tp_model *model, const tp_hf_names *names,
                         const char *model_config_json)
{
    const tp_params *params = &model->params;
    float *host = tp_xmalloc((size_t)params->total * sizeof *host);
    char name[NAME_CAP];
    int status = 0;
    params->backend->download(host, params->data, (size_t)params->total * sizeof *host);
    tp_st_writer *writer = tp_st_writer_new();
    for (int64_t i = 0; i < params->count && status == 0; i++) {
        const tp_param *param = params->items[i];
        if (names && names->unwritten && names->unwritten(names->self, param->name)) continue;
        int64_t shape[TP_MAX_DIMS], offset = 0;
        int ndim = names ? hf_layout(names, param, shape, &offset) : param->tensor.ndim;
        if (!names) {
            memcpy(shape, param->tensor.shape, sizeof shape);
            shape[0] = param->logical_rows;
        }
        snprintf(name, sizeof name, "%s", param->name);
        if (names && !names->name(names->self, param->name, 0, name, sizeof name))
            status = tp_fail("%s: tp parameter '%s' has no Hugging Face counterpart in a %s model", path, param->name,
                             names->model_type);
        else
            tp_st_writer_add(writer, name, TP_ST_F32, ndim, shape, host + param->offset + offset);
    }
    /* transformers refuses safetensors files without format "pt". */
    tp_st_writer_metadata(writer, "format", names ? "pt" : "tp");
    if (model_config_json) tp_st_writer_metadata(writer, "model_config", model_config_json);
    if (status == 0) status = tp_st_writer_save(writer, path);
    tp_st_writer_free(writer);
    free(host);
    return status;
}

int tp_hf_write_names(const char *path, const tp_model *model, const tp_hf_names *names)
{
    return write_weights(path, model, names, NULL);
}

/* ---- directories --------------------------------------------------------------- */

static const char *const tokenizer_files[] = {
    "vocab.txt",       "vocab.json",           "merges.txt",          "spiece.model",      "sentencepiece.bpe.model",
    "tokenizer.json",  "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json", NULL,
};

static int copy_file(const char *from, const char *to_dir)
{
    size_t bytes = 0;
    const char *base = strrchr(from, '/');
    char to[PATH_CAP];
    snprintf(to, sizeof to, "%s/%s", to_dir, base ? base + 1 : from);
    char *data = tp_read_file(from, &bytes);
    if (!data) return -1;
    int status = tp_write_file_atomic(to, data, bytes);
    free(data);
    return status;
}

/* The known tokenizer files found in dir. */
static int copy_tokenizer_files(const char *dir, const char *to_dir)
{
    char path[PATH_CAP];
    for (const char *const *file = tokenizer_files; *file; file++) {
        snprintf(path, sizeof path, "%s/%s", dir, *file);
        if (access(path, F_OK) == 0 && copy_file(path, to_dir) < 0) return -1;
    }
    return 0;
}

/* out_dir must be new; files go into "<out_dir>.tmp.<pid>", renamed into place by finish_dir. */
static int start_dir(const char *out_dir, char *tmp, size_t cap)
{
    struct stat info;
    if (stat(out_dir, &info) == 0) return tp_fail("%s: already exists (the output must be a new directory)", out_dir);
    snprintf(tmp, cap, "%s.tmp.%ld", out_dir, (long)getpid());
    tp_remove_tree(tmp);
    return tp_mkdirs(tmp);
}

static int finish_dir(const char *tmp, const char *out_dir, int status)
{
    if (status == 0 && rename(tmp, out_dir) != 0) status = tp_fail("%s: %s", out_dir, strerror(errno));
    if (status == 0) status = tp_fsync_parent_dir(out_dir);
    if (status != 0) tp_remove_tree(tmp);
    return status;
}

/* A model built from config and allocated on the CPU (its weights still to be loaded). */
static int build_model(tp_model *model, tp_config *config, int64_t vocab_size)
{
    if (tp_model_build(model, config, vocab_size) < 0) return -1;
    if (tp_config_check_unused(config) < 0) {
        tp_model_free(model);
        return -1;
    }
    tp_model_allocate(model, &tp_cpu_backend, 1);
    return 0;
}

int tp_hf_convert_from_hf(const char *hf_dir, const char *out_dir, tp_hf_report *report)
{
    char tmp[PATH_CAP], path[PATH_CAP + 64];
    int64_t vocab_size = 0;
    memset(report, 0, sizeof *report);
    tp_config *config = tp_hf_config(hf_dir);
    if (!config) return -1;
    tp_model model;
    if (tp_config_int(config, "vocab_size", 0, 1, INT32_MAX, &vocab_size) < 0 ||
        build_model(&model, config, vocab_size) < 0) {
        tp_config_free(config);
        return -1;
    }
    int status = load_weights(hf_dir, &model, NULL, report);
    if (status == 0) status = start_dir(out_dir, tmp, sizeof tmp);
    if (status == 0) {
        char *config_json = tp_config_to_json(config);
        snprintf(path, sizeof path, "%s/model.safetensors", tmp);
        status = write_weights(path, &model, NULL, config_json);
        free(config_json);
        snprintf(path, sizeof path, "%s/model_config.json", tmp);
        if (status == 0) status = tp_config_save(config, path);
        if (status == 0) status = copy_tokenizer_files(hf_dir, tmp);
        status = finish_dir(tmp, out_dir, status);
    }
    tp_model_free(&model);
    tp_config_free(config);
    return status;
}

/* ---- tp model -> config.json ---------------------------------------------------- */

static int refuse(tp_config *config, const char *key, const char *why)
{
    return tp_fail("%s: key '%s': %s (Hugging Face's models have no equivalent)", tp_config_name(config), key, why);
}

/* What Hugging Face's BERT, RoBERTa and ALBERT cannot express. */
static int check_expressible(const tp_model *model, tp_config *config, const hf_map *map, int heads)
{
    const tp_model_config *hp = &model->hp;
    const char *pooling = "first";
    if (hp->layernorm != TP_NORM_TORCH) return refuse(config, "layernorm", "needs normal_torch");
    if (hp->embedding_layernorm != TP_NORM_TORCH) return refuse(config, "embedding_layernorm", "needs normal_torch");
    if ((heads & HEAD_MLM) && hp->target_layernorm != TP_NORM_TORCH)
        return refuse(config, "target_layernorm", "needs normal_torch");
    if (hp->layernorm_pre) return refuse(config, "layernorm_positioning", "needs post");
    if (hp->mask != TP_MASK_FULLY_VISIBLE) return refuse(config, "mask", "needs fully_visible");
    if (hp->remove_embedding_layernorm) return refuse(config, "remove_embedding_layernorm", "needs false");
    if (hp->remove_transformer_bias) return refuse(config, "remove_transformer_bias", "needs false");
    if (model->embedding_count != 3 || !tp_params_find(&model->params, "embedding.seg.embedding.weight") ||
        !tp_params_find(&model->params, "embedding.pos.embedding.weight"))
        return refuse(config, "embedding", "needs word, pos and seg");
    if ((heads & HEAD_CLS) && (tp_config_string(config, "pooling", "first", &pooling) < 0 || strcmp(pooling, "first")))
        return refuse(config, "pooling", "the classifiers pool the first token");
    if (map->family == HF_ROBERTA && (heads & HEAD_MLM) && hp->hidden_act != TP_ACT_GELU)
        return refuse(config, "hidden_act", "RoBERTa's MLM head needs gelu");
    return 0;
}

void tp_hf_put(cJSON *object, const char *key, cJSON *item)
{
    if (cJSON_GetObjectItemCaseSensitive(object, key))
        cJSON_ReplaceItemInObjectCaseSensitive(object, key, item);
    else
        cJSON_AddItemToObject(object, key, item);
}

static void put_number(cJSON *object, const char *key, double value) { tp_hf_put(object, key, cJSON_CreateNumber(value)); }

static double config_number(tp_config *config, const char *key, double fallback)
{
    double value = fallback;
    tp_config_double(config, key, fallback, -1e300, 1e300, &value);
    return value;
}

/* id2label / label2id, kept from the original config when they still fit. */
static void put_labels(cJSON *hf, int64_t labels)
{
    const cJSON *id2label = cJSON_GetObjectItemCaseSensitive(hf, "id2label");
    if (cJSON_IsObject(id2label) && cJSON_GetArraySize(id2label) == labels) return;
    cJSON *forward = cJSON_CreateObject(), *backward = cJSON_CreateObject();
    for (int64_t i = 0; i < labels; i++) {
        char id[32], label[48];
        snprintf(id, sizeof id, "%lld", (long long)i);
        snprintf(label, sizeof label, "LABEL_%lld", (long long)i);
        cJSON_AddStringToObject(forward, id, label);
        cJSON_AddNumberToObject(backward, label, (double)i);
    }
    tp_hf_put(hf, "id2label", forward);
    tp_hf_put(hf, "label2id", backward);
}

/* The original config.json kept under "huggingface", or an empty object. */
static cJSON *kept_config_json(tp_config *config)
{
    char *text = tp_config_to_json(config);
    cJSON *root = cJSON_Parse(text), *hf = cJSON_DetachItemFromObjectCaseSensitive(root, "huggingface");
    free(text);
    cJSON_Delete(root);
    if (!cJSON_IsObject(hf)) {
        cJSON_Delete(hf);
        hf = cJSON_CreateObject();
    }
    return hf;
}

/* config.json: every field tp decides written into hf (the original one kept under "huggingface", if
 * any); map->types gets type_vocab_size. */
static void hf_config_json(const tp_model *model, tp_config *config, hf_map *map, const char *architecture, cJSON *hf)
{
    const tp_model_config *hp = &model->hp;
    const cJSON *old_types = cJSON_GetObjectItemCaseSensitive(hf, "type_vocab_size");
    map->types = cJSON_IsNumber(old_types) && (old_types->valueint == 1 || old_types->valueint == 2) ? old_types->valueint : 2;
    double dropout = config_number(config, "dropout", 0.1);
    const char *act = tp_hf_activation_name(hp->hidden_act);
    const char *names[1] = {architecture};
    tp_hf_put(hf, "architectures", cJSON_CreateStringArray(names, 1));
    tp_hf_put(hf, "model_type", cJSON_CreateString(families[map->family].model_type));
    put_number(hf, "vocab_size", (double)hp->vocab_size);
    put_number(hf, "hidden_size", (double)hp->hidden_size);
    put_number(hf, "num_hidden_layers", (double)hp->layers_num);
    put_number(hf, "num_attention_heads", (double)hp->heads_num);
    put_number(hf, "intermediate_size", (double)hp->feedforward_size);
    tp_hf_put(hf, "hidden_act", cJSON_CreateString(act));
    put_number(hf, "hidden_dropout_prob", dropout);
    if (!cJSON_GetObjectItemCaseSensitive(hf, "attention_probs_dropout_prob"))
        put_number(hf, "attention_probs_dropout_prob", dropout);
    put_number(hf, "max_position_embeddings", (double)(hp->max_seq_length + hp->position_offset));
    put_number(hf, "type_vocab_size", (double)map->types);
    put_number(hf, "layer_norm_eps", config_number(config, "layernorm_eps", 1e-6));
    tp_hf_put(hf, "position_embedding_type", cJSON_CreateString("absolute"));
    if (map->family == HF_ROBERTA) put_number(hf, "pad_token_id", (double)(hp->position_offset - 1));
    else if (!cJSON_GetObjectItemCaseSensitive(hf, "pad_token_id")) put_number(hf, "pad_token_id", 0);
    if (map->family == HF_ALBERT) {
        put_number(hf, "embedding_size", (double)hp->emb_size);
        put_number(hf, "num_hidden_groups", hp->parameter_sharing ? 1 : (double)hp->layers_num);
        put_number(hf, "inner_group_num", 1);
    }
    if (tp_params_find(&model->params, "target.mlm.linear_2.bias"))
        tp_hf_put(hf, "tie_word_embeddings", cJSON_CreateBool(hp->tie_weights));
    const tp_param *classes = tp_params_find(&model->params, "target.cls.linear_2.bias");
    if (classes) put_labels(hf, classes->logical_rows);
}

static const char *architecture_of(const hf_map *map, int heads)
{
    for (size_t i = 0; i < ARCHITECTURE_COUNT; i++)
        if (architectures[i].family == map->family && architectures[i].heads == heads) return architectures[i].name;
    return NULL;
}

/* The vocabulary size a tp weights file was made with: the word embedding's rows. */
static int weights_vocab_size(const char *weights_path, int64_t *vocab_size)
{
    static const char word[] = "embedding.word.embedding.weight";
    tp_st_file *file = tp_st_open(weights_path);
    if (!file) return -1;
    const tp_st_tensor *tensor = tp_st_find(file, word);
    if (!tensor) tensor = tp_st_find(file, "tgt_embedding.word.embedding.weight"); /* speech-to-text: the decoder's */
    if (!tensor) tensor = tp_st_find(file, "embedding.dual.embedding_0.word.embedding.weight"); /* CLIP: the text stream's */
    int images = !tensor && (tp_st_find(file, "embedding.patch.cls_emb") || /* ViT, BEiT: no vocabulary */
                             tp_st_find(file, "embedding.masked_patch.cls_emb"));
    int status = images || (tensor && tensor->ndim == 2) ? 0 : tp_fail("%s: tensor '%s' is missing", weights_path, word);
    *vocab_size = tensor && status == 0 ? tensor->shape[0] : 0;
    tp_st_close(file);
    return status;
}

/* The architecture of a tp model, refusing what Hugging Face cannot express. */
static int resolve_architecture(const tp_model *model, tp_config *config, const char **architecture)
{
    if (tp_hf_clip_model(model)) return tp_hf_clip_architecture(model, config, architecture);
    if (tp_hf_gpt2_model(model)) return tp_hf_gpt2_architecture(model, config, architecture);
    if (tp_hf_seq2seq_model(model)) return tp_hf_seq2seq_architecture(model, config, architecture);
    if (tp_hf_vit_model(model)) return tp_hf_vit_architecture(model, config, architecture);
    if (tp_hf_beit_model(model)) return tp_hf_beit_architecture(model, config, architecture);
    hf_map map = model_map(model);
    int heads = model_heads(model);
    if (!(*architecture = architecture_of(&map, heads))) {
        char supported[512];
        list_architectures(map.family, supported, sizeof supported);
        return tp_fail("%s: key 'target': no Hugging Face %s architecture has these heads (supported: %s; "
                       "docs/convert.md)", tp_config_name(config), families[map.family].model_type, supported);
    }
    return check_expressible(model, config, &map, heads);
}

/* config.json and the weights' names for the model's family. */
static cJSON *family_config_json(const tp_model *model, tp_config *config, const char *architecture, hf_map *map,
                                 tp_hf_names *names)
{
    cJSON *hf = kept_config_json(config);
    if (tp_hf_clip_model(model)) {
        tp_hf_clip_config_json(model, architecture, hf);
        *names = tp_hf_clip_names(model);
    } else if (tp_hf_gpt2_model(model)) {
        tp_hf_gpt2_config_json(model, config, architecture, hf);
    } else if (tp_hf_seq2seq_model(model)) {
        tp_hf_seq2seq_config_json(model, config, architecture, hf);
        *names = tp_hf_seq2seq_names(model);
    } else if (tp_hf_beit_model(model)) {
        tp_hf_beit_config_json(model, config, architecture, hf);
        *names = tp_hf_beit_names(model);
    } else if (tp_hf_vit_model(model)) {
        tp_hf_vit_config_json(model, config, architecture, hf);
        *names = tp_hf_vit_names(model);
    } else {
        hf_config_json(model, config, map, architecture, hf);
        *names = bert_names(map);
    }
    return hf;
}

static int write_hf_dir(const tp_model *model, tp_config *config, const char *architecture, const char *weights_path,
                        const char *const *vocab_paths, int vocab_count, const char *out_dir)
{
    hf_map map = model_map(model);
    tp_hf_names names;
    cJSON *hf = family_config_json(model, config, architecture, &map, &names);
    char *text = cJSON_Print(hf);
    cJSON_Delete(hf);
    char tmp[PATH_CAP], path[PATH_CAP + 64], weights_dir[PATH_CAP];
    int status = start_dir(out_dir, tmp, sizeof tmp);
    if (status == 0) {
        snprintf(path, sizeof path, "%s/config.json", tmp);
        status = tp_write_file_atomic(path, text, strlen(text));
        snprintf(path, sizeof path, "%s/model.safetensors", tmp);
        if (status == 0)
            status = tp_hf_gpt2_model(model) && !tp_hf_clip_model(model) ? tp_hf_gpt2_write_weights(path, model)
                                             : write_weights(path, model, &names, NULL);
        for (int i = 0; i < vocab_count && status == 0; i++) status = copy_file(vocab_paths[i], tmp);
        if (status == 0 && vocab_count == 0) {
            const char *slash = strrchr(weights_path, '/');
            snprintf(weights_dir, sizeof weights_dir, "%.*s", slash ? (int)(slash - weights_path) : 1,
                     slash ? weights_path : ".");
            status = copy_tokenizer_files(weights_dir, tmp);
        }
        status = finish_dir(tmp, out_dir, status);
    }
    free(text);
    return status;
}

int tp_hf_convert_to_hf(const char *model_config_path, const char *weights_path, const char *const *vocab_paths,
                        int vocab_count, const char *out_dir, tp_hf_report *report)
{
    int64_t vocab_size = 0;
    memset(report, 0, sizeof *report);
    tp_config *config = tp_config_load(model_config_path);
    if (!config) return -1;
    tp_model model;
    if (weights_vocab_size(weights_path, &vocab_size) < 0 || build_model(&model, config, vocab_size) < 0) {
        tp_config_free(config);
        return -1;
    }
    const char *architecture = NULL;
    int status = resolve_architecture(&model, config, &architecture);
    if (status == 0) status = tp_checkpoint_load_weights(weights_path, &model.params);
    if (status == 0) status = write_hf_dir(&model, config, architecture, weights_path, vocab_paths, vocab_count, out_dir);
    if (status == 0) report->written = model.params.count;
    tp_model_free(&model);
    tp_config_free(config);
    return status;
}
