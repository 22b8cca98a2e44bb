/* bench-bert: times BERT training steps (forward + backward + AdamW) in tp on
 * random data, the same work as bench/bert_torch.py does in PyTorch:
 * vocabulary 30522, MLM at 15% of positions + SP, post-LN, GELU, dropout 0.1.
 * Prints one JSON line per config. */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/config.h"
#include "core/error.h"
#include "core/fileio.h"
#include "core/model.h"
#include "core/rng.h"
#include "core/trainer.h"

#define VOCAB_SIZE 30522
#define PEAK_FLOPS 198e9 /* this machine's fp32 peak: 2 Zen3 cores, 2 FMA x 8 lanes x 2 flops x 3.1 GHz */

typedef struct bench_config {
    const char *name;
    int64_t batch_size, seq_length;
} bench_config;

static const bench_config configs[] = {{"tiny", 16, 128}, {"small", 8, 128}, {"base", 8, 128}, {NULL, 0, 0}};

typedef struct bench_batch {
    tp_batch batch;
    int32_t *src, *seg, *positions, *labels, *sp;
} bench_batch;

static void make_batch(bench_batch *b, int64_t batch_size, int64_t seq_length)
{
    int64_t tokens = batch_size * seq_length, per_sequence = (int64_t)(0.15 * seq_length + 0.5), masked = 0;
    tp_rng rng = tp_rng_make(1, 99, 0);
    b->src = tp_xmalloc((size_t)tokens * sizeof(int32_t));
    b->seg = tp_xmalloc((size_t)tokens * sizeof(int32_t));
    b->positions = tp_xmalloc((size_t)tokens * sizeof(int32_t));
    b->labels = tp_xmalloc((size_t)tokens * sizeof(int32_t));
    b->sp = tp_xmalloc((size_t)batch_size * sizeof(int32_t));
    for (int64_t i = 0; i < tokens; i++) {
        b->src[i] = 1000 + (int32_t)tp_rng_below(&rng, VOCAB_SIZE - 1000);
        b->seg[i] = i % seq_length < seq_length / 2 ? 1 : 2;
    }
    for (int64_t s = 0; s < batch_size; s++) {
        b->sp[s] = (int32_t)tp_rng_below(&rng, 2);
        /* evenly spread masked positions, skipping [CLS] */
        for (int64_t j = 0; j < per_sequence; j++) {
            b->positions[masked] = (int32_t)(s * seq_length + 1 + j * (seq_length - 1) / per_sequence);
            b->labels[masked++] = (int32_t)tp_rng_below(&rng, VOCAB_SIZE);
        }
    }
    tp_batch batch = {.batch_size = batch_size, .seq_length = seq_length, .src = b->src, .seg = b->seg,
                      .mlm_positions = b->positions, .mlm_labels = b->labels, .mlm_count = masked,
                      .sp_labels = b->sp, .real_tokens = tokens};
    b->batch = batch;
}

static int bench_step(tp_trainer *trainer, void *user, tp_step_metrics *metrics)
{
    bench_batch *b = user;
    return tp_trainer_model_step(trainer, &b->batch, metrics);
}

/* Matmul FLOPs of one training step (x3 for forward + backward), as bench/bert_torch.py counts them. */
static double step_flops(const tp_model_config *hp, int64_t batch_size, int64_t seq_length, int64_t masked)
{
    double tokens = (double)(batch_size * seq_length), h = (double)hp->hidden_size, f = (double)hp->feedforward_size;
    double per_layer = 3 * 2 * tokens * h * h + 2 * tokens * h * h + 2 * 2 * tokens * h * f +
                       2 * 2 * (double)batch_size * seq_length * seq_length * h;
    double heads = 2 * tokens * h * h + 2 * (double)masked * h * VOCAB_SIZE;
    return 3 * (per_layer * (double)hp->layers_num + heads);
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int compare_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static int run_config(const bench_config *bc, int steps)
{
    char path[256];
    snprintf(path, sizeof path, "models/bert/%s_config.json", bc->name);
    tp_config *config = tp_config_load(path);
    if (!config) return -1;
    tp_model model;
    if (tp_model_build(&model, config, VOCAB_SIZE) < 0 || tp_config_check_unused(config) < 0) return -1;
    tp_model_allocate(&model, &tp_cpu_backend, 1);
    char dir[] = "/tmp/tp_bench_XXXXXX";
    if (!mkdtemp(dir)) return tp_fail("mkdtemp failed");
    tp_config *run = tp_config_new_empty("bench");
    tp_config_set(run, "output_dir", dir);
    tp_config_set(run, "report_steps", "1000000");
    tp_config_set(run, "learning_rate", "1e-4");
    tp_config_set(run, "total_steps", "1000000");
    tp_train_options options;
    tp_trainer trainer;
    if (tp_train_options_read(run, &options) < 0 || tp_trainer_init(&trainer, &options, &model, "{}") < 0 ||
        tp_trainer_check_fresh(&trainer) < 0)
        return -1;
    bench_batch b;
    make_batch(&b, bc->batch_size, bc->seq_length);
    double *seconds = tp_xmalloc((size_t)steps * sizeof *seconds);
    for (int i = 0; i < 2 + steps; i++) {
        double start = now();
        if (tp_trainer_step(&trainer, bench_step, &b) < 0) return -1;
        if (i >= 2) seconds[i - 2] = now() - start;
    }
    double sorted[1024];
    int n = steps < 1024 ? steps : 1024;
    memcpy(sorted, seconds, (size_t)n * sizeof *sorted);
    qsort(sorted, (size_t)n, sizeof *sorted, compare_double);
    double median = n % 2 ? sorted[n / 2] : 0.5 * (sorted[n / 2 - 1] + sorted[n / 2]);
    double tokens = (double)(bc->batch_size * bc->seq_length);
    printf("{\"impl\":\"tp\",\"config\":\"%s\",\"tokens_per_s_median\":%.1f,\"mfu\":%.4f,\"threads\":%d,\"step_s\":[",
           bc->name, tokens / median, step_flops(&model.hp, bc->batch_size, bc->seq_length, b.batch.mlm_count) /
                                              median / PEAK_FLOPS, omp_get_max_threads());
    for (int i = 0; i < steps; i++) printf("%s%.5f", i ? "," : "", seconds[i]);
    printf("]}\n");
    fflush(stdout);
    if (tp_remove_tree(dir) < 0) fprintf(stderr, "bench-bert: could not remove %s\n", dir);
    free(seconds);
    tp_trainer_free(&trainer);
    tp_model_free(&model);
    tp_config_free(run);
    tp_config_free(config);
    free(b.src), free(b.seg), free(b.positions), free(b.labels), free(b.sp);
    return 0;
}

int main(int argc, char **argv)
{
    const char *wanted = "tiny,small,base";
    int steps = 5;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--configs") && i + 1 < argc)
            wanted = argv[++i];
        else if (!strcmp(argv[i], "--steps") && i + 1 < argc)
            steps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc)
            omp_set_num_threads(atoi(argv[++i]));
        else {
            printf("usage: bench-bert [--configs tiny,small,base] [--steps N] [--threads N]\n"
                   "Times tp's BERT training step (run from the repository root).\n");
            return strcmp(argv[i], "--help") ? 2 : 0;
        }
    }
    if (steps < 1) steps = 1;
    for (const bench_config *bc = configs; bc->name; bc++) {
        if (!strstr(wanted, bc->name)) continue;
        if (run_config(bc, steps) < 0) {
            fprintf(stderr, "bench-bert: error: %s\n", tp_last_error());
            return 1;
        }
    }
    return 0;
}
