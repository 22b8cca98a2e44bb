/* The sentencepiece tokenizer against Debian's spm_encode: small unigram and BPE (with byte
 * fallback) models are trained here with spm_train on real text (1.5 MB of the pre-training
 * corpus and the even lines of the WordPiece sample), then every line of the 220 KB sample
 * (its odd lines held out, CJK and other non-ASCII included) must get the ids that
 * spm_encode --output_format=id gives.  Also: the messages for a missing or broken model, the
 * check of the precompiled character maps that libsentencepiece does not bounds-check (on models
 * built here byte by byte, and on the model fuzz_spm found), and the clear refusal of a build
 * without libsentencepiece. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/error.h"
#include "core/fileio.h"
#include "ids_fixture.h"
#include "support/check.h"
#include "support/scratch.h"
#include "tokenizers/sentencepiece.h"
#include "tokenizers/tokenizer.h"

#define SAMPLE "tests/fixtures/wordpiece/sample.txt"
#define CORPUS "data/corpus/pretrain.txt"
enum { CORPUS_BYTES = 1500000 };

static tp_tokenizer *open_spm(const char *path)
{
    tp_tokenizer_options options = {.kind = "sentencepiece", .spm_model_path = path};
    return tp_tokenizer_create(&options);
}

static int run(const char *command)
{
    int status = system(command);
    if (status != 0) fprintf(stderr, "failed (%d): %s\n", status, command);
    return status;
}

/* scratch/train.txt: the corpus's first CORPUS_BYTES (whole lines) and the sample's even lines. */
static const char *write_training_text(void)
{
    size_t corpus_size, sample_size;
    char *corpus = tp_read_file(CORPUS, &corpus_size);
    char *sample = tp_read_file(SAMPLE, &sample_size);
    CHECK_MSG(corpus && sample, "%s", tp_last_error());
    if (!corpus || !sample) return NULL;
    size_t keep = corpus_size < CORPUS_BYTES ? corpus_size : CORPUS_BYTES;
    while (keep > 0 && corpus[keep - 1] != '\n') keep--;
    char *text = malloc(keep + sample_size + 1);
    memcpy(text, corpus, keep);
    size_t at = keep;
    int64_t line = 1;
    for (char *p = sample; p < sample + sample_size; line++) {
        char *newline = memchr(p, '\n', (size_t)(sample + sample_size - p));
        char *next = newline ? newline + 1 : sample + sample_size;
        if (line % 2 == 0) {
            memcpy(text + at, p, (size_t)(next - p));
            at += (size_t)(next - p);
        }
        p = next;
    }
    const char *path = tp_scratch_write("train.txt", text, at);
    free(text);
    free(corpus);
    free(sample);
    return path;
}

static void check_model(const char *train_path, const char *name, const char *train_options)
{
    char command[4096], model[1024], ids[1024];
    snprintf(model, sizeof model, "%s/%s.model", tp_scratch_dir(), name);
    snprintf(ids, sizeof ids, "%s/%s.ids", tp_scratch_dir(), name);
    snprintf(command, sizeof command,
             "spm_train --input=%s --model_prefix=%s/%s --vocab_size=4000 --num_threads=2 --minloglevel=2 %s "
             ">/dev/null 2>&1",
             train_path, tp_scratch_dir(), name, train_options);
    CHECK(run(command) == 0);
    snprintf(command, sizeof command, "spm_encode --model=%s --output_format=id <%s >%s", model, SAMPLE, ids);
    CHECK(run(command) == 0);
    tp_tokenizer *tok = open_spm(model);
    CHECK_MSG(tok != NULL, "%s", tp_last_error());
    if (!tok) return;
    /* spm_train's defaults: <unk> 0, <s> 1, </s> 2, no pad. */
    CHECK(tok->vocab_size == 4000 && tok->unk_id == 0 && tok->bos_id == 1 && tok->eos_id == 2 && tok->pad_id == -1);
    CHECK(strcmp(tok->tokens[1], "<s>") == 0 && tp_tokenizer_token_id(tok, "</s>") == 2);
    CHECK(tok->cls_id == -1 && tok->sep_id == -1 && tok->mask_id == -1);
    fixture_check_sample(tok, SAMPLE, ids, 2.0);
    tp_tokenizer_free(tok);
}

static void check_errors(void)
{
    CHECK(open_spm("/nonexistent/m.model") == NULL);
    CHECK_MSG(strstr(tp_last_error(), "/nonexistent/m.model") != NULL, "%s", tp_last_error());
    const char *garbage = tp_scratch_write("garbage.model", "not a protobuf \xff\xff\xff", 18);
    CHECK(open_spm(garbage) == NULL);
    CHECK_MSG(strstr(tp_last_error(), garbage) && strstr(tp_last_error(), "not a SentencePiece model"), "%s",
              tp_last_error());
    CHECK(open_spm(NULL) == NULL);
    CHECK_MSG(strstr(tp_last_error(), "spm_model_path") != NULL, "%s", tp_last_error());
}

/* A protobuf message built byte by byte. */
typedef struct message {
    unsigned char bytes[4096];
    size_t size;
} message;

static void put_varint(message *m, uint64_t value)
{
    do {
        m->bytes[m->size++] = (unsigned char)((value & 0x7F) | (value > 0x7F ? 0x80 : 0));
        value >>= 7;
    } while (value);
}

/* A length-delimited field; returns where its payload starts. */
static size_t put_bytes(message *m, int number, const void *data, size_t size)
{
    put_varint(m, (uint64_t)number << 3 | 2);
    put_varint(m, size);
    size_t at = m->size;
    memcpy(m->bytes + at, data, size);
    m->size += size;
    return at;
}

static void put_le32(unsigned char *at, uint32_t value)
{
    for (int i = 0; i < 4; i++) at[i] = (unsigned char)(value >> (8 * i));
}

enum { TRIE_UNITS = 256, LEAF = 1u << 8, LEAF_VALUE = 1u << 31 };

/* A charsmap whose 256-unit trie maps "a" to the replacement "b": the root is node 0, byte 'a'
 * (unit 97) leads to node 200 (offset 97 ^ 200), whose unit holds value 0 (byte 0 of "b\0").
 * leaf_offset and leaf_value corrupt it where asked. */
static size_t charsmap_blob(unsigned char *blob, uint32_t root_unit, uint32_t leaf_offset, uint32_t leaf_value)
{
    memset(blob, 0, 4 + 4 * TRIE_UNITS);
    put_le32(blob, 4 * TRIE_UNITS);
    put_le32(blob + 4, root_unit);
    put_le32(blob + 4 + 4 * 'a', leaf_offset << 10 | LEAF | 'a');
    put_le32(blob + 4 + 4 * 200, LEAF_VALUE | leaf_value);
    memcpy(blob + 4 + 4 * TRIE_UNITS, "b", 2);
    return 4 + 4 * TRIE_UNITS + 2;
}

/* A ModelProto holding only a normalizer_spec (3) or denormalizer_spec (5) with that charsmap
 * (field 2) after a name (field 1); *charsmap_at: the map's byte offset in the message. */
static message spec_model(int spec, const unsigned char *blob, size_t blob_size, size_t *charsmap_at)
{
    message inner = {.size = 0}, model = {.size = 0};
    put_bytes(&inner, 1, "identity", 8);
    size_t in_spec = put_bytes(&inner, 2, blob, blob_size);
    size_t spec_at = put_bytes(&model, spec, inner.bytes, inner.size);
    *charsmap_at = spec_at + in_spec;
    return model;
}

static void expect_refused(const message *model, const char *expected)
{
    CHECK(tp_spm_model_check(model->bytes, model->size, "m.model") == -1);
    CHECK_MSG(strcmp(tp_last_error(), expected) == 0, "got '%s', expected '%s'", tp_last_error(), expected);
}

static void check_charsmaps(void)
{
    unsigned char blob[4 + 4 * TRIE_UNITS + 2];
    char expected[256];
    size_t size = charsmap_blob(blob, 0, 'a' ^ 200, 0), at;
    message model = spec_model(3, blob, size, &at);
    CHECK_MSG(tp_spm_model_check(model.bytes, model.size, "m.model") == 0, "%s", tp_last_error());
    model = spec_model(3, blob, 0, &at); /* an empty map is no map: the spec's named rule applies */
    CHECK_MSG(tp_spm_model_check(model.bytes, model.size, "m.model") == 0, "%s", tp_last_error());

    size = charsmap_blob(blob, 0, 'a' ^ 200, 2);
    model = spec_model(3, blob, size, &at);
    snprintf(expected, sizeof expected,
             "m.model: normalizer_spec.precompiled_charsmap (byte %zu): unit 200 points at byte 2 of the 2 bytes "
             "of replacements", at);
    expect_refused(&model, expected);

    size = charsmap_blob(blob, 0, 'a' ^ 300, 0);
    model = spec_model(5, blob, size, &at);
    snprintf(expected, sizeof expected,
             "m.model: denormalizer_spec.precompiled_charsmap (byte %zu): unit 97 points past the 256-unit trie", at);
    expect_refused(&model, expected);

    size = charsmap_blob(blob, TRIE_UNITS << 10, 'a' ^ 200, 0);
    model = spec_model(3, blob, size, &at);
    snprintf(expected, sizeof expected,
             "m.model: normalizer_spec.precompiled_charsmap (byte %zu): the root's children lie past the 256-unit "
             "trie", at);
    expect_refused(&model, expected);

    const uint32_t bad_sizes[] = {0, 6, 4 * TRIE_UNITS + 4};
    const char *bad_size_messages[] = {"the trie is empty", "%zu bytes cannot hold a 6-byte trie",
                                       "%zu bytes cannot hold a 1028-byte trie"};
    for (int i = 0; i < 3; i++) {
        size = charsmap_blob(blob, 0, 'a' ^ 200, 0);
        put_le32(blob, bad_sizes[i]);
        model = spec_model(3, blob, size, &at);
        char detail[64];
        snprintf(detail, sizeof detail, bad_size_messages[i], size);
        snprintf(expected, sizeof expected, "m.model: normalizer_spec.precompiled_charsmap (byte %zu): %s", at, detail);
        expect_refused(&model, expected);
    }

    size = charsmap_blob(blob, 0, 'a' ^ 200, 0);
    model = spec_model(3, blob, size, &at);
    model.size--;
    expect_refused(&model, "m.model: not a SentencePiece model: malformed protobuf field at byte 0");
}

/* fuzz_spm's finding: a normalizer_spec whose charsmap holds an empty trie made libsentencepiece
 * read outside its memory on the first encode; tp now refuses the model. */
static void check_fuzz_finding(void)
{
    const char *path = "tests/fuzz/corpus/spm/regression_empty_trie_59a9447b.model";
    CHECK(open_spm(path) == NULL);
    char expected[256];
    snprintf(expected, sizeof expected, "%s: normalizer_spec.precompiled_charsmap (byte 225): the trie is empty",
             path);
    CHECK_MSG(strcmp(tp_last_error(), expected) == 0, "%s", tp_last_error());
}

int main(void)
{
    tp_scratch_init("sentencepiece");
#ifndef TP_HAVE_SENTENCEPIECE
    CHECK(open_spm("m.model") == NULL);
    CHECK_MSG(strstr(tp_last_error(), "this build has no SentencePiece") != NULL, "%s", tp_last_error());
    fprintf(stderr, "test_sentencepiece: built without libsentencepiece: parity with spm_encode not checked\n");
    return tp_test_finish("test_sentencepiece");
#endif
    check_errors();
    check_charsmaps();
    check_fuzz_finding();
    if (system("spm_train --version >/dev/null 2>&1") != 0 || access(CORPUS, R_OK) != 0) {
        fprintf(stderr, "spm_train (apt-get install sentencepiece) or %s (scripts/fetch_data.sh) is missing\n",
                CORPUS);
        CHECK(!"spm_train and the corpus are present");
        return tp_test_finish("test_sentencepiece");
    }
    const char *train_path = write_training_text();
    if (train_path) {
        check_model(train_path, "unigram", "--model_type=unigram");
        check_model(train_path, "bpe", "--model_type=bpe --byte_fallback=true");
        /* Another precompiled character map (spm_train's default is nmt_nfkc), with case folding. */
        check_model(train_path, "unigram_nfkc_cf", "--model_type=unigram --normalization_rule_name=nfkc_cf");
    }
    return tp_test_finish("test_sentencepiece");
}
