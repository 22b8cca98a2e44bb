/* Error reporting shared by every layer of tp.
 *
 * A function that can fail returns int (0 = success, -1 = failure) or a
 * pointer (NULL = failure) and records one message with tp_fail().  The
 * message names what failed and where: the file, then the key path or byte
 * offset or line, e.g.
 *   "models/bert/tiny_config.json: key 'encoder': unknown encoder 'transfomer' (known: transformer)"
 * Programs print tp_last_error() once and exit non-zero. */
#ifndef TP_ERROR_H
#define TP_ERROR_H

#include <stddef.h>

#if defined(__GNUC__)
#define TP_PRINTF(fmt_index, args_index) __attribute__((format(printf, fmt_index, args_index)))
#else
#define TP_PRINTF(fmt_index, args_index)
#endif

/* Records the message (thread-local, replaces any earlier one) and returns -1. */
int tp_fail(const char *fmt, ...) TP_PRINTF(1, 2);
/* Prefixes the current message with "<context>: " (e.g. a file name added by a caller); returns -1. */
int tp_fail_context(const char *fmt, ...) TP_PRINTF(1, 2);
const char *tp_last_error(void);

/* Allocation that cannot fail silently: on failure prints how much was needed and exits(1). */
void *tp_xmalloc(size_t bytes);
void *tp_xcalloc(size_t count, size_t size);
void *tp_xrealloc(void *ptr, size_t bytes);
/* 64-byte aligned allocation (SIMD and cache lines); release with free(). */
void *tp_xmalloc_aligned(size_t bytes);
char *tp_xstrdup(const char *s);

#endif
