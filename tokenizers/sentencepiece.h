/* Internal to tokenizers/: the "sentencepiece" kind, a SentencePiece .model file (unigram or
 * BPE) encoded by libsentencepiece through sentencepiece_shim.cc. */
#ifndef TP_SENTENCEPIECE_H
#define TP_SENTENCEPIECE_H

#include <stddef.h>

#include "tokenizers/tokenizer.h"

/* options->spm_model_path; fails with "this build has no SentencePiece" when tp was built
 * without libsentencepiece. */
tp_tokenizer *tp_spm_create(const tp_tokenizer_options *options);

/* 0 if the precompiled character maps of the model data[0..size) (a serialized ModelProto) are
 * sound: every trie unit a search can reach lies inside its trie and every replacement it points
 * at inside its map; else -1 with a message naming path, the spec and the byte offset.
 * libsentencepiece does not check them (tokenizers/spm_model_check.c). */
int tp_spm_model_check(const unsigned char *data, size_t size, const char *path);

#endif
