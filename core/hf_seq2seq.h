/* Hugging Face encoder-decoder models in tp, for core/hf.c: T5 and T5 v1.1 (core/hf_t5.c, model_type
 * t5: T5ForConditionalGeneration), BART (core/hf_bart.c, model_type bart: BartForConditionalGeneration)
 * and Pegasus (core/hf_pegasus.c, model_type pegasus: PegasusForConditionalGeneration), read into
 * TencentPretrain-style configs and names and written back.  Each family is a table of name
 * patterns, where "{i}" stands for a layer index, that hf.c's one loading and one writing loop use
 * (tp_hf_names); docs/convert.md lists the tables. */
#ifndef TP_HF_SEQ2SEQ_H
#define TP_HF_SEQ2SEQ_H

#include <cjson/cJSON.h>

#include "hf.h"
#include "model.h"

/* One tp name pattern and its Hugging Face counterpart ("{i}" at most once in each). */
typedef struct tp_hf_rename {
    const char *tp, *hf;
} tp_hf_rename;

/* One family: its names (gated_names, when not NULL, looked up first for `feed_forward: gated`),
 * the tensors of its files that tp may leave (copies of tied tables, fixed buffers), and its
 * config.json both ways. */
typedef struct tp_hf_seq2seq_family {
    const char *model_type, *architecture;
    const tp_hf_rename *names, *gated_names;
    const char *const *droppable;
    /* Adds the tp model config's keys for config.json `root` (read from path) to tp. */
    int (*config)(const char *path, const cJSON *root, cJSON *tp);
    /* 0 when Hugging Face's class can hold the tp model, else -1 + error naming the tp key. */
    int (*expressible)(const tp_model *model, tp_config *config);
    /* Writes the fields tp decides into hf (the kept config.json or an empty object). */
    void (*config_json)(const tp_model *model, tp_config *config, cJSON *hf);
} tp_hf_seq2seq_family;

extern const tp_hf_seq2seq_family tp_hf_t5, tp_hf_bart, tp_hf_pegasus;
extern const tp_hf_seq2seq_family tp_hf_s2t; /* core/hf_s2t.c: model_type speech_to_text */

/* config.json's model_type is one of the families'. */
int tp_hf_seq2seq_is(const cJSON *root);
/* Adds the tp model config's keys for that config.json (read from path) to tp; -1 + error naming
 * the file and key. */
int tp_hf_seq2seq_config(const char *path, const cJSON *root, cJSON *tp);
/* A tp model with a decoder. */
int tp_hf_seq2seq_model(const tp_model *model);
/* The names of the model's family (T5: relative positions; BART: learned positions; else Pegasus). */
tp_hf_names tp_hf_seq2seq_names(const tp_model *model);
/* The architecture for the model, refusing what its family cannot express (naming the tp key). */
int tp_hf_seq2seq_architecture(const tp_model *model, tp_config *config, const char **architecture);
/* Writes the fields tp decides into hf, the config.json object (the kept original or empty). */
void tp_hf_seq2seq_config_json(const tp_model *model, tp_config *config, const char *architecture, cJSON *hf);

/* -1 + error naming the key of the tp config (why: what Hugging Face's class needs). */
int tp_hf_seq2seq_refuse(tp_config *config, const char *model_type, const char *key, const char *why);
/* The model's module lists: its embedding / tgt_embedding types are exactly `names` (count of them). */
int tp_hf_seq2seq_embeddings_are(const tp_model *model, int target_side, const char *const *names, int count);
/* Sets hf[key] to a number / boolean. */
void tp_hf_put_number(cJSON *hf, const char *key, double value);
void tp_hf_put_bool(cJSON *hf, const char *key, int value);
/* The family's defaults for the keys a config.json may leave out (each family's Config class). */
typedef struct tp_hf_bart_like_defaults {
    int64_t vocab_size, d_model, ffn_dim, encoder_layers, decoder_layers, attention_heads;
    const char *activation_function;
    const char *positions_key; /* the key giving the decoder's max_seq_length */
    int64_t positions;
    int scale_embedding;
    int shared_embedding; /* one word table for both sides, and final_logits_bias as the lm bias */
} tp_hf_bart_like_defaults;
extern const tp_hf_bart_like_defaults tp_hf_bart_defaults; /* BART's and Pegasus's */
/* The tp config keys of the BART-like families' config.json alike (sizes, activation, dropout,
 * torch norms with eps 1e-5 and `positioning` post or pre, the lm target, tie_word_embeddings,
 * scale_embedding, with shared_embedding the shared word table and the lm bias); the embeddings
 * are the family's. */
int tp_hf_seq2seq_bart_like_config(const char *path, const cJSON *root, const char *positioning,
                                   const tp_hf_bart_like_defaults *defaults, cJSON *tp);
/* The checks shared by BART and Pegasus (torch norms with eps 1e-5, biases, the attention scale, no
 * relative positions, one lm target, the shared word table); layernorm_pre: the positioning needed. */
int tp_hf_seq2seq_bart_like(const tp_model *model, tp_config *config, const char *model_type, int layernorm_pre);
/* BART's and Pegasus's config.json fields alike (d_model, layers, heads, ffn, activation, dropout,
 * tie_word_embeddings, scale_embedding). */
void tp_hf_seq2seq_bart_like_json(const tp_model *model, tp_config *config, cJSON *hf);
/* The mapping of BART's and Pegasus's layers (side "encoder" / "decoder"). */
#define TP_HF_ATTENTION(side, tp_side, tp_attn, hf_attn)                                                              \
    {tp_side ".{i}." tp_attn ".linear_layers.0.weight", "model." side ".layers.{i}." hf_attn ".q_proj.weight"},       \
        {tp_side ".{i}." tp_attn ".linear_layers.0.bias", "model." side ".layers.{i}." hf_attn ".q_proj.bias"},       \
        {tp_side ".{i}." tp_attn ".linear_layers.1.weight", "model." side ".layers.{i}." hf_attn ".k_proj.weight"},   \
        {tp_side ".{i}." tp_attn ".linear_layers.1.bias", "model." side ".layers.{i}." hf_attn ".k_proj.bias"},       \
        {tp_side ".{i}." tp_attn ".linear_layers.2.weight", "model." side ".layers.{i}." hf_attn ".v_proj.weight"},   \
        {tp_side ".{i}." tp_attn ".linear_layers.2.bias", "model." side ".layers.{i}." hf_attn ".v_proj.bias"},       \
        {tp_side ".{i}." tp_attn ".final_linear.weight", "model." side ".layers.{i}." hf_attn ".out_proj.weight"},    \
        {tp_side ".{i}." tp_attn ".final_linear.bias", "model." side ".layers.{i}." hf_attn ".out_proj.bias"}
#define TP_HF_WEIGHT_AND_BIAS(tp_name, hf_name) {tp_name ".weight", hf_name ".weight"}, {tp_name ".bias", hf_name ".bias"}
#define TP_HF_BART_LAYERS                                                                                            \
    TP_HF_ATTENTION("encoder", "encoder.transformer", "self_attn", "self_attn"),                                    \
        TP_HF_WEIGHT_AND_BIAS("encoder.transformer.{i}.layer_norm_1", "model.encoder.layers.{i}.self_attn_layer_norm"), \
        TP_HF_WEIGHT_AND_BIAS("encoder.transformer.{i}.feed_forward.linear_1", "model.encoder.layers.{i}.fc1"),     \
        TP_HF_WEIGHT_AND_BIAS("encoder.transformer.{i}.feed_forward.linear_2", "model.encoder.layers.{i}.fc2"),     \
        TP_HF_WEIGHT_AND_BIAS("encoder.transformer.{i}.layer_norm_2", "model.encoder.layers.{i}.final_layer_norm"), \
        TP_HF_ATTENTION("decoder", "decoder.transformer_decoder", "self_attn", "self_attn"),                        \
        TP_HF_WEIGHT_AND_BIAS("decoder.transformer_decoder.{i}.layer_norm_1",                                       \
                              "model.decoder.layers.{i}.self_attn_layer_norm"),                                     \
        TP_HF_ATTENTION("decoder", "decoder.transformer_decoder", "context_attn", "encoder_attn"),                  \
        TP_HF_WEIGHT_AND_BIAS("decoder.transformer_decoder.{i}.layer_norm_2",                                       \
                              "model.decoder.layers.{i}.encoder_attn_layer_norm"),                                  \
        TP_HF_WEIGHT_AND_BIAS("decoder.transformer_decoder.{i}.feed_forward.linear_1", "model.decoder.layers.{i}.fc1"), \
        TP_HF_WEIGHT_AND_BIAS("decoder.transformer_decoder.{i}.feed_forward.linear_2", "model.decoder.layers.{i}.fc2"), \
        TP_HF_WEIGHT_AND_BIAS("decoder.transformer_decoder.{i}.layer_norm_3", "model.decoder.layers.{i}.final_layer_norm"), \
        {"embedding.word.embedding.weight", "model.shared.weight"}, {"target.lm.output_layer.weight", "lm_head.weight"}, \
        {"target.lm.output_layer.bias", "final_logits_bias"}

#endif
