/* Op tests for tp_pool: mean and max over each sequence's real tokens (padding and a sequence
 * with no real token included), forward against a plain double reference, backward against
 * central finite differences. */
#include <float.h>

#include "core/ops.h"
#include "support/check.h"
#include "support/gradcheck.h"

static const tp_backend *const backend = &tp_cpu_backend;
static const tp_gradcheck_options fd_options = {.step = TP_GRADIENT_STEP, .max_elements = 0, .seed = 43};

#define BATCH 3
#define SEQ 4
#define COLS 5

/* Row 0: 3 real tokens; row 1: all real; row 2: none. */
static const int32_t valid[BATCH * SEQ] = {1, 1, 0, 1, 2, 2, 1, 1, 0, 0, 0, 0};

typedef struct {
    tp_pool_kind kind;
} pool_case;

static tp_tensor *pool_fn(tp_ctx *ctx, tp_tensor *const *in, void *user)
{
    const pool_case *c = user;
    return tp_pool(ctx, in[0], c->kind, valid, BATCH, SEQ);
}

static void pool_reference(const tp_tensor *x, tp_pool_kind kind, double *out)
{
    for (int b = 0; b < BATCH; b++)
        for (int c = 0; c < COLS; c++) {
            double sum = 0, max = -DBL_MAX;
            int count = 0;
            for (int s = 0; s < SEQ; s++) {
                if (!valid[b * SEQ + s]) continue;
                double value = x->data[(b * SEQ + s) * COLS + c];
                sum += value;
                max = value > max ? value : max;
                count++;
            }
            out[b * COLS + c] = count == 0 ? 0.0 : kind == TP_POOL_MEAN ? sum / count : max;
        }
}

int main(void)
{
    tp_ctx ctx;
    tp_ctx_init(&ctx, backend, 1 << 16);
    const int64_t shape[2] = {BATCH * SEQ, COLS};
    tp_tensor *x = tp_test_tensor(backend, 2, shape, 5, 0, 1);
    static const char *const names[] = {"mean pooling", "max pooling"};
    for (int kind = TP_POOL_MEAN; kind <= TP_POOL_MAX; kind++) {
        pool_case c = {(tp_pool_kind)kind};
        double expected[BATCH * COLS];
        tp_ctx_reset(&ctx);
        tp_tensor *out = pool_fn(&ctx, &x, &c);
        CHECK(out->ndim == 2 && out->shape[0] == BATCH && out->shape[1] == COLS);
        pool_reference(x, c.kind, expected);
        CHECK(tp_forward_ok(out->data, expected, BATCH * COLS, names[kind]));
        tp_gradcheck_result r = tp_gradcheck(&ctx, pool_fn, &c, &x, 1, &fd_options);
        CHECK(tp_gradcheck_ok(&r, TP_GRADIENT_TOLERANCE, names[kind]));
    }
    tp_test_tensor_free(backend, x);
    tp_ctx_free(&ctx);
    return tp_test_finish("test_ops_pool");
}
