/* The tokenizer interface.  Every tokenizer (bert WordPiece, GPT-2 byte-level BPE,
 * SentencePiece, char, space, Hugging Face tokenizer.json) is a vtable behind
 * tp_tokenizer, chosen by name (docs/tokenizers.md). */
#ifndef TP_TOKENIZER_H
#define TP_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

/* A growable array of token ids. */
typedef struct tp_ids {
    int32_t *ids;
    int64_t count;
    int64_t capacity;
} tp_ids;

void tp_ids_push(tp_ids *ids, int32_t id);
void tp_ids_clear(tp_ids *ids);
void tp_ids_free(tp_ids *ids);

typedef struct tp_tokenizer tp_tokenizer;

typedef struct tp_tokenizer_ops {
    /* Appends the ids of text[0..len) (UTF-8) to out; special tokens are not added. */
    int (*encode)(const tp_tokenizer *tok, const char *text, size_t len, tp_ids *out);
    void (*destroy)(tp_tokenizer *tok);
} tp_tokenizer_ops;

struct tp_tokenizer {
    const tp_tokenizer_ops *ops;
    char **tokens;     /* id -> token string (NUL-terminated, UTF-8) */
    int64_t vocab_size;
    /* Special token ids (-1 when the vocabulary lacks them).  bert, char, space: [PAD] [UNK]
     * [CLS] [SEP] [MASK]; bpe: <|endoftext|> is bos and eos; sentencepiece: the model's own;
     * hf: from the added tokens (docs/tokenizers.md). */
    int32_t pad_id, unk_id, cls_id, sep_id, mask_id;
    int32_t bos_id, eos_id;
    const char *source_path; /* the file the tokenizer was read from (a copy, for messages) */
    void *impl;        /* tokenizer-specific state */
};

/* Options for creating a tokenizer by name.  New fields go at the end: callers that
 * initialise the first three positionally keep compiling. */
typedef struct tp_tokenizer_options {
    /* "bert" (BasicTokenizer + WordPiece), "bpe" or "gpt2" (GPT-2 byte-level BPE),
     * "sentencepiece", "char", "space", "hf" (a tokenizer.json). */
    const char *kind;
    /* bert, char, space: one token per line, id = line number; bpe: vocab.json */
    const char *vocab_path;
    int do_lower_case;          /* bert: lower-case and strip accents (bert-base-uncased: 1) */
    const char *merges_path;    /* bpe: merges.txt */
    const char *spm_model_path; /* sentencepiece: a .model file */
    const char *tokenizer_json_path; /* hf: tokenizer.json */
    /* bpe: an occurrence of <|endoftext|> in the text gives its id (tiktoken's
     * allowed_special="all"); 0: it is ordinary text (tiktoken's encode_ordinary).
     * hf always recognises its added tokens, as Hugging Face does; bert its five. */
    int special_tokens_in_text;
} tp_tokenizer_options;

/* NULL on failure with the file and line (or JSON key) in tp_last_error(). */
tp_tokenizer *tp_tokenizer_create(const tp_tokenizer_options *options);
void tp_tokenizer_free(tp_tokenizer *tok);
static inline int tp_tokenizer_encode(const tp_tokenizer *tok, const char *text, size_t len, tp_ids *out)
{
    return tok->ops->encode(tok, text, len, out);
}
/* Id of a token string, -1 if absent. */
int32_t tp_tokenizer_token_id(const tp_tokenizer *tok, const char *token);

#endif
