/* The sentencepiece tokenizer against Debian's spm_encode: small unigram and BPE (with byte
 * fallback) models are trained here with spm_train on real text (1.5 MB of the pre-training
 * corpus and the even lines of the WordPiece sample), then every line of the 220 KB sample
 * (its odd lines held out, CJK and other non-ASCII included) must get the ids that
 * spm_encode --output_format=id gives.  Also: the messages for a missing or broken model, and
 * the clear refusal of a build without libsentencepiece. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/error.h"
#include "core/fileio.h"
#include "ids_fixture.h"
#include "support/check.h"
#include "support/scratch.h"
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
    }
    return tp_test_finish("test_sentencepiece");
}
