/* The fixed sinusoidal position table of "sinusoidalpos" (source and target side alike). */
#include <math.h>
#include <string.h>

#include "layers.h"

/* Row `position` of the table, width columns: frequencies w_k = 10000^(-2k/width), computed in
 * double (transformers' PegasusSinusoidalPositionalEmbedding does so with numpy) and rounded. */
static void sinusoid_row(float *out, int64_t position, int64_t width, int interleaved)
{
    int64_t sines = (width + 1) / 2;
    for (int64_t k = 0; k < sines; k++) {
        double angle = (double)position / pow(10000.0, (double)(2 * k) / (double)width);
        int64_t sine = interleaved ? 2 * k : k, cosine = interleaved ? 2 * k + 1 : sines + k;
        out[sine] = (float)sin(angle);
        if (cosine < width) out[cosine] = (float)cos(angle);
    }
}

void *tp_sinusoid_embedding_create(tp_build *build)
{
    static const char *const layouts[] = {"interleaved", "split", NULL};
    int layout = 0;
    if (tp_config_enum(build->config, "sinusoidalpos_layout", "interleaved", layouts, &layout) < 0) return NULL;
    tp_sinusoid_embedding *self = tp_xmalloc(sizeof *self);
    self->rows = build->hp->max_seq_length;
    self->width = build->hp->emb_size;
    self->interleaved = layout == 0;
    self->table = tp_xmalloc((size_t)(self->rows * self->width) * sizeof *self->table);
    for (int64_t p = 0; p < self->rows; p++)
        sinusoid_row(self->table + p * self->width, p, self->width, self->interleaved);
    return self;
}

tp_tensor *tp_sinusoid_embedding_forward(const tp_sinusoid_embedding *self, tp_ctx *ctx, int64_t batch, int64_t seq)
{
    int64_t width = self->width;
    float *host = tp_arena_alloc(&ctx->host_arena, (size_t)(batch * seq * width) * sizeof *host);
    for (int64_t p = 0; p < seq; p++) {
        float *row = host + p * width;
        if (p < self->rows)
            memcpy(row, self->table + p * width, (size_t)width * sizeof *row);
        else
            sinusoid_row(row, p, width, self->interleaved); /* beyond max_seq_length (generation): computed */
    }
    for (int64_t b = 1; b < batch; b++) memcpy(host + b * seq * width, host, (size_t)(seq * width) * sizeof *host);
    tp_tensor *out = tp_empty_2d(ctx, batch * seq, width);
    ctx->backend->upload(out->data, host, (size_t)(batch * seq * width) * sizeof *host);
    return out;
}

void tp_sinusoid_embedding_destroy(void *self)
{
    tp_sinusoid_embedding *sinusoid = self;
    free(sinusoid->table);
    free(sinusoid);
}
