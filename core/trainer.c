#include "trainer.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "checkpoint.h"
#include "error.h"
#include "fileio.h"

/* ---- options ------------------------------------------------------------------ */

int tp_train_options_read(tp_config *run, tp_train_options *o)
{
    const char *scheduler = NULL;
    double warmup = 0, decay = 0, beta1 = 0, beta2 = 0, eps = 0;
    int64_t seed = 0;
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
        tp_config_string(run, "scheduler", "linear", &scheduler) < 0)
        return -1;
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

int tp_trainer_init(tp_trainer *t, const tp_train_options *options, tp_model *model, const char *model_config_json)
{
    memset(t, 0, sizeof *t);
    t->options = *options;
    t->model = model;
    t->model_config_json = model_config_json;
    const tp_backend *backend = model->params.backend;
    tp_ctx_init(&t->ctx, backend, (size_t)64 << 20);
    t->ctx.seed = options->seed;
    t->exp_avg = backend->alloc((size_t)model->params.total * sizeof(float));
    t->exp_avg_sq = backend->alloc((size_t)model->params.total * sizeof(float));
    backend->zero(t->exp_avg, model->params.total);
    backend->zero(t->exp_avg_sq, model->params.total);
    build_segments(t);
    if (tp_param_segments_check(t->segments, t->segment_count, model->params.total) < 0) return -1;
    snprintf(t->checkpoint_root, sizeof t->checkpoint_root, "%s/checkpoints", options->output_dir);
    if (tp_mkdirs(t->checkpoint_root) < 0) return -1;
    return 0;
}

void tp_trainer_free(tp_trainer *t)
{
    const tp_backend *backend = t->model ? t->model->params.backend : NULL;
    if (backend) {
        backend->release(t->exp_avg);
        backend->release(t->exp_avg_sq);
    }
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

/* Keeps the metric lines of steps <= step (a resumed run rewrites what follows). */
static int truncate_metrics(const char *path, int64_t step)
{
    size_t bytes = 0;
    char *text = tp_read_file(path, &bytes);
    if (!text) return 0; /* no metrics yet */
    size_t kept = 0;
    for (char *line = text; *line;) {
        char *end = strchr(line, '\n');
        size_t length = end ? (size_t)(end - line) + 1 : strlen(line);
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

static int open_metrics(tp_trainer *t)
{
    char path[4096];
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
    remove(path);
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

static void window_from_json(tp_trainer *t, const cJSON *window)
{
    t->window_steps = (int64_t)number_at(window, "steps");
    t->window_seconds = number_at(window, "seconds");
    t->window.loss = number_at(window, "loss");
    t->window.tokens = (int64_t)number_at(window, "tokens");
    const cJSON *targets = cJSON_GetObjectItemCaseSensitive(window, "targets");
    int i = 0;
    for (const cJSON *target = targets ? targets->child : NULL; target && i < TP_MAX_METRICS; target = target->next, i++) {
        t->window.target_loss[i] = number_at(target, "loss");
        t->window.correct[i] = (int64_t)number_at(target, "correct");
        t->window.total[i] = (int64_t)number_at(target, "total");
    }
}

int tp_trainer_save(tp_trainer *t, const tp_caller_state *caller)
{
    cJSON *data = cJSON_CreateObject();
    for (int i = 0; caller->keys[i]; i++) cJSON_AddNumberToObject(data, caller->keys[i], caller->values[i]);
    cJSON *state = cJSON_CreateObject();
    cJSON_AddNumberToObject(state, "step", (double)t->step);
    cJSON_AddNumberToObject(state, "seed", (double)t->options.seed);
    cJSON_AddNumberToObject(state, "bad_steps", (double)t->bad_steps);
    cJSON_AddItemToObject(state, "window", window_to_json(t));
    cJSON_AddItemToObject(state, "data", data);
    char *text = cJSON_Print(state);
    cJSON_Delete(state);
    int status = tp_checkpoint_save(t->checkpoint_root, t->step, &t->model->params, t->exp_avg, t->exp_avg_sq,
                                    t->model_config_json, text, (int)t->options.keep_checkpoints);
    free(text);
    return status;
}

int tp_trainer_resume(tp_trainer *t, int *resumed, const tp_caller_state *caller)
{
    char dir[4096], path[4200];
    *resumed = 0;
    if (!tp_checkpoint_latest(t->checkpoint_root, dir, sizeof dir)) return tp_trainer_check_fresh(t);
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    if (tp_checkpoint_load_weights(path, &t->model->params) < 0) return -1;
    snprintf(path, sizeof path, "%s/optimizer.safetensors", dir);
    if (tp_checkpoint_load_moments(path, &t->model->params, t->exp_avg, t->exp_avg_sq) < 0) return -1;
    snprintf(path, sizeof path, "%s/trainer_state.json", dir);
    char *text = tp_read_file(path, NULL);
    if (!text) return -1;
    cJSON *state = cJSON_Parse(text);
    free(text);
    if (!state || !cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(state, "step"))) {
        cJSON_Delete(state);
        return tp_fail("%s: not a valid trainer state", path);
    }
    double saved_seed = number_at(state, "seed");
    if ((uint64_t)saved_seed != t->options.seed) {
        cJSON_Delete(state);
        return tp_fail("%s: the checkpoint was trained with seed %.0f, this run has seed %llu: resuming would not "
                       "reproduce the run", path, saved_seed, (unsigned long long)t->options.seed);
    }
    t->step = (int64_t)number_at(state, "step");
    t->bad_steps = (int64_t)number_at(state, "bad_steps");
    window_from_json(t, cJSON_GetObjectItemCaseSensitive(state, "window"));
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

static void report(tp_trainer *t, double lr, double grad_norm)
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
    fprintf(stderr, " | lr %.3g | %.0f tok/s | ETA %s\n", lr, tokens_per_s, eta);
    fprintf(t->metrics_file, ",\"lr\":%.9g,\"grad_norm\":%.9g,\"tokens_per_s\":%.6g,\"step_seconds\":%.6g}\n", lr,
            grad_norm, tokens_per_s, step_seconds);
    fflush(t->metrics_file);
    memset(&t->window, 0, sizeof t->window);
    t->window_steps = 0;
    t->window_seconds = 0;
}

static void log_event(tp_trainer *t, const char *event)
{
    fprintf(stderr, "step %lld: %s\n", (long long)(t->step + 1), event);
    fprintf(t->metrics_file, "{\"step\":%lld,\"event\":\"%s\"}\n", (long long)(t->step + 1), event);
    fflush(t->metrics_file);
}

int tp_trainer_step(tp_trainer *t, tp_micro_step_fn micro_step, void *user)
{
    const tp_backend *backend = t->model->params.backend;
    tp_params *params = &t->model->params;
    tp_step_metrics step_metrics;
    double start = now_seconds();
    memset(&step_metrics, 0, sizeof step_metrics);
    t->ctx.step = (uint64_t)t->step + 1;
    t->ctx.random_calls = 0;
    for (int64_t micro = 0; micro < t->options.accumulation_steps; micro++) {
        tp_step_metrics metrics;
        memset(&metrics, 0, sizeof metrics);
        int status = micro_step(t, user, &metrics);
        tp_ctx_reset(&t->ctx);
        if (status < 0) return -1;
        add_metrics(&step_metrics, &metrics);
    }
    double grad_norm = 0;
    double lr = t->options.learning_rate * tp_schedule_factor(&t->options.schedule, t->step);
    if (!backend->grads_finite(params->grad, t->segments, t->segment_count)) {
        tp_params_zero_grad(params);
        log_event(t, "non-finite gradients: step skipped");
        if (++t->bad_steps >= t->options.max_bad_steps)
            return tp_fail("%lld consecutive steps had non-finite gradients (max_bad_steps); stopping with the last "
                           "good checkpoint intact", (long long)t->bad_steps);
        return 0;
    }
    t->bad_steps = 0;
    if (t->options.max_grad_norm > 0)
        grad_norm = backend->clip_grad_norm(params->grad, t->segments, t->segment_count, t->options.max_grad_norm);
    backend->adamw_step(&t->options.adamw, lr, t->step + 1, params->data, params->grad, t->exp_avg, t->exp_avg_sq,
                        t->segments, t->segment_count);
    backend->zero(params->grad, params->total);
    t->step++;
    add_metrics(&t->window, &step_metrics);
    t->window_steps++;
    t->window_seconds += now_seconds() - start;
    if (t->step % t->options.report_steps == 0 || t->step == t->options.total_steps) report(t, lr, grad_norm);
    return 0;
}

int tp_trainer_model_step(tp_trainer *t, const tp_batch *batch, tp_step_metrics *metrics)
{
    tp_ctx *ctx = &t->ctx;
    const tp_backend *backend = ctx->backend;
    double micro_batches = (double)t->options.accumulation_steps;
    tp_model_batch model_batch = tp_model_batch_upload(ctx, batch);
    tp_model_output out;
    ctx->record = 1;
    ctx->training = 1;
    if (tp_model_forward(t->model, ctx, &model_batch, &out) < 0) return -1;
    tp_tensor *loss = micro_batches > 1 ? tp_scale(ctx, out.loss, (float)(1.0 / micro_batches)) : out.loss;
    tp_backward(ctx, loss);
    float value;
    backend->download(&value, out.loss->data, sizeof value);
    metrics->loss = value / micro_batches;
    metrics->tokens = batch->batch_size * batch->seq_length;
    metrics->count = t->model->target_count;
    for (int i = 0; i < t->model->target_count; i++) {
        backend->download(&value, out.results[i].loss->data, sizeof value);
        metrics->names[i] = tp_model_target_name(t->model, i);
        metrics->target_loss[i] = value / micro_batches;
        metrics->correct[i] = out.results[i].correct;
        metrics->total[i] = out.results[i].count;
    }
    return 0;
}
