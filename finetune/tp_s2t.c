/* tp-s2t: trains a speech-to-text model on `text<TAB>path` lists, then decodes a held-out list
 * greedily and scores it (word error rate). */
#include <omp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/cli.h"
#include "core/config.h"
#include "core/device.h"
#include "core/error.h"
#include "core/fileio.h"
#include "core/metrics.h"
#include "core/model.h"
#include "core/preprocess_s2t.h"
#include "core/rng.h"
#include "core/run_tokenizer.h"
#include "core/trainer.h"
#include "tokenizers/tokenizer.h"

static const char usage[] =
    "usage: tp-s2t --config RUN.json [--KEY VALUE ...] [--model.KEY VALUE ...]\n"
    "\n"
    "Trains a speech-to-text model (a model config with the speech embedding, a decoder and the lm\n"
    "target, e.g. models/s2t/small_config.json) on a list of utterances, then decodes a held-out list\n"
    "greedily and prints its word error rate.  Lists are TencentPretrain's s2t format: one\n"
    "`text<TAB>path` line per utterance (WAV, FLAC, ...; features: audio_feature_size Kaldi filter\n"
    "banks + utterance CMVN, docs/media.md).  Targets are [CLS] + the text's tokens + [SEP]; decoding\n"
    "starts from [CLS] and stops at [SEP].\n"
    "\n"
    "Options:\n"
    "  --config FILE            run config (JSON)\n"
    "  --help                   this text\n"
    "\n"
    "Run-config keys (default):\n"
    "  model                    model config (required)\n"
    TP_RUN_TOKENIZER_HELP
    "  word_delimiter           a token written for each space between words (e.g. \"|\" with the char\n"
    "                           tokenizer, whose vocabulary has no space); decoding turns it back (none)\n"
    "  train_path               training list (required)\n"
    "  dev_path                 held-out list, decoded and scored after training (none)\n"
    "  batch_size               utterances per step (16)\n"
    "  max_new_tokens           decoding stops after this many tokens (200)\n"
    "  output_dir               checkpoints, metrics and <output_dir>/predictions.tsv (required)\n"
    "  total_steps, learning_rate, scheduler, warmup, weight_decay, beta1, beta2, adam_epsilon,\n"
    "  correct_bias, max_grad_norm, seed, report_steps, save_checkpoint_steps, keep_checkpoints:\n"
    "                           as tp-pretrain (tp-pretrain --help)\n"
    "  threads                  CPU threads (all cores)\n"
    "  device                   cpu or cuda (cpu)\n"
    "\n"
    "The run starts fresh: an output_dir with checkpoints is refused.  SIGINT or SIGTERM stops after\n"
    "the current step (a checkpoint is saved) and skips decoding.\n";

static volatile sig_atomic_t stop_requested;
static void request_stop(int signal_number) { stop_requested = signal_number; }

#define MAX_CONV 8

typedef struct s2t_job {
    tp_config *run, *model_config;
    tp_tokenizer *tokenizer;
    const char *delimiter;
    tp_s2t_set train, dev;
    int32_t **targets; /* per training utterance */
    int64_t *target_lengths;
    int64_t kernels[MAX_CONV];
    int layers;
    int64_t batch_size, max_new_tokens, *order, cursor, epoch;
    tp_batch batch;
    tp_model model;
    tp_trainer trainer;
    char *model_config_json;
} s2t_job;

/* text with each space replaced by the delimiter (a new string). */
static char *delimited(const char *text, const char *delimiter)
{
    size_t extra = delimiter ? strlen(delimiter) : 1, length = 0;
    for (const char *c = text; *c; c++) length += *c == ' ' ? extra : 1;
    char *out = tp_xmalloc(length + 1), *w = out;
    for (const char *c = text; *c; c++) {
        if (*c == ' ' && delimiter) {
            memcpy(w, delimiter, strlen(delimiter));
            w += strlen(delimiter);
        } else {
            *w++ = *c;
        }
    }
    *w = '\0';
    return out;
}

/* [CLS] + tokens + [SEP] of every training transcript. */
static int encode_targets(s2t_job *job)
{
    const tp_tokenizer *tok = job->tokenizer;
    if (tok->cls_id < 0 || tok->sep_id < 0 || tok->pad_id < 0)
        return tp_fail("%s: the vocabulary lacks [CLS], [SEP] or [PAD] (the targets' start, end and padding)",
                       tok->source_path);
    job->targets = tp_xcalloc((size_t)job->train.count, sizeof *job->targets);
    job->target_lengths = tp_xcalloc((size_t)job->train.count, sizeof *job->target_lengths);
    tp_ids ids = {0};
    for (int64_t i = 0; i < job->train.count; i++) {
        char *text = delimited(job->train.items[i].text, job->delimiter);
        tp_ids_clear(&ids);
        tp_ids_push(&ids, tok->cls_id);
        int status = tp_tokenizer_encode(tok, text, strlen(text), &ids);
        free(text);
        if (status < 0) {
            tp_ids_free(&ids);
            return -1;
        }
        tp_ids_push(&ids, tok->sep_id);
        if (ids.count - 1 > job->model.hp.max_seq_length) {
            tp_ids_free(&ids);
            return tp_fail("utterance %lld (\"%s\"): %lld target tokens, more than the model's max_seq_length %lld",
                           (long long)i + 1, job->train.items[i].text, (long long)ids.count - 1,
                           (long long)job->model.hp.max_seq_length);
        }
        job->targets[i] = tp_xmalloc((size_t)ids.count * sizeof **job->targets);
        memcpy(job->targets[i], ids.ids, (size_t)ids.count * sizeof **job->targets);
        job->target_lengths[i] = ids.count;
    }
    tp_ids_free(&ids);
    return 0;
}

/* The next batch_size utterances of this epoch's shuffled order. */
static int micro_step(tp_trainer *trainer, void *user, tp_step_metrics *metrics)
{
    s2t_job *job = user;
    int64_t indices[4096];
    const int32_t *targets[4096];
    int64_t lengths[4096];
    for (int64_t r = 0; r < job->batch_size; r++) {
        if (job->cursor == 0) {
            for (int64_t i = 0; i < job->train.count; i++) job->order[i] = i;
            tp_rng rng = tp_rng_make(trainer->options.seed, TP_STREAM_DATA_ORDER, (uint64_t)job->epoch << 32);
            tp_rng_shuffle_i64(&rng, job->order, job->train.count);
        }
        indices[r] = job->order[job->cursor];
        targets[r] = job->targets[indices[r]];
        lengths[r] = job->target_lengths[indices[r]];
        if (++job->cursor == job->train.count) job->cursor = 0, job->epoch++;
    }
    tp_s2t_batch_free(&job->batch);
    tp_s2t_fill_batch(&job->train, indices, job->batch_size, targets, lengths, job->kernels, job->layers,
                      job->tokenizer->pad_id, &job->batch);
    return tp_trainer_model_step(trainer, &job->batch, metrics);
}

/* The decoded ids as text: tokens joined, the delimiter back to spaces. */
static char *detokenize(const s2t_job *job, const int32_t *ids, int64_t n)
{
    size_t length = 1;
    for (int64_t i = 0; i < n; i++) length += strlen(job->tokenizer->tokens[ids[i]]) + 1;
    char *joined = tp_xmalloc(length), *w = joined;
    for (int64_t i = 0; i < n; i++) {
        const char *token = job->tokenizer->tokens[ids[i]];
        int is_delimiter = job->delimiter && !strcmp(token, job->delimiter);
        if (!job->delimiter && i > 0) *w++ = ' '; /* word-level tokenizers: words apart */
        if (is_delimiter) *w++ = ' ';
        else w += sprintf(w, "%s", token);
    }
    *w = '\0';
    return joined;
}

static int evaluate(s2t_job *job)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/predictions.tsv", job->trainer.options.output_dir);
    int32_t *ids = tp_xmalloc((size_t)job->max_new_tokens * sizeof *ids);
    size_t capacity = 4096, used = 0;
    char *report = tp_xmalloc(capacity);
    tp_wer_counts wer = {0, 0};
    tp_ctx ctx;
    tp_ctx_init(&ctx, job->model.params.backend, (size_t)1 << 20);
    int status = 0;
    for (int64_t i = 0; status == 0 && i < job->dev.count; i++) {
        int64_t n = tp_s2t_greedy(&job->model, &ctx, &job->dev, i, job->kernels, job->layers, job->tokenizer->cls_id,
                                  job->tokenizer->sep_id, job->max_new_tokens, ids);
        if (n < 0) {
            status = -1;
            break;
        }
        char *text = detokenize(job, ids, n);
        tp_wer_add(&wer, job->dev.items[i].text, text);
        size_t need = strlen(text) + strlen(job->dev.items[i].text) + 3;
        if (used + need >= capacity) report = tp_xrealloc(report, capacity = 2 * (used + need));
        used += (size_t)sprintf(report + used, "%s\t%s\n", job->dev.items[i].text, text);
        free(text);
    }
    tp_ctx_free(&ctx);
    if (status == 0) status = tp_write_file_atomic(path, report, used);
    if (status == 0)
        printf("dev: %lld utterances, %lld reference words, WER %.4f (greedy; %s)\n", (long long)job->dev.count,
               (long long)wer.reference_words, tp_wer(&wer), path);
    free(report);
    free(ids);
    return status;
}

static int read_inputs(s2t_job *job)
{
    tp_config *run = job->run;
    const char *model_path = NULL, *train_path = NULL, *dev_path = NULL;
    if (tp_config_string(run, "model", NULL, &model_path) < 0 || tp_config_string(run, "train_path", NULL, &train_path) < 0 ||
        tp_config_string(run, "dev_path", NULL, &dev_path) < 0 ||
        tp_config_string(run, "word_delimiter", NULL, &job->delimiter) < 0 ||
        tp_config_int(run, "batch_size", 16, 1, 4096, &job->batch_size) < 0 ||
        tp_config_int(run, "max_new_tokens", 200, 1, 1 << 20, &job->max_new_tokens) < 0)
        return -1;
    if (!model_path) return tp_fail("%s: key 'model': missing (the model config to train)", tp_config_name(run));
    if (!train_path) return tp_fail("%s: key 'train_path': missing", tp_config_name(run));
    if (!(job->tokenizer = tp_run_tokenizer(run, NULL)) || !(job->model_config = tp_config_load(model_path))) return -1;
    int64_t mel_bins = 0;
    int count = 0;
    if (tp_config_int(job->model_config, "audio_feature_size", 80, 1, 1 << 16, &mel_bins) < 0 ||
        tp_config_ints(job->model_config, "conv_kernel_sizes", 1, 1023, job->kernels, MAX_CONV, &count) < 0)
        return -1;
    job->layers = count;
    if (count == 0)
        return tp_fail("%s: key 'conv_kernel_sizes': missing (tp-s2t needs the speech embedding's kernels)",
                       tp_config_name(job->model_config));
    if (tp_s2t_read(train_path, mel_bins, &job->train) < 0) return -1;
    return dev_path ? tp_s2t_read(dev_path, mel_bins, &job->dev) : 0;
}

static int train(s2t_job *job)
{
    tp_trainer *trainer = &job->trainer;
    while (trainer->step < trainer->options.total_steps && !trainer->stop)
        if (tp_trainer_step(trainer, micro_step, job) < 0) return -1;
    static const char *const no_keys[] = {NULL};
    const tp_caller_state state = {no_keys, NULL}; /* fresh runs only: no data position to keep */
    return tp_trainer_save(trainer, &state);
}

static int run(s2t_job *job, const tp_cli *cli)
{
    int64_t threads = 0;
    tp_train_options options;
    const tp_backend *backend = NULL;
    if (!(job->run = tp_config_load(cli->config_path))) return -1;
    if (tp_cli_apply(cli, job->run, NULL) < 0 || read_inputs(job) < 0 || tp_cli_apply(cli, NULL, job->model_config) < 0 ||
        tp_config_int(job->run, "threads", 0, 0, 4096, &threads) < 0 || tp_train_options_read(job->run, &options) < 0 ||
        !(backend = tp_device_from_config(job->run)))
        return -1;
    if (tp_model_build(&job->model, job->model_config, job->tokenizer->vocab_size) < 0 ||
        tp_config_check_unused(job->model_config) < 0 || tp_config_check_unused(job->run) < 0)
        return -1;
    if (job->model.embedding_count < 1 || strcmp(job->model.embedding_types[0]->name, "speech") || !job->model.decoder_type ||
        job->model.target_count != 1 || strcmp(tp_model_target_name(&job->model, 0), "lm"))
        return tp_fail("%s: tp-s2t needs embedding [speech, ...], a decoder and target [lm]",
                       tp_config_name(job->model_config));
    if (encode_targets(job) < 0) return -1;
    if (threads > 0) omp_set_num_threads((int)threads);
    job->model_config_json = tp_config_to_json(job->model_config);
    tp_model_allocate(&job->model, backend, options.seed);
    if (tp_trainer_init(&job->trainer, &options, &job->model, job->model_config_json) < 0 ||
        tp_trainer_check_fresh(&job->trainer) < 0)
        return -1;
    fprintf(stderr, "model: %lld parameters; %lld training and %lld held-out utterances; %lld per step\n",
            (long long)tp_params_logical_count(&job->model.params), (long long)job->train.count,
            (long long)job->dev.count, (long long)job->batch_size);
    job->order = tp_xmalloc((size_t)job->train.count * sizeof *job->order);
    signal(SIGINT, request_stop);
    signal(SIGTERM, request_stop);
    tp_trainer_watch_stop(&job->trainer, &stop_requested);
    if (train(job) < 0) return -1;
    if (job->trainer.stop) {
        fprintf(stderr, "stopped by signal %d at step %lld\n", (int)stop_requested, (long long)job->trainer.step);
        return 0;
    }
    return job->dev.count ? evaluate(job) : 0;
}

static void cleanup(s2t_job *job)
{
    tp_trainer_free(&job->trainer);
    tp_model_free(&job->model);
    for (int64_t i = 0; job->targets && i < job->train.count; i++) free(job->targets[i]);
    free(job->targets);
    free(job->target_lengths);
    free(job->order);
    tp_s2t_batch_free(&job->batch);
    tp_s2t_set_free(&job->train);
    tp_s2t_set_free(&job->dev);
    if (job->tokenizer) tp_tokenizer_free(job->tokenizer);
    if (job->model_config) tp_config_free(job->model_config);
    if (job->run) tp_config_free(job->run);
    free(job->model_config_json);
}

static int run_job(void *job, const tp_cli *cli) { return run(job, cli); }
static void cleanup_job(void *job) { cleanup(job); }

int main(int argc, char **argv)
{
    s2t_job job;
    memset(&job, 0, sizeof job);
    return tp_cli_main(argc, argv, "tp-s2t", usage, run_job, cleanup_job, &job);
}
