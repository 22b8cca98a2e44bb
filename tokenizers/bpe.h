/* Internal to tokenizers/: GPT-2's byte-level BPE.  The "bpe" kind (alias "gpt2") reads
 * vocab.json + merges.txt; the hf kind builds the same engine from a tokenizer.json. */
#ifndef TP_BPE_H
#define TP_BPE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tokenizers/added_tokens.h"
#include "tokenizers/tokenizer.h"

/* The "bpe" / "gpt2" kind: options->vocab_path (vocab.json), options->merges_path. */
tp_tokenizer *tp_bpe_create(const tp_tokenizer_options *options);

/* Building a BPE tokenizer from another source (tokenizer.json):
 *   tok = tp_bpe_new(vocab_size, merge_count): every token slot empty;
 *   fill the vocabulary (tp_vocab_add_json_object, tp_vocab_store + tp_vocab_add);
 *   tp_bpe_add_merge for each merge in rank order;
 *   tp_bpe_finish.  On failure after tp_bpe_new, free with tp_bpe_destroy. */
typedef struct tp_bpe_settings {
    bool add_prefix_space; /* a space is put before each text segment not starting with one */
    bool ignore_merges;    /* a pre-token that is itself in the vocabulary is not split */
} tp_bpe_settings;

tp_tokenizer *tp_bpe_new(int64_t vocab_size, int64_t merge_count);
/* The merge of tokens left + right (byte-level strings) with the next rank; `where` names
 * the file and line or key in messages. */
int tp_bpe_add_merge(tp_tokenizer *tok, const char *where, const char *left, size_t left_len, const char *right,
                     size_t right_len);
tp_added_tokens *tp_bpe_added_tokens(tp_tokenizer *tok);
/* Checks that every byte has its token and installs the ops; `path` names the file. */
int tp_bpe_finish(tp_tokenizer *tok, const char *path, tp_bpe_settings settings);
void tp_bpe_destroy(tp_tokenizer *tok);

#endif
