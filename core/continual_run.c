/* tp-finetune --continual: keys, model and the training of the task sequence (core/continual_run.h). */
#include <cjson/cJSON.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "core/continual_job.h"
#include "core/device.h"
#include "core/error.h"
#include "core/fileio.h"

const char *const tp_continual_mode_names[] = {"seq", "replay", "ewc", "cf", "multitask", NULL};

/* Below every score: the first epoch always becomes the best so far. */
#define NO_SCORE (-1e300)

/* ---- keys ------------------------------------------------------------------------------------- */

/* Keys of other modes are refused by name (rather than as unknown keys). */
static int refuse_other_mode_keys(const tp_continual *c)
{
    const struct {
        const char *key;
        int used;
        const char *by;
    } keys[] = {
        {"replay", c->find, "ewc and cf"},
        {"replay_freq", c->replay, "runs with replay"},
        {"store_ratio", c->replay, "runs with replay"},
        {"find_lambda", c->find, "ewc and cf"},
        {"gamma", c->find, "ewc and cf"},
        {"fisher_estimation_sample_size", c->find, "ewc and cf"},
        {"rho", c->create, "cf"},
        {"adaptive", c->create, "cf"},
        {"clamp", c->create, "cf"},
        {"multitask_results", c->mode != TP_CONTINUAL_MULTITASK, "the sequential modes"},
    };
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        if (!keys[i].used && tp_config_has(c->run, keys[i].key))
            return tp_fail("%s: key '%s': used by %s only (this run: continual %s%s)", tp_config_name(c->run),
                           keys[i].key, keys[i].by, tp_continual_mode_names[c->mode],
                           c->find && !c->replay ? " without replay" : "");
    return 0;
}

static int read_method_keys(tp_continual *c)
{
    tp_config *run = c->run;
    int mode = 0;
    if (tp_config_enum(run, "continual", NULL, tp_continual_mode_names, &mode) < 0) return -1;
    c->mode = (tp_continual_mode)mode;
    c->find = c->mode == TP_CONTINUAL_EWC || c->mode == TP_CONTINUAL_CF;
    c->create = c->mode == TP_CONTINUAL_CF;
    c->replay = c->mode == TP_CONTINUAL_REPLAY;
    if (c->find &&
        (tp_config_bool(run, "replay", c->mode == TP_CONTINUAL_CF, &c->replay) < 0 ||
         tp_config_double(run, "find_lambda", 50000, 0, 1e30, &c->lambda) < 0 ||
         tp_config_double(run, "gamma", 0.95, 0, 1e6, &c->gamma) < 0 ||
         tp_config_int(run, "fisher_estimation_sample_size", 128, 1, INT64_C(1) << 40, &c->fisher_samples) < 0))
        return -1;
    if (c->create && (tp_config_double(run, "rho", 0.65, 0, 1e6, &c->rho) < 0 ||
                      tp_config_bool(run, "adaptive", 1, &c->adaptive) < 0 ||
                      tp_config_bool(run, "clamp", 1, &c->clamp) < 0))
        return -1;
    if (c->replay && (tp_config_int(run, "replay_freq", 20, 1, INT64_C(1) << 40, &c->replay_freq) < 0 ||
                      tp_config_double(run, "store_ratio", 0.01, 0, 1, &c->store_ratio) < 0))
        return -1;
    if (c->mode != TP_CONTINUAL_MULTITASK &&
        tp_config_string(run, "multitask_results", NULL, &c->multitask_results) < 0)
        return -1;
    return refuse_other_mode_keys(c);
}

static int refuse_single_task_keys(tp_config *run)
{
    static const char *const keys[] = {"train_path", "dev_path", "test_path", "metrics_path", "crf", NULL};
    for (int i = 0; keys[i]; i++)
        if (tp_config_has(run, keys[i]))
            return tp_fail("%s: key '%s': not used in continual mode (each task directory holds train.tsv, dev.tsv "
                           "and test.tsv; logs go to output_dir)",
                           tp_config_name(run), keys[i]);
    const char *task = NULL;
    if (tp_config_string(run, "task", "classification", &task) < 0) return -1;
    if (strcmp(task, "classification") != 0)
        return tp_fail("%s: key 'task': continual mode learns classification tasks (got '%s')", tp_config_name(run),
                       task);
    return 0;
}

static int read_training_keys(tp_continual *c, int64_t *threads)
{
    tp_config *run = c->run;
    int64_t seed = 0;
    if (tp_config_int(run, "epochs_num", 3, 1, 100000, &c->epochs) < 0 ||
        tp_config_int(run, "batch_size", 32, 1, 1 << 20, &c->batch_size) < 0 ||
        tp_config_int(run, "seq_length", 128, 2, 1 << 20, &c->seq_length) < 0 ||
        tp_config_int(run, "threads", 0, 0, 4096, threads) < 0 ||
        tp_config_int(run, "seed", 7, 0, INT64_MAX, &seed) < 0)
        return -1;
    c->seed = (uint64_t)seed;
    if (!tp_config_has(run, "learning_rate")) tp_config_set(run, "learning_rate", "2e-5");
    /* Each task's trainer sets its own total_steps; this reading checks the other keys now. */
    tp_config_set(run, "total_steps", "1");
    if (tp_train_options_read(run, &c->options) < 0) return -1;
    if (c->options.accumulation_steps != 1)
        return tp_fail("%s: key 'accumulation_steps': continual mode supports only 1", tp_config_name(run));
    c->output_dir = c->options.output_dir;
    return 0;
}

/* ---- the model -------------------------------------------------------------------------------- */

/* A copy of the model config without its targets (and their keys): the encoder, to which the
 * tasks' heads are added. */
static tp_config *encoder_config(tp_config *model_config, tp_config *run)
{
    static const char *const target_keys[] = {"target", "labels_num", "pooling", NULL};
    char *text = tp_config_to_json(model_config);
    cJSON *json = cJSON_Parse(text);
    free(text);
    for (int i = 0; target_keys[i]; i++) cJSON_DeleteItemFromObjectCaseSensitive(json, target_keys[i]);
    text = cJSON_PrintUnformatted(json);
    cJSON_Delete(json);
    tp_config *encoder = tp_config_parse(tp_config_name(model_config), text);
    cJSON_free(text);
    const char *pooling = NULL;
    if (!encoder || tp_config_string(run, "pooling", "first", &pooling) < 0 ||
        tp_config_set(encoder, "pooling", pooling) < 0) {
        if (encoder) tp_config_free(encoder);
        return NULL;
    }
    return encoder;
}

static int build_model(tp_continual *c, tp_config *model_config, const tp_backend **backend)
{
    if (!(c->model_config = encoder_config(model_config, c->run))) return -1;
    if (!(*backend = tp_device_from_config(c->run))) return -1;
    if (strcmp((*backend)->name, "cpu") != 0)
        return tp_fail("%s: key 'device': continual mode runs on the CPU (device cpu)", tp_config_name(c->run));
    if (tp_model_build(&c->model, c->model_config, c->tokenizer->vocab_size) < 0 || tp_continual_declare_heads(c) < 0)
        return -1;
    if (c->seq_length > c->model.hp.max_seq_length)
        return tp_fail("%s: key 'seq_length': %lld exceeds the model's max_seq_length %lld", tp_config_name(c->run),
                       (long long)c->seq_length, (long long)c->model.hp.max_seq_length);
    return 0;
}

static void allocate_state(tp_continual *c, const tp_backend *backend)
{
    tp_model_allocate(&c->model, backend, c->seed);
    int64_t total = c->model.params.total;
    c->anchor = tp_xcalloc((size_t)total, sizeof(float));
    c->importance = tp_xcalloc((size_t)total, sizeof(float));
    c->scratch = tp_xcalloc((size_t)total, sizeof(float));
    c->best = tp_xcalloc((size_t)total, sizeof(float));
    c->constrained = tp_xcalloc((size_t)c->model.params.count, sizeof *c->constrained);
    c->accuracy = tp_xmalloc((size_t)(c->task_count * c->task_count) * sizeof *c->accuracy);
    for (int64_t i = 0; i < c->task_count * c->task_count; i++) c->accuracy[i] = NAN;
    tp_task_batch_init(&c->batch, &c->tasks[0].splits[TP_CONTINUAL_TRAIN], c->batch_size);
    tp_ctx_init(&c->eval_ctx, backend, (size_t)64 << 20);
    c->sample_rng = tp_rng_make(c->seed, TP_STREAM_DATA_ORDER, UINT64_C(1) << 63);
    c->model_config_json = tp_config_to_json(c->model_config);
}

tp_continual *tp_continual_open(tp_config *run, tp_config *model_config, const tp_tokenizer *tokenizer)
{
    tp_continual *c = tp_xcalloc(1, sizeof *c);
    const tp_backend *backend = NULL;
    int64_t threads = 0;
    c->run = run;
    c->tokenizer = tokenizer;
    if (refuse_single_task_keys(run) < 0 || read_method_keys(c) < 0 || read_training_keys(c, &threads) < 0 ||
        tp_continual_read_tasks(c) < 0 || tp_continual_read_reference(c) < 0 ||
        build_model(c, model_config, &backend) < 0 || tp_config_check_unused(c->model_config) < 0 ||
        tp_config_check_unused(run) < 0) {
        tp_continual_free(c);
        return NULL;
    }
    if (threads > 0) omp_set_num_threads((int)threads);
    allocate_state(c, backend);
    return c;
}

tp_model *tp_continual_model(tp_continual *c) { return &c->model; }

/* ---- one step --------------------------------------------------------------------------------- */

/* The rows of a batch that starts at row `first` of `count`. */
static int64_t batch_rows(const tp_continual *c, int64_t count, int64_t first)
{
    return count - first < c->batch_size ? count - first : c->batch_size;
}

/* The step's trainable parameters: the encoder and the active head. */
static void select_head(tp_continual *c, int64_t head)
{
    for (int64_t k = 0; k < c->task_count; k++) {
        const tp_continual_task *task = &c->tasks[k];
        for (int64_t s = task->first_segment; s < task->first_segment + task->segment_count; s++)
            c->trainer.segments[s].frozen = k != head;
    }
    c->active = head;
}

/* The parameters the Find loss and the clamp constrain in this step: the trainable ones except
 * the current task's head (it has no anchor yet); a replayed old head is constrained. */
static const tp_param_segment *constrained_segments(tp_continual *c)
{
    const tp_continual_task *current = &c->tasks[c->current];
    memcpy(c->constrained, c->trainer.segments, (size_t)c->trainer.segment_count * sizeof *c->constrained);
    for (int64_t s = current->first_segment; s < current->first_segment + current->segment_count; s++)
        c->constrained[s].frozen = 1;
    return c->constrained;
}

static int micro_step(tp_trainer *trainer, void *user, tp_step_metrics *metrics)
{
    tp_continual *c = user;
    tp_ctx *ctx = &trainer->ctx;
    tp_target_result result;
    ctx->record = 1;
    ctx->training = 1;
    if (tp_continual_head_forward(c, ctx, &c->batch, c->active, &result) < 0) return -1;
    tp_backward(ctx, result.loss);
    float loss;
    ctx->backend->download(&loss, result.loss->data, sizeof loss);
    metrics->loss = loss;
    metrics->tokens = c->batch.batch_size * c->batch.seq_length;
    metrics->count = 1;
    metrics->names[0] = "cls";
    metrics->target_loss[0] = loss;
    metrics->correct[0] = result.correct;
    metrics->total[0] = result.count;
    if (trainer->pass == 0) {
        c->epoch_loss += loss;
        c->epoch_steps++;
    }
    return 0;
}

/* Create (the gradient at θ + ε, θ restored) and Find (+ λ F (θ − θ*)). */
static int gradients_hook(tp_trainer *trainer, void *user)
{
    tp_continual *c = user;
    tp_params *params = &c->model.params;
    size_t bytes = (size_t)params->total * sizeof(float);
    if (c->create) {
        memcpy(c->scratch, params->data, bytes);
        tp_sharpness_perturb(params->data, params->grad, trainer->segments, trainer->segment_count, c->rho,
                             c->adaptive);
        int status = tp_trainer_rerun(trainer);
        memcpy(params->data, c->scratch, bytes);
        if (status < 0) return -1;
    }
    if (c->find && c->anchored)
        tp_find_gradient(params->grad, params->data, c->anchor, c->importance, c->lambda, constrained_segments(c),
                         trainer->segment_count);
    return 0;
}

static int updated_hook(tp_trainer *trainer, void *user)
{
    tp_continual *c = user;
    if (c->clamp && c->anchored)
        tp_clamp_to_anchor(c->model.params.data, c->anchor, c->rho, constrained_segments(c), trainer->segment_count);
    return 0;
}

static int train_step(tp_continual *c, int64_t task, const int64_t *rows, int64_t count)
{
    tp_task_fill_batch(&c->batch, &c->tasks[task].splits[TP_CONTINUAL_TRAIN], rows, count);
    select_head(c, task);
    if (tp_trainer_step(&c->trainer, micro_step, c) < 0) return -1;
    if (c->stop && *c->stop)
        return tp_fail("stopped by signal %d while learning %s (a continual run does not resume)", (int)*c->stop,
                       c->tasks[c->current].dir);
    return 0;
}

/* One batch of an old task's replay memory: up to batch_size of its rows, drawn without replacement. */
static int replay_step(tp_continual *c, int64_t task)
{
    const tp_continual_task *old = &c->tasks[task];
    int64_t *rows = tp_xmalloc((size_t)old->memory_count * sizeof *rows);
    memcpy(rows, old->memory, (size_t)old->memory_count * sizeof *rows);
    tp_rng_shuffle_i64(&c->sample_rng, rows, old->memory_count);
    int status = train_step(c, task, rows, batch_rows(c, old->memory_count, 0));
    free(rows);
    return status;
}

/* ---- evaluation ------------------------------------------------------------------------------- */

/* Right predictions of the task's head on a split; *count its examples. */
static int count_correct(tp_continual *c, int64_t task, int split, int64_t *correct, int64_t *count)
{
    const tp_encoded_split *data = &c->tasks[task].splits[split];
    tp_ctx *ctx = &c->eval_ctx;
    int64_t *rows = tp_xmalloc((size_t)c->batch_size * sizeof *rows);
    int status = 0;
    *correct = 0;
    *count = data->count;
    for (int64_t first = 0; first < data->count && status == 0; first += c->batch_size) {
        int64_t n = batch_rows(c, data->count, first);
        for (int64_t r = 0; r < n; r++) rows[r] = first + r;
        tp_target_result result;
        ctx->record = 0;
        ctx->training = 0;
        status = tp_continual_head_forward(c, ctx, tp_task_fill_batch(&c->batch, data, rows, n), task, &result);
        *correct += result.correct;
        tp_ctx_reset(ctx);
    }
    free(rows);
    return status;
}

/* The accuracy on the split of every task in [0, tasks) into accuracy[], and over their union. */
static int evaluate(tp_continual *c, int64_t tasks, int split, double *accuracy, double *overall)
{
    int64_t all_correct = 0, all_count = 0;
    for (int64_t k = 0; k < tasks; k++) {
        int64_t correct, count;
        if (count_correct(c, k, split, &correct, &count) < 0) return -1;
        accuracy[k] = count ? (double)correct / (double)count : 0.0;
        all_correct += correct;
        all_count += count;
    }
    *overall = all_count ? (double)all_correct / (double)all_count : 0.0;
    return 0;
}

/* ---- what a task leaves behind ---------------------------------------------------------------- */

static tp_tensor *example_loss(tp_ctx *ctx, void *user, int64_t row)
{
    tp_continual *c = user;
    tp_target_result result;
    const tp_batch *batch = tp_task_fill_batch(&c->batch, &c->tasks[c->current].splits[TP_CONTINUAL_TRAIN], &row, 1);
    return tp_continual_head_forward(c, ctx, batch, c->current, &result) < 0 ? NULL : result.loss;
}

/* F ← γ F + F_task, F_task over fisher_estimation_sample_size training examples drawn at random. */
static int accumulate_importance(tp_continual *c)
{
    const tp_encoded_split *train = &c->tasks[c->current].splits[TP_CONTINUAL_TRAIN];
    int64_t *rows = tp_xmalloc((size_t)train->count * sizeof *rows);
    for (int64_t i = 0; i < train->count; i++) rows[i] = i;
    tp_rng_shuffle_i64(&c->sample_rng, rows, train->count);
    int64_t count = c->fisher_samples < train->count ? c->fisher_samples : train->count;
    int status = tp_importance_estimate(&c->model.params, &c->eval_ctx, example_loss, c, rows, count, c->scratch);
    free(rows);
    if (status < 0) return -1;
    tp_importance_accumulate(c->importance, c->scratch, c->gamma, c->model.params.total);
    return 0;
}

/* The mean of the final hidden states over each training example's real tokens, [count, hidden]. */
static float *pooled_features(tp_continual *c, const tp_encoded_split *train)
{
    int64_t hidden = c->model.hp.hidden_size;
    float *features = tp_xmalloc((size_t)(train->count * hidden) * sizeof *features);
    int64_t *rows = tp_xmalloc((size_t)c->batch_size * sizeof *rows);
    tp_ctx *ctx = &c->eval_ctx;
    for (int64_t first = 0; first < train->count; first += c->batch_size) {
        int64_t n = batch_rows(c, train->count, first);
        for (int64_t r = 0; r < n; r++) rows[r] = first + r;
        tp_model_batch batch = tp_model_batch_upload(ctx, tp_task_fill_batch(&c->batch, train, rows, n));
        tp_model_output out;
        ctx->record = 0;
        ctx->training = 0;
        if (tp_model_forward(&c->model, ctx, &batch, &out) < 0) {
            free(features);
            features = NULL;
            break;
        }
        tp_tensor *pooled = tp_pool(ctx, out.hidden, TP_POOL_MEAN, batch.seg, n, batch.seq_length);
        ctx->backend->download(features + first * hidden, pooled->data, (size_t)(n * hidden) * sizeof *features);
        tp_ctx_reset(ctx);
    }
    tp_ctx_reset(ctx);
    free(rows);
    return features;
}

static int select_memory(tp_continual *c)
{
    tp_continual_task *task = &c->tasks[c->current];
    const tp_encoded_split *train = &task->splits[TP_CONTINUAL_TRAIN];
    float *features = pooled_features(c, train);
    if (!features) return -1;
    int64_t size = (int64_t)(c->store_ratio * (double)train->count);
    if (size < 1) size = 1;
    task->memory = tp_xmalloc((size_t)size * sizeof *task->memory);
    task->memory_count =
        tp_memory_select(features, train->count, c->model.hp.hidden_size, size, &c->sample_rng, task->memory);
    free(features);
    return 0;
}

static int finish_task(tp_continual *c, int64_t task)
{
    double overall;
    if (evaluate(c, task + 1, TP_CONTINUAL_TEST, c->accuracy + task * c->task_count, &overall) < 0) return -1;
    if (tp_continual_report_row(c, task, task + 1) < 0) return -1;
    if (c->find && accumulate_importance(c) < 0) return -1;
    if (c->find) {
        memcpy(c->anchor, c->model.params.data, (size_t)c->model.params.total * sizeof(float));
        c->anchored = 1;
    }
    return c->replay ? select_memory(c) : 0;
}

/* ---- the tasks -------------------------------------------------------------------------------- */

static int open_trainer(tp_continual *c, const char *dir, int64_t total_steps, int64_t index)
{
    char text[32];
    tp_train_options options;
    snprintf(text, sizeof text, "%lld", (long long)total_steps);
    if (tp_config_set(c->run, "total_steps", text) < 0 || tp_train_options_read(c->run, &options) < 0) return -1;
    options.output_dir = dir;
    options.seed = c->seed + ((uint64_t)index << 32); /* each task's own dropout masks */
    if (tp_trainer_init(&c->trainer, &options, &c->model, c->model_config_json) < 0) return -1;
    c->trainer_open = 1;
    if (tp_trainer_check_fresh(&c->trainer) < 0) return -1;
    tp_step_hooks hooks = {gradients_hook, updated_hook, c};
    return c->create || c->find ? tp_trainer_set_hooks(&c->trainer, &hooks) : 0;
}

static void close_trainer(tp_continual *c)
{
    if (c->trainer_open) tp_trainer_free(&c->trainer);
    c->trainer_open = 0;
}

/* Keeps the parameters when the dev accuracy over the tasks [0, tasks) is the best so far. */
static int check_dev(tp_continual *c, int64_t task, int64_t tasks, int64_t epoch, double *best)
{
    double *dev = tp_xmalloc((size_t)tasks * sizeof *dev), overall;
    int status = evaluate(c, tasks, TP_CONTINUAL_DEV, dev, &overall);
    if (status == 0) status = tp_continual_log_epoch(c, task, epoch, dev, overall);
    free(dev);
    if (status == 0 && overall > *best) {
        *best = overall;
        memcpy(c->best, c->model.params.data, (size_t)c->model.params.total * sizeof(float));
    }
    return status;
}

static void shuffled_rows(tp_continual *c, int64_t task, int64_t epoch, int64_t *rows)
{
    int64_t count = c->tasks[task].splits[TP_CONTINUAL_TRAIN].count;
    for (int64_t i = 0; i < count; i++) rows[i] = i;
    tp_rng rng = tp_rng_make(c->seed, TP_STREAM_DATA_ORDER, ((uint64_t)task << 48) | ((uint64_t)epoch << 32));
    tp_rng_shuffle_i64(&rng, rows, count);
}

static int64_t steps_per_epoch(const tp_continual *c, int64_t task)
{
    return (c->tasks[task].splits[TP_CONTINUAL_TRAIN].count + c->batch_size - 1) / c->batch_size;
}

/* One epoch of a task: its batches in a new order, a replay batch of every old task before every
 * replay_freq-th of them (as the paper's code does). */
static int run_epoch(tp_continual *c, int64_t task, int64_t epoch, int64_t *rows)
{
    int64_t count = c->tasks[task].splits[TP_CONTINUAL_TRAIN].count;
    shuffled_rows(c, task, epoch, rows);
    for (int64_t b = 0; b * c->batch_size < count; b++) {
        if (c->replay && task > 0 && (b + 1) % c->replay_freq == 0)
            for (int64_t old = 0; old < task; old++)
                if (replay_step(c, old) < 0) return -1;
        int64_t first = b * c->batch_size;
        if (train_step(c, task, rows + first, batch_rows(c, count, first)) < 0) return -1;
    }
    return 0;
}

static int learn_task(tp_continual *c, int64_t task)
{
    tp_continual_task *t = &c->tasks[task];
    int64_t spe = steps_per_epoch(c, task), replays = c->replay ? spe / c->replay_freq * task : 0;
    int64_t *rows = tp_xmalloc((size_t)t->splits[TP_CONTINUAL_TRAIN].count * sizeof *rows);
    double best = NO_SCORE;
    c->current = task;
    fprintf(stderr, "task %lld/%lld: %s (%lld labels; %lld train / %lld dev / %lld test examples)\n",
            (long long)task + 1, (long long)c->task_count, t->dir, (long long)t->labels_num,
            (long long)t->splits[0].count, (long long)t->splits[1].count, (long long)t->splits[2].count);
    int status = open_trainer(c, t->output_dir, c->epochs * (spe + replays), task);
    for (int64_t epoch = 0; epoch < c->epochs && status == 0; epoch++) {
        c->epoch_loss = 0;
        c->epoch_steps = 0;
        status = run_epoch(c, task, epoch, rows);
        if (status == 0) status = check_dev(c, task, task + 1, epoch, &best);
    }
    close_trainer(c);
    free(rows);
    if (status < 0) return -1;
    memcpy(c->model.params.data, c->best, (size_t)c->model.params.total * sizeof(float));
    return finish_task(c, task);
}

/* One multitask epoch: every task's batches (each task's rows in a new order), in one shuffled
 * order of (task, batch).  rows holds `largest` entries per task; schedule one per batch. */
static int run_joint_epoch(tp_continual *c, int64_t epoch, int64_t largest, int64_t *rows, int64_t *schedule,
                           int64_t batches)
{
    int64_t at = 0;
    for (int64_t k = 0; k < c->task_count; k++) {
        shuffled_rows(c, k, epoch, rows + k * largest);
        for (int64_t b = 0; b < steps_per_epoch(c, k); b++) schedule[at++] = k * largest + b * c->batch_size;
    }
    tp_rng rng = tp_rng_make(c->seed, TP_STREAM_DATA_ORDER, (UINT64_C(1) << 62) | ((uint64_t)epoch << 32));
    tp_rng_shuffle_i64(&rng, schedule, batches);
    for (int64_t i = 0; i < batches; i++) {
        int64_t k = schedule[i] / largest, first = schedule[i] % largest;
        int64_t count = c->tasks[k].splits[TP_CONTINUAL_TRAIN].count;
        if (train_step(c, k, rows + schedule[i], batch_rows(c, count, first)) < 0) return -1;
    }
    return 0;
}

/* Multitask: one trainer over every task's batches; the test accuracies go to the last row. */
static int learn_jointly(tp_continual *c)
{
    int64_t batches = 0, largest = 0, last = c->task_count - 1;
    for (int64_t k = 0; k < c->task_count; k++) {
        int64_t count = c->tasks[k].splits[TP_CONTINUAL_TRAIN].count;
        batches += steps_per_epoch(c, k);
        if (count > largest) largest = count;
    }
    int64_t *schedule = tp_xmalloc((size_t)batches * sizeof *schedule);
    int64_t *rows = tp_xmalloc((size_t)(c->task_count * largest) * sizeof *rows);
    char dir[4200];
    double best = NO_SCORE, overall;
    snprintf(dir, sizeof dir, "%s/multitask", c->output_dir);
    c->current = last; /* every head is learnt now: none is constrained */
    int status = open_trainer(c, dir, c->epochs * batches, 0);
    for (int64_t epoch = 0; epoch < c->epochs && status == 0; epoch++) {
        c->epoch_loss = 0;
        c->epoch_steps = 0;
        status = run_joint_epoch(c, epoch, largest, rows, schedule, batches);
        if (status == 0) status = check_dev(c, last, c->task_count, epoch, &best);
    }
    close_trainer(c);
    free(schedule);
    free(rows);
    if (status < 0) return -1;
    memcpy(c->model.params.data, c->best, (size_t)c->model.params.total * sizeof(float));
    if (evaluate(c, c->task_count, TP_CONTINUAL_TEST, c->accuracy + last * c->task_count, &overall) < 0) return -1;
    return tp_continual_report_row(c, last, c->task_count);
}

int tp_continual_train(tp_continual *c, const volatile sig_atomic_t *stop)
{
    c->stop = stop;
    if (tp_continual_open_log(c) < 0) return -1;
    fprintf(stderr, "model: %lld parameters with %lld heads; continual %s\n",
            (long long)tp_params_logical_count(&c->model.params), (long long)c->task_count,
            tp_continual_mode_names[c->mode]);
    if (c->mode == TP_CONTINUAL_MULTITASK) {
        if (learn_jointly(c) < 0) return -1;
    } else {
        for (int64_t task = 0; task < c->task_count; task++)
            if (learn_task(c, task) < 0) return -1;
    }
    if (tp_continual_report_summary(c) < 0) return -1;
    return tp_continual_save(c);
}

void tp_continual_free(tp_continual *c)
{
    if (!c) return;
    close_trainer(c);
    if (c->log) fclose(c->log);
    tp_continual_tasks_free(c);
    tp_model_free(&c->model);
    if (c->model_config) tp_config_free(c->model_config);
    if (c->eval_ctx.backend) tp_ctx_free(&c->eval_ctx);
    tp_batch_free(&c->batch);
    free(c->anchor);
    free(c->importance);
    free(c->scratch);
    free(c->best);
    free(c->constrained);
    free(c->accuracy);
    free(c->reference);
    free(c->model_config_json);
    free(c);
}
