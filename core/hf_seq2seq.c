#include "hf_seq2seq.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "safetensors.h"

#define NAME_CAP 512

static const char *model_type(const cJSON *root)
{
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(root, "model_type");
    return cJSON_IsString(type) ? type->valuestring : "";
}

int tp_hf_seq2seq_is(const cJSON *root) { return !strcmp(model_type(root), "t5") || !strcmp(model_type(root), "bart"); }

int tp_hf_seq2seq_config(const char *path, const cJSON *root, cJSON *tp)
{
    return !strcmp(model_type(root), "t5") ? tp_hf_t5_config(path, root, tp) : tp_hf_bart_config(path, root, tp);
}

int tp_hf_seq2seq_model(const tp_model *model) { return model->decoder_type != NULL; }

/* ---- config.json helpers ----------------------------------------------------------- */

int tp_hf_json_number(const char *path, const cJSON *root, const char *key, double fallback, double *out)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(root, key);
    *out = fallback;
    if (!item || cJSON_IsNull(item)) return 0;
    if (!cJSON_IsNumber(item)) return tp_fail("%s: key '%s': expected a number", path, key);
    *out = item->valuedouble;
    return 0;
}

int tp_hf_json_int(const char *path, const cJSON *root, const char *key, int64_t fallback, int64_t *out)
{
    double value = 0;
    if (tp_hf_json_number(path, root, key, (double)fallback, &value) < 0) return -1;
    if (value != (double)(int64_t)value || value < 0 || value > (double)INT32_MAX)
        return tp_fail("%s: key '%s': expected a non-negative integer, got %g", path, key, value);
    *out = (int64_t)value;
    return 0;
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

/* The family's table for this model (T5 v1.1: its gated names first). */
static int hf_name_of(const tp_model *model, const char *tp_name, char *out, size_t cap)
{
    if (!model->hp.relative_position_embedding) return hf_name_in(tp_hf_bart_names, tp_name, out, cap);
    return (model->hp.feed_forward_gated && hf_name_in(tp_hf_t5_gated_names, tp_name, out, cap)) ||
           hf_name_in(tp_hf_t5_names, tp_name, out, cap);
}

/* ---- weights ------------------------------------------------------------------------- */

static int load_param(const tp_st_file *file, const char *hf_name, const tp_params *params, const tp_param *param)
{
    int64_t storage = tp_numel(&param->tensor), shape[TP_MAX_DIMS];
    float *host = tp_xcalloc((size_t)storage, sizeof *host);
    memcpy(shape, param->tensor.shape, sizeof shape);
    shape[0] = param->logical_rows;
    int status = tp_st_read_f32(file, hf_name, param->tensor.ndim, shape, host);
    if (status == 0) params->backend->upload(param->tensor.data, host, (size_t)storage * sizeof *host);
    free(host);
    return status;
}

/* BART's final_logits_bias is a buffer Hugging Face adds to the logits; tp's lm head has no bias,
 * so it may be dropped only when it is zero (as in every released BART). */
static int zero_tensor(const tp_st_file *file, const tp_st_tensor *tensor)
{
    int64_t n = 1;
    for (int d = 0; d < tensor->ndim; d++) n *= tensor->shape[d];
    float *values = tp_xmalloc((size_t)(n ? n : 1) * sizeof *values);
    int zero = tp_st_read_f32(file, tensor->name, tensor->ndim, tensor->shape, values) == 0;
    for (int64_t i = 0; i < n && zero; i++) zero = values[i] == 0.0f;
    free(values);
    return zero;
}

static int droppable(const tp_st_file *file, const tp_st_tensor *tensor, const char *const *names)
{
    for (; *names; names++)
        if (!strcmp(*names, tensor->name))
            return strcmp(tensor->name, "final_logits_bias") || zero_tensor(file, tensor);
    return 0;
}

static void report_dropped(tp_hf_report *report, const char *name)
{
    size_t used = strlen(report->dropped_names), cap = sizeof report->dropped_names;
    report->dropped++;
    if (used + strlen(name) + 8 < cap) snprintf(report->dropped_names + used, cap - used, "%s%s", used ? ", " : "", name);
}

static int check_all_used(const tp_st_file *file, char **used, int64_t used_count, const char *const *drop,
                          tp_hf_report *report)
{
    for (int64_t i = 0; i < tp_st_count(file); i++) {
        const tp_st_tensor *tensor = tp_st_at(file, i);
        int found = 0;
        for (int64_t j = 0; j < used_count && !found; j++) found = !strcmp(used[j], tensor->name);
        if (found) continue;
        if (!droppable(file, tensor, drop))
            return tp_fail("%s: tensor '%s' has no counterpart in tp's model (a non-zero final_logits_bias cannot be "
                           "expressed: tp's lm target has no bias)",
                           tp_st_path(file), tensor->name);
        report_dropped(report, tensor->name);
    }
    return 0;
}

int tp_hf_seq2seq_load(const char *path, tp_model *model, const char *skip_prefix, tp_hf_report *report)
{
    int t5 = model->hp.relative_position_embedding;
    const char *const *drop = t5 ? tp_hf_t5_droppable : tp_hf_bart_droppable;
    tp_st_file *file = tp_st_open(path);
    if (!file) return -1;
    tp_params *params = &model->params;
    char **used = tp_xcalloc((size_t)params->count + 1, sizeof *used);
    int64_t used_count = 0;
    int status = 0;
    for (int64_t i = 0; i < params->count && status == 0; i++) {
        tp_param *param = params->items[i];
        char hf_name[NAME_CAP];
        if (skip_prefix && !strncmp(param->name, skip_prefix, strlen(skip_prefix))) continue;
        if (!hf_name_of(model, param->name, hf_name, sizeof hf_name))
            status = tp_fail("%s: tp parameter '%s' has no Hugging Face counterpart in a %s model", path, param->name,
                             t5 ? "t5" : "bart");
        else if (!tp_st_find(file, hf_name))
            status = tp_fail("%s: tensor '%s' is missing", path, hf_name);
        else if ((status = load_param(file, hf_name, params, param)) == 0)
            used[used_count++] = tp_xstrdup(hf_name);
    }
    if (status == 0 && report) {
        status = check_all_used(file, used, used_count, drop, report);
        report->written = used_count;
    }
    for (int64_t i = 0; i < used_count; i++) free(used[i]);
    free(used);
    tp_st_close(file);
    return status;
}
