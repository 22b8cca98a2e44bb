#include "trainer.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "checkpoint.h"
#include "distributed.h"
#include "error.h"
#include "fileio.h"

/* ---- options ------------------------------------------------------------------ */

int tp_train_options_read(tp_config *run, tp_train_options *o)
{
    const char *scheduler = NULL;
    double warmup = 0, decay = 0, beta1 = 0, beta2 = 0, eps = 0, bucket_mb = 0;
    int64_t seed = 0, zero = 0;
    memset(o, 0, sizeof *o);
    if (tp_config_string(run, "output_dir", NULL, &o->output_dir) < 0 ||
        tp_config_string(run, "metrics_path", NULL, &o->metrics_path) < 0 ||
        tp_config_int(run, "total_steps", 100, 1, INT64_C(1) << 40, &o->total_steps) < 0 ||
        tp_config_int(run, "accumulation_steps", 1, 1, 1 << 20, &o->accumulation_steps) < 0 ||
        tp_config_int(run, "report_steps", 10, 1, INT64_C(1) << 40, &o->report_steps) < 0 ||
        tp_config_int(run, "save_checkpoint_steps", 1000, 0, INT64_C(1) << 40, &o->save_checkpoint_steps) < 0 ||
        tp_config_int(run, "keep_checkpoints", 3, 0, 1 << 20, &o->keep_checkpoints) < 0 ||
        tp_config_int(run, "max_bad_steps", 10, 1, 1 << 20, &o->max_bad_steps) < 0 ||
        tp_config_int(run, "seed", 7, 0, INT64_MAX, &seed) < 0 ||
        tp_config_double(run, "learning_rate", 1e-4, 0, 10, &o->learning_rate) < 0 ||
        tp_config_double(run, "warmup", 0.1, 0, 1, &warmup) < 0 ||
        tp_config_double(run, "decay", 0.5, 0, 1, &decay) < 0 ||
        tp_config_double(run, "weight_decay", 0.01, 0, 10, &o->weight_decay) < 0 ||
        tp_config_double(run, "max_grad_norm", 0, 0, 1e30, &o->max_grad_norm) < 0 ||
        tp_config_double(run, "beta1", 0.9, 0, 1, &beta1) < 0 ||
        tp_config_double(run, "beta2", 0.999, 0, 1, &beta2) < 0 ||
        tp_config_double(run, "adam_epsilon", 1e-6, 0, 1, &eps) < 0 ||
        tp_config_bool(run, "correct_bias", 0, &o->adamw.correct_bias) < 0 ||
        tp_config_string(run, "scheduler", "linear", &scheduler) < 0 ||
        tp_config_double(run, "dist_timeout", 300, 1e-3, 1e7, &o->dist_timeout) < 0 ||
        tp_config_double(run, "dist_bucket_mb", 25, 1e-6, 1024, &bucket_mb) < 0 ||
        tp_config_int(run, "zero", 0, 0, 1, &zero) < 0)
        return -1;
    o->dist_bucket_bytes = (int64_t)(bucket_mb * 1e6);
    o->zero = (int)zero;
    if (!o->output_dir) return tp_fail("%s: key 'output_dir': missing", tp_config_name(run));
    o->seed = (uint64_t)seed;
    int correct_bias = o->adamw.correct_bias;
    o->adamw = tp_adamw_defaults();
    o->adamw.beta1 = beta1;
    o->adamw.beta2 = beta2;
    o->adamw.eps = eps;
    o->adamw.correct_bias = correct_bias;
    if (tp_adamw_options_check(&o->adamw) < 0) return tp_fail_context("%s", tp_config_name(run));
    if (tp_schedule_from_name(&o->schedule, scheduler) < 0)
        return tp_fail("%s: key 'scheduler': unknown scheduler '%s' (expected one of: %s)", tp_config_name(run),
                       scheduler, tp_schedule_names());
    o->schedule.total_steps = o->total_steps;
    o->schedule.warmup_steps = llround(warmup * (double)o->total_steps);
    o->schedule.decay_steps = llround(decay * (double)o->total_steps);
    o->schedule.base_lr = o->learning_rate;
    if (tp_schedule_check(&o->schedule) < 0) return tp_fail_context("%s: key 'scheduler'", tp_config_name(run));
    return 0;
}

/* ---- set-up ------------------------------------------------------------------- */

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void build_segments(tp_trainer *t)
{
    const tp_params *params = &t->model->params;
    t->segment_count = params->count;
    t->segments = tp_xcalloc((size_t)params->count, sizeof *t->segments);
    for (int64_t i = 0; i < params->count; i++) {
        const tp_param *param = params->items[i];
        t->segments[i].offset = param->offset;
        t->segments[i].numel = tp_numel(&param->tensor);
        t->segments[i].weight_decay = param->no_decay ? 0.0 : t->options.weight_decay;
        t->segments[i].lr_scale = 1.0;
    }
}

/* This rank's part of the update: its ZeRO-1 shard, or everything. */
static void build_shard(tp_trainer *t)
{
    const tp_params *params = &t->model->params;
    const tp_backend *backend = params->backend;
    t->shard_offset = 0;
    t->shard_length = params->total;
    t->grad_shard = params->grad;
    t->shard_segments = t->segments;
    t->shard_segment_count = t->segment_count;
    if (!t->sharded) return;
    tp_comm_shard(t->comm, params->total, &t->shard_offset, &t->shard_length);
    int64_t begin = t->shard_offset, end = begin + t->shard_length;
    t->grad_shard = backend->alloc((size_t)(t->shard_length + 1) * sizeof(float));
    t->shard_segments = tp_xcalloc((size_t)t->segment_count + 1, sizeof *t->shard_segments);
    t->shard_segment_count = 0;
    for (int64_t i = 0; i < t->segment_count; i++) {
        tp_param_segment piece = t->segments[i];
        int64_t first = piece.offset > begin ? piece.offset : begin;
        int64_t last = piece.offset + piece.numel < end ? piece.offset + piece.numel : end;
        if (first >= last) continue;
        piece.offset = first - begin;
        piece.numel = last - first;
        t->shard_segments[t->shard_segment_count++] = piece;
    }
}

/* The bucketed all-reduce, when there is something to reduce and ZeRO-1 does not replace it.
 * Either way the collectives must be able to move the parameters' memory (NCCL for a GPU). */
static int create_grad_sync(tp_trainer *t)
{
    const tp_params *params = &t->model->params;
    if (tp_comm_use_memory(t->comm, params->backend) < 0) return -1;
    if (t->sharded || !tp_grad_sync_needed(t->comm, params->backend)) return 0;
    t->grad_sync = tp_grad_sync_create(t->comm, params->backend, params->grad, params->total,
                                       t->options.dist_bucket_bytes);
    if (!t->grad_sync) return -1;
    t->bucket_ready = tp_xmalloc(sizeof(int64_t) * (size_t)(tp_grad_sync_bucket_count(t->grad_sync) + 1));
    return 0;
}

int tp_trainer_init(tp_trainer *t, const tp_train_options *options, tp_model *model, const char *model_config_json)
{
    memset(t, 0, sizeof *t);
    t->options = *options;
    t->model = model;
    t->model_config_json = model_config_json;
    if (!(t->comm = tp_comm_open(options->dist_timeout))) return -1;
    t->rank = tp_comm_rank(t->comm);
    t->world_size = tp_comm_size(t->comm);
    t->sharded = options->zero && t->world_size > 1;
    const tp_backend *backend = model->params.backend;
    tp_ctx_init(&t->ctx, backend, (size_t)64 << 20);
    t->ctx.seed = options->seed;
    t->ctx.rank = (uint64_t)t->rank;
    build_segments(t);
    if (tp_param_segments_check(t->segments, t->segment_count, model->params.total) < 0) return -1;
    build_shard(t);
    t->exp_avg = backend->alloc((size_t)(t->shard_length + 1) * sizeof(float));
    t->exp_avg_sq = backend->alloc((size_t)(t->shard_length + 1) * sizeof(float));
    backend->zero(t->exp_avg, t->shard_length);
    backend->zero(t->exp_avg_sq, t->shard_length);
    if (create_grad_sync(t) < 0) return -1;
    snprintf(t->checkpoint_root, sizeof t->checkpoint_root, "%s/checkpoints", options->output_dir);
    if (tp_mkdirs(t->checkpoint_root) < 0) return -1;
    /* The same seed gives every rank the same weights; the broadcast also covers weights a program
     * loaded before (fine-tuning) and guards against any difference between the ranks' files. */
    return tp_comm_broadcast(t->comm, model->params.data, model->params.total * (int64_t)sizeof(float), 0,
                             "broadcast of the initial parameters");
}

void tp_trainer_watch_stop(tp_trainer *t, const volatile sig_atomic_t *flag) { t->stop_signal = flag; }

void tp_trainer_free(tp_trainer *t)
{
    const tp_backend *backend = t->model ? t->model->params.backend : NULL;
    if (backend) {
        backend->release(t->exp_avg);
        backend->release(t->exp_avg_sq);
        if (t->sharded) backend->release(t->grad_shard);
    }
    if (t->sharded) free(t->shard_segments);
    tp_grad_sync_free(t->grad_sync);
    free(t->bucket_ready);
    if (t->metrics_file) fclose(t->metrics_file);
    free(t->segments);
    tp_ctx_free(&t->ctx);
    memset(t, 0, sizeof *t);
}

static void metrics_path(const tp_trainer *t, char *out, size_t cap)
{
    if (t->options.metrics_path)
        snprintf(out, cap, "%s", t->options.metrics_path);
    else
        snprintf(out, cap, "%s/metrics.jsonl", t->options.output_dir);
}

/* Keeps the metric lines of steps <= step (a resumed run rewrites what follows).  A last line
 * without its newline was cut short by a failed write (disk full) and goes too. */
static int truncate_metrics(const char *path, int64_t step)
{
    size_t bytes = 0;
    char *text = tp_read_file(path, &bytes);
    if (!text) return 0; /* no metrics yet */
    size_t kept = 0;
    for (char *line = text; *line;) {
        char *end = strchr(line, '\n');
        if (!end) break;
        size_t length = (size_t)(end - line) + 1;
        const char *field = strstr(line, "\"step\":");
        if (field && field < line + length && strtoll(field + 7, NULL, 10) <= step) {
            memmove(text + kept, line, length);
            kept += length;
        }
        line += length;
    }
    int status = tp_write_file_atomic(path, text, kept);
    free(text);
    return status;
}

/* Rank 0 writes the metrics; the other ranks have no file. */
static int open_metrics(tp_trainer *t)
{
    char path[4096];
    if (t->rank != 0) return 0;
    metrics_path(t, path, sizeof path);
    if (truncate_metrics(path, t->step) < 0) return -1;
    t->metrics_file = fopen(path, "a");
    if (!t->metrics_file) return tp_fail("%s: cannot open for appending", path);
    return 0;
}

int tp_trainer_check_fresh(tp_trainer *t)
{
    char found[4096];
    if (tp_checkpoint_latest(t->checkpoint_root, found, sizeof found))
        return tp_fail("%s: holds checkpoints of an earlier run; pass --resume to continue it, or choose another "
                       "output_dir", t->options.output_dir);
    char path[4096];
    metrics_path(t, path, sizeof path);
    if (t->rank == 0) remove(path);
    return open_metrics(t);
}

/* ---- trainer state (JSON) ----------------------------------------------------- */

static cJSON *window_to_json(const tp_trainer *t)
{
    cJSON *window = cJSON_CreateObject();
    cJSON_AddNumberToObject(window, "steps", (double)t->window_steps);
    cJSON_AddNumberToObject(window, "seconds", t->window_seconds);
    cJSON_AddNumberToObject(window, "loss", t->window.loss);
    cJSON_AddNumberToObject(window, "tokens", (double)t->window.tokens);
    cJSON *targets = cJSON_AddArrayToObject(window, "targets");
    for (int i = 0; i < t->window.count; i++) {
        cJSON *target = cJSON_CreateObject();
        cJSON_AddStringToObject(target, "name", t->window.names[i]);
        cJSON_AddNumberToObject(target, "loss", t->window.target_loss[i]);
        cJSON_AddNumberToObject(target, "correct", (double)t->window.correct[i]);
        cJSON_AddNumberToObject(target, "total", (double)t->window.total[i]);
        cJSON_AddItemToArray(targets, target);
    }
    return window;
}

static double number_at(const cJSON *object, const char *key)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(object, key);
    return cJSON_IsNumber(item) ? item->valuedouble : 0.0;
}

/* A count of a trainer state (0 when absent): a whole number in [0, 2^53], else -1.  The file may
 * have been edited by hand, and converting a double outside int64's range is undefined. */
static int64_t count_at(const cJSON *object, const char *key)
{
    double value = number_at(object, key);
    return value >= 0 && value <= 9007199254740992.0 && value == floor(value) ? (int64_t)value : -1;
}

/* 0, or -1 when a count is not one. */
static int window_from_json(tp_trainer *t, const cJSON *window)
{
    t->window_steps = count_at(window, "steps");
    t->window_seconds = number_at(window, "seconds");
    t->window.loss = number_at(window, "loss");
    t->window.tokens = count_at(window, "tokens");
    int valid = t->window_steps >= 0 && t->window.tokens >= 0;
    const cJSON *targets = cJSON_GetObjectItemCaseSensitive(window, "targets");
    int i = 0;
    for (const cJSON *target = targets ? targets->child : NULL; target && i < TP_MAX_METRICS; target = target->next, i++) {
        t->window.target_loss[i] = number_at(target, "loss");
        t->window.correct[i] = count_at(target, "correct");
        t->window.total[i] = count_at(target, "total");
        valid = valid && t->window.correct[i] >= 0 && t->window.total[i] >= 0;
    }
    return valid ? 0 : -1;
}

/* The full moments for a checkpoint: this rank's own, or (ZeRO-1) every rank's shard gathered
 * into new buffers on rank 0 (*gathered = 1: release them after saving). */
static int full_moments(tp_trainer *t, float **exp_avg, float **exp_avg_sq, int *gathered)
{
    const tp_params *params = &t->model->params;
    *exp_avg = t->exp_avg;
    *exp_avg_sq = t->exp_avg_sq;
    *gathered = 0;
    if (!t->sharded) return 0;
    *exp_avg = *exp_avg_sq = NULL;
    if (t->rank == 0) {
        *exp_avg = params->backend->alloc((size_t)params->total * sizeof(float));
        *exp_avg_sq = params->backend->alloc((size_t)params->total * sizeof(float));
        *gathered = 1;
    }
    if (tp_comm_gather(t->comm, t->exp_avg, *exp_avg, params->total, "gather of the Adam moments (exp_avg)") < 0 ||
        tp_comm_gather(t->comm, t->exp_avg_sq, *exp_avg_sq, params->total, "gather of the Adam moments (exp_avg_sq)") < 0)
        return -1;
    return 0;
}

static int write_checkpoint(tp_trainer *t, const float *exp_avg, const float *exp_avg_sq, const tp_caller_state *caller)
{
    cJSON *data = cJSON_CreateObject();
    for (int i = 0; caller->keys[i]; i++) cJSON_AddNumberToObject(data, caller->keys[i], caller->values[i]);
    cJSON *state = cJSON_CreateObject();
    cJSON_AddNumberToObject(state, "step", (double)t->step);
    cJSON_AddNumberToObject(state, "seed", (double)t->options.seed);
    cJSON_AddNumberToObject(state, "bad_steps", (double)t->bad_steps);
    cJSON_AddNumberToObject(state, "world_size", (double)t->world_size);
    cJSON_AddItemToObject(state, "window", window_to_json(t));
    cJSON_AddItemToObject(state, "data", data);
    char *text = cJSON_Print(state);
    cJSON_Delete(state);
    int status = tp_checkpoint_save(t->checkpoint_root, t->step, &t->model->params, exp_avg, exp_avg_sq,
                                    t->model_config_json, text, (int)t->options.keep_checkpoints);
    free(text);
    return status;
}

int tp_trainer_save(tp_trainer *t, const tp_caller_state *caller)
{
    float *exp_avg, *exp_avg_sq;
    int gathered;
    int status = full_moments(t, &exp_avg, &exp_avg_sq, &gathered);
    if (status == 0 && t->rank == 0) status = write_checkpoint(t, exp_avg, exp_avg_sq, caller);
    if (gathered) {
        t->model->params.backend->release(exp_avg);
        t->model->params.backend->release(exp_avg_sq);
    }
    return status;
}

/* Loads the checkpoint's moments: all of them, or (ZeRO-1) this rank's shard. */
static int load_moments(tp_trainer *t, const char *path)
{
    const tp_params *params = &t->model->params;
    if (!t->sharded) return tp_checkpoint_load_moments(path, params, t->exp_avg, t->exp_avg_sq);
    const tp_backend *backend = params->backend;
    float *exp_avg = backend->alloc((size_t)params->total * sizeof(float));
    float *exp_avg_sq = backend->alloc((size_t)params->total * sizeof(float));
    int status = tp_checkpoint_load_moments(path, params, exp_avg, exp_avg_sq);
    if (status == 0) {
        backend->copy(t->exp_avg, exp_avg + t->shard_offset, t->shard_length);
        backend->copy(t->exp_avg_sq, exp_avg_sq + t->shard_offset, t->shard_length);
    }
    backend->release(exp_avg);
    backend->release(exp_avg_sq);
    return status;
}

/* Every rank must have resumed from the step rank 0 resumed from (-1: none): they read one
 * output_dir, which must therefore be on a filesystem all of them see. */
static int check_same_resume(tp_trainer *t, int resumed)
{
    double step = resumed ? (double)t->step : -1.0, rank0_step = step;
    if (tp_comm_broadcast(t->comm, &rank0_step, sizeof rank0_step, 0, "broadcast of the resumed step") < 0) return -1;
    if (rank0_step != step)
        return tp_fail("rank %d resumes from step %.0f but rank 0 from step %.0f (-1: none): %s must be one directory "
                       "that every rank sees (a shared filesystem)",
                       t->rank, step, rank0_step, t->checkpoint_root);
    return 0;
}

static int load_checkpoint(tp_trainer *t, int *resumed, const tp_caller_state *caller)
{
    char dir[4096], path[4200];
    *resumed = 0;
    if (!tp_checkpoint_latest(t->checkpoint_root, dir, sizeof dir)) return tp_trainer_check_fresh(t);
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    if (tp_checkpoint_load_weights(path, &t->model->params) < 0) return -1;
    snprintf(path, sizeof path, "%s/optimizer.safetensors", dir);
    if (load_moments(t, path) < 0) return -1;
    snprintf(path, sizeof path, "%s/trainer_state.json", dir);
    char *text = tp_read_file(path, NULL);
    if (!text) return -1;
    cJSON *state = cJSON_Parse(text);
    free(text);
    if (!state || !cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(state, "step"))) {
        cJSON_Delete(state);
        return tp_fail("%s: not a valid trainer state (%s)", path, state ? "no number 'step'" : "not JSON");
    }
    double saved_seed = number_at(state, "seed");
    if (saved_seed != (double)t->options.seed) {
        cJSON_Delete(state);
        return tp_fail("%s: the checkpoint was trained with seed %.0f, this run has seed %llu: resuming would not "
                       "reproduce the run", path, saved_seed, (unsigned long long)t->options.seed);
    }
    /* Checkpoints from before data-parallel training hold no world_size: one rank wrote them. */
    const cJSON *saved_world = cJSON_GetObjectItemCaseSensitive(state, "world_size");
    int64_t saved_world_size = saved_world ? count_at(state, "world_size") : 1;
    t->step = count_at(state, "step");
    t->bad_steps = count_at(state, "bad_steps");
    const char *bad_count = saved_world_size < 0 ? "world_size" : t->step < 0 ? "step" : t->bad_steps < 0 ? "bad_steps"
                            : window_from_json(t, cJSON_GetObjectItemCaseSensitive(state, "window")) < 0 ? "window"
                                                                                                       : NULL;
    if (bad_count) {
        cJSON_Delete(state);
        return tp_fail("%s: key '%s': not a whole number from 0 to 2^53", path, bad_count);
    }
    if (saved_world_size != t->world_size) {
        cJSON_Delete(state);
        return tp_fail("%s: the checkpoint was trained on %lld ranks, this run has %d: the global batch and every "
                       "rank's data would change; resume with %lld ranks, or start a new output_dir",
                       path, (long long)saved_world_size, t->world_size, (long long)saved_world_size);
    }
    const cJSON *data = cJSON_GetObjectItemCaseSensitive(state, "data");
    for (int i = 0; caller->keys[i]; i++) {
        const cJSON *item = cJSON_GetObjectItemCaseSensitive(data, caller->keys[i]);
        if (!cJSON_IsNumber(item)) {
            cJSON_Delete(state);
            return tp_fail("%s: the checkpoint holds no data.%s", path, caller->keys[i]);
        }
        caller->values[i] = item->valuedouble;
    }
    cJSON_Delete(state);
    *resumed = 1;
    return open_metrics(t);
}

int tp_trainer_resume(tp_trainer *t, int *resumed, const tp_caller_state *caller)
{
    if (load_checkpoint(t, resumed, caller) < 0) return -1;
    return check_same_resume(t, *resumed);
}

/* ---- one step ----------------------------------------------------------------- */

static void add_metrics(tp_step_metrics *into, const tp_step_metrics *from)
{
    into->loss += from->loss;
    into->tokens += from->tokens;
    into->count = from->count;
    for (int i = 0; i < from->count; i++) {
        into->names[i] = from->names[i];
        into->target_loss[i] += from->target_loss[i];
        into->correct[i] += from->correct[i];
        into->total[i] += from->total[i];
    }
}

static void format_duration(char *out, size_t cap, double seconds)
{
    long s = (long)(seconds + 0.5);
    if (s >= 3600)
        snprintf(out, cap, "%ldh%02ldm", s / 3600, s / 60 % 60);
    else
        snprintf(out, cap, "%ldm%02lds", s / 60, s % 60);
}

int tp_trainer_flush_metrics(tp_trainer *t)
{
    char path[4096];
    if (!t->metrics_file) return 0;
    metrics_path(t, path, sizeof path);
    return tp_log_flush(t->metrics_file, path);
}

static int report(tp_trainer *t, double lr, double grad_norm)
{
    const tp_step_metrics *w = &t->window;
    double steps = (double)t->window_steps;
    double tokens_per_s = w->tokens / (t->window_seconds > 0 ? t->window_seconds : 1e-9);
    double step_seconds = t->window_seconds / steps;
    char eta[32];
    format_duration(eta, sizeof eta, step_seconds * (double)(t->options.total_steps - t->step));
    fprintf(stderr, "step %lld/%lld | loss %.4f", (long long)t->step, (long long)t->options.total_steps,
            w->loss / steps);
    fprintf(t->metrics_file, "{\"step\":%lld,\"loss\":%.9g", (long long)t->step, w->loss / steps);
    for (int i = 0; i < w->count; i++) {
        double accuracy = w->total[i] ? (double)w->correct[i] / (double)w->total[i] : 0.0;
        fprintf(stderr, " | %s %.4f acc %.3f", w->names[i], w->target_loss[i] / steps, accuracy);
        fprintf(t->metrics_file, ",\"%s_loss\":%.9g,\"%s_acc\":%.9g", w->names[i], w->target_loss[i] / steps,
                w->names[i], accuracy);
    }
    fprintf(stderr, " | lr %.3g | %.0f tok/s", lr, tokens_per_s);
    /* Rank 0's waits for the others: the communication that did not overlap with computation. */
    if (t->world_size > 1) fprintf(stderr, " | wait %.0f%%", 100.0 * t->window_wait_seconds / t->window_seconds);
    fprintf(stderr, " | ETA %s\n", eta);
    fprintf(t->metrics_file, ",\"lr\":%.9g,\"grad_norm\":%.9g,\"tokens_per_s\":%.6g,\"step_seconds\":%.6g", lr,
            grad_norm, tokens_per_s, step_seconds);
    if (t->world_size > 1) fprintf(t->metrics_file, ",\"wait_seconds\":%.6g", t->window_wait_seconds / steps);
    fputs("}\n", t->metrics_file);
    memset(&t->window, 0, sizeof t->window);
    t->window_steps = 0;
    t->window_seconds = 0;
    t->window_wait_seconds = 0;
    return tp_trainer_flush_metrics(t);
}

static int log_event(tp_trainer *t, const char *event)
{
    if (t->rank != 0) return 0;
    fprintf(stderr, "step %lld: %s\n", (long long)(t->step + 1), event);
    fprintf(t->metrics_file, "{\"step\":%lld,\"event\":\"%s\"}\n", (long long)(t->step + 1), event);
    return tp_trainer_flush_metrics(t);
}

/* Sums the gradients over the ranks: all of them (buckets), or this rank's shard (ZeRO-1). */
static int reduce_gradients(tp_trainer *t)
{
    const tp_params *params = &t->model->params;
    if (t->sharded)
        return tp_comm_reduce_scatter(t->comm, params->grad, t->grad_shard, params->total, "reduce-scatter of gradients");
    return t->grad_sync ? tp_grad_sync_finish(t->grad_sync) : 0;
}

/* One sum over the ranks agrees on what every rank must decide alike: whether a rank saw
 * non-finite gradients (its shard, under ZeRO-1; *all_finite = 0 then) or a stop request
 * (trainer->stop), and the step's metrics, which become the global batch's. */
static int agree_on_step(tp_trainer *t, tp_step_metrics *metrics, int *all_finite)
{
    const tp_backend *backend = t->model->params.backend;
    enum { FIXED = 4 };
    double values[FIXED + 3 * TP_MAX_METRICS];
    values[0] = !backend->grads_finite(t->grad_shard, t->shard_segments, t->shard_segment_count);
    values[1] = t->stop_signal && *t->stop_signal;
    values[2] = metrics->loss;
    values[3] = (double)metrics->tokens;
    for (int i = 0; i < metrics->count; i++) {
        values[FIXED + 3 * i] = metrics->target_loss[i];
        values[FIXED + 3 * i + 1] = (double)metrics->correct[i];
        values[FIXED + 3 * i + 2] = (double)metrics->total[i];
    }
    if (tp_comm_sum(t->comm, values, FIXED + 3 * metrics->count, "sum of the step's metrics") < 0) return -1;
    *all_finite = values[0] == 0;
    t->stop = values[1] > 0;
    metrics->loss = values[2];
    metrics->tokens = (int64_t)values[3];
    for (int i = 0; i < metrics->count; i++) {
        metrics->target_loss[i] = values[FIXED + 3 * i];
        metrics->correct[i] = (int64_t)values[FIXED + 3 * i + 1];
        metrics->total[i] = (int64_t)values[FIXED + 3 * i + 2];
    }
    return 0;
}

/* Global-norm clipping; returns the norm before clipping.  Under ZeRO-1 the norm sums every
 * rank's shard, and the clipped shard gradients go to this rank's range of the full gradient
 * buffer (free once reduce-scattered), which the update then reads: *update_grad. */
static int clip_gradients(tp_trainer *t, double *norm, float **update_grad)
{
    const tp_params *params = &t->model->params;
    const tp_backend *backend = params->backend;
    double max_norm = t->options.max_grad_norm;
    *update_grad = t->grad_shard;
    if (!t->sharded) {
        *norm = backend->clip_grad_norm(params->grad, t->segments, t->segment_count, max_norm);
        return 0;
    }
    double local = backend->grad_norm(t->grad_shard, t->shard_segments, t->shard_segment_count);
    double sum_of_squares = local * local;
    if (tp_comm_sum(t->comm, &sum_of_squares, 1, "sum of the gradient norm") < 0) return -1;
    *norm = sqrt(sum_of_squares);
    double coefficient = max_norm / (*norm + 1e-6); /* as tp_clip_grad_norm */
    if (coefficient < 1.0) {
        *update_grad = params->grad + t->shard_offset;
        backend->zero(*update_grad, t->shard_length);
        backend->axpy(*update_grad, (float)coefficient, t->grad_shard, t->shard_length);
    }
    return 0;
}

/* AdamW on this rank's part; under ZeRO-1 every rank then receives the others' updated shards. */
static int update_parameters(tp_trainer *t, double lr, double *grad_norm)
{
    tp_params *params = &t->model->params;
    float *update_grad = t->grad_shard;
    if (t->options.max_grad_norm > 0 && clip_gradients(t, grad_norm, &update_grad) < 0) return -1;
    params->backend->adamw_step(&t->options.adamw, lr, t->step + 1, params->data + t->shard_offset, update_grad,
                                t->exp_avg, t->exp_avg_sq, t->shard_segments, t->shard_segment_count);
    if (t->sharded && tp_comm_all_gather(t->comm, params->data, params->total, "all-gather of the parameters") < 0)
        return -1;
    return 0;
}

/* A rerun's dropout calls start at pass << RERUN_CALL_BITS (below the step's bits in the stream). */
enum { RERUN_CALL_BITS = 20 };

static int run_micro_batches(tp_trainer *t, tp_micro_step_fn micro_step, void *user, tp_step_metrics *step_metrics)
{
    memset(step_metrics, 0, sizeof *step_metrics);
    t->ctx.step = (uint64_t)t->step + 1;
    t->grads_final = 0;
    for (t->micro = 0; t->micro < t->options.accumulation_steps; t->micro++) {
        tp_step_metrics metrics;
        memset(&metrics, 0, sizeof metrics);
        t->ctx.random_calls = (uint64_t)t->pass << RERUN_CALL_BITS;
        int status = micro_step(t, user, &metrics);
        tp_ctx_reset(&t->ctx);
        if (status < 0) return -1;
        add_metrics(step_metrics, &metrics);
    }
    return 0;
}

int tp_trainer_set_hooks(tp_trainer *t, const tp_step_hooks *hooks)
{
    if (hooks && t->world_size > 1)
        return tp_fail("step hooks (continual learning) run on one rank only: started on %d ranks", t->world_size);
    if (hooks)
        t->hooks = *hooks;
    else
        memset(&t->hooks, 0, sizeof t->hooks);
    return 0;
}

int tp_trainer_rerun(tp_trainer *t)
{
    tp_step_metrics ignored;
    if (!t->step_fn) return tp_fail("tp_trainer_rerun: called outside a step's gradients hook");
    tp_params_zero_grad(&t->model->params);
    t->pass++;
    return run_micro_batches(t, t->step_fn, t->step_user, &ignored);
}

/* The step's micro-batches, then the gradients hook (which may rerun them). */
static int run_gradients(tp_trainer *t, tp_micro_step_fn micro_step, void *user, tp_step_metrics *step_metrics)
{
    t->pass = 0;
    if (run_micro_batches(t, micro_step, user, step_metrics) < 0) return -1;
    if (!t->hooks.gradients) return 0;
    t->step_fn = micro_step;
    t->step_user = user;
    int status = t->hooks.gradients(t, t->hooks.user);
    t->step_fn = NULL;
    t->step_user = NULL;
    t->pass = 0;
    return status < 0 ? tp_fail_context("step %lld", (long long)t->step + 1) : 0;
}

int tp_trainer_step(tp_trainer *t, tp_micro_step_fn micro_step, void *user)
{
    const tp_backend *backend = t->model->params.backend;
    tp_params *params = &t->model->params;
    tp_step_metrics step_metrics;
    double start = now_seconds(), wait_start = tp_comm_wait_seconds(t->comm);
    int all_finite = 0;
    if (run_gradients(t, micro_step, user, &step_metrics) < 0) return -1;
    if (reduce_gradients(t) < 0 || agree_on_step(t, &step_metrics, &all_finite) < 0)
        return tp_fail_context("step %lld", (long long)t->step + 1);
    double grad_norm = 0;
    double lr = t->options.learning_rate * tp_schedule_factor(&t->options.schedule, t->step);
    if (!all_finite) {
        tp_params_zero_grad(params);
        if (log_event(t, "non-finite gradients: step skipped") < 0) return -1;
        if (++t->bad_steps >= t->options.max_bad_steps)
            return tp_fail("%lld consecutive steps had non-finite gradients (max_bad_steps); stopping with the last "
                           "good checkpoint intact", (long long)t->bad_steps);
        return 0;
    }
    t->bad_steps = 0;
    if (update_parameters(t, lr, &grad_norm) < 0) return tp_fail_context("step %lld", (long long)t->step + 1);
    if (t->hooks.updated && t->hooks.updated(t, t->hooks.user) < 0)
        return tp_fail_context("step %lld", (long long)t->step + 1);
    backend->zero(params->grad, params->total);
    t->step++;
    add_metrics(&t->window, &step_metrics);
    t->window_steps++;
    t->window_seconds += now_seconds() - start;
    t->window_wait_seconds += tp_comm_wait_seconds(t->comm) - wait_start;
    if (t->rank == 0 && (t->step % t->options.report_steps == 0 || t->step == t->options.total_steps))
        return report(t, lr, grad_norm);
    return 0;
}

/* ---- the model's micro-step ----------------------------------------------------- */

/* Each target's loss weight: this rank's share of the target's count over all ranks (1 on one
 * rank).  With it the ranks' gradients sum to the gradient of the global batch's mean loss. */
static int loss_weights(tp_trainer *t, const tp_model_output *out, double *weights)
{
    double counts[TP_MAX_PARTS];
    int n = t->model->target_count;
    for (int i = 0; i < n; i++) counts[i] = t->stand_in ? 0.0 : (double)out->results[i].count;
    memcpy(weights, counts, sizeof(double) * (size_t)n);
    if (tp_comm_sum(t->comm, counts, n, "sum of the targets' counts") < 0)
        return tp_fail_context("step %lld", (long long)t->step + 1);
    for (int i = 0; i < n; i++) weights[i] = counts[i] > 0 ? weights[i] / counts[i] : 1.0 / t->world_size;
    return 0;
}

static int all_weights_one(const tp_trainer *t, const double *weights)
{
    int ones = 1;
    for (int i = 0; i < t->model->target_count; i++) ones &= weights[i] == 1.0;
    return ones;
}

/* The loss backward starts from: the weighted sum of the targets' losses over the micro-batches. */
static tp_tensor *weighted_loss(tp_trainer *t, const tp_model_output *out, const double *weights)
{
    double micro_batches = (double)t->options.accumulation_steps;
    if (all_weights_one(t, weights))
        return micro_batches > 1 ? tp_scale(&t->ctx, out->loss, (float)(1.0 / micro_batches)) : out->loss;
    tp_tensor *loss = NULL;
    for (int i = 0; i < t->model->target_count; i++) {
        if (!out->results[i].loss) continue;
        tp_tensor *term = tp_scale(&t->ctx, out->results[i].loss, (float)(weights[i] / micro_batches));
        loss = loss ? tp_add(&t->ctx, loss, term) : term;
    }
    return loss;
}

/* For each gradient bucket, the lowest tape index of a node that reads a parameter in it: the
 * bucket's gradients are final once backward has run that node (tape length: no node reads it). */
static void find_bucket_readiness(tp_trainer *t)
{
    const tp_params *params = &t->model->params;
    const tp_ctx *ctx = &t->ctx;
    int64_t buckets = tp_grad_sync_bucket_count(t->grad_sync), bucket_floats, unused;
    tp_grad_sync_bucket(t->grad_sync, 0, &unused, &bucket_floats);
    for (int64_t b = 0; b < buckets; b++) t->bucket_ready[b] = ctx->tape_count;
    for (int64_t i = ctx->tape_count - 1; i >= 0; i--)
        for (int k = 0; k < 3; k++) {
            const tp_tensor *in = ctx->tape[i].in[k];
            if (!in || in->data < params->data || in->data >= params->data + params->total) continue;
            int64_t first = in->data - params->data, last = first + tp_numel(in) - 1;
            for (int64_t b = first / bucket_floats; b <= last / bucket_floats && b < buckets; b++) t->bucket_ready[b] = i;
        }
}

static int start_ready_buckets(tp_trainer *t, int64_t done_down_to)
{
    for (int64_t b = 0; b < tp_grad_sync_bucket_count(t->grad_sync); b++)
        if (t->bucket_ready[b] >= done_down_to && tp_grad_sync_start(t->grad_sync, b) < 0) return -1;
    return tp_grad_sync_progress(t->grad_sync);
}

/* tp_backward, starting each bucket's all-reduce as soon as its gradients are final, so that
 * the sums of the late layers' gradients run while backward computes the early layers'. */
static int backward_overlapped(tp_trainer *t, tp_tensor *loss)
{
    tp_ctx *ctx = &t->ctx;
    find_bucket_readiness(t);
    tp_backward_seed(ctx, loss);
    if (start_ready_buckets(t, ctx->tape_count) < 0) return -1;
    for (int64_t i = ctx->tape_count - 1; i >= 0; i--) {
        tp_backward_node(ctx, i);
        if (start_ready_buckets(t, i) < 0) return -1;
    }
    return 0;
}

int tp_trainer_model_step(tp_trainer *t, const tp_batch *batch, tp_step_metrics *metrics)
{
    tp_ctx *ctx = &t->ctx;
    const tp_backend *backend = ctx->backend;
    double micro_batches = (double)t->options.accumulation_steps, weights[TP_MAX_PARTS];
    if (t->grads_final)
        return tp_fail("the last micro-batch ran backward twice: its gradients were already being summed over the "
                       "ranks");
    tp_model_batch model_batch = tp_model_batch_upload(ctx, batch);
    model_batch.targets_only = !t->options.every_row; /* the step reads only the losses and metrics */
    tp_model_output out;
    ctx->record = 1;
    ctx->training = 1;
    if (tp_model_forward(t->model, ctx, &model_batch, &out) < 0 || loss_weights(t, &out, weights) < 0) return -1;
    tp_tensor *loss = weighted_loss(t, &out, weights);
    t->grads_final = t->micro == t->options.accumulation_steps - 1;
    if (t->grads_final && t->grad_sync) {
        if (backward_overlapped(t, loss) < 0) return tp_fail_context("step %lld", (long long)t->step + 1);
    } else {
        tp_backward(ctx, loss);
    }
    float value;
    backend->download(&value, out.loss->data, sizeof value);
    metrics->loss = value / micro_batches; /* replaced by the weighted sum below on several ranks */
    metrics->tokens = t->stand_in ? 0 : batch->batch_size * batch->seq_length;
    metrics->count = t->model->target_count;
    double weighted_sum = 0;
    for (int i = 0; i < t->model->target_count; i++) {
        backend->download(&value, out.results[i].loss->data, sizeof value);
        metrics->names[i] = tp_model_target_name(t->model, i);
        metrics->target_loss[i] = t->stand_in ? 0.0 : value * weights[i] / micro_batches;
        weighted_sum += metrics->target_loss[i];
        metrics->correct[i] = t->stand_in ? 0 : out.results[i].correct;
        metrics->total[i] = t->stand_in ? 0 : out.results[i].count;
    }
    if (!all_weights_one(t, weights)) metrics->loss = weighted_sum;
    return 0;
}

int tp_trainer_stand_in_step(tp_trainer *t, const tp_batch *stand_in, tp_step_metrics *metrics)
{
    t->stand_in = 1;
    int status = tp_trainer_model_step(t, stand_in, metrics);
    t->stand_in = 0;
    return status;
}
