/* Hugging Face ViT -> tp: config.json and names (core/hf_vit.h). */
#include "hf_vit.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "hf.h"
#include "hf_gpt2.h" /* tp_hf_activation_to_tp */
#include "safetensors.h"

#define NAME_CAP 512

/* ---- config.json -> tp ------------------------------------------------------------------------ */

int tp_hf_vit_is(const cJSON *root)
{
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(root, "model_type");
    return cJSON_IsString(type) && !strcmp(type->valuestring, "vit");
}

int tp_hf_vit_classifier_config(const char *path, const cJSON *root, cJSON *tp)
{
    const cJSON *id2label = cJSON_GetObjectItemCaseSensitive(root, "id2label");
    int64_t labels = 2;
    if (cJSON_IsObject(id2label))
        labels = cJSON_GetArraySize(id2label);
    else if (tp_hf_json_range(path, root, "num_labels", 2, 1, 1 << 20, &labels) < 0)
        return -1;
    if (labels < 2)
        return tp_fail("%s: key 'id2label': %lld label(s): tp's cls head classifies into 2 or more", path,
                       (long long)labels);
    static const char *const target[] = {"cls"};
    cJSON_AddItemToObject(tp, "target", cJSON_CreateStringArray(target, 1));
    cJSON_AddNumberToObject(tp, "labels_num", (double)labels);
    cJSON_AddStringToObject(tp, "pooling", "first");
    cJSON_AddBoolToObject(tp, "pooler", 0);
    return 0;
}

int tp_hf_vit_backbone_config(const char *path, const cJSON *root, cJSON *tp)
{
    int64_t hidden, layers, heads, inner, image, patch, channels;
    double eps, dropout;
    const cJSON *act = cJSON_GetObjectItemCaseSensitive(root, "hidden_act");
    const char *tp_act = tp_hf_activation_to_tp(cJSON_IsString(act) ? act->valuestring : act ? "" : "gelu");
    if (tp_hf_json_range(path, root, "hidden_size", 768, 1, 1 << 16, &hidden) < 0 ||
        tp_hf_json_range(path, root, "num_hidden_layers", 12, 1, 1024, &layers) < 0 ||
        tp_hf_json_range(path, root, "num_attention_heads", 12, 1, 1024, &heads) < 0 ||
        tp_hf_json_range(path, root, "intermediate_size", 3072, 1, 1 << 20, &inner) < 0 ||
        tp_hf_json_range(path, root, "image_size", 224, 1, 1 << 16, &image) < 0 ||
        tp_hf_json_range(path, root, "patch_size", 16, 1, 1 << 16, &patch) < 0 ||
        tp_hf_json_range(path, root, "num_channels", 3, 1, 1024, &channels) < 0 ||
        tp_hf_json_number(path, root, "layer_norm_eps", 1e-12, &eps) < 0 ||
        tp_hf_json_number(path, root, "hidden_dropout_prob", 0.0, &dropout) < 0)
        return -1;
    if (!tp_act) return tp_fail("%s: key 'hidden_act': not supported (supported: gelu, gelu_new, relu, silu, quick_gelu)", path);
    if (patch > image) return tp_fail("%s: key 'patch_size': %lld is larger than image_size", path, (long long)patch);
    cJSON_AddNumberToObject(tp, "emb_size", (double)hidden);
    cJSON_AddNumberToObject(tp, "hidden_size", (double)hidden);
    cJSON_AddNumberToObject(tp, "feedforward_size", (double)inner);
    cJSON_AddNumberToObject(tp, "heads_num", (double)heads);
    cJSON_AddNumberToObject(tp, "layers_num", (double)layers);
    cJSON_AddNumberToObject(tp, "max_seq_length", (double)((image / patch) * (image / patch) + 1));
    cJSON_AddNumberToObject(tp, "dropout", dropout);
    cJSON_AddStringToObject(tp, "hidden_act", tp_act);
    cJSON_AddStringToObject(tp, "data_processor", "vit");
    cJSON_AddBoolToObject(tp, "remove_embedding_layernorm", 1);
    cJSON_AddStringToObject(tp, "encoder", "transformer");
    cJSON_AddStringToObject(tp, "mask", "fully_visible");
    cJSON_AddStringToObject(tp, "layernorm_positioning", "pre");
    cJSON_AddStringToObject(tp, "layernorm", "normal_torch");
    cJSON_AddNumberToObject(tp, "layernorm_eps", eps);
    cJSON_AddNumberToObject(tp, "image_height", (double)image);
    cJSON_AddNumberToObject(tp, "image_width", (double)image);
    cJSON_AddNumberToObject(tp, "patch_size", (double)patch);
    cJSON_AddNumberToObject(tp, "channels_num", (double)channels);
    return 0;
}

int tp_hf_vit_config(const char *path, const cJSON *root, cJSON *tp)
{
    static const char *const embedding[] = {"patch", "pos"};
    const cJSON *qkv_bias = cJSON_GetObjectItemCaseSensitive(root, "qkv_bias");
    int classifier = 0;
    if (tp_hf_headed_architecture(path, root, "ViTModel", "ViTForImageClassification", &classifier) < 0 ||
        tp_hf_vit_backbone_config(path, root, tp) < 0)
        return -1;
    if (qkv_bias && !cJSON_IsTrue(qkv_bias)) return tp_fail("%s: key 'qkv_bias': only true is supported", path);
    cJSON_AddItemToObject(tp, "embedding", cJSON_CreateStringArray(embedding, 2));
    return classifier ? tp_hf_vit_classifier_config(path, root, tp) : 0;
}

/* ---- names ------------------------------------------------------------------------------------ */

int tp_hf_vit_model(const tp_model *model)
{
    return tp_params_find(&model->params, "embedding.patch.cls_emb") != NULL;
}

static const tp_hf_name_pair layer_parts[] = {
    {"self_attn.linear_layers.0", "attention.attention.query"}, {"self_attn.linear_layers.1", "attention.attention.key"},
    {"self_attn.linear_layers.2", "attention.attention.value"}, {"self_attn.final_linear", "attention.output.dense"},
    {"layer_norm_1", "layernorm_before"},                       {"feed_forward.linear_1", "intermediate.dense"},
    {"feed_forward.linear_2", "output.dense"},                  {"layer_norm_2", "layernorm_after"},
};
static const tp_hf_name_pair whole_names[] = {
    {"embedding.patch.cls_emb", "embeddings.cls_token"},
    {"embedding.patch.projection.weight", "embeddings.patch_embeddings.projection.weight"},
    {"embedding.patch.projection.bias", "embeddings.patch_embeddings.projection.bias"},
    {"embedding.pos.embedding.weight", "embeddings.position_embeddings"},
    {"encoder.layer_norm.weight", "layernorm.weight"},
    {"encoder.layer_norm.bias", "layernorm.bias"},
};

/* The Hugging Face name of a tp parameter with the backbone prefix given ("vit." or ""); 0 when unmapped. */
static int hf_name_of(const char *tp, const char *prefix, char *out, size_t cap)
{
    if (!strncmp(tp, "target.cls.linear_2.", 20)) return snprintf(out, cap, "classifier.%s", tp + 20) > 0;
    const char *whole = tp_hf_pair_find(whole_names, sizeof whole_names / sizeof whole_names[0], tp);
    if (whole) return snprintf(out, cap, "%s%s", prefix, whole) > 0;
    return tp_hf_vit_layer_name(tp, prefix, out, cap);
}

int tp_hf_vit_layer_name(const char *tp, const char *prefix, char *out, size_t cap)
{
    int layer = 0, consumed = 0;
    const char *leaf = NULL;
    if (sscanf(tp, "encoder.transformer.%d.%n", &layer, &consumed) != 1 || !consumed) return 0;
    size_t parts = sizeof layer_parts / sizeof layer_parts[0];
    const char *part = tp_hf_pair_find_part(layer_parts, parts, tp + consumed, &leaf);
    return part && snprintf(out, cap, "%sencoder.layer.%d.%s%s", prefix, layer, part, leaf) > 0;
}

/* ---- names and layouts for hf.c's loading and writing loops ------------------------------------- */

/* form 0: the prefix files of this model are written with ("vit." with a classifier, none bare); 1:
 * the other one. */
static int names_name(const void *self, const char *tp_name, int form, char *out, size_t cap)
{
    const tp_model *model = self;
    int headed = model->target_count > 0;
    return hf_name_of(tp_name, headed != (form == 1) ? "vit." : "", out, cap);
}

/* The positions are stored [1, S, E] (a leading 1), the other tensors as tp holds them. */
static int names_layout(const void *self, const tp_param *param, int64_t *shape, int64_t *offset)
{
    (void)self;
    if (strcmp(param->name, "embedding.pos.embedding.weight")) return 0;
    shape[0] = 1;
    memcpy(shape + 1, param->tensor.shape, (size_t)param->tensor.ndim * sizeof *shape);
    *offset = 0;
    return param->tensor.ndim + 1;
}

/* ViTModel's pooler has no place in tp. */
static int names_droppable(const void *self, const char *hf_name)
{
    (void)self;
    return !strncmp(hf_name, "pooler.", 7) || !strncmp(hf_name, "vit.pooler.", 11);
}

tp_hf_names tp_hf_vit_names(const tp_model *model)
{
    return (tp_hf_names){.model_type = "vit",
                         .self = model,
                         .name = names_name,
                         .layout = names_layout,
                         .droppable = names_droppable};
}

int tp_hf_vit_load(const char *path, tp_model *model, const char *skip_prefix, tp_hf_report *report)
{
    tp_hf_names names = tp_hf_vit_names(model);
    return tp_hf_load_names(path, model, skip_prefix, &names, report);
}

/* ---- tp -> config.json --------------------------------------------------------------------------- */

int tp_hf_vision_refuse(tp_config *config, const char *family, const char *key, const char *need)
{
    return tp_fail("%s: key '%s': Hugging Face's %s %s", tp_config_name(config), key, family, need);
}

static int refuse(tp_config *config, const char *key, const char *need)
{
    return tp_hf_vision_refuse(config, "ViT", key, need);
}

int tp_hf_vision_check_encoder(const tp_model *model, tp_config *config, const char *family)
{
    const tp_model_config *hp = &model->hp;
    int64_t height = 0, width = 0;
    if (!hp->layernorm_pre) return tp_hf_vision_refuse(config, family, "layernorm_positioning", "needs pre");
    if (hp->layernorm != TP_NORM_TORCH) return tp_hf_vision_refuse(config, family, "layernorm", "needs normal_torch");
    if (!hp->remove_embedding_layernorm)
        return tp_hf_vision_refuse(config, family, "remove_embedding_layernorm", "needs true");
    if (hp->remove_transformer_bias || hp->remove_attention_scale || hp->parameter_sharing ||
        hp->factorized_embedding_parameterization || hp->feed_forward_gated || hp->relative_position_embedding)
        return tp_hf_vision_refuse(config, family, "encoder",
                                   "is a plain transformer (biases, scaled attention, no sharing, no factorization, "
                                   "no gated feed-forward, no T5 relative positions)");
    if (hp->mask != TP_MASK_FULLY_VISIBLE) return tp_hf_vision_refuse(config, family, "mask", "needs fully_visible");
    if (hp->emb_size != hp->hidden_size) return tp_hf_vision_refuse(config, family, "emb_size", "needs hidden_size");
    if (tp_config_int(config, "image_height", 256, 1, 1 << 16, &height) < 0 ||
        tp_config_int(config, "image_width", 256, 1, 1 << 16, &width) < 0)
        return -1;
    if (height != width) return tp_hf_vision_refuse(config, family, "image_width", "has square images (image_size)");
    return 0;
}

int tp_hf_vit_architecture(const tp_model *model, tp_config *config, const char **architecture)
{
    const char *pooling = "first";
    if (tp_hf_vision_check_encoder(model, config, "ViT") < 0) return -1;
    if (model->embedding_count != 2 || !tp_params_find(&model->params, "embedding.pos.embedding.weight"))
        return refuse(config, "embedding", "needs patch and pos");
    if (tp_config_string(config, "pooling", "first", &pooling) < 0) return -1;
    if (model->target_count > 1 || (model->target_count == 1 && strcmp(tp_model_target_name(model, 0), "cls")))
        return refuse(config, "target", "needs cls or none");
    if (model->target_count && tp_params_find(&model->params, "target.cls.linear_1.weight"))
        return refuse(config, "pooler", "classifier is one linear layer (pooler false)");
    if (model->target_count && strcmp(pooling, "first")) return refuse(config, "pooling", "pools the class token (first)");
    *architecture = model->target_count ? "ViTForImageClassification" : "ViTModel";
    return 0;
}

void tp_hf_vit_config_json(const tp_model *model, tp_config *config, const char *architecture, cJSON *hf)
{
    const tp_model_config *hp = &model->hp;
    int64_t image = 256, patch = 16, channels = 3, labels = 0;
    double eps = 1e-6; /* the double the config holds: hp's float would not write back 1e-12 */
    tp_config_double(config, "layernorm_eps", 1e-6, 0.0, 1.0, &eps);
    tp_config_int(config, "image_height", 256, 1, 1 << 16, &image);
    tp_config_int(config, "patch_size", 16, 1, 1 << 16, &patch);
    tp_config_int(config, "channels_num", 3, 1, 1024, &channels);
    const char *names[1] = {architecture};
    tp_hf_put(hf, "architectures", cJSON_CreateStringArray(names, 1));
    tp_hf_put(hf, "model_type", cJSON_CreateString("vit"));
    tp_hf_put(hf, "hidden_size", cJSON_CreateNumber((double)hp->hidden_size));
    tp_hf_put(hf, "num_hidden_layers", cJSON_CreateNumber((double)hp->layers_num));
    tp_hf_put(hf, "num_attention_heads", cJSON_CreateNumber((double)hp->heads_num));
    tp_hf_put(hf, "intermediate_size", cJSON_CreateNumber((double)hp->feedforward_size));
    tp_hf_put(hf, "hidden_act", cJSON_CreateString(tp_hf_activation_name(hp->hidden_act)));
    tp_hf_put(hf, "image_size", cJSON_CreateNumber((double)image));
    tp_hf_put(hf, "patch_size", cJSON_CreateNumber((double)patch));
    tp_hf_put(hf, "num_channels", cJSON_CreateNumber((double)channels));
    tp_hf_put(hf, "layer_norm_eps", cJSON_CreateNumber(eps));
    tp_hf_put(hf, "hidden_dropout_prob", cJSON_CreateNumber(hp->dropout));
    if (!cJSON_GetObjectItemCaseSensitive(hf, "attention_probs_dropout_prob"))
        tp_hf_put(hf, "attention_probs_dropout_prob", cJSON_CreateNumber(hp->dropout));
    tp_hf_put(hf, "qkv_bias", cJSON_CreateBool(1));
    if (!model->target_count || tp_config_int(config, "labels_num", 2, 1, 1 << 20, &labels) < 0) return;
    /* id2label decides the head's size on reading: keep the original names when they fit. */
    const cJSON *id2label = cJSON_GetObjectItemCaseSensitive(hf, "id2label");
    if (cJSON_IsObject(id2label) && cJSON_GetArraySize(id2label) == labels) return;
    cJSON *made = cJSON_CreateObject(), *label2id = cJSON_CreateObject();
    for (int64_t i = 0; i < labels; i++) {
        char id[32], name[40];
        snprintf(id, sizeof id, "%lld", (long long)i);
        snprintf(name, sizeof name, "LABEL_%lld", (long long)i);
        cJSON_AddStringToObject(made, id, name);
        cJSON_AddNumberToObject(label2id, name, (double)i);
    }
    tp_hf_put(hf, "id2label", made);
    tp_hf_put(hf, "label2id", label2id);
}
