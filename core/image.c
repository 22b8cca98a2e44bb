#include "image.h"

#include "error.h"
#include "fileio.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <png.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <turbojpeg.h>
#include <unistd.h>
#include <zlib.h>

/* ---- decoding ---- */

static int check_pixel_count(const char *name, int64_t width, int64_t height)
{
    if (width <= 0 || height <= 0)
        return tp_fail("%s: image is %lldx%lld pixels", name, (long long)width, (long long)height);
    if (width > TP_IMAGE_MAX_PIXELS / height)
        return tp_fail("%s: image is %lldx%lld pixels, more than the %lld allowed", name, (long long)width,
                       (long long)height, (long long)TP_IMAGE_MAX_PIXELS);
    return 0;
}

static int decode_jpeg(const char *name, const uint8_t *data, size_t size, tp_image *image)
{
    tjhandle handle = tjInitDecompress();
    if (!handle) return tp_fail("%s: JPEG: %s", name, tjGetErrorStr2(NULL));
    int width = 0, height = 0, subsampling = 0, colorspace = 0, status = -1;
    if (tjDecompressHeader3(handle, data, (unsigned long)size, &width, &height, &subsampling, &colorspace) != 0)
        tp_fail("%s: JPEG: %s", name, tjGetErrorStr2(handle));
    else if (colorspace == TJCS_CMYK || colorspace == TJCS_YCCK)
        tp_fail("%s: JPEG: CMYK images are not supported", name);
    else if (check_pixel_count(name, width, height) == 0) {
        image->rgb = tp_xmalloc((size_t)width * (size_t)height * 3);
        /* Accurate integer IDCT and fancy upsampling, as PIL decodes; at most 500 progressive scans. */
        if (tjDecompress2(handle, data, (unsigned long)size, image->rgb, width, 0, height, TJPF_RGB,
                          TJFLAG_ACCURATEDCT | TJFLAG_LIMITSCANS) != 0)
            tp_fail("%s: JPEG: %s", name, tjGetErrorStr2(handle));
        else
            status = 0;
    }
    tjDestroy(handle);
    image->width = width;
    image->height = height;
    return status;
}

/* libpng reports errors by longjmp: everything the protected code changes lives here, outside the
 * frame that calls setjmp. */
typedef struct png_source {
    const uint8_t *data;
    size_t size, offset;
    char message[256];
    tp_image *image;
    png_bytep *rows;
} png_source;

static void png_on_error(png_structp png, png_const_charp message)
{
    png_source *source = png_get_error_ptr(png);
    if (message != source->message) snprintf(source->message, sizeof source->message, "%s", message);
    png_longjmp(png, 1);
}

static void png_on_warning(png_structp png, png_const_charp message)
{
    (void)png;
    (void)message; /* ancillary problems (a bad iCCP profile, ...) do not change the pixels */
}

static void png_on_read(png_structp png, png_bytep out, size_t bytes)
{
    png_source *source = png_get_io_ptr(png);
    if (bytes > source->size - source->offset) {
        snprintf(source->message, sizeof source->message, "data ends at byte %zu (%zu more bytes needed)",
                 source->size, bytes - (source->size - source->offset));
        png_error(png, source->message);
    }
    memcpy(out, source->data + source->offset, bytes);
    source->offset += bytes;
}

/* The conversions of PIL's Image.convert("RGB"): palette looked up, gray replicated, 1/2/4-bit gray
 * scaled to 0..255, 16-bit to the high byte, alpha dropped. */
static void png_request_rgb(png_structp png, int color_type, int bit_depth)
{
    if (color_type == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
    if (color_type == PNG_COLOR_TYPE_GRAY || color_type == PNG_COLOR_TYPE_GRAY_ALPHA) {
        if (bit_depth < 8) png_set_expand_gray_1_2_4_to_8(png);
        png_set_gray_to_rgb(png);
    }
    if (bit_depth == 16) png_set_strip_16(png);
    png_set_strip_alpha(png);
    png_set_interlace_handling(png);
}

static int png_decode_protected(png_structp png, png_infop info, png_source *source)
{
    if (setjmp(png_jmpbuf(png))) return -1;
    png_set_read_fn(png, source, png_on_read);
    png_read_info(png, info);
    png_uint_32 width, height;
    int bit_depth, color_type;
    png_get_IHDR(png, info, &width, &height, &bit_depth, &color_type, NULL, NULL, NULL);
    if ((int64_t)width * height > TP_IMAGE_MAX_PIXELS) {
        snprintf(source->message, sizeof source->message, "image is %ux%u pixels, more than the %lld allowed",
                 (unsigned)width, (unsigned)height, (long long)TP_IMAGE_MAX_PIXELS);
        return -1;
    }
    png_request_rgb(png, color_type, bit_depth);
    png_read_update_info(png, info);
    if (png_get_rowbytes(png, info) != (size_t)width * 3) {
        snprintf(source->message, sizeof source->message, "color type %d, bit depth %d did not convert to RGB",
                 color_type, bit_depth);
        return -1;
    }
    tp_image *image = source->image;
    image->width = width;
    image->height = height;
    image->rgb = tp_xmalloc((size_t)width * height * 3);
    source->rows = tp_xmalloc(sizeof(png_bytep) * height);
    for (png_uint_32 y = 0; y < height; y++) source->rows[y] = image->rgb + (size_t)y * width * 3;
    png_read_image(png, source->rows);
    png_read_end(png, NULL);
    return 0;
}

static int decode_png(const char *name, const uint8_t *data, size_t size, tp_image *image)
{
    png_source source = {.data = data, .size = size, .image = image};
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &source, png_on_error, png_on_warning);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    int status = info ? png_decode_protected(png, info, &source) : -1;
    if (!info) snprintf(source.message, sizeof source.message, "out of memory");
    png_destroy_read_struct(&png, &info, NULL);
    free(source.rows);
    return status == 0 ? 0 : tp_fail("%s: PNG: %s", name, source.message);
}

int tp_image_decode(const char *name, const uint8_t *data, size_t size, tp_image *image)
{
    static const uint8_t png_signature[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
    memset(image, 0, sizeof *image);
    int status;
    if (size == 0)
        status = tp_fail("%s: file is empty", name);
    else if (size >= 3 && data[0] == 0xFF && data[1] == 0xD8 && data[2] == 0xFF)
        status = decode_jpeg(name, data, size, image);
    else if (size >= 8 && memcmp(data, png_signature, 8) == 0)
        status = decode_png(name, data, size, image);
    else {
        uint8_t head[4] = {0};
        memcpy(head, data, size < 4 ? size : 4);
        status = tp_fail("%s: not a JPEG or PNG file (first bytes %02x %02x %02x %02x)", name, head[0], head[1],
                         head[2], head[3]);
    }
    if (status != 0) tp_image_free(image);
    return status;
}

int tp_image_read(const char *path, tp_image *image)
{
    memset(image, 0, sizeof *image);
    size_t size = 0;
    char *data = tp_read_file(path, &size);
    if (!data) return -1;
    int status = tp_image_decode(path, (const uint8_t *)data, size, image);
    free(data);
    return status;
}

void tp_image_free(tp_image *image)
{
    free(image->rgb);
    memset(image, 0, sizeof *image);
}

/* ---- PIL's resampling (Pillow's libImaging/Resample.c) ---- */

#define RESAMPLE_PRECISION_BITS 22 /* 32 - 8 - 2: 8 bits of value, 2 for negative lobes and overshoot */

static double bilinear_filter(double x)
{
    x = fabs(x);
    return x < 1.0 ? 1.0 - x : 0.0;
}

static double bicubic_filter(double x)
{
    const double a = -0.5;
    x = fabs(x);
    if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
    if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * a;
    return 0.0;
}

/* Per output position: the first input index, the number of taps and their fixed-point weights. */
typedef struct resample_plan {
    int64_t taps;      /* weights per output (the maximum count) */
    int64_t *first;    /* [out] */
    int64_t *count;    /* [out] */
    int32_t *weights;  /* [out][taps] */
} resample_plan;

static resample_plan plan_resample(int64_t in_size, int64_t out_size, tp_resample filter)
{
    double (*kernel)(double) = filter == TP_RESAMPLE_BICUBIC ? bicubic_filter : bilinear_filter;
    double kernel_support = filter == TP_RESAMPLE_BICUBIC ? 2.0 : 1.0;
    /* PIL holds the source box in float. */
    double scale = (double)(float)in_size / (double)out_size;
    double filter_scale = scale < 1.0 ? 1.0 : scale;
    double support = kernel_support * filter_scale;
    resample_plan plan = {.taps = (int64_t)ceil(support) * 2 + 1};
    plan.first = tp_xmalloc(sizeof(int64_t) * out_size);
    plan.count = tp_xmalloc(sizeof(int64_t) * out_size);
    plan.weights = tp_xcalloc((size_t)(out_size * plan.taps), sizeof(int32_t));
    double *k = tp_xmalloc(sizeof(double) * plan.taps);
    for (int64_t xx = 0; xx < out_size; xx++) {
        double center = (xx + 0.5) * scale;
        int64_t xmin = (int64_t)(center - support + 0.5), xmax = (int64_t)(center + support + 0.5);
        if (xmin < 0) xmin = 0;
        if (xmax > in_size) xmax = in_size;
        xmax -= xmin;
        double total = 0.0;
        for (int64_t x = 0; x < xmax; x++) {
            k[x] = kernel((x + xmin - center + 0.5) / filter_scale);
            total += k[x];
        }
        int32_t *w = plan.weights + xx * plan.taps;
        for (int64_t x = 0; x < xmax; x++) {
            double normalised = total != 0.0 ? k[x] / total : k[x];
            double fixed = normalised * (1 << RESAMPLE_PRECISION_BITS);
            w[x] = (int32_t)(normalised < 0 ? -0.5 + fixed : 0.5 + fixed);
        }
        plan.first[xx] = xmin;
        plan.count[xx] = xmax;
    }
    free(k);
    return plan;
}

static void free_plan(resample_plan *plan)
{
    free(plan->first);
    free(plan->count);
    free(plan->weights);
}

static uint8_t clip8(int64_t sum)
{
    int64_t value = sum >> RESAMPLE_PRECISION_BITS; /* arithmetic shift: PIL's rounding toward -inf */
    return value < 0 ? 0 : value > 255 ? 255 : (uint8_t)value;
}

/* Resamples along one axis: out has `lines` lines of out_size pixels; input pixel i of line l is at
 * in + l*in_line_stride + i*in_pixel_stride (bytes, 3 channels each), output likewise. */
static void resample_axis(const resample_plan *plan, int64_t out_size, int64_t lines, const uint8_t *in,
                          int64_t in_line_stride, int64_t in_pixel_stride, uint8_t *out, int64_t out_line_stride,
                          int64_t out_pixel_stride)
{
#pragma omp parallel for schedule(static) if (lines * out_size > 65536)
    for (int64_t line = 0; line < lines; line++) {
        for (int64_t o = 0; o < out_size; o++) {
            const int32_t *w = plan->weights + o * plan->taps;
            const uint8_t *src = in + line * in_line_stride + plan->first[o] * in_pixel_stride;
            int64_t sums[3] = {1 << (RESAMPLE_PRECISION_BITS - 1), 1 << (RESAMPLE_PRECISION_BITS - 1),
                               1 << (RESAMPLE_PRECISION_BITS - 1)};
            for (int64_t t = 0; t < plan->count[o]; t++)
                for (int c = 0; c < 3; c++) sums[c] += (int64_t)src[t * in_pixel_stride + c] * w[t];
            uint8_t *dst = out + line * out_line_stride + o * out_pixel_stride;
            for (int c = 0; c < 3; c++) dst[c] = clip8(sums[c]);
        }
    }
}

int tp_image_resize(const tp_image *in, int64_t width, int64_t height, tp_resample filter, tp_image *out)
{
    memset(out, 0, sizeof *out);
    if (check_pixel_count("resize", width, height) != 0) return -1;
    out->width = width;
    out->height = height;
    out->rgb = tp_xmalloc((size_t)(width * height * 3));
    resample_plan vertical = plan_resample(in->height, height, filter);
    /* The horizontal pass only covers the input rows the vertical pass reads. */
    int64_t first_row = vertical.first[0];
    int64_t end_row = vertical.first[height - 1] + vertical.count[height - 1];
    const uint8_t *rows = in->rgb + first_row * in->width * 3;
    uint8_t *temp = NULL;
    int64_t row_width = in->width;
    if (width != in->width) {
        resample_plan horizontal = plan_resample(in->width, width, filter);
        temp = tp_xmalloc((size_t)((end_row - first_row) * width * 3));
        resample_axis(&horizontal, width, end_row - first_row, rows, in->width * 3, 3, temp, width * 3, 3);
        free_plan(&horizontal);
        rows = temp;
        row_width = width;
    }
    if (height != in->height) {
        for (int64_t y = 0; y < height; y++) vertical.first[y] -= first_row;
        /* Columns are the lines; a column's pixels are a row apart. */
        resample_axis(&vertical, height, width, rows, 3, row_width * 3, out->rgb, 3, width * 3);
    } else {
        memcpy(out->rgb, rows, (size_t)(width * height * 3));
    }
    free_plan(&vertical);
    free(temp);
    return 0;
}

int tp_image_center_crop(const tp_image *in, int64_t width, int64_t height, tp_image *out)
{
    memset(out, 0, sizeof *out);
    if (width <= 0 || height <= 0 || width > in->width || height > in->height)
        return tp_fail("center crop %lldx%lld does not fit in a %lldx%lld image", (long long)width, (long long)height,
                       (long long)in->width, (long long)in->height);
    int64_t top = (in->height - height) / 2, left = (in->width - width) / 2;
    out->width = width;
    out->height = height;
    out->rgb = tp_xmalloc((size_t)(width * height * 3));
    for (int64_t y = 0; y < height; y++)
        memcpy(out->rgb + y * width * 3, in->rgb + ((top + y) * in->width + left) * 3, (size_t)(width * 3));
    return 0;
}

void tp_image_normalize_chw(const tp_image *in, const float mean[3], const float std[3], float *chw)
{
    int64_t plane = in->width * in->height;
    for (int64_t i = 0; i < plane; i++)
        for (int c = 0; c < 3; c++) {
            float rescaled = (float)(in->rgb[i * 3 + c] * (1.0 / 255.0));
            chw[c * plane + i] = (rescaled - mean[c]) / std[c];
        }
}

/* ---- the published processors ---- */

const tp_image_processor tp_image_processor_vit = {
    .resize_width = 224, .resize_height = 224, .resample = TP_RESAMPLE_BILINEAR,
    .mean = {0.5f, 0.5f, 0.5f}, .std = {0.5f, 0.5f, 0.5f},
};

const tp_image_processor tp_image_processor_clip = {
    .shortest_edge = 224, .resample = TP_RESAMPLE_BICUBIC, .crop_width = 224, .crop_height = 224,
    .mean = {0.48145466f, 0.4578275f, 0.40821073f}, .std = {0.26862954f, 0.26130258f, 0.27577711f},
};

static void resized_size(const tp_image_processor *processor, int64_t width, int64_t height, int64_t *out_width,
                         int64_t *out_height)
{
    if (processor->shortest_edge <= 0) {
        *out_width = processor->resize_width;
        *out_height = processor->resize_height;
        return;
    }
    /* transformers: int(edge * long / short), a true division rounded down. */
    int64_t edge = processor->shortest_edge;
    int64_t shorter = width <= height ? width : height, longer = width <= height ? height : width;
    int64_t scaled = (int64_t)((double)(edge * longer) / (double)shorter);
    *out_width = width <= height ? edge : scaled;
    *out_height = width <= height ? scaled : edge;
}

void tp_image_processor_output_size(const tp_image_processor *processor, int64_t width, int64_t height,
                                    int64_t *out_width, int64_t *out_height)
{
    resized_size(processor, width, height, out_width, out_height);
    if (processor->crop_width > 0) *out_width = processor->crop_width;
    if (processor->crop_height > 0) *out_height = processor->crop_height;
}

int tp_image_resize_crop(const tp_image *in, const tp_image_processor *processor, tp_image *out)
{
    int64_t width, height;
    resized_size(processor, in->width, in->height, &width, &height);
    tp_image resized;
    if (tp_image_resize(in, width, height, processor->resample, &resized) != 0) return -1;
    if (processor->crop_width <= 0 && processor->crop_height <= 0) {
        *out = resized;
        return 0;
    }
    int64_t crop_width = processor->crop_width > 0 ? processor->crop_width : width;
    int64_t crop_height = processor->crop_height > 0 ? processor->crop_height : height;
    int status = tp_image_center_crop(&resized, crop_width, crop_height, out);
    tp_image_free(&resized);
    return status;
}

int tp_image_process(const tp_image *in, const tp_image_processor *processor, float *chw)
{
    tp_image final;
    if (tp_image_resize_crop(in, processor, &final) != 0) return -1;
    tp_image_normalize_chw(&final, processor->mean, processor->std, chw);
    tp_image_free(&final);
    return 0;
}

/* ---- IDX ---- */

/* Reads up to `bytes` from the gzip stream; returns the count read (short at the end of the
 * data) or -1 with an error naming the path.  (No offset: zlib decompresses ahead of the reads.) */
static int64_t gz_read_full(const char *path, gzFile gz, uint8_t *out, int64_t bytes)
{
    int64_t done = 0;
    while (done < bytes) {
        int64_t chunk = bytes - done < (1 << 20) ? bytes - done : (1 << 20);
        int got = gzread(gz, out + done, (unsigned)chunk);
        int errnum = Z_OK;
        const char *message = gzerror(gz, &errnum);
        if (got < 0 || (errnum != Z_OK && errnum != Z_STREAM_END)) {
            /* zlib prefixes its message with "<fd:N>: ", the name gzdopen gives the stream */
            const char *reason = strstr(message, ": ");
            tp_fail("%s: gzip: %s", path, errnum == Z_ERRNO ? strerror(errno) : reason ? reason + 2 : message);
            return -1;
        }
        done += got;
        if (got < chunk) break;
    }
    return done;
}

static uint32_t read_be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

static int read_idx_header(const char *path, gzFile gz, tp_idx *idx)
{
    uint8_t header[4 + 4 * TP_IDX_MAX_DIMS];
    int64_t got = gz_read_full(path, gz, header, 4);
    if (got < 0) return -1;
    if (got < 4) return tp_fail("%s: IDX header ends at byte %lld, before the 4-byte magic", path, (long long)got);
    if (header[0] != 0 || header[1] != 0)
        return tp_fail("%s: not an IDX file: magic %02x %02x %02x %02x at byte 0 (expected 00 00 08 <dimensions>)",
                       path, header[0], header[1], header[2], header[3]);
    if (header[2] != 0x08)
        return tp_fail("%s: IDX value type 0x%02x at byte 2 is not supported (only 0x08, unsigned bytes)", path,
                       header[2]);
    idx->ndim = header[3];
    if (idx->ndim < 1 || idx->ndim > TP_IDX_MAX_DIMS)
        return tp_fail("%s: IDX dimension count %d at byte 3 (1 to %d supported)", path, idx->ndim, TP_IDX_MAX_DIMS);
    int64_t dims_bytes = 4 * (int64_t)idx->ndim;
    got = gz_read_full(path, gz, header + 4, dims_bytes);
    if (got < 0) return -1;
    if (got < dims_bytes)
        return tp_fail("%s: IDX header ends at byte %lld, the %d dimensions need %lld bytes", path,
                       (long long)(4 + got), idx->ndim, (long long)(4 + dims_bytes));
    idx->count = 1;
    for (int d = 0; d < idx->ndim; d++) {
        idx->dims[d] = read_be32(header + 4 + 4 * d);
        if (idx->dims[d] == 0) return tp_fail("%s: IDX dimension %d (byte %d) is 0", path, d, 4 + 4 * d);
        if (idx->count > INT64_MAX / idx->dims[d])
            return tp_fail("%s: IDX dimensions multiply to more than 2^63 values", path);
        idx->count *= idx->dims[d];
    }
    return 0;
}

/* The payload grows with the data actually read: a header cannot make tp allocate memory the
 * file does not fill. */
static int read_idx_payload(const char *path, gzFile gz, tp_idx *idx)
{
    int64_t header_bytes = 4 + 4 * (int64_t)idx->ndim, done = 0, capacity = 0;
    while (done < idx->count) {
        int64_t want = idx->count - done < (1 << 24) ? idx->count - done : (1 << 24);
        if (done + want > capacity) {
            capacity = done + want > 2 * capacity ? done + want : 2 * capacity;
            if (capacity > idx->count) capacity = idx->count;
            idx->data = tp_xrealloc(idx->data, (size_t)capacity);
        }
        int64_t got = gz_read_full(path, gz, idx->data + done, want);
        if (got < 0) return -1;
        done += got;
        if (got < want)
            return tp_fail("%s: IDX data ends at byte %lld (uncompressed), the header promises %lld", path,
                           (long long)(header_bytes + done), (long long)(header_bytes + idx->count));
    }
    uint8_t extra;
    int64_t got = gz_read_full(path, gz, &extra, 1);
    if (got < 0) return -1;
    if (got > 0)
        return tp_fail("%s: trailing data at byte %lld (uncompressed), after the %lld bytes the IDX header promises",
                       path, (long long)(header_bytes + done), (long long)(header_bytes + idx->count));
    return 0;
}

int tp_idx_read(const char *path, tp_idx *idx)
{
    memset(idx, 0, sizeof *idx);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return tp_fail("%s: %s", path, strerror(errno));
    /* zlib would read a directory as an empty stream. */
    struct stat st;
    int status = 0;
    if (fstat(fd, &st) != 0)
        status = tp_fail("%s: %s", path, strerror(errno));
    else if (!S_ISREG(st.st_mode))
        status = tp_fail("%s: %s", path, S_ISDIR(st.st_mode) ? strerror(EISDIR) : "not a regular file");
    if (status != 0) {
        close(fd);
        return status;
    }
    gzFile gz = gzdopen(fd, "rb");
    if (!gz) {
        close(fd);
        return tp_fail("%s: gzip: cannot open the stream", path);
    }
    gzbuffer(gz, 1 << 17);
    status = read_idx_header(path, gz, idx) == 0 && read_idx_payload(path, gz, idx) == 0 ? 0 : -1;
    gzclose(gz);
    if (status != 0) tp_idx_free(idx);
    return status;
}

void tp_idx_free(tp_idx *idx)
{
    free(idx->data);
    memset(idx, 0, sizeof *idx);
}
