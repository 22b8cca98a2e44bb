/* TencentPretrain's image augmentations (`image_preprocess`, its VisionDataloader): at training time,
 * on the pre-decoded images (core/preprocess_vit.h), before the processor's normalization.
 *
 * Model-config key `image_preprocess`: a list of TencentPretrain's steps, none by default:
 *   "crop" (also TencentPretrain's dataloader spelling "corp")  torchvision's RandomResizedCrop
 *          (scale 0.08 .. 1 of the area, aspect ratio 3/4 .. 4/3, ten tries, then the centre
 *          crop clamped to those ratios) of the stored image, resized back to the model's size
 *          with PIL's bilinear filter (core/image.h).  TencentPretrain crops the decoded image to
 *          a square of the model's larger side and then resizes it to the model's size; tp crops
 *          the stored image, already at the model's size, and resizes once (the same for square
 *          models, the usual case, up to the resolution of the stored image);
 *   "horizontal_flip"  mirrored left to right with probability 0.5 (after the crop, as torchvision);
 *   "normalize"  accepted: tp's batches are always normalized as the processor says (vit: mean and
 *          std 0.5, as Hugging Face's ViT; clip: CLIP's), so a list without it, which in
 *          TencentPretrain feeds pixels in [0, 1], is refused.
 * TencentPretrain's default, ["crop", "normalize"], never crops: its dataloader tests for "corp".
 *
 * Applied by tp_image_set_augment (core/preprocess_vit.h).  Draws: each image's from one generator the caller keys (the loaders: (seed,
 * TP_STREAM_IMAGE_AUGMENT, epoch * count + instance)), the crop's tries first, then the flip; so
 * they depend on neither batch size, ranks nor threads. */
#ifndef TP_IMAGE_AUGMENT_H
#define TP_IMAGE_AUGMENT_H

#include <stdint.h>

#include "core/config.h"
#include "core/rng.h"


typedef struct tp_image_augment {
    int crop, horizontal_flip;
} tp_image_augment;

/* The model config's image_preprocess into augment (all 0 without the key); -1 + tp_fail naming the
 * config and the step when a step is unknown or "normalize" is missing. */
int tp_image_augment_read(tp_config *model_config, tp_image_augment *augment);
/* 1 when augment changes images. */
int tp_image_augment_active(const tp_image_augment *augment);

/* The crop window of torchvision's RandomResizedCrop.get_params for a height x width image. */
typedef struct tp_crop_window {
    int64_t top, left, height, width;
} tp_crop_window;
tp_crop_window tp_random_resized_crop_window(int64_t height, int64_t width, tp_rng *rng);

#endif
