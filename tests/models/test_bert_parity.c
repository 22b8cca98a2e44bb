/* BERT in tp against the PyTorch reference (tests/reference/make_bert_fixture.py):
 * the same deterministic weights and inputs must give the same encoder output,
 * logits, losses, every parameter gradient after one backward, the losses of
 * 5 AdamW steps through the real trainer, and the weights after them.
 * Tolerance: 1e-4, relative to the reference's scale (normalised error), with
 * the scale floored at SCALE_FLOOR: some gradients are mathematically zero
 * (attention's key bias shifts every score of a row equally) and both sides
 * hold only rounding noise there. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/config.h"
#include "core/error.h"
#include "core/model.h"
#include "core/rng.h"
#include "core/safetensors.h"
#include "core/trainer.h"
#include "support/check.h"
#include "support/scratch.h"

#define TOLERANCE 1e-4
#define SCALE_FLOOR 1e-3
#define WEIGHT_SEED 1234
#define PROJECTION_SEED 99
#define SAMPLE_SEED 77

typedef struct fixture {
    tp_st_file *file;
    tp_config *config;
    tp_model model;
    tp_batch batch;
    int32_t *src, *seg, *mlm_positions, *mlm_labels, *sp_labels;
} fixture;

static int is_norm_gain(const char *name)
{
    size_t n = strlen(name);
    return strstr(name, "layer_norm") &&
           ((n > 6 && !strcmp(name + n - 6, ".gamma")) || (n > 7 && !strcmp(name + n - 7, ".weight")));
}

static int is_norm_bias(const char *name)
{
    size_t n = strlen(name);
    return strstr(name, "layer_norm") &&
           ((n > 5 && !strcmp(name + n - 5, ".beta")) || (n > 5 && !strcmp(name + n - 5, ".bias")));
}

/* The fixture's weight rule (docs/reference.md). */
static void set_fixture_weights(tp_params *params)
{
    for (int64_t i = 0; i < params->count; i++) {
        tp_param *param = params->items[i];
        uint64_t stream = tp_fnv1a64(param->name);
        int64_t n = tp_param_logical_numel(param);
        for (int64_t j = 0; j < n; j++) {
            double u = tp_uniform(WEIGHT_SEED, stream, (uint64_t)j);
            double value = is_norm_gain(param->name)   ? 1.0 + 0.1 * (2.0 * u - 1.0)
                           : is_norm_bias(param->name) ? 0.1 * (2.0 * u - 1.0)
                                                       : 0.04 * (2.0 * u - 1.0);
            param->tensor.data[j] = (float)value;
        }
    }
}

static const tp_st_tensor *tensor(const fixture *fx, const char *name)
{
    const tp_st_tensor *t = tp_st_find(fx->file, name);
    if (!t) {
        fprintf(stderr, "%s: fixture lacks tensor '%s'\n", tp_st_path(fx->file), name);
        exit(1);
    }
    return t;
}

static int32_t *copy_i32(const tp_st_tensor *t)
{
    int32_t *out = tp_xmalloc((size_t)t->numel * sizeof *out);
    memcpy(out, t->data, (size_t)t->numel * sizeof *out);
    return out;
}

static float *copy_f32(const tp_st_tensor *t)
{
    float *out = tp_xmalloc((size_t)t->numel * sizeof *out);
    memcpy(out, t->data, (size_t)t->numel * sizeof *out);
    return out;
}

static double *copy_f64(const tp_st_tensor *t)
{
    double *out = tp_xmalloc((size_t)t->numel * sizeof *out);
    memcpy(out, t->data, (size_t)t->numel * sizeof *out);
    return out;
}

static int open_fixture(fixture *fx, const char *path)
{
    memset(fx, 0, sizeof *fx);
    if (!(fx->file = tp_st_open(path))) return -1;
    const char *config_text = tp_st_metadata(fx->file, "model_config");
    const char *vocab_text = tp_st_metadata(fx->file, "vocab_size");
    if (!config_text || !vocab_text) return tp_fail("%s: metadata lacks model_config / vocab_size", path);
    if (!(fx->config = tp_config_parse(path, config_text))) return -1;
    tp_config_set(fx->config, "dropout", "0");
    if (tp_model_build(&fx->model, fx->config, atoll(vocab_text)) < 0) return -1;
    if (tp_config_check_unused(fx->config) < 0) return -1;
    tp_model_allocate(&fx->model, &tp_cpu_backend, 1);
    set_fixture_weights(&fx->model.params);

    const tp_st_tensor *src = tensor(fx, "src"), *tgt_mlm = tensor(fx, "tgt_mlm");
    int64_t batch_size = src->shape[0], seq_length = src->shape[1], tokens = batch_size * seq_length;
    fx->src = copy_i32(src);
    fx->seg = copy_i32(tensor(fx, "seg"));
    fx->sp_labels = copy_i32(tensor(fx, "tgt_sp"));
    fx->mlm_positions = tp_xmalloc((size_t)tokens * sizeof(int32_t));
    fx->mlm_labels = tp_xmalloc((size_t)tokens * sizeof(int32_t));
    const int32_t *labels = tgt_mlm->data;
    int64_t masked = 0;
    for (int64_t i = 0; i < tokens; i++)
        if (labels[i] > 0) {
            fx->mlm_positions[masked] = (int32_t)i;
            fx->mlm_labels[masked++] = labels[i];
        }
    tp_batch batch = {.batch_size = batch_size, .seq_length = seq_length, .src = fx->src, .seg = fx->seg,
                      .mlm_positions = fx->mlm_positions, .mlm_labels = fx->mlm_labels, .mlm_count = masked,
                      .sp_labels = fx->sp_labels, .real_tokens = tokens};
    fx->batch = batch;
    return 0;
}

static void close_fixture(fixture *fx)
{
    tp_model_free(&fx->model);
    tp_config_free(fx->config);
    tp_st_close(fx->file);
    free(fx->src);
    free(fx->seg);
    free(fx->sp_labels);
    free(fx->mlm_positions);
    free(fx->mlm_labels);
}

static double normalised_error(const float *actual, const float *expected, int64_t n)
{
    double scale = SCALE_FLOOR, worst = 0;
    for (int64_t i = 0; i < n; i++) scale = fabs(expected[i]) > scale ? fabs(expected[i]) : scale;
    for (int64_t i = 0; i < n; i++) {
        double err = fabs((double)actual[i] - expected[i]);
        if (!(err <= worst)) worst = err;
    }
    return worst / scale;
}

static void check_array(const char *what, const float *actual, const tp_st_tensor *expected, int64_t rows,
                        int64_t cols, int64_t ld)
{
    float *packed = tp_xmalloc((size_t)(rows * cols) * sizeof *packed);
    for (int64_t r = 0; r < rows; r++) memcpy(packed + r * cols, actual + r * ld, (size_t)cols * sizeof *packed);
    CHECK_MSG(expected->numel == rows * cols, "%s: %lld values expected, tp has %lld", what,
              (long long)expected->numel, (long long)(rows * cols));
    float *reference = copy_f32(expected);
    double err = normalised_error(packed, reference, rows * cols);
    CHECK_MSG(err <= TOLERANCE, "%s: normalised error %.3g", what, err);
    free(reference);
    free(packed);
}

static double scalar(const fixture *fx, const char *name) { return ((const float *)tensor(fx, name)->data)[0]; }

/* A fingerprint of a large vector: projections on 8 random +-1 vectors, sum of squares, 512 samples. */
static void check_fingerprint(const fixture *fx, const char *kind, const char *name, const float *values, int64_t n)
{
    char key[512];
    uint64_t stream = tp_fnv1a64(name);
    snprintf(key, sizeof key, "%s.%s.proj", kind, name);
    double *proj = copy_f64(tensor(fx, key));
    snprintf(key, sizeof key, "%s.%s.sumsq", kind, name);
    const tp_st_tensor *sumsq_t = tp_st_find(fx->file, key);
    double reference_norm = 0;
    if (sumsq_t) reference_norm = sqrt(((const double *)sumsq_t->data)[0]);
    double sumsq = 0;
    for (int64_t i = 0; i < n; i++) sumsq += (double)values[i] * values[i];
    if (!sumsq_t) reference_norm = sqrt(sumsq);
    for (int k = 0; k < 8; k++) {
        double projection = 0;
        for (int64_t i = 0; i < n; i++)
            projection += values[i] * (2.0 * tp_uniform(PROJECTION_SEED, stream + (uint64_t)k, (uint64_t)i) - 1.0);
        CHECK_MSG(fabs(projection - proj[k]) <= TOLERANCE * reference_norm + 1e-12,
                  "%s %s: projection %d: tp %.9g, reference %.9g (norm %.3g)", kind, name, k, projection, proj[k],
                  reference_norm);
    }
    if (sumsq_t)
        CHECK_MSG(fabs(sqrt(sumsq) - reference_norm) <= TOLERANCE * reference_norm + 1e-12,
                  "%s %s: norm tp %.9g, reference %.9g", kind, name, sqrt(sumsq), reference_norm);
    snprintf(key, sizeof key, "%s.%s.idx", kind, name);
    const tp_st_tensor *idx_t = tp_st_find(fx->file, key);
    if (idx_t) {
        snprintf(key, sizeof key, "%s.%s.val", kind, name);
        const float *val = tensor(fx, key)->data;
        const int64_t *idx = idx_t->data;
        float *sampled = tp_xmalloc((size_t)idx_t->numel * sizeof *sampled);
        for (int64_t j = 0; j < idx_t->numel; j++) sampled[j] = values[idx[j]];
        double err = normalised_error(sampled, val, idx_t->numel);
        CHECK_MSG(err <= TOLERANCE, "%s %s: sampled values, normalised error %.3g", kind, name, err);
        free(sampled);
    }
    free(proj);
}

static void check_parameter_values(const fixture *fx, const char *kind, const char *full_prefix, int use_grad)
{
    const tp_params *params = &fx->model.params;
    char key[512];
    for (int64_t i = 0; i < params->count; i++) {
        const tp_param *param = params->items[i];
        const float *values = use_grad ? param->tensor.grad : param->tensor.data;
        int64_t n = tp_param_logical_numel(param);
        snprintf(key, sizeof key, "%s%s", full_prefix, param->name);
        const tp_st_tensor *full = tp_st_find(fx->file, key);
        if (full)
            check_array(key, values, full, 1, n, n);
        else
            check_fingerprint(fx, kind, param->name, values, n);
    }
}

/* targets_only: the last layer computes only the rows the targets read (tp_model_forward), which must
 * give the reference's logits, losses and gradients all the same. */
static void check_forward_and_gradients(fixture *fx, tp_ctx *ctx, int targets_only)
{
    tp_model_batch batch = tp_model_batch_upload(ctx, &fx->batch);
    batch.targets_only = targets_only;
    tp_model_output out;
    ctx->record = 1;
    ctx->training = 1;
    CHECK(tp_model_forward(&fx->model, ctx, &batch, &out) == 0);
    const tp_model_config *hp = &fx->model.hp;
    if (targets_only)
        CHECK_MSG(batch.marked_per_seq > 0 && batch.marked_per_seq < batch.seq_length &&
                      tp_rows(out.hidden) == batch.batch_size * batch.marked_per_seq,
                  "targets_only: %lld rows of output for %lld marked rows per sequence", (long long)tp_rows(out.hidden),
                  (long long)batch.marked_per_seq);
    else
        check_array("hidden", out.hidden->data, tensor(fx, "hidden"), fx->batch.batch_size * fx->batch.seq_length,
                    hp->hidden_size, hp->hidden_size);
    static const char *const logits_names[] = {"mlm_logits", "sp_logits"};
    for (int i = 0; i < 2; i++) {
        tp_tensor *logits = out.results[i].logits;
        check_array(logits_names[i], logits->data, tensor(fx, logits_names[i]), tp_rows(logits),
                    out.results[i].classes, tp_cols(logits));
    }
    double loss = out.loss->data[0];
    CHECK_MSG(tp_close(loss, scalar(fx, "loss"), TOLERANCE, 1e-6), "loss tp %.9g, reference %.9g", loss,
              scalar(fx, "loss"));
    CHECK_MSG(tp_close(out.results[0].loss->data[0], scalar(fx, "loss_mlm"), TOLERANCE, 1e-6), "mlm loss %.9g vs %.9g",
              out.results[0].loss->data[0], scalar(fx, "loss_mlm"));
    CHECK_MSG(tp_close(out.results[1].loss->data[0], scalar(fx, "loss_sp"), TOLERANCE, 1e-6), "sp loss %.9g vs %.9g",
              out.results[1].loss->data[0], scalar(fx, "loss_sp"));
    CHECK_MSG(out.results[0].correct == (int64_t)scalar(fx, "mlm_correct"), "mlm correct %lld vs %g",
              (long long)out.results[0].correct, scalar(fx, "mlm_correct"));
    tp_backward(ctx, out.loss);
    check_parameter_values(fx, "gradfp", "grad.", 1);
    tp_ctx_reset(ctx);
    tp_params_zero_grad(&fx->model.params);
}

static int fixed_batch_step(tp_trainer *trainer, void *user, tp_step_metrics *metrics)
{
    fixture *fx = user;
    return tp_trainer_model_step(trainer, &fx->batch, metrics);
}

/* The trainer's steps compute only the rows the targets read, as check_forward_and_gradients(.., 1) does.
 * accumulation_steps > 1 feeds the same batch to every micro-step: the scaled gradients
 * (exact halvings) must sum to the same step as one micro-batch. */
static void check_training(fixture *fx, int accumulation_steps)
{
    char dir[512];
    snprintf(dir, sizeof dir, "%s/accumulation_%d", tp_scratch_dir(), accumulation_steps);
    tp_config *run = tp_config_new_empty("parity run");
    char text[64];
    const char *keys[] = {"learning_rate", "total_steps"};
    for (int i = 0; i < 2; i++) tp_config_set(run, keys[i], tp_st_metadata(fx->file, keys[i]));
    snprintf(text, sizeof text, "%.17g",
             atof(tp_st_metadata(fx->file, "warmup_steps")) / atof(tp_st_metadata(fx->file, "total_steps")));
    tp_config_set(run, "warmup", text);
    tp_config_set(run, "output_dir", dir);
    tp_config_set(run, "report_steps", "1000");
    snprintf(text, sizeof text, "%d", accumulation_steps);
    tp_config_set(run, "accumulation_steps", text);
    set_fixture_weights(&fx->model.params);
    tp_train_options options;
    CHECK(tp_train_options_read(run, &options) == 0);
    tp_trainer trainer;
    CHECK(tp_trainer_init(&trainer, &options, &fx->model, "{}") == 0);
    CHECK(tp_trainer_check_fresh(&trainer) == 0);
    const tp_st_tensor *losses = tensor(fx, "losses");
    const float *expected = losses->data;
    for (int64_t step = 0; step < losses->numel; step++) {
        double before = trainer.window.loss;
        CHECK(tp_trainer_step(&trainer, fixed_batch_step, fx) == 0);
        double loss = trainer.window.loss - before;
        CHECK_MSG(tp_close(loss, expected[step], TOLERANCE, 1e-6),
                  "AdamW step %lld (accumulation %d): loss tp %.9g, reference %.9g", (long long)step + 1,
                  accumulation_steps, loss, expected[step]);
    }
    check_parameter_values(fx, "param_fp_after", "param_after.", 0);
    tp_trainer_free(&trainer);
    tp_config_free(run);
}

int main(void)
{
    static const char *const cases[] = {"tiny", "base_width_2layer", "tiny_preln_torchln", "tiny_relu", "tiny_silu",
                                        NULL};
    tp_scratch_init("bert_parity");
    for (int i = 0; cases[i]; i++) {
        char path[256];
        snprintf(path, sizeof path, "tests/fixtures/bert/%s.safetensors", cases[i]);
        fixture fx;
        int status = open_fixture(&fx, path);
        CHECK_MSG(status == 0, "%s: %s", path, tp_last_error());
        if (status == 0) {
            fprintf(stderr, "case %s\n", cases[i]);
            tp_ctx ctx;
            tp_ctx_init(&ctx, &tp_cpu_backend, 1 << 20);
            check_forward_and_gradients(&fx, &ctx, 0);
            check_forward_and_gradients(&fx, &ctx, 1);
            tp_ctx_free(&ctx);
            check_training(&fx, 1);
            check_training(&fx, 2);
        }
        close_fixture(&fx);
    }
    return tp_test_finish("bert_parity");
}
