/* Hugging Face model directories (config.json + model.safetensors) of the BERT family,
 * read into tp's model config and parameter names (TencentPretrain's).
 *
 * Name map (an optional "bert." prefix is accepted on the Hugging Face side):
 *   embeddings.word_embeddings.weight          embedding.word.embedding.weight
 *   embeddings.position_embeddings.weight      embedding.pos.embedding.weight
 *   embeddings.token_type_embeddings.weight    embedding.seg.embedding.weight  (see below)
 *   embeddings.LayerNorm.{weight,bias}         embedding.layer_norm.{weight,bias}
 *   encoder.layer.{i}.attention.self.{query,key,value}   encoder.transformer.{i}.self_attn.linear_layers.{0,1,2}
 *   encoder.layer.{i}.attention.output.dense             encoder.transformer.{i}.self_attn.final_linear
 *   encoder.layer.{i}.attention.output.LayerNorm         encoder.transformer.{i}.layer_norm_1
 *   encoder.layer.{i}.intermediate.dense                 encoder.transformer.{i}.feed_forward.linear_1
 *   encoder.layer.{i}.output.dense                       encoder.transformer.{i}.feed_forward.linear_2
 *   encoder.layer.{i}.output.LayerNorm                   encoder.transformer.{i}.layer_norm_2
 * Segment embeddings: tp's (TencentPretrain's) 3 rows are 0 = padding, 1 = A, 2 = B;
 * Hugging Face's 2 token types are A, B and padding uses type 0.  Rows 0 and 1 both get
 * Hugging Face's type 0, row 2 its type 1, so padded positions compute what Hugging Face
 * computes there.  Layer norms are torch's everywhere (eps from layer_norm_eps). */
#ifndef TP_HF_H
#define TP_HF_H

#include "config.h"
#include "params.h"

/* A tp model config (TencentPretrain keys + tp's embedding_layernorm/target_layernorm) for
 * the model in dir/config.json; NULL + error naming the file and key. */
tp_config *tp_hf_bert_config(const char *dir);
/* Loads dir/model.safetensors into params (a model built from tp_hf_bert_config): every tp
 * parameter of the embedding and encoder must be found with its shape (the error names the
 * Hugging Face tensor); target parameters (task heads) keep their initialisation. */
int tp_hf_bert_load(const char *dir, tp_params *params);

#endif
