/* libFuzzer harness for core/tsv: reads the input as a fine-tuning TSV file for every task kind,
 * with labels collected from the file and with a fixed label set.  Crashes, sanitizer reports
 * and leaks are the failures; it also traps when a read that succeeds hands out an example that
 * breaks the reader's promises (empty text, an id outside the label set, tags not one per token)
 * and when a failure's message does not start with the file's path.
 *
 *   clang -std=gnu11 -g -O1 -fsanitize=fuzzer,address,undefined -I. core/tsv.c core/fileio.c \
 *         core/error.c tests/fuzz/fuzz_tsv.c -lm -o fuzz_tsv
 *   ./fuzz_tsv -max_total_time=120 tests/fuzz/corpus/tsv */
#include "tests/fuzz/memfile.h" /* first: it defines _GNU_SOURCE */

#include "core/error.h"
#include "core/tsv.h"

#include <math.h>
#include <string.h>

static void check_example(const tp_tsv_task *task, const tp_tsv_example *example)
{
    fuzz_check(example->text_a[0] != '\0' && (!task->has_text_b || example->text_b[0] != '\0'));
    if (!task->has_labels) return;
    if (task->kind == TP_TASK_CLASSIFICATION)
        fuzz_check(example->label >= 0 && example->label < task->num_labels);
    if (task->kind == TP_TASK_REGRESSION) fuzz_check(isfinite(example->value));
    if (task->kind == TP_TASK_TAGGING) fuzz_check(example->label_count == example->token_count);
    if (task->kind == TP_TASK_TEXT2TEXT) fuzz_check(example->target && example->target[0] != '\0');
    for (int64_t i = 0; i < example->label_count; i++) {
        int32_t id = task->label_ids[example->first_label + i];
        fuzz_check(id >= 0 && id < task->num_labels);
    }
    for (int64_t i = 0; i < example->token_count; i++) {
        const tp_tsv_span *token = &task->tokens[example->first_label + i];
        fuzz_check(token->length > 0 && memchr(token->text, ' ', (size_t)token->length) == NULL);
    }
}

static void read_as(const char *path, const tp_tsv_options *options)
{
    tp_tsv_task *task = tp_tsv_read(path, options);
    if (!task) {
        fuzz_check(strncmp(tp_last_error(), path, strlen(path)) == 0);
        return;
    }
    fuzz_check(task->count > 0);
    for (int64_t i = 0; i < task->count; i++) check_example(task, &task->examples[i]);
    for (int64_t i = 0; i < task->num_labels; i++) (void)strlen(task->label_names[i]);
    tp_tsv_free(task);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fuzz_memfile_write(data, size);
    static const char *const names[] = {"O", "B-PER", "I-PER", "pos", "neg"};
    static const char *const extra[] = {"logits", NULL};
    for (int kind = TP_TASK_CLASSIFICATION; kind <= TP_TASK_TEXT2TEXT; kind++) {
        read_as(path, &(tp_tsv_options){.kind = (tp_task_kind)kind, .allow_missing_label = 1, .extra_columns = extra});
        read_as(path, &(tp_tsv_options){.kind = (tp_task_kind)kind, .num_labels = 3});
    }
    read_as(path, &(tp_tsv_options){.kind = TP_TASK_CLASSIFICATION, .labels_are_names = 1});
    read_as(path, &(tp_tsv_options){.kind = TP_TASK_CLASSIFICATION, .labels_are_names = 1, .label_names = names,
                                    .num_labels = 5});
    read_as(path, &(tp_tsv_options){.kind = TP_TASK_TAGGING, .label_names = names, .num_labels = 5});
    return 0;
}
