/* Hugging Face GPT-2 (model_type gpt2: GPT2Model, GPT2LMHeadModel) in tp, for core/hf.c, which
 * routes config.json files of model_type gpt2 and models with a causal mask here.
 *
 * The tp model is TencentPretrain's GPT-2: embedding [word, pos] without a layer norm, a pre-LN
 * causal transformer with a final encoder.layer_norm, torch layer norms (eps layer_norm_epsilon),
 * and for GPT2LMHeadModel the lm target, tied to the word embedding unless tie_word_embeddings is
 * false.  GPT-2's Conv1D layers store their weights as [in, out], the transpose of tp's linear
 * [out, in], and c_attn holds the query, key and value projections side by side:
 *   transformer.wte.weight             embedding.word.embedding.weight
 *   transformer.wpe.weight             embedding.pos.embedding.weight
 *   transformer.h.{i}.ln_1             encoder.transformer.{i}.layer_norm_1
 *   transformer.h.{i}.attn.c_attn      self_attn.linear_layers.{0,1,2}: columns [jH, (j+1)H), transposed
 *   transformer.h.{i}.attn.c_proj      self_attn.final_linear (transposed)
 *   transformer.h.{i}.ln_2             layer_norm_2
 *   transformer.h.{i}.mlp.c_fc         feed_forward.linear_1 (transposed)
 *   transformer.h.{i}.mlp.c_proj       feed_forward.linear_2 (transposed)
 *   transformer.ln_f                   encoder.layer_norm
 *   lm_head.weight (untied only)       target.lm.output_layer.weight
 * GPT2Model's names have no "transformer." prefix; loading accepts both. */
#ifndef TP_HF_GPT2_H
#define TP_HF_GPT2_H

#include <cjson/cJSON.h>

#include "config.h"
#include "hf.h"
#include "model.h"

/* config.json's model_type is gpt2. */
int tp_hf_gpt2_is(const cJSON *root);
/* Adds the tp model config's keys for the GPT-2 config.json `root` (read from path) to tp;
 * -1 + error naming the file and key. */
int tp_hf_gpt2_config(const char *path, const cJSON *root, cJSON *tp);
/* A tp model in GPT-2's layout: a causal mask (no other family Hugging Face reads has one). */
int tp_hf_gpt2_model(const tp_model *model);
/* Loads the safetensors file at path into the model; parameters named skip_prefix... are left.
 * With a report, every tensor of the file must be used or droppable (the dropped ones are
 * listed); without one, unused tensors are ignored. */
int tp_hf_gpt2_load(const char *path, tp_model *model, const char *skip_prefix, tp_hf_report *report);
/* The architecture of a GPT-2-layout tp model, refusing what GPT-2 cannot express (naming the key). */
int tp_hf_gpt2_architecture(const tp_model *model, tp_config *config, const char **architecture);
/* Writes the fields tp decides into hf, the config.json object (the kept original or empty). */
void tp_hf_gpt2_config_json(const tp_model *model, tp_config *config, const char *architecture, cJSON *hf);
/* The model's parameters under Hugging Face's GPT-2 names and layouts, as a safetensors file. */
int tp_hf_gpt2_write_weights(const char *path, const tp_model *model);

/* core/hf.c's activation names: Hugging Face's name -> tp's (NULL if unknown), tp's -> Hugging Face's. */
const char *tp_hf_activation_to_tp(const char *hf_name);
const char *tp_hf_activation_name(tp_activation activation);

#endif
