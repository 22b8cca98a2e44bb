/* Hugging Face Pegasus (model_type pegasus, PegasusForConditionalGeneration) as a TencentPretrain-style
 * Pegasus: embedding and tgt_embedding [word, sinusoidalpos] sharing the word table, the word
 * embeddings times sqrt(d_model) with scale_embedding, no embedding norm, pre-LN transformer encoder
 * and decoder with torch norms (eps 1e-5) and their final norms (encoder.layer_norm,
 * decoder.layer_norm), biases, the lm target tied to the word table with final_logits_bias as its
 * bias.  BART's layer names otherwise.  The position tables of the file (fixed sinusoids, which tp
 * computes: modules/layers/sinusoid.c) are dropped, and not written back: transformers fills them
 * in when it loads. */
#include <string.h>

#include "hf_seq2seq.h"

static const tp_hf_rename names[] = {
    TP_HF_BART_LAYERS,
    TP_HF_WEIGHT_AND_BIAS("encoder.layer_norm", "model.encoder.layer_norm"),
    TP_HF_WEIGHT_AND_BIAS("decoder.layer_norm", "model.decoder.layer_norm"),
    {NULL, NULL},
};

static const char *const droppable[] = {"model.encoder.embed_tokens.weight", "model.decoder.embed_tokens.weight",
                                        "lm_head.weight", "model.encoder.embed_positions.weight",
                                        "model.decoder.embed_positions.weight", NULL};

static int pegasus_config(const char *path, const cJSON *root, cJSON *tp)
{
    const char *both[] = {"word", "sinusoidalpos"};
    if (tp_hf_seq2seq_bart_like_config(path, root, "pre", &tp_hf_bart_defaults, tp) < 0) return -1;
    cJSON_AddItemToObject(tp, "embedding", cJSON_CreateStringArray(both, 2));
    cJSON_AddItemToObject(tp, "tgt_embedding", cJSON_CreateStringArray(both, 2));
    cJSON_AddStringToObject(tp, "sinusoidalpos_layout", "split");
    cJSON_AddBoolToObject(tp, "remove_embedding_layernorm", 1);
    return 0;
}

static int pegasus_expressible(const tp_model *model, tp_config *config)
{
    static const char *const word_sinusoid[] = {"word", "sinusoidalpos"};
    if (tp_hf_seq2seq_bart_like(model, config, "pegasus", 1) < 0) return -1;
    if (!model->hp.remove_embedding_layernorm)
        return tp_hf_seq2seq_refuse(config, "pegasus", "remove_embedding_layernorm", "needs true");
    if (!tp_hf_seq2seq_embeddings_are(model, 0, word_sinusoid, 2))
        return tp_hf_seq2seq_refuse(config, "pegasus", "embedding", "needs [word, sinusoidalpos]");
    if (!tp_hf_seq2seq_embeddings_are(model, 1, word_sinusoid, 2))
        return tp_hf_seq2seq_refuse(config, "pegasus", "tgt_embedding", "needs [word, sinusoidalpos]");
    const char *layout = "interleaved";
    if (tp_config_string(config, "sinusoidalpos_layout", "interleaved", &layout) < 0 || strcmp(layout, "split"))
        return tp_hf_seq2seq_refuse(config, "pegasus", "sinusoidalpos_layout", "needs split");
    return 0;
}

const tp_hf_seq2seq_family tp_hf_pegasus = {"pegasus",   "PegasusForConditionalGeneration", names,
                                            NULL,        droppable,                         pegasus_config,
                                            pegasus_expressible, tp_hf_seq2seq_bart_like_json};
