/* libFuzzer harness for core/image's decoders: reads the input as an image file (JPEG or PNG by
 * its first bytes).  Crashes, sanitizer reports and leaks are the failures; it also traps when a
 * decode that succeeds hands out an image outside the promised bounds, when a failure's message
 * does not start with the file's path, and when the ViT processor fails on a decoded image.
 *
 *   clang -std=gnu11 -g -O1 -fsanitize=fuzzer,address,undefined -I. core/image.c core/fileio.c \
 *         core/error.c tests/fuzz/fuzz_image.c -lturbojpeg -lpng16 -lz -lm -o fuzz_image
 *   ./fuzz_image -max_total_time=120 tests/fuzz/corpus/image */
#include "tests/fuzz/memfile.h" /* first: it defines _GNU_SOURCE */

#include "core/error.h"
#include "core/image.h"

#include <math.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fuzz_memfile_write(data, size);
    tp_image image;
    if (tp_image_read(path, &image) != 0) {
        fuzz_check(strncmp(tp_last_error(), path, strlen(path)) == 0 && image.rgb == NULL);
        return 0;
    }
    fuzz_check(image.width > 0 && image.height > 0 && image.rgb != NULL);
    fuzz_check(image.width <= TP_IMAGE_MAX_PIXELS / image.height);
    volatile uint8_t last = image.rgb[image.width * image.height * 3 - 1]; /* ASan: the buffer is whole */
    (void)last;
    if (image.width * image.height <= 1 << 16) { /* the processors on small images only: speed */
        static float chw[3 * 224 * 224];
        fuzz_check(tp_image_process(&image, &tp_image_processor_vit, chw) == 0);
        for (int i = 0; i < 3 * 224 * 224; i++) fuzz_check(fabsf(chw[i]) <= 1.0f);
    }
    tp_image_free(&image);
    return 0;
}
