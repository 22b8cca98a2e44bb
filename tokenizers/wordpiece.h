/* Internal to tokenizers/: the "bert" kind (BasicTokenizer + WordPiece) that wordpiece.c
 * implements, also the WordPiece model of the hf kind's tokenizer.json. */
#ifndef TP_WORDPIECE_H
#define TP_WORDPIECE_H

#include "tokenizers/vocab.h"

/* Installs the bert kind's ops on a tokenizer whose vocabulary is loaded (impl is a bare
 * tp_vocab_index); -1 (naming path) when the vocabulary lacks [UNK]. */
int tp_wordpiece_init(tp_tokenizer *tok, const char *path);
/* The bert kind's encode (tok->impl starts with its tp_vocab_index). */
int tp_wordpiece_encode(const tp_tokenizer *tok, const char *text, size_t len, tp_ids *out);

#endif
