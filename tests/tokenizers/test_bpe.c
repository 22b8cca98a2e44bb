/* The bpe (GPT-2 byte-level BPE) tokenizer against tiktoken's GPT-2 encoding: the ids that
 * tests/reference/make_bpe_tokenizer_fixture.py stored for every line of the 220 KB real-text
 * sample (tests/fixtures/wordpiece/sample.txt) and for regex and byte-level cases, with and
 * without <|endoftext|> recognised in the text; plus the messages for bad vocab.json and
 * merges.txt files. */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "core/error.h"
#include "ids_fixture.h"
#include "support/check.h"
#include "support/scratch.h"
#include "tokenizers/tokenizer.h"

#define GPT2 "data/vocab/gpt2/"
#define FIXTURES "tests/fixtures/bpe/"

static tp_tokenizer *open_bpe(const char *vocab_path, const char *merges_path, int special_tokens_in_text)
{
    tp_tokenizer_options options = {.kind = "bpe",
                                    .vocab_path = vocab_path,
                                    .merges_path = merges_path,
                                    .special_tokens_in_text = special_tokens_in_text};
    return tp_tokenizer_create(&options);
}

static void check_gpt2(void)
{
    tp_tokenizer *tok = open_bpe(GPT2 "vocab.json", GPT2 "merges.txt", 0);
    tp_tokenizer *special = open_bpe(GPT2 "vocab.json", GPT2 "merges.txt", 1);
    CHECK_MSG(tok && special, "%s", tp_last_error());
    if (!tok || !special) return;
    /* GPT-2's published sizes: 50257 tokens, <|endoftext|> last. */
    CHECK(tok->vocab_size == 50257);
    CHECK(tok->eos_id == 50256 && tok->bos_id == 50256 && strcmp(tok->tokens[50256], "<|endoftext|>") == 0);
    CHECK(tok->cls_id < 0 && tok->sep_id < 0 && tok->mask_id < 0 && tok->pad_id < 0);
    fixture_check_sample(tok, "tests/fixtures/wordpiece/sample.txt", FIXTURES "sample.ids.gz", 2.0);
    fixture_check_hex_cases(tok, FIXTURES "cases.txt");
    fixture_check_hex_cases(special, FIXTURES "special_cases.txt");
    tp_tokenizer_free(tok);
    tp_tokenizer_free(special);
}

/* Creating a tokenizer from these files fails with a message holding each fragment. */
static void check_error(const char *vocab, const char *merges, const char *fragment1, const char *fragment2)
{
    const char *vocab_path = tp_scratch_write("vocab.json", vocab, strlen(vocab));
    const char *merges_path = merges ? tp_scratch_write("merges.txt", merges, strlen(merges)) : "/nonexistent/merges.txt";
    tp_tokenizer *tok = open_bpe(vocab_path, merges_path, 0);
    CHECK_MSG(tok == NULL, "accepted: %s | %s", vocab, merges ? merges : "(missing)");
    tp_tokenizer_free(tok);
    const char *message = tp_last_error();
    CHECK_MSG(strstr(message, fragment1) && (!fragment2 || strstr(message, fragment2)),
              "message '%s' lacks '%s' / '%s'", message, fragment1, fragment2 ? fragment2 : "");
}

/* A tiny vocabulary: the 256 byte-level characters are needed, so build them. */
static const char *tiny_vocab(const char *extra)
{
    static char vocab[8192];
    int at = sprintf(vocab, "{");
    for (int b = 0, next = 256; b < 256; b++) {
        int printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
        int c = printable ? b : next++;
        char utf8[4];
        int len = c < 0x80 ? (utf8[0] = (char)c, 1) : (utf8[0] = (char)(0xC0 | c >> 6), utf8[1] = (char)(0x80 | (c & 0x3F)), 2);
        if (c == '"' || c == '\\') at += sprintf(vocab + at, "\"\\%c\": %d, ", c, b);
        else at += sprintf(vocab + at, "\"%.*s\": %d, ", len, utf8, b);
    }
    sprintf(vocab + at, "%s}", extra);
    return vocab;
}

static void check_errors(void)
{
    const char *vocab = tiny_vocab("\"ab\": 256, \"abc\": 257");
    check_error(vocab, NULL, "/nonexistent/merges.txt", NULL);
    check_error(vocab, "#version: 0.2\na b\nab\n", "merges.txt: line 3", "found 1 field");
    check_error(vocab, "#version: 0.2\na b c\n", "merges.txt: line 2", "found 3 fields");
    check_error(vocab, "a b\n\nab c\n", "merges.txt: line 2", "found 0 fields");
    check_error(vocab, "a  b\n", "merges.txt: line 1", "two tokens separated by one space");
    check_error(vocab, "a b\nab x\n", "merges.txt: line 2: merge 'ab x'", "the merged token 'abx' is not in the vocabulary");
    check_error(vocab, "a b\nab zz\n", "merges.txt: line 2: merge 'ab zz'", "token 'zz' is not in the vocabulary");
    check_error("{\"a\": 0,, }", "a b\n", "vocab.json: line 1, column 10", "invalid JSON");
    check_error("[1, 2]", "a b\n", "vocab.json", "expected an object");
    check_error("{\"a\": 0, \"b\": 2}", "", "vocab.json", "id 2 is out of range: 2 tokens have ids 0 to 1");
    /* Found by fuzzing: one large id sized a 16 GiB table before the gap was noticed. */
    check_error("{\"a\": 0, \"b\": 2000000000}", "", "vocab.json", "id 2000000000 is out of range");
    check_error("{\"a\": 0, \"b\": -1}", "", "vocab.json", "token 'b': the id is not an integer");
    check_error("{\"a\": 0, \"b\": 0}", "", "vocab.json", "id 0 is given to both 'a' and 'b'");
    check_error("{\"a\": 0, \"b\": 1}", "", "vocab.json: the vocabulary lacks the byte-level token", "byte 0x00");
    check_error("{}", "", "vocab.json: empty vocabulary", NULL);
    tp_tokenizer_options no_merges = {.kind = "bpe", .vocab_path = GPT2 "vocab.json"};
    CHECK(tp_tokenizer_create(&no_merges) == NULL);
    CHECK_MSG(strstr(tp_last_error(), "merges_path") != NULL, "%s", tp_last_error());

    /* The tiny vocabulary works: "abc" merges to one token, and an unmerged byte stays a byte. */
    tp_tokenizer *tok = open_bpe(tp_scratch_write("vocab.json", vocab, strlen(vocab)),
                                 tp_scratch_write("merges.txt", "#version: 0.2\r\na b\r\nab c\r\n", 25), 0);
    CHECK_MSG(tok != NULL, "%s", tp_last_error());
    if (tok) {
        tp_ids ids = {0};
        CHECK(tp_tokenizer_encode(tok, "abc ab", 6, &ids) == 0);
        CHECK(ids.count == 3 && ids.ids[0] == 257 && ids.ids[1] == ' ' && ids.ids[2] == 256);
        tp_ids_free(&ids);
        tp_tokenizer_free(tok);
    }
}

int main(void)
{
    tp_scratch_init("bpe");
    check_errors();
    if (access(GPT2 "merges.txt", R_OK) != 0) {
        fprintf(stderr, "%s is missing: run scripts/fetch_data.sh first\n", GPT2 "merges.txt");
        CHECK(!"GPT-2's vocab.json and merges.txt are present");
        return tp_test_finish("test_bpe");
    }
    check_gpt2();
    return tp_test_finish("test_bpe");
}
