/* Hugging Face CLIP <-> tp: config.json and names (core/hf_clip.h). */
#include "hf_clip.h"

#include <stdio.h>
#include <string.h>

#include "error.h"
#include "hf_gpt2.h" /* tp_hf_activation_to_tp, tp_hf_activation_name */
#include "hf_seq2seq.h" /* tp_hf_json_*, tp_hf_put_number */
#include "modules/layers/streams.h"

#define NAME_CAP 512

int tp_hf_clip_is(const cJSON *root)
{
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(root, "model_type");
    return cJSON_IsString(type) && !strcmp(type->valuestring, "clip");
}

/* ---- config.json -> tp ------------------------------------------------------------------------ */

/* One tower's config (text_config / vision_config) with CLIPTextConfig's / CLIPVisionConfig's
 * defaults (openai/clip-vit-base-patch32's), into a stream object. */
typedef struct tower_defaults {
    const char *key;
    int64_t hidden, inner, layers, heads;
} tower_defaults;

static int read_tower(const char *path, const cJSON *root, const tower_defaults *defaults, cJSON *stream,
                      const cJSON **tower_out, char *where, size_t where_cap)
{
    const cJSON *tower = cJSON_GetObjectItemCaseSensitive(root, defaults->key);
    static const cJSON empty = {0};
    int64_t hidden, inner, layers, heads;
    double eps;
    snprintf(where, where_cap, "%s (%s)", path, defaults->key);
    if (tower && !cJSON_IsObject(tower)) return tp_fail("%s: key '%s': expected an object", path, defaults->key);
    if (!tower) tower = &empty;
    const char *act = tp_hf_activation_to_tp(tp_hf_json_string(tower, "hidden_act", "quick_gelu"));
    if (tp_hf_json_int(where, tower, "hidden_size", defaults->hidden, &hidden) < 0 ||
        tp_hf_json_int(where, tower, "intermediate_size", defaults->inner, &inner) < 0 ||
        tp_hf_json_int(where, tower, "num_hidden_layers", defaults->layers, &layers) < 0 ||
        tp_hf_json_int(where, tower, "num_attention_heads", defaults->heads, &heads) < 0 ||
        tp_hf_json_number(where, tower, "layer_norm_eps", 1e-5, &eps) < 0)
        return -1;
    if (!act) return tp_fail("%s: key 'hidden_act': not supported (supported: quick_gelu, gelu, gelu_new, relu, silu)", where);
    if (!hidden || !inner || !layers || !heads)
        return tp_fail("%s: hidden_size, intermediate_size, num_hidden_layers and num_attention_heads must be positive",
                       where);
    tp_hf_put_number(stream, "emb_size", (double)hidden);
    tp_hf_put_number(stream, "hidden_size", (double)hidden);
    tp_hf_put_number(stream, "feedforward_size", (double)inner);
    tp_hf_put_number(stream, "layers_num", (double)layers);
    tp_hf_put_number(stream, "heads_num", (double)heads);
    tp_hf_put(stream, "hidden_act", cJSON_CreateString(act));
    tp_hf_put_number(stream, "layernorm_eps", eps);
    tp_hf_put(stream, "encoder", cJSON_CreateString("transformer"));
    tp_hf_put(stream, "layernorm_positioning", cJSON_CreateString("pre"));
    *tower_out = tower == &empty ? NULL : tower;
    return 0;
}

static int text_stream(const char *path, const cJSON *root, cJSON *tp, int64_t *vocab)
{
    static const tower_defaults defaults = {"text_config", 512, 2048, 12, 8};
    static const char *const embedding[] = {"word", "pos"};
    static const cJSON empty = {0};
    char where[NAME_CAP];
    const cJSON *tower = NULL;
    int64_t positions;
    cJSON *stream = cJSON_CreateObject();
    cJSON_AddItemToObject(tp, "stream_0", stream);
    if (read_tower(path, root, &defaults, stream, &tower, where, sizeof where) < 0 ||
        tp_hf_json_int(where, tower ? tower : &empty, "vocab_size", 49408, vocab) < 0 ||
        tp_hf_json_int(where, tower ? tower : &empty, "max_position_embeddings", 77, &positions) < 0)
        return -1;
    if (!*vocab || !positions) return tp_fail("%s: vocab_size and max_position_embeddings must be positive", where);
    tp_hf_put_number(stream, "max_seq_length", (double)positions);
    tp_hf_put(stream, "embedding", cJSON_CreateStringArray(embedding, 2));
    tp_hf_put_bool(stream, "remove_embedding_layernorm", 1);
    tp_hf_put(stream, "mask", cJSON_CreateString("causal"));
    tp_hf_put(stream, "pooling", cJSON_CreateString("last"));
    return 0;
}

static int vision_stream(const char *path, const cJSON *root, cJSON *tp)
{
    static const tower_defaults defaults = {"vision_config", 768, 3072, 12, 12};
    static const char *const embedding[] = {"patch", "pos"};
    static const cJSON empty = {0};
    char where[NAME_CAP];
    const cJSON *tower = NULL;
    int64_t image, patch, channels;
    cJSON *stream = cJSON_CreateObject();
    cJSON_AddItemToObject(tp, "stream_1", stream);
    if (read_tower(path, root, &defaults, stream, &tower, where, sizeof where) < 0 ||
        tp_hf_json_int(where, tower ? tower : &empty, "image_size", 224, &image) < 0 ||
        tp_hf_json_int(where, tower ? tower : &empty, "patch_size", 32, &patch) < 0 ||
        tp_hf_json_int(where, tower ? tower : &empty, "num_channels", 3, &channels) < 0)
        return -1;
    if (!patch || !channels || patch > image)
        return tp_fail("%s: key 'patch_size': %lld does not fit image_size %lld", where, (long long)patch,
                       (long long)image);
    tp_hf_put_number(stream, "max_seq_length", (double)((image / patch) * (image / patch) + 1));
    tp_hf_put(stream, "embedding", cJSON_CreateStringArray(embedding, 2));
    tp_hf_put_bool(stream, "remove_embedding_layernorm", 0);
    tp_hf_put(stream, "mask", cJSON_CreateString("fully_visible"));
    tp_hf_put(stream, "pooling", cJSON_CreateString("first"));
    tp_hf_put_number(stream, "image_height", (double)image);
    tp_hf_put_number(stream, "image_width", (double)image);
    tp_hf_put_number(stream, "patch_size", (double)patch);
    tp_hf_put_number(stream, "channels_num", (double)channels);
    tp_hf_put_bool(stream, "patch_bias", 0);
    return 0;
}

int tp_hf_clip_config(const char *path, const cJSON *root, cJSON *tp)
{
    static const char *const embedding[] = {"dual"}, *const target[] = {"clr"};
    int64_t vocab = 0, projection = 0;
    const char *architecture = NULL;
    if (tp_hf_first_architecture(path, root, &architecture) < 0) return -1;
    if (architecture && strcmp(architecture, "CLIPModel"))
        return tp_fail("%s: key 'architectures': '%s' is not supported (supported: CLIPModel)", path, architecture);
    if (tp_hf_json_int(path, root, "projection_dim", 512, &projection) < 0 || text_stream(path, root, tp, &vocab) < 0 ||
        vision_stream(path, root, tp) < 0)
        return -1;
    if (!projection) return tp_fail("%s: key 'projection_dim': must be positive", path);
    tp_hf_put_number(tp, "vocab_size", (double)vocab);
    tp_hf_put(tp, "embedding", cJSON_CreateStringArray(embedding, 1));
    tp_hf_put(tp, "encoder", cJSON_CreateString("dual"));
    tp_hf_put(tp, "target", cJSON_CreateStringArray(target, 1));
    tp_hf_put_number(tp, "feature_size", (double)projection);
    tp_hf_put_bool(tp, "projection", 1);
    tp_hf_put_number(tp, "dropout", 0.0);
    tp_hf_put(tp, "layernorm", cJSON_CreateString("normal_torch"));
    tp_hf_put(tp, "embedding_layernorm", cJSON_CreateString("normal_torch"));
    return 0;
}

/* ---- names ------------------------------------------------------------------------------------ */

int tp_hf_clip_model(const tp_model *model)
{
    return model->stream_count == 2 && model->embedding_count == 1 && !strcmp(model->embedding_types[0]->name, "dual");
}

static const tp_hf_name_pair layer_parts[] = {
    {"self_attn.linear_layers.0", "self_attn.q_proj"}, {"self_attn.linear_layers.1", "self_attn.k_proj"},
    {"self_attn.linear_layers.2", "self_attn.v_proj"}, {"self_attn.final_linear", "self_attn.out_proj"},
    {"layer_norm_1", "layer_norm1"},                   {"feed_forward.linear_1", "mlp.fc1"},
    {"feed_forward.linear_2", "mlp.fc2"},              {"layer_norm_2", "layer_norm2"},
};
static const tp_hf_name_pair whole_names[] = {
    {"embedding.dual.embedding_0.word.embedding.weight", "text_model.embeddings.token_embedding.weight"},
    {"embedding.dual.embedding_0.pos.embedding.weight", "text_model.embeddings.position_embedding.weight"},
    {"embedding.dual.embedding_1.patch.cls_emb", "vision_model.embeddings.class_embedding"},
    {"embedding.dual.embedding_1.patch.projection.weight", "vision_model.embeddings.patch_embedding.weight"},
    {"embedding.dual.embedding_1.pos.embedding.weight", "vision_model.embeddings.position_embedding.weight"},
    {"embedding.dual.stream_1_layer_norm.weight", "vision_model.pre_layrnorm.weight"},
    {"embedding.dual.stream_1_layer_norm.bias", "vision_model.pre_layrnorm.bias"},
    {"encoder.encoder_0.layer_norm.weight", "text_model.final_layer_norm.weight"},
    {"encoder.encoder_0.layer_norm.bias", "text_model.final_layer_norm.bias"},
    {"encoder.encoder_1.layer_norm.weight", "vision_model.post_layernorm.weight"},
    {"encoder.encoder_1.layer_norm.bias", "vision_model.post_layernorm.bias"},
    {"target.clr.encoder_0_projection", "text_projection.weight"},
    {"target.clr.encoder_1_projection", "visual_projection.weight"},
    {"target.clr.logit_scale", "logit_scale"},
};

static int names_name(const void *self, const char *tp, int form, char *out, size_t cap)
{
    static const char *const towers[] = {"text_model", "vision_model"};
    (void)self;
    if (form) return 0; /* one spelling */
    const char *whole = tp_hf_pair_find(whole_names, sizeof whole_names / sizeof whole_names[0], tp), *leaf = NULL;
    if (whole) return snprintf(out, cap, "%s", whole) > 0;
    int stream = 0, layer = 0, consumed = 0;
    if (sscanf(tp, "encoder.encoder_%d.transformer.%d.%n", &stream, &layer, &consumed) != 2 || !consumed ||
        stream < 0 || stream > 1)
        return 0;
    size_t parts = sizeof layer_parts / sizeof layer_parts[0];
    const char *part = tp_hf_pair_find_part(layer_parts, parts, tp + consumed, &leaf);
    return part && snprintf(out, cap, "%s.encoder.layers.%d.%s%s", towers[stream], layer, part, leaf) > 0;
}

/* The class embedding is stored [E] and logit_scale as a 0-dimensional tensor. */
static int names_layout(const void *self, const tp_param *param, int64_t *shape, int64_t *offset)
{
    (void)self;
    *offset = 0;
    if (!strcmp(param->name, "target.clr.logit_scale")) return TP_HF_SCALAR;
    if (strcmp(param->name, "embedding.dual.embedding_1.patch.cls_emb")) return 0;
    shape[0] = param->tensor.shape[2];
    return 1;
}

static int names_droppable(const void *self, const char *hf_name)
{
    (void)self;
    return !strcmp(hf_name, "text_model.embeddings.position_ids") ||
           !strcmp(hf_name, "vision_model.embeddings.position_ids");
}

tp_hf_names tp_hf_clip_names(const tp_model *model)
{
    return (tp_hf_names){.model_type = "clip",
                         .self = model,
                         .name = names_name,
                         .layout = names_layout,
                         .droppable = names_droppable};
}

/* ---- tp -> config.json --------------------------------------------------------------------------- */

/* Stream i as Hugging Face's tower computes it; -1 + error naming the stream's key otherwise. */
static int check_stream(const tp_model *model, int i, const tp_model_config *hp)
{
    tp_config *config = model->stream_configs[i];
    const char *pooling = NULL, *const wanted_pooling = i ? "first" : "last";
    int patch_bias = 1;
    if (tp_config_string(config, "pooling", "first", &pooling) < 0 || tp_config_bool(config, "patch_bias", 1, &patch_bias) < 0)
        return -1;
    const char *key = !hp->layernorm_pre                                  ? "layernorm_positioning"
                      : hp->layernorm != TP_NORM_TORCH                    ? "layernorm"
                      : hp->emb_size != hp->hidden_size                   ? "emb_size"
                      : hp->mask != (i ? TP_MASK_FULLY_VISIBLE : TP_MASK_CAUSAL) ? "mask"
                      : hp->remove_embedding_layernorm != !i              ? "remove_embedding_layernorm"
                      : i && hp->embedding_layernorm != TP_NORM_TORCH     ? "embedding_layernorm"
                      : strcmp(pooling, wanted_pooling)                   ? "pooling"
                      : i && patch_bias                                   ? "patch_bias"
                      : hp->remove_transformer_bias || hp->remove_attention_scale || hp->parameter_sharing ||
                                hp->feed_forward_gated || hp->relative_position_embedding || hp->position_offset
                          ? "encoder"
                          : NULL;
    if (key)
        return tp_fail("%s: key '%s': Hugging Face's CLIP %s tower computes otherwise (hf_clip.h lists its layout)",
                       tp_config_name(config), key, i ? "vision" : "text");
    return 0;
}

int tp_hf_clip_architecture(const tp_model *model, tp_config *config, const char **architecture)
{
    for (int i = 0; i < 2; i++) {
        tp_model_config hp;
        if (tp_model_read_hyperparameters(model->stream_configs[i], &hp, model->hp.vocab_size) < 0 ||
            check_stream(model, i, &hp) < 0)
            return -1;
    }
    if (model->target_count != 1 || strcmp(tp_model_target_name(model, 0), "clr") ||
        !tp_params_find(&model->params, "target.clr.encoder_0_projection"))
        return tp_fail("%s: key 'target': Hugging Face's CLIPModel needs clr with projection", tp_config_name(config));
    *architecture = "CLIPModel";
    return 0;
}

/* tower[key] for the stream's hyper-parameters. */
static void put_tower(const tp_model_config *hp, cJSON *tower, double eps)
{
    tp_hf_put_number(tower, "hidden_size", (double)hp->hidden_size);
    tp_hf_put_number(tower, "intermediate_size", (double)hp->feedforward_size);
    tp_hf_put_number(tower, "num_hidden_layers", (double)hp->layers_num);
    tp_hf_put_number(tower, "num_attention_heads", (double)hp->heads_num);
    tp_hf_put(tower, "hidden_act", cJSON_CreateString(tp_hf_activation_name(hp->hidden_act)));
    tp_hf_put_number(tower, "layer_norm_eps", eps);
}

static cJSON *tower_object(cJSON *hf, const char *key)
{
    cJSON *tower = cJSON_GetObjectItemCaseSensitive(hf, key);
    if (cJSON_IsObject(tower)) return tower;
    tower = cJSON_CreateObject();
    tp_hf_put(hf, key, tower);
    return tower;
}

void tp_hf_clip_config_json(const tp_model *model, const char *architecture, cJSON *hf)
{
    tp_model_config hp[2];
    double eps[2] = {1e-5, 1e-5};
    int64_t image = 224, patch = 32, channels = 3, feature = 512;
    for (int i = 0; i < 2; i++) {
        tp_model_read_hyperparameters(model->stream_configs[i], &hp[i], model->hp.vocab_size);
        tp_config_double(model->stream_configs[i], "layernorm_eps", 1e-6, 0.0, 1.0, &eps[i]);
    }
    tp_config_int(model->stream_configs[1], "image_height", 256, 1, 1 << 16, &image);
    tp_config_int(model->stream_configs[1], "patch_size", 16, 1, 1 << 16, &patch);
    tp_config_int(model->stream_configs[1], "channels_num", 3, 1, 1024, &channels);
    feature = tp_params_find(&model->params, "target.clr.encoder_0_projection")->tensor.shape[0];
    const char *names[1] = {architecture};
    tp_hf_put(hf, "architectures", cJSON_CreateStringArray(names, 1));
    tp_hf_put(hf, "model_type", cJSON_CreateString("clip"));
    tp_hf_put_number(hf, "projection_dim", (double)feature);
    cJSON *text = tower_object(hf, "text_config"), *vision = tower_object(hf, "vision_config");
    put_tower(&hp[0], text, eps[0]);
    tp_hf_put_number(text, "vocab_size", (double)hp[0].vocab_size);
    tp_hf_put_number(text, "max_position_embeddings", (double)hp[0].max_seq_length);
    put_tower(&hp[1], vision, eps[1]);
    tp_hf_put_number(vision, "image_size", (double)image);
    tp_hf_put_number(vision, "patch_size", (double)patch);
    tp_hf_put_number(vision, "num_channels", (double)channels);
}
