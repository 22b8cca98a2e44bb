/* The results of a continual run: the accuracy rows as they come, the summary (accuracy matrix,
 * average accuracy, forgetting, intransigence), the final weights and the heads' map
 * (core/continual_run.h). */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/checkpoint.h"
#include "core/continual_job.h"
#include "core/error.h"
#include "core/fileio.h"

static int flush_log(tp_continual *c)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/continual.jsonl", c->output_dir);
    return tp_log_flush(c->log, path);
}

int tp_continual_open_log(tp_continual *c)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/continual.jsonl", c->output_dir);
    FILE *existing = fopen(path, "r");
    if (existing) {
        fclose(existing);
        return tp_fail("%s: holds an earlier continual run; choose another output_dir", c->output_dir);
    }
    if (tp_mkdirs(c->output_dir) < 0) return -1;
    if (!(c->log = fopen(path, "w"))) return tp_fail("%s: cannot open for writing", path);
    return 0;
}

/* A JSON number, or null when undefined. */
static void json_number(FILE *out, double value)
{
    if (isfinite(value))
        fprintf(out, "%.9g", value);
    else
        fputs("null", out);
}

static void json_numbers(FILE *out, const double *values, int64_t count)
{
    fputc('[', out);
    for (int64_t i = 0; i < count; i++) {
        if (i) fputc(',', out);
        json_number(out, values[i]);
    }
    fputc(']', out);
}

static void json_task_names(FILE *out, const tp_continual *c)
{
    fputc('[', out);
    for (int64_t k = 0; k < c->task_count; k++) fprintf(out, "%s\"%s\"", k ? "," : "", c->tasks[k].name);
    fputc(']', out);
}

int tp_continual_log_epoch(tp_continual *c, int64_t task, int64_t epoch, const double *dev, double selection)
{
    double loss = c->epoch_steps ? c->epoch_loss / (double)c->epoch_steps : NAN;
    fprintf(stderr, "%s epoch %lld | train loss %.4f | dev accuracy %.4f over %lld task(s)\n",
            c->mode == TP_CONTINUAL_MULTITASK ? "multitask" : c->tasks[task].name, (long long)epoch + 1, loss,
            selection, (long long)(c->mode == TP_CONTINUAL_MULTITASK ? c->task_count : task + 1));
    fprintf(c->log, "{\"event\":\"epoch\",\"task\":\"%s\",\"epoch\":%lld,\"train_loss\":",
            c->mode == TP_CONTINUAL_MULTITASK ? "multitask" : c->tasks[task].name, (long long)epoch + 1);
    json_number(c->log, loss);
    fprintf(c->log, ",\"dev_accuracy\":");
    json_numbers(c->log, dev, c->mode == TP_CONTINUAL_MULTITASK ? c->task_count : task + 1);
    fprintf(c->log, ",\"dev_selection\":");
    json_number(c->log, selection);
    fputs("}\n", c->log);
    return flush_log(c);
}

int tp_continual_report_row(tp_continual *c, int64_t row, int64_t seen)
{
    const double *accuracy = c->accuracy + row * c->task_count;
    const char *after = c->mode == TP_CONTINUAL_MULTITASK ? "multitask" : c->tasks[row].name;
    printf("after %s: test accuracy", after);
    for (int64_t k = 0; k < seen; k++) printf(" %s %.4f", c->tasks[k].name, accuracy[k]);
    printf("\n");
    fflush(stdout);
    fprintf(c->log, "{\"event\":\"task_done\",\"after\":\"%s\",\"test_accuracy\":", after);
    json_numbers(c->log, accuracy, seen);
    fputs("}\n", c->log);
    return flush_log(c);
}

/* ---- intransigence against a multitask run --------------------------------------------------- */

static cJSON *summary_line(char *text)
{
    cJSON *found = NULL;
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        if (!strstr(line, "\"event\":\"summary\"")) continue;
        cJSON_Delete(found);
        found = cJSON_Parse(line);
    }
    return found;
}

int tp_continual_read_reference(tp_continual *c)
{
    if (!c->multitask_results) return 0;
    c->reference = tp_xmalloc((size_t)c->task_count * sizeof *c->reference);
    const char *path = c->multitask_results;
    char *text = tp_read_file(path, NULL);
    if (!text) return tp_fail_context("key 'multitask_results'");
    cJSON *summary = summary_line(text);
    free(text);
    const cJSON *mode = cJSON_GetObjectItemCaseSensitive(summary, "mode");
    const cJSON *names = cJSON_GetObjectItemCaseSensitive(summary, "tasks");
    const cJSON *rows = cJSON_GetObjectItemCaseSensitive(summary, "accuracy");
    const cJSON *last = cJSON_IsArray(rows) ? cJSON_GetArrayItem(rows, cJSON_GetArraySize(rows) - 1) : NULL;
    if (!summary || !cJSON_IsString(mode) || strcmp(mode->valuestring, "multitask") != 0 || !cJSON_IsArray(names) ||
        !cJSON_IsArray(last) || cJSON_GetArraySize(last) != cJSON_GetArraySize(names)) {
        cJSON_Delete(summary);
        return tp_fail("%s: no summary line of a multitask run (key 'multitask_results')", path);
    }
    int status = 0;
    for (int64_t k = 0; k < c->task_count && status == 0; k++) {
        int64_t at = -1;
        for (int i = 0; i < cJSON_GetArraySize(names) && at < 0; i++) {
            const cJSON *name = cJSON_GetArrayItem(names, i);
            if (cJSON_IsString(name) && strcmp(name->valuestring, c->tasks[k].name) == 0) at = i;
        }
        const cJSON *value = at >= 0 ? cJSON_GetArrayItem(last, (int)at) : NULL;
        if (!cJSON_IsNumber(value))
            status = tp_fail("%s: the multitask run has no accuracy for task '%s' (key 'multitask_results')", path,
                             c->tasks[k].name);
        else
            c->reference[k] = value->valuedouble;
    }
    cJSON_Delete(summary);
    return status;
}

/* ---- the summary ------------------------------------------------------------------------------ */

static void print_matrix(const tp_continual *c)
{
    int64_t first = c->mode == TP_CONTINUAL_MULTITASK ? c->task_count - 1 : 0;
    printf("test accuracy (rows: after learning the task; columns: on the task)\n%-16s", "");
    for (int64_t k = 0; k < c->task_count; k++) printf(" %12.12s", c->tasks[k].name);
    printf("\n");
    for (int64_t i = first; i < c->task_count; i++) {
        printf("%-16.16s", c->mode == TP_CONTINUAL_MULTITASK ? "multitask" : c->tasks[i].name);
        for (int64_t k = 0; k <= i; k++) printf(" %12.4f", c->accuracy[i * c->task_count + k]);
        printf("\n");
    }
}

static void log_matrix(const tp_continual *c)
{
    int64_t first = c->mode == TP_CONTINUAL_MULTITASK ? c->task_count - 1 : 0;
    fputc('[', c->log);
    for (int64_t i = first; i < c->task_count; i++) {
        if (i > first) fputc(',', c->log);
        json_numbers(c->log, c->accuracy + i * c->task_count, i + 1);
    }
    fputc(']', c->log);
}

int tp_continual_report_summary(tp_continual *c)
{
    int64_t tasks = c->task_count;
    double average = tp_continual_average_accuracy(c->accuracy, tasks);
    double forgetting = c->mode == TP_CONTINUAL_MULTITASK ? NAN : tp_continual_forgetting(c->accuracy, tasks);
    double intransigence = c->reference ? tp_continual_intransigence(c->accuracy, c->reference, tasks) : NAN;
    print_matrix(c);
    printf("%s: average accuracy %.4f | forgetting ", tp_continual_mode_names[c->mode], average);
    isfinite(forgetting) ? printf("%.4f", forgetting) : printf("-");
    printf(" | intransigence ");
    isfinite(intransigence) ? printf("%.4f (vs %s)\n", intransigence, c->multitask_results) : printf("-\n");
    fflush(stdout);
    fprintf(c->log, "{\"event\":\"summary\",\"mode\":\"%s\",\"tasks\":", tp_continual_mode_names[c->mode]);
    json_task_names(c->log, c);
    fprintf(c->log, ",\"accuracy\":");
    log_matrix(c);
    fprintf(c->log, ",\"average_accuracy\":");
    json_number(c->log, average);
    fprintf(c->log, ",\"forgetting\":");
    json_number(c->log, forgetting);
    fprintf(c->log, ",\"intransigence\":");
    json_number(c->log, intransigence);
    fputs("}\n", c->log);
    return flush_log(c);
}

/* <output_dir>/final: the weights with every head; <output_dir>/continual.json: which head is
 * which task, with its labels. */
int tp_continual_save(tp_continual *c)
{
    char root[4200], path[4200];
    snprintf(root, sizeof root, "%s/final", c->output_dir);
    if (tp_checkpoint_save(root, c->task_count, &c->model.params, NULL, NULL, c->model_config_json, "{}", 1) < 0)
        return -1;
    cJSON *map = cJSON_CreateObject();
    cJSON_AddStringToObject(map, "mode", tp_continual_mode_names[c->mode]);
    cJSON *tasks = cJSON_AddArrayToObject(map, "tasks");
    for (int64_t k = 0; k < c->task_count; k++) {
        const tp_continual_task *task = &c->tasks[k];
        cJSON *entry = cJSON_CreateObject();
        cJSON_AddStringToObject(entry, "name", task->name);
        cJSON_AddStringToObject(entry, "dir", task->dir);
        cJSON_AddStringToObject(entry, "head", task->head_prefix);
        cJSON_AddItemToObject(entry, "labels",
                              cJSON_CreateStringArray((const char *const *)task->label_names, (int)task->labels_num));
        cJSON_AddItemToArray(tasks, entry);
    }
    char *text = cJSON_Print(map);
    cJSON_Delete(map);
    snprintf(path, sizeof path, "%s/continual.json", c->output_dir);
    int status = tp_write_file_atomic(path, text, strlen(text));
    cJSON_free(text);
    return status;
}
