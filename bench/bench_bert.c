/* bench-bert: times BERT steps in tp on random data, the same work as bench/bert_torch.py
 * does in PyTorch (vocabulary 30522, post-LN, GELU, dropout 0.1), in one of three modes:
 *   train     pre-training step: forward + backward + AdamW, MLM at 15% of positions + SP;
 *   finetune  classifier fine-tuning step: forward + backward + AdamW of BERT + the cls head
 *             (first token -> linear -> tanh -> linear, 2 labels, cross-entropy; tp-finetune's
 *             classification model);
 *   infer     the same classifier's forward alone, eval mode (no dropout, no tape).
 * Prints one JSON line per config: the median step as tokens per wall-clock second and per CPU
 * second of the process (the robust measure with 1 thread on a loaded machine). */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/config.h"
#include "core/error.h"
#include "core/fileio.h"
#include "core/finetune_task.h"
#include "core/model.h"
#include "core/rng.h"
#include "core/trainer.h"

#include "bench/cpu_peak.h"

#define VOCAB_SIZE 30522

typedef struct bench_config {
    const char *name;
    int64_t batch_size, seq_length;
} bench_config;

static const bench_config configs[] = {{"tiny", 16, 128}, {"small", 8, 128}, {"base", 8, 128}, {NULL, 0, 0}};

typedef enum bench_mode { MODE_TRAIN, MODE_FINETUNE, MODE_INFER } bench_mode;
static const char *const mode_names[] = {"train", "finetune", "infer", NULL};

/* --every_row: the encoder computes every row of its last layer (what skipping the rows no target reads saves). */
static int every_row;
/* The MFU's denominator: this machine's fp32 peak with the run's threads (bench/cpu_peak.h). */
static double peak_flops;

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
                      .sp_labels = b->sp, .real_tokens = tokens, .labels = b->sp};
    b->batch = batch;
}

static int bench_step(tp_trainer *trainer, void *user, tp_step_metrics *metrics)
{
    bench_batch *b = user;
    return tp_trainer_model_step(trainer, &b->batch, metrics);
}

/* Matmul FLOPs of one step (x3 for forward + backward), as bench/bert_torch.py counts them; the
 * classifier's head (two products on B rows) is left out. */
static double step_flops(const tp_model_config *hp, bench_mode mode, int64_t batch_size, int64_t seq_length,
                         int64_t masked)
{
    double tokens = (double)(batch_size * seq_length), h = (double)hp->hidden_size, f = (double)hp->feedforward_size;
    double per_layer = 3 * 2 * tokens * h * h + 2 * tokens * h * h + 2 * 2 * tokens * h * f +
                       2 * 2 * (double)batch_size * seq_length * seq_length * h;
    double heads = mode == MODE_TRAIN ? 2 * tokens * h * h + 2 * (double)masked * h * VOCAB_SIZE : 0;
    return (mode == MODE_INFER ? 1 : 3) * (per_layer * (double)hp->layers_num + heads);
}

/* clock: CLOCK_MONOTONIC (wall) or CLOCK_PROCESS_CPUTIME_ID (CPU time of all threads). */
static double now(clockid_t clock)
{
    struct timespec ts;
    clock_gettime(clock, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int compare_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

typedef struct bench_run {
    bench_mode mode;
    tp_model model;
    tp_trainer trainer; /* train and finetune */
    tp_ctx ctx;         /* infer */
    bench_batch b;
} bench_run;

/* One timed step of the run's mode. */
static int run_step(bench_run *r)
{
    if (r->mode != MODE_INFER) return tp_trainer_step(&r->trainer, bench_step, &r->b);
    tp_model_batch batch = tp_model_batch_upload(&r->ctx, &r->b.batch);
    batch.targets_only = !every_row;
    tp_model_output out;
    int rc = tp_model_forward(&r->model, &r->ctx, &batch, &out);
    tp_ctx_reset(&r->ctx);
    return rc;
}

/* The trainer (train, finetune) or the forward-only context (infer), over a fresh output dir. */
static int setup_steps(bench_run *r, tp_config *run, const char *dir)
{
    if (r->mode == MODE_INFER) {
        tp_ctx_init(&r->ctx, &tp_cpu_backend, (size_t)64 << 20);
        r->ctx.record = 0;
        r->ctx.training = 0;
        return 0;
    }
    tp_config_set(run, "output_dir", dir);
    tp_config_set(run, "report_steps", "1000000");
    tp_config_set(run, "learning_rate", "1e-4");
    tp_config_set(run, "total_steps", "1000000");
    tp_train_options options;
    if (tp_train_options_read(run, &options) < 0) return -1;
    options.every_row = every_row;
    if (tp_trainer_init(&r->trainer, &options, &r->model, "{}") < 0) return -1;
    return tp_trainer_check_fresh(&r->trainer);
}

static double median_of(const double *values, int n)
{
    double *sorted = tp_xmalloc((size_t)n * sizeof *sorted);
    memcpy(sorted, values, (size_t)n * sizeof *sorted);
    qsort(sorted, (size_t)n, sizeof *sorted, compare_double);
    double median = n % 2 ? sorted[n / 2] : 0.5 * (sorted[n / 2 - 1] + sorted[n / 2]);
    free(sorted);
    return median;
}

static int run_config(const bench_config *bc, bench_mode mode, int steps)
{
    char path[256];
    snprintf(path, sizeof path, "models/bert/%s_config.json", bc->name);
    tp_config *config = tp_config_load(path);
    if (!config) return -1;
    tp_config *run = tp_config_new_empty("bench");
    bench_run r = {.mode = mode};
    if (mode != MODE_TRAIN && tp_task_configure_head(TP_TASK_CLASSIFICATION, 2, run, config) < 0) return -1;
    if (tp_model_build(&r.model, config, VOCAB_SIZE) < 0 || tp_config_check_unused(config) < 0) return -1;
    tp_model_allocate(&r.model, &tp_cpu_backend, 1);
    char dir[] = "/tmp/tp_bench_XXXXXX";
    if (!mkdtemp(dir)) return tp_fail("mkdtemp failed");
    if (setup_steps(&r, run, dir) < 0) return -1;
    make_batch(&r.b, bc->batch_size, bc->seq_length);
    double *seconds = tp_xmalloc((size_t)steps * sizeof *seconds), *cpu_seconds = tp_xmalloc((size_t)steps * sizeof *cpu_seconds);
    for (int i = 0; i < 2 + steps; i++) {
        double start = now(CLOCK_MONOTONIC), cpu_start = now(CLOCK_PROCESS_CPUTIME_ID);
        if (run_step(&r) < 0) return -1;
        if (i >= 2) seconds[i - 2] = now(CLOCK_MONOTONIC) - start;
        if (i >= 2) cpu_seconds[i - 2] = now(CLOCK_PROCESS_CPUTIME_ID) - cpu_start;
    }
    double median = median_of(seconds, steps);
    double tokens = (double)(bc->batch_size * bc->seq_length);
    printf("{\"impl\":\"tp\",\"mode\":\"%s\",\"config\":\"%s\",\"tokens_per_s_median\":%.1f,\"mfu\":%.4f,"
           "\"tokens_per_cpu_s_median\":%.1f,\"threads\":%d,\"every_row\":%s,\"peak_flops\":%.4g,\"step_s\":[",
           mode_names[mode], bc->name, tokens / median,
           step_flops(&r.model.hp, mode, bc->batch_size, bc->seq_length, r.b.batch.mlm_count) / median / peak_flops,
           tokens / median_of(cpu_seconds, steps), omp_get_max_threads(), every_row ? "true" : "false", peak_flops);
    for (int i = 0; i < steps; i++) printf("%s%.5f", i ? "," : "", seconds[i]);
    printf("]}\n");
    fflush(stdout);
    if (tp_remove_tree(dir) < 0) fprintf(stderr, "bench-bert: could not remove %s\n", dir);
    free(seconds);
    free(cpu_seconds);
    if (mode == MODE_INFER)
        tp_ctx_free(&r.ctx);
    else
        tp_trainer_free(&r.trainer);
    tp_model_free(&r.model);
    tp_config_free(run);
    tp_config_free(config);
    free(r.b.src), free(r.b.seg), free(r.b.positions), free(r.b.labels), free(r.b.sp);
    return 0;
}

int main(int argc, char **argv)
{
    const char *wanted = "tiny,small,base";
    int steps = 5;
    bench_mode mode = MODE_TRAIN;
    for (int i = 1; i < argc; i++) {
        int known_mode = -1;
        for (int m = 0; i + 1 < argc && mode_names[m]; m++)
            if (!strcmp(argv[i + 1], mode_names[m])) known_mode = m;
        if (!strcmp(argv[i], "--configs") && i + 1 < argc)
            wanted = argv[++i];
        else if (!strcmp(argv[i], "--mode") && known_mode >= 0)
            mode = (bench_mode)known_mode, i++;
        else if (!strcmp(argv[i], "--steps") && i + 1 < argc)
            steps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc)
            omp_set_num_threads(atoi(argv[++i]));
        else if (!strcmp(argv[i], "--every_row"))
            every_row = 1;
        else {
            printf("usage: bench-bert [--configs tiny,small,base] [--mode train|finetune|infer] [--steps N] [--threads "
                   "N]\n"
                   "                  [--every_row]\n"
                   "Times tp's BERT steps on random data (run from the repository root), 2 untimed steps first:\n"
                   "  --mode train     pre-training step: forward + backward + AdamW, MLM + SP (default)\n"
                   "  --mode finetune  classifier step: forward + backward + AdamW, BERT + cls head, 2 labels\n"
                   "  --mode infer     the classifier's forward alone, eval mode (no dropout, no tape)\n"
                   "  --steps N        timed steps (default 5); one JSON line per config: their median as tokens per\n"
                   "                   wall-clock second and per CPU second of the process (all threads), and the\n"
                   "                   MFU against this machine's fp32 peak, measured at start (peak_flops:\n"
                   "                   fused multiply-adds on every thread, bench/cpu_peak.h)\n"
                   "  --threads N      OpenMP threads (default: OMP_NUM_THREADS)\n"
                   "  --every_row      the last layer computes every row, not only those the targets read (the\n"
                   "                   masked tokens and each sequence's first and last; see docs/benchmarks.md)\n");
            return strcmp(argv[i], "--help") ? 2 : 0;
        }
    }
    if (steps < 1) steps = 1;
    peak_flops = measure_peak_flops();
    for (const bench_config *bc = configs; bc->name; bc++) {
        if (!strstr(wanted, bc->name)) continue;
        if (run_config(bc, mode, steps) < 0) {
            fprintf(stderr, "bench-bert: error: %s\n", tp_last_error());
            return 1;
        }
    }
    return 0;
}
