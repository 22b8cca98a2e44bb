#include "sinusoidal.h"

#include <math.h>
#include <string.h>

void *tp_fairseq_sinusoid_create(tp_build *build, const char *prefix)
{
    (void)prefix;
    if (build->hp->emb_size < 4) {
        tp_fail("%s: key 'emb_size': %lld columns; sinusoidal positions need at least 4", tp_config_name(build->config),
                (long long)build->hp->emb_size);
        return NULL;
    }
    tp_fairseq_sinusoid *table = tp_xmalloc(sizeof *table);
    table->offset = build->hp->position_offset;
    table->dim = build->hp->emb_size;
    return table;
}

tp_tensor *tp_fairseq_sinusoid_positions(tp_ctx *ctx, const tp_fairseq_sinusoid *table, int64_t batch, int64_t seq)
{
    int64_t dim = table->dim, half = dim / 2;
    float *host = tp_arena_alloc(&ctx->host_arena, (size_t)(batch * seq * dim) * sizeof *host);
    for (int64_t s = 0; s < seq; s++) {
        float *row = host + s * dim;
        for (int64_t i = 0; i < half; i++) {
            double angle = (double)(s + table->offset) * exp((double)i * -log(10000.0) / (double)(half - 1));
            row[i] = (float)sin(angle);
            row[half + i] = (float)cos(angle);
        }
        if (dim % 2) row[dim - 1] = 0.0f;
    }
    for (int64_t b = 1; b < batch; b++) memcpy(host + b * seq * dim, host, (size_t)(seq * dim) * sizeof *host);
    tp_tensor *t = tp_arena_alloc(&ctx->host_arena, sizeof *t);
    memset(t, 0, sizeof *t);
    t->ndim = 2;
    t->shape[0] = batch * seq;
    t->shape[1] = dim;
    t->data = tp_floats_upload(ctx, host, batch * seq * dim);
    return t;
}
