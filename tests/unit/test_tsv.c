/* core/tsv: every task kind's happy path (CRLF, text_b, label sets, missing labels) and every
 * error with its exact message.  The files are written to a scratch directory at run time. */
#include "core/error.h"
#include "core/tsv.h"
#include "support/check.h"
#include "support/scratch.h"

#include <stdlib.h>
#include <string.h>

static tp_tsv_task *read_text(const char *name, const char *text, const tp_tsv_options *options)
{
    return tp_tsv_read(tp_scratch_write(name, text, strlen(text)), options);
}

/* The read fails with exactly "<scratch>/<name>: <expected>". */
static int fails_with(const char *name, const char *text, const tp_tsv_options *options, const char *expected)
{
    tp_tsv_task *task = read_text(name, text, options);
    if (task) {
        tp_tsv_free(task);
        fprintf(stderr, "  %s: read succeeded, expected: %s\n", name, expected);
        return 0;
    }
    char full[1024];
    snprintf(full, sizeof full, "%s: %s", tp_scratch_path(name), expected);
    if (strcmp(tp_last_error(), full) == 0) return 1;
    fprintf(stderr, "  got:      %s\n  expected: %s\n", tp_last_error(), full);
    return 0;
}

static const tp_tsv_options classification = {.kind = TP_TASK_CLASSIFICATION};

static void test_classification(void)
{
    tp_tsv_task *task = read_text("cls.tsv", "label\ttext_a\n1\thello world\n0\tbye\n3\tthird\n", &classification);
    CHECK(task && task->count == 3 && task->has_labels && !task->has_text_b);
    if (!task) return;
    CHECK(strcmp(task->examples[0].text_a, "hello world") == 0 && task->examples[0].label == 1);
    CHECK(task->examples[0].text_b == NULL && task->examples[0].line == 2 && task->examples[2].line == 4);
    CHECK(task->examples[1].label == 0 && task->examples[2].label == 3);
    CHECK(task->num_labels == 4 && strcmp(task->label_names[3], "3") == 0); /* max id + 1 */
    tp_tsv_free(task);

    /* Columns in any order, text_b, CRLF, a byte-order mark, empty lines at the end. */
    task = read_text("pair.tsv", "\xEF\xBB\xBFtext_a\ttext_b\tlabel\r\nfirst\tsecond\t2\r\nx\ty\t0\r\n\r\n\n",
                     &(tp_tsv_options){.kind = TP_TASK_CLASSIFICATION, .num_labels = 5});
    CHECK(task && task->count == 2 && task->has_text_b && task->num_labels == 5);
    if (task) {
        CHECK(strcmp(task->examples[0].text_a, "first") == 0 && strcmp(task->examples[0].text_b, "second") == 0);
        CHECK(task->examples[0].label == 2 && strcmp(task->examples[1].text_b, "y") == 0);
    }
    tp_tsv_free(task);

    /* Label names: collected in order of first appearance, or the model's set. */
    task = read_text("names.tsv", "label\ttext_a\npos\ta\nneg\tb\npos\tc\n",
                     &(tp_tsv_options){.kind = TP_TASK_CLASSIFICATION, .labels_are_names = 1});
    CHECK(task && task->num_labels == 2 && strcmp(task->label_names[1], "neg") == 0);
    CHECK(task && task->examples[0].label == 0 && task->examples[1].label == 1 && task->examples[2].label == 0);
    tp_tsv_free(task);
    const char *const sentiment[] = {"neg", "neutral", "pos"};
    tp_tsv_options named = {.kind = TP_TASK_CLASSIFICATION, .labels_are_names = 1, .label_names = sentiment,
                            .num_labels = 3};
    task = read_text("named.tsv", "label\ttext_a\npos\ta\nneg\tb\n", &named);
    CHECK(task && task->num_labels == 3 && task->examples[0].label == 2 && task->examples[1].label == 0);
    tp_tsv_free(task);
    CHECK(fails_with("named_bad.tsv", "label\ttext_a\npos\ta\nmixed\tb\n", &named,
                     "line 3: label 'mixed' is not in the label set of the model (neg, neutral, pos)"));

    /* Files for tp-infer: no label column; extra columns the caller allows are skipped. */
    const char *const extra[] = {"logits", NULL};
    task = read_text("infer.tsv", "text_a\tlogits\nsome text\t0.1 0.9\n",
                     &(tp_tsv_options){.kind = TP_TASK_CLASSIFICATION, .allow_missing_label = 1,
                                       .extra_columns = extra});
    CHECK(task && task->count == 1 && !task->has_labels && task->examples[0].label == -1);
    tp_tsv_free(task);
}

static void test_other_kinds(void)
{
    tp_tsv_task *task = read_text("multi.tsv", "label\ttext_a\n3,0\ta\n1\tb\n",
                                  &(tp_tsv_options){.kind = TP_TASK_MULTI_LABEL});
    CHECK(task && task->num_labels == 4 && task->examples[0].label_count == 2 && task->examples[1].label_count == 1);
    if (task) {
        const int32_t *ids = task->label_ids + task->examples[0].first_label;
        CHECK(ids[0] == 0 && ids[1] == 3 && task->label_ids[task->examples[1].first_label] == 1);
    }
    tp_tsv_free(task);

    task = read_text("reg.tsv", "text_a\ttext_b\tlabel\na\tb\t3.25\nc\td\t-1e-3\n",
                     &(tp_tsv_options){.kind = TP_TASK_REGRESSION});
    CHECK(task && task->count == 2 && task->examples[0].value == 3.25 && task->examples[1].value == -1e-3);
    tp_tsv_free(task);

    task = read_text("ner.tsv", "text_a\tlabel\n张 三 在 北 京\tB-PER I-PER O B-LOC I-LOC\nhi\tO\n",
                     &(tp_tsv_options){.kind = TP_TASK_TAGGING});
    CHECK(task && task->num_labels == 5 && strcmp(task->label_names[2], "O") == 0);
    if (task) {
        const tp_tsv_example *first = &task->examples[0];
        CHECK(first->token_count == 5 && first->label_count == 5 && task->examples[1].token_count == 1);
        CHECK(strcmp(first->text_a, "张 三 在 北 京") == 0);
        const tp_tsv_span *token = &task->tokens[first->first_label + 3];
        CHECK(token->length == 3 && memcmp(token->text, "北", 3) == 0);
        const int32_t *tags = task->label_ids + first->first_label;
        CHECK(tags[0] == 0 && tags[1] == 1 && tags[2] == 2 && tags[3] == 3 && tags[4] == 4);
        CHECK(task->label_ids[task->examples[1].first_label] == 2);
    }
    tp_tsv_free(task);
}

static void test_errors(void)
{
    CHECK(fails_with("columns.tsv", "label\ttext_a\n1\ta\n1\ta\tb\n", &classification,
                     "line 3: expected 2 columns (label, text_a), found 3"));
    CHECK(fails_with("range.tsv", "label\ttext_a\n1\ta\n1\ta\n1\ta\n7\ta\n",
                     &(tp_tsv_options){.kind = TP_TASK_CLASSIFICATION, .num_labels = 4},
                     "line 5: label '7' is not in the label set of the model (0..3)"));
    CHECK(fails_with("huge_id.tsv", "label\ttext_a\n000412174400\ta\n", &classification,
                     "line 2: label '000412174400': class id above 65535 without the model's number of labels"));
    CHECK(fails_with("not_id.tsv", "label\ttext_a\n-1\ta\n", &classification,
                     "line 2: label '-1' is not a class id (a whole number from 0)"));
    CHECK(fails_with("reg_bad.tsv", "label\ttext_a\nabc\ta\n", &(tp_tsv_options){.kind = TP_TASK_REGRESSION},
                     "line 2: regression label 'abc' is not a number"));
    CHECK(fails_with("reg_inf.tsv", "label\ttext_a\ninf\ta\n", &(tp_tsv_options){.kind = TP_TASK_REGRESSION},
                     "line 2: regression label 'inf' is not a finite number"));
    CHECK(fails_with("empty_a.tsv", "label\ttext_a\n1\ta\n1\ta\n0\t\n", &classification, "line 4: empty text_a"));
    CHECK(fails_with("empty_b.tsv", "label\ttext_a\ttext_b\n1\ta\t\n", &classification, "line 2: empty text_b"));
    CHECK(fails_with("empty_label.tsv", "label\ttext_a\n\ta\n", &classification, "line 2: empty label"));
    CHECK(fails_with("utf8.tsv", "label\ttext_a\n1\tab\xC3(\n", &classification, "line 2: invalid UTF-8 at byte 5"));
    CHECK(fails_with("overlong.tsv", "label\ttext_a\n1\t\xC0\x80\n", &classification,
                     "line 2: invalid UTF-8 at byte 3"));
    CHECK(fails_with("surrogate.tsv", "label\ttext_a\n1\t\xED\xA0\x80\n", &classification,
                     "line 2: invalid UTF-8 at byte 3"));
    static const char with_nul[] = "label\ttext_a\n1\ta\0b\n";
    tp_tsv_task *task = tp_tsv_read(tp_scratch_write("nul.tsv", with_nul, sizeof with_nul - 1), &classification);
    CHECK(!task && strstr(tp_last_error(), "nul.tsv: line 2: NUL byte at byte 4"));
    CHECK(fails_with("unknown.tsv", "label\ttxt_a\n1\ta\n", &classification,
                     "header: unknown column 'txt_a' (expected label, text_a, text_b)"));
    const char *const extra[] = {"logits", NULL};
    CHECK(fails_with("unknown2.tsv", "label\ttext_a\tscore\n", &(tp_tsv_options){.extra_columns = extra},
                     "header: unknown column 'score' (expected label, text_a, text_b, logits)"));
    CHECK(fails_with("twice.tsv", "label\ttext_a\tlabel\n", &classification, "header: column 'label' appears twice"));
    CHECK(fails_with("no_text.tsv", "label\ttext_b\n1\ta\n", &classification, "header: no text_a column"));
    CHECK(fails_with("no_label.tsv", "text_a\na\n", &classification, "header: no label column"));
    CHECK(fails_with("empty_name.tsv", "label\t\ttext_a\n", &classification, "header: empty column name (column 2)"));
    CHECK(fails_with("empty.tsv", "", &classification,
                     "empty file (expected a header line such as 'label<TAB>text_a')"));
    CHECK(fails_with("header_only.tsv", "label\ttext_a\n", &classification, "no examples after the header"));
    CHECK(fails_with("header_only_crlf.tsv", "label\ttext_a\r\n\r\n", &classification,
                     "no examples after the header"));
    CHECK(fails_with("blank.tsv", "label\ttext_a\n1\ta\n\n1\tb\n", &classification, "line 3: empty line"));
    CHECK(fails_with("multi_dup.tsv", "label\ttext_a\n1,1\ta\n", &(tp_tsv_options){.kind = TP_TASK_MULTI_LABEL},
                     "line 2: label '1,1' lists class 1 twice"));
    CHECK(fails_with("multi_bad.tsv", "label\ttext_a\n1,,2\ta\n", &(tp_tsv_options){.kind = TP_TASK_MULTI_LABEL},
                     "line 2: label '1,,2': '' is not a class id (a whole number from 0)"));
    CHECK(fails_with("multi_range.tsv", "label\ttext_a\n0,5\ta\n",
                     &(tp_tsv_options){.kind = TP_TASK_MULTI_LABEL, .num_labels = 3},
                     "line 2: label '0,5' is not in the label set of the model (0..2)"));

    const tp_tsv_options tagging = {.kind = TP_TASK_TAGGING};
    CHECK(fails_with("tags_count.tsv", "text_a\tlabel\na b\tO O\na\tO\na\tO\na\tO\na\tO\na\tO\na b c d e f\tO O O O O\n",
                     &tagging, "line 8: 5 tags for 6 tokens"));
    CHECK(fails_with("tags_space.tsv", "text_a\tlabel\na  b\tO O\n", &tagging,
                     "line 2: text_a has an empty token 2 (a space at an end, or two in a row)"));
    CHECK(fails_with("tags_empty.tsv", "text_a\tlabel\na b\tO \n", &tagging,
                     "line 2: label has an empty tag 2 (a space at an end, or two in a row)"));
    const char *const tags[] = {"O", "B-PER", "I-PER"};
    CHECK(fails_with("tags_unknown.tsv", "text_a\tlabel\na b\tB-PER I-PER\nc\tB-XYZ\n",
                     &(tp_tsv_options){.kind = TP_TASK_TAGGING, .label_names = tags, .num_labels = 3},
                     "line 3: tag 'B-XYZ' is not in the tag set of the model (O, B-PER, I-PER)"));

    CHECK(tp_tsv_read(tp_scratch_path("missing.tsv"), &classification) == NULL);
    char expected[512];
    snprintf(expected, sizeof expected, "%s: No such file or directory", tp_scratch_path("missing.tsv"));
    CHECK(strcmp(tp_last_error(), expected) == 0);
}

/* Many examples and many distinct tags: the reader stays linear (this would time out if not). */
static void test_large(void)
{
    int64_t lines = 200000;
    size_t capacity = (size_t)lines * 32 + 64, used = 0;
    char *text = malloc(capacity);
    used += (size_t)snprintf(text, capacity, "text_a\tlabel\n");
    for (int64_t i = 0; i < lines; i++)
        used += (size_t)snprintf(text + used, capacity - used, "w%lld x\tT%lld O\n", (long long)i, (long long)(i % 5000));
    tp_tsv_task *task = tp_tsv_read(tp_scratch_write("large.tsv", text, used), &(tp_tsv_options){.kind = TP_TASK_TAGGING});
    CHECK(task && task->count == lines && task->num_labels == 5001);
    if (task) CHECK(strcmp(task->label_names[task->label_ids[task->examples[lines - 1].first_label]], "T4999") == 0);
    tp_tsv_free(task);
    free(text);
}

int main(void)
{
    tp_scratch_init("tsv");
    test_classification();
    test_other_kinds();
    test_errors();
    test_large();
    return tp_test_finish("test_tsv");
}
