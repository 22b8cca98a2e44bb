/* tp-pretrain: pre-train a model named by a run config on a tp-preprocess dataset. */
#include <math.h>
#include <omp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/cli.h"
#include "core/config.h"
#include "core/device.h"
#include "core/dataset.h"
#include "core/error.h"
#include "core/model.h"
#include "core/preprocess_clip.h"
#include "core/run_tokenizer.h"
#include "core/trainer.h"
#include "tokenizers/tokenizer.h"

static const char usage[] =
    "usage: tp-pretrain --config RUN.json [--resume] [--KEY VALUE ...] [--model.KEY VALUE ...]\n"
    "       mpirun -np N tp-pretrain ...   (or srun): data-parallel over N ranks (docs/distributed.md)\n"
    "\n"
    "Pre-trains the model named by a run config on a dataset made by tp-preprocess.\n"
    "Every run-config key can be overridden on the command line (defaults < file < command line);\n"
    "--model.KEY overrides a key of the model config.\n"
    "\n"
    "Options:\n"
    "  --config FILE            run config (JSON), e.g. configs/bert_tiny.json\n"
    "  --resume                 continue from the newest checkpoint in output_dir (exactly: same losses)\n"
    "  --help                   this text\n"
    "\n"
    "Run-config keys (default):\n"
    "  model                    model config, TencentPretrain format (required), e.g. models/bert/tiny_config.json\n"
    TP_RUN_TOKENIZER_HELP
    "  dataset_path             dataset written by tp-preprocess (required); a CLIP model (target clr) trains on\n"
    "                           the image-text pairs of tp-preprocess --data_processor clip, a ViLT model\n"
    "                           (embedding word_patch, targets mlm and sp) on those of --data_processor vilt\n"
    "                           (masked texts; with sp, half the texts get another pair's image)\n"
    "  output_dir               checkpoints and metrics go here (required)\n"
    "  metrics_path             JSON Lines metrics (<output_dir>/metrics.jsonl)\n"
    "  batch_size               sequences per micro-batch and rank (32); global batch =\n"
    "                           batch_size x ranks x accumulation_steps\n"
    "  seq_length               tokens per sequence, <= the dataset's and the model's max_seq_length (128);\n"
    "                           image-text pairs: the texts' padded length, >= the dataset's longest text\n"
    "                           (ViLT: the image's rows follow, within the model's max_seq_length)\n"
    "  total_steps              optimizer steps (100)\n"
    "  accumulation_steps       micro-batches per optimizer step (1)\n"
    "  learning_rate            peak learning rate (1e-4)\n"
    "  scheduler                linear, cosine, cosine_with_restarts, polynomial, constant,\n"
    "                           constant_with_warmup, inverse_sqrt, tri_stage (linear)\n"
    "  warmup                   warm-up as a fraction of total_steps (0.1)\n"
    "  decay                    tri_stage: decay phase as a fraction of total_steps (0.5)\n"
    "  weight_decay             AdamW decoupled weight decay, not applied to bias/gamma/beta (0.01)\n"
    "  beta1, beta2             AdamW moment decay (0.9, 0.999)\n"
    "  adam_epsilon             AdamW epsilon (1e-6)\n"
    "  correct_bias             AdamW bias correction (false, as TencentPretrain)\n"
    "  max_grad_norm            global-norm gradient clipping, 0 = off (0)\n"
    "  mask_prob                dynamic masking probability (0.15)\n"
    "  seed                     seeds initialisation, data order, masking and dropout (7)\n"
    "  threads                  CPU threads for BLAS and tp's kernels (all cores)\n"
    "  device                   cpu or cuda (cpu)\n"
    "  precision                inputs of the matrix products: fp32; on cuda also tf32 or bf16 (fp32 master\n"
    "                           weights, activations and reductions stay fp32) (fp32)\n"
    "  report_steps             progress line and metrics line every N steps (10)\n"
    "  save_checkpoint_steps    checkpoint every N steps, 0 = only at the end (1000)\n"
    "  keep_checkpoints         newest checkpoints kept, 0 = all (3)\n"
    "  max_bad_steps            consecutive non-finite steps tolerated before stopping (10)\n"
    "  zero                     1: ZeRO-1, each rank keeps 1/N of the Adam moments (0)\n"
    "  dist_bucket_mb           gradient all-reduce bucket size in MB (25)\n"
    "  dist_timeout             seconds a rank waits for the others before stopping the job (300)\n"
    "\n"
    "SIGINT or SIGTERM (on any rank) saves a checkpoint at the end of the current step and exits.\n";

static volatile sig_atomic_t stop_requested;
static void request_stop(int signal_number) { stop_requested = signal_number; }

typedef struct pretrain_job {
    tp_config *run, *model_config;
    tp_tokenizer *tokenizer;
    tp_dataset *dataset;
    tp_loader *loader;
    /* or image-text pairs (a pre-decoded file of the clip or vilt processor) and their loader */
    int image_text, vilt;
    int64_t image_rows; /* ViLT: the image's rows after the text */
    tp_image_augment augment; /* the model config's image_preprocess */
    tp_image_set pairs;
    tp_image_text_loader *pairs_loader;
    tp_model model;
    tp_trainer trainer;
    int64_t batch_size, seq_length;
    char *model_config_json;
} pretrain_job;

/* ---- the data: a tp-preprocess dataset or image-text pairs -------------------------------------- */

static const tp_batch *next_batch(pretrain_job *job)
{
    return job->image_text ? tp_image_text_loader_next(job->pairs_loader) : tp_loader_next(job->loader);
}

static int64_t instance_count(const pretrain_job *job)
{
    return job->image_text ? job->pairs.count : tp_dataset_count(job->dataset);
}

static void data_position(const pretrain_job *job, int64_t *epoch, int64_t *cursor)
{
    if (job->image_text)
        tp_image_text_loader_position(job->pairs_loader, epoch, cursor);
    else
        tp_loader_position(job->loader, epoch, cursor);
}

static int data_seek(pretrain_job *job, int64_t epoch, int64_t cursor)
{
    return job->image_text ? tp_image_text_loader_seek(job->pairs_loader, epoch, cursor)
                           : tp_loader_seek(job->loader, epoch, cursor);
}

static int micro_step(tp_trainer *trainer, void *user, tp_step_metrics *metrics)
{
    const tp_batch *batch = next_batch(user);
    return batch ? tp_trainer_model_step(trainer, batch, metrics) : -1;
}

static int check_vocabulary(const pretrain_job *job, const char *dataset_path, int64_t dataset_vocab)
{
    if (dataset_vocab != job->tokenizer->vocab_size)
        return tp_fail("%s: made with a vocabulary of %lld tokens, but %s has %lld", dataset_path,
                       (long long)dataset_vocab, job->tokenizer->source_path, (long long)job->tokenizer->vocab_size);
    return 0;
}

static int open_inputs(pretrain_job *job)
{
    tp_config *run = job->run;
    const char *model_path = NULL, *dataset_path = NULL;
    if (tp_config_string(run, "model", NULL, &model_path) < 0 ||
        tp_config_string(run, "dataset_path", NULL, &dataset_path) < 0)
        return -1;
    if (!model_path) return tp_fail("%s: key 'model': missing (the model config to train)", tp_config_name(run));
    if (!dataset_path) return tp_fail("%s: key 'dataset_path': missing", tp_config_name(run));
    if (!(job->tokenizer = tp_run_tokenizer(run, NULL))) return -1;
    if ((job->image_text = tp_image_set_is_predecoded(dataset_path)) < 0) return -1;
    if (!job->image_text && (!(job->dataset = tp_dataset_open(dataset_path)) ||
                             check_vocabulary(job, dataset_path, tp_dataset_vocab_size(job->dataset)) < 0))
        return -1;
    if (!(job->model_config = tp_config_load(model_path))) return -1;
    return 0;
}

/* Image-text pairs at the built model's input size (their file names the processor that made them). */
static int read_pairs(pretrain_job *job)
{
    const char *dataset_path = NULL;
    tp_image_set_options options = {0};
    if (tp_config_string(job->run, "dataset_path", NULL, &dataset_path) < 0) return -1;
    int geometry = job->vilt ? tp_vilt_image_options(job->model_config, &options, &job->image_rows)
                             : tp_clip_image_options(job->model_config, &options);
    if (geometry < 0 || tp_image_set_read(dataset_path, &options, &job->pairs) < 0) return -1;
    job->augment = options.augment;
    return check_vocabulary(job, dataset_path, job->pairs.vocab_size);
}

/* ViLT: its targets are mlm and sp, and the text and image rows fit max_seq_length. */
static int check_vilt(pretrain_job *job)
{
    const char *model_name = tp_config_name(job->model_config);
    for (int i = 0; i < job->model.target_count; i++) {
        const char *target = tp_model_target_name(&job->model, i);
        if (strcmp(target, "mlm") && strcmp(target, "sp"))
            return tp_fail("%s: target '%s': a ViLT model (embedding word_patch) trains on image-text pairs with "
                           "the mlm and sp targets", model_name, target);
    }
    if (job->model.target_count == 0)
        return tp_fail("%s: key 'target': missing (ViLT pre-trains with [\"mlm\", \"sp\"])", model_name);
    tp_image_set_options options = {0};
    if (tp_vilt_image_options(job->model_config, &options, &job->image_rows) < 0) return -1;
    if (job->seq_length + job->image_rows > job->model.hp.max_seq_length)
        return tp_fail("%s: key 'seq_length': %lld text rows + the image's %lld rows exceed the model's "
                       "max_seq_length %lld", tp_config_name(job->run), (long long)job->seq_length,
                       (long long)job->image_rows, (long long)job->model.hp.max_seq_length);
    return 0;
}

/* A token dataset for a model whose embedding reads images or audio: what trains it instead. */
static int refuse_media_model(const pretrain_job *job, const char *dataset_path)
{
    static const char *const media[][2] = {
        {"word_patch", "a ViLT model trains on image-text pairs (tp-preprocess --data_processor vilt)"},
        {"patch", "a ViT trains with tp-finetune on labelled images"},
        {"masked_patch", "BEiT's masked image modelling needs an image tokenizer, which tp does not have "
                         "(docs/media.md); a BEiT classifier trains with tp-finetune"},
        {"speech", "speech-to-text trains with tp-finetune (task speech2text)"},
    };
    for (size_t i = 0; i < sizeof media / sizeof media[0]; i++)
        if (tp_model_has_embedding(&job->model, media[i][0]))
            return tp_fail("%s: embedding '%s' does not read token ids, and %s holds token ids: %s",
                           tp_config_name(job->model_config), media[i][0], dataset_path, media[i][1]);
    return 0;
}

/* Image-text pairs train a CLIP model (target clr) or a ViLT model (embedding word_patch); token
 * datasets train models that read tokens. */
static int check_image_text(pretrain_job *job, const char *dataset_path)
{
    int clip = tp_model_target_index(&job->model, "clr") >= 0;
    job->vilt = job->image_text && !clip && tp_model_has_embedding(&job->model, "word_patch");
    if (job->vilt) return check_vilt(job);
    if (!job->image_text && !clip) return refuse_media_model(job, dataset_path);
    if (clip == job->image_text) return 0;
    return job->image_text ? tp_fail("%s: holds images (tp-preprocess --data_processor vit, clip or vilt): "
                                     "tp-pretrain trains a CLIP model (target clr) or a ViLT model (embedding "
                                     "word_patch) on image-text pairs", dataset_path)
                           : tp_fail("%s: target 'clr' trains on image-text pairs (a dataset of tp-preprocess "
                                     "--data_processor clip), not on %s", tp_config_name(job->model_config),
                                     dataset_path);
}

static int check_shapes(pretrain_job *job)
{
    const char *run_name = tp_config_name(job->run);
    const char *dataset_path = NULL;
    if (tp_config_string(job->run, "dataset_path", NULL, &dataset_path) < 0) return -1;
    if (check_image_text(job, dataset_path) < 0) return -1;
    if (job->seq_length > job->model.hp.max_seq_length)
        return tp_fail("%s: key 'seq_length': %lld exceeds the model's max_seq_length %lld", run_name,
                       (long long)job->seq_length, (long long)job->model.hp.max_seq_length);
    /* read before the run's output exists (the file's processor and geometry must be the model's); the
     * pairs' loader checks their texts against seq_length */
    if (job->image_text) return read_pairs(job);
    int kind = tp_dataset_kind(job->dataset), lm_dataset = kind == TP_DATASET_LM; /* windows of seq_length + 1 */
    if (job->seq_length > tp_dataset_seq_length(job->dataset) - lm_dataset)
        return tp_fail("%s: key 'seq_length': %lld exceeds the dataset's sequence length %lld", run_name,
                       (long long)job->seq_length, (long long)(tp_dataset_seq_length(job->dataset) - lm_dataset));
    if ((kind == TP_DATASET_SEQ2SEQ) != (job->model.decoder_type != NULL))
        return tp_fail("%s: %s", tp_config_name(job->model_config),
                       kind == TP_DATASET_SEQ2SEQ ? "the dataset (t5, bart or mt processor) needs an encoder-decoder "
                                                    "model ('decoder' and 'tgt_embedding')"
                                                  : "an encoder-decoder model trains on a t5, bart or mt dataset");
    if (kind == TP_DATASET_SEQ2SEQ && tp_dataset_tgt_seq_length(job->dataset) - 1 > job->model.hp.max_seq_length)
        return tp_fail("%s: the dataset's targets reach %lld decoder positions, more than max_seq_length %lld",
                       tp_config_name(job->model_config), (long long)tp_dataset_tgt_seq_length(job->dataset) - 1,
                       (long long)job->model.hp.max_seq_length);
    lm_dataset |= kind == TP_DATASET_SEQ2SEQ || kind == TP_DATASET_PREFIXLM; /* next-token targets: the lm target */
    if (job->model.target_count == 0)
        return tp_fail("%s: key 'target': missing (pre-training needs at least one target, e.g. [\"mlm\"])",
                       tp_config_name(job->model_config));
    for (int i = 0; i < job->model.target_count; i++) {
        const char *target = tp_model_target_name(&job->model, i);
        if (!strcmp(target, "sp") && tp_dataset_kind(job->dataset) != TP_DATASET_BERT)
            return tp_fail("%s: target 'sp' needs sentence pairs, but the dataset was not made by the bert "
                           "processor", tp_config_name(job->model_config));
        if ((strcmp(target, "lm") == 0) != lm_dataset)
            return tp_fail("%s: target '%s' %s the lm, t5, bart, mt or prefixlm processor's dataset (%s)",
                           tp_config_name(job->model_config),
                           target, lm_dataset ? "cannot train on" : "needs", tp_config_name(job->run));
    }
    return 0;
}

static int create_loader(pretrain_job *job, double mask_prob)
{
    int32_t pad_id = job->tokenizer->pad_id >= 0 ? job->tokenizer->pad_id : job->tokenizer->eos_id;
    if (job->image_text) {
        tp_image_text_loader_options pairs = {.batch_size = job->batch_size,
                                              .seq_length = job->seq_length,
                                              .seed = job->trainer.options.seed,
                                              .shuffle = 1,
                                              .pad_id = pad_id,
                                              .rank = job->trainer.rank,
                                              .world_size = job->trainer.world_size,
                                              .augment = job->augment};
        if (job->vilt) {
            pairs.image_rows = job->image_rows;
            if (tp_model_target_index(&job->model, "mlm") >= 0)
                pairs.masking = (tp_masking_options){mask_prob, job->tokenizer->mask_id, pad_id, job->tokenizer->cls_id,
                                                     job->tokenizer->sep_id, job->tokenizer->vocab_size};
            /* TencentPretrain's image-text matching: half the texts get another pair's image */
            if (tp_model_target_index(&job->model, "sp") >= 0) pairs.mismatch_prob = 0.5;
        }
        job->pairs_loader = tp_image_text_loader_create(&job->pairs, &pairs);
        return job->pairs_loader ? 0 : -1;
    }
    tp_loader_options options = {
        .batch_size = job->batch_size,
        .seq_length = job->seq_length,
        .seed = job->trainer.options.seed,
        .rank = job->trainer.rank,
        .world_size = job->trainer.world_size,
        .shuffle = 1,
        /* lm datasets pad with [PAD] or, without one (GPT-2), <|endoftext|> as TencentPretrain's GPT-2 does */
        .masking = {mask_prob, job->tokenizer->mask_id, pad_id, job->tokenizer->cls_id, job->tokenizer->sep_id,
                    job->tokenizer->vocab_size},
    };
    job->loader = tp_loader_create(job->dataset, &options);
    return job->loader ? 0 : -1;
}

/* The data position a checkpoint stores. */
static const char *const position_keys[] = {"epoch", "cursor", NULL};

static int save(pretrain_job *job)
{
    int64_t epoch, cursor;
    data_position(job, &epoch, &cursor);
    double values[2] = {(double)epoch, (double)cursor};
    tp_caller_state position = {position_keys, values};
    int status = tp_trainer_save(&job->trainer, &position);
    if (status == 0 && job->trainer.rank == 0)
        fprintf(stderr, "saved checkpoint at step %lld\n", (long long)job->trainer.step);
    return status;
}

/* The checkpoint's data position, checked before it is converted: trainer_state.json may have been
 * edited by hand, and converting a double outside int64's range is undefined. */
static int seek_to(pretrain_job *job, double epoch, double cursor)
{
    int64_t count = instance_count(job);
    if (!(epoch >= 0 && epoch <= 9007199254740992.0 && epoch == floor(epoch) && cursor >= 0 && cursor < (double)count &&
          cursor == floor(cursor)))
        return tp_fail("%s: the newest checkpoint's data position (epoch %g, cursor %g) is not one of this dataset "
                       "(epoch >= 0, cursor in [0, %lld))",
                       job->trainer.checkpoint_root, epoch, cursor, (long long)count);
    return data_seek(job, (int64_t)epoch, (int64_t)cursor);
}

static int resume_or_start(pretrain_job *job, int resume)
{
    if (!resume) return tp_trainer_check_fresh(&job->trainer);
    int resumed = 0;
    double values[2];
    tp_caller_state position = {position_keys, values};
    if (tp_trainer_resume(&job->trainer, &resumed, &position) < 0) return -1;
    int main_rank = job->trainer.rank == 0;
    if (!resumed) {
        if (main_rank) fprintf(stderr, "no checkpoint in %s: starting from step 0\n", job->trainer.checkpoint_root);
        return 0;
    }
    if (seek_to(job, values[0], values[1]) < 0) return -1;
    if (main_rank) fprintf(stderr, "resumed from step %lld\n", (long long)job->trainer.step);
    return 0;
}

static int train(pretrain_job *job)
{
    tp_trainer *trainer = &job->trainer;
    const tp_train_options *options = &trainer->options;
    while (trainer->step < options->total_steps) {
        if (tp_trainer_step(trainer, micro_step, job) < 0) return -1;
        int at_checkpoint = options->save_checkpoint_steps > 0 && trainer->step % options->save_checkpoint_steps == 0;
        if ((at_checkpoint || trainer->stop) && trainer->step < options->total_steps && save(job) < 0) return -1;
        if (trainer->stop) {
            if (trainer->rank == 0 && stop_requested)
                fprintf(stderr, "stopped by signal %d at step %lld\n", (int)stop_requested, (long long)trainer->step);
            else if (trainer->rank == 0)
                fprintf(stderr, "stopped by a signal to another rank at step %lld\n", (long long)trainer->step);
            return 0;
        }
    }
    return save(job);
}

static int run(pretrain_job *job, const tp_cli *cli)
{
    int64_t threads = 0;
    double mask_prob = 0;
    tp_train_options options;
    const tp_backend *backend = NULL;
    if (!(job->run = tp_config_load(cli->config_path))) return -1;
    if (tp_cli_apply(cli, job->run, NULL) < 0 || open_inputs(job) < 0 || tp_cli_apply(cli, NULL, job->model_config) < 0)
        return -1;
    if (tp_config_int(job->run, "batch_size", 32, 1, 1 << 20, &job->batch_size) < 0 ||
        tp_config_int(job->run, "seq_length", 128, 2, 1 << 20, &job->seq_length) < 0 ||
        tp_config_int(job->run, "threads", 0, 0, 4096, &threads) < 0 ||
        tp_config_double(job->run, "mask_prob", 0.15, 0.0, 1.0, &mask_prob) < 0 ||
        tp_train_options_read(job->run, &options) < 0 || !(backend = tp_device_from_config(job->run)))
        return -1;
    if (tp_model_build(&job->model, job->model_config, job->tokenizer->vocab_size) < 0) return -1;
    if (tp_config_check_unused(job->model_config) < 0 || tp_config_check_unused(job->run) < 0) return -1;
    if (check_shapes(job) < 0) return -1;
    if (threads > 0) omp_set_num_threads((int)threads);
    job->model_config_json = tp_config_to_json(job->model_config);
    tp_model_allocate(&job->model, backend, options.seed);
    if (tp_trainer_init(&job->trainer, &options, &job->model, job->model_config_json) < 0) return -1;
    tp_trainer *trainer = &job->trainer;
    if (trainer->rank == 0)
        fprintf(stderr, "model: %lld parameters; %lld sequences of %lld tokens per step (%d rank%s); device %s; "
                "%d threads\n",
                (long long)tp_params_logical_count(&job->model.params),
                (long long)(job->batch_size * options.accumulation_steps * trainer->world_size),
                (long long)job->seq_length, trainer->world_size, trainer->world_size > 1 ? "s" : "", backend->name,
                omp_get_max_threads());
    if (create_loader(job, mask_prob) < 0) return -1;
    if (resume_or_start(job, tp_cli_flag(cli, TP_CLI_RESUME)) < 0) return -1;
    signal(SIGINT, request_stop);
    signal(SIGTERM, request_stop);
    tp_trainer_watch_stop(trainer, &stop_requested);
    return train(job);
}

static void cleanup(pretrain_job *job)
{
    tp_trainer_free(&job->trainer);
    tp_model_free(&job->model);
    if (job->loader) tp_loader_free(job->loader);
    tp_image_text_loader_free(job->pairs_loader);
    tp_image_set_free(&job->pairs);
    if (job->dataset) tp_dataset_close(job->dataset);
    if (job->tokenizer) tp_tokenizer_free(job->tokenizer);
    if (job->model_config) tp_config_free(job->model_config);
    if (job->run) tp_config_free(job->run);
    free(job->model_config_json);
}

static int run_job(void *job, const tp_cli *cli) { return run(job, cli); }
static void cleanup_job(void *job) { cleanup(job); }

int main(int argc, char **argv)
{
    pretrain_job job;
    memset(&job, 0, sizeof job);
    return tp_cli_main(argc, argv, "tp-pretrain", usage, run_job, cleanup_job, &job);
}
