/* "dual": TencentPretrain's DualEmbedding (CLIP): two embeddings, one per stream, each the sum of the
 * embedding types its stream's `embedding` key lists (word + pos for text, patch + pos for images)
 * with the stream's own hyper-parameters (stream_0 / stream_1 keys over the top-level ones,
 * modules/layers/streams.h), normed by the stream's own layer norm unless its
 * remove_embedding_layernorm (Hugging Face CLIP: the text stream has none, the vision stream's is
 * pre_layrnorm).  tp_model_forward runs it once per stream (batch->stream); the model's dropout
 * follows, as TencentPretrain's follows both.  Parameter names (TencentPretrain's):
 *   embedding.dual.embedding_<i>.<type>.*     the stream's embedding types
 *   embedding.dual.stream_<i>_layer_norm.*    the stream's norm */
#include <stdio.h>
#include <string.h>

#include "modules/layers/layers.h"
#include "modules/layers/streams.h"

typedef struct dual_stream {
    tp_stream_build build;
    int count;
    const tp_embedding_type *types[TP_MAX_PARTS];
    void *parts[TP_MAX_PARTS];
    tp_norm_layer *norm;      /* NULL with remove_embedding_layernorm */
    int64_t rows_per_image;   /* image streams: patches + the class token */
} dual_stream;

typedef struct dual_embedding {
    dual_stream streams[TP_STREAMS];
} dual_embedding;

static void dual_destroy(void *self)
{
    dual_embedding *dual = self;
    for (int s = 0; s < TP_STREAMS; s++) {
        dual_stream *stream = &dual->streams[s];
        for (int i = 0; i < stream->count; i++) {
            if (stream->types[i]->destroy)
                stream->types[i]->destroy(stream->parts[i]);
            else
                free(stream->parts[i]);
        }
        free(stream->norm);
    }
    free(dual);
}

/* Any embedding but the two that make a whole model's input: dual itself and word_patch (ViLT's one
 * text-and-image sequence). */
static const tp_embedding_type *find_type(const char *name)
{
    for (const tp_embedding_type *const *type = tp_embedding_registry; *type; type++)
        if (!strcmp((*type)->name, name) && strcmp(name, "dual") && strcmp(name, "word_patch")) return *type;
    return NULL;
}

/* The image rows the patch embedding makes of the stream's image keys (its defaults; it checks them). */
static int read_image_rows(tp_config *config, int64_t *rows)
{
    int64_t height = 0, width = 0, patch = 0;
    if (tp_config_int(config, "image_height", 256, 1, 1 << 16, &height) < 0 ||
        tp_config_int(config, "image_width", 256, 1, 1 << 16, &width) < 0 ||
        tp_config_int(config, "patch_size", 16, 1, 1 << 16, &patch) < 0)
        return -1;
    *rows = (height / patch) * (width / patch) + 1;
    return 0;
}

static int stream_create(dual_stream *stream, const tp_build *build, const char *prefix, int index)
{
    if (tp_stream_build_init(&stream->build, build, index) < 0) return -1;
    tp_build *own = &stream->build.build;
    const char *const *names = NULL;
    int count = 0;
    char name[TP_NAME_MAX];
    if (tp_config_strings(own->config, "embedding", &names, &count) < 0) return -1;
    if (count < 1 || count > TP_MAX_PARTS)
        return tp_fail("%s: key 'embedding': expected 1 to %d embedding names", tp_config_name(own->config),
                       TP_MAX_PARTS);
    if (stream->build.is_image && read_image_rows(own->config, &stream->rows_per_image) < 0) return -1;
    for (int i = 0; i < count; i++) {
        const tp_embedding_type *type = find_type(names[i]);
        if (!type)
            return tp_fail("%s: key 'embedding': '%s' is not an embedding a stream can have",
                           tp_config_name(own->config), names[i]);
        for (int j = 0; j < i; j++)
            if (!strcmp(names[i], names[j]))
                return tp_fail("%s: key 'embedding': '%s' is listed twice", tp_config_name(own->config), names[i]);
        snprintf(name, sizeof name, "%s.embedding_%d.%s", prefix, index, names[i]);
        stream->types[i] = type;
        if (!(stream->parts[i] = type->create(own, name))) return -1;
        stream->count = i + 1;
    }
    if (!stream->build.hp.remove_embedding_layernorm) {
        stream->norm = tp_xmalloc(sizeof *stream->norm);
        snprintf(name, sizeof name, "%s.stream_%d_layer_norm", prefix, index);
        tp_norm_layer_init_kind(stream->norm, own, name, stream->build.hp.emb_size,
                                stream->build.hp.embedding_layernorm);
    }
    return 0;
}

static void *dual_create(tp_build *build, const char *prefix)
{
    dual_embedding *self = tp_xcalloc(1, sizeof *self);
    for (int s = 0; s < TP_STREAMS; s++)
        if (stream_create(&self->streams[s], build, prefix, s) < 0) {
            dual_destroy(self);
            return NULL;
        }
    return self;
}

static tp_tensor *dual_forward(void *self, tp_ctx *ctx, const tp_model_batch *batch)
{
    const dual_stream *stream = &((dual_embedding *)self)->streams[batch->stream];
    tp_model_batch view = tp_stream_batch(ctx, batch, stream->build.is_image, stream->rows_per_image);
    tp_tensor *embedded = NULL;
    for (int i = 0; i < stream->count; i++) {
        tp_tensor *part = stream->types[i]->forward(stream->parts[i], ctx, &view);
        embedded = embedded ? tp_add(ctx, embedded, part) : part;
    }
    return stream->norm ? tp_norm_layer_forward(ctx, stream->norm, embedded) : embedded;
}

const tp_embedding_type tp_embedding_dual = {"dual", dual_create, dual_forward, dual_destroy};
