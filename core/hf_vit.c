/* Hugging Face ViT -> tp: config.json and names (core/hf_vit.h). */
#include "hf_vit.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "hf.h"
#include "hf_gpt2.h" /* tp_hf_activation_to_tp */
#include "safetensors.h"

#define NAME_CAP 512

/* ---- config.json -> tp ------------------------------------------------------------------------ */

int tp_hf_vit_is(const cJSON *root)
{
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(root, "model_type");
    return cJSON_IsString(type) && !strcmp(type->valuestring, "vit");
}

/* An integer key with ViTConfig's default (save_pretrained leaves out keys at their default). */
static int config_int(const char *path, const cJSON *root, const char *key, int64_t fallback, int64_t max,
                      int64_t *out)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(root, key);
    *out = fallback;
    if (!item) return 0;
    if (!cJSON_IsNumber(item) || item->valuedouble != (double)(int64_t)item->valuedouble || item->valuedouble < 1 ||
        item->valuedouble > (double)max)
        return tp_fail("%s: key '%s': expected an integer in [1, %lld]", path, key, (long long)max);
    *out = (int64_t)item->valuedouble;
    return 0;
}

static int config_number(const char *path, const cJSON *root, const char *key, double fallback, double *out)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(root, key);
    *out = fallback;
    if (item && !cJSON_IsNumber(item)) return tp_fail("%s: key '%s': expected a number", path, key);
    if (item) *out = item->valuedouble;
    return 0;
}

/* The classifier's labels: id2label's size, else num_labels (2 by default). */
static int add_classifier(const char *path, const cJSON *root, cJSON *tp)
{
    const cJSON *id2label = cJSON_GetObjectItemCaseSensitive(root, "id2label");
    int64_t labels = 2;
    if (cJSON_IsObject(id2label))
        labels = cJSON_GetArraySize(id2label);
    else if (config_int(path, root, "num_labels", 2, 1 << 20, &labels) < 0)
        return -1;
    if (labels < 2)
        return tp_fail("%s: key 'id2label': %lld label(s): tp's cls head classifies into 2 or more", path,
                       (long long)labels);
    static const char *const target[] = {"cls"};
    cJSON_AddItemToObject(tp, "target", cJSON_CreateStringArray(target, 1));
    cJSON_AddNumberToObject(tp, "labels_num", (double)labels);
    cJSON_AddStringToObject(tp, "pooling", "first");
    cJSON_AddBoolToObject(tp, "pooler", 0);
    return 0;
}

int tp_hf_vit_config(const char *path, const cJSON *root, cJSON *tp)
{
    int64_t hidden, layers, heads, inner, image, patch, channels;
    double eps, dropout;
    int classifier = 0;
    const cJSON *act = cJSON_GetObjectItemCaseSensitive(root, "hidden_act"), *qkv_bias;
    const char *tp_act = tp_hf_activation_to_tp(cJSON_IsString(act) ? act->valuestring : act ? "" : "gelu");
    if (config_int(path, root, "hidden_size", 768, 1 << 16, &hidden) < 0 ||
        config_int(path, root, "num_hidden_layers", 12, 1024, &layers) < 0 ||
        config_int(path, root, "num_attention_heads", 12, 1024, &heads) < 0 ||
        config_int(path, root, "intermediate_size", 3072, 1 << 20, &inner) < 0 ||
        config_int(path, root, "image_size", 224, 1 << 16, &image) < 0 ||
        config_int(path, root, "patch_size", 16, 1 << 16, &patch) < 0 ||
        config_int(path, root, "num_channels", 3, 1024, &channels) < 0 ||
        config_number(path, root, "layer_norm_eps", 1e-12, &eps) < 0 ||
        config_number(path, root, "hidden_dropout_prob", 0.0, &dropout) < 0 ||
        tp_hf_headed_architecture(path, root, "ViTModel", "ViTForImageClassification", &classifier) < 0)
        return -1;
    if (!tp_act) return tp_fail("%s: key 'hidden_act': not supported (supported: gelu, gelu_new, relu, silu)", path);
    if ((qkv_bias = cJSON_GetObjectItemCaseSensitive(root, "qkv_bias")) && !cJSON_IsTrue(qkv_bias))
        return tp_fail("%s: key 'qkv_bias': only true is supported", path);
    if (patch > image) return tp_fail("%s: key 'patch_size': %lld is larger than image_size", path, (long long)patch);
    static const char *const embedding[] = {"patch", "pos"};
    cJSON_AddNumberToObject(tp, "emb_size", (double)hidden);
    cJSON_AddNumberToObject(tp, "hidden_size", (double)hidden);
    cJSON_AddNumberToObject(tp, "feedforward_size", (double)inner);
    cJSON_AddNumberToObject(tp, "heads_num", (double)heads);
    cJSON_AddNumberToObject(tp, "layers_num", (double)layers);
    cJSON_AddNumberToObject(tp, "max_seq_length", (double)((image / patch) * (image / patch) + 1));
    cJSON_AddNumberToObject(tp, "dropout", dropout);
    cJSON_AddStringToObject(tp, "hidden_act", tp_act);
    cJSON_AddStringToObject(tp, "data_processor", "vit");
    cJSON_AddItemToObject(tp, "embedding", cJSON_CreateStringArray(embedding, 2));
    cJSON_AddBoolToObject(tp, "remove_embedding_layernorm", 1);
    cJSON_AddStringToObject(tp, "encoder", "transformer");
    cJSON_AddStringToObject(tp, "mask", "fully_visible");
    cJSON_AddStringToObject(tp, "layernorm_positioning", "pre");
    cJSON_AddStringToObject(tp, "layernorm", "normal_torch");
    cJSON_AddNumberToObject(tp, "layernorm_eps", eps);
    cJSON_AddNumberToObject(tp, "image_height", (double)image);
    cJSON_AddNumberToObject(tp, "image_width", (double)image);
    cJSON_AddNumberToObject(tp, "patch_size", (double)patch);
    cJSON_AddNumberToObject(tp, "channels_num", (double)channels);
    return classifier ? add_classifier(path, root, tp) : 0;
}

/* ---- names ------------------------------------------------------------------------------------ */

int tp_hf_vit_model(const tp_model *model)
{
    return tp_params_find(&model->params, "embedding.patch.cls_emb") != NULL;
}

static const struct {
    const char *tp, *hf;
} layer_parts[] = {
    {"self_attn.linear_layers.0", "attention.attention.query"}, {"self_attn.linear_layers.1", "attention.attention.key"},
    {"self_attn.linear_layers.2", "attention.attention.value"}, {"self_attn.final_linear", "attention.output.dense"},
    {"layer_norm_1", "layernorm_before"},                       {"feed_forward.linear_1", "intermediate.dense"},
    {"feed_forward.linear_2", "output.dense"},                  {"layer_norm_2", "layernorm_after"},
};
static const struct {
    const char *tp, *hf;
} whole_names[] = {
    {"embedding.patch.cls_emb", "embeddings.cls_token"},
    {"embedding.patch.projection.weight", "embeddings.patch_embeddings.projection.weight"},
    {"embedding.patch.projection.bias", "embeddings.patch_embeddings.projection.bias"},
    {"embedding.pos.embedding.weight", "embeddings.position_embeddings"},
    {"encoder.layer_norm.weight", "layernorm.weight"},
    {"encoder.layer_norm.bias", "layernorm.bias"},
};

/* The Hugging Face name of a tp parameter with the backbone prefix given ("vit." or ""); 0 when unmapped. */
static int hf_name_of(const char *tp, const char *prefix, char *out, size_t cap)
{
    if (!strncmp(tp, "target.cls.linear_2.", 20)) return snprintf(out, cap, "classifier.%s", tp + 20) > 0;
    for (size_t i = 0; i < sizeof whole_names / sizeof whole_names[0]; i++)
        if (!strcmp(tp, whole_names[i].tp)) return snprintf(out, cap, "%s%s", prefix, whole_names[i].hf) > 0;
    int layer = 0, consumed = 0;
    if (sscanf(tp, "encoder.transformer.%d.%n", &layer, &consumed) != 1 || !consumed) return 0;
    const char *part = tp + consumed, *leaf = strrchr(part, '.');
    for (size_t i = 0; leaf && i < sizeof layer_parts / sizeof layer_parts[0]; i++)
        if (strlen(layer_parts[i].tp) == (size_t)(leaf - part) && !strncmp(part, layer_parts[i].tp, (size_t)(leaf - part)))
            return snprintf(out, cap, "%sencoder.layer.%d.%s%s", prefix, layer, layer_parts[i].hf, leaf) > 0;
    return 0;
}

/* ---- weights in ------------------------------------------------------------------------------- */

/* The tensor of a parameter: backbone names with "vit." first, then without. */
static const tp_st_tensor *find_tensor(const tp_st_file *file, const char *tp, char *found, size_t cap)
{
    static const char *const prefixes[] = {"vit.", ""};
    for (int i = 0; i < 2; i++) {
        if (!hf_name_of(tp, prefixes[i], found, cap)) return NULL;
        const tp_st_tensor *tensor = tp_st_find(file, found);
        if (tensor) return tensor;
    }
    hf_name_of(tp, "vit.", found, cap); /* the name to report */
    return NULL;
}

/* One parameter from its tensor: the same values, with Hugging Face's leading 1 on the positions. */
static int load_param(const tp_st_file *file, const tp_st_tensor *tensor, const tp_params *params, const tp_param *param)
{
    int64_t shape[TP_MAX_DIMS + 1];
    int ndim = param->tensor.ndim, positions = !strcmp(param->name, "embedding.pos.embedding.weight");
    shape[0] = 1;
    memcpy(shape + positions, param->tensor.shape, (size_t)ndim * sizeof *shape);
    float *host = tp_xmalloc((size_t)tp_numel(&param->tensor) * sizeof *host);
    int status = tp_st_read_f32(file, tensor->name, ndim + positions, shape, host);
    if (status == 0) params->backend->upload(param->tensor.data, host, (size_t)tp_numel(&param->tensor) * sizeof *host);
    free(host);
    return status;
}

/* Every tensor of the file was used, or is the pooler of ViTModel (dropped and reported). */
static int check_file_used(const tp_st_file *file, char **used, int64_t used_count, tp_hf_report *report)
{
    for (int64_t i = 0; i < tp_st_count(file); i++) {
        const char *name = tp_st_at(file, i)->name;
        int found = 0;
        for (int64_t j = 0; j < used_count && !found; j++) found = !strcmp(used[j], name);
        if (found) continue;
        if (strncmp(name, "pooler.", 7) && strncmp(name, "vit.pooler.", 11))
            return tp_fail("%s: tensor '%s' has no counterpart in tp's vit model with these heads", tp_st_path(file),
                           name);
        size_t length = strlen(report->dropped_names);
        if (length + strlen(name) + 3 < sizeof report->dropped_names)
            snprintf(report->dropped_names + length, sizeof report->dropped_names - length, "%s%s", length ? ", " : "",
                     name);
        report->dropped++;
    }
    return 0;
}

int tp_hf_vit_load(const char *path, tp_model *model, const char *skip_prefix, tp_hf_report *report)
{
    tp_st_file *file = tp_st_open(path);
    if (!file) return -1;
    tp_params *params = &model->params;
    char **used = tp_xcalloc((size_t)params->count + 1, sizeof *used), found[NAME_CAP];
    int64_t used_count = 0;
    int status = 0;
    for (int64_t i = 0; i < params->count && status == 0; i++) {
        const tp_param *param = params->items[i];
        if (skip_prefix && !strncmp(param->name, skip_prefix, strlen(skip_prefix))) continue;
        const tp_st_tensor *tensor = NULL;
        if (!hf_name_of(param->name, "", found, sizeof found))
            status = tp_fail("%s: tp parameter '%s' has no Hugging Face counterpart in a vit model", path, param->name);
        else if (!(tensor = find_tensor(file, param->name, found, sizeof found)))
            status = tp_fail("%s: tensor '%s' is missing", path, found);
        else if ((status = load_param(file, tensor, params, param)) == 0)
            used[used_count++] = tp_xstrdup(tensor->name);
    }
    if (status == 0 && report) {
        status = check_file_used(file, used, used_count, report);
        report->written = used_count;
    }
    for (int64_t i = 0; i < used_count; i++) free(used[i]);
    free(used);
    tp_st_close(file);
    return status;
}
