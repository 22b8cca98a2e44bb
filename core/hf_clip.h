/* Hugging Face CLIP (model_type clip: CLIPModel) into tp and back, for core/hf.c, which routes
 * config.json files of model_type clip and two-stream models with a dual embedding here.
 *
 * The tp model is TencentPretrain's CLIP layout (embedding dual, encoder dual, target clr) with
 * Hugging Face's computation: both towers pre-LN transformers with torch layer norms (eps
 * layer_norm_eps) and quick_gelu; stream_0 (text) with a causal mask, no embedding layer norm,
 * pooled at its last real token (the end-of-text token the CLIP tokenizer ends every text with);
 * stream_1 (vision) with the patch convolution without bias, pre_layrnorm as its embedding layer
 * norm, pooled at the class token.  Names (layer parts as in core/hf_vit.h, with CLIP's spelling):
 *   text_model.embeddings.token_embedding       embedding.dual.embedding_0.word.embedding
 *   text_model.embeddings.position_embedding    embedding.dual.embedding_0.pos.embedding
 *   vision_model.embeddings.class_embedding [E] embedding.dual.embedding_1.patch.cls_emb [1, 1, E]
 *   vision_model.embeddings.patch_embedding     embedding.dual.embedding_1.patch.projection
 *   vision_model.embeddings.position_embedding  embedding.dual.embedding_1.pos.embedding
 *   vision_model.pre_layrnorm                   embedding.dual.stream_1_layer_norm
 *   {text,vision}_model.encoder.layers.{i}.X    encoder.encoder_{0,1}.transformer.{i}.Y, X -> Y:
 *     self_attn.{q,k,v}_proj  self_attn.linear_layers.{0,1,2}   self_attn.out_proj  self_attn.final_linear
 *     layer_norm1  layer_norm_1   mlp.fc1  feed_forward.linear_1   mlp.fc2  feed_forward.linear_2
 *     layer_norm2  layer_norm_2
 *   text_model.final_layer_norm                 encoder.encoder_0.layer_norm
 *   vision_model.post_layernorm                 encoder.encoder_1.layer_norm
 *   text_projection.weight, visual_projection.weight  target.clr.encoder_{0,1}_projection
 *   logit_scale []                              target.clr.logit_scale [1]
 * The position_ids buffers older files carry are dropped. */
#ifndef TP_HF_CLIP_H
#define TP_HF_CLIP_H

#include <cjson/cJSON.h>

#include "config.h"
#include "hf.h"
#include "model.h"

/* config.json's model_type is clip. */
int tp_hf_clip_is(const cJSON *root);
/* Adds the tp model config's keys for the CLIP config.json `root` (read from path) to tp; -1 +
 * error naming the file and key. */
int tp_hf_clip_config(const char *path, const cJSON *root, cJSON *tp);
/* A tp model in CLIP's layout: a two-stream model with a dual embedding. */
int tp_hf_clip_model(const tp_model *model);
/* The names and layouts of hf.c's loading and writing loops for a CLIP-layout model (it must outlive them). */
tp_hf_names tp_hf_clip_names(const tp_model *model);
/* CLIPModel, or -1 + error naming the key Hugging Face's CLIP cannot express. */
int tp_hf_clip_architecture(const tp_model *model, tp_config *config, const char **architecture);
/* Writes the fields tp decides into hf, the config.json object (the kept original or empty). */
void tp_hf_clip_config_json(const tp_model *model, const char *architecture, cJSON *hf);

#endif
