/* Hugging Face ViT (model_type vit: ViTModel, ViTForImageClassification) into tp, for core/hf.c,
 * which routes config.json files of model_type vit and models with a patch embedding here.
 *
 * The tp model is TencentPretrain's ViT with torch layer norms: embedding [patch, pos] without a
 * layer norm, a pre-LN transformer with a final encoder.layer_norm (eps layer_norm_eps), and for
 * ViTForImageClassification the cls target pooling the class token into one linear layer
 * (pooler false).  Names (backbone prefix "vit." in the classifier, none in ViTModel; loading
 * accepts both):
 *   embeddings.cls_token                         embedding.patch.cls_emb
 *   embeddings.patch_embeddings.projection       embedding.patch.projection
 *   embeddings.position_embeddings [1, S, E]     embedding.pos.embedding.weight [S, E]
 *   encoder.layer.{i}.attention.attention.{query,key,value}  encoder.transformer.{i}.self_attn.linear_layers.{0,1,2}
 *   encoder.layer.{i}.attention.output.dense     ...self_attn.final_linear
 *   encoder.layer.{i}.layernorm_before           ...layer_norm_1
 *   encoder.layer.{i}.intermediate.dense         ...feed_forward.linear_1
 *   encoder.layer.{i}.output.dense               ...feed_forward.linear_2
 *   encoder.layer.{i}.layernorm_after            ...layer_norm_2
 *   layernorm                                    encoder.layer_norm
 *   classifier                                   target.cls.linear_2
 * ViTModel's pooler (pooler.dense) has no place in tp and is dropped.  Writing back (tp-convert
 * --to hf) uses the same names: "vit." with a classifier, none for ViTModel. */
#ifndef TP_HF_VIT_H
#define TP_HF_VIT_H

#include <cjson/cJSON.h>

#include "config.h"
#include "hf.h"
#include "model.h"

/* config.json's model_type is vit. */
int tp_hf_vit_is(const cJSON *root);
/* Adds the tp model config's keys for the ViT config.json `root` (read from path) to tp; -1 +
 * error naming the file and key. */
int tp_hf_vit_config(const char *path, const cJSON *root, cJSON *tp);
/* For BEiT (core/hf_beit.c), which shares ViT's layout: the keys of ViTConfig / BeitConfig that both
 * read (sizes, activation, image geometry, layer norms, dropout) as tp's pre-LN image transformer, all
 * but `embedding` and the head; the cls head (pooling first, no pooler) of id2label's or num_labels'
 * classes.  -1 + error naming the file and key. */
int tp_hf_vit_backbone_config(const char *path, const cJSON *root, cJSON *tp);
int tp_hf_vit_classifier_config(const char *path, const cJSON *root, cJSON *tp);
/* The Hugging Face name of tp's "encoder.transformer.{i}.<part>.<leaf>" (the layer parts above, after
 * prefix, the backbone's: "vit.", "beit." or ""); 0 when the part is not one of them. */
int tp_hf_vit_layer_name(const char *tp, const char *prefix, char *out, size_t cap);
/* A tp model in ViT's layout: it has a patch embedding. */
int tp_hf_vit_model(const tp_model *model);
/* Loads the safetensors file at path into the model; parameters named skip_prefix... are left.
 * With a report, every tensor of the file must be used or droppable; without one, unused
 * tensors are ignored. */
int tp_hf_vit_load(const char *path, tp_model *model, const char *skip_prefix, tp_hf_report *report);
/* The names and layouts of hf.c's loading and writing loops for a ViT-layout model (it must outlive them). */
tp_hf_names tp_hf_vit_names(const tp_model *model);
/* The architecture of a ViT-layout tp model (ViTModel, ViTForImageClassification), refusing what
 * Hugging Face's ViT cannot express (naming the key). */
int tp_hf_vit_architecture(const tp_model *model, tp_config *config, const char **architecture);
/* What ViT and BEiT writing share: pre-LN with torch norms, no embedding norm, a plain fully visible
 * transformer, emb_size = hidden_size, square images; -1 + tp_fail naming the config and the key
 * ("Hugging Face's <family> needs ..."), as tp_hf_vision_refuse words it. */
int tp_hf_vision_check_encoder(const tp_model *model, tp_config *config, const char *family);
int tp_hf_vision_refuse(tp_config *config, const char *family, const char *key, const char *need);
/* Writes the fields tp decides into hf, the config.json object (the kept original or empty). */
void tp_hf_vit_config_json(const tp_model *model, tp_config *config, const char *architecture, cJSON *hf);

#endif
