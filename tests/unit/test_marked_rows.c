/* tp_model_forward with targets_only: the encoder's last layer computes only the rows the targets
 * read (tp_model_batch's marked rows), which must leave every target's loss, logits and every
 * parameter's gradient as the full forward gives them.  tests/models/test_bert_parity.c checks the
 * same against PyTorch for BERT; here the other encoder variants, the pooled heads, and the cases
 * that must keep every row (mean pooling, a causal mask). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/config.h"
#include "core/error.h"
#include "core/model.h"
#include "support/check.h"

enum { BATCH = 3, SEQ = 8, VOCAB = 40 };

/* Sequences of 8, 5 and 3 real tokens; masked rows 2 and 5 of the first, 1 of the second, none of the
 * third: marked (first, last, masked) 4, 3 and 2 rows. */
static tp_batch make_batch(void)
{
    static int32_t src[BATCH * SEQ], seg[BATCH * SEQ], positions[] = {2, 5, 9}, mlm_labels[] = {7, 11, 13};
    static int32_t sp_labels[BATCH] = {1, 0, 1}, labels[BATCH] = {2, 0, 1};
    static const int real[BATCH] = {8, 5, 3};
    for (int b = 0; b < BATCH; b++)
        for (int s = 0; s < SEQ; s++) {
            src[b * SEQ + s] = s < real[b] ? 5 + (b * 7 + s * 3) % (VOCAB - 5) : 0;
            seg[b * SEQ + s] = s < real[b] ? 1 + (s >= real[b] / 2) : 0;
        }
    return (tp_batch){.batch_size = BATCH,
                      .seq_length = SEQ,
                      .src = src,
                      .seg = seg,
                      .mlm_positions = positions,
                      .mlm_labels = mlm_labels,
                      .mlm_count = 3,
                      .sp_labels = sp_labels,
                      .labels = labels};
}

typedef struct forward_result {
    int64_t hidden_rows;
    double losses[TP_MAX_PARTS];
    float *logits[TP_MAX_PARTS];
    int64_t logit_counts[TP_MAX_PARTS];
    float *grad;
} forward_result;

static forward_result run(tp_model *model, const tp_batch *host, int targets_only)
{
    forward_result r = {0};
    tp_ctx ctx;
    tp_ctx_init(&ctx, &tp_cpu_backend, 1 << 20);
    ctx.record = 1;
    ctx.training = 1;
    tp_params_zero_grad(&model->params);
    tp_model_batch batch = tp_model_batch_upload(&ctx, host);
    batch.targets_only = targets_only;
    tp_model_output out;
    CHECK_MSG(tp_model_forward(model, &ctx, &batch, &out) == 0, "%s", tp_last_error());
    r.hidden_rows = tp_rows(out.hidden);
    for (int i = 0; i < model->target_count; i++) {
        r.losses[i] = out.results[i].loss->data[0];
        r.logit_counts[i] = tp_numel(out.results[i].logits);
        r.logits[i] = tp_xmalloc((size_t)r.logit_counts[i] * sizeof(float));
        memcpy(r.logits[i], out.results[i].logits->data, (size_t)r.logit_counts[i] * sizeof(float));
    }
    tp_backward(&ctx, out.loss);
    r.grad = tp_xmalloc((size_t)model->params.total * sizeof(float));
    memcpy(r.grad, model->params.grad, (size_t)model->params.total * sizeof(float));
    tp_ctx_free(&ctx);
    return r;
}

static void free_result(forward_result *r, int targets)
{
    for (int i = 0; i < targets; i++)
        free(r->logits[i]);
    free(r->grad);
}

static double largest_magnitude(const float *x, int64_t n)
{
    double largest = 0;
    for (int64_t i = 0; i < n; i++)
        largest = fmax(largest, fabs(x[i]));
    return largest;
}

/* Largest difference relative to the largest magnitude of `full`, or to `floor` when that is larger (the
 * key bias's gradient is zero but for rounding: softmax ignores what it adds to a query's every score). */
static double relative_difference(const float *full, const float *kept, int64_t n, double floor)
{
    double difference = 0;
    for (int64_t i = 0; i < n; i++)
        difference = fmax(difference, fabs((double)full[i] - kept[i]));
    double scale = fmax(largest_magnitude(full, n), floor);
    return scale > 0 ? difference / scale : difference;
}

/* The model config `extra` (merged into a 2-layer width-16 BERT with emb_size) run both ways; kept_rows: the encoder
 * output's rows expected with targets_only (BATCH * SEQ where every row must be kept). */
static void check_case(const char *name, int emb_size, const char *extra, int64_t kept_rows)
{
    char json[1024];
    snprintf(json, sizeof json,
             "{\"emb_size\": %d, \"hidden_size\": 16, \"feedforward_size\": 32, \"heads_num\": 2, \"layers_num\": 2, "
             "\"max_seq_length\": %d, \"dropout\": 0.0, \"embedding\": [\"word\", \"pos\", \"seg\"], "
             "\"encoder\": \"transformer\", %s}",
             emb_size, SEQ, extra);
    tp_config *config = tp_config_parse(name, json);
    tp_model model;
    int built = config && tp_model_build(&model, config, VOCAB) == 0 && tp_config_check_unused(config) == 0;
    CHECK_MSG(built, "%s: %s", name, tp_last_error());
    if (!built) return;
    tp_model_allocate(&model, &tp_cpu_backend, 7);
    tp_batch batch = make_batch();
    forward_result full = run(&model, &batch, 0), kept = run(&model, &batch, 1);
    CHECK_MSG(full.hidden_rows == BATCH * SEQ && kept.hidden_rows == kept_rows,
              "%s: %lld and %lld rows of output, expected %d and %lld", name, (long long)full.hidden_rows,
              (long long)kept.hidden_rows, BATCH * SEQ, (long long)kept_rows);
    for (int i = 0; i < model.target_count; i++) {
        CHECK_MSG(tp_close(kept.losses[i], full.losses[i], 1e-6, 1e-7), "%s: %s loss %.9g, full forward %.9g", name,
                  tp_model_target_name(&model, i), kept.losses[i], full.losses[i]);
        CHECK(kept.logit_counts[i] == full.logit_counts[i]);
        if (kept.logit_counts[i] == full.logit_counts[i])
            CHECK_MSG(relative_difference(full.logits[i], kept.logits[i], full.logit_counts[i], 0) < 1e-6,
                      "%s: %s logits differ", name, tp_model_target_name(&model, i));
    }
    double largest_grad = largest_magnitude(full.grad, model.params.total);
    for (int64_t p = 0; p < model.params.count; p++) {
        const tp_param *param = model.params.items[p];
        int64_t n = tp_numel(&param->tensor);
        double difference =
            relative_difference(full.grad + param->offset, kept.grad + param->offset, n, 1e-3 * largest_grad);
        CHECK_MSG(difference < 1e-5, "%s: gradient of %s differs by %.3g of its largest", name, param->name,
                  difference);
    }
    free_result(&full, model.target_count);
    free_result(&kept, model.target_count);
    tp_model_free(&model);
    tp_config_free(config);
}

/* The plan tp_model_batch_upload makes for make_batch(). */
static void check_plan(void)
{
    tp_ctx ctx;
    tp_ctx_init(&ctx, &tp_cpu_backend, 1 << 20);
    tp_batch host = make_batch();
    tp_model_batch batch = tp_model_batch_upload(&ctx, &host);
    static const int32_t rows[] = {0, 2, 5, 7, 8, 9, 12, 8, 16, 18, 16, 16}; /* padded with each first row */
    static const int32_t first[] = {0, 4, 8}, last[] = {3, 6, 9}, masked[] = {1, 2, 5};
    CHECK_MSG(batch.marked_per_seq == 4, "%lld marked rows per sequence", (long long)batch.marked_per_seq);
    if (batch.marked_per_seq == 4) {
        CHECK(!memcmp(batch.marked_rows, rows, sizeof rows));
        CHECK(!memcmp(batch.marked_first_rows, first, sizeof first));
        CHECK(!memcmp(batch.marked_last_rows, last, sizeof last));
        CHECK(!memcmp(batch.marked_mlm_positions, masked, sizeof masked));
    }
    CHECK(batch.keep_rows == NULL && batch.targets_only == 0); /* the caller's and the model's to set */
    /* Every row marked: no plan. */
    static int32_t every[BATCH * SEQ], every_label[BATCH * SEQ];
    for (int i = 0; i < BATCH * SEQ; i++)
        every[i] = i, every_label[i] = 5;
    host.mlm_positions = every;
    host.mlm_labels = every_label;
    host.mlm_count = BATCH * SEQ;
    CHECK(tp_model_batch_upload(&ctx, &host).marked_per_seq == 0);
    tp_ctx_free(&ctx);
}

int main(void)
{
    check_plan();
    const int64_t kept = BATCH * 4, every = BATCH * SEQ;
    check_case("bert", 16, "\"target\": [\"mlm\", \"sp\"], \"tie_weights\": true", kept);
    check_case("pre-LN", 16, "\"target\": [\"mlm\", \"sp\"], \"layernorm_positioning\": \"pre\"", kept);
    check_case("albert", 8,
               "\"target\": [\"mlm\", \"sp\"], \"factorized_embedding_parameterization\": true, "
               "\"parameter_sharing\": true",
               kept);
    check_case("cls, first", 16, "\"target\": [\"cls\"], \"labels_num\": 3, \"pooling\": \"first\"", kept);
    check_case("cls, last", 16, "\"target\": [\"cls\"], \"labels_num\": 3, \"pooling\": \"last\"", kept);
    check_case("cls, mean", 16, "\"target\": [\"cls\"], \"labels_num\": 3, \"pooling\": \"mean\"", every);
    check_case("causal", 16, "\"target\": [\"mlm\"], \"mask\": \"causal\"", every);
    return tp_test_finish("test_marked_rows");
}
