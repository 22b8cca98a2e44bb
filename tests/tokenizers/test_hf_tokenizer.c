/* The hf tokenizer kind (tokenizer.json) against Hugging Face's tokenizers library on the same
 * file: tests/reference/make_hf_tokenizer_fixture.py writes the library's ids for every line of
 * the 220 KB sample and for hand-picked cases, here, at test time, for four tokenizer.json files:
 * BERT's WordPiece as all-MiniLM-L6-v2 publishes it, GPT-2's byte-level BPE, the same with
 * add_prefix_space and an lstrip <mask> (RoBERTa's settings), and a T5-style SentencePiece
 * Unigram (precompiled charsmap, Metaspace).  Plus the messages for broken files. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/error.h"
#include "ids_fixture.h"
#include "support/check.h"
#include "support/scratch.h"
#include "tokenizers/tokenizer.h"

#define SAMPLE "tests/fixtures/wordpiece/sample.txt"
#define HF_PYTHON "data/cache/python/tokenizers-0.20.3"

static tp_tokenizer *open_hf(const char *path)
{
    tp_tokenizer_options options = {.kind = "hf", .tokenizer_json_path = path};
    return tp_tokenizer_create(&options);
}

/* The reference's ids for json_path into <scratch>/<name>/; 0 on success. */
static int make_reference(const char *json_path, const char *name)
{
    char command[4096];
    snprintf(command, sizeof command,
             "PYTHONPATH=%s /usr/bin/python3 tests/reference/make_hf_tokenizer_fixture.py %s %s %s/%s", HF_PYTHON,
             json_path, SAMPLE, tp_scratch_dir(), name);
    int status = system(command);
    CHECK_MSG(status == 0, "failed (%d): %s", status, command);
    return status;
}

static tp_tokenizer *check_file(const char *json_path, const char *name)
{
    char ids[1024], cases[1024];
    snprintf(ids, sizeof ids, "%s/%s/sample.ids", tp_scratch_dir(), name);
    snprintf(cases, sizeof cases, "%s/%s/cases.txt", tp_scratch_dir(), name);
    tp_tokenizer *tok = open_hf(json_path);
    CHECK_MSG(tok != NULL, "%s", tp_last_error());
    if (!tok || make_reference(json_path, name) != 0) return tok;
    fixture_check_sample(tok, SAMPLE, ids, 2.0);
    fixture_check_hex_cases(tok, cases);
    return tok;
}

static void check_reference_files(void)
{
    tp_tokenizer *bert = check_file("data/models/all-MiniLM-L6-v2/tokenizer.json", "bert");
    if (bert) /* bert-base-uncased's ids, as its Hugging Face config lists them */
        CHECK(bert->vocab_size == 30522 && bert->pad_id == 0 && bert->unk_id == 100 && bert->cls_id == 101 &&
              bert->sep_id == 102 && bert->mask_id == 103);
    tp_tokenizer *gpt2 = check_file("data/tokenizers/gpt2/tokenizer.json", "gpt2");
    if (gpt2) CHECK(gpt2->vocab_size == 50257 && gpt2->eos_id == 50256 && gpt2->bos_id == 50256 && gpt2->cls_id < 0);
    tp_tokenizer *prefix = check_file("data/tokenizers/gpt2-prefix/tokenizer.json", "gpt2-prefix");
    if (prefix) CHECK(prefix->vocab_size == 50258 && prefix->mask_id == 50257);
    /* spm_train's defaults put <unk> <s> </s> at 0 1 2; the converter adds <pad> after the 4000 pieces. */
    tp_tokenizer *unigram = check_file("data/tokenizers/unigram/tokenizer.json", "unigram");
    if (unigram)
        CHECK(unigram->vocab_size == 4001 && unigram->unk_id == 0 && unigram->bos_id == 1 && unigram->eos_id == 2 &&
              unigram->pad_id == 4000);
    tp_tokenizer_free(bert);
    tp_tokenizer_free(gpt2);
    tp_tokenizer_free(prefix);
    tp_tokenizer_free(unigram);
}

/* ---- broken files ---- */

static void check_error(const char *json, const char *fragment1, const char *fragment2)
{
    const char *path = tp_scratch_write("tokenizer.json", json, strlen(json));
    tp_tokenizer *tok = open_hf(path);
    CHECK_MSG(tok == NULL, "accepted: %s", json);
    tp_tokenizer_free(tok);
    const char *message = tp_last_error();
    CHECK_MSG(strstr(message, path) && strstr(message, fragment1) && (!fragment2 || strstr(message, fragment2)),
              "message '%s' lacks '%s' / '%s'", message, fragment1, fragment2 ? fragment2 : "");
}

static void check_errors(void)
{
    check_error("{\"model\": {\"type\": \"WordPiece\",}", "line 1, column 33", "invalid JSON");
    check_error("[]", "expected a JSON object", NULL);
    check_error("{}", "key 'model': missing", NULL);
    check_error("{\"model\": {\"type\": \"WordLevel\", \"vocab\": {}}}", "key 'model.type'",
                "unknown model type 'WordLevel' (known: WordPiece, BPE, Unigram)");
    check_error("{\"model\": {\"vocab\": {}}}", "key 'model.type'", "expected a string");
    check_error("{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"b\": 1, \"ab\": 2}, \"merges\": [\"a b c\"]},"
                " \"pre_tokenizer\": {\"type\": \"ByteLevel\"}}",
                "key 'model.merges[0]'", "not two tokens separated by one space");
    check_error("{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": [], \"dropout\": 0.1},"
                " \"pre_tokenizer\": {\"type\": \"ByteLevel\"}}",
                "key 'model.dropout'", "not supported");
    check_error("{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": []},"
                " \"pre_tokenizer\": {\"type\": \"Whitespace\"}}",
                "key 'pre_tokenizer.type'", "'Whitespace' with a BPE model is not supported");
    check_error("{\"model\": {\"type\": \"WordPiece\", \"vocab\": {\"[UNK]\": 0}, \"unk_token\": \"[UNK]\"},"
                " \"normalizer\": {\"type\": \"NFC\"}, \"pre_tokenizer\": {\"type\": \"BertPreTokenizer\"}}",
                "key 'normalizer.type'", "tp needs BertNormalizer");
    check_error("{\"model\": {\"type\": \"WordPiece\", \"vocab\": {\"[UNK]\": 0}, \"unk_token\": \"[X]\"},"
                " \"normalizer\": {\"type\": \"BertNormalizer\"}, \"pre_tokenizer\": {\"type\": \"BertPreTokenizer\"}}",
                "key 'model.unk_token'", "'[X]' is not in the vocabulary");
    check_error("{\"model\": {\"type\": \"Unigram\", \"vocab\": [[\"a\", -1.0], [\"b\"]], \"unk_id\": 0}}",
                "key 'model.vocab[1]'", "expected [piece, score]");
    check_error("{\"model\": {\"type\": \"Unigram\", \"vocab\": [[\"a\", -1.0]], \"unk_id\": 0},"
                " \"normalizer\": {\"type\": \"Lowercase\"}}",
                "key 'normalizer.type'", "unsupported normalizer 'Lowercase'");
    check_error("{\"model\": {\"type\": \"Unigram\", \"vocab\": [[\"a\", -1.0]], \"unk_id\": 0},"
                " \"normalizer\": {\"type\": \"Precompiled\", \"precompiled_charsmap\": \"AAAA\"}}",
                "key 'normalizer.precompiled_charsmap'", "cannot hold");
    check_error("{\"model\": {\"type\": \"Unigram\", \"vocab\": [[\"a\", -1.0]], \"unk_id\": 5}}", "key 'model.unk_id'",
                NULL);
    check_error("{\"model\": {\"type\": \"Unigram\", \"vocab\": [[\"a\", -1.0]], \"unk_id\": 0},"
                " \"added_tokens\": [{\"id\": 0, \"content\": \"b\"}]}",
                "key 'added_tokens[0]'", "id 0 is 'a' in the model, not 'b'");
    CHECK(open_hf(NULL) == NULL);
    CHECK_MSG(strstr(tp_last_error(), "tokenizer_json_path") != NULL, "%s", tp_last_error());
    CHECK(open_hf("/nonexistent/tokenizer.json") == NULL);
    CHECK_MSG(strstr(tp_last_error(), "/nonexistent/tokenizer.json") != NULL, "%s", tp_last_error());
}

int main(void)
{
    tp_scratch_init("hf_tokenizer");
    check_errors();
    if (access(HF_PYTHON "/tokenizers/__init__.py", R_OK) != 0 ||
        access("data/tokenizers/unigram/tokenizer.json", R_OK) != 0) {
        fprintf(stderr, "%s or data/tokenizers/ is missing: run scripts/fetch_data.sh first\n", HF_PYTHON);
        CHECK(!"the tokenizers library and the tokenizer.json files are present");
        return tp_test_finish("test_hf_tokenizer");
    }
    check_reference_files();
    return tp_test_finish("test_hf_tokenizer");
}
