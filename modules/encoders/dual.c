/* "dual": TencentPretrain's DualEncoder (CLIP): one encoder per stream, the type its stream's
 * `encoder` key names, built with the stream's own hyper-parameters (modules/layers/streams.h):
 * Hugging Face CLIP's text tower is a pre-LN transformer under a causal mask (stream_0: mask causal,
 * layernorm_positioning pre), its vision tower a pre-LN transformer over the patches.  Parameters
 * under encoder.encoder_<i>. (TencentPretrain's names).  tp_model_forward runs it once per stream
 * (batch->stream); an image stream's rows per image are its input's rows / batch_size. */
#include <stdio.h>
#include <string.h>

#include "modules/layers/layers.h"
#include "modules/layers/streams.h"

typedef struct dual_encoder {
    tp_stream_build builds[TP_STREAMS];
    const tp_encoder_type *types[TP_STREAMS];
    void *encoders[TP_STREAMS];
} dual_encoder;

static void dual_destroy(void *self)
{
    dual_encoder *dual = self;
    for (int s = 0; s < TP_STREAMS; s++) {
        if (!dual->encoders[s]) continue;
        if (dual->types[s]->destroy)
            dual->types[s]->destroy(dual->encoders[s]);
        else
            free(dual->encoders[s]);
    }
    free(dual);
}

static int stream_create(dual_encoder *dual, const tp_build *build, const char *prefix, int index)
{
    tp_stream_build *stream = &dual->builds[index];
    const char *type_name = NULL;
    char name[TP_NAME_MAX];
    if (tp_stream_build_init(stream, build, index) < 0 ||
        tp_config_string(stream->build.config, "encoder", "transformer", &type_name) < 0)
        return -1;
    for (const tp_encoder_type *const *type = tp_encoder_registry; *type; type++)
        if (!strcmp((*type)->name, type_name) && strcmp(type_name, "dual")) dual->types[index] = *type;
    if (!dual->types[index])
        return tp_fail("%s: key 'encoder': '%s' is not an encoder a stream can have", tp_config_name(stream->build.config),
                       type_name);
    snprintf(name, sizeof name, "%s.encoder_%d", prefix, index);
    dual->encoders[index] = dual->types[index]->create(&stream->build, name);
    return dual->encoders[index] ? 0 : -1;
}

static void *dual_create(tp_build *build, const char *prefix)
{
    dual_encoder *self = tp_xcalloc(1, sizeof *self);
    for (int s = 0; s < TP_STREAMS; s++)
        if (stream_create(self, build, prefix, s) < 0) {
            dual_destroy(self);
            return NULL;
        }
    return self;
}

static tp_tensor *dual_forward(void *self, tp_ctx *ctx, tp_tensor *input, const tp_model_batch *batch)
{
    dual_encoder *dual = self;
    int s = batch->stream;
    tp_model_batch view = tp_stream_batch(ctx, batch, dual->builds[s].is_image, tp_rows(input) / batch->batch_size);
    return dual->types[s]->forward(dual->encoders[s], ctx, input, &view);
}

const tp_encoder_type tp_encoder_dual = {"dual", dual_create, dual_forward, dual_destroy};
