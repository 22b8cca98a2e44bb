/* Invariants every tokenizer that loaded must keep, shared by the tokenizer harnesses
 * (fuzz_bpe, fuzz_hf_json, fuzz_spm): each token maps back to its own id, each special id is
 * -1 or a token, and fixed texts plus the fuzz input itself (arbitrary bytes) encode into ids
 * below vocab_size, the same ids every time.  Header-only: each harness is one translation unit. */
#ifndef TP_FUZZ_TOKENIZER_CHECKS_H
#define TP_FUZZ_TOKENIZER_CHECKS_H

#include <string.h>

#include "tests/fuzz/memfile.h"
#include "tokenizers/tokenizer.h"

static const char *const fuzz_texts[] = {
    "", " ", "the cat sat on the mat.", "Hello, WORLD!!  [CLS] x[SEP]y <s> </s> <|endoftext|> <mask>",
    "\xc3\x89t\xc3\xa9 na\xc3\xafve caf\xc3\xa9 \xe4\xb8\xad\xe6\x96\x87 \xf0\x9f\x98\x80 \t\r\n\x01\x7f",
    "broken \xff\xfe\xc3 utf-8 \xed\xa0\x80 surrogate \xc0\xaf overlong", "  \xe2\x96\x81 it's   spaced  ",
    NULL,
};

static void fuzz_encode_twice(const tp_tokenizer *tok, const char *text, size_t len)
{
    tp_ids first = {0}, second = {0};
    int status = tp_tokenizer_encode(tok, text, len, &first);
    fuzz_check(tp_tokenizer_encode(tok, text, len, &second) == status);
    for (int64_t i = 0; i < first.count; i++) fuzz_check(first.ids[i] >= 0 && first.ids[i] < tok->vocab_size);
    fuzz_check(status != 0 || (first.count == second.count &&
                               (first.count == 0 ||
                                memcmp(first.ids, second.ids, sizeof *first.ids * (size_t)first.count) == 0)));
    tp_ids_free(&first);
    tp_ids_free(&second);
}

static void fuzz_check_special(const tp_tokenizer *tok, int32_t id)
{
    fuzz_check(id >= -1 && id < tok->vocab_size);
}

static void fuzz_check_tokenizer(const tp_tokenizer *tok, const uint8_t *data, size_t size)
{
    fuzz_check(tok->vocab_size >= 1 && tok->source_path);
    for (int64_t id = 0; id < tok->vocab_size; id++) {
        fuzz_check(tok->tokens[id] && tok->tokens[id][0]);
        fuzz_check(tp_tokenizer_token_id(tok, tok->tokens[id]) == id);
    }
    const int32_t specials[] = {tok->pad_id, tok->unk_id, tok->cls_id, tok->sep_id,
                                tok->mask_id, tok->bos_id, tok->eos_id};
    for (size_t k = 0; k < sizeof specials / sizeof specials[0]; k++) fuzz_check_special(tok, specials[k]);
    for (int i = 0; fuzz_texts[i]; i++) fuzz_encode_twice(tok, fuzz_texts[i], strlen(fuzz_texts[i]));
    fuzz_encode_twice(tok, (const char *)data, size);
}

#endif
