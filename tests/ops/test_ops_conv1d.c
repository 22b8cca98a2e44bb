/* Op tests for tp_conv1d: torch.nn.Conv1d's definition evaluated directly in double (no
 * unfolding) for the forward, central finite differences for the gradients of the input, the
 * weight and the bias; strides 2 and 1, padding on both sides and none, odd lengths. */
#include "core/ops.h"
#include "support/check.h"
#include "support/gradcheck.h"

static const tp_backend *const backend = &tp_cpu_backend;
static const tp_gradcheck_options fd_options = {.step = TP_GRADIENT_STEP, .max_elements = 0, .seed = 47};

typedef struct {
    int64_t batch, length, channels, out_channels, kernel, stride, padding;
} conv_case;

static tp_tensor *conv_fn(tp_ctx *ctx, tp_tensor *const *in, void *user)
{
    const conv_case *c = user;
    return tp_conv1d(ctx, in[0], in[1], in[2], c->batch, c->stride, c->padding);
}

/* out[b, t, o] = bias[o] + sum_{c, j} weight[o, c, j] x[b, t*stride - padding + j, c] */
static int64_t conv_reference(const conv_case *c, const tp_tensor *x, const tp_tensor *w, const tp_tensor *bias,
                              double *out)
{
    int64_t out_length = (c->length + 2 * c->padding - c->kernel) / c->stride + 1;
    for (int64_t b = 0; b < c->batch; b++)
        for (int64_t t = 0; t < out_length; t++)
            for (int64_t o = 0; o < c->out_channels; o++) {
                double sum = bias->data[o];
                for (int64_t ch = 0; ch < c->channels; ch++)
                    for (int64_t j = 0; j < c->kernel; j++) {
                        int64_t i = t * c->stride - c->padding + j;
                        if (i < 0 || i >= c->length) continue;
                        sum += (double)w->data[(o * c->channels + ch) * c->kernel + j] *
                               x->data[(b * c->length + i) * c->channels + ch];
                    }
                out[(b * out_length + t) * c->out_channels + o] = sum;
            }
    return out_length;
}

static void run_case(tp_ctx *ctx, const conv_case *c, const char *what)
{
    const int64_t x_shape[2] = {c->batch * c->length, c->channels};
    const int64_t w_shape[3] = {c->out_channels, c->channels, c->kernel};
    tp_tensor *in[3] = {tp_test_tensor(backend, 2, x_shape, 11, 0, 1), tp_test_tensor(backend, 3, w_shape, 12, 0, 0.5),
                        tp_test_tensor(backend, 1, &c->out_channels, 13, 0, 0.5)};
    double expected[4096];
    tp_ctx_reset(ctx);
    tp_tensor *out = conv_fn(ctx, in, (void *)c);
    int64_t out_length = conv_reference(c, in[0], in[1], in[2], expected);
    CHECK(out->ndim == 2 && out->shape[0] == c->batch * out_length && out->shape[1] == c->out_channels);
    CHECK(tp_forward_ok(out->data, expected, tp_numel(out), what));
    tp_gradcheck_result r = tp_gradcheck(ctx, conv_fn, (void *)c, in, 3, &fd_options);
    CHECK(tp_gradcheck_ok(&r, TP_GRADIENT_TOLERANCE, what));
    for (int i = 0; i < 3; i++) tp_test_tensor_free(backend, in[i]);
}

int main(void)
{
    tp_ctx ctx;
    tp_ctx_init(&ctx, backend, 1 << 20);
    const conv_case subsampler = {2, 11, 3, 4, 5, 2, 2}, unpadded = {3, 7, 2, 3, 3, 1, 0};
    run_case(&ctx, &subsampler, "conv1d k5 s2 p2");
    run_case(&ctx, &unpadded, "conv1d k3 s1 p0");
    tp_ctx_free(&ctx);
    return tp_test_finish("test_ops_conv1d");
}
