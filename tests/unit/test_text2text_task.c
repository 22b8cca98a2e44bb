/* core/finetune_task's text2text encoding (run_text2text.py's layout: source + eos; decoder input
 * start + label, lm labels label + eos, -1 at padding; cuts keeping the eos), its detokenization
 * (WordPiece, character vocabularies) and the refusal of a vocabulary without an end token.
 * The expected ids follow from the 10-token vocabulary below by hand. */
#include "core/error.h"
#include "core/finetune_task.h"
#include "core/tsv.h"
#include "support/check.h"
#include "support/scratch.h"

#include <stdlib.h>
#include <string.h>

/* [PAD] 0, [UNK] 1, [CLS] 2, [SEP] 3, [MASK] 4, a 5, b 6, c 7, ##b 8, ##c 9 */
static const char vocab_text[] = "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\na\nb\nc\n##b\n##c\n";

static tp_tokenizer *tokenizer(const char *kind, const char *name, const char *text)
{
    const char *path = tp_scratch_write(name, text, strlen(text));
    return tp_tokenizer_create(&(tp_tokenizer_options){.kind = kind, .vocab_path = path, .do_lower_case = 1});
}

static int same(const int32_t *got, const int32_t *expected, int64_t n)
{
    return memcmp(got, expected, (size_t)n * sizeof *got) == 0;
}

static void test_encoding(void)
{
    tp_tokenizer *tok = tokenizer("bert", "vocab.txt", vocab_text);
    const char *tsv = "text_a\tlabel\nabc\tc b a\n";
    tp_tsv_task *task = tp_tsv_read(tp_scratch_write("t2t.tsv", tsv, strlen(tsv)),
                                    &(tp_tsv_options){.kind = TP_TASK_TEXT2TEXT});
    CHECK(tok && task && task->count == 1 && strcmp(task->examples[0].target, "c b a") == 0);
    if (!tok || !task) return;
    tp_encoded_split split;
    CHECK(tp_encode_text2text(tok, task, 6, 5, &split) == 0);
    CHECK(same(split.src, (const int32_t[]){5, 8, 9, 3, 0, 0}, 6));
    CHECK(same(split.seg, (const int32_t[]){1, 1, 1, 1, 0, 0}, 6));
    CHECK(same(split.tgt_src, (const int32_t[]){2, 7, 6, 5, 0}, 5));
    CHECK(same(split.tags, (const int32_t[]){7, 6, 5, 3, -1}, 5));
    tp_encoded_split_free(&split);

    /* Cut: the source keeps its eos; the target keeps start + the first label token, then eos. */
    CHECK(tp_encode_text2text(tok, task, 3, 2, &split) == 0);
    CHECK(same(split.src, (const int32_t[]){5, 8, 3}, 3));
    CHECK(same(split.tgt_src, (const int32_t[]){2, 7}, 2));
    CHECK(same(split.tags, (const int32_t[]){7, 3}, 2));
    tp_encoded_split_free(&split);

    tp_text2text_ids ids;
    CHECK(tp_text2text_ids_of(tok, &ids) == 0 && ids.eos_id == 3 && ids.start_id == 2 && ids.pad_id == 0);
    char *text = tp_text2text_detokenize(tok, &ids, (const int32_t[]){5, 8, 9, 7, 6, 3, 0}, 7);
    CHECK_MSG(strcmp(text, "abc c b") == 0, "detokenized '%s'", text);
    free(text);
    tp_tsv_free(task);
    tp_tokenizer_free(tok);
}

static void test_characters(void)
{
    tp_tokenizer *tok = tokenizer("char", "chars.txt", "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nx\ny\n");
    tp_text2text_ids ids;
    CHECK(tok && tp_text2text_ids_of(tok, &ids) == 0);
    if (!tok) return;
    char *text = tp_text2text_detokenize(tok, &ids, (const int32_t[]){2, 5, 6, 5, 3}, 5);
    CHECK_MSG(strcmp(text, "xyx") == 0, "detokenized '%s'", text);
    free(text);
    tp_tokenizer_free(tok);
}

static void test_missing_end_token(void)
{
    tp_tokenizer *tok = tokenizer("bert", "no_sep.txt", "[PAD]\n[UNK]\n[CLS]\n[MASK]\na\n");
    tp_text2text_ids ids;
    CHECK(tok && tp_text2text_ids_of(tok, &ids) < 0);
    char expected[1024];
    snprintf(expected, sizeof expected, "%s: text2text needs an end token (eos or [SEP]) in the vocabulary",
             tp_scratch_path("no_sep.txt"));
    CHECK_MSG(strcmp(tp_last_error(), expected) == 0, "got '%s'", tp_last_error());
    if (tok) tp_tokenizer_free(tok);
}

int main(void)
{
    test_encoding();
    test_characters();
    test_missing_end_token();
    return tp_test_finish("test_text2text_task");
}
