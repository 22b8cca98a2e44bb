/* Internal to tokenizers/: the Unigram model of a tokenizer.json (T5, ALBERT, XLNet and other
 * SentencePiece conversions) with the normalizers and the Metaspace pre-tokenizer such files
 * use.  Built by hf_json.c: tp_unigram_new, tp_unigram_read (pieces, scores and pipeline),
 * the added tokens, tp_unigram_finish. */
#ifndef TP_UNIGRAM_H
#define TP_UNIGRAM_H

#include <stdint.h>

#include "tokenizers/added_tokens.h"
#include "tokenizers/tokenizer.h"

struct cJSON;

tp_tokenizer *tp_unigram_new(int64_t vocab_size);
/* Reads model (pieces and scores, unk_id, byte_fallback), normalizer and pre_tokenizer of root. */
int tp_unigram_read(tp_tokenizer *tok, const struct cJSON *root, const char *path);
tp_added_tokens *tp_unigram_added_tokens(tp_tokenizer *tok);
int tp_unigram_finish(tp_tokenizer *tok, const char *path);
void tp_unigram_destroy(tp_tokenizer *tok);

#endif
