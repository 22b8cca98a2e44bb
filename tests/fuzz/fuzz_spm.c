/* libFuzzer harness for the sentencepiece kind: the input is a .model file (a serialized
 * ModelProto), parsed by libsentencepiece through tokenizers/sentencepiece_shim.cc.  Every input
 * either is refused with a message naming the file, or loads into a tokenizer that keeps the
 * invariants of tokenizer_checks.h.  libsentencepiece itself is not instrumented: this checks
 * the shim and tp's side of it.  Build and run with tests/fuzz/run.sh spm <seconds>. */
#include "tests/fuzz/memfile.h"
#include "tests/fuzz/tokenizer_checks.h"

#include "core/error.h"

/* libsentencepiece 0.1.97 leaks what it had built when darts-clone throws on a malformed model
 * (e.g. an empty piece: spm_encode itself terminates there; the shim catches the exception).
 * Its frames are not symbolised, so the suppression names the C++ runtime's operator new: only
 * libsentencepiece and the shim allocate through it here. */
const char *__lsan_default_suppressions(void);
const char *__lsan_default_suppressions(void) { return "leak:libstdc++.so\n"; }

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fuzz_memfile_write(data, size);
    tp_tokenizer_options options = {.kind = "sentencepiece", .spm_model_path = path};
    tp_tokenizer *tok = tp_tokenizer_create(&options);
    if (!tok) {
        fuzz_check(strstr(tp_last_error(), path) == tp_last_error());
        return 0;
    }
    fuzz_check_tokenizer(tok, data, size);
    tp_tokenizer_free(tok);
    return 0;
}
