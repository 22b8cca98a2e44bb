/* bench-wordpiece: WordPiece encode throughput of tp's tokenizers on a text file, one encode
 * call per line (as tp-preprocess encodes a corpus), the same work as bench/run_wordpiece.py
 * gives Hugging Face tokenizers.  Prints one JSON line: the corpus' lines, bytes and tokens, a
 * checksum of the ids (to check that both sides produced the same ids), the seconds of every
 * timed pass and the median pass as tokens/s and MB/s, and the median pass's CPU time (all
 * threads) as tokens per CPU second.
 *
 *   bench-wordpiece --vocab_path VOCAB --corpus_path TEXT [--tokenizer bert|hf] [--passes N]
 *                   [--threads N] */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/error.h"
#include "core/fileio.h"
#include "tokenizers/tokenizer.h"

typedef struct corpus_lines {
    char *text;
    size_t bytes;
    int64_t count;
    size_t *begin, *length; /* [count] each line's offset and length, without its '\n' */
} corpus_lines;

static void split_lines(corpus_lines *corpus)
{
    int64_t capacity = 1024;
    corpus->begin = tp_xmalloc((size_t)capacity * sizeof *corpus->begin);
    corpus->length = tp_xmalloc((size_t)capacity * sizeof *corpus->length);
    for (size_t pos = 0; pos < corpus->bytes;) {
        const char *newline = memchr(corpus->text + pos, '\n', corpus->bytes - pos);
        size_t end = newline ? (size_t)(newline - corpus->text) : corpus->bytes;
        if (corpus->count == capacity) {
            capacity *= 2;
            corpus->begin = tp_xrealloc(corpus->begin, (size_t)capacity * sizeof *corpus->begin);
            corpus->length = tp_xrealloc(corpus->length, (size_t)capacity * sizeof *corpus->length);
        }
        corpus->begin[corpus->count] = pos;
        corpus->length[corpus->count++] = end - pos;
        pos = end + 1;
    }
}

/* clock: CLOCK_MONOTONIC (wall) or CLOCK_PROCESS_CPUTIME_ID (CPU time of all threads). */
static double now(clockid_t clock)
{
    struct timespec ts;
    clock_gettime(clock, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* One pass over every line; returns the token count and the ids' checksum (sum of id x its
 * position in its line + 1, so that a changed order changes it too). */
static int encode_pass(const tp_tokenizer *tok, const corpus_lines *corpus, int64_t *tokens, int64_t *checksum)
{
    int64_t token_sum = 0, id_sum = 0;
    int failed = 0;
#pragma omp parallel reduction(+ : token_sum, id_sum, failed)
    {
        tp_ids ids = {0};
#pragma omp for schedule(dynamic, 256)
        for (int64_t i = 0; i < corpus->count; i++) {
            tp_ids_clear(&ids);
            if (tp_tokenizer_encode(tok, corpus->text + corpus->begin[i], corpus->length[i], &ids) < 0) failed++;
            token_sum += ids.count;
            for (int64_t k = 0; k < ids.count; k++) id_sum += (int64_t)ids.ids[k] * (k + 1);
        }
        tp_ids_free(&ids);
    }
    *tokens = token_sum;
    *checksum = id_sum;
    return failed ? -1 : 0;
}

static int compare_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median_of(const double *values, int n)
{
    double sorted[1000];
    memcpy(sorted, values, (size_t)n * sizeof *sorted);
    qsort(sorted, (size_t)n, sizeof *sorted, compare_double);
    return n % 2 ? sorted[n / 2] : 0.5 * (sorted[n / 2 - 1] + sorted[n / 2]);
}

static int usage(FILE *out, int code)
{
    fprintf(out,
            "usage: bench-wordpiece --vocab_path VOCAB --corpus_path TEXT [--tokenizer bert|hf] [--passes N]\n"
            "                       [--threads N]\n"
            "Encodes every line of TEXT (one call per line, special tokens not added) with tp's tokenizer,\n"
            "one untimed pass and then N timed passes (default 5), and prints one JSON line: lines, bytes,\n"
            "tokens, an id checksum (sum of id x (position in its line + 1)), seconds per pass, and the\n"
            "median pass as tokens/s and MB/s, and per CPU second of the process (all threads).\n"
            "  --tokenizer bert  VOCAB is a vocab.txt, lower-cased (bert-base-uncased; the default)\n"
            "  --tokenizer hf    VOCAB is a tokenizer.json (Hugging Face's fast tokenizer semantics)\n"
            "  --threads N       lines spread over N OpenMP threads (default: OMP_NUM_THREADS)\n");
    return code;
}

int main(int argc, char **argv)
{
    const char *vocab_path = NULL, *corpus_path = NULL, *kind = "bert";
    int passes = 5;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help")) return usage(stdout, 0);
        if (i + 1 == argc) return usage(stderr, 2);
        if (!strcmp(argv[i], "--vocab_path"))
            vocab_path = argv[++i];
        else if (!strcmp(argv[i], "--corpus_path"))
            corpus_path = argv[++i];
        else if (!strcmp(argv[i], "--tokenizer"))
            kind = argv[++i];
        else if (!strcmp(argv[i], "--passes"))
            passes = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--threads"))
            omp_set_num_threads(atoi(argv[++i]));
        else
            return usage(stderr, 2);
    }
    if (!vocab_path || !corpus_path || passes < 1 || passes > 1000 || (strcmp(kind, "bert") && strcmp(kind, "hf")))
        return usage(stderr, 2);
    int hf = !strcmp(kind, "hf");
    tp_tokenizer_options options = {.kind = kind, .vocab_path = hf ? NULL : vocab_path, .do_lower_case = 1,
                                    .tokenizer_json_path = hf ? vocab_path : NULL};
    tp_tokenizer *tok = tp_tokenizer_create(&options);
    corpus_lines corpus = {0};
    if (!tok || !(corpus.text = tp_read_file(corpus_path, &corpus.bytes))) {
        fprintf(stderr, "bench-wordpiece: error: %s\n", tp_last_error());
        return 1;
    }
    split_lines(&corpus);
    double seconds[1000], cpu_seconds[1000];
    int64_t tokens = 0, checksum = 0;
    for (int pass = -1; pass < passes; pass++) {
        double start = now(CLOCK_MONOTONIC), cpu_start = now(CLOCK_PROCESS_CPUTIME_ID);
        if (encode_pass(tok, &corpus, &tokens, &checksum) < 0) {
            fprintf(stderr, "bench-wordpiece: error: %s: %s\n", corpus_path, tp_last_error());
            return 1;
        }
        if (pass >= 0) seconds[pass] = now(CLOCK_MONOTONIC) - start;
        if (pass >= 0) cpu_seconds[pass] = now(CLOCK_PROCESS_CPUTIME_ID) - cpu_start;
    }
    double median = median_of(seconds, passes);
    printf("{\"impl\":\"tp\",\"tokenizer\":\"%s\",\"threads\":%d,\"lines\":%lld,\"bytes\":%zu,\"tokens\":%lld,"
           "\"checksum\":%lld,\"tokens_per_s_median\":%.0f,\"mb_per_s_median\":%.2f,\"tokens_per_cpu_s_median\":%.0f,"
           "\"pass_s\":[",
           kind, omp_get_max_threads(), (long long)corpus.count, corpus.bytes, (long long)tokens,
           (long long)checksum, (double)tokens / median, (double)corpus.bytes / median / 1e6,
           (double)tokens / median_of(cpu_seconds, passes));
    for (int pass = 0; pass < passes; pass++) printf("%s%.4f", pass ? "," : "", seconds[pass]);
    printf("]}\n");
    free(corpus.text), free(corpus.begin), free(corpus.length);
    tp_tokenizer_free(tok);
    return 0;
}
