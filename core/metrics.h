/* Evaluation metrics for fine-tuning (definitions in docs/finetune_data.md), each matching a
 * reference library: scikit-learn for classification and multi-label scores, scipy.stats for
 * correlations, seqeval 1.2.2 (its default, conlleval-style chunking) for entity scores.
 * A ratio whose denominator is 0 is 0 (scikit-learn's zero_division=0), except the
 * correlations, which are NaN for constant input (as scipy). */
#ifndef TP_METRICS_H
#define TP_METRICS_H

#include <stdint.h>
#include <stdio.h>

/* ---- single-label classification: a confusion matrix ------------------------------------- */

typedef struct tp_confusion {
    int64_t classes;
    int64_t total;
    int64_t *counts; /* counts[gold * classes + predicted] */
} tp_confusion;

typedef struct tp_class_scores {
    double precision, recall, f1;
    int64_t support;   /* gold examples of the class */
    int64_t predicted; /* examples predicted as the class */
} tp_class_scores;

tp_confusion *tp_confusion_new(int64_t classes);
void tp_confusion_free(tp_confusion *confusion);
/* -1 (and a message) when a class is outside 0..classes-1. */
int tp_confusion_add(tp_confusion *confusion, int64_t gold, int64_t predicted);
int64_t tp_confusion_count(const tp_confusion *confusion, int64_t gold, int64_t predicted);
double tp_confusion_accuracy(const tp_confusion *confusion); /* 0 when empty */
tp_class_scores tp_confusion_class(const tp_confusion *confusion, int64_t cls);
/* The mean F1 over the classes that occur in gold or predictions -- scikit-learn's
 * f1_score(average="macro", zero_division=0) without labels=: a class neither in gold nor
 * predicted is left out, a class in only one of them counts with F1 0. */
double tp_confusion_macro_f1(const tp_confusion *confusion);
/* A table: the matrix (rows gold, columns predicted) then precision/recall/F1/support per class,
 * accuracy and macro-F1.  label_names may be NULL (ids are printed). */
void tp_confusion_print(FILE *out, const tp_confusion *confusion, const char *const *label_names);

/* ---- regression ------------------------------------------------------------------------------ */

/* scipy.stats.pearsonr(x, y).statistic; NaN when n < 2 or either input is constant. */
double tp_pearson(const double *x, const double *y, int64_t n);
/* scipy.stats.spearmanr(x, y).statistic: Pearson of the ranks, ties given their average rank. */
double tp_spearman(const double *x, const double *y, int64_t n);

/* ---- multi-label classification ------------------------------------------------------------ */

typedef struct tp_multilabel {
    int64_t classes;
    int64_t examples, exact; /* exact: examples whose predicted set equals the gold set */
    int64_t *true_positives, *false_positives, *false_negatives; /* per class */
} tp_multilabel;

tp_multilabel *tp_multilabel_new(int64_t classes);
void tp_multilabel_free(tp_multilabel *scores);
/* One example: gold[c], predicted[c] are 0/1 for each class c (nonzero = 1). */
void tp_multilabel_add(tp_multilabel *scores, const uint8_t *gold, const uint8_t *predicted);
/* Exact-match ratio (TencentPretrain's run_classifier_multi_label accuracy; sklearn's
 * accuracy_score on indicator matrices). */
double tp_multilabel_subset_accuracy(const tp_multilabel *scores);
/* sklearn f1_score(average="micro", zero_division=0) on indicator matrices: every label bit. */
double tp_multilabel_micro_f1(const tp_multilabel *scores);
/* sklearn f1_score(average="macro", zero_division=0) on indicator matrices: the mean over ALL
 * classes, a class with no gold and no predicted bit counting as 0. */
double tp_multilabel_macro_f1(const tp_multilabel *scores);

/* ---- tagging: entity-level scores (seqeval) ------------------------------------------------- */

/* Zero-initialise; the counts run on over the sentences added (seqeval reads them as one list). */
typedef struct tp_entity_counts {
    int64_t gold, predicted, correct; /* entities; correct = same type, start and end */
    int64_t position;                 /* tags read so far, counting an "O" after each sentence */
    int64_t gold_begin, predicted_begin; /* where the current chunk of each began */
} tp_entity_counts;

typedef struct tp_entity_scores {
    double precision, recall, f1;
} tp_entity_scores;

/* Adds one sentence of `length` tags (strings such as "B-PER", "I-PER", "O"; also IOBES).
 * Entities are the chunks of seqeval.metrics.sequence_labeling.get_entities (default mode,
 * conlleval rules): e.g. an I-X after O or after another type starts an entity, and an entity
 * never crosses the end of a sentence. */
void tp_entity_add(tp_entity_counts *counts, const char *const *gold_tags, const char *const *predicted_tags,
                   int64_t length);
/* seqeval precision_score / recall_score / f1_score (average="micro"), 0 for a zero denominator. */
tp_entity_scores tp_entity_f1(const tp_entity_counts *counts);

/* Word error rate over a corpus, as jiwer.wer(references, hypotheses) with its default transform:
 * whitespace (space, tab, newline, CR, FF, VT) stripped at both ends, runs of two or more whitespace
 * characters collapsed to a space, the words split at spaces (a lone tab does not separate words), and
 *   WER = sum of word-level Levenshtein distances (substitutions + deletions + insertions)
 *         / sum of reference words
 * (0 when no reference has a word: jiwer refuses that case).  Zero-initialise, then add pairs. */
typedef struct tp_wer_counts {
    int64_t errors, reference_words;
} tp_wer_counts;

void tp_wer_add(tp_wer_counts *counts, const char *reference, const char *hypothesis);
double tp_wer(const tp_wer_counts *counts);

#endif
