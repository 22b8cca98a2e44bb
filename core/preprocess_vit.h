/* The `vit` data processor: labelled images for image classification, decoded once into memory
 * at the model's input size ("pre-decoded"; docs/media.md measures it against decoding every
 * batch) and normalized per batch.
 *
 * Sources, recognised by their first bytes:
 *   an image list  UTF-8 text, one `label<TAB>path` line per image (TencentPretrain's image
 *                  classification files; a first line naming the columns `label` and `path`, in
 *                  either order, is a header).  Labels are class ids 0..N-1; paths are JPEG or PNG
 *                  files, relative to the working directory as TencentPretrain reads them.  Each
 *                  image is decoded as RGB (core/image.h), resized to the model's size with PIL's
 *                  bilinear filter when it differs (ViTImageProcessor's resample) and, for one
 *                  channel, converted to PIL's "L" (ITU-R 601-2 luma).  Decoding runs in parallel.
 *   an IDX pair    the images file of MNIST / Fashion-MNIST (N x H x W bytes, gzip or plain);
 *                  its labels are the file of the same name with "-images-idx3-" replaced by
 *                  "-labels-idx1-" (the datasets' own naming).  Gray; resized and replicated to
 *                  RGB when the model wants another size or three channels.
 * A bad line fails the whole read with one message naming the list file and its line (and, for an
 * image that cannot be decoded, the image file and the decoder's reason), e.g.
 *   "train.tsv: line 7: img/3.jpg: JPEG: Premature end of JPEG file"
 * unless skip_bad_images is set: then images that cannot be read or decoded are left out and
 * counted (malformed lines and labels still fail).
 *   a pre-decoded file  what tp_image_set_write writes (`tp-preprocess --data_processor vit`): the
 *                  images already decoded and resized, read without decoding.  Layout (little-endian,
 *                  sections 64-byte aligned), every field checked against the file's size on reading:
 *                    header (128 bytes): char magic[8] "TPIMAGES", uint32 version 1, uint32 pixel_type
 *                    1 (uint8 HWC), uint64 count, channels, height, width, num_labels, labels_pos (128),
 *                    pixels_pos (labels_pos + 4 count rounded up to 64), file_size, zero padding;
 *                    int32 labels[count]; uint8 pixels[count][height][width][channels].
 *                  Its geometry must be the model's (no resizing at load), its labels below num_labels. */
#ifndef TP_PREPROCESS_VIT_H
#define TP_PREPROCESS_VIT_H

#include <stdint.h>

#include "core/config.h"

typedef struct tp_image_set_options {
    int64_t channels, height, width; /* the model's input: channels_num (1 or 3), image_height, image_width */
    int64_t num_labels;              /* > 0: labels must be below it; 0: the largest label + 1 */
    int skip_bad_images;             /* 1: undecodable images are skipped and counted instead of failing */
} tp_image_set_options;

typedef struct tp_image_set {
    char *path;
    int64_t count, channels, height, width, num_labels;
    uint8_t *pixels;  /* count images of height x width x channels bytes, HWC */
    int32_t *labels;  /* [count] */
    int64_t skipped;  /* images left out (skip_bad_images) */
} tp_image_set;

/* The input geometry of a model config's patch embedding (image_height, image_width, channels_num,
 * patch_size, with TencentPretrain's defaults 256, 256, 3, 16) into options and *patch. */
int tp_image_set_geometry(tp_config *model_config, tp_image_set_options *options, int64_t *patch);
int tp_image_set_read(const char *path, const tp_image_set_options *options, tp_image_set *out);
/* The set as a pre-decoded file at path, written atomically. */
int tp_image_set_write(const tp_image_set *set, const char *path);
void tp_image_set_free(tp_image_set *set);
/* Image i as the model's input: float channel planes (C x H x W), (u / 255 - 0.5) / 0.5 as
 * ViTImageProcessor normalizes (core/image.h's roundings). */
void tp_image_set_normalize(const tp_image_set *set, int64_t index, float *chw);

#endif
