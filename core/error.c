#include "error.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static _Thread_local char last_error[4096];

int tp_fail(const char *fmt, ...)
{
    va_list args;
    va_start(args, fmt);
    vsnprintf(last_error, sizeof last_error, fmt, args);
    va_end(args);
    return -1;
}

int tp_fail_context(const char *fmt, ...)
{
    char context[512];
    char previous[sizeof last_error - sizeof context - 8];
    va_list args;
    va_start(args, fmt);
    vsnprintf(context, sizeof context, fmt, args);
    va_end(args);
    snprintf(previous, sizeof previous, "%s", last_error);
    snprintf(last_error, sizeof last_error, "%s: %s", context, previous);
    return -1;
}

const char *tp_last_error(void) { return last_error[0] ? last_error : "unknown error"; }

static void out_of_memory(size_t bytes)
{
    fprintf(stderr, "tp: error: out of memory: could not allocate %zu bytes (%.1f MiB)\n", bytes,
            (double)bytes / (1024.0 * 1024.0));
    exit(1);
}

void *tp_xmalloc(size_t bytes)
{
    void *ptr = malloc(bytes ? bytes : 1);
    if (!ptr) out_of_memory(bytes);
    return ptr;
}

void *tp_xcalloc(size_t count, size_t size)
{
    void *ptr = calloc(count ? count : 1, size ? size : 1);
    if (!ptr) out_of_memory(count * size);
    return ptr;
}

void *tp_xrealloc(void *ptr, size_t bytes)
{
    void *grown = realloc(ptr, bytes ? bytes : 1);
    if (!grown) out_of_memory(bytes);
    return grown;
}

void *tp_xmalloc_aligned(size_t bytes)
{
    size_t rounded = (bytes + 63) & ~(size_t)63;
    void *ptr = aligned_alloc(64, rounded ? rounded : 64);
    if (!ptr) out_of_memory(bytes);
    return ptr;
}

char *tp_xstrdup(const char *s)
{
    size_t len = strlen(s) + 1;
    char *copy = tp_xmalloc(len);
    memcpy(copy, s, len);
    return copy;
}
