/* Internal to tokenizers/: the "sentencepiece" kind, a SentencePiece .model file (unigram or
 * BPE) encoded by libsentencepiece through sentencepiece_shim.cc. */
#ifndef TP_SENTENCEPIECE_H
#define TP_SENTENCEPIECE_H

#include "tokenizers/tokenizer.h"

/* options->spm_model_path; fails with "this build has no SentencePiece" when tp was built
 * without libsentencepiece. */
tp_tokenizer *tp_spm_create(const tp_tokenizer_options *options);

#endif
