/* libFuzzer harness for the zoo readers of tp-select (core/select_zoo.c): the input is read as a
 * zoo manifest (from text), and as a performance matrix, dev curves, a LEEP table and a head's
 * softmax outputs for a fixed zoo of models "a", "b" with benchmarks "x", "y" and 3 epochs.
 * Crashes, sanitizer reports and leaks are the failures; it also traps when a read that succeeds
 * breaks the readers' promises (scores finite or NaN, curves complete per pair, LEEP <= 0, rows
 * of probabilities in [0, 1] summing to about 1, label ids in range) and when a refusal's message
 * does not start with the file's name.
 *
 *   clang -std=gnu11 -g -O1 -fsanitize=fuzzer,address,undefined -I. core/select_zoo.c core/config.c \
 *         core/fileio.c core/error.c tests/fuzz/fuzz_select.c -lcjson -lm -o fuzz_select
 *   ./fuzz_select -max_total_time=120 tests/fuzz/corpus/select */
#include "tests/fuzz/memfile.h" /* first: it defines _GNU_SOURCE */

#include "core/error.h"
#include "core/select.h"

#include <math.h>
#include <string.h>

static const char skeleton[] =
    "{\"format\": \"tp-select-zoo\", \"version\": 1, \"epochs\": 3, \"matrix\": \"m.tsv\",\n"
    " \"models\": [{\"name\": \"a\", \"head\": {\"labels\": 2}}, {\"name\": \"b\"}]}\n";

static void check_refusal(const char *name)
{
    fuzz_check(strncmp(tp_last_error(), name, strlen(name)) == 0);
}

/* The skeleton zoo with its matrix filled in memory (benchmarks x, y). */
static tp_zoo *skeleton_zoo(void)
{
    tp_zoo *zoo = tp_zoo_parse_manifest("skeleton.json", skeleton, ".");
    fuzz_check(zoo != NULL);
    zoo->benchmark_count = 2;
    zoo->benchmarks = malloc(2 * sizeof *zoo->benchmarks);
    zoo->benchmarks[0] = strdup("x");
    zoo->benchmarks[1] = strdup("y");
    zoo->scores = calloc(4, sizeof *zoo->scores);
    return zoo;
}

static void read_manifest(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    memcpy(text, data, size);
    text[size] = '\0';
    tp_zoo *zoo = tp_zoo_parse_manifest("zoo.json", text, ".");
    free(text);
    if (!zoo) {
        check_refusal("zoo.json");
        return;
    }
    fuzz_check(zoo->model_count > 0 && zoo->epochs > 0);
    for (int64_t m = 0; m < zoo->model_count; m++) fuzz_check(zoo->models[m].name[0] != '\0' && zoo->models[m].head_labels >= 0);
    tp_zoo_free(zoo);
}

static void read_matrix(const char *path)
{
    tp_zoo *zoo = tp_zoo_parse_manifest("skeleton.json", skeleton, ".");
    if (tp_zoo_read_matrix(zoo, path) != 0) {
        check_refusal(path);
    } else {
        fuzz_check(zoo->benchmark_count > 0);
        for (int64_t i = 0; i < zoo->model_count * zoo->benchmark_count; i++)
            fuzz_check(isfinite(zoo->scores[i]) || isnan(zoo->scores[i]));
    }
    tp_zoo_free(zoo);
}

static void read_curves(const char *path)
{
    tp_zoo *zoo = skeleton_zoo();
    if (tp_zoo_read_curves(zoo, path) != 0) {
        check_refusal(path);
    } else {
        for (int64_t pair = 0; pair < 4; pair++)
            for (int64_t e = 0; zoo->has_curve[pair] && e < zoo->epochs; e++)
                fuzz_check(isfinite(zoo->dev[pair * zoo->epochs + e]) && zoo->epoch_seconds[pair * zoo->epochs + e] >= 0);
    }
    tp_zoo_free(zoo);
}

static void read_leep(const char *path)
{
    tp_zoo *zoo = skeleton_zoo();
    if (tp_zoo_read_leep(zoo, path) != 0) {
        check_refusal(path);
    } else {
        for (int64_t i = 0; i < zoo->target_count * zoo->model_count; i++)
            fuzz_check(isnan(zoo->leep[i]) || zoo->leep[i] <= 0);
    }
    tp_zoo_free(zoo);
}

static void read_outputs(const char *path, int64_t expected)
{
    tp_head_outputs *outputs = tp_head_outputs_read(path, expected);
    if (!outputs) {
        check_refusal(path);
        return;
    }
    fuzz_check(outputs->count > 0 && (expected == 0 || outputs->source_labels == expected));
    for (int64_t i = 0; i < outputs->count; i++) {
        double sum = 0;
        for (int64_t z = 0; z < outputs->source_labels; z++) {
            double p = outputs->probs[i * outputs->source_labels + z];
            fuzz_check(p >= 0 && p <= 1);
            sum += p;
        }
        fuzz_check(fabs(sum - 1) < 1e-2 && outputs->labels[i] >= 0 && outputs->labels[i] < outputs->target_labels);
    }
    double leep = tp_select_leep(outputs);
    fuzz_check(!(leep > 1e-9)); /* a mean log-probability (NaN/-inf when a probability underflows) */
    tp_head_outputs_free(outputs);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fuzz_memfile_write(data, size);
    read_manifest(data, size);
    read_matrix(path);
    read_curves(path);
    read_leep(path);
    read_outputs(path, 0);
    read_outputs(path, 2);
    return 0;
}
