/* Evaluation metrics (see metrics.h); the formulas follow the reference libraries operation by
 * operation where that changes the last bits. */
#include "core/metrics.h"

#include "core/error.h"

#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* a / b, 0 when b is 0 (zero_division=0). */
static double ratio(double a, double b) { return b == 0 ? 0.0 : a / b; }

/* F1 from precision and recall as scikit-learn and seqeval compute it (beta = 1). */
static double f1_of(double precision, double recall)
{
    double denominator = precision + recall;
    return denominator == 0 ? 0.0 : 2 * precision * recall / denominator;
}

/* ---- confusion matrix ---------------------------------------------------------------------- */

tp_confusion *tp_confusion_new(int64_t classes)
{
    tp_confusion *confusion = tp_xcalloc(1, sizeof *confusion);
    confusion->classes = classes;
    confusion->counts = tp_xcalloc((size_t)(classes * classes), sizeof *confusion->counts);
    return confusion;
}

void tp_confusion_free(tp_confusion *confusion)
{
    if (!confusion) return;
    free(confusion->counts);
    free(confusion);
}

int tp_confusion_add(tp_confusion *confusion, int64_t gold, int64_t predicted)
{
    int64_t classes = confusion->classes;
    if (gold < 0 || gold >= classes || predicted < 0 || predicted >= classes)
        return tp_fail("confusion matrix: class pair (%" PRId64 ", %" PRId64 ") outside 0..%" PRId64, gold,
                       predicted, classes - 1);
    confusion->counts[gold * classes + predicted]++;
    confusion->total++;
    return 0;
}

int64_t tp_confusion_count(const tp_confusion *confusion, int64_t gold, int64_t predicted)
{
    return confusion->counts[gold * confusion->classes + predicted];
}

double tp_confusion_accuracy(const tp_confusion *confusion)
{
    int64_t correct = 0;
    for (int64_t c = 0; c < confusion->classes; c++) correct += tp_confusion_count(confusion, c, c);
    return ratio((double)correct, (double)confusion->total);
}

tp_class_scores tp_confusion_class(const tp_confusion *confusion, int64_t cls)
{
    tp_class_scores scores = {0};
    for (int64_t other = 0; other < confusion->classes; other++) {
        scores.support += tp_confusion_count(confusion, cls, other);
        scores.predicted += tp_confusion_count(confusion, other, cls);
    }
    double correct = (double)tp_confusion_count(confusion, cls, cls);
    scores.precision = ratio(correct, (double)scores.predicted);
    scores.recall = ratio(correct, (double)scores.support);
    scores.f1 = f1_of(scores.precision, scores.recall);
    return scores;
}

double tp_confusion_macro_f1(const tp_confusion *confusion)
{
    double sum = 0;
    int64_t present = 0;
    for (int64_t c = 0; c < confusion->classes; c++) {
        tp_class_scores scores = tp_confusion_class(confusion, c);
        if (scores.support + scores.predicted == 0) continue;
        sum += scores.f1;
        present++;
    }
    return ratio(sum, (double)present);
}

static void print_class_name(FILE *out, const char *const *label_names, int64_t cls, int width)
{
    if (label_names) fprintf(out, "%*.*s", width, width, label_names[cls]);
    else fprintf(out, "%*" PRId64, width, cls);
}

void tp_confusion_print(FILE *out, const tp_confusion *confusion, const char *const *label_names)
{
    enum { WIDTH = 10 };
    fprintf(out, "confusion matrix (rows: gold, columns: predicted)\n%*s", WIDTH, "");
    for (int64_t p = 0; p < confusion->classes; p++) print_class_name(out, label_names, p, WIDTH);
    fputc('\n', out);
    for (int64_t g = 0; g < confusion->classes; g++) {
        print_class_name(out, label_names, g, WIDTH);
        for (int64_t p = 0; p < confusion->classes; p++)
            fprintf(out, "%*" PRId64, WIDTH, tp_confusion_count(confusion, g, p));
        fputc('\n', out);
    }
    fprintf(out, "%*s%*s%*s%*s%*s\n", WIDTH, "class", WIDTH, "precision", WIDTH, "recall", WIDTH, "f1", WIDTH,
            "support");
    for (int64_t c = 0; c < confusion->classes; c++) {
        tp_class_scores scores = tp_confusion_class(confusion, c);
        print_class_name(out, label_names, c, WIDTH);
        fprintf(out, "%*.4f%*.4f%*.4f%*" PRId64 "\n", WIDTH, scores.precision, WIDTH, scores.recall, WIDTH, scores.f1,
                WIDTH, scores.support);
    }
    fprintf(out, "accuracy %.4f (%" PRId64 " examples), macro-F1 %.4f\n", tp_confusion_accuracy(confusion),
            confusion->total, tp_confusion_macro_f1(confusion));
}

/* ---- correlations -------------------------------------------------------------------------- */

static double mean_of(const double *x, int64_t n)
{
    double sum = 0;
    for (int64_t i = 0; i < n; i++) sum += x[i];
    return sum / (double)n;
}

static int is_constant(const double *x, int64_t n)
{
    for (int64_t i = 1; i < n; i++)
        if (x[i] != x[0]) return 0;
    return 1;
}

double tp_pearson(const double *x, const double *y, int64_t n)
{
    if (n < 2 || is_constant(x, n) || is_constant(y, n)) return NAN;
    double x_mean = mean_of(x, n), y_mean = mean_of(y, n);
    double xx = 0, yy = 0, xy = 0;
    for (int64_t i = 0; i < n; i++) {
        double dx = x[i] - x_mean, dy = y[i] - y_mean;
        xx += dx * dx;
        yy += dy * dy;
        xy += dx * dy;
    }
    double r = xy / (sqrt(xx) * sqrt(yy));
    return r > 1 ? 1 : r < -1 ? -1 : r; /* rounding can step just past +-1 */
}

typedef struct ranked {
    double value;
    int64_t index;
} ranked;

static int compare_ranked(const void *a, const void *b)
{
    double x = ((const ranked *)a)->value, y = ((const ranked *)b)->value;
    return (x > y) - (x < y);
}

/* 1-based ranks; a run of equal values all get the run's average rank. */
static void average_ranks(const double *x, int64_t n, double *ranks)
{
    ranked *order = tp_xmalloc((size_t)n * sizeof *order);
    for (int64_t i = 0; i < n; i++) order[i] = (ranked){x[i], i};
    qsort(order, (size_t)n, sizeof *order, compare_ranked);
    for (int64_t start = 0, end; start < n; start = end) {
        for (end = start + 1; end < n && order[end].value == order[start].value;) end++;
        double rank = (double)(start + end + 1) / 2; /* mean of start+1 .. end */
        for (int64_t k = start; k < end; k++) ranks[order[k].index] = rank;
    }
    free(order);
}

static int has_nan(const double *x, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        if (isnan(x[i])) return 1;
    return 0;
}

double tp_spearman(const double *x, const double *y, int64_t n)
{
    if (n < 2 || has_nan(x, n) || has_nan(y, n)) return NAN;
    double *ranks = tp_xmalloc((size_t)(2 * n) * sizeof *ranks);
    average_ranks(x, n, ranks);
    average_ranks(y, n, ranks + n);
    double rho = tp_pearson(ranks, ranks + n, n);
    free(ranks);
    return rho;
}

/* ---- multi-label ----------------------------------------------------------------------------- */

tp_multilabel *tp_multilabel_new(int64_t classes)
{
    tp_multilabel *scores = tp_xcalloc(1, sizeof *scores);
    scores->classes = classes;
    scores->true_positives = tp_xcalloc((size_t)classes, sizeof(int64_t));
    scores->false_positives = tp_xcalloc((size_t)classes, sizeof(int64_t));
    scores->false_negatives = tp_xcalloc((size_t)classes, sizeof(int64_t));
    return scores;
}

void tp_multilabel_free(tp_multilabel *scores)
{
    if (!scores) return;
    free(scores->true_positives);
    free(scores->false_positives);
    free(scores->false_negatives);
    free(scores);
}

void tp_multilabel_add(tp_multilabel *scores, const uint8_t *gold, const uint8_t *predicted)
{
    int exact = 1;
    for (int64_t c = 0; c < scores->classes; c++) {
        int g = gold[c] != 0, p = predicted[c] != 0;
        scores->true_positives[c] += g && p;
        scores->false_positives[c] += !g && p;
        scores->false_negatives[c] += g && !p;
        exact &= g == p;
    }
    scores->examples++;
    scores->exact += exact;
}

double tp_multilabel_subset_accuracy(const tp_multilabel *scores)
{
    return ratio((double)scores->exact, (double)scores->examples);
}

static double class_f1(int64_t tp, int64_t fp, int64_t fn)
{
    return f1_of(ratio((double)tp, (double)(tp + fp)), ratio((double)tp, (double)(tp + fn)));
}

double tp_multilabel_micro_f1(const tp_multilabel *scores)
{
    int64_t tp = 0, fp = 0, fn = 0;
    for (int64_t c = 0; c < scores->classes; c++) {
        tp += scores->true_positives[c];
        fp += scores->false_positives[c];
        fn += scores->false_negatives[c];
    }
    return class_f1(tp, fp, fn);
}

double tp_multilabel_macro_f1(const tp_multilabel *scores)
{
    double sum = 0;
    for (int64_t c = 0; c < scores->classes; c++)
        sum += class_f1(scores->true_positives[c], scores->false_positives[c], scores->false_negatives[c]);
    return ratio(sum, (double)scores->classes);
}

/* ---- entities: seqeval's get_entities ---------------------------------------------------------
 * seqeval reads a tag as its first character (the "tag": B, I, E, S, O, ...) and a type: the text
 * after that character and after the first '-' in it if any ("B-PER" -> "PER"), "_" when that
 * is empty.  Before the first tag the previous tag is 'O' with type "" (not "_"); a list of
 * sentences is read as one sequence with an "O" after each sentence. */

typedef struct tag_view {
    unsigned char tag; /* first byte; a non-ASCII first character never equals the letters used */
    const char *type;
    size_t type_length;
} tag_view;

static tag_view view_tag(const char *chunk)
{
    tag_view view = {(unsigned char)chunk[0], "", 0};
    const char *rest = chunk[0] ? chunk + 1 : chunk;
    while (((unsigned char)*rest & 0xC0) == 0x80) rest++; /* the rest of a multi-byte first char */
    const char *dash = strchr(rest, '-');
    view.type = dash ? dash + 1 : rest;
    view.type_length = strlen(view.type);
    if (view.type_length == 0) view = (tag_view){view.tag, "_", 1};
    return view;
}

static int same_type(tag_view a, tag_view b)
{
    return a.type_length == b.type_length && memcmp(a.type, b.type, a.type_length) == 0;
}

/* seqeval's end_of_chunk(prev_tag, tag, prev_type, type_). */
static int ends_chunk(tag_view previous, tag_view current)
{
    unsigned char p = previous.tag, t = current.tag;
    if (p == 'E' || p == 'S') return 1;
    if ((p == 'B' || p == 'I') && (t == 'B' || t == 'S' || t == 'O')) return 1;
    return p != 'O' && p != '.' && !same_type(previous, current);
}

/* seqeval's start_of_chunk(prev_tag, tag, prev_type, type_). */
static int starts_chunk(tag_view previous, tag_view current)
{
    unsigned char p = previous.tag, t = current.tag;
    if (t == 'B' || t == 'S') return 1;
    if ((p == 'E' || p == 'S' || p == 'O') && (t == 'E' || t == 'I')) return 1;
    return t != 'O' && t != '.' && !same_type(previous, current);
}

typedef struct chunk {
    int ended;
    tag_view type; /* the previous tag's type */
    int64_t begin;
} chunk;

/* Steps one sequence to `current` at `position`: the chunk that ended just before it, if any. */
static chunk step(tag_view previous, tag_view current, int64_t *begin, int64_t position)
{
    chunk ended = {ends_chunk(previous, current), previous, *begin};
    if (starts_chunk(previous, current)) *begin = position;
    return ended;
}

static tag_view sequence_start(const tp_entity_counts *counts)
{
    /* The first sentence starts after seqeval's initial state, later ones after its "O". */
    return counts->position == 0 ? (tag_view){'O', "", 0} : (tag_view){'O', "_", 1};
}

void tp_entity_add(tp_entity_counts *counts, const char *const *gold_tags, const char *const *predicted_tags,
                   int64_t length)
{
    tag_view gold_previous = sequence_start(counts), predicted_previous = gold_previous;
    const tag_view outside = {'O', "_", 1};
    for (int64_t i = 0; i <= length; i++, counts->position++) {
        tag_view gold = i < length ? view_tag(gold_tags[i]) : outside;
        tag_view predicted = i < length ? view_tag(predicted_tags[i]) : outside;
        chunk g = step(gold_previous, gold, &counts->gold_begin, counts->position);
        chunk p = step(predicted_previous, predicted, &counts->predicted_begin, counts->position);
        counts->gold += g.ended;
        counts->predicted += p.ended;
        /* Both chunks end at position - 1: the same entity when begin and type agree. */
        counts->correct += g.ended && p.ended && g.begin == p.begin && same_type(g.type, p.type);
        gold_previous = gold;
        predicted_previous = predicted;
    }
}

tp_entity_scores tp_entity_f1(const tp_entity_counts *counts)
{
    tp_entity_scores scores;
    scores.precision = ratio((double)counts->correct, (double)counts->predicted);
    scores.recall = ratio((double)counts->correct, (double)counts->gold);
    scores.f1 = f1_of(scores.precision, scores.recall);
    return scores;
}

/* ---- word error rate ------------------------------------------------------------- */

typedef struct word_span {
    const char *start;
    size_t length;
} word_span;

static int is_blank(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

/* The separator at p: a run of two or more whitespace characters, or one space (jiwer collapses
 * runs of 2+ whitespace to a space, then splits on spaces: a lone tab stays inside its word). */
static size_t separator_length(const char *p)
{
    size_t n = 0;
    while (is_blank(p[n])) n++;
    return n >= 2 || (n == 1 && *p == ' ') ? n : 0;
}

/* The words of text (spans into it, whitespace stripped at both ends) in a new array; *count their number. */
static word_span *split_words(const char *text, int64_t *count)
{
    const char *p = text, *end = text + strlen(text);
    while (p < end && is_blank(*p)) p++;
    while (end > p && is_blank(end[-1])) end--;
    word_span *words = tp_xmalloc(((size_t)(end - p) / 2 + 1) * sizeof *words);
    *count = 0;
    while (p < end) {
        const char *start = p;
        while (p < end && !separator_length(p)) p++;
        words[(*count)++] = (word_span){start, (size_t)(p - start)};
        p += separator_length(p);
    }
    return words;
}

static int64_t min3(int64_t a, int64_t b, int64_t c)
{
    int64_t m = a < b ? a : b;
    return m < c ? m : c;
}

static int same_word(word_span a, word_span b) { return a.length == b.length && !memcmp(a.start, b.start, a.length); }

/* Levenshtein distance over words, two rows of the dynamic programme. */
static int64_t word_distance(const word_span *ref, int64_t ref_count, const word_span *hyp, int64_t hyp_count)
{
    int64_t *previous = tp_xmalloc((size_t)(hyp_count + 1) * sizeof *previous);
    int64_t *current = tp_xmalloc((size_t)(hyp_count + 1) * sizeof *current);
    for (int64_t j = 0; j <= hyp_count; j++) previous[j] = j;
    for (int64_t i = 1; i <= ref_count; i++) {
        current[0] = i;
        for (int64_t j = 1; j <= hyp_count; j++) {
            current[j] = min3(previous[j - 1] + !same_word(ref[i - 1], hyp[j - 1]), previous[j] + 1, current[j - 1] + 1);
        }
        int64_t *swap = previous;
        previous = current;
        current = swap;
    }
    int64_t distance = previous[hyp_count];
    free(previous);
    free(current);
    return distance;
}

void tp_wer_add(tp_wer_counts *counts, const char *reference, const char *hypothesis)
{
    int64_t ref_count = 0, hyp_count = 0;
    word_span *ref = split_words(reference, &ref_count), *hyp = split_words(hypothesis, &hyp_count);
    counts->errors += word_distance(ref, ref_count, hyp, hyp_count);
    counts->reference_words += ref_count;
    free(ref);
    free(hyp);
}

double tp_wer(const tp_wer_counts *counts)
{
    return counts->reference_words ? (double)counts->errors / (double)counts->reference_words : 0.0;
}
