/* libFuzzer harness for the safetensors reader and writer: every input either is refused with a
 * message naming the file, or opens into tensors that tile the data section exactly, read back
 * in bounds, and survive a rewrite by tp's writer unchanged.
 * Build and run with tests/fuzz/run.sh safetensors <seconds>. */
#define _GNU_SOURCE
#include "core/error.h"
#include "core/safetensors.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* The input goes into an in-memory file reopened through /proc, so the public path-based API is
 * exercised as is (open, fstat, mmap) without touching the disk. */
static int memory_fd = -1;
static char memory_path[64];

static void write_input(const uint8_t *data, size_t size)
{
    if (memory_fd < 0) {
        memory_fd = memfd_create("fuzz_safetensors", 0);
        if (memory_fd < 0) abort();
        snprintf(memory_path, sizeof memory_path, "/proc/self/fd/%d", memory_fd);
    }
    if (ftruncate(memory_fd, 0) != 0 || pwrite(memory_fd, data, size, 0) != (ssize_t)size) abort();
}

static void check(int condition)
{
    if (!condition) __builtin_trap();
}

/* Where accepted inputs are rewritten: tmpfs when there is one, so the fsyncs cost nothing. */
static const char *rewrite_path(void)
{
    static char path[128];
    if (!path[0])
        snprintf(path, sizeof path, "%s/fuzz_safetensors_%d.safetensors",
                 access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp", (int)getpid());
    return path;
}

static int same_tensor(const tp_st_tensor *a, const tp_st_tensor *b)
{
    return strcmp(a->name, b->name) == 0 && a->dtype == b->dtype && a->ndim == b->ndim &&
           memcmp(a->shape, b->shape, (size_t)a->ndim * sizeof a->shape[0]) == 0 && a->nbytes == b->nbytes &&
           memcmp(a->data, b->data, (size_t)a->nbytes) == 0;
}

static void rewrite_and_compare(const tp_st_file *file)
{
    tp_st_writer *writer = tp_st_writer_new();
    for (int64_t i = 0; i < tp_st_count(file); i++) {
        const tp_st_tensor *tensor = tp_st_at(file, i);
        tp_st_writer_add(writer, tensor->name, tensor->dtype, tensor->ndim, tensor->shape, tensor->data);
    }
    const char *format = tp_st_metadata(file, "format");
    if (format) tp_st_writer_metadata(writer, "format", format);
    check(tp_st_writer_save(writer, rewrite_path()) == 0);
    tp_st_writer_free(writer);
    tp_st_file *copy = tp_st_open(rewrite_path());
    check(copy && tp_st_count(copy) == tp_st_count(file));
    for (int64_t i = 0; i < tp_st_count(file); i++) check(same_tensor(tp_st_at(copy, i), tp_st_at(file, i)));
    const char *copied_format = tp_st_metadata(copy, "format");
    check(format ? copied_format && strcmp(format, copied_format) == 0 : !copied_format);
    tp_st_close(copy);
    unlink(rewrite_path());
}

static void walk(const tp_st_file *file)
{
    const unsigned char *expected_start = NULL;
    volatile unsigned checksum = 0;
    for (int64_t i = 0; i < tp_st_count(file); i++) {
        const tp_st_tensor *tensor = tp_st_at(file, i);
        check(tensor && tensor->name && tp_st_find(file, tensor->name) == tensor);
        check(tensor->ndim >= 0 && tensor->ndim <= TP_ST_MAX_DIMS);
        check(tensor->numel * (int64_t)tp_st_dtype_size(tensor->dtype) == tensor->nbytes);
        const unsigned char *bytes = tensor->data;
        check(!expected_start || bytes == expected_start); /* tensors tile the data in order */
        expected_start = bytes + tensor->nbytes;
        for (int64_t b = 0; b < tensor->nbytes; b++) checksum += bytes[b];
        if (tensor->dtype == TP_ST_F32) {
            float *copy = malloc((size_t)tensor->nbytes + 1);
            check(tp_st_read_f32(file, tensor->name, tensor->ndim, tensor->shape, copy) == 0);
            check(tensor->nbytes == 0 || memcmp(copy, tensor->data, (size_t)tensor->nbytes) == 0);
            free(copy);
        }
    }
    const char *format = tp_st_metadata(file, "format");
    if (format) checksum += (unsigned)strlen(format);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    write_input(data, size);
    tp_st_file *file = tp_st_open(memory_path);
    if (file) {
        walk(file);
        rewrite_and_compare(file);
    } else
        check(strstr(tp_last_error(), memory_path) == tp_last_error()); /* every refusal names the file */
    tp_st_close(file);
    return 0;
}
