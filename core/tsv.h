/* Fine-tuning data in TencentPretrain's TSV formats (docs/finetune_data.md).
 *
 * A UTF-8 file whose first line names the columns, tab-separated: `label`, `text_a` and
 * optionally `text_b`, in any order (plus any extra columns the caller allows, which are
 * skipped); then one example per line with exactly as many tab-separated fields.  CRLF line ends,
 * a UTF-8 byte-order mark and empty lines at the end of the file are accepted.  The label column
 * holds, by task:
 *   classification  a class id 0..N-1 (run_classifier.py), or a label name when
 *                   labels_are_names is set
 *   multi-label     comma-separated class ids, e.g. "0,3" (run_classifier_multi_label.py)
 *   regression      a finite number (run_regression.py)
 *   tagging         space-separated tags, one per space-separated token of text_a
 *                   (run_ner.py: SpaceTokenizer + label.split(" "))
 *   text2text       the target text (run_text2text.py)
 * The file is read with one read; every check is linear in its size.  Any problem fails the
 * whole read with one message naming the file and line, e.g.
 *   "train.tsv: line 17: expected 2 columns (label, text_a), found 3" */
#ifndef TP_TSV_H
#define TP_TSV_H

#include <stdint.h>

typedef enum tp_task_kind {
    TP_TASK_CLASSIFICATION,
    TP_TASK_MULTI_LABEL,
    TP_TASK_REGRESSION,
    TP_TASK_TAGGING,
    TP_TASK_TEXT2TEXT,
    TP_TASK_SPEECH2TEXT, /* not a TSV task: speech lists (core/preprocess_s2t.h) */
} tp_task_kind;

typedef struct tp_tsv_options {
    tp_task_kind kind;
    /* The model's label set.  Tagging, and classification with labels_are_names: the names,
     * label_names[i] being class/tag i; NULL collects them from the file in order of first
     * appearance.  Classification and multi-label with class ids: num_labels > 0 bounds the ids
     * (0..num_labels-1); 0 takes max id + 1 from the file.  Unused for regression. */
    const char *const *label_names;
    int64_t num_labels;
    int labels_are_names;           /* classification only: labels are names, not ids */
    const char *const *extra_columns; /* NULL-terminated column names allowed and ignored, or NULL */
    int allow_missing_label;        /* a header without `label` is accepted (files for tp-infer) */
} tp_tsv_options;

/* A piece of the file's text, not NUL-terminated. */
typedef struct tp_tsv_span {
    const char *text;
    int64_t length;
} tp_tsv_span;

typedef struct tp_tsv_example {
    const char *text_a; /* NUL-terminated, inside the task's buffer */
    const char *text_b; /* NULL when the file has no text_b column */
    const char *target; /* text2text: the label text (NUL-terminated, in the buffer); NULL otherwise */
    int64_t line;       /* 1-based line of the file (the header is line 1) */
    int64_t label;      /* classification: class id; -1 for other kinds or without labels */
    double value;       /* regression: the target; 0 otherwise */
    /* Multi-label: the class ids, ascending, in task->label_ids[first_label .. +label_count).
     * Tagging: tag ids in the same place, and the tokens of text_a in task->tokens at the same
     * indices (token_count tokens; label_count == token_count when the file has labels). */
    int64_t first_label, label_count;
    int64_t token_count;
} tp_tsv_example;

typedef struct tp_tsv_task {
    char *path;
    tp_task_kind kind;
    int has_labels; /* 0: the header had no label column (allow_missing_label) */
    int has_text_b;
    int64_t count;
    tp_tsv_example *examples;
    /* The label set: num_labels names (class ids are written "0", "1", ...).  Equal to the
     * caller's set when one was given. */
    int64_t num_labels;
    char **label_names;
    int32_t *label_ids; /* multi-label class ids and tagging tag ids of all examples */
    tp_tsv_span *tokens; /* tagging: the tokens of text_a of all examples */
    char *buffer;        /* the file's bytes; the examples' texts point into it */
} tp_tsv_task;

/* NULL + one message naming the file on any problem (see above). */
tp_tsv_task *tp_tsv_read(const char *path, const tp_tsv_options *options);
void tp_tsv_free(tp_tsv_task *task);
const char *tp_task_kind_name(tp_task_kind kind);

#endif
