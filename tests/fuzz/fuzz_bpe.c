/* libFuzzer harness for the bpe tokenizer kind (GPT-2's vocab.json + merges.txt).  The input is
 * vocab.json, a NUL byte, then merges.txt (no NUL: all of it is vocab.json, and merges.txt is
 * empty).  Every input either is refused with a message naming one of the two files, or loads
 * into a tokenizer that keeps the invariants of tokenizer_checks.h, with and without
 * <|endoftext|> recognised in the text.  Build and run with tests/fuzz/run.sh bpe <seconds>. */
#define _GNU_SOURCE
#include "tests/fuzz/memfile.h"
#include "tests/fuzz/tokenizer_checks.h"

#include <sys/mman.h>

#include "core/error.h"

/* merges.txt: a second in-memory file beside memfile.h's one. */
static const char *merges_write(const uint8_t *data, size_t size)
{
    static int fd = -1;
    static char path[64];
    if (fd < 0) {
        fd = memfd_create("fuzz_merges", 0);
        if (fd < 0) abort();
        snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    }
    if (ftruncate(fd, 0) != 0 || pwrite(fd, data, size, 0) != (ssize_t)size) abort();
    return path;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *nul = memchr(data, '\0', size);
    size_t vocab_size = nul ? (size_t)(nul - data) : size;
    const char *vocab_path = fuzz_memfile_write(data, vocab_size);
    const char *merges_path = nul ? merges_write(nul + 1, size - vocab_size - 1) : merges_write(data, 0);
    for (int special = 0; special <= 1; special++) {
        tp_tokenizer_options options = {
            .kind = "bpe", .vocab_path = vocab_path, .merges_path = merges_path, .special_tokens_in_text = special};
        tp_tokenizer *tok = tp_tokenizer_create(&options);
        if (!tok) {
            const char *message = tp_last_error();
            fuzz_check(strstr(message, vocab_path) == message || strstr(message, merges_path) == message);
            return 0;
        }
        fuzz_check_tokenizer(tok, data, size);
        tp_tokenizer_free(tok);
    }
    return 0;
}
