/* TencentPretrain's image augmentations (core/image_augment.h):
 *  - image_preprocess: none by default; "crop" (and TencentPretrain's dataloader spelling "corp"),
 *    "horizontal_flip", "normalize"; an unknown step and a list without "normalize" are refused
 *    naming the config and the step;
 *  - the crop windows of torchvision's RandomResizedCrop.get_params: inside the image, their area
 *    within 8% .. 100% and aspect ratio within 3/4 .. 4/3 (up to the rounding of the sides), for a
 *    square image a mean area near the uniform draw's 0.54, and the centre crop clamped to those ratios when ten tries
 *    miss (a 1 x 40 image: its centre pixel, and so for 40 x 1);
 *  - an augmented image is the window of the stored image resized back with PIL's bilinear filter
 *    (core/image.h's, bit for bit with PIL) and mirrored when the flip's draw says so, then
 *    normalized as the set's processor does -- for RGB and for one-channel sets; about half the
 *    images are flipped, and a flip mirrors exactly. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/image.h"
#include "core/image_augment.h"
#include "core/preprocess_vit.h"
#include "support/check.h"

static int read_fails(const char *json, const char *message)
{
    tp_config *config = tp_config_parse("model.json", json);
    tp_image_augment augment;
    int failed = config && tp_image_augment_read(config, &augment) < 0;
    int named = failed && strstr(tp_last_error(), message) != NULL;
    if (!named) fprintf(stderr, "expected '%s', got '%s'\n", message, failed ? tp_last_error() : "success");
    if (config) tp_config_free(config);
    return named;
}

static tp_image_augment read_augment(const char *json)
{
    tp_config *config = tp_config_parse("model.json", json);
    tp_image_augment augment = {-1, -1};
    CHECK_MSG(config && tp_image_augment_read(config, &augment) == 0, "%s: %s", json, tp_last_error());
    if (config) tp_config_free(config);
    return augment;
}

static void check_keys(void)
{
    tp_image_augment none = read_augment("{}"), crop = read_augment("{\"image_preprocess\": [\"crop\", \"normalize\"]}");
    tp_image_augment both = read_augment("{\"image_preprocess\": [\"normalize\", \"corp\", \"horizontal_flip\"]}");
    tp_image_augment plain = read_augment("{\"image_preprocess\": [\"normalize\"]}");
    CHECK(!none.crop && !none.horizontal_flip && !tp_image_augment_active(&none));
    CHECK(crop.crop && !crop.horizontal_flip && tp_image_augment_active(&crop));
    CHECK(both.crop && both.horizontal_flip && !tp_image_augment_active(&plain));
    CHECK(read_fails("{\"image_preprocess\": [\"flip\", \"normalize\"]}",
                     "model.json: key 'image_preprocess': unknown step \"flip\" (crop, horizontal_flip, normalize)"));
    CHECK(read_fails("{\"image_preprocess\": [\"horizontal_flip\"]}",
                     "model.json: key 'image_preprocess': without \"normalize\" (pixels in [0, 1])"));
    CHECK(read_fails("{\"image_preprocess\": \"crop\"}", "model.json: key 'image_preprocess'"));
}

static void check_windows(int64_t height, int64_t width)
{
    tp_rng rng = tp_rng_make(5, 0, 0);
    double area_sum = 0;
    int draws = 4000, bad = 0;
    for (int i = 0; i < draws; i++) {
        tp_crop_window w = tp_random_resized_crop_window(height, width, &rng);
        double area = (double)(w.height * w.width) / (double)(height * width);
        /* each side is rounded: allow its half pixel in the area and the ratio */
        double slack_h = 0.5 / (double)w.height, slack_w = 0.5 / (double)w.width;
        double ratio = (double)w.width / (double)w.height;
        bad += !(w.top >= 0 && w.left >= 0 && w.height > 0 && w.width > 0 && w.top + w.height <= height &&
                 w.left + w.width <= width);
        bad += !(area >= 0.08 * (1 - 2 * (slack_h + slack_w)) && area <= 1.0);
        bad += !(ratio >= 0.75 * (1 - slack_h - slack_w) && ratio <= 4.0 / 3.0 * (1 + slack_h + slack_w));
        area_sum += area;
    }
    double mean = area_sum / draws;
    CHECK_MSG(bad == 0, "%lld x %lld: %d windows outside the image, the area or the ratio", (long long)height,
              (long long)width, bad);
    /* uniform in [0.08, 1]: mean 0.54, sd 0.27 per draw, 0.004 for 4000; large areas drawn with a ratio
     * the image cannot hold are drawn again, which pulls the mean down (a 12 x 16 image: 0.46) */
    CHECK_MSG(height != width || (mean > 0.48 && mean < 0.56), "%lld x %lld: mean window area %.3f",
              (long long)height, (long long)width, mean);
}

static void check_fallback(void)
{
    tp_rng rng = tp_rng_make(1, 0, 0);
    for (int i = 0; i < 20; i++) { /* every try's shorter side rounds to 2 at least: all miss */
        tp_crop_window wide = tp_random_resized_crop_window(1, 40, &rng);
        tp_crop_window tall = tp_random_resized_crop_window(40, 1, &rng);
        CHECK(wide.height == 1 && wide.width == 1 && wide.top == 0 && wide.left == 19);
        CHECK(tall.height == 1 && tall.width == 1 && tall.top == 19 && tall.left == 0);
    }
}

/* A random set of `count` images of channels x 6 x 8. */
static void make_set(tp_image_set *set, int64_t channels, int64_t count)
{
    memset(set, 0, sizeof *set);
    set->path = strdup("random images");
    set->count = count;
    set->channels = channels;
    set->height = 6;
    set->width = 8;
    set->num_labels = 1;
    set->pixels = malloc((size_t)(count * channels * 48));
    set->labels = calloc((size_t)count, sizeof *set->labels);
    tp_rng rng = tp_rng_make(9, 0, 0);
    for (int64_t i = 0; i < count * channels * 48; i++) set->pixels[i] = (uint8_t)tp_rng_below(&rng, 256);
}

/* The expected augmentation of image `index`, from the same draws: window, PIL resize, mirror. */
static void expected_image(const tp_image_set *set, int64_t index, const tp_image_augment *augment, tp_rng *rng,
                           float *chw)
{
    int64_t c = set->channels, h = set->height, w = set->width;
    const uint8_t *stored = set->pixels + index * c * h * w;
    uint8_t pixels[3 * 48];
    memcpy(pixels, stored, (size_t)(c * h * w));
    if (augment->crop) {
        tp_crop_window window = tp_random_resized_crop_window(h, w, rng);
        tp_image crop = {window.width, window.height, malloc((size_t)(window.width * window.height * 3))}, resized;
        for (int64_t y = 0; y < window.height; y++)
            for (int64_t x = 0; x < window.width; x++)
                for (int64_t k = 0; k < 3; k++)
                    crop.rgb[(y * window.width + x) * 3 + k] =
                        stored[((window.top + y) * w + window.left + x) * c + (c == 3 ? k : 0)];
        CHECK(tp_image_resize(&crop, w, h, TP_RESAMPLE_BILINEAR, &resized) == 0);
        for (int64_t i = 0; i < h * w; i++)
            for (int64_t k = 0; k < c; k++) pixels[i * c + k] = resized.rgb[i * 3 + k];
        tp_image_free(&resized);
        tp_image_free(&crop);
    }
    if (augment->horizontal_flip && tp_rng_uniform(rng) < 0.5) {
        uint8_t mirrored[3 * 48];
        for (int64_t y = 0; y < h; y++)
            for (int64_t x = 0; x < w; x++)
                for (int64_t k = 0; k < c; k++) mirrored[(y * w + x) * c + k] = pixels[(y * w + w - 1 - x) * c + k];
        memcpy(pixels, mirrored, (size_t)(c * h * w));
    }
    tp_image_set_normalize_pixels(set, pixels, chw);
}

static void check_images(int64_t channels, int processor)
{
    tp_image_set set;
    make_set(&set, channels, 200);
    set.processor = processor;
    const tp_image_augment both = {1, 1}, flip = {0, 1};
    float got[3 * 48], want[3 * 48], plain[3 * 48];
    int same = 1, flipped = 0;
    for (int64_t i = 0; i < set.count; i++) {
        tp_rng rng = tp_rng_make(3, TP_STREAM_IMAGE_AUGMENT, (uint64_t)i), again = rng;
        tp_image_set_augment(&set, i, &both, &rng, got);
        expected_image(&set, i, &both, &again, want);
        same &= !memcmp(got, want, (size_t)(channels * 48) * sizeof *got);
        rng = tp_rng_make(4, TP_STREAM_IMAGE_AUGMENT, (uint64_t)i);
        tp_image_set_augment(&set, i, &flip, &rng, got);
        tp_image_set_normalize(&set, i, plain);
        int unchanged = !memcmp(got, plain, (size_t)(channels * 48) * sizeof *got), mirrored = 1;
        for (int64_t k = 0; k < channels; k++)
            for (int64_t y = 0; y < 6; y++)
                for (int64_t x = 0; x < 8; x++)
                    mirrored &= got[(k * 6 + y) * 8 + x] == plain[(k * 6 + y) * 8 + 7 - x];
        CHECK_MSG(unchanged != mirrored, "image %lld: the flip neither kept nor mirrored it", (long long)i);
        flipped += mirrored;
    }
    CHECK_MSG(same, "%lld channels: augmented images differ from the window resized with PIL's filter",
              (long long)channels);
    /* 200 fair coins: 100 +- 7 (sd) */
    CHECK_MSG(flipped >= 65 && flipped <= 135, "%d of 200 images flipped", flipped);
    tp_image_set_free(&set);
}

int main(void)
{
    check_keys();
    check_windows(28, 28);
    check_windows(12, 16);
    check_fallback();
    check_images(3, TP_IMAGE_SET_CLIP);
    check_images(1, TP_IMAGE_SET_VIT);
    return tp_test_finish("test_image_augment");
}
