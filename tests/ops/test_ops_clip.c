/* Op tests for CLIP's contrastive head (TencentPretrain's clr target, Hugging Face's CLIPModel):
 * tp_l2_normalize (x / x.norm(dim=-1)) and tp_scale_exp (exp(logit_scale) * x) against plain double
 * references and central finite differences, and the whole symmetric loss built from them,
 *   logits = exp(s) * normalize(a) normalize(b)^T,  loss = (CE(logits, arange) + CE(logits^T, arange)) / 2,
 * with its value against a double reference and its gradients in a, b and s against finite
 * differences; the same loss with a and b through tp_all_gather_rows on a world of one (the
 * data-parallel clr target's gather: a copy whose backward adds grad_scale times the output's
 * gradient) gives the same value and passes the finite differences with grad_scale 1, and its
 * gradients in a and b with grad_scale 3 are 3 times those. */
#include <math.h>
#include <string.h>

#include "core/distributed.h"
#include "core/ops.h"
#include "support/check.h"
#include "support/gradcheck.h"

static const tp_backend *const backend = &tp_cpu_backend;
static const tp_gradcheck_options fd_options = {.step = TP_GRADIENT_STEP, .max_elements = 0, .seed = 47};

#define ROWS 4
#define COLS 6

static tp_tensor *normalize_fn(tp_ctx *ctx, tp_tensor *const *in, void *user)
{
    (void)user;
    return tp_l2_normalize(ctx, in[0]);
}

static tp_tensor *scale_exp_fn(tp_ctx *ctx, tp_tensor *const *in, void *user)
{
    (void)user;
    return tp_scale_exp(ctx, in[0], in[1]);
}

static const int32_t diagonal[ROWS] = {0, 1, 2, 3};

/* The clr loss of features a, b [ROWS, COLS] and the logit scale s. */
static tp_tensor *clr_loss_fn(tp_ctx *ctx, tp_tensor *const *in, void *user)
{
    (void)user;
    tp_tensor *a = tp_l2_normalize(ctx, in[0]), *b = tp_l2_normalize(ctx, in[1]);
    int32_t *targets = tp_arena_alloc(&ctx->arena, sizeof diagonal);
    ctx->backend->upload(targets, diagonal, sizeof diagonal);
    tp_tensor *per_a = tp_cross_entropy(ctx, tp_scale_exp(ctx, tp_linear(ctx, a, b, NULL), in[2]), targets, ROWS, NULL,
                                        NULL);
    tp_tensor *per_b = tp_cross_entropy(ctx, tp_scale_exp(ctx, tp_linear(ctx, b, a, NULL), in[2]), targets, ROWS, NULL,
                                        NULL);
    return tp_scale(ctx, tp_add(ctx, per_a, per_b), 0.5f);
}

/* clr_loss_fn with a and b gathered over a world of one, backward scaled by *(float *)user. */
static tp_tensor *gathered_loss_fn(tp_ctx *ctx, tp_tensor *const *in, void *user)
{
    tp_comm *comm = tp_comm_open(0);
    float grad_scale = *(const float *)user;
    tp_tensor *gathered[3] = {tp_all_gather_rows(ctx, in[0], comm, grad_scale, "a"),
                              tp_all_gather_rows(ctx, in[1], comm, grad_scale, "b"), in[2]};
    return clr_loss_fn(ctx, gathered, NULL);
}

/* The tape gradients of gathered_loss_fn in a and b (ROWS * COLS each) with grad_scale. */
static void gathered_gradients(tp_ctx *ctx, tp_tensor *const *inputs, float grad_scale, float *grads)
{
    tp_ctx_reset(ctx);
    ctx->record = 1;
    tp_backward(ctx, gathered_loss_fn(ctx, inputs, &grad_scale));
    memcpy(grads, inputs[0]->grad, sizeof(float) * ROWS * COLS);
    memcpy(grads + ROWS * COLS, inputs[1]->grad, sizeof(float) * ROWS * COLS);
    for (int i = 0; i < 3; i++) inputs[i]->grad = NULL; /* the arena's */
    ctx->record = 0;
}

static void normalized_reference(const float *x, double *out)
{
    for (int r = 0; r < ROWS; r++) {
        double norm = 0;
        for (int c = 0; c < COLS; c++) norm += (double)x[r * COLS + c] * x[r * COLS + c];
        for (int c = 0; c < COLS; c++) out[r * COLS + c] = x[r * COLS + c] / sqrt(norm);
    }
}

/* The symmetric contrastive loss in double. */
static double clr_loss_reference(const float *a, const float *b, double s)
{
    double na[ROWS * COLS], nb[ROWS * COLS], logits[ROWS][ROWS], loss = 0;
    normalized_reference(a, na);
    normalized_reference(b, nb);
    for (int i = 0; i < ROWS; i++)
        for (int j = 0; j < ROWS; j++) {
            logits[i][j] = 0;
            for (int c = 0; c < COLS; c++) logits[i][j] += na[i * COLS + c] * nb[j * COLS + c];
            logits[i][j] *= exp(s);
        }
    for (int i = 0; i < ROWS; i++) {
        double by_row = 0, by_column = 0;
        for (int j = 0; j < ROWS; j++) by_row += exp(logits[i][j]), by_column += exp(logits[j][i]);
        loss += (log(by_row) - logits[i][i]) + (log(by_column) - logits[i][i]);
    }
    return loss / (2.0 * ROWS);
}

int main(void)
{
    tp_ctx ctx;
    tp_ctx_init(&ctx, backend, 1 << 16);
    const int64_t shape[2] = {ROWS, COLS}, one[1] = {1};
    tp_tensor *a = tp_test_tensor(backend, 2, shape, 5, 0, 1), *b = tp_test_tensor(backend, 2, shape, 6, 0.3, 1);
    tp_tensor *s = tp_test_tensor(backend, 1, one, 7, log(1 / 0.07) / 2, 0.1); /* moderate: the loss stays smooth */

    double expected[ROWS * COLS];
    tp_ctx_reset(&ctx);
    tp_tensor *normalized = normalize_fn(&ctx, &a, NULL);
    normalized_reference(a->data, expected);
    CHECK(tp_forward_ok(normalized->data, expected, ROWS * COLS, "l2_normalize"));
    tp_gradcheck_result r = tp_gradcheck(&ctx, normalize_fn, NULL, &a, 1, &fd_options);
    CHECK(tp_gradcheck_ok(&r, TP_GRADIENT_TOLERANCE, "l2_normalize"));

    tp_tensor *scaled_inputs[2] = {a, s};
    tp_ctx_reset(&ctx);
    tp_tensor *scaled = scale_exp_fn(&ctx, scaled_inputs, NULL);
    for (int i = 0; i < ROWS * COLS; i++) expected[i] = exp((double)s->data[0]) * a->data[i];
    CHECK(tp_forward_ok(scaled->data, expected, ROWS * COLS, "scale_exp"));
    r = tp_gradcheck(&ctx, scale_exp_fn, NULL, scaled_inputs, 2, &fd_options);
    CHECK(tp_gradcheck_ok(&r, TP_GRADIENT_TOLERANCE, "scale_exp (x and s)"));

    tp_tensor *loss_inputs[3] = {a, b, s};
    tp_ctx_reset(&ctx);
    tp_tensor *loss = clr_loss_fn(&ctx, loss_inputs, NULL);
    double expected_loss = clr_loss_reference(a->data, b->data, s->data[0]);
    CHECK(tp_forward_ok(loss->data, &expected_loss, 1, "clr loss"));
    r = tp_gradcheck(&ctx, clr_loss_fn, NULL, loss_inputs, 3, &fd_options);
    CHECK(tp_gradcheck_ok(&r, TP_GRADIENT_TOLERANCE, "clr loss (a, b, logit_scale)"));

    float unscaled = 1.0f;
    tp_ctx_reset(&ctx);
    loss = gathered_loss_fn(&ctx, loss_inputs, &unscaled);
    CHECK(tp_forward_ok(loss->data, &expected_loss, 1, "clr loss of gathered features"));
    r = tp_gradcheck(&ctx, gathered_loss_fn, &unscaled, loss_inputs, 3, &fd_options);
    CHECK(tp_gradcheck_ok(&r, TP_GRADIENT_TOLERANCE, "clr loss of gathered features (a, b, logit_scale)"));
    float grads[2 * ROWS * COLS], scaled_grads[2 * ROWS * COLS];
    gathered_gradients(&ctx, loss_inputs, 1.0f, grads);
    gathered_gradients(&ctx, loss_inputs, 3.0f, scaled_grads);
    int tripled = 1;
    for (int i = 0; i < 2 * ROWS * COLS; i++) tripled &= scaled_grads[i] == 3.0f * grads[i];
    CHECK_MSG(tripled, "tp_all_gather_rows with grad_scale 3: the gradients are not 3 times grad_scale 1's");

    tp_test_tensor_free(backend, a), tp_test_tensor_free(backend, b), tp_test_tensor_free(backend, s);
    tp_ctx_free(&ctx);
    return tp_test_finish("test_ops_clip");
}
