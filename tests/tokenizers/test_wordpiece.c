/* The bert tokenizer against Hugging Face's slow BertTokenizer: the ids that
 * tests/reference/make_wordpiece_fixture.py stored for every line of a real
 * text sample (uncased and cased) and for byte-level inputs, plus the
 * vocabulary's error messages, token lookup and unknown kinds. */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "core/error.h"
#include "support/check.h"
#include "support/scratch.h"
#include "ids_fixture.h"
#include "tokenizers/tokenizer.h"

#define VOCAB "data/vocab/bert-base-uncased-vocab.txt"
#define FIXTURES "tests/fixtures/wordpiece/"

static tp_tokenizer *open_bert(const char *vocab_path, int do_lower_case)
{
    tp_tokenizer_options options = {.kind = "bert", .vocab_path = vocab_path, .do_lower_case = do_lower_case};
    return tp_tokenizer_create(&options);
}

static void check_token_ids(const tp_tokenizer *tok)
{
    CHECK(tok->vocab_size == 30522);
    /* bert-base-uncased's special ids, as its Hugging Face config lists them. */
    CHECK(tok->pad_id == 0 && tok->unk_id == 100 && tok->cls_id == 101 && tok->sep_id == 102 && tok->mask_id == 103);
    int64_t wrong = 0;
    for (int64_t id = 0; id < tok->vocab_size; id++) wrong += tp_tokenizer_token_id(tok, tok->tokens[id]) != id;
    CHECK_MSG(wrong == 0, "%lld tokens do not map back to their line", (long long)wrong);
    CHECK(tp_tokenizer_token_id(tok, "notatokenanywhere") == -1);
    CHECK(tp_tokenizer_token_id(tok, "") == -1);
    CHECK(tp_tokenizer_token_id(tok, "[cls]") == -1);
}

/* ---- vocabulary errors, on small files written here ---- */

/* Creating a tokenizer from `content` fails with a message holding each of the fragments. */
static void check_vocab_error(const char *name, const char *content, size_t len, const char *fragment1,
                              const char *fragment2)
{
    const char *path = tp_scratch_write(name, content, len);
    tp_tokenizer *tok = open_bert(path, 1);
    CHECK_MSG(tok == NULL, "%s: accepted", name);
    tp_tokenizer_free(tok);
    const char *message = tp_last_error();
    CHECK_MSG(strstr(message, path) && strstr(message, fragment1) && (!fragment2 || strstr(message, fragment2)),
              "%s: message '%s' lacks '%s' / '%s'", name, message, fragment1, fragment2 ? fragment2 : "");
}

static void check_vocab_errors(void)
{
    static const char invalid[] = "[UNK]\na\nb\xc3\x28\n";
    static const char duplicate[] = "[UNK]\nhello\nworld\nhello\n";
    check_vocab_error("empty.txt", "", 0, "empty vocabulary", NULL);
    check_vocab_error("invalid.txt", invalid, sizeof invalid - 1, "line 3", "invalid UTF-8");
    check_vocab_error("duplicate.txt", duplicate, sizeof duplicate - 1, "line 4: duplicate token 'hello'",
                      "first at line 2");
    check_vocab_error("blank_line.txt", "[UNK]\n\nx\n", 9, "line 2: empty token", NULL);
    check_vocab_error("nul.txt", "[UNK]\na\0b\n", 10, "line 2", "invalid UTF-8");
    check_vocab_error("no_unk.txt", "[PAD]\nhello\n", 12, "[UNK]", NULL);

    const char *missing = "/nonexistent/dir/vocab.txt";
    CHECK(open_bert(missing, 1) == NULL);
    CHECK_MSG(strstr(tp_last_error(), missing) != NULL, "%s", tp_last_error());

    /* CRLF line ends and a last line without one. */
    static const char crlf[] = "[PAD]\r\n[UNK]\r\nhello\r\n##s\r\nworld";
    tp_tokenizer *tok = open_bert(tp_scratch_write("crlf.txt", crlf, sizeof crlf - 1), 1);
    CHECK_MSG(tok != NULL, "%s", tp_last_error());
    if (tok) {
        CHECK(tok->vocab_size == 5 && tok->pad_id == 0 && tok->unk_id == 1 && tok->cls_id == -1);
        CHECK(tp_tokenizer_token_id(tok, "hello") == 2 && tp_tokenizer_token_id(tok, "world") == 4);
        CHECK(strcmp(tok->tokens[3], "##s") == 0);
        tp_tokenizer_free(tok);
    }
}

static void check_unknown_kind(void)
{
    tp_tokenizer_options options = {.kind = "gpt9", .vocab_path = VOCAB, .do_lower_case = 1};
    CHECK(tp_tokenizer_create(&options) == NULL);
    CHECK_MSG(strstr(tp_last_error(), "unknown tokenizer kind 'gpt9' (known: bert, bpe, gpt2") != NULL, "%s",
              tp_last_error());
}

int main(void)
{
    tp_scratch_init("wordpiece");
    check_vocab_errors();
    check_unknown_kind();
    if (access(VOCAB, R_OK) != 0) {
        fprintf(stderr, "%s is missing: run scripts/fetch_data.sh first\n", VOCAB);
        CHECK(!"the bert-base-uncased vocabulary is present");
        return tp_test_finish("test_wordpiece");
    }
    tp_tokenizer *uncased = open_bert(VOCAB, 1);
    tp_tokenizer *cased = open_bert(VOCAB, 0);
    CHECK_MSG(uncased && cased, "%s", tp_last_error());
    if (uncased && cased) {
        check_token_ids(uncased);
        fixture_check_sample(uncased, FIXTURES "sample.txt", FIXTURES "sample.ids", 1.0);
        fixture_check_sample(cased, FIXTURES "sample.txt", FIXTURES "sample.cased.ids", 1.0);
        fixture_check_hex_cases(uncased, FIXTURES "byte_cases.txt");
    }
    tp_tokenizer_free(uncased);
    tp_tokenizer_free(cased);
    return tp_test_finish("test_wordpiece");
}
