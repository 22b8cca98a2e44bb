/* "speech": TencentPretrain's SpeechEmbedding (Hugging Face's Conv1dSubsampler): conv_layers_num
 * 1-D convolutions over time, each with stride 2 and padding kernel / 2 and followed by a GLU over
 * its channels (first half times the sigmoid of the second half), from audio_feature_size input
 * features through conv_channels (conv_channels / 2 after the GLU) to 2 * emb_size (emb_size after
 * the last GLU).  Each layer halves the frames: seq_length = subsampled audio_frames.
 * Parameters (TencentPretrain's names, torch's layout): embedding.speech.conv.conv_layers.<i>.weight
 * [out, in, kernel] and .bias [out].  Keys: conv_layers_num (2), audio_feature_size (80),
 * conv_channels (1024), conv_kernel_sizes ([5, 5], one per layer): TencentPretrain's defaults.
 * With the tp extension `scale_embedding` (core/model.h) the output is multiplied by sqrt(emb_size),
 * as Hugging Face's Speech2Text encoder does (TencentPretrain's SpeechEmbedding does not scale).
 *
 * The GLU is composed from ops: the two halves are two convolutions with the row halves of the
 * weight and bias (views sharing their data and gradient), and a * sigmoid(g) is computed as
 * (a + a tanh(g / 2)) / 2, which needs no sigmoid op. */
#include <math.h>
#include <stdio.h>

#include "core/preprocess_s2t.h"
#include "modules/layers/layers.h"

#define SPEECH_MAX_CONV_LAYERS 8

typedef struct speech_conv {
    tp_tensor *weight, *bias;
} speech_conv;

typedef struct speech_embedding {
    int layers_num;
    int64_t feature_size;
    float scale;
    speech_conv layers[SPEECH_MAX_CONV_LAYERS];
} speech_embedding;

static int read_keys(tp_build *build, int64_t *layers_num, int64_t *features, int64_t *channels, int64_t *kernels)
{
    const char *file = tp_config_name(build->config);
    int kernel_count = 0;
    if (tp_config_int(build->config, "conv_layers_num", 2, 1, SPEECH_MAX_CONV_LAYERS, layers_num) < 0 ||
        tp_config_int(build->config, "audio_feature_size", 80, 1, 1 << 16, features) < 0 ||
        tp_config_int(build->config, "conv_channels", 1024, 2, 1 << 20, channels) < 0 ||
        tp_config_ints(build->config, "conv_kernel_sizes", 1, 1023, kernels, SPEECH_MAX_CONV_LAYERS, &kernel_count) < 0)
        return -1;
    tp_config_ignore(build->config, "max_audio_frames"); /* TencentPretrain's sinusoid table size: tp computes rows */
    /* The data-side keys (audio_preprocess, specaugment) are checked wherever the model is built,
     * so that every program accepts a config with them and refuses a wrong one. */
    tp_s2t_geometry data_keys;
    if (tp_s2t_geometry_of(build->config, &data_keys) < 0) return -1;
    if (kernel_count == 0)
        for (; kernel_count < *layers_num; kernel_count++) kernels[kernel_count] = 5;
    if (kernel_count != *layers_num)
        return tp_fail("%s: key 'conv_kernel_sizes': %d kernel sizes for conv_layers_num %lld", file, kernel_count,
                       (long long)*layers_num);
    if (*channels % 2)
        return tp_fail("%s: key 'conv_channels': %lld is odd; the GLU halves it", file, (long long)*channels);
    return 0;
}

static void *speech_create(tp_build *build, const char *prefix)
{
    int64_t layers_num = 0, features = 0, channels = 0, kernels[SPEECH_MAX_CONV_LAYERS];
    if (read_keys(build, &layers_num, &features, &channels, kernels) < 0) return NULL;
    speech_embedding *self = tp_xcalloc(1, sizeof *self);
    int64_t emb = build->hp->emb_size;
    self->layers_num = (int)layers_num;
    self->feature_size = features;
    self->scale = build->hp->scale_embedding ? sqrtf((float)emb) : 1.0f;
    for (int i = 0; i < self->layers_num; i++) {
        char name[TP_NAME_MAX];
        int64_t out = i < self->layers_num - 1 ? channels : 2 * emb;
        int64_t shape[3] = {out, i == 0 ? features : channels / 2, kernels[i]};
        snprintf(name, sizeof name, "%s.conv.conv_layers.%d.weight", prefix, i);
        self->layers[i].weight = tp_param_new(build->params, name, 3, shape, TP_INIT_NORMAL);
        snprintf(name, sizeof name, "%s.conv.conv_layers.%d.bias", prefix, i);
        self->layers[i].bias = tp_param_new(build->params, name, 1, &out, TP_INIT_NORMAL);
    }
    return self;
}

/* Rows [first, first + count) of a parameter along its first dimension, sharing data and gradient. */
static tp_tensor *row_slice(tp_ctx *ctx, const tp_tensor *t, int64_t first, int64_t count)
{
    tp_tensor *view = tp_arena_alloc(&ctx->host_arena, sizeof *view);
    int64_t row = tp_numel(t) / t->shape[0];
    *view = *t;
    view->shape[0] = count;
    view->data = t->data + first * row;
    view->grad = t->grad ? t->grad + first * row : NULL;
    return view;
}

static tp_tensor *conv_glu(tp_ctx *ctx, const speech_conv *conv, tp_tensor *x, int64_t batch)
{
    int64_t half = conv->weight->shape[0] / 2, kernel = conv->weight->shape[2];
    tp_tensor *a = tp_conv1d(ctx, x, row_slice(ctx, conv->weight, 0, half), row_slice(ctx, conv->bias, 0, half), batch,
                             2, kernel / 2);
    tp_tensor *g = tp_conv1d(ctx, x, row_slice(ctx, conv->weight, half, half), row_slice(ctx, conv->bias, half, half),
                             batch, 2, kernel / 2);
    tp_tensor *gate = tp_act(ctx, tp_scale(ctx, g, 0.5f), TP_ACT_TANH);
    return tp_scale(ctx, tp_add(ctx, a, tp_mul(ctx, a, gate)), 0.5f);
}

static tp_tensor *speech_forward(void *self, tp_ctx *ctx, const tp_model_batch *batch)
{
    speech_embedding *se = self;
    int64_t kernels[SPEECH_MAX_CONV_LAYERS];
    for (int i = 0; i < se->layers_num; i++) kernels[i] = se->layers[i].weight->shape[2];
    int64_t frames = batch->audio_frames > 0 ? tp_s2t_subsampled_frames(batch->audio_frames, kernels, se->layers_num) : 0;
    if (!batch->audio || batch->audio_feature_size != se->feature_size || frames != batch->seq_length) {
        fprintf(stderr, "tp: internal error: speech embedding: a batch of %lld frames of %lld features in %lld-row "
                "sequences for %lld features subsampled to %lld rows\n", (long long)batch->audio_frames,
                (long long)batch->audio_feature_size, (long long)batch->seq_length, (long long)se->feature_size,
                (long long)frames);
        abort();
    }
    int64_t shape[2] = {batch->batch_size * batch->audio_frames, se->feature_size};
    tp_tensor *x = tp_arena_alloc(&ctx->host_arena, sizeof *x);
    *x = (tp_tensor){.ndim = 2, .shape = {shape[0], shape[1]}};
    x->data = tp_floats_upload(ctx, batch->audio, shape[0] * shape[1]);
    for (int i = 0; i < se->layers_num; i++) x = conv_glu(ctx, &se->layers[i], x, batch->batch_size);
    return se->scale != 1.0f ? tp_scale(ctx, x, se->scale) : x;
}

const tp_embedding_type tp_embedding_speech = {"speech", speech_create, speech_forward, NULL};
