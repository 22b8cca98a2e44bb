/* The fuzz input as a file a user could have written: an in-memory file reopened through
 * /proc/self/fd, so the path-based public APIs (open, fstat, mmap, read) run as they are, without
 * touching the disk.  Header-only: each harness is one translation unit. */
#ifndef TP_FUZZ_MEMFILE_H
#define TP_FUZZ_MEMFILE_H

#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

/* Replaces the file's contents with data; returns its path (the same on every call). */
static inline const char *fuzz_memfile_write(const uint8_t *data, size_t size)
{
    static int fd = -1;
    static char path[64];
    if (fd < 0) {
        fd = memfd_create("fuzz_input", 0);
        if (fd < 0) abort();
        snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    }
    if (ftruncate(fd, 0) != 0 || pwrite(fd, data, size, 0) != (ssize_t)size) abort();
    return path;
}

/* A failed invariant: a trap, so libFuzzer saves the input and prints the stack. */
static inline void fuzz_check(int condition)
{
    if (!condition) __builtin_trap();
}

#endif
