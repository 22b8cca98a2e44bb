/* Hugging Face BART (model_type bart, BartForConditionalGeneration) as TencentPretrain's BART:
 * embedding and tgt_embedding [word, pos] sharing the word table, each with its own torch layer
 * norm (layernorm_embedding), learned positions offset by 2 (position_offset: the whole
 * max_position_embeddings + 2 rows kept), post-LN transformer encoder and decoder with torch norms
 * (eps 1e-5), biases and the usual 1/sqrt(head_dim) scale, the lm target tied to the word table with
 * final_logits_bias as its bias (has_lmtarget_bias).  scale_embedding (word embeddings times
 * sqrt(d_model)) is tp's key of that name; mBART's normalize_before and add_final_layer_norm are
 * refused.  The checks and config.json fields it shares with Pegasus are here too. */
#include <stdio.h>
#include <string.h>

#include "error.h"
#include "hf_gpt2.h"
#include "hf_seq2seq.h"

static const tp_hf_rename names[] = {
    {"embedding.pos.embedding.weight", "model.encoder.embed_positions.weight"},
    TP_HF_WEIGHT_AND_BIAS("embedding.layer_norm", "model.encoder.layernorm_embedding"),
    {"tgt_embedding.pos.embedding.weight", "model.decoder.embed_positions.weight"},
    TP_HF_WEIGHT_AND_BIAS("tgt_embedding.layer_norm", "model.decoder.layernorm_embedding"),
    TP_HF_BART_LAYERS,
    {NULL, NULL},
};

/* Copies of model.shared.weight that some files hold. */
static const char *const droppable[] = {"model.encoder.embed_tokens.weight", "model.decoder.embed_tokens.weight",
                                        "lm_head.weight", NULL};

static int refuse_true(const char *path, const cJSON *root, const char *key)
{
    int value = 0;
    if (tp_hf_json_bool(path, root, key, 0, &value) < 0) return -1;
    return value ? tp_fail("%s: key '%s': true is not supported (tp's BART has no equivalent)", path, key) : 0;
}

const tp_hf_bart_like_defaults tp_hf_bart_defaults = {
    .vocab_size = 50265, .d_model = 1024, .ffn_dim = 4096, .encoder_layers = 12, .decoder_layers = 12,
    .attention_heads = 16, .activation_function = "gelu", .positions_key = "max_position_embeddings",
    .positions = 1024, .scale_embedding = 0, .shared_embedding = 1};

int tp_hf_seq2seq_bart_like_config(const char *path, const cJSON *root, const char *positioning,
                                   const tp_hf_bart_like_defaults *defaults, cJSON *tp)
{
    const tp_hf_bart_like_defaults *d = defaults;
    int64_t vocab, d_model, encoder_ffn, decoder_ffn, layers, decoder_layers, heads, decoder_heads, positions;
    double dropout;
    int tied = 1, scaled = 0;
    if (tp_hf_json_int(path, root, "vocab_size", d->vocab_size, &vocab) < 0 ||
        tp_hf_json_int(path, root, "d_model", d->d_model, &d_model) < 0 ||
        tp_hf_json_int(path, root, "encoder_ffn_dim", d->ffn_dim, &encoder_ffn) < 0 ||
        tp_hf_json_int(path, root, "decoder_ffn_dim", d->ffn_dim, &decoder_ffn) < 0 ||
        tp_hf_json_int(path, root, "encoder_layers", d->encoder_layers, &layers) < 0 ||
        tp_hf_json_int(path, root, "decoder_layers", d->decoder_layers, &decoder_layers) < 0 ||
        tp_hf_json_int(path, root, "encoder_attention_heads", d->attention_heads, &heads) < 0 ||
        tp_hf_json_int(path, root, "decoder_attention_heads", d->attention_heads, &decoder_heads) < 0 ||
        tp_hf_json_int(path, root, d->positions_key, d->positions, &positions) < 0 ||
        tp_hf_json_number(path, root, "dropout", 0.1, &dropout) < 0 ||
        tp_hf_json_bool(path, root, "tie_word_embeddings", 1, &tied) < 0 ||
        tp_hf_json_bool(path, root, "scale_embedding", d->scale_embedding, &scaled) < 0)
        return -1;
    if (decoder_ffn != encoder_ffn || decoder_heads != heads)
        return tp_fail("%s: keys 'decoder_ffn_dim' / 'decoder_attention_heads': tp's decoder has the encoder's sizes",
                       path);
    const char *hf_act = tp_hf_json_string(root, "activation_function", d->activation_function);
    const char *act = tp_hf_activation_to_tp(hf_act);
    if (!act) return tp_fail("%s: key 'activation_function': '%s' is not supported", path, hf_act);
    const char *lm[] = {"lm"};
    cJSON_AddNumberToObject(tp, "vocab_size", (double)vocab);
    cJSON_AddNumberToObject(tp, "emb_size", (double)d_model);
    cJSON_AddNumberToObject(tp, "hidden_size", (double)d_model);
    cJSON_AddNumberToObject(tp, "feedforward_size", (double)encoder_ffn);
    cJSON_AddNumberToObject(tp, "heads_num", (double)heads);
    cJSON_AddNumberToObject(tp, "layers_num", (double)layers);
    cJSON_AddNumberToObject(tp, "decoder_layers_num", (double)decoder_layers);
    cJSON_AddNumberToObject(tp, "max_seq_length", (double)positions);
    cJSON_AddNumberToObject(tp, "dropout", dropout);
    cJSON_AddStringToObject(tp, "hidden_act", act);
    if (d->shared_embedding) cJSON_AddBoolToObject(tp, "share_embedding", 1);
    if (scaled) cJSON_AddBoolToObject(tp, "scale_embedding", 1);
    cJSON_AddStringToObject(tp, "encoder", "transformer");
    cJSON_AddStringToObject(tp, "decoder", "transformer");
    cJSON_AddStringToObject(tp, "mask", "fully_visible");
    cJSON_AddStringToObject(tp, "layernorm_positioning", positioning);
    cJSON_AddStringToObject(tp, "layernorm", "normal_torch");
    cJSON_AddNumberToObject(tp, "layernorm_eps", 1e-5);
    cJSON_AddItemToObject(tp, "target", cJSON_CreateStringArray(lm, 1));
    cJSON_AddBoolToObject(tp, "tie_weights", tied);
    if (d->shared_embedding) cJSON_AddBoolToObject(tp, "has_lmtarget_bias", 1);
    return 0;
}

static int bart_config(const char *path, const cJSON *root, cJSON *tp)
{
    const char *both[] = {"word", "pos"};
    if (refuse_true(path, root, "normalize_before") < 0 || refuse_true(path, root, "add_final_layer_norm") < 0 ||
        tp_hf_seq2seq_bart_like_config(path, root, "post", &tp_hf_bart_defaults, tp) < 0)
        return -1;
    cJSON_AddNumberToObject(tp, "position_offset", 2);
    cJSON_AddItemToObject(tp, "embedding", cJSON_CreateStringArray(both, 2));
    cJSON_AddItemToObject(tp, "tgt_embedding", cJSON_CreateStringArray(both, 2));
    cJSON_AddStringToObject(tp, "embedding_layernorm", "normal_torch");
    return 0;
}

int tp_hf_seq2seq_bart_like(const tp_model *model, tp_config *config, const char *type, int layernorm_pre)
{
    const tp_model_config *hp = &model->hp;
    if (hp->layernorm != TP_NORM_TORCH) return tp_hf_seq2seq_refuse(config, type, "layernorm", "needs normal_torch");
    if (hp->layernorm_eps != 1e-5f) return tp_hf_seq2seq_refuse(config, type, "layernorm_eps", "needs 1e-5");
    if (hp->layernorm_pre != layernorm_pre)
        return tp_hf_seq2seq_refuse(config, type, "layernorm_positioning", layernorm_pre ? "needs pre" : "needs post");
    if (hp->remove_transformer_bias) return tp_hf_seq2seq_refuse(config, type, "remove_transformer_bias", "needs false");
    if (hp->remove_attention_scale) return tp_hf_seq2seq_refuse(config, type, "remove_attention_scale", "needs false");
    if (hp->feed_forward_gated) return tp_hf_seq2seq_refuse(config, type, "feed_forward", "needs dense");
    if (hp->attention_head_size * hp->heads_num != hp->hidden_size)
        return tp_hf_seq2seq_refuse(config, type, "attention_head_size", "needs hidden_size / heads_num");
    return 0;
}

void tp_hf_seq2seq_bart_like_json(const tp_model *model, tp_config *config, cJSON *hf)
{
    const tp_model_config *hp = &model->hp;
    double dropout = 0.1;
    tp_config_double(config, "dropout", 0.1, 0.0, 1.0, &dropout);
    tp_hf_put_number(hf, "d_model", (double)hp->hidden_size);
    tp_hf_put_number(hf, "encoder_layers", (double)hp->layers_num);
    tp_hf_put_number(hf, "decoder_layers", (double)hp->decoder_layers_num);
    tp_hf_put_number(hf, "encoder_attention_heads", (double)hp->heads_num);
    tp_hf_put_number(hf, "decoder_attention_heads", (double)hp->heads_num);
    tp_hf_put_number(hf, "encoder_ffn_dim", (double)hp->feedforward_size);
    tp_hf_put_number(hf, "decoder_ffn_dim", (double)hp->feedforward_size);
    tp_hf_put_number(hf, "max_position_embeddings", (double)hp->max_seq_length);
    tp_hf_put(hf, "activation_function", cJSON_CreateString(tp_hf_activation_name(hp->hidden_act)));
    tp_hf_put_number(hf, "dropout", dropout);
    tp_hf_put_bool(hf, "scale_embedding", hp->scale_embedding);
}

static int bart_expressible(const tp_model *model, tp_config *config)
{
    static const char *const word_pos[] = {"word", "pos"};
    const tp_model_config *hp = &model->hp;
    if (tp_hf_seq2seq_bart_like(model, config, "bart", 0) < 0) return -1;
    if (hp->embedding_layernorm != TP_NORM_TORCH || hp->remove_embedding_layernorm)
        return tp_hf_seq2seq_refuse(config, "bart", "embedding_layernorm", "needs normal_torch");
    if (!tp_hf_seq2seq_embeddings_are(model, 0, word_pos, 2))
        return tp_hf_seq2seq_refuse(config, "bart", "embedding", "needs [word, pos]");
    if (!tp_hf_seq2seq_embeddings_are(model, 1, word_pos, 2))
        return tp_hf_seq2seq_refuse(config, "bart", "tgt_embedding", "needs [word, pos]");
    if (hp->position_offset != 2) return tp_hf_seq2seq_refuse(config, "bart", "position_offset", "needs 2");
    return 0;
}

const tp_hf_seq2seq_family tp_hf_bart = {"bart",      "BartForConditionalGeneration", names,
                                         NULL,        droppable,                      bart_config,
                                         bart_expressible, tp_hf_seq2seq_bart_like_json};
