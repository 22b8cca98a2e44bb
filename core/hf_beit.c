/* Hugging Face BEiT <-> tp: config.json and names (core/hf_beit.h). */
#include "hf_beit.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "hf_vit.h"

/* ---- config.json -> tp ------------------------------------------------------------------------ */

int tp_hf_beit_is(const cJSON *root)
{
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(root, "model_type");
    return cJSON_IsString(type) && !strcmp(type->valuestring, "beit");
}

typedef enum { BEIT_BARE, BEIT_CLASSIFIER, BEIT_MASKED_IMAGE_MODELING } beit_architecture;

static int read_architecture(const char *path, const cJSON *root, beit_architecture *out)
{
    static const char *const names[] = {"BeitModel", "BeitForImageClassification", "BeitForMaskedImageModeling"};
    const char *name = NULL;
    if (tp_hf_first_architecture(path, root, &name) < 0) return -1;
    *out = BEIT_BARE;
    if (!name) return 0;
    for (int i = 0; i < 3; i++)
        if (!strcmp(name, names[i])) {
            *out = (beit_architecture)i;
            return 0;
        }
    return tp_fail("%s: key 'architectures': '%s' is not supported (supported: BeitModel, "
                   "BeitForImageClassification, BeitForMaskedImageModeling)", path, name);
}

/* BeitConfig's flags (defaults: no absolute positions, no relative bias, layer scale 0.1, mean
 * pooling).  use_mask_token needs none: tp's masked_patch always has a mask token (0 without one). */
typedef struct beit_flags {
    int absolute, relative, shared, mean_pooling;
    double layer_scale;
} beit_flags;

static int read_flags(const char *path, const cJSON *root, beit_architecture architecture, beit_flags *flags)
{
    if (tp_hf_json_bool(path, root, "use_absolute_position_embeddings", 0, &flags->absolute) < 0 ||
        tp_hf_json_bool(path, root, "use_relative_position_bias", 0, &flags->relative) < 0 ||
        tp_hf_json_bool(path, root, "use_shared_relative_position_bias", 0, &flags->shared) < 0 ||
        tp_hf_json_bool(path, root, "use_mean_pooling", 1, &flags->mean_pooling) < 0 ||
        tp_hf_json_number(path, root, "layer_scale_init_value", 0.1, &flags->layer_scale) < 0)
        return -1;
    if (flags->relative && flags->shared)
        return tp_fail("%s: key 'use_relative_position_bias': tp has per-layer or shared relative position bias, "
                       "not both (use_shared_relative_position_bias is true too)", path);
    if (flags->layer_scale < 0) return tp_fail("%s: key 'layer_scale_init_value': must not be negative", path);
    if (architecture == BEIT_MASKED_IMAGE_MODELING && !flags->mean_pooling)
        return tp_fail("%s: key 'use_mean_pooling': false in BeitForMaskedImageModeling puts two layer norms after the "
                       "last layer, which tp's encoder does not have", path);
    return 0;
}

int tp_hf_beit_config(const char *path, const cJSON *root, cJSON *tp)
{
    static const char *const with_positions[] = {"masked_patch", "pos"}, *const without[] = {"masked_patch"};
    beit_architecture architecture = BEIT_BARE;
    beit_flags flags;
    if (read_architecture(path, root, &architecture) < 0 || read_flags(path, root, architecture, &flags) < 0 ||
        tp_hf_vit_backbone_config(path, root, tp) < 0)
        return -1;
    cJSON_AddItemToObject(tp, "embedding", flags.absolute ? cJSON_CreateStringArray(with_positions, 2)
                                                          : cJSON_CreateStringArray(without, 1));
    if (flags.relative || flags.shared)
        cJSON_AddStringToObject(tp, "relative_position_bias", flags.shared ? "shared" : "layer");
    if (flags.layer_scale > 0) cJSON_AddNumberToObject(tp, "layer_scale_init", flags.layer_scale);
    /* Mean pooling: BeitModel's final norm is an identity, and its pooler normalises the patches' mean. */
    int mean_pooled = flags.mean_pooling && architecture != BEIT_MASKED_IMAGE_MODELING;
    if (mean_pooled) cJSON_AddBoolToObject(tp, "final_layernorm", 0);
    if (architecture != BEIT_CLASSIFIER) return 0;
    if (tp_hf_vit_classifier_config(path, root, tp) < 0) return -1;
    if (mean_pooled) {
        tp_hf_put(tp, "pooling", cJSON_CreateString("patch_mean"));
        cJSON_AddBoolToObject(tp, "pooled_layernorm", 1);
    }
    return 0;
}

/* ---- names ------------------------------------------------------------------------------------ */

int tp_hf_beit_model(const tp_model *model)
{
    return tp_params_find(&model->params, "embedding.masked_patch.cls_emb") != NULL;
}

static const tp_hf_name_pair whole_names[] = {
    {"embedding.masked_patch.cls_emb", "embeddings.cls_token"},
    {"embedding.masked_patch.mask_emb", "embeddings.mask_token"},
    {"embedding.masked_patch.projection.weight", "embeddings.patch_embeddings.projection.weight"},
    {"embedding.masked_patch.projection.bias", "embeddings.patch_embeddings.projection.bias"},
    {"embedding.pos.embedding.weight", "embeddings.position_embeddings"},
    {"encoder.relative_position_bias_table", "encoder.relative_position_bias.relative_position_bias_table"},
    {"encoder.layer_norm.weight", "layernorm.weight"},
    {"encoder.layer_norm.bias", "layernorm.bias"},
    {"target.cls.layer_norm.weight", "pooler.layernorm.weight"},
    {"target.cls.layer_norm.bias", "pooler.layernorm.bias"},
};
/* Layer parameters without a leaf beyond ViT's layer parts. */
static const tp_hf_name_pair layer_names[] = {
    {"gamma_1", "lambda_1"},
    {"gamma_2", "lambda_2"},
    {"self_attn.relative_position_bias_table",
     "attention.attention.relative_position_bias.relative_position_bias_table"},
};

/* The Hugging Face name of a tp parameter with the backbone prefix given ("beit." or ""); 0 when unmapped.
 * The final norm "layernorm" unprefixed is BeitModel's, or BeitForMaskedImageModeling's top-level one
 * (the backbone's own is an identity there). */
static int hf_name_of(const char *tp, const char *prefix, char *out, size_t cap)
{
    if (!strncmp(tp, "target.cls.linear_2.", 20)) return snprintf(out, cap, "classifier.%s", tp + 20) > 0;
    const char *whole = tp_hf_pair_find(whole_names, sizeof whole_names / sizeof whole_names[0], tp);
    if (whole) return snprintf(out, cap, "%s%s", prefix, whole) > 0;
    int layer = 0, consumed = 0;
    if (sscanf(tp, "encoder.transformer.%d.%n", &layer, &consumed) == 1 && consumed) {
        const char *own = tp_hf_pair_find(layer_names, sizeof layer_names / sizeof layer_names[0], tp + consumed);
        if (own) return snprintf(out, cap, "%sencoder.layer.%d.%s", prefix, layer, own) > 0;
    }
    return tp_hf_vit_layer_name(tp, prefix, out, cap);
}

/* ---- names and layouts for hf.c's loading loop ------------------------------------------------- */

/* form 0: "beit." with a head, none bare; 1: the other one. */
static int names_name(const void *self, const char *tp_name, int form, char *out, size_t cap)
{
    const tp_model *model = self;
    int headed = model->target_count > 0;
    return hf_name_of(tp_name, headed != (form == 1) ? "beit." : "", out, cap);
}

static int ends_with(const char *name, const char *suffix)
{
    size_t n = strlen(name), k = strlen(suffix);
    return n >= k && !strcmp(name + n - k, suffix);
}

/* Positions [1, S, E] and the mask token [1, 1, E] with a leading 1; layer scales [E]. */
static int names_layout(const void *self, const tp_param *param, int64_t *shape, int64_t *offset)
{
    (void)self;
    const tp_tensor *t = &param->tensor;
    *offset = 0;
    if (!strcmp(param->name, "embedding.pos.embedding.weight") ||
        !strcmp(param->name, "embedding.masked_patch.mask_emb")) {
        shape[0] = 1;
        memcpy(shape + 1, t->shape, (size_t)t->ndim * sizeof *shape);
        return t->ndim + 1;
    }
    if (!ends_with(param->name, ".gamma_1") && !ends_with(param->name, ".gamma_2")) return 0;
    shape[0] = t->shape[1];
    return 1;
}

/* The masked-image-modeling head, a pooler, and the index buffers older checkpoints saved. */
static int names_droppable(const void *self, const char *hf_name)
{
    (void)self;
    return !strncmp(hf_name, "lm_head.", 8) || !strncmp(hf_name, "pooler.", 7) ||
           !strncmp(hf_name, "beit.pooler.", 12) || ends_with(hf_name, "relative_position_index");
}

static int is_key_bias(const char *tp_name)
{
    return !strncmp(tp_name, "encoder.transformer.", 20) && ends_with(tp_name, ".self_attn.linear_layers.1.bias");
}

static int names_optional(const void *self, const char *tp_name)
{
    (void)self;
    return !strcmp(tp_name, "embedding.masked_patch.mask_emb") || is_key_bias(tp_name);
}

/* The mask token is written when it is used: a model converted from a checkpoint without one (or
 * fine-tuned, which never masks) holds zeros there. */
static int mask_token_used(const tp_model *model)
{
    const tp_param *mask = tp_params_find(&model->params, "embedding.masked_patch.mask_emb");
    int64_t count = mask ? tp_param_logical_numel(mask) : 0, used = 0;
    float *values = tp_xmalloc((size_t)(count > 0 ? count : 1) * sizeof *values);
    if (mask) model->params.backend->download(values, model->params.data + mask->offset, (size_t)count * sizeof *values);
    for (int64_t i = 0; i < count; i++) used |= values[i] != 0.0f;
    free(values);
    return (int)used;
}

/* Writing: no key bias (Hugging Face's BEiT has none; a key bias adds the same amount to all of a
 * query's scores, which the softmax cancels), and the mask token only when it is used. */
static int names_unwritten(const void *self, const char *tp_name)
{
    const tp_model *model = self;
    return is_key_bias(tp_name) || (!strcmp(tp_name, "embedding.masked_patch.mask_emb") && !mask_token_used(model));
}

tp_hf_names tp_hf_beit_names(const tp_model *model)
{
    return (tp_hf_names){.model_type = "beit",
                         .self = model,
                         .name = names_name,
                         .layout = names_layout,
                         .droppable = names_droppable,
                         .optional = names_optional,
                         .unwritten = names_unwritten};
}

/* ---- tp -> config.json --------------------------------------------------------------------------- */

static int refuse(tp_config *config, const char *key, const char *need)
{
    return tp_hf_vision_refuse(config, "BEiT", key, need);
}

/* The keys that decide BEiT's flags and head. */
typedef struct beit_layout {
    int final_layernorm, pooled_layernorm;
    const char *pooling, *relative;
    double layer_scale;
} beit_layout;

static int read_layout(tp_config *config, beit_layout *layout)
{
    return tp_config_bool(config, "final_layernorm", 1, &layout->final_layernorm) < 0 ||
                   tp_config_bool(config, "pooled_layernorm", 0, &layout->pooled_layernorm) < 0 ||
                   tp_config_string(config, "pooling", "first", &layout->pooling) < 0 ||
                   tp_config_string(config, "relative_position_bias", "none", &layout->relative) < 0 ||
                   tp_config_double(config, "layer_scale_init", 0.0, 0.0, 1e6, &layout->layer_scale) < 0
               ? -1
               : 0;
}

/* Mean pooling (BEiT's use_mean_pooling) has no final norm and a normalised patch mean as the head's
 * input; without it the head reads the class token after the final norm, as ViT's. */
static int check_head(const tp_model *model, tp_config *config, const beit_layout *layout)
{
    if (model->target_count > 1 || (model->target_count == 1 && strcmp(tp_model_target_name(model, 0), "cls")))
        return refuse(config, "target", "needs cls or none (the visual-token head of masked image modelling is "
                                        "not written)");
    if (model->target_count && tp_params_find(&model->params, "target.cls.linear_1.weight"))
        return refuse(config, "pooler", "classifier is one linear layer (pooler false)");
    if (!model->target_count) return 0;
    if (!layout->final_layernorm && (strcmp(layout->pooling, "patch_mean") || !layout->pooled_layernorm))
        return refuse(config, "pooling", "with mean pooling (final_layernorm false) normalises the patches' mean "
                                         "(pooling patch_mean, pooled_layernorm true)");
    if (layout->final_layernorm && (strcmp(layout->pooling, "first") || layout->pooled_layernorm))
        return refuse(config, "pooling", "without mean pooling pools the class token (pooling first, "
                                         "pooled_layernorm false)");
    return 0;
}

int tp_hf_beit_architecture(const tp_model *model, tp_config *config, const char **architecture)
{
    beit_layout layout;
    if (tp_hf_vision_check_encoder(model, config, "BEiT") < 0) return -1;
    int positions = tp_params_find(&model->params, "embedding.pos.embedding.weight") != NULL;
    if (model->embedding_count != 1 + positions) return refuse(config, "embedding", "needs masked_patch (and pos)");
    if (!tp_params_find(&model->params, "embedding.masked_patch.projection.bias"))
        return refuse(config, "patch_bias", "patch projection has a bias (patch_bias true)");
    if (read_layout(config, &layout) < 0 || check_head(model, config, &layout) < 0) return -1;
    *architecture = model->target_count ? "BeitForImageClassification" : "BeitModel";
    return 0;
}

void tp_hf_beit_config_json(const tp_model *model, tp_config *config, const char *architecture, cJSON *hf)
{
    beit_layout layout = {1, 0, "first", "none", 0.0};
    read_layout(config, &layout); /* checked by tp_hf_beit_architecture */
    tp_hf_vit_config_json(model, config, architecture, hf);
    cJSON_DeleteItemFromObjectCaseSensitive(hf, "qkv_bias"); /* ViT's: BEiT's keys have no bias */
    tp_hf_put(hf, "model_type", cJSON_CreateString("beit"));
    tp_hf_put(hf, "use_mask_token", cJSON_CreateBool(mask_token_used(model)));
    tp_hf_put(hf, "use_absolute_position_embeddings",
              cJSON_CreateBool(tp_params_find(&model->params, "embedding.pos.embedding.weight") != NULL));
    tp_hf_put(hf, "use_relative_position_bias", cJSON_CreateBool(!strcmp(layout.relative, "layer")));
    tp_hf_put(hf, "use_shared_relative_position_bias", cJSON_CreateBool(!strcmp(layout.relative, "shared")));
    tp_hf_put(hf, "layer_scale_init_value", cJSON_CreateNumber(layout.layer_scale));
    tp_hf_put(hf, "use_mean_pooling", cJSON_CreateBool(!layout.final_layernorm));
}
