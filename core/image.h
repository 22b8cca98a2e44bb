/* Images for tp's data path: JPEG and PNG decoding, the resize / center-crop / normalize of the
 * published image processors, and IDX files (MNIST, Fashion-MNIST).  docs/media.md.
 *
 * A decoded image is 8-bit RGB, interleaved: pixel (y, x) channel c is rgb[(y*width + x)*3 + c]
 * (HWC), rows top to bottom.  Every source is converted to RGB the way PIL's
 * Image.convert("RGB") does, which is what transformers' image processors see: grayscale is
 * replicated, palettes are looked up, alpha (and tRNS transparency) is dropped, 16-bit samples
 * keep their high byte.  The processors' output is float CHW (channel planes), as ViT and CLIP
 * take it.
 *
 * Every failure returns -1 (or NULL) with one message that names the file, e.g.
 *   "data/x.jpg: JPEG: Premature end of JPEG file"
 *   "data/t10k-labels-idx1-ubyte.gz: IDX data ends at byte 9008 (uncompressed), the header promises 10008"
 * Libjpeg warnings count as errors: a damaged JPEG is refused, not half-decoded. */
#ifndef TP_IMAGE_H
#define TP_IMAGE_H

#include <stddef.h>
#include <stdint.h>

/* Larger images are refused before any pixel is allocated (PIL's decompression-bomb limit is
 * 89 million pixels; 64 Mi pixels is 192 MiB of RGB). */
#define TP_IMAGE_MAX_PIXELS ((int64_t)1 << 26)

typedef struct tp_image {
    int64_t width, height;
    uint8_t *rgb; /* height * width * 3 bytes, HWC */
} tp_image;

/* Reads and decodes a JPEG or PNG file (recognised by its first bytes, not by its name). */
int tp_image_read(const char *path, tp_image *image);
/* Decodes an encoded image held in memory; name stands for the file in error messages. */
int tp_image_decode(const char *name, const uint8_t *data, size_t size, tp_image *image);
void tp_image_free(tp_image *image);

/* PIL's resampling filters (Image.BILINEAR = 2, Image.BICUBIC = 3), with PIL's antialiasing: when
 * shrinking, the filter's support grows with the scale factor. */
typedef enum tp_resample { TP_RESAMPLE_BILINEAR, TP_RESAMPLE_BICUBIC } tp_resample;

/* PIL's Image.resize for 8-bit RGB, bit for bit: a horizontal then a vertical pass with 22-bit
 * fixed-point coefficients, each rounded and clamped to 8 bits.  out is allocated. */
int tp_image_resize(const tp_image *in, int64_t width, int64_t height, tp_resample filter, tp_image *out);
/* The centred width x height window (transformers' center_crop: top = (H - h) / 2 rounded down,
 * left likewise); it must fit inside the image.  out is allocated. */
int tp_image_center_crop(const tp_image *in, int64_t width, int64_t height, tp_image *out);
/* chw[c][y][x] = (rgb / 255 - mean[c]) / std[c] in float32, with transformers' roundings
 * (the rescale in double, then float32). */
void tp_image_normalize_chw(const tp_image *in, const float mean[3], const float std[3], float *chw);

/* A Hugging Face image processor: resize (to a fixed size, or the short side to shortest_edge
 * keeping the aspect ratio with the long side rounded down), optional center crop, rescale by
 * 1/255 and normalize. */
typedef struct tp_image_processor {
    int64_t shortest_edge;         /* > 0: resize the short side to this; 0: to resize_width x resize_height */
    int64_t resize_width, resize_height;
    tp_resample resample;
    int64_t crop_width, crop_height; /* 0: no crop */
    float mean[3], std[3];
} tp_image_processor;

/* google/vit-*: ViTImageProcessor (bilinear to 224 x 224, mean = std = 0.5). */
extern const tp_image_processor tp_image_processor_vit;
/* openai/clip-vit-*: CLIPImageProcessor (bicubic, short side 224, center crop 224, CLIP's mean/std). */
extern const tp_image_processor tp_image_processor_clip;

/* Output height and width of the processor for an input of the given size. */
void tp_image_processor_output_size(const tp_image_processor *processor, int64_t width, int64_t height,
                                    int64_t *out_width, int64_t *out_height);
/* The processor's resize and center crop without its normalization: 8-bit RGB of the output size
 * (allocated), what the pre-decoded image files store (core/preprocess_vit.h). */
int tp_image_resize_crop(const tp_image *in, const tp_image_processor *processor, tp_image *out);
/* Runs the processor; chw holds 3 * out_height * out_width floats. */
int tp_image_process(const tp_image *in, const tp_image_processor *processor, float *chw);

/* IDX files (yann.lecun.com/exdb/mnist): a 4-byte magic (two zero bytes, the type 0x08 for
 * unsigned bytes, the dimension count), one 32-bit big-endian size per dimension, then the
 * values row-major.  Gzip-compressed or plain (read through zlib either way).  The header is
 * validated fully: magic, type, 1 to TP_IDX_MAX_DIMS non-zero dimensions, and a payload of
 * exactly the promised size (no missing, no trailing bytes). */
#define TP_IDX_MAX_DIMS 4

typedef struct tp_idx {
    int ndim;
    int64_t dims[TP_IDX_MAX_DIMS];
    int64_t count;    /* product of dims */
    uint8_t *data;    /* count bytes */
} tp_idx;

int tp_idx_read(const char *path, tp_idx *idx);
void tp_idx_free(tp_idx *idx);

#endif
