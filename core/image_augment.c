/* TencentPretrain's image augmentations: see image_augment.h. */
#include "image_augment.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"

int tp_image_augment_read(tp_config *model_config, tp_image_augment *augment)
{
    const char *const *steps = NULL;
    int count = 0, normalize = 0;
    memset(augment, 0, sizeof *augment);
    if (!tp_config_has(model_config, "image_preprocess")) return 0;
    if (tp_config_strings(model_config, "image_preprocess", &steps, &count) < 0) return -1;
    for (int i = 0; i < count; i++) {
        if (!strcmp(steps[i], "crop") || !strcmp(steps[i], "corp"))
            augment->crop = 1;
        else if (!strcmp(steps[i], "horizontal_flip"))
            augment->horizontal_flip = 1;
        else if (!strcmp(steps[i], "normalize"))
            normalize = 1;
        else
            return tp_fail("%s: key 'image_preprocess': unknown step \"%s\" (crop, horizontal_flip, normalize)",
                           tp_config_name(model_config), steps[i]);
    }
    if (!normalize)
        return tp_fail("%s: key 'image_preprocess': without \"normalize\" (pixels in [0, 1]): tp always normalizes "
                       "as the image processor does, so the list must include it",
                       tp_config_name(model_config));
    return 0;
}

int tp_image_augment_active(const tp_image_augment *augment) { return augment->crop || augment->horizontal_flip; }

/* torchvision's defaults: scale (0.08, 1), ratio (3/4, 4/3). */
#define CROP_MIN_AREA 0.08
#define CROP_MIN_RATIO (3.0 / 4.0)
#define CROP_MAX_RATIO (4.0 / 3.0)

tp_crop_window tp_random_resized_crop_window(int64_t height, int64_t width, tp_rng *rng)
{
    double area = (double)height * (double)width, log_min = log(CROP_MIN_RATIO), log_max = log(CROP_MAX_RATIO);
    for (int attempt = 0; attempt < 10; attempt++) {
        double target = area * (CROP_MIN_AREA + (1.0 - CROP_MIN_AREA) * tp_rng_uniform(rng));
        double ratio = exp(log_min + (log_max - log_min) * tp_rng_uniform(rng));
        /* nearbyint rounds half to even in the default mode, as Python's round */
        int64_t w = (int64_t)nearbyint(sqrt(target * ratio)), h = (int64_t)nearbyint(sqrt(target / ratio));
        if (w > 0 && w <= width && h > 0 && h <= height) {
            int64_t top = (int64_t)tp_rng_below(rng, (uint64_t)(height - h + 1));
            int64_t left = (int64_t)tp_rng_below(rng, (uint64_t)(width - w + 1));
            return (tp_crop_window){top, left, h, w};
        }
    }
    /* ten misses: the centre crop with the ratio clamped to the range */
    double in_ratio = (double)width / (double)height;
    int64_t w = width, h = height;
    if (in_ratio < CROP_MIN_RATIO)
        h = (int64_t)nearbyint((double)w / CROP_MIN_RATIO);
    else if (in_ratio > CROP_MAX_RATIO)
        w = (int64_t)nearbyint((double)h * CROP_MAX_RATIO);
    return (tp_crop_window){(height - h) / 2, (width - w) / 2, h, w};
}
