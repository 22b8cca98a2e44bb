/* bench-bert: times BERT steps in tp on random data, the same work as bench/bert_torch.py
 * does in PyTorch (vocabulary 30522, post-LN, GELU, dropout 0.1), in one of four modes:
 *   train     pre-training step: forward + backward + AdamW, MLM at 15% of positions + SP;
 *   finetune  classifier fine-tuning step: forward + backward + AdamW of BERT + the cls head
 *             (first token -> linear -> tanh -> linear, 2 labels, cross-entropy; tp-finetune's
 *             classification model);
 *   infer     the same classifier's forward alone, eval mode (no dropout, no tape);
 *   gemm      the training step's matrix products alone, through the CPU backend's gemm (OpenBLAS):
 *             the MFU the products themselves reach on these shapes, a bound for the train step's.
 * Prints one JSON line per config: the median step as tokens per wall-clock second and per CPU
 * second of the process (the robust measure with 1 thread on a loaded machine). */
#include <math.h>
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

typedef enum bench_mode { MODE_TRAIN, MODE_FINETUNE, MODE_INFER, MODE_GEMM } bench_mode;
static const char *const mode_names[] = {"train", "finetune", "infer", "gemm", NULL};

/* --every_row: the encoder computes every row of its last layer (what skipping the rows no target reads saves). */
static int every_row;
/* --compare_split (with --mode gemm): each product timed both ways tp_cpu_gemm_threads offers. */
static int compare_split;
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
    int vocabulary = mode == MODE_TRAIN || mode == MODE_GEMM;
    double heads = vocabulary ? 2 * tokens * h * h + 2 * (double)masked * h * VOCAB_SIZE : 0;
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

static double median_of(const double *values, int n)
{
    double *sorted = tp_xmalloc((size_t)n * sizeof *sorted);
    memcpy(sorted, values, (size_t)n * sizeof *sorted);
    qsort(sorted, (size_t)n, sizeof *sorted, compare_double);
    double median = n % 2 ? sorted[n / 2] : 0.5 * (sorted[n / 2 - 1] + sorted[n / 2]);
    free(sorted);
    return median;
}

/* ---- --mode gemm: the training step's products alone ---------------------------------------- */

/* One product's shape (row-major, C = op(A) op(B)) and how often a step makes it.  The
 * attention's per-head products (per_head) run as core/cpu_kernels.c runs them: the heads spread
 * over the threads, each product on one. */
typedef struct product {
    int trans_a, trans_b;
    int64_t m, n, k, lda, ldb, ldc, repeats;
    int per_head;
} product;

typedef struct product_list {
    product items[18];
    int count;
} product_list;

static void add_product(product_list *list, int trans_a, int trans_b, int64_t m, int64_t n, int64_t k, int64_t lda,
                        int64_t ldb, int64_t ldc, int64_t repeats, int per_head)
{
    if (list->count == (int)(sizeof list->items / sizeof list->items[0])) abort(); /* train_products makes 18 */
    list->items[list->count++] = (product){trans_a, trans_b, m, n, k, lda, ldb, ldc, repeats, per_head};
}

/* A linear layer's three products, as core/ops.c calls them: y = x wᵀ, dx = dy w, dw = dyᵀ x. */
static void add_linear(product_list *list, int64_t rows, int64_t in, int64_t out, int64_t repeats)
{
    add_product(list, 0, 1, rows, out, in, in, in, out, repeats, 0);
    add_product(list, 0, 0, rows, in, out, out, in, in, repeats, 0);
    add_product(list, 1, 0, out, in, rows, out, in, in, repeats, 0);
}

/* The products step_flops counts for a training step: per layer four hidden x hidden linears
 * (query, key, value, output), the feed-forward pair, and per sequence and head the attention's
 * scores (q kᵀ) and context (p v) with their four backward products (dp = do vᵀ, dv = pᵀ do,
 * dq = ds k, dk = dsᵀ q); then the MLM dense layer on every token and the vocabulary projection
 * on the masked ones. */
static product_list train_products(const tp_model_config *hp, int64_t batch_size, int64_t seq_length, int64_t masked)
{
    product_list list = {.count = 0};
    int64_t tokens = batch_size * seq_length, hidden = hp->hidden_size, layers = hp->layers_num;
    int64_t head_size = hidden / hp->heads_num, per_head = layers * batch_size * hp->heads_num;
    add_linear(&list, tokens, hidden, hidden, 4 * layers);
    add_linear(&list, tokens, hidden, hp->feedforward_size, layers);
    add_linear(&list, tokens, hp->feedforward_size, hidden, layers);
    add_product(&list, 0, 1, seq_length, seq_length, head_size, hidden, hidden, seq_length, 2 * per_head, 1);
    add_product(&list, 0, 0, seq_length, head_size, seq_length, seq_length, hidden, hidden, 2 * per_head, 1);
    add_product(&list, 1, 0, seq_length, head_size, seq_length, seq_length, hidden, hidden, 2 * per_head, 1);
    add_linear(&list, tokens, hidden, hidden, 1);
    add_linear(&list, masked, hidden, VOCAB_SIZE, 1);
    return list;
}

static double call_flops(const product *p) { return 2.0 * (double)p->m * (double)p->n * (double)p->k; }

static double product_flops(const product_list *list)
{
    double flops = 0;
    for (int i = 0; i < list->count; i++) flops += call_flops(&list->items[i]) * (double)list->items[i].repeats;
    return flops;
}

/* Operands as large as the largest product's, random, read by every call; the output one per
 * thread. */
typedef struct product_buffers {
    float *a, *b, *c;
} product_buffers;

static product_buffers product_buffers_make(const product_list *list)
{
    int64_t a_size = 0, b_size = 0, c_size = 0;
    for (int i = 0; i < list->count; i++) {
        const product *p = &list->items[i];
        int64_t a = (p->trans_a ? p->k : p->m) * p->lda, b = (p->trans_b ? p->n : p->k) * p->ldb, c = p->m * p->ldc;
        a_size = a > a_size ? a : a_size, b_size = b > b_size ? b : b_size, c_size = c > c_size ? c : c_size;
    }
    c_size *= omp_get_max_threads();
    product_buffers buffers = {tp_xmalloc((size_t)a_size * sizeof(float)), tp_xmalloc((size_t)b_size * sizeof(float)),
                               tp_xcalloc((size_t)c_size, sizeof(float))};
    for (int64_t i = 0; i < a_size; i++) buffers.a[i] = tp_uniform(1, 1, (uint64_t)i) - 0.5f;
    for (int64_t i = 0; i < b_size; i++) buffers.b[i] = tp_uniform(1, 2, (uint64_t)i) - 0.5f;
    return buffers;
}

/* Through the CPU backend's gemm, which calls OpenBLAS (core/cpu_kernels.c). */
static void run_product(const product *p, const product_buffers *buffers, float *c)
{
    tp_cpu_backend.gemm(p->trans_a, p->trans_b, p->m, p->n, p->k, 1.0f, buffers->a, p->lda, buffers->b, p->ldb, 0.0f, c,
                        p->ldc);
}

static void run_products(const product_list *list, const product_buffers *buffers)
{
    for (int i = 0; i < list->count; i++) {
        const product *p = &list->items[i];
        if (!p->per_head) {
            for (int64_t r = 0; r < p->repeats; r++) run_product(p, buffers, buffers->c);
            continue;
        }
#pragma omp parallel for schedule(static)
        for (int64_t r = 0; r < p->repeats; r++)
            run_product(p, buffers, buffers->c + (int64_t)omp_get_thread_num() * p->m * p->ldc);
    }
}

/* Seconds per call of one product threaded one way (split 0: OpenBLAS's threads; 1: a block of C
 * per thread), the median of `steps` timings of 5 calls each. */
static double time_product(const product *p, const product_buffers *buffers, int split, int steps, double *seconds)
{
    for (int s = 0; s < steps; s++) {
        double start = now(CLOCK_MONOTONIC);
        for (int call = 0; call < 5; call++)
            tp_cpu_gemm_threads(split, p->trans_a, p->trans_b, p->m, p->n, p->k, 1.0f, buffers->a, p->lda, buffers->b,
                                p->ldb, 0.0f, buffers->c, p->ldc);
        seconds[s] = (now(CLOCK_MONOTONIC) - start) / 5;
    }
    return median_of(seconds, steps);
}

/* One JSON line per product (the per-head ones run on one thread each, so not here): GFLOP/s with
 * OpenBLAS's threads and split, alternating for 3 rounds, and the median of the rounds' ratios. */
static void print_split_comparison(const char *config, const product_list *list, const product_buffers *buffers,
                                   int steps)
{
    double *seconds = tp_xmalloc((size_t)steps * sizeof *seconds);
    for (int i = 0; i < list->count; i++) {
        const product *p = &list->items[i];
        if (p->per_head) continue;
        double flops = call_flops(p), whole[3], split[3], ratio[3];
        for (int round = 0; round < 3; round++) {
            whole[round] = time_product(p, buffers, 0, steps, seconds);
            split[round] = time_product(p, buffers, 1, steps, seconds);
            ratio[round] = whole[round] / split[round];
        }
        printf("{\"config\":\"%s\",\"product\":\"%c%c %lldx%lldx%lld\",\"openblas_threads_gflops\":%.1f,"
               "\"split_gflops\":%.1f,\"split_speedup\":%.3f,\"threads\":%d}\n",
               config, p->trans_a ? 'T' : 'N', p->trans_b ? 'T' : 'N', (long long)p->m, (long long)p->n,
               (long long)p->k, flops / median_of(whole, 3) * 1e-9, flops / median_of(split, 3) * 1e-9,
               median_of(ratio, 3), omp_get_max_threads());
    }
    fflush(stdout);
    free(seconds);
}

typedef struct bench_run {
    bench_mode mode;
    tp_model model;
    tp_trainer trainer;    /* train and finetune */
    tp_ctx ctx;            /* infer */
    product_list products; /* gemm */
    product_buffers buffers;
    bench_batch b;
} bench_run;

/* One timed step of the run's mode. */
static int run_step(bench_run *r)
{
    if (r->mode == MODE_GEMM) {
        run_products(&r->products, &r->buffers);
        return 0;
    }
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
    if (r->mode == MODE_GEMM) {
        const tp_batch *batch = &r->b.batch;
        r->products = train_products(&r->model.hp, batch->batch_size, batch->seq_length, batch->mlm_count);
        double made = product_flops(&r->products),
               counted = step_flops(&r->model.hp, MODE_GEMM, batch->batch_size, batch->seq_length, batch->mlm_count);
        if (fabs(made - counted) > 1e-9 * counted)
            return tp_fail("the products of --mode gemm make %.6g FLOPs, the MFU counts %.6g", made, counted);
        r->buffers = product_buffers_make(&r->products);
        return 0;
    }
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
    if (mode != MODE_GEMM) tp_model_allocate(&r.model, &tp_cpu_backend, 1);
    char dir[] = "/tmp/tp_bench_XXXXXX";
    if (!mkdtemp(dir)) return tp_fail("mkdtemp failed");
    make_batch(&r.b, bc->batch_size, bc->seq_length);
    if (setup_steps(&r, run, dir) < 0) return -1;
    if (mode == MODE_GEMM && compare_split) print_split_comparison(bc->name, &r.products, &r.buffers, steps);
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
    if (mode == MODE_GEMM)
        free(r.buffers.a), free(r.buffers.b), free(r.buffers.c);
    else if (mode == MODE_INFER)
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
        else if (!strcmp(argv[i], "--compare_split"))
            compare_split = 1;
        else {
            printf("usage: bench-bert [--configs tiny,small,base] [--mode train|finetune|infer|gemm] [--steps N]\n"
                   "                  [--threads N] [--every_row] [--compare_split]\n"
                   "Times tp's BERT steps on random data (run from the repository root), 2 untimed steps first:\n"
                   "  --mode train     pre-training step: forward + backward + AdamW, MLM + SP (default)\n"
                   "  --mode finetune  classifier step: forward + backward + AdamW, BERT + cls head, 2 labels\n"
                   "  --mode infer     the classifier's forward alone, eval mode (no dropout, no tape)\n"
                   "  --mode gemm      the train step's matrix products alone (the FLOPs its MFU counts), through\n"
                   "                   the CPU backend's gemm (OpenBLAS): the MFU the products reach on these shapes\n"
                   "  --steps N        timed steps (default 5); one JSON line per config: their median as tokens per\n"
                   "                   wall-clock second and per CPU second of the process (all threads), and the\n"
                   "                   MFU against this machine's fp32 peak, measured at start (peak_flops:\n"
                   "                   fused multiply-adds on every thread, bench/cpu_peak.h)\n"
                   "  --threads N      OpenMP threads (default: OMP_NUM_THREADS)\n"
                   "  --every_row      the last layer computes every row, not only those the targets read (the\n"
                   "                   masked tokens and each sequence's first and last; see docs/benchmarks.md)\n"
                   "  --compare_split  with --mode gemm: first one JSON line per product, timed with OpenBLAS's own\n"
                   "                   threads and split into a block of the output per thread (tp_cpu_gemm_threads)\n");
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
