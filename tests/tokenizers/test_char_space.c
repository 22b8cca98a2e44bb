/* The char and space tokenizers against TencentPretrain's CharTokenizer / SpaceTokenizer
 * semantics (Python's str.strip, str.split(" "), list): the ids that
 * tests/reference/make_char_space_tokenizer_fixture.py stored for every line of the 220 KB
 * sample with bert-base-uncased's vocabulary, and for white-space and byte-level cases. */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "core/error.h"
#include "ids_fixture.h"
#include "support/check.h"
#include "support/scratch.h"
#include "tokenizers/tokenizer.h"

#define VOCAB "data/vocab/bert-base-uncased-vocab.txt"
#define FIXTURES "tests/fixtures/char_space/"

static tp_tokenizer *open_kind(const char *kind, const char *vocab_path)
{
    tp_tokenizer_options options = {.kind = kind, .vocab_path = vocab_path};
    return tp_tokenizer_create(&options);
}

static void check_kind(const char *kind)
{
    char ids_path[256], cases_path[256];
    snprintf(ids_path, sizeof ids_path, FIXTURES "%s.ids.gz", kind);
    snprintf(cases_path, sizeof cases_path, FIXTURES "%s_cases.txt", kind);
    tp_tokenizer *tok = open_kind(kind, VOCAB);
    CHECK_MSG(tok != NULL, "%s", tp_last_error());
    if (!tok) return;
    CHECK(tok->unk_id == 100 && tok->cls_id == 101 && tok->bos_id == -1 && tok->eos_id == -1);
    fixture_check_sample(tok, "tests/fixtures/wordpiece/sample.txt", ids_path, 1.0);
    fixture_check_hex_cases(tok, cases_path);
    tp_tokenizer_free(tok);
}

static void check_errors(void)
{
    const char *no_unk = tp_scratch_write("no_unk.txt", "[PAD]\na\n", 8);
    CHECK(open_kind("char", no_unk) == NULL);
    CHECK_MSG(strstr(tp_last_error(), no_unk) && strstr(tp_last_error(), "[UNK]"), "%s", tp_last_error());
    CHECK(open_kind("space", NULL) == NULL);
    CHECK_MSG(strstr(tp_last_error(), "vocab_path") != NULL, "%s", tp_last_error());
    CHECK(open_kind("space", "/nonexistent/vocab.txt") == NULL);
    CHECK_MSG(strstr(tp_last_error(), "/nonexistent/vocab.txt") != NULL, "%s", tp_last_error());
}

int main(void)
{
    tp_scratch_init("char_space");
    check_errors();
    if (access(VOCAB, R_OK) != 0) {
        fprintf(stderr, "%s is missing: run scripts/fetch_data.sh first\n", VOCAB);
        CHECK(!"the bert-base-uncased vocabulary is present");
        return tp_test_finish("test_char_space");
    }
    check_kind("char");
    check_kind("space");
    return tp_test_finish("test_char_space");
}
