/* tp-finetune: fine-tune a pre-trained encoder on a classification task (TencentPretrain's TSV
 * format), evaluating on dev after every epoch, keeping the best-on-dev weights and reporting
 * test with them. */
#include <math.h>
#include <omp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/checkpoint.h"
#include "core/cli.h"
#include "core/config.h"
#include "core/error.h"
#include "core/fileio.h"
#include "core/hf.h"
#include "core/metrics.h"
#include "core/model.h"
#include "core/rng.h"
#include "core/trainer.h"
#include "core/tsv.h"
#include "tokenizers/tokenizer.h"

static const char usage[] =
    "usage: tp-finetune --config RUN.json [--resume] [--KEY VALUE ...] [--model.KEY VALUE ...]\n"
    "\n"
    "Fine-tunes a classifier: the encoder of a pre-trained model + TencentPretrain's cls head\n"
    "(pooling -> linear -> tanh -> linear).  Data: TencentPretrain's TSV files (header row with\n"
    "label, text_a and optionally text_b; label = class id 0..N-1).  After every epoch the dev set\n"
    "is evaluated (accuracy, macro-F1, confusion matrix); the best-on-dev weights are kept in\n"
    "<output_dir>/best and the test set is evaluated with them at the end.\n"
    "\n"
    "Options:\n"
    "  --config FILE            run config (JSON), e.g. configs/finetune_fortunes.json\n"
    "  --resume                 continue after the last completed epoch (exactly: same losses)\n"
    "  --help                   this text\n"
    "\n"
    "Run-config keys (default):\n"
    "  model                    model config, TencentPretrain format; its targets are replaced by cls\n"
    "  hf_model_dir             instead of model + pretrained_model_path: a Hugging Face BERT directory\n"
    "                           (config.json, model.safetensors, vocab.txt)\n"
    "  pretrained_model_path    weights to start from: a tp model.safetensors (pre-training heads are\n"
    "                           ignored; every embedding and encoder tensor must match) (none: random)\n"
    "  vocab_path               vocabulary (hf_model_dir/vocab.txt with hf_model_dir)\n"
    "  do_lower_case            lower-case and strip accents (true)\n"
    "  train_path, dev_path     TSV files (required)\n"
    "  test_path                TSV file evaluated with the best weights at the end (none)\n"
    "  output_dir               checkpoints, best weights and metrics (required)\n"
    "  pooling                  first, mean, max or last (first)\n"
    "  epochs_num               epochs (3)\n"
    "  batch_size               sequences per step (32)\n"
    "  seq_length               tokens per sequence incl. [CLS]/[SEP] (128)\n"
    "  learning_rate            peak learning rate (2e-5)\n"
    "  scheduler, warmup, decay, weight_decay, beta1, beta2, adam_epsilon, correct_bias,\n"
    "  max_grad_norm, max_bad_steps, report_steps, keep_checkpoints, metrics_path\n"
    "                           as in tp-pretrain (warmup 0.1 of all steps)\n"
    "  seed                     initialisation of the head, data order and dropout (7)\n"
    "  threads                  CPU threads (all cores)\n";

static volatile sig_atomic_t stop_requested;
static void request_stop(int signal_number) { stop_requested = signal_number; }

/* A split tokenized and padded: [count, seq] ids and segments, [count] labels. */
typedef struct encoded_split {
    int64_t count, seq;
    int32_t *src, *seg, *labels;
} encoded_split;

typedef struct finetune_job {
    tp_config *run, *model_config;
    tp_tokenizer *tokenizer;
    tp_tsv_task *tasks[3];     /* train, dev, test (test may be NULL) */
    encoded_split splits[3];
    tp_model model;
    tp_trainer trainer;
    char *model_config_json;
    int64_t batch_size, seq_length, epochs, steps_per_epoch, labels_num;
    /* The training batch being assembled: the epoch's order and the next position in it. */
    int64_t *order, cursor;
    tp_batch batch;
    double best_dev;
    char best_dir[4096];
} finetune_job;


/* ---- data --------------------------------------------------------------------- */

static void append_text(const tp_tokenizer *tok, const char *text, tp_ids *ids)
{
    tp_tokenizer_encode(tok, text, strlen(text), ids);
    tp_ids_push(ids, tok->sep_id);
}

static void encode_split(const tp_tokenizer *tok, const tp_tsv_task *task, int64_t seq, encoded_split *out)
{
    tp_ids ids = {0};
    out->count = task->count;
    out->seq = seq;
    out->src = tp_xmalloc((size_t)(task->count * seq) * sizeof *out->src);
    out->seg = tp_xmalloc((size_t)(task->count * seq) * sizeof *out->seg);
    out->labels = tp_xmalloc((size_t)(task->count ? task->count : 1) * sizeof *out->labels);
    for (int64_t i = 0; i < task->count; i++) {
        const tp_tsv_example *example = &task->examples[i];
        tp_ids_clear(&ids);
        tp_ids_push(&ids, tok->cls_id);
        append_text(tok, example->text_a, &ids);
        int64_t a_length = ids.count;
        if (example->text_b) append_text(tok, example->text_b, &ids);
        for (int64_t s = 0; s < seq; s++) {
            int real = s < ids.count;
            out->src[i * seq + s] = real ? ids.ids[s] : tok->pad_id;
            out->seg[i * seq + s] = real ? (s < a_length ? 1 : 2) : 0;
        }
        out->labels[i] = (int32_t)example->label;
    }
    tp_ids_free(&ids);
}

/* Rows first..first+rows of a split into the job's batch buffers. */
static const tp_batch *fill_batch(finetune_job *job, const encoded_split *split, const int64_t *indices,
                                  int64_t rows)
{
    tp_batch *batch = &job->batch;
    int64_t seq = split->seq;
    batch->batch_size = rows;
    batch->seq_length = seq;
    batch->real_tokens = 0;
    for (int64_t r = 0; r < rows; r++) {
        int64_t i = indices[r];
        memcpy(batch->src + r * seq, split->src + i * seq, (size_t)seq * sizeof *batch->src);
        memcpy(batch->seg + r * seq, split->seg + i * seq, (size_t)seq * sizeof *batch->seg);
        batch->labels[r] = split->labels[i];
        for (int64_t s = 0; s < seq; s++) batch->real_tokens += split->seg[i * seq + s] != 0;
    }
    return batch;
}

/* The training order of an epoch: a permutation drawn from (seed, TP_STREAM_DATA_ORDER, epoch). */
static void epoch_order(finetune_job *job, int64_t epoch)
{
    int64_t count = job->splits[0].count;
    for (int64_t i = 0; i < count; i++) job->order[i] = i;
    tp_rng rng = tp_rng_make(job->trainer.options.seed, TP_STREAM_DATA_ORDER, (uint64_t)epoch << 32);
    tp_rng_shuffle_i64(&rng, job->order, count);
    job->cursor = 0;
}

static int micro_step(tp_trainer *trainer, void *user, tp_step_metrics *metrics)
{
    finetune_job *job = user;
    int64_t rows = job->splits[0].count - job->cursor;
    if (rows > job->batch_size) rows = job->batch_size;
    const tp_batch *batch = fill_batch(job, &job->splits[0], job->order + job->cursor, rows);
    job->cursor += rows;
    return tp_trainer_model_step(trainer, batch, metrics);
}

/* ---- evaluation --------------------------------------------------------------- */

typedef struct evaluation {
    double accuracy, macro_f1;
    tp_confusion *confusion;
} evaluation;

static int evaluate(finetune_job *job, const encoded_split *split, evaluation *result)
{
    tp_ctx *ctx = &job->trainer.ctx;
    int64_t *indices = tp_xmalloc((size_t)job->batch_size * sizeof *indices);
    float *logits = NULL;
    result->confusion = tp_confusion_new(job->labels_num);
    for (int64_t first = 0; first < split->count; first += job->batch_size) {
        int64_t rows = split->count - first < job->batch_size ? split->count - first : job->batch_size;
        for (int64_t r = 0; r < rows; r++) indices[r] = first + r;
        tp_model_batch batch = tp_model_batch_upload(ctx, fill_batch(job, split, indices, rows));
        tp_model_output out;
        ctx->record = 0;
        ctx->training = 0;
        if (tp_model_forward(&job->model, ctx, &batch, &out) < 0) return -1;
        const tp_target_result *head = &out.results[0];
        int64_t cols = tp_cols(head->logits);
        logits = tp_xrealloc(logits, (size_t)(rows * cols) * sizeof *logits);
        ctx->backend->download(logits, head->logits->data, (size_t)(rows * cols) * sizeof *logits);
        for (int64_t r = 0; r < rows; r++) {
            int64_t best = 0;
            for (int64_t c = 1; c < head->classes; c++)
                if (logits[r * cols + c] > logits[r * cols + best]) best = c;
            tp_confusion_add(result->confusion, split->labels[first + r], best);
        }
        tp_ctx_reset(ctx);
    }
    free(indices);
    free(logits);
    result->accuracy = tp_confusion_accuracy(result->confusion);
    result->macro_f1 = tp_confusion_macro_f1(result->confusion);
    return 0;
}

static void report_evaluation(finetune_job *job, const char *split, const char *epoch, const evaluation *result)
{
    const tp_tsv_task *train = job->tasks[0];
    fprintf(stderr, "epoch %s | %s accuracy %.4f | macro-F1 %.4f\n", epoch, split, result->accuracy,
            result->macro_f1);
    tp_confusion_print(stderr, result->confusion, (const char *const *)train->label_names);
    fprintf(job->trainer.metrics_file,
            "{\"step\":%lld,\"epoch\":%s,\"split\":\"%s\",\"accuracy\":%.9g,\"macro_f1\":%.9g}\n",
            (long long)job->trainer.step, epoch, split, result->accuracy, result->macro_f1);
    fflush(job->trainer.metrics_file);
}

/* ---- set-up ------------------------------------------------------------------- */

static int read_tasks(finetune_job *job)
{
    static const char *const keys[] = {"train_path", "dev_path", "test_path"};
    const char *paths[3] = {NULL, NULL, NULL};
    for (int i = 0; i < 3; i++) {
        if (tp_config_string(job->run, keys[i], NULL, &paths[i]) < 0) return -1;
        if (!paths[i] && i < 2) return tp_fail("%s: key '%s': missing", tp_config_name(job->run), keys[i]);
    }
    tp_tsv_options options = {.kind = TP_TASK_CLASSIFICATION};
    if (!(job->tasks[0] = tp_tsv_read(paths[0], &options))) return -1;
    /* dev and test must use the training set's labels. */
    options.num_labels = job->tasks[0]->num_labels;
    for (int i = 1; i < 3; i++)
        if (paths[i] && !(job->tasks[i] = tp_tsv_read(paths[i], &options))) return -1;
    job->labels_num = job->tasks[0]->num_labels;
    if (job->labels_num < 2)
        return tp_fail("%s: only %lld label(s): classification needs at least 2", paths[0], (long long)job->labels_num);
    return 0;
}

static int open_model(finetune_job *job, const char **hf_dir, const char **pretrained)
{
    const char *model_path = NULL, *vocab_path = NULL;
    int do_lower_case = 1;
    char hf_vocab[4200];
    if (tp_config_string(job->run, "model", NULL, &model_path) < 0 ||
        tp_config_string(job->run, "hf_model_dir", NULL, hf_dir) < 0 ||
        tp_config_string(job->run, "pretrained_model_path", NULL, pretrained) < 0 ||
        tp_config_string(job->run, "vocab_path", NULL, &vocab_path) < 0 ||
        tp_config_bool(job->run, "do_lower_case", 1, &do_lower_case) < 0)
        return -1;
    if (*hf_dir && (model_path || *pretrained))
        return tp_fail("%s: key 'hf_model_dir': give either hf_model_dir or model (+ pretrained_model_path)",
                       tp_config_name(job->run));
    if (*hf_dir) {
        if (!(job->model_config = tp_hf_bert_config(*hf_dir))) return -1;
        snprintf(hf_vocab, sizeof hf_vocab, "%s/vocab.txt", *hf_dir);
        if (!vocab_path) vocab_path = hf_vocab;
    } else {
        if (!model_path) return tp_fail("%s: key 'model': missing (or give hf_model_dir)", tp_config_name(job->run));
        if (!(job->model_config = tp_config_load(model_path))) return -1;
    }
    if (!vocab_path) return tp_fail("%s: key 'vocab_path': missing", tp_config_name(job->run));
    tp_tokenizer_options tokenizer_options = {"bert", vocab_path, do_lower_case};
    job->tokenizer = tp_tokenizer_create(&tokenizer_options);
    return job->tokenizer ? 0 : -1;
}

/* The model config's targets become the classification head. */
static int configure_head(finetune_job *job)
{
    const char *pooling = NULL;
    char text[32];
    if (tp_config_string(job->run, "pooling", "first", &pooling) < 0) return -1;
    snprintf(text, sizeof text, "%lld", (long long)job->labels_num);
    tp_config_ignore(job->model_config, "target");
    if (tp_config_set(job->model_config, "target", "[\"cls\"]") < 0 ||
        tp_config_set(job->model_config, "labels_num", text) < 0 ||
        tp_config_set(job->model_config, "pooling", pooling) < 0)
        return -1;
    return 0;
}

static int load_weights(finetune_job *job, const char *hf_dir, const char *pretrained)
{
    if (hf_dir) return tp_hf_bert_load(hf_dir, &job->model.params);
    if (!pretrained) return 0;
    int64_t loaded = tp_checkpoint_load_backbone(pretrained, &job->model.params, "target.");
    if (loaded < 0) return -1;
    fprintf(stderr, "loaded %lld tensors from %s\n", (long long)loaded, pretrained);
    return 0;
}

static int read_run(finetune_job *job, tp_train_options *options, int64_t *threads)
{
    char text[32];
    if (tp_config_int(job->run, "epochs_num", 3, 1, 100000, &job->epochs) < 0 ||
        tp_config_int(job->run, "batch_size", 32, 1, 1 << 20, &job->batch_size) < 0 ||
        tp_config_int(job->run, "seq_length", 128, 2, 1 << 20, &job->seq_length) < 0 ||
        tp_config_int(job->run, "threads", 0, 0, 4096, threads) < 0)
        return -1;
    job->steps_per_epoch = (job->tasks[0]->count + job->batch_size - 1) / job->batch_size;
    /* The schedule spans the whole run; tp-finetune's defaults differ from pre-training's. */
    snprintf(text, sizeof text, "%lld", (long long)(job->steps_per_epoch * job->epochs));
    if (!tp_config_has(job->run, "learning_rate")) tp_config_set(job->run, "learning_rate", "2e-5");
    tp_config_set(job->run, "total_steps", text);
    if (tp_train_options_read(job->run, options) < 0) return -1;
    if (options->accumulation_steps != 1)
        return tp_fail("%s: key 'accumulation_steps': tp-finetune supports only 1 yet", tp_config_name(job->run));
    return 0;
}

static int setup(finetune_job *job, const tp_cli *cli, tp_train_options *options)
{
    const char *hf_dir = NULL, *pretrained = NULL;
    int64_t threads = 0;
    if (!(job->run = tp_config_load(cli->config_path))) return -1;
    if (tp_cli_apply(cli, job->run, NULL) < 0 || read_tasks(job) < 0 || open_model(job, &hf_dir, &pretrained) < 0 ||
        tp_cli_apply(cli, NULL, job->model_config) < 0 || configure_head(job) < 0 || read_run(job, options, &threads) < 0)
        return -1;
    if (tp_model_build(&job->model, job->model_config, job->tokenizer->vocab_size) < 0) return -1;
    if (tp_config_check_unused(job->model_config) < 0 || tp_config_check_unused(job->run) < 0) return -1;
    if (job->seq_length > job->model.hp.max_seq_length)
        return tp_fail("%s: key 'seq_length': %lld exceeds the model's max_seq_length %lld", tp_config_name(job->run),
                       (long long)job->seq_length, (long long)job->model.hp.max_seq_length);
    if (threads > 0) omp_set_num_threads((int)threads);
    tp_model_allocate(&job->model, &tp_cpu_backend, options->seed);
    if (load_weights(job, hf_dir, pretrained) < 0) return -1;
    job->model_config_json = tp_config_to_json(job->model_config);
    for (int i = 0; i < 3; i++)
        if (job->tasks[i]) encode_split(job->tokenizer, job->tasks[i], job->seq_length, &job->splits[i]);
    int64_t tokens = job->batch_size * job->seq_length;
    job->batch.src = tp_xmalloc((size_t)tokens * sizeof(int32_t));
    job->batch.seg = tp_xmalloc((size_t)tokens * sizeof(int32_t));
    job->batch.labels = tp_xmalloc((size_t)job->batch_size * sizeof(int32_t));
    job->order = tp_xmalloc((size_t)job->splits[0].count * sizeof *job->order);
    job->best_dev = -1;
    fprintf(stderr, "model: %lld parameters; %lld labels; %lld train / %lld dev examples; %lld steps per epoch\n",
            (long long)tp_params_logical_count(&job->model.params), (long long)job->labels_num,
            (long long)job->splits[0].count, (long long)job->splits[1].count, (long long)job->steps_per_epoch);
    if (tp_trainer_init(&job->trainer, options, &job->model, job->model_config_json) < 0) return -1;
    snprintf(job->best_dir, sizeof job->best_dir, "%s/best", options->output_dir);
    return 0;
}

/* ---- the epochs --------------------------------------------------------------- */

/* What a checkpoint stores besides the trainer's state. */
static const char *const epoch_keys[] = {"epochs_done", "best_dev", NULL};

static int save_epoch(finetune_job *job, int64_t epochs_done)
{
    double values[2] = {(double)epochs_done, job->best_dev};
    tp_caller_state state = {epoch_keys, values};
    return tp_trainer_save(&job->trainer, &state);
}

static int resume_or_start(finetune_job *job, int resume, int64_t *first_epoch)
{
    *first_epoch = 0;
    if (!resume) return tp_trainer_check_fresh(&job->trainer);
    int resumed = 0;
    double values[2];
    tp_caller_state state = {epoch_keys, values};
    if (tp_trainer_resume(&job->trainer, &resumed, &state) < 0) return -1;
    if (resumed) {
        *first_epoch = (int64_t)values[0];
        job->best_dev = values[1];
        fprintf(stderr, "resumed after epoch %lld (step %lld)\n", (long long)*first_epoch, (long long)job->trainer.step);
    }
    return 0;
}

static int run_epoch(finetune_job *job, int64_t epoch)
{
    char epoch_text[32];
    epoch_order(job, epoch);
    while (job->cursor < job->splits[0].count)
        if (tp_trainer_step(&job->trainer, micro_step, job) < 0) return -1;
    evaluation dev;
    if (evaluate(job, &job->splits[1], &dev) < 0) return -1;
    snprintf(epoch_text, sizeof epoch_text, "%lld", (long long)epoch + 1);
    report_evaluation(job, "dev", epoch_text, &dev);
    int improved = dev.accuracy > job->best_dev;
    tp_confusion_free(dev.confusion);
    if (improved) {
        job->best_dev = dev.accuracy;
        if (tp_checkpoint_save(job->best_dir, epoch + 1, &job->model.params, NULL, NULL, job->model_config_json,
                               "{}", 1) < 0)
            return -1;
    }
    return save_epoch(job, epoch + 1);
}

static int evaluate_test(finetune_job *job)
{
    char dir[4096], path[4200];
    if (!job->tasks[2]) return 0;
    if (!tp_checkpoint_latest(job->best_dir, dir, sizeof dir))
        return tp_fail("%s: no best-on-dev weights to evaluate test with", job->best_dir);
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    if (tp_checkpoint_load_weights(path, &job->model.params) < 0) return -1;
    evaluation test;
    if (evaluate(job, &job->splits[2], &test) < 0) return -1;
    report_evaluation(job, "test", "\"best\"", &test);
    tp_confusion_free(test.confusion);
    return 0;
}

static int run(finetune_job *job, const tp_cli *cli)
{
    tp_train_options options;
    int64_t first_epoch = 0;
    if (setup(job, cli, &options) < 0 || resume_or_start(job, tp_cli_flag(cli, TP_CLI_RESUME), &first_epoch) < 0) return -1;
    signal(SIGINT, request_stop);
    signal(SIGTERM, request_stop);
    for (int64_t epoch = first_epoch; epoch < job->epochs; epoch++) {
        if (run_epoch(job, epoch) < 0) return -1;
        if (stop_requested) {
            fprintf(stderr, "stopped by signal %d after epoch %lld\n", (int)stop_requested, (long long)epoch + 1);
            return 0;
        }
    }
    return evaluate_test(job);
}

static void cleanup(finetune_job *job)
{
    tp_trainer_free(&job->trainer);
    tp_model_free(&job->model);
    for (int i = 0; i < 3; i++) {
        if (job->tasks[i]) tp_tsv_free(job->tasks[i]);
        free(job->splits[i].src), free(job->splits[i].seg), free(job->splits[i].labels);
    }
    if (job->tokenizer) tp_tokenizer_free(job->tokenizer);
    if (job->model_config) tp_config_free(job->model_config);
    if (job->run) tp_config_free(job->run);
    free(job->batch.src), free(job->batch.seg), free(job->batch.labels), free(job->order);
    free(job->model_config_json);
}

static int run_job(void *job, const tp_cli *cli) { return run(job, cli); }
static void cleanup_job(void *job) { cleanup(job); }

int main(int argc, char **argv)
{
    finetune_job job;
    memset(&job, 0, sizeof job);
    return tp_cli_main(argc, argv, "tp-finetune", usage, run_job, cleanup_job, &job);
}
