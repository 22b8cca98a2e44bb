/* Op tests for tp_embedding and tp_gather_rows with repeated ids: forward against plain row
 * copies, backward against central finite differences (a repeated row sums its gradients). */
#include "core/ops.h"
#include "support/check.h"
#include "support/gradcheck.h"

static const tp_backend *const backend = &tp_cpu_backend;
static const tp_gradcheck_options fd_options = {.step = TP_GRADIENT_STEP, .max_elements = 0, .seed = 41};

typedef struct {
    const int32_t *ids;
    int64_t n;
} gather_case;

static tp_tensor *embedding_fn(tp_ctx *ctx, tp_tensor *const *in, void *user)
{
    const gather_case *c = user;
    return tp_embedding(ctx, in[0], c->ids, c->n);
}

static tp_tensor *gather_rows_fn(tp_ctx *ctx, tp_tensor *const *in, void *user)
{
    const gather_case *c = user;
    return tp_gather_rows(ctx, in[0], c->ids, c->n);
}

/* out[i, :] = table viewed as [rows, cols] at row ids[i] */
static void gather_reference(const tp_tensor *table, const gather_case *c, double *out)
{
    int64_t cols = tp_cols(table);
    for (int64_t i = 0; i < c->n; i++)
        for (int64_t j = 0; j < cols; j++) out[i * cols + j] = table->data[c->ids[i] * cols + j];
}

static void check_gather(tp_ctx *ctx, tp_gradcheck_fn fn, tp_tensor *table, const gather_case *c, const char *what)
{
    double expected[64];
    int64_t cols = tp_cols(table);
    tp_ctx_reset(ctx);
    tp_tensor *out = fn(ctx, &table, (void *)c);
    CHECK(out->ndim == 2 && out->shape[0] == c->n && out->shape[1] == cols);
    gather_reference(table, c, expected);
    CHECK(tp_forward_ok(out->data, expected, c->n * cols, what));
    tp_gradcheck_result r = tp_gradcheck(ctx, fn, (void *)c, &table, 1, &fd_options);
    CHECK(tp_gradcheck_ok(&r, TP_GRADIENT_TOLERANCE, what));
}

int main(void)
{
    tp_ctx ctx;
    tp_ctx_init(&ctx, backend, 1 << 16);
    const int32_t ids[6] = {3, 1, 3, 0, 5, 3}, rows[4] = {5, 0, 5, 2};
    const int64_t table_shape[2] = {6, 5}, x_shape[3] = {2, 3, 4};
    tp_tensor *table = tp_test_tensor(backend, 2, table_shape, 1, 0, 1);
    tp_tensor *x = tp_test_tensor(backend, 3, x_shape, 2, 0, 1);

    const gather_case host_ids = {ids, 6}, row_ids = {rows, 4};
    check_gather(&ctx, embedding_fn, table, &host_ids, "embedding, host ids");
    check_gather(&ctx, gather_rows_fn, x, &row_ids, "gather_rows of a 3-D tensor");

    /* Ids uploaded into the arena, as models pass them. */
    tp_ctx_reset(&ctx);
    gather_case arena_ids = {tp_ids_upload(&ctx, ids, 6), 6};
    double expected[30];
    gather_reference(table, &arena_ids, expected);
    CHECK(tp_forward_ok(embedding_fn(&ctx, &table, &arena_ids)->data, expected, 30, "embedding, arena ids"));

    tp_test_tensor_free(backend, table);
    tp_test_tensor_free(backend, x);
    tp_ctx_free(&ctx);
    return tp_test_finish("test_ops_gather");
}
