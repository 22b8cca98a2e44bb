/* The task directories of a continual run and their heads (core/continual_job.h). */
#include <stdlib.h>
#include <string.h>

#include "core/continual_job.h"
#include "core/error.h"
#include "core/fileio.h"

static const char *const split_files[TP_CONTINUAL_SPLITS] = {"train.tsv", "dev.tsv", "test.tsv"};

/* The head's name: the directory's last part (trailing slashes dropped), characters other than
 * letters, digits, '-' and '_' replaced by '_'. */
static char *head_name(const char *dir)
{
    size_t end = strlen(dir);
    while (end > 1 && dir[end - 1] == '/') end--;
    size_t start = end;
    while (start > 0 && dir[start - 1] != '/') start--;
    char *name = tp_xmalloc(end - start + 1);
    for (size_t i = start; i < end; i++) {
        char ch = dir[i];
        int plain = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '-' ||
                    ch == '_';
        name[i - start] = plain ? ch : '_';
    }
    name[end - start] = '\0';
    return name;
}

/* The directories named by `tasks`: a JSON array of strings and/or comma-separated lists. */
static int list_task_dirs(tp_continual *c)
{
    const char *const *items = NULL;
    int item_count = 0;
    const char *config = tp_config_name(c->run);
    if (tp_config_strings(c->run, "tasks", &items, &item_count) < 0) return -1;
    for (int i = 0; i < item_count; i++) {
        for (const char *at = items[i];; at++) {
            const char *comma = strchr(at, ',');
            size_t length = comma ? (size_t)(comma - at) : strlen(at);
            if (length == 0)
                return tp_fail("%s: key 'tasks': an empty task directory in '%s'", config, items[i]);
            c->tasks = tp_xrealloc(c->tasks, (size_t)(c->task_count + 1) * sizeof *c->tasks);
            tp_continual_task *task = &c->tasks[c->task_count++];
            memset(task, 0, sizeof *task);
            task->dir = tp_xmalloc(length + 1);
            memcpy(task->dir, at, length);
            task->dir[length] = '\0';
            if (!comma) break;
            at = comma;
        }
    }
    if (c->task_count == 0)
        return tp_fail("%s: key 'tasks': missing (continual mode learns the task directories it lists)", config);
    return 0;
}

static int check_names(const tp_continual *c)
{
    for (int64_t k = 0; k < c->task_count; k++) {
        const tp_continual_task *task = &c->tasks[k];
        if (!task->name[0])
            return tp_fail("%s: key 'tasks': '%s' has no name for its head", tp_config_name(c->run), task->dir);
        for (int64_t j = 0; j < k; j++)
            if (strcmp(c->tasks[j].name, task->name) == 0)
                return tp_fail("%s: key 'tasks': '%s' and '%s' would both name their head target.cls_%s (heads "
                               "are named after the directory's last part)",
                               tp_config_name(c->run), c->tasks[j].dir, task->dir, task->name);
    }
    return 0;
}

/* labels.txt (one class name per line), when the directory has one: the head's label set. */
static int read_label_file(tp_continual_task *task, int *found)
{
    char path[4200];
    size_t bytes = 0;
    snprintf(path, sizeof path, "%s/labels.txt", task->dir);
    char *text = tp_read_file(path, &bytes);
    *found = text != NULL;
    if (!text) return 0;
    int64_t line_number = 0;
    for (char *cursor = text, *line; (line = tp_next_line(&cursor, &line_number));) {
        if (!*line) {
            if (*cursor) {
                free(text);
                return tp_fail("%s: line %lld: empty label name", path, (long long)line_number);
            }
            break;
        }
        task->label_names = tp_xrealloc(task->label_names, (size_t)(task->labels_num + 1) * sizeof(char *));
        task->label_names[task->labels_num++] = tp_xstrdup(line);
    }
    free(text);
    if (task->labels_num < 2)
        return tp_fail("%s: %lld label(s): classification needs at least 2", path, (long long)task->labels_num);
    return 0;
}

/* train, dev, test with the head's label set (labels.txt's, else the training file's). */
static int read_task_files(tp_continual_task *task)
{
    char path[4200];
    int has_label_file = 0;
    if (read_label_file(task, &has_label_file) < 0) return -1;
    tp_tsv_options options = {.kind = TP_TASK_CLASSIFICATION, .num_labels = task->labels_num};
    for (int s = 0; s < TP_CONTINUAL_SPLITS; s++) {
        snprintf(path, sizeof path, "%s/%s", task->dir, split_files[s]);
        if (!(task->files[s] = tp_tsv_read(path, &options))) return -1;
        if (task->files[s]->count == 0) return tp_fail("%s: no examples", path);
        if (s == TP_CONTINUAL_TRAIN && !has_label_file) {
            task->labels_num = options.num_labels = task->files[s]->num_labels;
            if (task->labels_num < 2)
                return tp_fail("%s: only %lld label(s): classification needs at least 2", path,
                               (long long)task->labels_num);
            task->label_names = tp_xmalloc((size_t)task->labels_num * sizeof(char *));
            for (int64_t l = 0; l < task->labels_num; l++)
                task->label_names[l] = tp_xstrdup(task->files[s]->label_names[l]);
        }
    }
    return 0;
}

int tp_continual_read_tasks(tp_continual *c)
{
    if (list_task_dirs(c) < 0) return -1;
    for (int64_t k = 0; k < c->task_count; k++) c->tasks[k].name = head_name(c->tasks[k].dir);
    if (check_names(c) < 0) return -1;
    for (int64_t k = 0; k < c->task_count; k++) {
        tp_continual_task *task = &c->tasks[k];
        snprintf(task->head_prefix, sizeof task->head_prefix, "target.cls_%.200s", task->name);
        if (read_task_files(task) < 0)
            return tp_fail_context("%s: key 'tasks': task %lld (%s)", tp_config_name(c->run), (long long)k + 1,
                                   task->dir);
        for (int s = 0; s < TP_CONTINUAL_SPLITS; s++)
            tp_encode_split(c->tokenizer, task->files[s], c->seq_length, task->labels_num, &task->splits[s]);
        snprintf(task->output_dir, sizeof task->output_dir, "%s/%lld_%s", c->output_dir, (long long)k + 1, task->name);
    }
    return 0;
}

static const tp_target_type *cls_type(void)
{
    for (int i = 0; tp_target_registry[i]; i++)
        if (strcmp(tp_target_registry[i]->name, "cls") == 0) return tp_target_registry[i];
    return NULL;
}

int tp_continual_declare_heads(tp_continual *c)
{
    const tp_target_type *type = cls_type();
    tp_build build = {.config = c->model_config, .hp = &c->model.hp, .params = &c->model.params};
    char text[32];
    for (int64_t k = 0; k < c->task_count; k++) {
        tp_continual_task *task = &c->tasks[k];
        snprintf(text, sizeof text, "%lld", (long long)task->labels_num);
        if (tp_config_set(c->model_config, "labels_num", text) < 0) return -1;
        task->first_segment = c->model.params.count;
        if (!(task->head = type->create(&build, task->head_prefix))) return -1;
        task->segment_count = c->model.params.count - task->first_segment;
    }
    return 0;
}

int tp_continual_head_forward(tp_continual *c, tp_ctx *ctx, const tp_batch *batch, int64_t task,
                              tp_target_result *out)
{
    tp_model_batch model_batch = tp_model_batch_upload(ctx, batch);
    tp_model_output model_out;
    memset(out, 0, sizeof *out);
    if (tp_model_forward(&c->model, ctx, &model_batch, &model_out) < 0) return -1;
    return cls_type()->forward(c->tasks[task].head, ctx, model_out.hidden, &model_batch, out);
}

void tp_continual_tasks_free(tp_continual *c)
{
    const tp_target_type *type = cls_type();
    for (int64_t k = 0; k < c->task_count; k++) {
        tp_continual_task *task = &c->tasks[k];
        for (int s = 0; s < TP_CONTINUAL_SPLITS; s++) {
            if (task->files[s]) tp_tsv_free(task->files[s]);
            tp_encoded_split_free(&task->splits[s]);
        }
        for (int64_t l = 0; l < task->labels_num && task->label_names; l++) free(task->label_names[l]);
        free(task->label_names);
        if (task->head) {
            if (type->destroy)
                type->destroy(task->head);
            else
                free(task->head);
        }
        free(task->memory);
        free(task->dir);
        free(task->name);
    }
    free(c->tasks);
    c->tasks = NULL;
    c->task_count = 0;
}
