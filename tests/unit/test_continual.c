/* The pieces of continual learning (core/continual.h) and the trainer's step hooks:
 *   - Create through tp_trainer_set_hooks / tp_trainer_rerun on a small BERT with a cls head: the
 *     perturbation equals the adaptive formula evaluated in double from the step's gradient; the
 *     rerun's gradient equals central differences of the loss at θ + ε; the update starts from θ
 *     (restored) and uses that gradient (AdamW's first step computed here in double); a rerun with
 *     ρ = 0 repeats the gradient bit for bit without dropout and draws a new mask with it;
 *   - the non-adaptive perturbation and frozen segments;
 *   - importance against per-example central differences of log p(y|x) in eval mode (and not the
 *     square of the mean gradient);
 *   - the Find penalty against its definition, its gradient against central differences;
 *   - the clamp (inside, outside, negative and zero anchors, frozen segments);
 *   - the replay memory's k-means choice on separated blobs; the continual metrics. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/continual.h"
#include "core/error.h"
#include "core/model.h"
#include "core/trainer.h"
#include "support/check.h"
#include "support/scratch.h"

enum { VOCAB = 40, BATCH = 3, SEQ = 6, LABELS = 3 };
#define RHO 0.65

/* ---- a small model and one batch ---------------------------------------------------------------- */

typedef struct toy {
    tp_config *config;
    tp_model model;
    int32_t src[BATCH * SEQ], seg[BATCH * SEQ], labels[BATCH];
    tp_batch batch;
} toy;

static void toy_init(toy *t, double dropout, uint64_t seed)
{
    char text[512];
    snprintf(text, sizeof text,
             "{\"emb_size\": 16, \"hidden_size\": 16, \"feedforward_size\": 32, \"heads_num\": 2, \"layers_num\": 1,"
             " \"max_seq_length\": 16, \"dropout\": %g, \"embedding\": [\"word\", \"pos\", \"seg\"],"
             " \"encoder\": \"transformer\", \"mask\": \"fully_visible\", \"target\": [\"cls\"], \"labels_num\": %d,"
             " \"pooling\": \"mean\"}",
             dropout, LABELS);
    memset(t, 0, sizeof *t);
    t->config = tp_config_parse("toy.json", text);
    if (!t->config || tp_model_build(&t->model, t->config, VOCAB) < 0) {
        fprintf(stderr, "toy model: %s\n", tp_last_error());
        exit(1);
    }
    tp_model_allocate(&t->model, &tp_cpu_backend, seed);
    for (int i = 0; i < BATCH * SEQ; i++) {
        int position = i % SEQ, real = position < SEQ - (i / SEQ); /* row b has b padding positions */
        t->src[i] = real ? (int32_t)(1 + tp_hash3(seed, 9, (uint64_t)i) % (VOCAB - 1)) : 0;
        t->seg[i] = real ? 1 : 0;
    }
    for (int b = 0; b < BATCH; b++) t->labels[b] = (int32_t)(tp_hash3(seed, 10, (uint64_t)b) % LABELS);
    t->batch = (tp_batch){.batch_size = BATCH, .seq_length = SEQ, .src = t->src, .seg = t->seg, .labels = t->labels};
}

static void toy_free(toy *t)
{
    tp_model_free(&t->model);
    tp_config_free(t->config);
}

/* The batch's mean cross-entropy at the model's current parameters, without dropout. */
static double toy_loss(toy *t, tp_ctx *ctx, const tp_batch *batch)
{
    tp_model_batch model_batch = tp_model_batch_upload(ctx, batch);
    tp_model_output out;
    ctx->record = 0;
    ctx->training = 0;
    if (tp_model_forward(&t->model, ctx, &model_batch, &out) < 0) return NAN;
    double loss = *out.loss->data;
    tp_ctx_reset(ctx);
    return loss;
}

/* d loss / d θ_i by central differences (h = 1e-2 max(|θ_i|, 1), the stored difference). */
static double central_difference(toy *t, tp_ctx *ctx, const tp_batch *batch, int64_t i)
{
    float *theta = t->model.params.data, saved = theta[i];
    float h = 1e-2f * fmaxf(fabsf(saved), 1.0f);
    theta[i] = saved + h;
    float up = theta[i];
    double plus = toy_loss(t, ctx, batch);
    theta[i] = saved - h;
    float down = theta[i];
    double minus = toy_loss(t, ctx, batch);
    theta[i] = saved;
    return (plus - minus) / ((double)up - down);
}

/* Elements of non-padded parameters, drawn at random: each is checked. */
static int64_t random_element(const toy *t, uint64_t draw)
{
    const tp_params *params = &t->model.params;
    const tp_param *param = params->items[tp_hash3(3, 4, draw) % (uint64_t)params->count];
    return param->offset + (int64_t)(tp_hash3(3, 5, draw) % (uint64_t)tp_param_logical_numel(param));
}

/* ---- Create through the trainer's hooks ---------------------------------------------------------- */

typedef struct create_probe {
    toy *toy;
    double rho;
    float *theta, *grad, *perturbed, *grad_perturbed; /* copies taken by the hook */
} create_probe;

static int toy_micro_step(tp_trainer *trainer, void *user, tp_step_metrics *metrics)
{
    create_probe *probe = user;
    return tp_trainer_model_step(trainer, &probe->toy->batch, metrics);
}

static int probe_gradients(tp_trainer *trainer, void *user)
{
    create_probe *probe = user;
    tp_params *params = &probe->toy->model.params;
    size_t bytes = (size_t)params->total * sizeof(float);
    memcpy(probe->theta, params->data, bytes);
    memcpy(probe->grad, params->grad, bytes);
    tp_sharpness_perturb(params->data, params->grad, trainer->segments, trainer->segment_count, probe->rho, 1);
    memcpy(probe->perturbed, params->data, bytes);
    int status = tp_trainer_rerun(trainer);
    memcpy(probe->grad_perturbed, params->grad, bytes);
    memcpy(params->data, probe->theta, bytes);
    return status;
}

static tp_train_options toy_options(void)
{
    tp_train_options options;
    char text[512];
    snprintf(text, sizeof text,
             "{\"output_dir\": \"%s\", \"learning_rate\": 1e-3, \"scheduler\": \"constant\", \"total_steps\": 10,"
             " \"report_steps\": 1000}",
             tp_scratch_path("trainer"));
    tp_config *run = tp_config_parse("run.json", text);
    if (!run || tp_train_options_read(run, &options) < 0) {
        fprintf(stderr, "options: %s\n", tp_last_error());
        exit(1);
    }
    options.output_dir = tp_xstrdup(options.output_dir);
    tp_config_free(run);
    return options;
}

/* One step with the probe's hook; the probe's buffers hold what the hook saw. */
static void run_create_step(toy *t, create_probe *probe, double rho)
{
    int64_t total = t->model.params.total;
    tp_train_options options = toy_options();
    tp_trainer trainer;
    probe->toy = t;
    probe->rho = rho;
    probe->theta = tp_xcalloc((size_t)total, sizeof(float));
    probe->grad = tp_xcalloc((size_t)total, sizeof(float));
    probe->perturbed = tp_xcalloc((size_t)total, sizeof(float));
    probe->grad_perturbed = tp_xcalloc((size_t)total, sizeof(float));
    tp_step_hooks hooks = {probe_gradients, NULL, probe};
    CHECK(tp_trainer_init(&trainer, &options, &t->model, "{}") == 0);
    CHECK(tp_trainer_check_fresh(&trainer) == 0);
    CHECK(tp_trainer_set_hooks(&trainer, &hooks) == 0);
    CHECK_MSG(tp_trainer_step(&trainer, toy_micro_step, probe) == 0, "%s", tp_last_error());
    CHECK(trainer.pass == 0 && trainer.step == 1);
    tp_trainer_free(&trainer);
    free((void *)options.output_dir);
}

static void create_probe_free(create_probe *probe)
{
    free(probe->theta), free(probe->grad), free(probe->perturbed), free(probe->grad_perturbed);
}

/* ε from the adaptive formula in double, over every float (padding has θ = g = 0). */
static double perturbation_error(const create_probe *probe, int64_t total)
{
    double norm = 0, scale = 0, worst = 0;
    for (int64_t i = 0; i < total; i++) norm += pow(fabs((double)probe->theta[i]) * probe->grad[i], 2);
    norm = sqrt(norm);
    for (int64_t i = 0; i < total; i++) {
        double expected = RHO * probe->theta[i] * probe->theta[i] * probe->grad[i] / (norm + 1e-12);
        double actual = (double)probe->perturbed[i] - probe->theta[i];
        scale = fmax(scale, fabs(expected));
        worst = fmax(worst, fabs(actual - expected) - 1e-7 * fabs((double)probe->theta[i]));
    }
    return worst / scale;
}

/* AdamW's first step (TencentPretrain: no bias correction, decay after the update) from θ with g. */
static double first_update(double theta, double g, double weight_decay)
{
    double m = 0.1 * g, v = 0.001 * g * g, lr = 1e-3;
    double p = theta - lr * m / (sqrt(v) + 1e-6);
    return p - lr * weight_decay * p;
}

static void test_create_step(void)
{
    toy t;
    create_probe probe;
    tp_ctx ctx;
    toy_init(&t, 0.0, 21);
    tp_ctx_init(&ctx, &tp_cpu_backend, (size_t)8 << 20);
    run_create_step(&t, &probe, RHO);
    int64_t total = t.model.params.total;
    double error = perturbation_error(&probe, total);
    CHECK_MSG(error < 1e-6, "perturbation error %.3g", error);

    /* The rerun's gradient against central differences of the loss at θ + ε. */
    float *after = tp_xmalloc((size_t)total * sizeof(float));
    memcpy(after, t.model.params.data, (size_t)total * sizeof(float));
    memcpy(t.model.params.data, probe.perturbed, (size_t)total * sizeof(float));
    double worst = 0, scale = 0, moved = 0;
    for (int64_t i = 0; i < total; i++) scale = fmax(scale, fabs(probe.grad_perturbed[i]));
    for (uint64_t draw = 0; draw < 300; draw++) {
        int64_t i = random_element(&t, draw);
        double numeric = central_difference(&t, &ctx, &t.batch, i);
        worst = fmax(worst, fabs(numeric - probe.grad_perturbed[i]) / scale);
        moved = fmax(moved, fabs((double)probe.grad[i] - probe.grad_perturbed[i]) / scale);
    }
    CHECK_MSG(worst < 1e-3, "perturbed gradient vs finite differences: %.3g", worst);
    /* The check tells the two gradients apart (measured: 2.9e-4 and 1.35e-2). */
    CHECK_MSG(moved > 5e-3, "the perturbation moved the gradient by only %.3g", moved);

    /* The update started from θ (restored) with the perturbed gradient. */
    double update_error = 0;
    for (int64_t p = 0; p < t.model.params.count; p++) {
        const tp_param *param = t.model.params.items[p];
        double decay = param->no_decay ? 0.0 : 0.01;
        for (int64_t i = param->offset; i < param->offset + tp_param_logical_numel(param); i++) {
            double expected = first_update(probe.theta[i], probe.grad_perturbed[i], decay);
            update_error = fmax(update_error, fabs(after[i] - expected));
        }
    }
    CHECK_MSG(update_error < 1e-6, "update differs from AdamW from theta with the perturbed gradient: %.3g",
              update_error);
    free(after);
    create_probe_free(&probe);
    tp_ctx_free(&ctx);
    toy_free(&t);
}

/* ρ = 0: the rerun is at θ.  Without dropout it repeats the gradient exactly; with dropout it
 * draws another mask, so the gradient changes. */
static void test_rerun_masks(void)
{
    for (int with_dropout = 0; with_dropout < 2; with_dropout++) {
        toy t;
        create_probe probe;
        toy_init(&t, with_dropout ? 0.3 : 0.0, 5);
        run_create_step(&t, &probe, 0.0);
        int64_t total = t.model.params.total, differ = 0;
        for (int64_t i = 0; i < total; i++) differ += probe.grad[i] != probe.grad_perturbed[i];
        if (with_dropout)
            CHECK_MSG(differ > total / 10, "dropout: only %lld of %lld gradients changed", (long long)differ,
                      (long long)total);
        else
            CHECK_MSG(differ == 0, "no dropout: %lld gradients changed", (long long)differ);
        create_probe_free(&probe);
        toy_free(&t);
    }
}

/* ---- the perturbation without a model ------------------------------------------------------------ */

static void fill(float *x, int64_t n, uint64_t stream, double scale)
{
    for (int64_t i = 0; i < n; i++) x[i] = (float)(scale * tp_normal(17, stream, (uint64_t)i));
}

static void test_plain_perturbation(void)
{
    enum { N = 50 };
    float theta[N], grad[N], moved[N];
    fill(theta, N, 1, 1.0);
    fill(grad, N, 2, 0.1);
    tp_param_segment segments[2] = {{0, 30, 0, 1, 0}, {32, 18, 0, 1, 1}}; /* the second frozen */
    memcpy(moved, theta, sizeof theta);
    double norm = tp_sharpness_perturb(moved, grad, segments, 2, 0.5, 0);
    double expected_norm = 0;
    for (int i = 0; i < 30; i++) expected_norm += (double)grad[i] * grad[i];
    expected_norm = sqrt(expected_norm);
    CHECK(tp_close(norm, expected_norm, 1e-12, 0));
    double worst = 0;
    for (int i = 0; i < 30; i++) worst = fmax(worst, fabs(moved[i] - (theta[i] + 0.5 * grad[i] / expected_norm)));
    CHECK_MSG(worst < 1e-6, "plain perturbation error %.3g", worst);
    CHECK(memcmp(moved + 30, theta + 30, (N - 30) * sizeof(float)) == 0); /* gap and frozen untouched */
    /* A zero gradient moves nothing (the 1e-12 keeps it finite). */
    float zero[N] = {0};
    memcpy(moved, theta, sizeof theta);
    CHECK(tp_sharpness_perturb(moved, zero, segments, 2, 0.5, 1) == 0.0);
    CHECK(memcmp(moved, theta, sizeof theta) == 0);
}

/* ---- importance ---------------------------------------------------------------------------------- */

typedef struct importance_probe {
    toy *toy;
    int32_t src[SEQ], seg[SEQ], label;
    tp_batch one;
} importance_probe;

static const tp_batch *single_example(importance_probe *probe, int64_t example)
{
    memcpy(probe->src, probe->toy->src + example * SEQ, sizeof probe->src);
    memcpy(probe->seg, probe->toy->seg + example * SEQ, sizeof probe->seg);
    probe->label = probe->toy->labels[example];
    probe->one = (tp_batch){.batch_size = 1, .seq_length = SEQ, .src = probe->src, .seg = probe->seg,
                            .labels = &probe->label};
    return &probe->one;
}

static tp_tensor *example_loss(tp_ctx *ctx, void *user, int64_t example)
{
    importance_probe *probe = user;
    tp_model_batch batch = tp_model_batch_upload(ctx, single_example(probe, example));
    tp_model_output out;
    return tp_model_forward(&probe->toy->model, ctx, &batch, &out) < 0 ? NULL : out.loss;
}

static void test_importance(void)
{
    toy t;
    tp_ctx ctx;
    toy_init(&t, 0.3, 8); /* dropout on: the estimate must run without it */
    tp_ctx_init(&ctx, &tp_cpu_backend, (size_t)8 << 20);
    importance_probe probe = {.toy = &t};
    int64_t total = t.model.params.total, examples[BATCH] = {2, 0, 1};
    float *importance = tp_xmalloc((size_t)total * sizeof(float));
    CHECK(tp_importance_estimate(&t.model.params, &ctx, example_loss, &probe, examples, BATCH, importance) == 0);
    int nonzero_grad = 0;
    for (int64_t i = 0; i < total; i++) nonzero_grad |= t.model.params.grad[i] != 0.0f;
    CHECK(!nonzero_grad); /* the scratch gradients are left zeroed */
    double worst = 0, scale = 0, mean_square_gap = 0;
    for (int64_t i = 0; i < total; i++) scale = fmax(scale, importance[i]);
    for (uint64_t draw = 0; draw < 40; draw++) {
        int64_t i = random_element(&t, draw);
        double sum_squares = 0, sum = 0;
        for (int e = 0; e < BATCH; e++) {
            double g = central_difference(&t, &ctx, single_example(&probe, e), i); /* of -log p: squared alike */
            sum_squares += g * g;
            sum += g;
        }
        worst = fmax(worst, fabs(sum_squares / BATCH - importance[i]) / scale);
        mean_square_gap = fmax(mean_square_gap, fabs(sum_squares / BATCH - pow(sum / BATCH, 2)) / scale);
    }
    CHECK_MSG(worst < 1e-3, "importance vs per-example finite differences: %.3g", worst);
    /* ... and tells them from the square of the mean gradient (measured: 1.2e-5 and 1). */
    CHECK_MSG(mean_square_gap > 0.1, "the mean of squares and the square of the mean agree within %.3g",
              mean_square_gap);
    /* F <- gamma F + update */
    float accumulated[3] = {1.0f, 2.0f, 0.0f}, update[3] = {0.5f, 0.0f, 3.0f};
    tp_importance_accumulate(accumulated, update, 0.95, 3);
    CHECK(accumulated[0] == 1.45f && accumulated[1] == 1.9f && accumulated[2] == 3.0f);
    free(importance);
    tp_ctx_free(&ctx);
    toy_free(&t);
}

/* ---- Find ---------------------------------------------------------------------------------------- */

static void test_find(void)
{
    enum { N = 40 };
    float theta[N], anchor[N], importance[N], grad[N];
    fill(theta, N, 3, 0.5);
    fill(anchor, N, 4, 0.5);
    fill(importance, N, 5, 1e-3);
    for (int i = 0; i < N; i++) importance[i] = fabsf(importance[i]);
    tp_param_segment segments[2] = {{0, 25, 0, 1, 0}, {25, 15, 0, 1, 1}};
    const double lambda = 5e4;
    double expected = 0;
    for (int i = 0; i < 25; i++) expected += importance[i] * pow((double)theta[i] - anchor[i], 2);
    expected *= lambda / 2;
    CHECK(tp_close(tp_find_penalty(theta, anchor, importance, lambda, segments, 2), expected, 1e-12, 0));
    fill(grad, N, 6, 0.1);
    float before[N];
    memcpy(before, grad, sizeof grad);
    tp_find_gradient(grad, theta, anchor, importance, lambda, segments, 2);
    double worst = 0, scale = 0;
    for (int i = 0; i < 25; i++) {
        float saved = theta[i];
        double h = 1e-3;
        theta[i] = (float)(saved + h);
        double up = theta[i], plus = tp_find_penalty(theta, anchor, importance, lambda, segments, 2);
        theta[i] = (float)(saved - h);
        double down = theta[i], minus = tp_find_penalty(theta, anchor, importance, lambda, segments, 2);
        theta[i] = saved;
        double numeric = (plus - minus) / (up - down), analytic = (double)grad[i] - before[i];
        worst = fmax(worst, fabs(numeric - analytic));
        scale = fmax(scale, fabs(numeric));
    }
    CHECK_MSG(worst / scale < 1e-5, "Find gradient vs finite differences: %.3g", worst / scale);
    CHECK(memcmp(grad + 25, before + 25, 15 * sizeof(float)) == 0); /* frozen: untouched */
}

/* ---- the clamp ----------------------------------------------------------------------------------- */

static void test_clamp(void)
{
    /* anchor 1: [0.5, 1.5]; anchor -2: [-3, -1]; anchor 0: [0, 0]; the last element frozen. */
    float anchor[8] = {1, 1, 1, -2, -2, -2, 0, 0};
    float theta[8] = {1.2f, 1.9f, 0.1f, -1.5f, -0.5f, -3.5f, 0.3f, 0.3f};
    const float expected[8] = {1.2f, 1.5f, 0.5f, -1.5f, -1.0f, -3.0f, 0.0f, 0.3f};
    tp_param_segment segments[2] = {{0, 7, 0, 1, 0}, {7, 1, 0, 1, 1}};
    tp_clamp_to_anchor(theta, anchor, 0.5, segments, 2);
    for (int i = 0; i < 8; i++)
        CHECK_MSG(theta[i] == expected[i], "element %d: %g, expected %g", i, theta[i], expected[i]);
}

/* ---- replay memory ------------------------------------------------------------------------------- */

static void test_memory(void)
{
    enum { PER = 10, BLOBS = 3, DIM = 4 };
    const double centres[BLOBS][DIM] = {{0, 0, 0, 0}, {20, 0, 5, 0}, {0, -20, 0, 10}};
    float features[BLOBS * PER * DIM];
    /* Blob b's points are rows b, b + 3, b + 6, ... (interleaved). */
    for (int i = 0; i < BLOBS * PER; i++)
        for (int d = 0; d < DIM; d++)
            features[i * DIM + d] = (float)(centres[i % BLOBS][d] + tp_normal(4, 7, (uint64_t)(i * DIM + d)));
    tp_rng rng = tp_rng_make(1, 2, 0);
    int64_t chosen[BLOBS], seen[BLOBS] = {0};
    CHECK(tp_memory_select(features, BLOBS * PER, DIM, BLOBS, &rng, chosen) == BLOBS);
    for (int c = 0; c < BLOBS; c++) {
        int blob = (int)(chosen[c] % BLOBS);
        seen[blob]++;
        /* The chosen row is the member nearest the blob's own mean. */
        double mean[DIM] = {0}, best = INFINITY;
        int64_t nearest = -1;
        for (int i = blob; i < BLOBS * PER; i += BLOBS)
            for (int d = 0; d < DIM; d++) mean[d] += features[i * DIM + d] / PER;
        for (int i = blob; i < BLOBS * PER; i += BLOBS) {
            double distance = 0;
            for (int d = 0; d < DIM; d++) distance += pow(features[i * DIM + d] - mean[d], 2);
            if (distance < best) best = distance, nearest = i;
        }
        CHECK_MSG(chosen[c] == nearest, "cluster %d: row %lld, nearest to the blob mean is %lld", c,
                  (long long)chosen[c], (long long)nearest);
    }
    for (int b = 0; b < BLOBS; b++) CHECK(seen[b] == 1);
    int64_t all[5];
    CHECK(tp_memory_select(features, 2, DIM, 5, &rng, all) == 2); /* k cut to n */
}

/* ---- metrics ------------------------------------------------------------------------------------- */

static void test_metrics(void)
{
    const double a[9] = {0.9, NAN, NAN, 0.7, 0.8, NAN, 0.6, 0.75, 0.85}, reference[3] = {0.95, 0.85, 0.9};
    CHECK(tp_close(tp_continual_average_accuracy(a, 3), (0.6 + 0.75 + 0.85) / 3, 1e-12, 0));
    /* task 0: best 0.9, now 0.6; task 1: best 0.8, now 0.75 */
    CHECK(tp_close(tp_continual_forgetting(a, 3), (0.3 + 0.05) / 2, 1e-12, 0));
    CHECK(tp_close(tp_continual_intransigence(a, reference, 3), 0.05, 1e-12, 0));
    CHECK(isnan(tp_continual_forgetting(a, 1)));
}

int main(void)
{
    tp_scratch_init("continual");
    test_create_step();
    test_rerun_masks();
    test_plain_perturbation();
    test_importance();
    test_find();
    test_clamp();
    test_memory();
    test_metrics();
    return tp_test_finish("test_continual");
}
