#include "hf.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "fileio.h"
#include "safetensors.h"

#define PATH_CAP 4096

/* ---- config.json -------------------------------------------------------------- */

static int hf_int(const char *path, const cJSON *root, const char *key, int64_t min, int64_t max, int64_t *out)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(root, key);
    if (!cJSON_IsNumber(item) || item->valuedouble != (double)(int64_t)item->valuedouble)
        return tp_fail("%s: key '%s': expected an integer", path, key);
    if (item->valuedouble < (double)min || item->valuedouble > (double)max)
        return tp_fail("%s: key '%s': value %.0f out of range [%lld, %lld]", path, key, item->valuedouble,
                       (long long)min, (long long)max);
    *out = (int64_t)item->valuedouble;
    return 0;
}

static int hf_number(const char *path, const cJSON *root, const char *key, double fallback, double *out)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(root, key);
    if (!item) {
        *out = fallback;
        return 0;
    }
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

tp_config *tp_hf_bert_config(const char *dir)
{
    char path[PATH_CAP];
    snprintf(path, sizeof path, "%s/config.json", dir);
    char *text = tp_read_file(path, NULL);
    if (!text) return NULL;
    cJSON *root = cJSON_Parse(text);
    free(text);
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        tp_fail("%s: not a JSON object", path);
        return NULL;
    }
    int64_t hidden = 0, layers = 0, heads = 0, intermediate = 0, positions = 0, vocab = 0, type_vocab = 0;
    double eps = 0, dropout = 0;
    int status = hf_int(path, root, "hidden_size", 1, 1 << 16, &hidden) < 0 ||
                 hf_int(path, root, "num_hidden_layers", 1, 1024, &layers) < 0 ||
                 hf_int(path, root, "num_attention_heads", 1, 1024, &heads) < 0 ||
                 hf_int(path, root, "intermediate_size", 1, 1 << 20, &intermediate) < 0 ||
                 hf_int(path, root, "max_position_embeddings", 1, 1 << 20, &positions) < 0 ||
                 hf_int(path, root, "vocab_size", 1, INT32_MAX, &vocab) < 0 ||
                 hf_int(path, root, "type_vocab_size", 2, 2, &type_vocab) < 0 ||
                 hf_number(path, root, "layer_norm_eps", 1e-12, &eps) < 0 ||
                 hf_number(path, root, "hidden_dropout_prob", 0.1, &dropout) < 0 ||
                 hf_check_string(path, root, "hidden_act", "gelu") < 0 ||
                 hf_check_string(path, root, "position_embedding_type", "absolute") < 0 ||
                 hf_check_string(path, root, "model_type", "bert") < 0;
    cJSON_Delete(root);
    if (status) return NULL;
    char config[1024];
    snprintf(config, sizeof config,
             "{\"emb_size\": %lld, \"hidden_size\": %lld, \"feedforward_size\": %lld, \"heads_num\": %lld, "
             "\"layers_num\": %lld, \"max_seq_length\": %lld, \"vocab_size\": %lld, \"dropout\": %.17g, "
             "\"hidden_act\": \"gelu\", \"embedding\": [\"word\", \"pos\", \"seg\"], \"encoder\": \"transformer\", "
             "\"mask\": \"fully_visible\", \"layernorm_positioning\": \"post\", \"layernorm\": \"normal_torch\", "
             "\"embedding_layernorm\": \"normal_torch\", \"target_layernorm\": \"normal_torch\", "
             "\"layernorm_eps\": %.17g}",
             (long long)hidden, (long long)hidden, (long long)intermediate, (long long)heads, (long long)layers,
             (long long)positions, (long long)vocab, dropout, eps);
    return tp_config_parse(path, config);
}

/* ---- weights ------------------------------------------------------------------ */

/* The Hugging Face name of a tp parameter (without the optional "bert." prefix); 0 when unmapped. */
static int hf_name_of(const char *tp_name, char *out, size_t cap)
{
    static const char *const fixed[][2] = {
        {"embedding.word.embedding.weight", "embeddings.word_embeddings.weight"},
        {"embedding.pos.embedding.weight", "embeddings.position_embeddings.weight"},
        {"embedding.seg.embedding.weight", "embeddings.token_type_embeddings.weight"},
        {"embedding.layer_norm.weight", "embeddings.LayerNorm.weight"},
        {"embedding.layer_norm.bias", "embeddings.LayerNorm.bias"},
    };
    static const char *const layer_parts[][2] = {
        {"self_attn.linear_layers.0", "attention.self.query"},
        {"self_attn.linear_layers.1", "attention.self.key"},
        {"self_attn.linear_layers.2", "attention.self.value"},
        {"self_attn.final_linear", "attention.output.dense"},
        {"layer_norm_1", "attention.output.LayerNorm"},
        {"feed_forward.linear_1", "intermediate.dense"},
        {"feed_forward.linear_2", "output.dense"},
        {"layer_norm_2", "output.LayerNorm"},
    };
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++)
        if (!strcmp(tp_name, fixed[i][0])) return snprintf(out, cap, "%s", fixed[i][1]) > 0;
    int layer = -1, consumed = 0;
    if (sscanf(tp_name, "encoder.transformer.%d.%n", &layer, &consumed) != 1 || consumed == 0) return 0;
    const char *rest = tp_name + consumed, *suffix = strrchr(rest, '.');
    if (!suffix) return 0;
    for (size_t i = 0; i < sizeof layer_parts / sizeof layer_parts[0]; i++) {
        size_t length = strlen(layer_parts[i][0]);
        if (!strncmp(rest, layer_parts[i][0], length) && rest + length == suffix)
            return snprintf(out, cap, "encoder.layer.%d.%s%s", layer, layer_parts[i][1], suffix) > 0;
    }
    return 0;
}

static const tp_st_tensor *find_hf(const tp_st_file *file, const char *name, char *found, size_t cap)
{
    snprintf(found, cap, "%s", name);
    const tp_st_tensor *tensor = tp_st_find(file, found);
    if (tensor) return tensor;
    snprintf(found, cap, "bert.%s", name);
    return tp_st_find(file, found);
}

/* Token types [2, H] -> segments [3, H]: rows 0 (padding) and 1 (A) <- type 0, row 2 (B) <- type 1. */
static int load_segments(const tp_st_file *file, const char *name, const tp_param *param, float *host)
{
    int64_t hidden = param->tensor.shape[1], shape[2] = {2, hidden};
    float *types = tp_xmalloc((size_t)(2 * hidden) * sizeof *types);
    int status = tp_st_read_f32(file, name, 2, shape, types);
    if (status == 0) {
        memcpy(host, types, (size_t)hidden * sizeof *host);
        memcpy(host + hidden, types, (size_t)(2 * hidden) * sizeof *host);
    }
    free(types);
    return status;
}

int tp_hf_bert_load(const char *dir, tp_params *params)
{
    char path[PATH_CAP], hf_name[512], found[520];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    tp_st_file *file = tp_st_open(path);
    if (!file) return -1;
    int status = 0;
    for (int64_t i = 0; i < params->count && status == 0; i++) {
        tp_param *param = params->items[i];
        if (!strncmp(param->name, "target.", 7)) continue; /* heads: not in a BertModel */
        if (!hf_name_of(param->name, hf_name, sizeof hf_name)) {
            status = tp_fail("%s: tp parameter '%s' has no Hugging Face counterpart in a BertModel", path,
                             param->name);
            break;
        }
        if (!find_hf(file, hf_name, found, sizeof found)) {
            status = tp_fail("%s: tensor '%s' is missing", path, hf_name);
            break;
        }
        int64_t storage = tp_numel(&param->tensor), shape[TP_MAX_DIMS];
        float *host = tp_xcalloc((size_t)storage, sizeof *host);
        memcpy(shape, param->tensor.shape, sizeof shape);
        shape[0] = param->logical_rows;
        status = !strcmp(param->name, "embedding.seg.embedding.weight")
                     ? load_segments(file, found, param, host)
                     : tp_st_read_f32(file, found, param->tensor.ndim, shape, host);
        if (status == 0) params->backend->upload(param->tensor.data, host, (size_t)storage * sizeof *host);
        free(host);
    }
    tp_st_close(file);
    return status;
}
