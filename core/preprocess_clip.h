/* The `clip` and `vilt` data processors: image-text pairs for contrastive pre-training
 * (TencentPretrain's ClipDataset / ClipDataloader) and for ViLT's pre-training (ViltDataset /
 * ViltDataloader), their training batches, and zero-shot classification.
 *
 * Input: TencentPretrain's clip corpus, one `text<TAB>path` line per image (a first line naming the
 * columns `text` and `path` is a header), read by core/preprocess_vit.h with the clip processor:
 * each image decoded and processed as CLIPImageProcessor does for the model's size, each text kept.
 * Texts become [CLS] ids [SEP] with the ids cut to seq_length - 2 (TencentPretrain's
 * FileWithTextDataset); a tokenizer without [CLS] / [SEP] (GPT-2's BPE, CLIP's own) frames them with
 * its start and end tokens (<|startoftext|> ... <|endoftext|>), so that the text tower's `last`
 * pooling reads the end token, as Hugging Face's CLIP does.  `tp-preprocess --data_processor clip`
 * writes the pixels and the ids as one pre-decoded file (version 2 of preprocess_vit.h's layout),
 * which tp-pretrain trains on.
 *
 * Batches (tp_image_text_loader): CLIP's, the texts as token ids (src, seg 1 on each text's ids, pad_id
 * and seg 0 after them, seq_length the run's) and the images (pixels, CLIP's normalization) of the
 * same instances, in the order tp_loader uses for every other dataset (core/dataset.h: the epoch's
 * permutation of (seed, TP_STREAM_DATA_ORDER, epoch), full batches running across epochs, the
 * position (epoch, cursor) all a checkpoint needs), rank r of world_size taking positions
 * [r * batch_size, (r + 1) * batch_size) of each global batch.  Data-parallel training gathers the
 * ranks' features (modules/targets/clr.c), so that the clr target contrasts the whole global batch.
 *
 * The `vilt` processor (TencentPretrain's ViltDataset / ViltDataloader) makes the same pairs with
 * the images processed as vit's (core/preprocess_vit.h), and ViLT's batches are one sequence per
 * pair for the word_patch embedding: seq_length text rows (the text masked as BERT's: mlm_positions
 * and mlm_labels, the draws of (seed, TP_STREAM_MASKING, epoch * count + instance)), then the image's
 * image_rows rows (class token and patches: seg 2, src the padding id), TencentPretrain's segments
 * (text 1, padding 0, image 2).  With probability mismatch_prob (ViLT: 0.5) a text gets another
 * pair's image, drawn uniformly from the other pairs (TencentPretrain draws from its whole buffer,
 * the pair itself included, and then labels it a mismatch), by (seed, TP_STREAM_IMAGE_MISMATCH,
 * epoch * count + instance); sp_labels holds 1 for the pair's own image and 0 for another's (the sp
 * target's image-text matching).  The draws depend on neither the batch size nor the ranks. */
#ifndef TP_PREPROCESS_CLIP_H
#define TP_PREPROCESS_CLIP_H

#include <stdint.h>

#include "core/config.h"
#include "core/dataset.h"
#include "core/preprocess_vit.h"
#include "tokenizers/tokenizer.h"

struct tp_model;
struct tp_ctx;

/* The options a CLIP model config's vision stream (stream_1 over the top-level keys: image_height,
 * image_width, channels_num) asks of the clip processor. */
int tp_clip_image_options(tp_config *model_config, tp_image_set_options *options);
/* The options a ViLT model config (the top-level image keys of its word_patch embedding) asks of the
 * vilt processor, and the image's rows in its sequence (patches + the class token). */
int tp_vilt_image_options(tp_config *model_config, tp_image_set_options *options, int64_t *image_rows);

/* [CLS] ids [SEP] of text (the ids cut to seq_length - 2) appended to out; -1 + tp_fail naming the
 * tokenizer's file when it has neither [CLS] nor a start token (or neither [SEP] nor an end token). */
int tp_clip_encode_text(const tp_tokenizer *tok, const char *text, int64_t seq_length, tp_ids *out);
/* The set's captions (a clip list's) as token ids into set->texts, set->vocab_size the tokenizer's. */
int tp_clip_tokenize_set(tp_image_set *set, const tp_tokenizer *tok, int64_t seq_length);
/* Zero-shot candidates: each non-empty line of path a text (kept in *lines, NULL-terminated, when
 * lines is not NULL), encoded as above.  -1 + tp_fail naming the file (and line) when it is
 * missing, has fewer than 2 texts, or a line is not UTF-8. */
int tp_clip_read_texts(const char *path, const tp_tokenizer *tok, int64_t seq_length, tp_id_lists *out,
                       char ***lines);
/* The index of the first list of lists equal to ids[0..length), or -1. */
int64_t tp_id_lists_find(const tp_id_lists *lists, const int32_t *ids, int64_t length);

typedef struct tp_image_text_loader_options {
    int64_t batch_size;
    int64_t seq_length; /* the texts' padded length: at least the set's longest text */
    uint64_t seed;
    int shuffle;        /* 1: permute per epoch; 0: file order */
    int32_t pad_id;
    int rank, world_size; /* this rank's rows of global batches of batch_size * world_size */
    tp_image_augment augment; /* image_preprocess: each row's image cropped / flipped with the draws of
                               * (seed, TP_STREAM_IMAGE_AUGMENT, epoch * count + instance) */
    /* ViLT's batches (all 0 for CLIP's): */
    int64_t image_rows;          /* rows of the image after each text in one sequence (seg 2, src pad_id) */
    tp_masking_options masking;  /* mask_prob > 0: each text masked as tp_mask_sequence does */
    double mismatch_prob;        /* the chance that a text is given another pair's image */
} tp_image_text_loader_options;

typedef struct tp_image_text_loader tp_image_text_loader;
/* NULL + tp_fail when the set has no texts, a text longer than seq_length, fewer pairs than
 * world_size (or than 2 with mismatch_prob), or masking options tp_masking_options_check refuses. */
tp_image_text_loader *tp_image_text_loader_create(const tp_image_set *set,
                                                  const tp_image_text_loader_options *options);
void tp_image_text_loader_free(tp_image_text_loader *loader);
/* The next batch (loader-owned, valid until the next call). */
const tp_batch *tp_image_text_loader_next(tp_image_text_loader *loader);
void tp_image_text_loader_position(const tp_image_text_loader *loader, int64_t *epoch, int64_t *cursor);
int tp_image_text_loader_seek(tp_image_text_loader *loader, int64_t epoch, int64_t cursor);

/* Zero-shot classification (no tape): every image of `images` against every candidate text.
 * CLIP (image_rows 0, the clr target): scored by the target's logits (exp(logit_scale) times the
 * cosine of the projected features, Hugging Face's logits_per_image), the images running
 * candidates->count at a time beside the candidates as one batch.  ViLT (image_rows > 0: the
 * word_patch embedding's rows after seq_length text rows; the sp target): each image beside every
 * candidate in one batch, scored by the sp target's log-odds that the pair matches (logit 1 - logit
 * 0).  best[i] is image i's highest-scoring candidate (the first among ties); logits, when not
 * NULL, holds [images->count x candidates->count] scores. */
int tp_image_text_zero_shot(struct tp_model *model, struct tp_ctx *ctx, const tp_image_set *images,
                            const tp_id_lists *candidates, int64_t seq_length, int64_t image_rows, int32_t pad_id,
                            int64_t *best, float *logits);

#endif
