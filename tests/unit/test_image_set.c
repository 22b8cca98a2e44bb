/* The vit data processor's reader (core/preprocess_vit.h): IDX pairs with their bytes as written
 * here, label<TAB>path lists of the committed media images (with a header, resized, gray), the
 * normalization, and every bad input: a truncated JPEG, a missing file, a bad label, a label
 * beyond the classes, a malformed line -- each refused naming the list and line (and the image
 * and the decoder's reason), or with skip_bad_images skipped and counted. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/fileio.h"
#include "core/preprocess_vit.h"
#include "support/check.h"
#include "support/image_sets.h"
#include "support/scratch.h"

#define MEDIA "tests/fixtures/media"

/* 3 images of 2 x 3 gray bytes and their labels, plain IDX, MNIST's names. */
static const char *write_idx_pair(void)
{
    static const unsigned char images[] = {0, 0, 8, 3, 0, 0, 0, 3, 0, 0, 0, 2, 0, 0, 0, 3,
                                           0, 255, 10, 20, 30, 40, 1, 2, 3, 4, 5, 6, 9, 8, 7, 6, 5, 4};
    static const unsigned char labels[] = {0, 0, 8, 1, 0, 0, 0, 3, 4, 0, 2};
    tp_scratch_write("t-labels-idx1-ubyte", labels, sizeof labels);
    return tp_scratch_write("t-images-idx3-ubyte", images, sizeof images);
}

static void check_idx(void)
{
    const char *path = write_idx_pair();
    tp_image_set set;
    tp_image_set_options gray = {.channels = 1, .height = 2, .width = 3};
    CHECK_MSG(tp_image_set_read(path, &gray, &set) == 0, "%s", tp_last_error());
    CHECK(set.count == 3 && set.num_labels == 5 && set.skipped == 0);
    CHECK(set.labels[0] == 4 && set.labels[1] == 0 && set.labels[2] == 2);
    CHECK(set.pixels[1] == 255 && set.pixels[6] == 1 && set.pixels[17] == 4);
    float chw[6];
    tp_image_set_normalize(&set, 0, chw);
    CHECK(chw[0] == -1.0f && chw[1] == 1.0f);
    tp_image_set_free(&set);

    tp_image_set_options rgb = {.channels = 3, .height = 2, .width = 3, .num_labels = 10};
    CHECK_MSG(tp_image_set_read(path, &rgb, &set) == 0, "%s", tp_last_error());
    CHECK(set.num_labels == 10 && set.pixels[3] == 255 && set.pixels[4] == 255 && set.pixels[5] == 255);
    tp_image_set_free(&set);

    tp_image_set_options few = {.channels = 1, .height = 2, .width = 3, .num_labels = 4};
    CHECK(tp_image_set_fails_with(path, &few, "t-labels-idx1-ubyte: label 4 of image 0 is not below the 4 classes"));
    const char *unnamed = tp_scratch_write("images.idx", "\0\0\x08\x03", 4);
    CHECK(tp_image_set_fails_with(unnamed, &gray, "images.idx: an IDX images file whose name lacks '-images-idx3-'"));
}

/* A list of the media images; bad_line replaces line 3 when given. */
static const char *write_list(const char *name, const char *bad_line)
{
    char text[2048];
    snprintf(text, sizeof text, "path\tlabel\n" MEDIA "/s444.jpg\t1\n%s\n" MEDIA "/rgb16.png\t0\n" MEDIA
             "/gray.jpg\t2\n", bad_line ? bad_line : MEDIA "/progressive.jpg\t1");
    return tp_scratch_write(name, text, strlen(text));
}

static void check_list(void)
{
    tp_image_set set;
    tp_image_set_options options = {.channels = 3, .height = 12, .width = 10};
    CHECK_MSG(tp_image_set_read(write_list("good.tsv", NULL), &options, &set) == 0, "%s", tp_last_error());
    CHECK(set.count == 4 && set.num_labels == 3 && set.labels[1] == 1 && set.labels[2] == 0);
    CHECK(set.height == 12 && set.width == 10 && set.channels == 3);
    int64_t differing = 0; /* the gray JPEG stays gray through the resize: R = G = B */
    for (int64_t p = 0; p < 12 * 10; p++)
        differing += set.pixels[3 * 120 * 3 + 3 * p] != set.pixels[3 * 120 * 3 + 3 * p + 1];
    CHECK(differing == 0);
    tp_image_set_free(&set);

    /* A truncated JPEG: its first 600 bytes. */
    size_t bytes = 0;
    char *jpeg = tp_read_file(MEDIA "/s444.jpg", &bytes);
    const char *cut = tp_scratch_write("cut.jpg", jpeg, bytes > 600 ? 600 : bytes / 2);
    free(jpeg);
    char line[600];
    snprintf(line, sizeof line, "%s\t1", cut);
    const char *bad = write_list("bad.tsv", line);
    char message[700];
    snprintf(message, sizeof message, "bad.tsv: line 3: %s: JPEG: ", cut);
    CHECK(tp_image_set_fails_with(bad, &options, message));
    options.skip_bad_images = 1;
    CHECK_MSG(tp_image_set_read(bad, &options, &set) == 0, "%s", tp_last_error());
    CHECK(set.count == 3 && set.skipped == 1 && set.labels[1] == 0);
    tp_image_set_free(&set);
    options.skip_bad_images = 0;

    CHECK(tp_image_set_fails_with(write_list("missing.tsv", "no/such.png\t0"), &options,
                                  "missing.tsv: line 3: no/such.png: No such file or directory"));
    CHECK(tp_image_set_fails_with(write_list("label.tsv", MEDIA "/gray.jpg\tcat"), &options,
                                  "label.tsv: line 3: label 'cat' is not a class id"));
    CHECK(tp_image_set_fails_with(write_list("columns.tsv", MEDIA "/gray.jpg"), &options,
                                  "columns.tsv: line 3: expected 2 tab-separated columns (label, path)"));
    options.num_labels = 2;
    CHECK(tp_image_set_fails_with(write_list("classes.tsv", MEDIA "/gray.jpg\t2"), &options,
                                  "classes.tsv: line 3: label 2 is not below the 2 classes"));
    /* Skipping covers images, not malformed lines. */
    options.skip_bad_images = 1;
    CHECK(tp_image_set_fails_with(write_list("label2.tsv", MEDIA "/gray.jpg\t-1"), &options, "line 3: label '-1'"));

    tp_image_set_options gray = {.channels = 1, .height = 8, .width = 8};
    CHECK_MSG(tp_image_set_read(write_list("gray.tsv", NULL), &gray, &set) == 0, "%s", tp_last_error());
    CHECK(set.count == 4 && set.channels == 1);
    tp_image_set_free(&set);
    tp_image_set_options four = {.channels = 4, .height = 8, .width = 8};
    CHECK(
        tp_image_set_fails_with(write_list("four.tsv", NULL), &four, "images have 1 or 3 channels, the model wants 4"));
}

/* A uint64 into bytes at offset, little-endian. */
static void put_u64(unsigned char *bytes, size_t offset, uint64_t value)
{
    for (int i = 0; i < 8; i++) bytes[offset + (size_t)i] = (unsigned char)(value >> (8 * i));
}

/* The layout of preprocess_vit.h, built here byte by byte: 2 images of 1 x 2 x 3, 5 classes. */
static size_t expected_predecoded(unsigned char *bytes, const tp_image_set *set)
{
    memset(bytes, 0, 256);
    memcpy(bytes, "TPIMAGES", 8);
    bytes[8] = 1, bytes[12] = 1;
    const uint64_t fields[] = {2, 1, 2, 3, 5, 128, 192, 204};
    for (int i = 0; i < 8; i++) put_u64(bytes, 16 + 8 * (size_t)i, fields[i]);
    for (int i = 0; i < 2; i++) memcpy(bytes + 128 + 4 * i, &set->labels[i], 4); /* little-endian host */
    memcpy(bytes + 192, set->pixels, 12);
    return 204;
}

/* Pre-decoded files: written in the documented layout, read back equal, and every field that
 * does not fit the file or the model refused naming the file and the byte. */
static void check_predecoded(void)
{
    tp_image_set_options gray = {.channels = 1, .height = 2, .width = 3};
    tp_image_set set, back;
    CHECK_MSG(tp_image_set_read(write_idx_pair(), &gray, &set) == 0, "%s", tp_last_error());
    set.count = 2; /* the first two images */
    const char *path = tp_scratch_path("set.tpimg");
    CHECK_MSG(tp_image_set_write(&set, path) == 0, "%s", tp_last_error());
    unsigned char expected[256];
    size_t size = expected_predecoded(expected, &set);
    CHECK(tp_scratch_file_equals(path, expected, size));
    CHECK_MSG(tp_image_set_read(path, &gray, &back) == 0, "%s", tp_last_error());
    CHECK(back.count == 2 && back.num_labels == 5 && back.labels[0] == 4 && back.labels[1] == 0);
    CHECK(!memcmp(back.pixels, set.pixels, 12));
    tp_image_set_free(&back);

    tp_image_set_options rgb = {.channels = 3, .height = 2, .width = 3};
    CHECK(tp_image_set_fails_with(
        path, &rgb, "set.tpimg: images of 1 x 2 x 3 (channels x height x width), the model takes 3 x 2 x 3"));
    gray.num_labels = 4;
    CHECK(tp_image_set_fails_with(path, &gray, "set.tpimg: label 4 of image 0 (byte 128) is not below the 4 classes"));
    gray.num_labels = 0;
    CHECK(tp_image_set_fails_with(tp_scratch_write("short.tpimg", expected, 100), &gray,
                                  "ends at byte 100, its header needs 128"));
    CHECK(tp_image_set_fails_with(tp_scratch_write("cut.tpimg", expected, 203), &gray,
                                  "cut.tpimg: the file has 203 bytes"));
    unsigned char bad[256];
    memcpy(bad, expected, size);
    bad[8] = 3;
    CHECK(tp_image_set_fails_with(tp_scratch_write("version.tpimg", bad, size), &gray,
                                  "version 3 at byte 8 is not supported"));
    memcpy(bad, expected, size);
    put_u64(bad, 24, 4);
    CHECK(tp_image_set_fails_with(tp_scratch_write("channels.tpimg", bad, size), &gray,
                                  "channels 4 at byte 24 is outside [1, 3]"));
    memcpy(bad, expected, size);
    put_u64(bad, 16, 1u << 30);
    CHECK(tp_image_set_fails_with(tp_scratch_write("count.tpimg", bad, size), &gray,
                                  "image count 1073741824 at byte 16"));
    memcpy(bad, expected, size);
    put_u64(bad, 64, 128);
    CHECK(tp_image_set_fails_with(tp_scratch_write("pixels.tpimg", bad, size), &gray, "pixels_pos 128 at byte 64"));
    set.count = 3;
    tp_image_set_free(&set);
}

int main(void)
{
    tp_scratch_init("image_set");
    check_idx();
    check_list();
    check_predecoded();
    return tp_test_finish("test_image_set");
}
