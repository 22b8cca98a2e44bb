/* Hugging Face BEiT (model_type beit: BeitModel, BeitForImageClassification,
 * BeitForMaskedImageModeling) into tp, for core/hf.c, which routes config.json files of model_type
 * beit and models with a masked_patch embedding here.  BEiT is ViT's layout (core/hf_vit.h: the
 * config keys and the layer names are shared) plus:
 *   - the masked_patch embedding (mask token: embeddings.mask_token [1, 1, E] -> mask_emb [1, E];
 *     models without use_mask_token load it as zeros, never used without a patch mask);
 *   - absolute positions only with use_absolute_position_embeddings (embedding [masked_patch, pos]);
 *   - relative position bias: use_shared_relative_position_bias -> relative_position_bias
 *     "shared" (encoder.relative_position_bias.relative_position_bias_table ->
 *     encoder.relative_position_bias_table), use_relative_position_bias -> "layer"
 *     (encoder.layer.{i}.attention.attention.relative_position_bias.relative_position_bias_table ->
 *     encoder.transformer.{i}.self_attn.relative_position_bias_table);
 *   - layer scale: layer_scale_init_value > 0 -> layer_scale_init (encoder.layer.{i}.lambda_1 / 2 [E]
 *     -> encoder.transformer.{i}.gamma_1 / 2 [1, E]);
 *   - the key projections have no bias: tp's loads as zeros (a key bias adds the same amount to all
 *     of a query's scores, which the softmax cancels: it changes nothing);
 *   - mean pooling (use_mean_pooling, the default): BeitModel's final norm is an identity
 *     (final_layernorm false) and BeitForImageClassification's head normalises the mean of the
 *     patch rows (pooling patch_mean, pooled_layernorm: beit.pooler.layernorm ->
 *     target.cls.layer_norm) into the classifier; without it, ViT's head (the class token's row
 *     after the final layernorm);
 *   - heads: BeitForImageClassification's classifier as ViT's (cls target, no pooler);
 *     BeitForMaskedImageModeling loads its backbone (its visual-token head lm_head is dropped: tp
 *     has no BEiT pre-training data) with the top-level layernorm as encoder.layer_norm (it needs
 *     use_mean_pooling: else two norms follow the last layer).
 * Backbone prefix "beit." with a head, none for BeitModel; loading accepts both.  drop_path_rate
 * (stochastic depth) is a training-only setting tp does not have: it is ignored (tp's dropout is
 * hidden_dropout_prob).
 * Written back (tp-convert --to-hf): BeitModel or BeitForImageClassification with the flags above
 * from the tp keys, the mask token only when it is used (use_mask_token: not all zeros), no key
 * biases (exact: the softmax cancels them); a bare model with mean pooling gets no pooler weights
 * (transformers starts BeitModel's pooler norm fresh, the hidden states are the model's). */
#ifndef TP_HF_BEIT_H
#define TP_HF_BEIT_H

#include <cjson/cJSON.h>

#include "config.h"
#include "hf.h"
#include "model.h"

/* config.json's model_type is beit. */
int tp_hf_beit_is(const cJSON *root);
/* Adds the tp model config's keys for the BEiT config.json `root` (read from path) to tp; -1 + error
 * naming the file and key. */
int tp_hf_beit_config(const char *path, const cJSON *root, cJSON *tp);
/* A tp model in BEiT's layout: it has a masked_patch embedding. */
int tp_hf_beit_model(const tp_model *model);
/* The names and layouts of hf.c's loading loop for a BEiT-layout model (it must outlive them). */
tp_hf_names tp_hf_beit_names(const tp_model *model);
/* The Hugging Face architecture of a BEiT-layout model, refusing what BEiT cannot express (naming the
 * config and the key). */
int tp_hf_beit_architecture(const tp_model *model, tp_config *config, const char **architecture);
/* config.json's fields for the model (after tp_hf_beit_architecture accepted it) into hf. */
void tp_hf_beit_config_json(const tp_model *model, tp_config *config, const char *architecture, cJSON *hf);

#endif
