/* Two-stream models (TencentPretrain's CLIP: embedding "dual", encoder "dual", target "clr"): one
 * model config holds each tower's keys in a "stream_0" / "stream_1" object over the top-level keys,
 * and one batch holds both towers' inputs (stream 0 reads the token ids, an image stream the
 * pixels).  The dual modules build and run each stream's own embedding and encoder through the
 * registries on the stream's view of the config and of the batch. */
#ifndef TP_STREAMS_H
#define TP_STREAMS_H

#include "core/model.h"

#define TP_STREAMS 2

/* The config stream `stream` sees: the top-level keys with stream_<stream>'s keys over them, named
 * "<file> (stream_<stream>)" in messages.  stream_<stream>'s own keys are marked ignored in the parent,
 * so tp_config_check_unused on the result reports a stream key nobody read; the top-level keys are
 * marked ignored in both (a misspelt top-level key of a two-stream config goes unreported).  NULL + tp_fail when the
 * key is missing or not an object. */
tp_config *tp_stream_config(tp_config *config, int stream);

/* A stream whose embeddings include "patch" or "masked_patch" reads the batch's pixels; 0 or 1,
 * -1 + tp_fail on a bad 'embedding' key. */
int tp_stream_is_image(tp_config *stream_config);

/* The batch as an image stream sees it: rows_per_image rows per image (patches + class token), all
 * real, positions 0, 1, ...; a text stream sees the batch itself.  The id arrays live in the step arena. */
tp_model_batch tp_stream_batch(tp_ctx *ctx, const tp_model_batch *batch, int is_image, int64_t rows_per_image);

/* The hyper-parameters and the build a stream's modules are created with (the parameter set is the
 * model's; names carry the stream's prefix). */
typedef struct tp_stream_build {
    tp_model_config hp;
    tp_build build;
    int is_image;
} tp_stream_build;
int tp_stream_build_init(tp_stream_build *stream, const tp_build *model_build, int index);

#endif
