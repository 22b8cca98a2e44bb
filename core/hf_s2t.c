/* Hugging Face Speech2Text (model_type speech_to_text, Speech2TextForConditionalGeneration) as
 * TencentPretrain's S2T: embedding [speech, fairseq_sinusoidalpos] (the convolutional subsampler
 * with its GLUs, times sqrt(d_model) with scale_embedding, plus fixed sinusoids in fairseq's layout
 * at positions s + pad_token_id + 1), tgt_embedding [word, fairseq_sinusoidalpos] (the decoder's own
 * table, scaled alike), no embedding norm, pre-LN transformer encoder and decoder with torch norms
 * (eps 1e-5), biases and their final norms, the lm target without bias, tied to the decoder's word
 * table unless tie_word_embeddings is false.  Names (BART's layers otherwise):
 *   model.encoder.conv.conv_layers.{i}.{weight,bias}  embedding.speech.conv.conv_layers.{i}.{weight,bias}
 *   model.decoder.embed_tokens.weight                 tgt_embedding.word.embedding.weight
 *   model.{encoder,decoder}.layer_norm                {encoder,decoder}.layer_norm
 * The position tables of the file (fixed sinusoids that transformers keeps as parameters without
 * gradient) are dropped and not written back: transformers computes them when it loads.  Positions
 * are s + offset for every row: transformers gives padding tokens of the decoder's input a zero row
 * instead, which changes nothing for the rows before them. */
#include <string.h>

#include "error.h"
#include "hf_gpt2.h"
#include "hf_seq2seq.h"

static const tp_hf_rename names[] = {
    TP_HF_WEIGHT_AND_BIAS("embedding.speech.conv.conv_layers.{i}", "model.encoder.conv.conv_layers.{i}"),
    {"tgt_embedding.word.embedding.weight", "model.decoder.embed_tokens.weight"},
    TP_HF_BART_LAYERS,
    TP_HF_WEIGHT_AND_BIAS("encoder.layer_norm", "model.encoder.layer_norm"),
    TP_HF_WEIGHT_AND_BIAS("decoder.layer_norm", "model.decoder.layer_norm"),
    {NULL, NULL},
};

static const char *const droppable[] = {"lm_head.weight", "model.encoder.embed_positions.weights",
                                        "model.decoder.embed_positions.weights", NULL};

/* The subsampler's keys: num_conv_layers kernels in conv_kernel_sizes, conv_channels, and
 * input_feat_per_channel x input_channels features. */
static int convolution_keys(const char *path, const cJSON *root, cJSON *tp)
{
    int64_t layers, channels, features, feature_channels;
    if (tp_hf_json_int(path, root, "num_conv_layers", 2, &layers) < 0 ||
        tp_hf_json_int(path, root, "conv_channels", 1024, &channels) < 0 ||
        tp_hf_json_int(path, root, "input_feat_per_channel", 80, &features) < 0 ||
        tp_hf_json_int(path, root, "input_channels", 1, &feature_channels) < 0)
        return -1;
    const cJSON *kernels = cJSON_GetObjectItemCaseSensitive(root, "conv_kernel_sizes");
    if (kernels && !cJSON_IsArray(kernels)) return tp_fail("%s: key 'conv_kernel_sizes': expected a list", path);
    cJSON_AddNumberToObject(tp, "conv_layers_num", (double)layers);
    cJSON_AddNumberToObject(tp, "conv_channels", (double)channels);
    cJSON_AddNumberToObject(tp, "audio_feature_size", (double)(features * feature_channels));
    if (kernels) cJSON_AddItemToObject(tp, "conv_kernel_sizes", cJSON_Duplicate(kernels, 1));
    return 0;
}

static int s2t_config(const char *path, const cJSON *root, cJSON *tp)
{
    static const tp_hf_bart_like_defaults defaults = {
        .vocab_size = 10000, .d_model = 256, .ffn_dim = 2048, .encoder_layers = 12, .decoder_layers = 6,
        .attention_heads = 4, .activation_function = "relu", .positions_key = "max_target_positions",
        .positions = 1024, .scale_embedding = 1, .shared_embedding = 0};
    int64_t source, pad;
    if (tp_hf_json_int(path, root, "max_source_positions", 6000, &source) < 0 ||
        tp_hf_json_int(path, root, "pad_token_id", 1, &pad) < 0 || convolution_keys(path, root, tp) < 0 ||
        tp_hf_seq2seq_bart_like_config(path, root, "pre", &defaults, tp) < 0)
        return -1;
    const char *source_side[] = {"speech", "fairseq_sinusoidalpos"}, *target_side[] = {"word", "fairseq_sinusoidalpos"};
    cJSON_AddNumberToObject(tp, "max_audio_frames", (double)source);
    cJSON_AddNumberToObject(tp, "position_offset", (double)(pad + 1));
    cJSON_AddStringToObject(tp, "data_processor", "s2t");
    cJSON_AddItemToObject(tp, "embedding", cJSON_CreateStringArray(source_side, 2));
    cJSON_AddItemToObject(tp, "tgt_embedding", cJSON_CreateStringArray(target_side, 2));
    cJSON_AddBoolToObject(tp, "remove_embedding_layernorm", 1);
    return 0;
}

static int s2t_expressible(const tp_model *model, tp_config *config)
{
    static const char *const source_side[] = {"speech", "fairseq_sinusoidalpos"};
    static const char *const target_side[] = {"word", "fairseq_sinusoidalpos"};
    const tp_model_config *hp = &model->hp;
    if (tp_hf_seq2seq_bart_like(model, config, "speech_to_text", 1) < 0) return -1;
    if (!hp->remove_embedding_layernorm)
        return tp_hf_seq2seq_refuse(config, "speech_to_text", "remove_embedding_layernorm", "needs true");
    if (!tp_hf_seq2seq_embeddings_are(model, 0, source_side, 2))
        return tp_hf_seq2seq_refuse(config, "speech_to_text", "embedding", "needs [speech, fairseq_sinusoidalpos]");
    if (!tp_hf_seq2seq_embeddings_are(model, 1, target_side, 2))
        return tp_hf_seq2seq_refuse(config, "speech_to_text", "tgt_embedding", "needs [word, fairseq_sinusoidalpos]");
    if (hp->share_embedding) return tp_hf_seq2seq_refuse(config, "speech_to_text", "share_embedding", "needs false");
    if (tp_params_find(&model->params, "target.lm.output_layer.bias"))
        return tp_hf_seq2seq_refuse(config, "speech_to_text", "has_lmtarget_bias", "needs false");
    return 0;
}

/* BART's fields, the subsampler's and the two position limits (padding id: position_offset - 1). */
static void s2t_config_json(const tp_model *model, tp_config *config, cJSON *hf)
{
    int64_t layers = 2, channels = 1024, features = 80, source = 6000, kernels[8];
    int kernel_count = 0;
    for (int i = 0; i < 8; i++) kernels[i] = 5; /* the speech embedding's default */
    tp_hf_seq2seq_bart_like_json(model, config, hf);
    cJSON_DeleteItemFromObjectCaseSensitive(hf, "max_position_embeddings");
    tp_config_int(config, "conv_layers_num", 2, 1, 8, &layers);
    tp_config_int(config, "conv_channels", 1024, 2, 1 << 20, &channels);
    tp_config_int(config, "audio_feature_size", 80, 1, 1 << 16, &features);
    tp_config_int(config, "max_audio_frames", 6000, 1, 1 << 30, &source);
    tp_config_ints(config, "conv_kernel_sizes", 1, 1023, kernels, 8, &kernel_count);
    if (kernel_count == 0) kernel_count = (int)layers;
    double kernel_values[8];
    for (int i = 0; i < kernel_count; i++) kernel_values[i] = (double)kernels[i];
    tp_hf_put_number(hf, "num_conv_layers", (double)layers);
    tp_hf_put(hf, "conv_kernel_sizes", cJSON_CreateDoubleArray(kernel_values, kernel_count));
    tp_hf_put_number(hf, "conv_channels", (double)channels);
    tp_hf_put_number(hf, "input_feat_per_channel", (double)features);
    tp_hf_put_number(hf, "input_channels", 1);
    tp_hf_put_number(hf, "max_source_positions", (double)source);
    tp_hf_put_number(hf, "max_target_positions", (double)model->hp.max_seq_length);
    tp_hf_put_number(hf, "pad_token_id", (double)(model->hp.position_offset - 1));
}

const tp_hf_seq2seq_family tp_hf_s2t = {"speech_to_text", "Speech2TextForConditionalGeneration",
                                        names,            NULL,
                                        droppable,        s2t_config,
                                        s2t_expressible,  s2t_config_json};
