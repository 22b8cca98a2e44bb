/* Corpus BLEU as sacreBLEU 2.4 computes it by default (sacrebleu.corpus_bleu(hypotheses,
 * [references]): one reference per hypothesis, tokenize "13a", BLEU-4, smooth_method "exp",
 * lowercase false), for the text2text task's dev scores (docs/finetune.md).
 *
 * 13a tokenization (sacrebleu/tokenizers/tokenizer_13a.py): trailing whitespace removed, "<skipped>"
 * and "-\n" deleted, newlines become spaces, &quot; &amp; &lt; &gt; unescaped; then a space on each
 * side of every character in { | } ~ [ \ ] ^ _ ` space ! " # $ % & ( ) * + : ; < = > ? @ /, of a
 * period or comma after a non-digit and before a non-digit, and of a dash after a digit (the four
 * regular expressions applied in turn, each left to right without overlaps, as Python's re.sub);
 * finally whitespace runs (ASCII and Unicode's White_Space, as str.split) collapse to one space.
 *
 * The score: clipped n-gram matches and n-gram totals (n = 1..4) and the lengths summed over the
 * corpus; precision p_n = 100 * matches / total, where a zero-match order instead gets
 * 100 / (2^k * total) for the k-th such order ("exp"); an order with no n-grams ends the list
 * (its precision stays 0, so the score is 0); brevity penalty exp(1 - ref/sys) when the
 * hypotheses are shorter (0 when empty); BLEU = bp * exp(mean of log p_n), 0 when nothing
 * matched at all.  Scores are on sacreBLEU's 0..100 scale. */
#ifndef TP_BLEU_H
#define TP_BLEU_H

#include <stdint.h>

typedef struct tp_bleu {
    int64_t correct[4], total[4];
    int64_t hypothesis_length, reference_length;
} tp_bleu;

/* text tokenized by 13a -> a new string of tokens separated by single spaces (free it). */
char *tp_bleu_tokenize_13a(const char *text);
/* Adds one hypothesis / reference pair's statistics. */
void tp_bleu_add(tp_bleu *stats, const char *hypothesis, const char *reference);
/* The corpus score (0..100); precisions (4 entries, may be NULL) and brevity_penalty (may be NULL)
 * receive sacreBLEU's. */
double tp_bleu_score(const tp_bleu *stats, double *precisions, double *brevity_penalty);

#endif
