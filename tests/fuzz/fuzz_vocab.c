/* libFuzzer harness for vocabulary loading and WordPiece encoding: the input is a vocabulary file.
 * Every input either is refused with a message naming the file, or loads into a tokenizer whose
 * tokens all map back to their own ids, whose special ids are the ids of their strings, and which
 * encodes fixed texts, each special token alone, and the input itself read as text (arbitrary
 * bytes) into ids below vocab_size -- the same ids every time -- with and without lower-casing.
 * Build and run with tests/fuzz/run.sh vocab <seconds>. */
#include "tests/fuzz/memfile.h"

#include "core/error.h"
#include "tokenizers/tokenizer.h"

#include <string.h>

static const char *const texts[] = {
    "", "the cat sat on the mat.", "Hello, WORLD!!  [CLS] x[SEP]y [MASK][MASK] [UNK] [PAD]",
    "\xc3\x89t\xc3\xa9 na\xc3\xafve caf\xc3\xa9 \xe4\xb8\xad\xe6\x96\x87 \xf0\x9f\x98\x80 \t\r\n\x01\x7f",
    "broken \xff\xfe\xc3 utf-8 \xed\xa0\x80 surrogate \xc0\xaf overlong",
    "unaffable runnings ##s ## ##", NULL,
};

static void check_ids_in_range(const tp_tokenizer *tok, const tp_ids *ids)
{
    for (int64_t i = 0; i < ids->count; i++) fuzz_check(ids->ids[i] >= 0 && ids->ids[i] < tok->vocab_size);
}

/* Encodes text twice: both must succeed with the same in-range ids. */
static void encode_twice(const tp_tokenizer *tok, const char *text, size_t len)
{
    tp_ids first = {0}, second = {0};
    fuzz_check(tp_tokenizer_encode(tok, text, len, &first) == 0);
    fuzz_check(tp_tokenizer_encode(tok, text, len, &second) == 0);
    check_ids_in_range(tok, &first);
    fuzz_check(first.count == second.count &&
               (first.count == 0 || memcmp(first.ids, second.ids, sizeof *first.ids * (size_t)first.count) == 0));
    tp_ids_free(&first);
    tp_ids_free(&second);
}

static void check_special(const tp_tokenizer *tok, const char *text, int32_t id)
{
    fuzz_check(tp_tokenizer_token_id(tok, text) == id);
    if (id < 0) return;
    tp_ids ids = {0};
    fuzz_check(tp_tokenizer_encode(tok, text, strlen(text), &ids) == 0);
    fuzz_check(ids.count == 1 && ids.ids[0] == id); /* a special token is never split */
    tp_ids_free(&ids);
}

static void check_vocabulary(const tp_tokenizer *tok)
{
    fuzz_check(tok->vocab_size >= 1 && tok->unk_id >= 0); /* the bert kind requires [UNK] */
    for (int64_t id = 0; id < tok->vocab_size; id++) {
        fuzz_check(tok->tokens[id] && tok->tokens[id][0]);
        fuzz_check(tp_tokenizer_token_id(tok, tok->tokens[id]) == id);
    }
    check_special(tok, "[PAD]", tok->pad_id);
    check_special(tok, "[UNK]", tok->unk_id);
    check_special(tok, "[CLS]", tok->cls_id);
    check_special(tok, "[SEP]", tok->sep_id);
    check_special(tok, "[MASK]", tok->mask_id);
}

static void fuzz_one_kind(const char *path, const uint8_t *data, size_t size, int do_lower_case)
{
    tp_tokenizer_options options = {.kind = "bert", .vocab_path = path, .do_lower_case = do_lower_case};
    tp_tokenizer *tok = tp_tokenizer_create(&options);
    if (!tok) {
        fuzz_check(strstr(tp_last_error(), path) == tp_last_error()); /* every refusal names the file */
        return;
    }
    check_vocabulary(tok);
    for (int i = 0; texts[i]; i++) encode_twice(tok, texts[i], strlen(texts[i]));
    encode_twice(tok, (const char *)data, size);
    tp_tokenizer_free(tok);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fuzz_memfile_write(data, size);
    fuzz_one_kind(path, data, size, 0);
    fuzz_one_kind(path, data, size, 1);
    return 0;
}
