/* Hugging Face T5 and T5 v1.1 (model_type t5, T5ForConditionalGeneration) as TencentPretrain's T5:
 * embedding and tgt_embedding [word] sharing one table (share_embedding), no embedding norm, pre-LN
 * transformer encoder and decoder with T5's RMS norms (layernorm t5), no biases, no attention
 * scale, relative position buckets (one table per stack, in block 0), the lm target.  T5 v1.1
 * (feed_forward_proj gated-gelu) has the gated feed-forward and an untied lm_head; T5 with tied
 * embeddings scales the decoder output by d_model^-0.5 (tp key tied_output_scale). */
#include <stdio.h>
#include <string.h>

#include "error.h"
#include "hf_gpt2.h"
#include "hf_seq2seq.h"

const tp_hf_rename tp_hf_t5_names[] = {
    {"embedding.word.embedding.weight", "shared.weight"},
    {"encoder.relative_pos_emb.relative_attention_bias.weight",
     "encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight"},
    {"encoder.transformer.{i}.self_attn.linear_layers.0.weight", "encoder.block.{i}.layer.0.SelfAttention.q.weight"},
    {"encoder.transformer.{i}.self_attn.linear_layers.1.weight", "encoder.block.{i}.layer.0.SelfAttention.k.weight"},
    {"encoder.transformer.{i}.self_attn.linear_layers.2.weight", "encoder.block.{i}.layer.0.SelfAttention.v.weight"},
    {"encoder.transformer.{i}.self_attn.final_linear.weight", "encoder.block.{i}.layer.0.SelfAttention.o.weight"},
    {"encoder.transformer.{i}.layer_norm_1.weight", "encoder.block.{i}.layer.0.layer_norm.weight"},
    {"encoder.transformer.{i}.feed_forward.linear_gate.weight", "encoder.block.{i}.layer.1.DenseReluDense.wi_0.weight"},
    {"encoder.transformer.{i}.feed_forward.linear_1.weight", "encoder.block.{i}.layer.1.DenseReluDense.wi.weight"},
    {"encoder.transformer.{i}.feed_forward.linear_2.weight", "encoder.block.{i}.layer.1.DenseReluDense.wo.weight"},
    {"encoder.transformer.{i}.layer_norm_2.weight", "encoder.block.{i}.layer.1.layer_norm.weight"},
    {"encoder.layer_norm.weight", "encoder.final_layer_norm.weight"},
    {"decoder.self_pos_emb.relative_attention_bias.weight",
     "decoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight"},
    {"decoder.transformer_decoder.{i}.self_attn.linear_layers.0.weight", "decoder.block.{i}.layer.0.SelfAttention.q.weight"},
    {"decoder.transformer_decoder.{i}.self_attn.linear_layers.1.weight", "decoder.block.{i}.layer.0.SelfAttention.k.weight"},
    {"decoder.transformer_decoder.{i}.self_attn.linear_layers.2.weight", "decoder.block.{i}.layer.0.SelfAttention.v.weight"},
    {"decoder.transformer_decoder.{i}.self_attn.final_linear.weight", "decoder.block.{i}.layer.0.SelfAttention.o.weight"},
    {"decoder.transformer_decoder.{i}.layer_norm_1.weight", "decoder.block.{i}.layer.0.layer_norm.weight"},
    {"decoder.transformer_decoder.{i}.context_attn.linear_layers.0.weight",
     "decoder.block.{i}.layer.1.EncDecAttention.q.weight"},
    {"decoder.transformer_decoder.{i}.context_attn.linear_layers.1.weight",
     "decoder.block.{i}.layer.1.EncDecAttention.k.weight"},
    {"decoder.transformer_decoder.{i}.context_attn.linear_layers.2.weight",
     "decoder.block.{i}.layer.1.EncDecAttention.v.weight"},
    {"decoder.transformer_decoder.{i}.context_attn.final_linear.weight",
     "decoder.block.{i}.layer.1.EncDecAttention.o.weight"},
    {"decoder.transformer_decoder.{i}.layer_norm_2.weight", "decoder.block.{i}.layer.1.layer_norm.weight"},
    {"decoder.transformer_decoder.{i}.feed_forward.linear_gate.weight",
     "decoder.block.{i}.layer.2.DenseReluDense.wi_0.weight"},
    {"decoder.transformer_decoder.{i}.feed_forward.linear_1.weight", "decoder.block.{i}.layer.2.DenseReluDense.wi.weight"},
    {"decoder.transformer_decoder.{i}.feed_forward.linear_2.weight", "decoder.block.{i}.layer.2.DenseReluDense.wo.weight"},
    {"decoder.transformer_decoder.{i}.layer_norm_3.weight", "decoder.block.{i}.layer.2.layer_norm.weight"},
    {"decoder.layer_norm.weight", "decoder.final_layer_norm.weight"},
    {"target.lm.output_layer.weight", "lm_head.weight"},
    {NULL, NULL},
};

/* T5 v1.1's gated feed-forward: wi_0 is the gate (above), wi_1 the linear branch.  Looked up first. */
const tp_hf_rename tp_hf_t5_gated_names[] = {
    {"encoder.transformer.{i}.feed_forward.linear_1.weight", "encoder.block.{i}.layer.1.DenseReluDense.wi_1.weight"},
    {"decoder.transformer_decoder.{i}.feed_forward.linear_1.weight",
     "decoder.block.{i}.layer.2.DenseReluDense.wi_1.weight"},
    {NULL, NULL},
};

/* Copies of shared.weight that some files hold. */
const char *const tp_hf_t5_droppable[] = {"encoder.embed_tokens.weight", "decoder.embed_tokens.weight",
                                          "lm_head.weight", NULL};

int tp_hf_t5_config(const char *path, const cJSON *root, cJSON *tp)
{
    int64_t vocab, d_model, d_kv, d_ff, layers, decoder_layers, heads, buckets, max_distance;
    double eps, dropout;
    int tied = 1;
    if (tp_hf_json_int(path, root, "vocab_size", 32128, &vocab) < 0 ||
        tp_hf_json_int(path, root, "d_model", 512, &d_model) < 0 || tp_hf_json_int(path, root, "d_kv", 64, &d_kv) < 0 ||
        tp_hf_json_int(path, root, "d_ff", 2048, &d_ff) < 0 ||
        tp_hf_json_int(path, root, "num_layers", 6, &layers) < 0 ||
        tp_hf_json_int(path, root, "num_decoder_layers", layers, &decoder_layers) < 0 ||
        tp_hf_json_int(path, root, "num_heads", 8, &heads) < 0 ||
        tp_hf_json_int(path, root, "relative_attention_num_buckets", 32, &buckets) < 0 ||
        tp_hf_json_int(path, root, "relative_attention_max_distance", 128, &max_distance) < 0 ||
        tp_hf_json_number(path, root, "layer_norm_epsilon", 1e-6, &eps) < 0 ||
        tp_hf_json_number(path, root, "dropout_rate", 0.1, &dropout) < 0 ||
        tp_hf_json_bool(path, root, "tie_word_embeddings", 1, &tied) < 0)
        return -1;
    if (d_kv * heads != d_model)
        return tp_fail("%s: key 'd_kv': %lld x %lld heads differs from d_model %lld (tp's attention needs them equal)",
                       path, (long long)d_kv, (long long)heads, (long long)d_model);
    const char *proj = tp_hf_json_string(root, "feed_forward_proj", "relu");
    int gated = !strncmp(proj, "gated-", 6);
    /* As T5Config does: "gated-gelu" means gelu_new (the tanh form). */
    const char *act = tp_hf_activation_to_tp(!strcmp(proj, "gated-gelu") ? "gelu_new" : gated ? proj + 6 : proj);
    if (!act) return tp_fail("%s: key 'feed_forward_proj': '%s' is not supported", path, proj);
    const char *single[] = {"word"};
    cJSON_AddNumberToObject(tp, "vocab_size", (double)vocab);
    cJSON_AddNumberToObject(tp, "emb_size", (double)d_model);
    cJSON_AddNumberToObject(tp, "hidden_size", (double)d_model);
    cJSON_AddNumberToObject(tp, "feedforward_size", (double)d_ff);
    cJSON_AddNumberToObject(tp, "heads_num", (double)heads);
    cJSON_AddNumberToObject(tp, "layers_num", (double)layers);
    cJSON_AddNumberToObject(tp, "decoder_layers_num", (double)decoder_layers);
    cJSON_AddNumberToObject(tp, "dropout", dropout);
    cJSON_AddStringToObject(tp, "hidden_act", act);
    cJSON_AddItemToObject(tp, "embedding", cJSON_CreateStringArray(single, 1));
    cJSON_AddItemToObject(tp, "tgt_embedding", cJSON_CreateStringArray(single, 1));
    cJSON_AddBoolToObject(tp, "share_embedding", 1);
    cJSON_AddBoolToObject(tp, "remove_embedding_layernorm", 1);
    cJSON_AddStringToObject(tp, "encoder", "transformer");
    cJSON_AddStringToObject(tp, "decoder", "transformer");
    cJSON_AddStringToObject(tp, "mask", "fully_visible");
    cJSON_AddStringToObject(tp, "layernorm_positioning", "pre");
    cJSON_AddStringToObject(tp, "layernorm", "t5");
    cJSON_AddNumberToObject(tp, "layernorm_eps", eps);
    cJSON_AddStringToObject(tp, "feed_forward", gated ? "gated" : "dense");
    cJSON_AddBoolToObject(tp, "remove_transformer_bias", 1);
    cJSON_AddBoolToObject(tp, "remove_attention_scale", 1);
    cJSON_AddBoolToObject(tp, "relative_position_embedding", 1);
    cJSON_AddNumberToObject(tp, "relative_attention_buckets_num", (double)buckets);
    cJSON_AddNumberToObject(tp, "relative_attention_max_distance", (double)max_distance);
    const char *lm[] = {"lm"};
    cJSON_AddItemToObject(tp, "target", cJSON_CreateStringArray(lm, 1));
    cJSON_AddBoolToObject(tp, "tie_weights", tied);
    cJSON_AddBoolToObject(tp, "tied_output_scale", tied);
    return 0;
}
