#include "streams.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <string.h>

#include "layers.h"

/* The JSON object root as a config named name, or NULL + tp_fail. */
static tp_config *config_from(cJSON *root, const char *name)
{
    char *text = cJSON_PrintUnformatted(root);
    tp_config *config = text ? tp_config_parse(name, text) : NULL;
    if (!text) tp_fail("%s: could not format the configuration as JSON", name);
    cJSON_free(text);
    return config;
}

tp_config *tp_stream_config(tp_config *config, int stream)
{
    char key[16], name[TP_NAME_MAX], path[TP_NAME_MAX];
    snprintf(key, sizeof key, "stream_%d", stream);
    snprintf(name, sizeof name, "%s (%s)", tp_config_name(config), key);
    char *text = tp_config_to_json(config);
    cJSON *root = text ? cJSON_Parse(text) : NULL;
    free(text);
    if (!root) return NULL;
    cJSON *own = cJSON_DetachItemFromObjectCaseSensitive(root, key);
    for (int other = 0; other < TP_STREAMS; other++) {
        snprintf(path, sizeof path, "stream_%d", other);
        cJSON_DeleteItemFromObjectCaseSensitive(root, path);
    }
    if (!cJSON_IsObject(own)) {
        cJSON_Delete(own), cJSON_Delete(root);
        tp_fail("%s: key '%s': missing or not an object (a two-stream model needs stream_0 and stream_1)",
                tp_config_name(config), key);
        return NULL;
    }
    cJSON *merged = cJSON_Duplicate(root, 1);
    for (const cJSON *member = own->child; member; member = member->next) {
        cJSON_DeleteItemFromObjectCaseSensitive(merged, member->string);
        cJSON_AddItemToObject(merged, member->string, cJSON_Duplicate(member, 1));
        snprintf(path, sizeof path, "%s.%s", key, member->string);
        tp_config_ignore(config, path);
    }
    tp_config *result = config_from(merged, name);
    /* tp_config has no "was this key read" query to combine the three configs' uses: a top-level key
     * (root's members) is accepted in all three, a stream's own keys are checked in its view. */
    for (const cJSON *member = root->child; result && member; member = member->next) {
        tp_config_ignore(config, member->string);
        if (!cJSON_GetObjectItemCaseSensitive(own, member->string)) tp_config_ignore(result, member->string);
    }
    cJSON_Delete(merged), cJSON_Delete(own), cJSON_Delete(root);
    return result;
}

int tp_stream_is_image(tp_config *stream_config)
{
    const char *const *names = NULL;
    int count = 0;
    if (tp_config_strings(stream_config, "embedding", &names, &count) < 0) return -1;
    for (int i = 0; i < count; i++)
        if (!strcmp(names[i], "patch") || !strcmp(names[i], "masked_patch")) return 1;
    return 0;
}

tp_model_batch tp_stream_batch(tp_ctx *ctx, const tp_model_batch *batch, int is_image, int64_t rows_per_image)
{
    if (!is_image) return *batch;
    int64_t rows = batch->batch_size * rows_per_image;
    int32_t *seg = tp_arena_alloc(&ctx->host_arena, (size_t)rows * sizeof *seg);
    int32_t *positions = tp_arena_alloc(&ctx->host_arena, (size_t)rows * sizeof *positions);
    int32_t *first_rows = tp_arena_alloc(&ctx->host_arena, (size_t)batch->batch_size * sizeof *first_rows);
    int32_t *last_rows = tp_arena_alloc(&ctx->host_arena, (size_t)batch->batch_size * sizeof *last_rows);
    for (int64_t r = 0; r < rows; r++) {
        seg[r] = 1;
        positions[r] = (int32_t)(r % rows_per_image);
    }
    for (int64_t b = 0; b < batch->batch_size; b++) {
        first_rows[b] = (int32_t)(b * rows_per_image);
        last_rows[b] = (int32_t)((b + 1) * rows_per_image - 1);
    }
    tp_model_batch view = *batch;
    view.seq_length = rows_per_image;
    view.seg = tp_ids_upload(ctx, seg, rows);
    view.positions = tp_ids_upload(ctx, positions, rows);
    view.first_rows = tp_ids_upload(ctx, first_rows, batch->batch_size);
    view.last_rows = tp_ids_upload(ctx, last_rows, batch->batch_size);
    return view;
}

int tp_stream_build_init(tp_stream_build *stream, const tp_build *model_build, int index)
{
    tp_config *config = model_build->streams[index];
    if (!config)
        return tp_fail("%s: the dual embedding, encoder and clr target need 'stream_0' and 'stream_1'",
                       tp_config_name(model_build->config));
    if (tp_model_read_hyperparameters(config, &stream->hp, model_build->hp->vocab_size) < 0 ||
        (stream->is_image = tp_stream_is_image(config)) < 0)
        return -1;
    stream->build = (tp_build){.config = config, .hp = &stream->hp, .params = model_build->params};
    return 0;
}
