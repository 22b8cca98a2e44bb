/* Hugging Face T5 and T5 v1.1 (model_type t5, T5ForConditionalGeneration) as TencentPretrain's T5:
 * embedding and tgt_embedding [word] sharing one table (share_embedding), no embedding norm, pre-LN
 * transformer encoder and decoder with T5's RMS norms (layernorm t5), no biases, no attention
 * scale, relative position buckets (one table per stack, in block 0), the lm target.  T5 v1.1
 * (feed_forward_proj gated-gelu) has the gated feed-forward and an untied lm_head; T5 with tied
 * embeddings scales the decoder output by d_model^-0.5 (tp key tied_output_scale).  d_kv x num_heads
 * differing from d_model (t5-v1_1-small: 64 x 6 != 512) becomes attention_head_size.  Writing back
 * refuses what T5Config cannot say (naming the tp key). */
#include <stdio.h>
#include <string.h>

#include "error.h"
#include "hf_gpt2.h"
#include "hf_seq2seq.h"

static const tp_hf_rename names[] = {
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
static const tp_hf_rename gated_names[] = {
    {"encoder.transformer.{i}.feed_forward.linear_1.weight", "encoder.block.{i}.layer.1.DenseReluDense.wi_1.weight"},
    {"decoder.transformer_decoder.{i}.feed_forward.linear_1.weight",
     "decoder.block.{i}.layer.2.DenseReluDense.wi_1.weight"},
    {NULL, NULL},
};

/* Copies of shared.weight that some files hold. */
static const char *const droppable[] = {"encoder.embed_tokens.weight", "decoder.embed_tokens.weight",
                                          "lm_head.weight", NULL};

static int t5_config(const char *path, const cJSON *root, cJSON *tp)
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
    if (d_kv * heads != d_model) cJSON_AddNumberToObject(tp, "attention_head_size", (double)d_kv);
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

static int refuse(tp_config *config, const char *key, const char *why)
{
    return tp_hf_seq2seq_refuse(config, "t5", key, why);
}

static int t5_expressible(const tp_model *model, tp_config *config)
{
    static const char *const word[] = {"word"};
    const tp_model_config *hp = &model->hp;
    int tied_output_scale = 0;
    tp_config_bool(config, "tied_output_scale", 0, &tied_output_scale);
    if (hp->layernorm != TP_NORM_RMS) return refuse(config, "layernorm", "needs t5");
    if (!hp->layernorm_pre) return refuse(config, "layernorm_positioning", "needs pre");
    if (!hp->remove_transformer_bias) return refuse(config, "remove_transformer_bias", "needs true");
    if (!hp->remove_attention_scale) return refuse(config, "remove_attention_scale", "needs true");
    if (!hp->remove_embedding_layernorm) return refuse(config, "remove_embedding_layernorm", "needs true");
    if (hp->scale_embedding) return refuse(config, "scale_embedding", "needs false");
    if (!tp_hf_seq2seq_embeddings_are(model, 0, word, 1)) return refuse(config, "embedding", "needs [word]");
    if (!tp_hf_seq2seq_embeddings_are(model, 1, word, 1)) return refuse(config, "tgt_embedding", "needs [word]");
    if (tp_params_find(&model->params, "target.lm.output_layer.bias"))
        return refuse(config, "has_lmtarget_bias", "needs false");
    if (hp->feed_forward_gated && hp->hidden_act == TP_ACT_GELU)
        return refuse(config, "hidden_act", "T5's gated-gelu is gelu_new: needs gelu_fast with the gated feed-forward");
    if (tied_output_scale != hp->tie_weights)
        return refuse(config, "tied_output_scale", "T5 scales the decoder output exactly when the head is tied: "
                                                   "needs the value of tie_weights");
    return 0;
}

/* feed_forward_proj: T5 v1.1's "gated-gelu" is gelu_new (tp's gelu_fast); others "[gated-]<act>". */
static void t5_config_json(const tp_model *model, tp_config *config, cJSON *hf)
{
    const tp_model_config *hp = &model->hp;
    double dropout = 0.1;
    char proj[64];
    const char *act = hp->feed_forward_gated && hp->hidden_act == TP_ACT_GELU_FAST ? "gelu"
                                                                                  : tp_hf_activation_name(hp->hidden_act);
    snprintf(proj, sizeof proj, "%s%s", hp->feed_forward_gated ? "gated-" : "", act);
    tp_config_double(config, "dropout", 0.1, 0.0, 1.0, &dropout);
    tp_hf_put_number(hf, "d_model", (double)hp->hidden_size);
    tp_hf_put_number(hf, "d_kv", (double)hp->attention_head_size);
    tp_hf_put_number(hf, "d_ff", (double)hp->feedforward_size);
    tp_hf_put_number(hf, "num_layers", (double)hp->layers_num);
    tp_hf_put_number(hf, "num_decoder_layers", (double)hp->decoder_layers_num);
    tp_hf_put_number(hf, "num_heads", (double)hp->heads_num);
    tp_hf_put_number(hf, "relative_attention_num_buckets", (double)hp->relative_attention_buckets_num);
    tp_hf_put_number(hf, "relative_attention_max_distance", (double)hp->relative_attention_max_distance);
    tp_hf_put_number(hf, "dropout_rate", dropout);
    tp_hf_put_number(hf, "layer_norm_epsilon", hp->layernorm_eps);
    tp_hf_put(hf, "feed_forward_proj", cJSON_CreateString(proj));
}

const tp_hf_seq2seq_family tp_hf_t5 = {"t5",           "T5ForConditionalGeneration", names, gated_names, droppable,
                                       t5_config,      t5_expressible,               t5_config_json};
