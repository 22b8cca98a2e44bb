/* libFuzzer harness for core/image's IDX reader: reads the input as an IDX file, gzip-compressed
 * or plain.  Crashes, sanitizer reports and leaks are the failures; it also traps when a read that
 * succeeds hands out dimensions that do not multiply to the value count, and when a failure's
 * message does not start with the file's path.
 *
 *   clang -std=gnu11 -g -O1 -fsanitize=fuzzer,address,undefined -I. core/image.c core/fileio.c \
 *         core/error.c tests/fuzz/fuzz_idx.c -lturbojpeg -lpng16 -lz -lm -o fuzz_idx
 *   ./fuzz_idx -max_total_time=120 tests/fuzz/corpus/idx */
#include "tests/fuzz/memfile.h" /* first: it defines _GNU_SOURCE */

#include "core/error.h"
#include "core/image.h"

#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fuzz_memfile_write(data, size);
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
