/* Real training for tp-select (core/select_train.h, docs/select.md "Real training"): tp-finetune
 * and tp-infer as child processes, their metrics and predictions read back, and the offline phase
 * built from them. */
#include "select_train.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "error.h"
#include "fileio.h"
#include "finetune_task.h"
#include "tsv.h"

/* ---- small helpers ---------------------------------------------------------------------------- */

static char *format(const char *fmt, ...) TP_PRINTF(1, 2);
static char *format(const char *fmt, ...)
{
    va_list args;
    va_start(args, fmt);
    int length = vsnprintf(NULL, 0, fmt, args);
    va_end(args);
    char *text = tp_xmalloc((size_t)length + 1);
    va_start(args, fmt);
    vsnprintf(text, (size_t)length + 1, fmt, args);
    va_end(args);
    return text;
}

static int is_file(const char *path)
{
    struct stat info;
    return stat(path, &info) == 0 && S_ISREG(info.st_mode);
}

static int exists(const char *path)
{
    struct stat info;
    return stat(path, &info) == 0;
}

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void progress(const tp_select_env *env, const char *fmt, ...) TP_PRINTF(2, 3);
static void progress(const tp_select_env *env, const char *fmt, ...)
{
    if (!env->options.progress) return;
    char line[1024];
    va_list args;
    va_start(args, fmt);
    vsnprintf(line, sizeof line, fmt, args);
    va_end(args);
    env->options.progress(env->options.progress_user, line);
}

/* A path of the manifest (relative ones start at the manifest's directory). */
static char *zoo_path(const tp_zoo *zoo, const char *path)
{
    return path[0] == '/' || zoo->base_dir[0] == '\0' ? tp_xstrdup(path) : format("%s/%s", zoo->base_dir, path);
}

/* <work>/<task>/<NN>-<name>: the model's index keeps names unique once characters other than
 * letters, digits, '.', '_' and '-' become '_' (names like "org/model" are common). */
static char *run_dir(const tp_select_env *env, const char *task, int64_t model)
{
    char *name = tp_xstrdup(env->zoo->models[model].name);
    for (char *c = name; *c; c++)
        if (!(*c >= 'a' && *c <= 'z') && !(*c >= 'A' && *c <= 'Z') && !(*c >= '0' && *c <= '9') && !strchr("._-", *c))
            *c = '_';
    char *dir = format("%s/%s/%02" PRId64 "-%s", env->options.work_dir, task, model, name);
    free(name);
    return dir;
}

/* The last non-empty line of a file ("" when none), malloc'd. */
static char *last_line(const char *path)
{
    char *text = tp_read_file(path, NULL);
    if (!text) return tp_xstrdup("");
    size_t end = strlen(text);
    while (end > 0 && (text[end - 1] == '\n' || text[end - 1] == '\r')) end--;
    size_t start = end;
    while (start > 0 && text[start - 1] != '\n') start--;
    char *line = tp_xmalloc(end - start + 1);
    memcpy(line, text + start, end - start);
    line[end - start] = '\0';
    free(text);
    return line;
}

/* ---- child processes -------------------------------------------------------------------------- */

/* Runs argv (argv[0]: the program's path) with stdin from /dev/null and stdout and stderr appended
 * to log, after the command line; *seconds: its wall clock. */
static int run_child(char *const *argv, const char *log, double *seconds)
{
    FILE *fp = fopen(log, "a");
    if (!fp) return tp_fail("%s: cannot open for appending: %s", log, strerror(errno));
    fputs("$", fp);
    for (int i = 0; argv[i]; i++) fprintf(fp, " %s", argv[i]);
    fputc('\n', fp);
    if (fclose(fp) != 0) return tp_fail("%s: cannot write: %s", log, strerror(errno));
    int fd = open(log, O_WRONLY | O_APPEND);
    if (fd < 0) return tp_fail("%s: cannot open for appending: %s", log, strerror(errno));
    double start = now_seconds();
    pid_t pid = fork();
    if (pid == 0) {
        int null = open("/dev/null", O_RDONLY);
        if (null >= 0) dup2(null, STDIN_FILENO);
        dup2(fd, STDOUT_FILENO);
        dup2(fd, STDERR_FILENO);
        execv(argv[0], argv);
        dprintf(STDERR_FILENO, "tp-select: cannot run %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    close(fd);
    if (pid < 0) return tp_fail("cannot start %s: %s", argv[0], strerror(errno));
    int status = 0;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR) return tp_fail("waiting for %s: %s", argv[0], strerror(errno));
    *seconds = now_seconds() - start;
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return 0;
    char how[64], *line = last_line(log);
    if (WIFEXITED(status)) snprintf(how, sizeof how, "exit status %d", WEXITSTATUS(status));
    else snprintf(how, sizeof how, "killed by signal %d", WTERMSIG(status));
    const char *program = strrchr(argv[0], '/') ? strrchr(argv[0], '/') + 1 : argv[0];
    tp_fail("%s failed (%s): %s (log: %s)", program, how, line, log);
    free(line);
    return -1;
}

/* ---- the run template ------------------------------------------------------------------------- */

/* Keys tp-select sets for every run (or that would change what a run is). */
static const char *const per_run_keys[] = {"model",      "hf_model_dir", "pretrained_model_path", "train_path",
                                           "dev_path",   "test_path",    "output_dir",            "epochs_num",
                                           "metrics_path", "continual",  "tasks",                 NULL};

/* The template's value of an integer key as text for tp-infer (NULL when absent). */
static int passed_on(tp_config *run, const char *key, char **out)
{
    int64_t value;
    *out = NULL;
    if (!tp_config_has(run, key)) return 0;
    if (tp_config_int(run, key, 0, 0, INT64_C(1) << 30, &value) < 0) return -1;
    *out = format("%" PRId64, value);
    return 0;
}

static int read_template(tp_select_env *env, tp_config *run)
{
    const char *name = tp_config_name(run), *task = NULL, *scheduler = NULL;
    for (int i = 0; per_run_keys[i]; i++)
        if (tp_config_has(run, per_run_keys[i]))
            return tp_fail("%s: key '%s': tp-select sets it for every run (remove it from the template)", name,
                           per_run_keys[i]);
    if (tp_config_string(run, "task", "classification", &task) < 0) return -1;
    if (strcmp(task, "classification") != 0)
        return tp_fail("%s: key 'task': '%s': tp-select fine-tunes classification tasks (LEEP pairs the heads' "
                       "softmax outputs with class labels)", name, task);
    env->metric = tp_task_selection_name(TP_TASK_CLASSIFICATION);
    env->default_schedule = !tp_config_has(run, "scheduler");
    if (!env->default_schedule && tp_config_string(run, "scheduler", NULL, &scheduler) < 0) return -1;
    if (scheduler && strcmp(scheduler, "constant") != 0)
        return tp_fail("%s: key 'scheduler': '%s': tp-select trains one epoch per run, growing epochs_num, so the "
                       "learning rate must not depend on the run's length: use \"constant\" (or leave the key out)",
                       name, scheduler);
    if (passed_on(run, "threads", &env->infer_threads) < 0) return -1;
    return passed_on(run, "batch_size", &env->infer_batch_size);
}

int tp_select_env_open(tp_select_env *env, const tp_zoo *zoo, const tp_select_env_options *options)
{
    memset(env, 0, sizeof *env);
    env->zoo = zoo;
    env->options = *options;
    const char *missing = !options->tasks_dir ? "tasks" : !options->work_dir ? "work" : !options->template_path ? "finetune"
                          : !options->bin_dir ? "bin" : NULL;
    if (missing) return tp_fail("real training needs --%s", missing);
    static const char *const programs[] = {"tp-finetune", "tp-infer"};
    for (int i = 0; i < 2; i++) {
        char *path = format("%s/%s", options->bin_dir, programs[i]);
        int runnable = access(path, X_OK) == 0;
        free(path);
        if (!runnable)
            return tp_fail("%s/%s: not found or not executable (tp-select runs tp-finetune and tp-infer from its own "
                           "directory, or from --bin DIR)", options->bin_dir, programs[i]);
    }
    tp_config *run = tp_config_load(options->template_path);
    if (!run) return -1;
    int status = read_template(env, run);
    tp_config_free(run);
    if (status != 0) tp_select_env_close(env);
    return status;
}

void tp_select_env_close(tp_select_env *env)
{
    free(env->infer_threads);
    free(env->infer_batch_size);
    memset(env, 0, sizeof *env);
}

/* ---- checks ----------------------------------------------------------------------------------- */

static int check_task_name(const char *task)
{
    if (task[0] == '\0' || task[0] == '.' || strchr(task, '/'))
        return tp_fail("task '%s': a task is named by its directory under --tasks (no '/', not starting with '.')",
                       task);
    return 0;
}

int tp_select_check_task(const tp_select_env *env, const char *task, int need_test)
{
    if (check_task_name(task) != 0) return -1;
    static const char *const files[] = {"train.tsv", "dev.tsv", "test.tsv"};
    for (int i = 0; i < 2 + (need_test != 0); i++) {
        char *path = format("%s/%s/%s", env->options.tasks_dir, task, files[i]);
        int found = is_file(path);
        if (!found) tp_fail("%s: missing (task '%s' needs train.tsv, dev.tsv%s)", path, task, need_test ? " and test.tsv" : "");
        free(path);
        if (!found) return -1;
    }
    return 0;
}

/* The model's checkpoint as a path, after checking it is a file. */
static char *checkpoint_path(const tp_select_env *env, int64_t model)
{
    const tp_zoo *zoo = env->zoo;
    const tp_zoo_model *entry = &zoo->models[model];
    if (!entry->checkpoint) {
        tp_fail("%s: key 'models[%" PRId64 "].checkpoint': model '%s' has none (real training starts from its weights, a "
                "model.safetensors)", zoo->manifest_path, model, entry->name);
        return NULL;
    }
    char *path = zoo_path(zoo, entry->checkpoint);
    if (is_file(path)) return path;
    tp_fail("%s: key 'models[%" PRId64 "].checkpoint': %s: %s", zoo->manifest_path, model, path,
            exists(path) ? "not a file (give the model.safetensors, e.g. <output_dir>/best/step-00000040/model.safetensors)"
                         : "not found");
    free(path);
    return NULL;
}

static char *config_path(const tp_select_env *env, int64_t model)
{
    const tp_zoo *zoo = env->zoo;
    const tp_zoo_model *entry = &zoo->models[model];
    if (!entry->config) {
        tp_fail("%s: key 'models[%" PRId64 "].config': model '%s' has none (real training needs its model config)",
                zoo->manifest_path, model, entry->name);
        return NULL;
    }
    char *path = zoo_path(zoo, entry->config);
    if (is_file(path)) return path;
    tp_fail("%s: key 'models[%" PRId64 "].config': %s: not found", zoo->manifest_path, model, path);
    free(path);
    return NULL;
}

int tp_select_check_trainable(const tp_select_env *env, int64_t model)
{
    char *checkpoint = checkpoint_path(env, model), *config = checkpoint ? config_path(env, model) : NULL;
    int status = checkpoint && config ? 0 : -1;
    free(checkpoint);
    free(config);
    return status;
}

/* ---- fine-tuning ------------------------------------------------------------------------------ */

/* The last metrics line of the run with "split": split, parsed; NULL + message when none. */
static cJSON *last_evaluation(const char *metrics, const char *split)
{
    char *text = tp_read_file(metrics, NULL);
    if (!text) return NULL;
    cJSON *found = NULL;
    char *rest = NULL;
    for (char *line = strtok_r(text, "\n", &rest); line; line = strtok_r(NULL, "\n", &rest)) {
        cJSON *entry = cJSON_Parse(line);
        const cJSON *value = cJSON_GetObjectItemCaseSensitive(entry, "split");
        if (cJSON_IsString(value) && strcmp(value->valuestring, split) == 0) {
            cJSON_Delete(found);
            found = entry;
        } else {
            cJSON_Delete(entry);
        }
    }
    free(text);
    if (!found) tp_fail("%s: no %s evaluation", metrics, split);
    return found;
}

/* The score (env->metric) of the run's last `split` evaluation; epoch > 0: it must be that epoch's. */
static int read_score(const tp_select_env *env, const char *dir, const char *split, int64_t epoch, double *score)
{
    char *metrics = format("%s/metrics.jsonl", dir);
    cJSON *line = last_evaluation(metrics, split);
    int status = line ? 0 : -1;
    if (status == 0 && epoch > 0) {
        const cJSON *logged = cJSON_GetObjectItemCaseSensitive(line, "epoch");
        if (!cJSON_IsNumber(logged) || logged->valuedouble != (double)epoch)
            status = tp_fail("%s: the last dev evaluation is not epoch %" PRId64 "'s", metrics, epoch);
    }
    const cJSON *value = line ? cJSON_GetObjectItemCaseSensitive(line, env->metric) : NULL;
    if (status == 0 && !cJSON_IsNumber(value))
        status = tp_fail("%s: the last %s evaluation has no number '%s'", metrics, split, env->metric);
    if (status == 0) *score = value->valuedouble;
    cJSON_Delete(line);
    free(metrics);
    return status;
}

/* tp-finetune on the task's files into dir for `epochs` epochs; resume: continue its run;
 * test: evaluate test.tsv at the end. */
static int run_finetune(const tp_select_env *env, const char *task, int64_t model, const char *dir, int64_t epochs,
                        int resume, int test, double *seconds)
{
    char *checkpoint = checkpoint_path(env, model), *config = checkpoint ? config_path(env, model) : NULL;
    if (!config) {
        free(checkpoint);
        return -1;
    }
    const char *tasks = env->options.tasks_dir;
    char *program = format("%s/tp-finetune", env->options.bin_dir), *log = format("%s/run.log", dir);
    char *train = format("%s/%s/train.tsv", tasks, task), *dev = format("%s/%s/dev.tsv", tasks, task);
    char *test_path = format("%s/%s/test.tsv", tasks, task), *epochs_text = format("%" PRId64, epochs);
    char *argv[24];
    int argc = 0;
    char *fixed[] = {program, "--config", (char *)env->options.template_path, "--model", config,
                     "--pretrained_model_path", checkpoint, "--train_path", train, "--dev_path", dev,
                     "--output_dir", (char *)dir, "--epochs_num", epochs_text};
    for (size_t i = 0; i < sizeof fixed / sizeof *fixed; i++) argv[argc++] = fixed[i];
    if (env->default_schedule) argv[argc++] = "--scheduler", argv[argc++] = "constant";
    if (test) argv[argc++] = "--test_path", argv[argc++] = test_path;
    if (resume) argv[argc++] = "--resume";
    argv[argc] = NULL;
    int status = run_child(argv, log, seconds);
    free(checkpoint);
    free(config);
    free(program);
    free(log);
    free(train);
    free(dev);
    free(test_path);
    free(epochs_text);
    return status;
}

int tp_select_train_epoch(const tp_select_env *env, const char *task, int64_t model, int64_t epoch, double *dev_score,
                          double *seconds)
{
    *dev_score = *seconds = 0;
    if (check_task_name(task) != 0) return -1;
    char *dir = run_dir(env, task, model);
    int status = 0;
    if (epoch == 0 && exists(dir))
        status = tp_fail("%s: holds an earlier run (every fine-tuning starts in a fresh directory: choose another "
                         "--work or remove it)", dir);
    else if (epoch == 0)
        status = tp_mkdirs(dir);
    else if (!exists(dir))
        status = tp_fail("%s: no run to continue with epoch %" PRId64, dir, epoch + 1);
    if (status == 0) status = run_finetune(env, task, model, dir, epoch + 1, epoch > 0, 0, seconds);
    if (status == 0) status = read_score(env, dir, "dev", epoch + 1, dev_score);
    free(dir);
    return status;
}

int tp_select_test_score(const tp_select_env *env, const char *task, int64_t model, int64_t epochs, double *score,
                         double *seconds)
{
    *score = *seconds = 0;
    if (check_task_name(task) != 0) return -1;
    char *dir = run_dir(env, task, model);
    int status = exists(dir) ? run_finetune(env, task, model, dir, epochs, 1, 1, seconds)
                             : tp_fail("%s: no run to evaluate", dir);
    if (status == 0) status = read_score(env, dir, "test", 0, score);
    free(dir);
    return status;
}

/* ---- LEEP ------------------------------------------------------------------------------------- */

/* The examples the heads see: leep_examples of the training set, evenly spaced (task files are
 * often sorted by label), or all of them. */
static int64_t leep_example_count(const tp_select_env *env, int64_t available)
{
    int64_t wanted = env->options.leep_examples;
    return wanted > 0 && wanted < available ? wanted : available;
}

/* Writes <work>/<task>/leep_inputs.tsv (the texts, no labels) and returns the examples' target
 * label names, in order (pointing into *train, which the caller frees). */
static int leep_inputs(const tp_select_env *env, const char *task, tp_tsv_task **train, char *inputs_path,
                       size_t inputs_size, const char ***labels, int64_t *count)
{
    char *train_path = format("%s/%s/train.tsv", env->options.tasks_dir, task);
    char *task_dir = format("%s/%s", env->options.work_dir, task);
    tp_tsv_options options = {.kind = TP_TASK_CLASSIFICATION};
    *train = tp_tsv_read(train_path, &options);
    snprintf(inputs_path, inputs_size, "%s/leep_inputs.tsv", task_dir);
    int status = *train && tp_mkdirs(task_dir) == 0 ? 0 : -1;
    tp_atomic_file file;
    if (status == 0) status = tp_atomic_open(&file, inputs_path);
    if (status == 0) {
        const tp_tsv_task *data = *train;
        *count = leep_example_count(env, data->count);
        *labels = tp_xmalloc((size_t)*count * sizeof **labels);
        fputs(data->has_text_b ? "text_a\ttext_b\n" : "text_a\n", file.fp);
        for (int64_t i = 0; i < *count; i++) {
            const tp_tsv_example *example = &data->examples[i * data->count / *count];
            (*labels)[i] = data->label_names[example->label];
            fprintf(file.fp, "%s%s%s\n", example->text_a, data->has_text_b ? "\t" : "",
                    data->has_text_b ? example->text_b : "");
        }
        status = tp_atomic_commit(&file);
    }
    free(train_path);
    free(task_dir);
    return status;
}

/* The header of the head-outputs TSV: "label", then the source labels 0..n-1, n being the number
 * of probabilities on the first prediction line (the reader then checks it against the head). */
static void write_head_header(FILE *fp, const char *first_probabilities)
{
    int64_t source_labels = 1;
    for (const char *c = first_probabilities; *c; c++) source_labels += *c == ' ';
    fputs("label", fp);
    for (int64_t z = 0; z < source_labels; z++) fprintf(fp, "\t%" PRId64, z);
    fputc('\n', fp);
}

/* tp-infer's predictions (label<TAB>space-separated probabilities) with each row's target label
 * instead of the predicted one: the head-outputs TSV (docs/select.md). */
static int write_head_outputs(const char *predictions, const char *path, const char *const *labels, int64_t count)
{
    char *text = tp_read_file(predictions, NULL);
    if (!text) return -1;
    tp_atomic_file file;
    if (tp_atomic_open(&file, path) != 0) {
        free(text);
        return -1;
    }
    int status = 0;
    int64_t row = -1; /* the header first */
    char *rest = NULL;
    for (char *line = strtok_r(text, "\n", &rest); status == 0 && line; line = strtok_r(NULL, "\n", &rest), row++) {
        if (row < 0) continue;
        const char *probs = strchr(line, '\t');
        if (row >= count || !probs) {
            status = tp_fail("%s: line %" PRId64 ": %s", predictions, row + 2,
                             probs ? "more predictions than inputs" : "no prob column");
            break;
        }
        if (row == 0) write_head_header(file.fp, probs + 1);
        fputs(labels[row], file.fp);
        for (const char *c = probs; *c; c++) fputc(*c == ' ' ? '\t' : *c, file.fp);
        fputc('\n', file.fp);
    }
    if (status == 0 && row != count)
        status = tp_fail("%s: %" PRId64 " predictions for %" PRId64 " inputs", predictions, row, count);
    if (status == 0) status = tp_atomic_commit(&file);
    else tp_atomic_abort(&file);
    free(text);
    return status;
}

/* tp-infer with the head's checkpoint directory (the weights' directory; tp-finetune's task.json is
 * in it or above) on the inputs, softmax outputs to predictions. */
static int run_infer(const tp_select_env *env, int64_t model, const char *inputs, const char *predictions,
                     const char *log, double *seconds)
{
    char *checkpoint = checkpoint_path(env, model);
    if (!checkpoint) return -1;
    char *slash = strrchr(checkpoint, '/');
    if (slash) *slash = '\0';
    char *program = format("%s/tp-infer", env->options.bin_dir);
    char *argv[16] = {program, "--checkpoint", slash ? checkpoint : ".", "--test_path", (char *)inputs,
                      "--prediction_path", (char *)predictions, "--output_prob"};
    int argc = 8;
    if (env->infer_threads) argv[argc++] = "--threads", argv[argc++] = env->infer_threads;
    if (env->infer_batch_size) argv[argc++] = "--batch_size", argv[argc++] = env->infer_batch_size;
    argv[argc] = NULL;
    int status = run_child(argv, log, seconds);
    free(program);
    free(checkpoint);
    return status;
}

int tp_select_head_leep(const tp_select_env *env, const char *task, int64_t model, double *leep, double *seconds)
{
    const tp_zoo *zoo = env->zoo;
    const tp_zoo_model *entry = &zoo->models[model];
    *leep = NAN;
    *seconds = 0;
    if (check_task_name(task) != 0) return -1;
    if (entry->head_labels == 0)
        return tp_fail("%s: model '%s' has no head (key 'models[%" PRId64 "].head'): LEEP needs its source-task "
                       "classifier's softmax outputs", zoo->manifest_path, entry->name, model);
    double start = now_seconds(), infer_seconds = 0;
    char inputs[4096];
    const char **labels = NULL;
    int64_t count = 0;
    tp_tsv_task *train = NULL;
    char *base = run_dir(env, task, model);
    char *predictions = format("%s.leep_predictions.tsv", base), *outputs_path = format("%s.head_outputs.tsv", base);
    char *log = format("%s.leep.log", base);
    int status = leep_inputs(env, task, &train, inputs, sizeof inputs, &labels, &count);
    if (status == 0) status = run_infer(env, model, inputs, predictions, log, &infer_seconds);
    if (status == 0) status = write_head_outputs(predictions, outputs_path, labels, count);
    tp_head_outputs *outputs = status == 0 ? tp_head_outputs_read(outputs_path, entry->head_labels) : NULL;
    if (outputs) {
        *leep = tp_select_leep(outputs);
        *seconds = now_seconds() - start;
    } else if (status == 0) {
        status = tp_fail_context("model '%s' (manifest %s, head.labels %" PRId64 ")", entry->name, zoo->manifest_path,
                                 entry->head_labels);
    }
    tp_head_outputs_free(outputs);
    if (train) tp_tsv_free(train);
    free(labels);
    free(base);
    free(predictions);
    free(outputs_path);
    free(log);
    return outputs ? 0 : -1;
}

/* ---- the offline phase ------------------------------------------------------------------------ */

static int build_pair(const tp_select_env *env, tp_zoo *zoo, int64_t model, int64_t benchmark)
{
    const char *task = zoo->benchmarks[benchmark];
    int64_t pair = model * zoo->benchmark_count + benchmark;
    double *dev = zoo->dev + pair * zoo->epochs, *seconds = zoo->epoch_seconds + pair * zoo->epochs, test_seconds;
    for (int64_t e = 0; e < zoo->epochs; e++) {
        if (tp_select_train_epoch(env, task, model, e, &dev[e], &seconds[e]) != 0) return -1;
        progress(env, "%s on %s: epoch %" PRId64 " dev %s %.4f (%.1f s)", zoo->models[model].name, task, e + 1,
                 env->metric, dev[e], seconds[e]);
    }
    zoo->has_curve[pair] = 1;
    if (tp_select_test_score(env, task, model, zoo->epochs, &zoo->scores[pair], &test_seconds) != 0) return -1;
    progress(env, "%s on %s: test %s %.4f (best-on-dev weights; %.1f s)", zoo->models[model].name, task, env->metric,
             zoo->scores[pair], test_seconds);
    return 0;
}

int tp_select_build(const tp_select_env *env, tp_zoo *zoo, char *const *tasks, int64_t task_count, int64_t epochs)
{
    for (int64_t b = 0; b < task_count; b++)
        if (tp_select_check_task(env, tasks[b], 1) != 0) return -1;
    for (int64_t m = 0; m < zoo->model_count; m++)
        if (tp_select_check_trainable(env, m) != 0) return -1;
    if (tp_zoo_init_tables(zoo, tasks, task_count, epochs) != 0) return -1;
    for (int64_t b = 0; b < task_count; b++)
        for (int64_t m = 0; m < zoo->model_count; m++)
            if (build_pair(env, zoo, m, b) != 0) return -1;
    for (int64_t t = 0; t < zoo->target_count; t++)
        for (int64_t m = 0; m < zoo->model_count; m++) {
            int64_t at = t * zoo->model_count + m;
            if (zoo->models[m].head_labels == 0) continue;
            if (tp_select_head_leep(env, zoo->targets[t], m, &zoo->leep[at], &zoo->leep_seconds[at]) != 0) return -1;
            progress(env, "%s on %s: LEEP %.4f (%.1f s)", zoo->models[m].name, zoo->targets[t], zoo->leep[at],
                     zoo->leep_seconds[at]);
        }
    return 0;
}
