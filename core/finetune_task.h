/* The fine-tuning task kinds (classification, multi-label, regression, tagging, text2text,
 * speech2text): how a TencentPretrain TSV file (core/tsv.h) or speech list becomes model inputs, which head a kind needs, how the
 * head's outputs become predictions and how predictions are scored against the gold labels
 * (core/metrics.h).  Shared by tp-finetune and tp-infer; docs/finetune.md describes the kinds.
 *
 * Encoding: [CLS] text_a [SEP] (text_b [SEP]), cut to seq_length, segments 1/2, padding 0.
 * Tagging (text_a only): every space-separated word is tokenized on its own and its tag goes to
 * its FIRST piece; the other pieces, [CLS], [SEP] and padding get tag -1 (not scored).  Words
 * that do not fit in seq_length are not predicted (id -1) and are left out of the scores, as
 * TencentPretrain truncates the tags with the tokens. */
#ifndef TP_FINETUNE_TASK_H
#define TP_FINETUNE_TASK_H

#include <stdint.h>
#include <stdio.h>

#include "core/config.h"
#include "core/dataset.h"
#include "core/distributed.h"
#include "core/metrics.h"
#include "core/generate_seq2seq.h"
#include "core/model.h"
#include "core/preprocess_s2t.h"
#include "core/preprocess_vit.h"
#include "core/tsv.h"
#include "tokenizers/tokenizer.h"

/* "classification", "multi_label", "regression", "tagging", "text2text", "speech2text" (the run
 * config's `task`). */
extern const char *const tp_task_kind_keys[];
/* The target module of a kind: cls, multi_label, regression, tagging, lm (text2text, speech2text). */
const char *tp_task_target_name(tp_task_kind kind);
/* Scalars per example in the head's output: labels_num, 1 for regression, 0 for tagging and the
 * generating kinds. */
int64_t tp_task_outputs(tp_task_kind kind, int64_t labels_num);
/* Points the model config's `target` at the kind's head, with labels_num (and the run config's
 * `pooling` for the sequence-level kinds, by default the model config's own, else first; read here
 * so that tagging refuses it as unused). */
int tp_task_configure_head(tp_task_kind kind, int64_t labels_num, tp_config *run, tp_config *model_config);

/* A TSV file tokenized and padded. */
typedef struct tp_encoded_split {
    tp_task_kind kind;
    int64_t count, seq_length, labels_num;
    int has_labels;
    int32_t *src, *seg;    /* [count * seq_length] */
    /* The labels (NULL without a label column): */
    int32_t *labels;       /* classification: [count] class ids */
    float *targets;        /* regression: [count] values; multi-label: [count * labels_num] 0/1 */
    int32_t *tags;         /* tagging: [count * seq_length] tag id at each word's first piece, else -1 */
    /* Tagging: word w of example i is word first_word[i] + w of the file (first_word[count] = all
     * words); word_position[that] is the position of its first piece, -1 when cut off. */
    int64_t *first_word;
    int32_t *word_position;
    /* Text2text (tp_encode_text2text): the decoder's input [count * tgt_seq_length], pad_id after
     * each target; tags are then [count * tgt_seq_length] next-token ids, -1 at padding. */
    int64_t tgt_seq_length;
    int32_t *tgt_src;
    /* Image classification (tp_task_read_images): the pre-decoded images; src is NULL, and every
     * row (the class token and the patches) is real (seg 1). */
    tp_image_set *images;
    tp_image_augment augment; /* the model config's image_preprocess (tp_task_augment_batch) */
    /* Speech-to-text (tp_task_read_speech, tp_encode_speech_targets): the utterances' features and
     * transcripts, read at the model's geometry; src is NULL, seq_length the longest utterance's
     * subsampled frames, tgt_src / tags as text2text's (decoder rows of tgt_seq_length, tags -1
     * after each target); word_delimiter_id the token standing for a space (-1: none). */
    tp_s2t_set *speech;
    tp_s2t_geometry geometry;
    int32_t word_delimiter_id;
} tp_encoded_split;

void tp_encode_split(const tp_tokenizer *tok, const tp_tsv_task *task, int64_t seq_length, int64_t labels_num,
                     tp_encoded_split *out);
void tp_encoded_split_free(tp_encoded_split *split);

/* Text2text (an encoder-decoder model whose target is lm; run_text2text.py): the special ids of
 * the tokenizer -- eos: its eos token, else [SEP]; decoder start: its [CLS], else pad (T5);
 * pad -- or -1 naming the vocabulary file and the token it lacks. */
typedef struct tp_text2text_ids {
    int32_t eos_id, start_id, pad_id;
    int wordpiece; /* the vocabulary has "##" continuation pieces (detokenization) */
    int32_t delimiter_id; /* written as a space (speech2text's word_delimiter); -1 (the default): none */
} tp_text2text_ids;
int tp_text2text_ids_of(const tp_tokenizer *tok, tp_text2text_ids *ids);
/* source = text_a tokens + eos cut to seq_length (text_b, when present, follows text_a before the
 * eos); decoder input = start + label tokens, lm labels = label tokens + eos, both cut to
 * tgt_seq_length; padding pad_id, labels -1 there.  -1 as tp_text2text_ids_of. */
int tp_encode_text2text(const tp_tokenizer *tok, const tp_tsv_task *task, int64_t seq_length, int64_t tgt_seq_length,
                        tp_encoded_split *out);
/* The generated ids as text: special ids (ids) left out, the delimiter id a space; WordPiece "##" pieces glued to the word
 * before, other WordPiece tokens apart by a space; SentencePiece's U+2581 becomes a space (the
 * first one dropped); any other vocabulary's tokens concatenated (char tokenizer; TencentPretrain's
 * "".join).  A new string. */
char *tp_text2text_detokenize(const tp_tokenizer *tok, const tp_text2text_ids *ids, const int32_t *generated,
                              int64_t count);

/* Image classification: the `classification` task on a model whose config says
 * "data_processor": "vit" (TencentPretrain's ViT configs do) reads image lists or IDX pairs
 * (core/preprocess_vit.h) instead of TSV text, with no tokenizer; the model's head is the cls
 * target pooling the first row, the class token.  1 for such a model config. */
int tp_task_is_image(tp_config *model_config);
/* Reads path as an image classification split at the input size of the model config's patch
 * embedding (image_height, image_width, channels_num, patch_size; modules/embeddings/patch.c):
 * the split (labels, images) and a gold task with the labels and the label names "0", "1", ...
 * num_labels > 0 bounds the labels (dev and test: the training set's count); skip_bad_images as in
 * tp_image_set_options (the split's images->skipped counts them). */
int tp_task_read_images(const char *path, tp_config *model_config, int64_t num_labels, int skip_bad_images,
                        tp_tsv_task **gold, tp_encoded_split *split);

/* Speech-to-text (run_speech2text.py): an encoder-decoder model whose first embedding is speech and
 * whose target is lm, trained on speech lists (core/preprocess_s2t.h: `text<TAB>path` lines, or
 * run_speech2text.py's text / wav_path header) to generate the transcript: [CLS] + its tokens +
 * [SEP] (as text2text's targets, cut to tgt_seq_length), scored by word error rate.  Reads path at
 * the model config's features (tp_s2t_geometry_of) with tp_s2t_read's options (allow_no_text for
 * tp-infer's lists of `path` lines; skip_bad_audio: the split's speech->skipped counts the lines
 * left out).  gold: a task with the path and count (has_labels: the list has transcripts). */
int tp_task_read_speech(const char *path, tp_config *model_config, const tp_s2t_read_options *options,
                        tp_tsv_task **gold, tp_encoded_split *split);
/* Tells stderr what skip_bad_images / skip_bad_audio left out of the images or speech (either may be
 * NULL) read from path, if anything. */
void tp_task_report_skipped(const char *path, const tp_image_set *images, const tp_s2t_set *speech);
/* -1 + "<config_name>: key '<key>': ... needs a model whose embedding starts with speech" unless the
 * model reads audio (its first embedding is speech). */
int tp_task_check_speech_model(const tp_model *model, const char *config_name, const char *key);
/* -1 + "<config_name>: key '<key>': embedding '<name>' does not read token ids ..." (saying what the
 * model trains on) when a task of text files meets a model whose embedding reads images or audio
 * (patch, masked_patch, word_patch, speech). */
int tp_task_check_text_model(const tp_model *model, const char *config_name, const char *key);
/* The split's decoder rows from its transcripts (start [CLS] ... eos [SEP] as tp_text2text_ids_of
 * picks them; a list without transcripts gets rows of the start id alone); with word_delimiter
 * (a token of the vocabulary, e.g. "|" for the char tokenizer, whose vocabulary has no space)
 * every space of a transcript is encoded as that token.  -1 naming the vocabulary and what it lacks. */
int tp_encode_speech_targets(const tp_tokenizer *tok, const char *word_delimiter, int64_t tgt_seq_length,
                             tp_encoded_split *split);
/* The generating kinds' run keys, with `stored` (a checkpoint's task.json, or NULL) giving the
 * defaults: tgt_seq_length (generated ids at most, the eos included; text2text 32, speech2text 50
 * as run_speech2text.py), num_beams (1 = greedy), length_penalty (1.0) and early_stopping (false)
 * (core/generate_seq2seq.h) into search. */
int tp_task_read_search(tp_config *run, tp_config *stored, tp_task_kind kind, int64_t *tgt_seq_length,
                        tp_seq2seq_options *search);

/* A host batch for up to batch_size rows of a split: buffers for its kind and its labels (none
 * without labels: the model then computes no loss).  Any split of the same kind and label set
 * with labels as the first may be filled into it.  Freed by tp_batch_free (core/dataset.h). */
void tp_task_batch_init(tp_batch *batch, const tp_encoded_split *split, int64_t batch_size);
/* Rows indices[0..rows) of the split into the batch (with their labels when the split has them). */
const tp_batch *tp_task_fill_batch(tp_batch *batch, const tp_encoded_split *split, const int64_t *indices,
                                   int64_t rows);
/* Training batches only, after tp_task_fill_batch: the model config's augmentation of the same rows --
 * SpecAugment for speech (tp_s2t_augment_batch), image_preprocess's crops and flips for images (row
 * r's draws from (seed, TP_STREAM_IMAGE_AUGMENT, epoch * count + indices[r])); nothing otherwise. */
void tp_task_augment_batch(tp_batch *batch, const tp_encoded_split *split, const int64_t *indices, int64_t rows,
                           uint64_t seed, int64_t epoch);

/* What the model predicts for a split. */
typedef struct tp_task_predictions {
    tp_task_kind kind;
    int64_t count, outputs;
    float *logits;      /* sequence-level kinds: [count * outputs] head outputs (regression: the values) */
    int32_t *ids;       /* classification: [count] argmax; multi-label: [count * labels] 0/1 (logit > 0);
                         * tagging: [words] tag id of each word, -1 where cut off */
    double loss;        /* mean loss over the scored units (NaN without labels) */
    char **texts;       /* text2text: [count] generated texts (tp_task_generate) */
} tp_task_predictions;

/* Runs the model (its one target is the kind's head) over the split in batches, without gradients. */
int tp_task_predict(tp_model *model, tp_ctx *ctx, const tp_encoded_split *split, tp_batch *batch,
                    int64_t batch_size, tp_task_predictions *out);
/* The same, calling observer->batch after each batch's forward pass with the model's output (in
 * backend memory until the batch ends) for split rows first .. first+rows-1; a -1 from it stops
 * the run (tp-infer's --dump keeps the hidden states this way). */
typedef struct tp_task_observer {
    int (*batch)(void *user, tp_ctx *ctx, const tp_model_output *output, int64_t first, int64_t rows);
    void *user;
} tp_task_observer;
int tp_task_predict_observed(tp_model *model, tp_ctx *ctx, const tp_encoded_split *split, tp_batch *batch,
                             int64_t batch_size, const tp_task_observer *observer, tp_task_predictions *out);
/* Data-parallel (docs/distributed.md): each rank of comm predicts its shard of the rows
 * (tp_comm_shard) and every rank receives all of the predictions and the loss, exactly as one
 * rank computing them all would have them (up to the order of the loss's sum).  Every rank calls it. */
int tp_task_predict_shared(tp_model *model, tp_ctx *ctx, tp_comm *comm, const tp_encoded_split *split,
                           tp_batch *batch, int64_t batch_size, tp_task_predictions *out);
void tp_task_predictions_free(tp_task_predictions *predictions);
/* Text2text and speech2text: generates (core/generate_seq2seq.h: greedy, or beam search with
 * search's num_beams, length_penalty and early_stopping; at most tgt_seq_length ids, the eos
 * included) for every row of the split from its encoder output (the source tokens', or the
 * utterance's through the speech embedding) and detokenizes it into out->texts (out->count the
 * split's rows; a predict call may have filled the rest).  search's other options (e.g.
 * no_repeat_ngram_size, sampling) apply as set; its ids, when < 0, are the tokenizer's [CLS],
 * [SEP] and [PAD] (tp_text2text_ids_of).  Every rank generates all rows. */
int tp_task_generate(tp_model *model, tp_ctx *ctx, const tp_tokenizer *tok, const tp_encoded_split *split,
                     const tp_seq2seq_options *search, tp_task_predictions *out);

/* Scores against the split's gold labels.  `selection` is the best-on-dev criterion: accuracy
 * (classification), macro-F1 (multi-label), Spearman (regression; -1 when undefined), entity F1
 * (tagging), corpus BLEU / 100 (text2text, core/bleu.h), minus the word error rate (speech2text,
 * core/metrics.h's tp_wer: 0 is perfect, and it can go below -1). */
typedef struct tp_task_scores {
    tp_task_kind kind;
    double loss, selection;
    tp_confusion *confusion;       /* classification */
    tp_multilabel *multilabel;     /* multi-label */
    double spearman, pearson, mse; /* regression */
    tp_entity_counts entity_counts; /* tagging */
    tp_entity_scores entities;
    double exact_match, bleu;      /* text2text: share of generated texts equal to the label; BLEU 0..100 */
    tp_wer_counts wer_counts;      /* speech2text (exact_match too) */
    double wer;
} tp_task_scores;

int tp_task_score(const tp_encoded_split *split, const tp_tsv_task *gold, const char *const *label_names,
                  const tp_task_predictions *predictions, tp_task_scores *out);
void tp_task_scores_free(tp_task_scores *scores);
/* The name of the selection score in the metrics ("accuracy", "macro_f1", "spearman", "f1", "bleu",
 * "wer": the metrics hold the WER itself, the selection its negative). */
const char *tp_task_selection_name(tp_task_kind kind);
/* Human-readable scores (classification: with the confusion matrix) and the JSON fields
 * (",\"accuracy\":0.9,...", no braces). */
void tp_task_scores_print(FILE *out, const tp_task_scores *scores, const char *const *label_names);
void tp_task_scores_json(FILE *out, const tp_task_scores *scores);

#endif
