/* libFuzzer harness for core/audio: reads the input as a sound file (WAV, FLAC, or anything else
 * libsndfile recognises) and computes its filter banks.  Crashes, sanitizer reports and leaks are
 * the failures; it also traps when a read that succeeds hands out non-finite samples or a bad
 * rate, when filter banks of finite samples are not finite, and when a failure's message does not
 * start with the file's path.
 *
 *   clang -std=gnu11 -g -O1 -fsanitize=fuzzer,address,undefined -I. core/audio.c core/fft.c \
 *         core/rng.c core/fileio.c core/error.c tests/fuzz/fuzz_wav.c -lsndfile -lm -o fuzz_wav
 *   ./fuzz_wav -max_total_time=120 tests/fuzz/corpus/wav */
#include "tests/fuzz/memfile.h" /* first: it defines _GNU_SOURCE */

#include "core/audio.h"
#include "core/error.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fuzz_memfile_write(data, size);
    tp_audio audio;
    if (tp_audio_read(path, &audio) != 0) {
        fuzz_check(strncmp(tp_last_error(), path, strlen(path)) == 0 && audio.samples == NULL);
        return 0;
    }
    fuzz_check(audio.count >= 0 && audio.sample_rate > 0);
    for (int64_t i = 0; i < audio.count; i++) fuzz_check(isfinite(audio.samples[i]));
    tp_fbank_options options = tp_fbank_defaults(audio.sample_rate);
    options.num_mel_bins = 23;
    int64_t frames = tp_fbank_frame_count(audio.count, &options);
    if (frames > 0 && frames <= 10000) {
        float *features = malloc(sizeof(float) * (size_t)(frames * tp_fbank_dim(&options)));
        if (tp_fbank(audio.samples, audio.count, &options, features) == 0)
            for (int64_t i = 0; i < frames * tp_fbank_dim(&options); i++) fuzz_check(isfinite(features[i]));
        free(features);
    }
    tp_audio_free(&audio);
    return 0;
}
