/* The registries: adding a module type is one file and one line here. */
#include "core/model.h"

extern const tp_embedding_type tp_embedding_word, tp_embedding_pos, tp_embedding_seg;
extern const tp_embedding_type tp_embedding_patch, tp_embedding_dual;
extern const tp_embedding_type tp_embedding_sinusoidalpos, tp_tgt_embedding_sinusoidalpos;
extern const tp_embedding_type tp_embedding_speech, tp_embedding_fairseq_sinusoidalpos;
extern const tp_embedding_type tp_embedding_masked_patch, tp_embedding_word_patch;
extern const tp_encoder_type tp_encoder_transformer, tp_encoder_dual;
extern const tp_target_type tp_target_mlm, tp_target_sp, tp_target_cls;
extern const tp_target_type tp_target_multi_label, tp_target_regression, tp_target_tagging;
extern const tp_target_type tp_target_lm, tp_target_clr;
extern const tp_embedding_type tp_tgt_embedding_word, tp_tgt_embedding_pos;
extern const tp_embedding_type tp_tgt_embedding_fairseq_sinusoidalpos;
extern const tp_decoder_type tp_decoder_transformer;

const tp_embedding_type *const tp_embedding_registry[] = {
    &tp_embedding_word,
    &tp_embedding_pos,
    &tp_embedding_seg,
    &tp_embedding_patch,
    &tp_embedding_sinusoidalpos,
    &tp_embedding_speech,
    &tp_embedding_fairseq_sinusoidalpos,
    &tp_embedding_dual,
    &tp_embedding_masked_patch,
    &tp_embedding_word_patch,
    NULL,
};

const tp_encoder_type *const tp_encoder_registry[] = {
    &tp_encoder_transformer,
    &tp_encoder_dual,
    NULL,
};

/* Filled by the encoder-decoder families (T5, BART, speech-to-text). */
const tp_embedding_type *const tp_tgt_embedding_registry[] = {
    &tp_tgt_embedding_word,
    &tp_tgt_embedding_pos,
    &tp_tgt_embedding_sinusoidalpos,
    &tp_tgt_embedding_fairseq_sinusoidalpos,
    NULL,
};

const tp_decoder_type *const tp_decoder_registry[] = {
    &tp_decoder_transformer,
    NULL,
};

const tp_target_type *const tp_target_registry[] = {
    &tp_target_mlm,
    &tp_target_sp,
    &tp_target_cls,
    &tp_target_multi_label,
    &tp_target_regression,
    &tp_target_tagging,
    &tp_target_lm,
    &tp_target_clr,
    NULL,
};
