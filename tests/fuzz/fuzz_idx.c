/* libFuzzer harness for core/image's IDX reader: reads the input as an IDX file, gzip-compressed
 * or plain.  Crashes, sanitizer reports and leaks are the failures; it also traps when a read that
 * succeeds hands out dimensions that do not multiply to the value count, and when a failure's
 * message does not start with the file's path.  An input that starts with the magic of the vit
 * processor's pre-decoded image files ("TPIMAGES", core/preprocess_vit.h) is also read as one, for
 * 1 x 2 x 3 labelled images (vit) and 3 x 2 x 3 image-text pairs (clip, vilt): a read that succeeds
 * must hand out labels below its class count, whole pixel buffers and (clip, vilt) texts inside the
 * token ids and below the vocabulary.
 *
 *   clang -std=gnu11 -g -O1 -fsanitize=fuzzer,address,undefined -I. core/image.c core/preprocess_vit.c \
 *         core/image_augment.c core/rng.c core/config.c core/fileio.c core/error.c tests/fuzz/fuzz_idx.c \
 *         -lturbojpeg -lpng16 -lz -lcjson -lm -o fuzz_idx
 *   ./fuzz_idx -max_total_time=120 tests/fuzz/corpus/idx */
#include "tests/fuzz/memfile.h" /* first: it defines _GNU_SOURCE */

#include "core/error.h"
#include "core/image.h"
#include "core/preprocess_vit.h"

#include <string.h>

/* The input as a pre-decoded image file (only such inputs: a list would open the paths it names). */
static void read_predecoded_as(const char *path, const tp_image_set_options *options)
{
    tp_image_set set;
    if (tp_image_set_read(path, options, &set) != 0) {
        fuzz_check(strncmp(tp_last_error(), path, strlen(path)) == 0);
        return;
    }
    fuzz_check(set.count > 0 && set.num_labels > 0);
    for (int64_t i = 0; i < set.count; i++) fuzz_check(set.labels[i] >= 0 && set.labels[i] < set.num_labels);
    volatile uint8_t last = set.pixels[set.count * 6 * options->channels - 1]; /* ASan: the buffer is whole */
    (void)last;
    const tp_id_lists *texts = &set.texts; /* clip, vilt: every text within the ids and the vocabulary */
    fuzz_check(!tp_image_set_has_texts(options->processor) || texts->count == set.count);
    for (int64_t i = 0; i < texts->count; i++) {
        fuzz_check(texts->offsets[i] < texts->offsets[i + 1] && texts->offsets[i + 1] <= texts->token_count);
        for (int64_t t = texts->offsets[i]; t < texts->offsets[i + 1]; t++)
            fuzz_check(texts->ids[t] >= 0 && texts->ids[t] < set.vocab_size);
    }
    tp_image_set_free(&set);
}

/* As labelled 1 x 2 x 3 images (vit) and as image-text pairs of 3 x 2 x 3 images (clip, vilt). */
static void read_predecoded(const char *path, const uint8_t *data, size_t size)
{
    if (size < 8 || memcmp(data, "TPIMAGES", 8)) return;
    tp_image_set_options vit = {.channels = 1, .height = 2, .width = 3};
    tp_image_set_options clip = {.channels = 3, .height = 2, .width = 3, .processor = TP_IMAGE_SET_CLIP};
    read_predecoded_as(path, &vit);
    tp_image_set_options vilt = clip;
    vilt.processor = TP_IMAGE_SET_VILT;
    read_predecoded_as(path, &clip);
    read_predecoded_as(path, &vilt);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fuzz_memfile_write(data, size);
    read_predecoded(path, data, size);
    tp_idx idx;
    if (tp_idx_read(path, &idx) != 0) {
        fuzz_check(strncmp(tp_last_error(), path, strlen(path)) == 0 && idx.data == NULL);
        return 0;
    }
    fuzz_check(idx.ndim >= 1 && idx.ndim <= TP_IDX_MAX_DIMS && idx.data != NULL);
    int64_t count = 1;
    for (int d = 0; d < idx.ndim; d++) {
        fuzz_check(idx.dims[d] > 0);
        count *= idx.dims[d];
    }
    fuzz_check(count == idx.count);
    volatile uint8_t last = idx.data[idx.count - 1]; /* ASan: the buffer is whole */
    (void)last;
    tp_idx_free(&idx);
    return 0;
}
