/* core/image: JPEG/PNG decoding against PIL, PIL's resize and transformers' ViT / CLIP image
 * processors, IDX reading of Fashion-MNIST against gzip + numpy, and every bad input (truncated,
 * corrupt, oversized, wrong magic, a directory, a missing file) with its message.
 *
 * References: tests/reference/make_media_fixture.py -> tests/fixtures/media/{images,idx}.safetensors,
 * computed on the real photographs and Fashion-MNIST that scripts/fetch_data.sh puts in data/media/
 * and on the synthetic files committed beside the fixtures. */
#include "core/error.h"
#include "core/fileio.h"
#include "core/image.h"
#include "core/safetensors.h"
#include "support/check.h"
#include "support/fixture.h"
#include "support/scratch.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define FIXTURES "tests/fixtures/media"
#define IMAGES "data/media/images"
#define FASHION "data/media/fashion-mnist"
/* tp reproduces PIL's 8-bit resampling exactly, so the processors' outputs differ from
 * transformers' only by float32 rounding of the rescale and normalize (measured: 0). */
#define PROCESSOR_TOLERANCE 1e-5

static const char *const photos[] = {"astronaut.png", "chelsea.png", "coffee.png", "camera.png",
                                     "horse.png", "rocket.jpg", "hubble_deep_field.jpg", "retina.jpg"};

#define fixture(file, ...) tp_fixture_tensor(file, "tests/reference/make_media_fixture.py", __VA_ARGS__)

/* sum of byte * (index + 1) mod 2^64: the fixture's position-weighted checksum. */
static uint64_t weighted_checksum(const uint8_t *data, int64_t n)
{
    uint64_t sum = 0;
    for (int64_t i = 0; i < n; i++) sum += (uint64_t)data[i] * (uint64_t)(i + 1);
    return sum;
}

static int64_t max_sum_difference(const int32_t *expected, const int64_t *actual, int64_t n)
{
    int64_t worst = 0;
    for (int64_t i = 0; i < n; i++) {
        int64_t d = llabs(actual[i] - expected[i]);
        if (d > worst) worst = d;
    }
    return worst;
}

/* The image equals the fixture's summary of PIL's pixels: shape, checksum, row and column sums. */
static void check_summary(const tp_st_file *file, const char *prefix, const tp_image *image)
{
    const int64_t *shape = fixture(file, "%s/shape", prefix)->data;
    CHECK_MSG(image->height == shape[0] && image->width == shape[1], "%s: %lldx%lld, PIL %lldx%lld", prefix,
              (long long)image->width, (long long)image->height, (long long)shape[1], (long long)shape[0]);
    if (image->height != shape[0] || image->width != shape[1]) return;
    uint64_t expected = *(const uint64_t *)fixture(file, "%s/checksum", prefix)->data;
    int64_t *rows = tp_xcalloc((size_t)image->height, sizeof(int64_t));
    int64_t *cols = tp_xcalloc((size_t)image->width, sizeof(int64_t));
    for (int64_t y = 0; y < image->height; y++)
        for (int64_t x = 0; x < image->width; x++)
            for (int c = 0; c < 3; c++) {
                rows[y] += image->rgb[(y * image->width + x) * 3 + c];
                cols[x] += image->rgb[(y * image->width + x) * 3 + c];
            }
    int64_t row_error = max_sum_difference(fixture(file, "%s/row_sums", prefix)->data, rows, image->height);
    int64_t col_error = max_sum_difference(fixture(file, "%s/col_sums", prefix)->data, cols, image->width);
    CHECK_MSG(weighted_checksum(image->rgb, image->width * image->height * 3) == expected,
              "%s: pixels differ from PIL's (max row-sum difference %lld, column-sum %lld)", prefix,
              (long long)row_error, (long long)col_error);
    free(rows);
    free(cols);
}

static void test_decode(const tp_st_file *file)
{
    static const char *const others[] = {IMAGES "/checker_bilevel.png", IMAGES "/foo3x5x4indexed.png",
                                         IMAGES "/green_palette.png",  FIXTURES "/gray.jpg",
                                         FIXTURES "/progressive.jpg",  FIXTURES "/s444.jpg",
                                         FIXTURES "/s422.jpg",         FIXTURES "/rgb16.png",
                                         FIXTURES "/gray2.png",        FIXTURES "/graya.png",
                                         FIXTURES "/adam7.png"};
    char path[256];
    for (size_t i = 0; i < sizeof photos / sizeof *photos + sizeof others / sizeof *others; i++) {
        if (i < sizeof photos / sizeof *photos)
            snprintf(path, sizeof path, "%s/%s", IMAGES, photos[i]);
        else
            snprintf(path, sizeof path, "%s", others[i - sizeof photos / sizeof *photos]);
        tp_image image;
        int status = tp_image_read(path, &image);
        CHECK_MSG(status == 0, "%s", tp_last_error());
        if (status != 0) continue;
        char prefix[300];
        snprintf(prefix, sizeof prefix, "decode/%s", strrchr(path, '/') + 1);
        check_summary(file, prefix, &image);
        tp_image_free(&image);
    }
}

static void test_resize(const tp_st_file *file)
{
    static const struct {
        const char *name, *source;
        int64_t width, height;
        tp_resample filter;
    } cases[] = {{"chelsea_h200_bilinear", "chelsea.png", 451, 200, TP_RESAMPLE_BILINEAR},
                 {"chelsea_w300_bicubic", "chelsea.png", 300, 300, TP_RESAMPLE_BICUBIC},
                 {"coffee_up_bicubic", "coffee.png", 700, 457, TP_RESAMPLE_BICUBIC},
                 {"camera_up_bilinear", "camera.png", 613, 515, TP_RESAMPLE_BILINEAR},
                 {"rocket_tiny_bicubic", "rocket.jpg", 7, 5, TP_RESAMPLE_BICUBIC}};
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char path[256], prefix[256];
        snprintf(path, sizeof path, "%s/%s", IMAGES, cases[i].source);
        snprintf(prefix, sizeof prefix, "resize/%s", cases[i].name);
        tp_image image, resized;
        if (tp_image_read(path, &image) != 0) continue; /* reported by test_decode */
        CHECK(tp_image_resize(&image, cases[i].width, cases[i].height, cases[i].filter, &resized) == 0);
        check_summary(file, prefix, &resized);
        tp_image_free(&resized);
        tp_image_free(&image);
    }
}

static void check_processor(const tp_st_file *file, const char *label, const char *name, const float *chw)
{
    const tp_st_tensor *samples = fixture(file, "%s/%s/samples", label, name);
    const tp_st_tensor *row_sums = fixture(file, "%s/%s/row_sums", label, name);
    const float *want = samples->data, *want_rows = row_sums->data;
    int64_t stride = 3 * 224 * 224 / samples->numel;
    double worst = 0.0, worst_row = 0.0;
    for (int64_t i = 0; i < samples->numel; i++) worst = fmax(worst, fabs(chw[i * stride] - want[i]));
    for (int64_t r = 0; r < row_sums->numel; r++) {
        double sum = 0.0;
        for (int64_t x = 0; x < 224; x++) sum += chw[r * 224 + x];
        worst_row = fmax(worst_row, fabs(sum - want_rows[r]));
    }
    CHECK_MSG(worst <= PROCESSOR_TOLERANCE, "%s %s: max |tp - transformers| %.3g", label, name, worst);
    /* 224 values summed in float32 by the reference: 1e-4 of rounding, an 8-bit step is 0.008 / 0.015. */
    CHECK_MSG(worst_row <= 1e-3, "%s %s: max row-sum difference %.3g", label, name, worst_row);
    if (getenv("TP_TEST_VERBOSE")) fprintf(stderr, "%s %s: max error %.3g, row sums %.3g\n", label, name, worst, worst_row);
}

static void test_processors(const tp_st_file *file)
{
    float *chw = tp_xmalloc(sizeof(float) * 3 * 224 * 224);
    for (size_t i = 0; i < sizeof photos / sizeof *photos; i++) {
        char path[256];
        snprintf(path, sizeof path, "%s/%s", IMAGES, photos[i]);
        tp_image image;
        if (tp_image_read(path, &image) != 0) continue;
        int64_t width, height;
        tp_image_processor_output_size(&tp_image_processor_clip, image.width, image.height, &width, &height);
        CHECK(width == 224 && height == 224);
        CHECK(tp_image_process(&image, &tp_image_processor_vit, chw) == 0);
        check_processor(file, "vit", photos[i], chw);
        CHECK(tp_image_process(&image, &tp_image_processor_clip, chw) == 0);
        check_processor(file, "clip", photos[i], chw);
        tp_image_free(&image);
    }
    free(chw);
}

/* transformers' center_crop: top = (H - h) // 2, left = (W - w) // 2. */
static void test_center_crop(void)
{
    uint8_t pixels[4 * 5 * 3];
    for (int i = 0; i < 4 * 5 * 3; i++) pixels[i] = (uint8_t)i;
    tp_image image = {.width = 5, .height = 4, .rgb = pixels}, crop;
    CHECK(tp_image_center_crop(&image, 2, 2, &crop) == 0);
    CHECK(crop.width == 2 && crop.height == 2);
    CHECK(crop.rgb[0] == (1 * 5 + 1) * 3 && crop.rgb[3 * 2 + 2] == (2 * 5 + 1) * 3 + 2);
    tp_image_free(&crop);
    CHECK(tp_image_center_crop(&image, 6, 2, &crop) == -1);
    CHECK(strcmp(tp_last_error(), "center crop 6x2 does not fit in a 5x4 image") == 0);
}

static void test_idx(const tp_st_file *file)
{
    static const char *const names[] = {"train-images-idx3-ubyte", "train-labels-idx1-ubyte",
                                        "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"};
    static const int64_t counts[] = {60000, 60000, 10000, 10000};
    for (int f = 0; f < 4; f++) {
        char path[256];
        snprintf(path, sizeof path, "%s/%s.gz", FASHION, names[f]);
        tp_idx idx;
        int status = tp_idx_read(path, &idx);
        CHECK_MSG(status == 0, "%s", tp_last_error());
        if (status != 0) continue;
        const tp_st_tensor *dims = fixture(file, "%s/dims", names[f]);
        CHECK(idx.ndim == dims->numel && idx.dims[0] == counts[f]);
        for (int d = 0; d < idx.ndim && d < dims->numel; d++) CHECK(idx.dims[d] == ((const int64_t *)dims->data)[d]);
        CHECK(idx.ndim == 1 || (idx.ndim == 3 && idx.dims[1] == 28 && idx.dims[2] == 28));
        int64_t sum = 0;
        for (int64_t i = 0; i < idx.count; i++) sum += idx.data[i];
        CHECK(sum == *(const int64_t *)fixture(file, "%s/sum", names[f])->data);
        CHECK(weighted_checksum(idx.data, idx.count) == *(const uint64_t *)fixture(file, "%s/checksum", names[f])->data);
        if (idx.ndim == 1) {
            const int64_t *first = fixture(file, "%s/first", names[f])->data;
            const int64_t *histogram = fixture(file, "%s/histogram", names[f])->data;
            int64_t counted[10] = {0};
            for (int64_t i = 0; i < idx.count; i++) counted[idx.data[i] < 10 ? idx.data[i] : 0]++;
            for (int k = 0; k < 10; k++) CHECK(idx.data[k] == first[k] && counted[k] == histogram[k]);
            for (int k = 0; k < 10; k++) CHECK(counted[k] == idx.count / 10); /* balanced classes */
        }
        if (f == 1) { /* the first training labels, as Fashion-MNIST's README and DATA.md state them */
            static const uint8_t first_train[10] = {9, 0, 0, 3, 0, 2, 7, 2, 5, 5};
            CHECK(memcmp(idx.data, first_train, 10) == 0);
        }
        tp_idx_free(&idx);
    }
}

/* ---- bad inputs ---- */

/* The call failed with exactly "<path>: <expected>". */
static int failed_with(int status, const char *path, const char *expected)
{
    char full[1024];
    snprintf(full, sizeof full, "%s: %s", path, expected);
    if (status == -1 && strcmp(tp_last_error(), full) == 0) return 1;
    fprintf(stderr, "  status %d\n  got:      %s\n  expected: %s\n", status, status ? tp_last_error() : "-", full);
    return 0;
}

/* The call failed and the message starts with the path. */
static int failed_naming(int status, const char *path)
{
    if (status == -1 && strncmp(tp_last_error(), path, strlen(path)) == 0 && tp_last_error()[strlen(path)] == ':')
        return 1;
    fprintf(stderr, "  status %d, message: %s\n", status, status ? tp_last_error() : "-");
    return 0;
}

static int read_image_bytes(const char *name, const void *data, size_t bytes)
{
    tp_image image;
    int status = tp_image_read(tp_scratch_write(name, data, bytes), &image);
    if (status == 0) tp_image_free(&image);
    return status;
}

/* Every prefix of a real file fails naming the file (lengths spread over header and data). */
static void check_truncations(const char *source, const char *scratch_name)
{
    size_t size = 0;
    char *data = tp_read_file(source, &size);
    CHECK_MSG(data != NULL, "%s", tp_last_error());
    if (!data) return;
    size_t lengths[] = {1, 3, 8, 20, 33, 100, 400, size / 3, size / 2, size - 2};
    for (size_t i = 0; i < sizeof lengths / sizeof *lengths; i++) {
        int status = read_image_bytes(scratch_name, data, lengths[i]);
        CHECK_MSG(failed_naming(status, tp_scratch_path(scratch_name)), "%s cut to %zu bytes", source, lengths[i]);
    }
    free(data);
}

static void test_bad_images(void)
{
    tp_image image;
    CHECK(failed_naming(tp_image_read(IMAGES "/truncated.jpg", &image), IMAGES "/truncated.jpg"));
    check_truncations(IMAGES "/rocket.jpg", "cut.jpg");
    check_truncations(FIXTURES "/progressive.jpg", "cut_progressive.jpg");
    check_truncations(IMAGES "/coffee.png", "cut.png");
    check_truncations(FIXTURES "/adam7.png", "cut_adam7.png");
    CHECK(failed_with(read_image_bytes("empty.png", "", 0), tp_scratch_path("empty.png"), "file is empty"));
    CHECK(failed_with(read_image_bytes("anim.gif", "GIF89a", 6), tp_scratch_path("anim.gif"),
                      "not a JPEG or PNG file (first bytes 47 49 46 38)"));
    CHECK(failed_with(tp_image_read(tp_scratch_dir(), &image), tp_scratch_dir(), "Is a directory"));
    CHECK(failed_with(tp_image_read(tp_scratch_path("missing.png"), &image), tp_scratch_path("missing.png"),
                      "No such file or directory"));

    /* A corrupted byte inside the compressed data: zlib's check fails (libpng's message). */
    size_t size = 0;
    uint8_t *png = (uint8_t *)tp_read_file(FIXTURES "/adam7.png", &size);
    if (!png) return;
    png[size / 2] ^= 0x40;
    CHECK(failed_with(read_image_bytes("crc.png", png, size), tp_scratch_path("crc.png"),
                      "PNG: IDAT: incorrect data check"));
    png[size / 2] ^= 0x40;
    /* A header that promises 100000 x 100000 pixels is refused before any allocation. */
    memcpy(png + 16, "\x00\x01\x86\xa0\x00\x01\x86\xa0", 8);
    uint32_t crc = 0; /* the IHDR CRC must match for libpng to reach the size */
    {
        uint32_t table[256];
        for (uint32_t n = 0; n < 256; n++) {
            uint32_t c = n;
            for (int k = 0; k < 8; k++) c = c & 1 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
            table[n] = c;
        }
        crc = 0xFFFFFFFFu;
        for (int i = 12; i < 29; i++) crc = table[(crc ^ png[i]) & 0xFF] ^ (crc >> 8);
        crc ^= 0xFFFFFFFFu;
    }
    uint8_t crc_bytes[4] = {crc >> 24, crc >> 16, crc >> 8, crc};
    memcpy(png + 29, crc_bytes, 4);
    CHECK(failed_with(read_image_bytes("huge.png", png, size), tp_scratch_path("huge.png"),
                      "PNG: image is 100000x100000 pixels, more than the 67108864 allowed"));
    free(png);

    /* The same for a JPEG: patch the frame header (SOF) of a real file to 60000 x 60000. */
    uint8_t *jpeg = (uint8_t *)tp_read_file(FIXTURES "/gray.jpg", &size);
    if (!jpeg) return;
    for (size_t i = 2; i + 9 < size; i++)
        if (jpeg[i] == 0xFF && (jpeg[i + 1] == 0xC0 || jpeg[i + 1] == 0xC2)) {
            memcpy(jpeg + i + 5, "\xea\x60\xea\x60", 4);
            break;
        }
    CHECK(failed_with(read_image_bytes("huge.jpg", jpeg, size), tp_scratch_path("huge.jpg"),
                      "image is 60000x60000 pixels, more than the 67108864 allowed"));
    free(jpeg);
}

static int read_idx_bytes(const char *name, const void *data, size_t bytes)
{
    tp_idx idx;
    int status = tp_idx_read(tp_scratch_write(name, data, bytes), &idx);
    if (status == 0) tp_idx_free(&idx);
    return status;
}

static void test_bad_idx(void)
{
    static const uint8_t good[] = {0, 0, 8, 2, 0, 0, 0, 2, 0, 0, 0, 3, 1, 2, 3, 4, 5, 6};
    tp_idx idx;
    CHECK(tp_idx_read(tp_scratch_write("good.idx", good, sizeof good), &idx) == 0);
    CHECK(idx.ndim == 2 && idx.dims[0] == 2 && idx.dims[1] == 3 && idx.count == 6 && idx.data[5] == 6);
    tp_idx_free(&idx);

    uint8_t bad[sizeof good + 1];
    memcpy(bad, good, sizeof good);
    CHECK(failed_with(read_idx_bytes("short.idx", good, 3), tp_scratch_path("short.idx"),
                      "IDX header ends at byte 3, before the 4-byte magic"));
    bad[1] = 1;
    CHECK(failed_with(read_idx_bytes("magic.idx", bad, sizeof good), tp_scratch_path("magic.idx"),
                      "not an IDX file: magic 00 01 08 02 at byte 0 (expected 00 00 08 <dimensions>)"));
    bad[1] = 0, bad[2] = 0x0D;
    CHECK(failed_with(read_idx_bytes("type.idx", bad, sizeof good), tp_scratch_path("type.idx"),
                      "IDX value type 0x0d at byte 2 is not supported (only 0x08, unsigned bytes)"));
    bad[2] = 8, bad[3] = 5;
    CHECK(failed_with(read_idx_bytes("ndim.idx", bad, sizeof good), tp_scratch_path("ndim.idx"),
                      "IDX dimension count 5 at byte 3 (1 to 4 supported)"));
    bad[3] = 2;
    CHECK(failed_with(read_idx_bytes("dims.idx", bad, 10), tp_scratch_path("dims.idx"),
                      "IDX header ends at byte 10, the 2 dimensions need 12 bytes"));
    bad[7] = 0;
    CHECK(failed_with(read_idx_bytes("zero.idx", bad, sizeof good), tp_scratch_path("zero.idx"),
                      "IDX dimension 0 (byte 4) is 0"));
    bad[7] = 2;
    CHECK(failed_with(read_idx_bytes("cut.idx", bad, sizeof good - 1), tp_scratch_path("cut.idx"),
                      "IDX data ends at byte 17 (uncompressed), the header promises 18"));
    CHECK(failed_with(read_idx_bytes("long.idx", bad, sizeof good + 1), tp_scratch_path("long.idx"),
                      "trailing data at byte 18 (uncompressed), after the 18 bytes the IDX header promises"));
    CHECK(failed_with(tp_idx_read(tp_scratch_dir(), &idx), tp_scratch_dir(), "Is a directory"));
    CHECK(failed_with(tp_idx_read(tp_scratch_path("missing.idx"), &idx), tp_scratch_path("missing.idx"),
                      "No such file or directory"));

    /* A real gzip file cut short, and one with a damaged byte in the deflate stream. */
    size_t size = 0;
    uint8_t *gz = (uint8_t *)tp_read_file(FASHION "/t10k-labels-idx1-ubyte.gz", &size);
    if (!gz) return;
    size_t lengths[] = {5, 12, 40, size / 2, size - 9, size - 1};
    for (size_t i = 0; i < sizeof lengths / sizeof *lengths; i++)
        CHECK_MSG(failed_naming(read_idx_bytes("cut.gz", gz, lengths[i]), tp_scratch_path("cut.gz")),
                  "t10k labels cut to %zu bytes", lengths[i]);
    gz[size / 2] ^= 0x10;
    CHECK(failed_naming(read_idx_bytes("flip.gz", gz, size), tp_scratch_path("flip.gz")));
    free(gz);
}

int main(void)
{
    tp_scratch_init("image");
    tp_st_file *images = tp_st_open(FIXTURES "/images.safetensors");
    tp_st_file *idx = tp_st_open(FIXTURES "/idx.safetensors");
    CHECK_MSG(images && idx, "%s", tp_last_error());
    if (!images || !idx) return tp_test_finish("test_image");
    test_decode(images);
    test_resize(images);
    test_processors(images);
    test_center_crop();
    test_idx(idx);
    test_bad_images();
    test_bad_idx();
    tp_st_close(images);
    tp_st_close(idx);
    return tp_test_finish("test_image");
}
