/* The `vit`, `clip` and `vilt` data processors' images: labelled images for image classification
 * (vit) or image-text pairs for contrastive pre-training (clip) and for ViLT's masked language
 * modelling and image-text matching (vilt; both core/preprocess_clip.h), decoded once into
 * memory at the model's input size ("pre-decoded"; docs/media.md measures it against decoding every
 * batch) and normalized per batch.
 *
 * The processor (tp_image_set_options.processor) says how an image becomes the model's input:
 *   vit   ViTImageProcessor: resized to the model's size with PIL's bilinear filter when it differs;
 *         for one channel, converted to PIL's "L" (ITU-R 601-2 luma); normalized (u / 255 - 0.5) / 0.5.
 *   clip  CLIPImageProcessor: the short side resized to the model's larger side with PIL's bicubic
 *         filter (the long side int(size * long / short)), the centre cut to the model's size, CLIP's
 *         mean and std; three channels only.
 *   vilt  as vit (TencentPretrain's ViLT resizes to the model's size, and Hugging Face's
 *         ViltImageProcessor normalizes with vit's mean and std 0.5).
 *
 * Sources, recognised by their first bytes:
 *   an image list  UTF-8 text, one line per image: vit `label<TAB>path` (TencentPretrain's image
 *                  classification files; a first line naming the columns `label` and `path`, in
 *                  either order, is a header; labels are class ids 0..N-1), clip `text<TAB>path`
 *                  (TencentPretrain's clip and vilt corpora; a first line naming `text` and `path` is a header;
 *                  the text is the image's caption, non-empty, kept in `captions`).  Paths are
 *                  JPEG or PNG files, relative to the working directory as TencentPretrain reads them.
 *                  Each image is decoded as RGB (core/image.h) and processed as above.  Decoding runs
 *                  in parallel.
 *   an IDX pair    (vit only) the images file of MNIST / Fashion-MNIST (N x H x W bytes, gzip or
 *                  plain); its labels are the file of the same name with "-images-idx3-" replaced by
 *                  "-labels-idx1-" (the datasets' own naming).  Gray; resized and replicated to RGB
 *                  when the model wants another size or three channels.
 * A bad line fails the whole read with one message naming the list file and its line (and, for an
 * image that cannot be decoded, the image file and the decoder's reason), e.g.
 *   "train.tsv: line 7: img/3.jpg: JPEG: Premature end of JPEG file"
 * unless skip_bad_images is set: then images that cannot be read or decoded are left out and
 * counted (malformed lines, labels and texts still fail).
 *   a pre-decoded file  what tp_image_set_write writes (`tp-preprocess --data_processor vit` or
 *                  `clip` or `vilt`): the images already decoded and processed, read without decoding.  Layout
 *                  (little-endian, sections 64-byte aligned), every field checked against the file's
 *                  size on reading:
 *                    header (128 bytes): char magic[8] "TPIMAGES", uint32 version (1: labelled
 *                    images, 2: image-text pairs), uint32 pixel_type 1 (uint8 HWC), uint64 count,
 *                    channels, height, width, num_labels, labels_pos (128), pixels_pos (labels_pos +
 *                    4 count rounded up to 64), file_size; version 2 only (zero in version 1): uint32
 *                    processor (1: clip, 2: vilt) at byte 80, uint32 text_seq_length (the longest text) at 84,
 *                    uint64 vocab_size at 88, token_count at 96, text_offsets_pos (after the pixels,
 *                    rounded up to 64) at 104, tokens_pos (after the offsets, rounded up) at 112; zero
 *                    padding;
 *                    int32 labels[count] (version 2: all 0, num_labels 1);
 *                    uint8 pixels[count][height][width][channels];
 *                    version 2: uint64 text_offsets[count + 1], int32 tokens[token_count] (image i's
 *                    text is tokens[text_offsets[i] .. text_offsets[i + 1])).
 *                  Its geometry and processor must be the model's (no resizing at load), its labels
 *                  below num_labels, its token ids below vocab_size. */
#ifndef TP_PREPROCESS_VIT_H
#define TP_PREPROCESS_VIT_H

#include <stdint.h>

#include "core/config.h"
#include "core/image_augment.h"

enum { TP_IMAGE_SET_VIT = 0, TP_IMAGE_SET_CLIP = 1, TP_IMAGE_SET_VILT = 2 }; /* the processors above */

/* 1 for the processors of image-text pairs (clip, vilt), 0 for vit's labelled images. */
int tp_image_set_has_texts(int processor);
/* The processor's --data_processor name. */
const char *tp_image_set_processor_name(int processor);

/* Token id sequences: sequence i is ids[offsets[i] .. offsets[i + 1]). */
typedef struct tp_id_lists {
    int64_t count, longest, token_count;
    int64_t *offsets; /* [count + 1] */
    int32_t *ids;     /* [token_count] */
} tp_id_lists;

typedef struct tp_image_set_options {
    int64_t channels, height, width; /* the model's input: channels_num (1 or 3), image_height, image_width */
    int64_t num_labels;              /* > 0: labels must be below it; 0: the largest label + 1 */
    int skip_bad_images;             /* 1: undecodable images are skipped and counted instead of failing */
    int processor;                   /* TP_IMAGE_SET_VIT (0), TP_IMAGE_SET_CLIP or TP_IMAGE_SET_VILT */
    tp_image_augment augment;        /* the model config's image_preprocess: the training loaders apply it */
} tp_image_set_options;

typedef struct tp_image_set {
    char *path;
    int64_t count, channels, height, width, num_labels;
    uint8_t *pixels;  /* count images of height x width x channels bytes, HWC */
    int32_t *labels;  /* [count] (image-text pairs: all 0) */
    int64_t skipped;  /* images left out (skip_bad_images) */
    int processor;
    int64_t *lines;   /* lists: [count] each image's line in the list; NULL otherwise */
    char **captions;  /* clip and vilt lists: [count] each image's text as written; NULL otherwise */
    tp_id_lists texts; /* clip and vilt: each image's text as token ids (from a pre-decoded file, or
                        * tp_clip_tokenize_set); count 0 until then */
    int64_t vocab_size; /* the vocabulary the texts' ids are below */
} tp_image_set;

/* The input geometry of a model config's patch embedding (image_height, image_width, channels_num,
 * patch_size, with TencentPretrain's defaults 256, 256, 3, 16) and its image_preprocess
 * (core/image_augment.h) into options and *patch. */
int tp_image_set_geometry(tp_config *model_config, tp_image_set_options *options, int64_t *patch);
int tp_image_set_read(const char *path, const tp_image_set_options *options, tp_image_set *out);
/* 1 when path is a pre-decoded file (starts with its magic), 0 when not, -1 + tp_fail when it cannot be read. */
int tp_image_set_is_predecoded(const char *path);
/* The set as a pre-decoded file at path, written atomically (image-text pairs: with their texts' ids). */
int tp_image_set_write(const tp_image_set *set, const char *path);
void tp_image_set_free(tp_image_set *set);
void tp_id_lists_free(tp_id_lists *lists);
/* Image i as the model's input: float channel planes (C x H x W), normalized as the set's processor
 * does it (core/image.h's roundings). */
void tp_image_set_normalize(const tp_image_set *set, int64_t index, float *chw);
/* The same for an image of the set's geometry held elsewhere (height x width x channels bytes). */
void tp_image_set_normalize_pixels(const tp_image_set *set, const uint8_t *pixels, float *chw);
/* Image `index` augmented as image_preprocess says (core/image_augment.h) with rng's draws, then
 * normalized as tp_image_set_normalize does. */
void tp_image_set_augment(const tp_image_set *set, int64_t index, const tp_image_augment *augment, tp_rng *rng,
                          float *chw);

#endif
