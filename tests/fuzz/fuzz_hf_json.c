/* libFuzzer harness for the hf tokenizer kind: the input is a tokenizer.json.  Every input either
 * is refused with a message naming the file, or loads into a tokenizer that keeps the invariants
 * of tokenizer_checks.h (WordPiece, byte-level BPE and Unigram models, added tokens, the
 * normalizers and the precompiled charsmap's trie walk included).
 * Build and run with tests/fuzz/run.sh hf_json <seconds>. */
#include "tests/fuzz/memfile.h"
#include "tests/fuzz/tokenizer_checks.h"

#include "core/error.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fuzz_memfile_write(data, size);
    tp_tokenizer_options options = {.kind = "hf", .tokenizer_json_path = path};
    tp_tokenizer *tok = tp_tokenizer_create(&options);
    if (!tok) {
        fuzz_check(strstr(tp_last_error(), path) == tp_last_error()); /* every refusal names the file */
        return 0;
    }
    fuzz_check_tokenizer(tok, data, size);
    tp_tokenizer_free(tok);
    return 0;
}
