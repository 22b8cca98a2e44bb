#include "checkpoint.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "error.h"
#include "fileio.h"
#include "safetensors.h"

#define PATH_CAP 4096
#define STEP_PREFIX "step-"

/* A host copy of a flat buffer (backend memory) so the writer can point into it. */
static float *flat_to_host(const tp_params *params, const float *flat)
{
    float *host = tp_xmalloc((size_t)params->total * sizeof *host);
    params->backend->download(host, flat, (size_t)params->total * sizeof *host);
    return host;
}

static void add_flat_tensors(tp_st_writer *writer, const tp_params *params, const float *host, const char *prefix)
{
    char name[512];
    for (int64_t i = 0; i < params->count; i++) {
        const tp_param *param = params->items[i];
        int64_t shape[TP_MAX_DIMS];
        memcpy(shape, param->tensor.shape, sizeof shape);
        shape[0] = param->logical_rows;
        snprintf(name, sizeof name, "%s%s", prefix, param->name);
        tp_st_writer_add(writer, name, TP_ST_F32, param->tensor.ndim, shape, host + param->offset);
    }
}

static int save_flat(const char *path, const tp_params *params, const float *flat_a, const char *prefix_a,
                     const float *flat_b, const char *prefix_b, const char *model_config_json)
{
    tp_st_writer *writer = tp_st_writer_new();
    float *host_a = flat_to_host(params, flat_a);
    float *host_b = flat_b ? flat_to_host(params, flat_b) : NULL;
    add_flat_tensors(writer, params, host_a, prefix_a);
    if (host_b) add_flat_tensors(writer, params, host_b, prefix_b);
    tp_st_writer_metadata(writer, "format", "tp");
    if (model_config_json) tp_st_writer_metadata(writer, "model_config", model_config_json);
    int status = tp_st_writer_save(writer, path);
    tp_st_writer_free(writer);
    free(host_a);
    free(host_b);
    return status;
}

/* Parses "step-<digits>" exactly; -1 for anything else (temporary directories included). */
static int64_t step_of(const char *name)
{
    size_t prefix = strlen(STEP_PREFIX);
    if (strncmp(name, STEP_PREFIX, prefix) || !name[prefix]) return -1;
    int64_t step = 0;
    for (const char *c = name + prefix; *c; c++) {
        if (*c < '0' || *c > '9') return -1;
        step = step * 10 + (*c - '0');
    }
    return step;
}

static int compare_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* Steps of the complete checkpoints under root, ascending; removes stale temporary directories. */
static int64_t list_steps(const char *root, int64_t **steps_out)
{
    DIR *dir = opendir(root);
    int64_t count = 0, capacity = 16;
    int64_t *steps = tp_xmalloc((size_t)capacity * sizeof *steps);
    struct dirent *entry;
    char path[PATH_CAP];
    while (dir && (entry = readdir(dir))) {
        int64_t step = step_of(entry->d_name);
        if (step < 0) {
            if (!strncmp(entry->d_name, STEP_PREFIX, strlen(STEP_PREFIX)) && strstr(entry->d_name, ".tmp.")) {
                snprintf(path, sizeof path, "%s/%s", root, entry->d_name);
                tp_remove_tree(path);
            }
            continue;
        }
        if (count == capacity) steps = tp_xrealloc(steps, (size_t)(capacity *= 2) * sizeof *steps);
        steps[count++] = step;
    }
    if (dir) closedir(dir);
    qsort(steps, (size_t)count, sizeof *steps, compare_i64);
    *steps_out = steps;
    return count;
}

static void prune(const char *root, int keep)
{
    int64_t *steps;
    int64_t count = list_steps(root, &steps);
    char path[PATH_CAP];
    for (int64_t i = 0; keep > 0 && i + keep < count; i++) {
        snprintf(path, sizeof path, "%s/" STEP_PREFIX "%08lld", root, (long long)steps[i]);
        tp_remove_tree(path);
    }
    free(steps);
}

int tp_checkpoint_save(const char *root, int64_t step, const tp_params *params, const float *exp_avg,
                       const float *exp_avg_sq, const char *model_config_json, const char *state_json, int keep)
{
    char final_dir[PATH_CAP], tmp_dir[PATH_CAP], path[PATH_CAP + 64], name[64];
    snprintf(name, sizeof name, STEP_PREFIX "%08lld", (long long)step);
    snprintf(final_dir, sizeof final_dir, "%s/%s", root, name);
    snprintf(tmp_dir, sizeof tmp_dir, "%s.tmp.%ld", final_dir, (long)getpid());
    if (tp_mkdirs(tmp_dir) < 0) return -1;
    snprintf(path, sizeof path, "%s/model.safetensors", tmp_dir);
    int status = save_flat(path, params, params->data, "", NULL, NULL, model_config_json);
    if (status == 0 && exp_avg) {
        snprintf(path, sizeof path, "%s/optimizer.safetensors", tmp_dir);
        status = save_flat(path, params, exp_avg, "exp_avg.", exp_avg_sq, "exp_avg_sq.", NULL);
    }
    if (status == 0) {
        snprintf(path, sizeof path, "%s/trainer_state.json", tmp_dir);
        status = tp_write_file_atomic(path, state_json, strlen(state_json));
    }
    if (status == 0) {
        tp_remove_tree(final_dir); /* a checkpoint of the same step from an earlier, interrupted run */
        if (rename(tmp_dir, final_dir) != 0) status = tp_fail("%s: %s", final_dir, strerror(errno));
    }
    if (status == 0) status = tp_fsync_parent_dir(final_dir);
    if (status == 0) {
        snprintf(path, sizeof path, "%s/latest", root);
        status = tp_write_file_atomic(path, name, strlen(name));
    }
    if (status != 0) {
        tp_remove_tree(tmp_dir);
        return tp_fail_context("saving checkpoint %s", final_dir);
    }
    prune(root, keep);
    return 0;
}

int tp_checkpoint_latest(const char *root, char *out, size_t cap)
{
    int64_t *steps;
    int64_t count = list_steps(root, &steps);
    int found = 0;
    /* The newest directory with all its files is the newest complete checkpoint: directories
     * only get their final name after every file in them was written and synced. */
    for (int64_t i = count - 1; i >= 0 && !found; i--) {
        char state[PATH_CAP + 32];
        snprintf(out, cap, "%s/" STEP_PREFIX "%08lld", root, (long long)steps[i]);
        snprintf(state, sizeof state, "%s/trainer_state.json", out);
        found = access(state, R_OK) == 0;
    }
    free(steps);
    return found;
}

/* Loads prefix + name of every parameter not starting with skip (NULL: none) into flat; with
 * strict_extra the file may hold nothing else.  Returns the number loaded, -1 on error. */
static int64_t load_flat(const char *path, const tp_params *params, float *flat, const char *prefix,
                         int strict_extra, const char *skip)
{
    tp_st_file *file = tp_st_open(path);
    if (!file) return -1;
    char name[512];
    int status = 0;
    int64_t matched = 0;
    for (int64_t i = 0; i < params->count && status == 0; i++) {
        const tp_param *param = params->items[i];
        if (skip && !strncmp(param->name, skip, strlen(skip))) continue;
        int64_t shape[TP_MAX_DIMS];
        memcpy(shape, param->tensor.shape, sizeof shape);
        shape[0] = param->logical_rows;
        snprintf(name, sizeof name, "%s%s", prefix, param->name);
        int64_t storage = tp_numel(&param->tensor);
        float *host = tp_xcalloc((size_t)storage, sizeof *host);
        if (!tp_st_find(file, name))
            status = tp_fail("%s: tensor '%s' is missing", path, name);
        else
            status = tp_st_read_f32(file, name, param->tensor.ndim, shape, host);
        if (status == 0) params->backend->upload(flat + param->offset, host, (size_t)storage * sizeof *host);
        free(host);
        matched++;
    }
    if (status == 0 && strict_extra && tp_st_count(file) != matched) {
        for (int64_t i = 0; i < tp_st_count(file); i++) {
            const char *found = tp_st_at(file, i)->name;
            if (strncmp(found, prefix, strlen(prefix)) || !tp_params_find(params, found + strlen(prefix))) {
                status = tp_fail("%s: tensor '%s' does not belong to this model", path, found);
                break;
            }
        }
    }
    tp_st_close(file);
    return status < 0 ? -1 : matched;
}

int tp_checkpoint_load_weights(const char *safetensors_path, tp_params *params)
{
    return load_flat(safetensors_path, params, params->data, "", 1, NULL) < 0 ? -1 : 0;
}

int64_t tp_checkpoint_load_backbone(const char *safetensors_path, tp_params *params, const char *skip_prefix)
{
    return load_flat(safetensors_path, params, params->data, "", 0, skip_prefix);
}

int tp_checkpoint_load_moments(const char *safetensors_path, const tp_params *params, float *exp_avg,
                               float *exp_avg_sq)
{
    if (load_flat(safetensors_path, params, exp_avg, "exp_avg.", 0, NULL) < 0) return -1;
    return load_flat(safetensors_path, params, exp_avg_sq, "exp_avg_sq.", 0, NULL) < 0 ? -1 : 0;
}
