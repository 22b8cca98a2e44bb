/* Hugging Face BART (model_type bart, BartForConditionalGeneration) as TencentPretrain's BART:
 * embedding and tgt_embedding [word, pos] sharing the word table, each with its own torch layer
 * norm (layernorm_embedding), learned positions offset by 2 (position_offset: the whole
 * max_position_embeddings + 2 rows kept), post-LN transformer encoder and decoder with torch norms
 * (eps 1e-5), biases and the usual 1/sqrt(head_dim) scale, the lm target tied to the word table.
 * mBART-style options (scale_embedding, normalize_before, add_final_layer_norm) are refused. */
#include <stdio.h>
#include <string.h>

#include "error.h"
#include "hf_gpt2.h"
#include "hf_seq2seq.h"

#define ATTENTION(side, tp_side, tp_attn, hf_attn)                                                                    \
    {tp_side ".{i}." tp_attn ".linear_layers.0.weight", "model." side ".layers.{i}." hf_attn ".q_proj.weight"},       \
        {tp_side ".{i}." tp_attn ".linear_layers.0.bias", "model." side ".layers.{i}." hf_attn ".q_proj.bias"},       \
        {tp_side ".{i}." tp_attn ".linear_layers.1.weight", "model." side ".layers.{i}." hf_attn ".k_proj.weight"},   \
        {tp_side ".{i}." tp_attn ".linear_layers.1.bias", "model." side ".layers.{i}." hf_attn ".k_proj.bias"},       \
        {tp_side ".{i}." tp_attn ".linear_layers.2.weight", "model." side ".layers.{i}." hf_attn ".v_proj.weight"},   \
        {tp_side ".{i}." tp_attn ".linear_layers.2.bias", "model." side ".layers.{i}." hf_attn ".v_proj.bias"},       \
        {tp_side ".{i}." tp_attn ".final_linear.weight", "model." side ".layers.{i}." hf_attn ".out_proj.weight"},    \
        {tp_side ".{i}." tp_attn ".final_linear.bias", "model." side ".layers.{i}." hf_attn ".out_proj.bias"}
#define WEIGHT_AND_BIAS(tp_name, hf_name) {tp_name ".weight", hf_name ".weight"}, {tp_name ".bias", hf_name ".bias"}

const tp_hf_rename tp_hf_bart_names[] = {
    {"embedding.word.embedding.weight", "model.shared.weight"},
    {"embedding.pos.embedding.weight", "model.encoder.embed_positions.weight"},
    WEIGHT_AND_BIAS("embedding.layer_norm", "model.encoder.layernorm_embedding"),
    ATTENTION("encoder", "encoder.transformer", "self_attn", "self_attn"),
    WEIGHT_AND_BIAS("encoder.transformer.{i}.layer_norm_1", "model.encoder.layers.{i}.self_attn_layer_norm"),
    WEIGHT_AND_BIAS("encoder.transformer.{i}.feed_forward.linear_1", "model.encoder.layers.{i}.fc1"),
    WEIGHT_AND_BIAS("encoder.transformer.{i}.feed_forward.linear_2", "model.encoder.layers.{i}.fc2"),
    WEIGHT_AND_BIAS("encoder.transformer.{i}.layer_norm_2", "model.encoder.layers.{i}.final_layer_norm"),
    {"tgt_embedding.pos.embedding.weight", "model.decoder.embed_positions.weight"},
    WEIGHT_AND_BIAS("tgt_embedding.layer_norm", "model.decoder.layernorm_embedding"),
    ATTENTION("decoder", "decoder.transformer_decoder", "self_attn", "self_attn"),
    WEIGHT_AND_BIAS("decoder.transformer_decoder.{i}.layer_norm_1", "model.decoder.layers.{i}.self_attn_layer_norm"),
    ATTENTION("decoder", "decoder.transformer_decoder", "context_attn", "encoder_attn"),
    WEIGHT_AND_BIAS("decoder.transformer_decoder.{i}.layer_norm_2", "model.decoder.layers.{i}.encoder_attn_layer_norm"),
    WEIGHT_AND_BIAS("decoder.transformer_decoder.{i}.feed_forward.linear_1", "model.decoder.layers.{i}.fc1"),
    WEIGHT_AND_BIAS("decoder.transformer_decoder.{i}.feed_forward.linear_2", "model.decoder.layers.{i}.fc2"),
    WEIGHT_AND_BIAS("decoder.transformer_decoder.{i}.layer_norm_3", "model.decoder.layers.{i}.final_layer_norm"),
    {"target.lm.output_layer.weight", "lm_head.weight"},
    {NULL, NULL},
};

/* Copies of model.shared.weight, and the logits bias buffer (checked to be zero). */
const char *const tp_hf_bart_droppable[] = {"model.encoder.embed_tokens.weight", "model.decoder.embed_tokens.weight",
                                            "lm_head.weight", "final_logits_bias", NULL};

static int refuse_true(const char *path, const cJSON *root, const char *key)
{
    int value = 0;
    if (tp_hf_json_bool(path, root, key, 0, &value) < 0) return -1;
    return value ? tp_fail("%s: key '%s': true is not supported (tp's BART has no equivalent)", path, key) : 0;
}

int tp_hf_bart_config(const char *path, const cJSON *root, cJSON *tp)
{
    int64_t vocab, d_model, encoder_ffn, decoder_ffn, layers, decoder_layers, heads, decoder_heads, positions;
    double dropout;
    int tied = 1;
    if (tp_hf_json_int(path, root, "vocab_size", 50265, &vocab) < 0 ||
        tp_hf_json_int(path, root, "d_model", 1024, &d_model) < 0 ||
        tp_hf_json_int(path, root, "encoder_ffn_dim", 4096, &encoder_ffn) < 0 ||
        tp_hf_json_int(path, root, "decoder_ffn_dim", 4096, &decoder_ffn) < 0 ||
        tp_hf_json_int(path, root, "encoder_layers", 12, &layers) < 0 ||
        tp_hf_json_int(path, root, "decoder_layers", 12, &decoder_layers) < 0 ||
        tp_hf_json_int(path, root, "encoder_attention_heads", 16, &heads) < 0 ||
        tp_hf_json_int(path, root, "decoder_attention_heads", 16, &decoder_heads) < 0 ||
        tp_hf_json_int(path, root, "max_position_embeddings", 1024, &positions) < 0 ||
        tp_hf_json_number(path, root, "dropout", 0.1, &dropout) < 0 ||
        tp_hf_json_bool(path, root, "tie_word_embeddings", 1, &tied) < 0 ||
        refuse_true(path, root, "scale_embedding") < 0 || refuse_true(path, root, "normalize_before") < 0 ||
        refuse_true(path, root, "add_final_layer_norm") < 0)
        return -1;
    if (decoder_ffn != encoder_ffn || decoder_heads != heads)
        return tp_fail("%s: keys 'decoder_ffn_dim' / 'decoder_attention_heads': tp's decoder has the encoder's sizes",
                       path);
    const char *hf_act = tp_hf_json_string(root, "activation_function", "gelu"), *act = tp_hf_activation_to_tp(hf_act);
    if (!act) return tp_fail("%s: key 'activation_function': '%s' is not supported", path, hf_act);
    const char *both[] = {"word", "pos"}, *lm[] = {"lm"};
    cJSON_AddNumberToObject(tp, "vocab_size", (double)vocab);
    cJSON_AddNumberToObject(tp, "emb_size", (double)d_model);
    cJSON_AddNumberToObject(tp, "hidden_size", (double)d_model);
    cJSON_AddNumberToObject(tp, "feedforward_size", (double)encoder_ffn);
    cJSON_AddNumberToObject(tp, "heads_num", (double)heads);
    cJSON_AddNumberToObject(tp, "layers_num", (double)layers);
    cJSON_AddNumberToObject(tp, "decoder_layers_num", (double)decoder_layers);
    cJSON_AddNumberToObject(tp, "max_seq_length", (double)positions);
    cJSON_AddNumberToObject(tp, "position_offset", 2);
    cJSON_AddNumberToObject(tp, "dropout", dropout);
    cJSON_AddStringToObject(tp, "hidden_act", act);
    cJSON_AddItemToObject(tp, "embedding", cJSON_CreateStringArray(both, 2));
    cJSON_AddItemToObject(tp, "tgt_embedding", cJSON_CreateStringArray(both, 2));
    cJSON_AddBoolToObject(tp, "share_embedding", 1);
    cJSON_AddStringToObject(tp, "embedding_layernorm", "normal_torch");
    cJSON_AddStringToObject(tp, "encoder", "transformer");
    cJSON_AddStringToObject(tp, "decoder", "transformer");
    cJSON_AddStringToObject(tp, "mask", "fully_visible");
    cJSON_AddStringToObject(tp, "layernorm_positioning", "post");
    cJSON_AddStringToObject(tp, "layernorm", "normal_torch");
    cJSON_AddNumberToObject(tp, "layernorm_eps", 1e-5);
    cJSON_AddItemToObject(tp, "target", cJSON_CreateStringArray(lm, 1));
    cJSON_AddBoolToObject(tp, "tie_weights", tied);
    return 0;
}
