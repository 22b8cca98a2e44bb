/* The fixed sinusoidal position tables: TencentPretrain's / Pegasus's "sinusoidalpos" and fairseq's
 * "fairseq_sinusoidalpos" (source and target side alike), one row function for all three layouts. */
#include <math.h>
#include <string.h>

#include "layers.h"

/* Row `position` of the table, width columns, computed in double and rounded.
 *  - interleaved / split: w_k = 10000^(-2k/width) for k < ceil(width/2) (transformers'
 *    PegasusSinusoidalPositionalEmbedding computes it so with numpy); sin and cos in columns 2k and
 *    2k+1, or the sines first and the cosines after them.
 *  - fairseq: h = floor(width/2) frequencies w_i = exp(-i ln(10000) / (h - 1)) (Speech2Text's
 *    formula, kept as written: exp and pow round differently), sines then cosines, a zero last
 *    column when width is odd. */
static void sinusoid_row(float *out, int64_t position, int64_t width, tp_sinusoid_layout layout)
{
    if (layout == TP_SINUSOID_FAIRSEQ) {
        int64_t half = width / 2;
        for (int64_t i = 0; i < half; i++) {
            double angle = (double)position * exp((double)i * -log(10000.0) / (double)(half - 1));
            out[i] = (float)sin(angle);
            out[half + i] = (float)cos(angle);
        }
        if (width % 2) out[width - 1] = 0.0f;
        return;
    }
    int64_t sines = (width + 1) / 2;
    for (int64_t k = 0; k < sines; k++) {
        double angle = (double)position / pow(10000.0, (double)(2 * k) / (double)width);
        int interleaved = layout == TP_SINUSOID_INTERLEAVED;
        int64_t sine = interleaved ? 2 * k : k, cosine = interleaved ? 2 * k + 1 : sines + k;
        out[sine] = (float)sin(angle);
        if (cosine < width) out[cosine] = (float)cos(angle);
    }
}

void *tp_sinusoid_embedding_create(tp_build *build, tp_sinusoid_layout layout)
{
    if (layout != TP_SINUSOID_FAIRSEQ) {
        static const char *const layouts[] = {"interleaved", "split", NULL};
        int chosen = 0;
        if (tp_config_enum(build->config, "sinusoidalpos_layout", "interleaved", layouts, &chosen) < 0) return NULL;
        layout = chosen == 0 ? TP_SINUSOID_INTERLEAVED : TP_SINUSOID_SPLIT;
    } else if (build->hp->emb_size < 4) {
        tp_fail("%s: key 'emb_size': %lld columns; sinusoidal positions need at least 4", tp_config_name(build->config),
                (long long)build->hp->emb_size);
        return NULL;
    }
    tp_sinusoid_embedding *self = tp_xmalloc(sizeof *self);
    self->rows = build->hp->max_seq_length;
    self->width = build->hp->emb_size;
    self->layout = layout;
    self->offset = layout == TP_SINUSOID_FAIRSEQ ? build->hp->position_offset : 0;
    self->table = tp_xmalloc((size_t)(self->rows * self->width) * sizeof *self->table);
    for (int64_t p = 0; p < self->rows; p++)
        sinusoid_row(self->table + p * self->width, p + self->offset, self->width, self->layout);
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
            sinusoid_row(row, p + self->offset, width, self->layout); /* beyond max_seq_length (generation) */
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
