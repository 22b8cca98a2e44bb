/* The tokenizer interface.  Every tokenizer (WordPiece now; BPE, SentencePiece,
 * char, space later) is a vtable behind tp_tokenizer, chosen by name. */
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
    /* Special token ids (-1 when the vocabulary lacks them). */
    int32_t pad_id, unk_id, cls_id, sep_id, mask_id;
    void *impl;        /* tokenizer-specific state */
};

/* Options for creating a tokenizer by name ("bert" = BasicTokenizer + WordPiece). */
typedef struct tp_tokenizer_options {
    const char *kind;       /* "bert" */
    const char *vocab_path; /* one token per line, id = line number */
    int do_lower_case;      /* lower-case and strip accents (bert-base-uncased: 1) */
} tp_tokenizer_options;

/* NULL on failure with the file and line in tp_last_error(). */
tp_tokenizer *tp_tokenizer_create(const tp_tokenizer_options *options);
void tp_tokenizer_free(tp_tokenizer *tok);
static inline int tp_tokenizer_encode(const tp_tokenizer *tok, const char *text, size_t len, tp_ids *out)
{
    return tok->ops->encode(tok, text, len, out);
}
/* Id of a token string, -1 if absent. */
int32_t tp_tokenizer_token_id(const tp_tokenizer *tok, const char *token);

#endif
