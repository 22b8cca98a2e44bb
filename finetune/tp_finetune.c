/* tp-finetune: fine-tune a pre-trained encoder on a classification, multi-label, regression or
 * tagging task, or an encoder-decoder model on a text2text or speech2text task (TencentPretrain's
 * TSV formats and speech lists;
 * the per-kind work is in core/finetune_task.c), evaluating on dev after every epoch, keeping the
 * best-on-dev weights and reporting test with them. */
#include <math.h>
#include <omp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "core/checkpoint.h"
#include "core/cli.h"
#include "core/config.h"
#include "core/continual_run.h"
#include "core/device.h"
#include "core/distributed.h"
#include "core/error.h"
#include "core/fileio.h"
#include "core/finetune_task.h"
#include "core/hf.h"
#include "core/model.h"
#include "core/run_tokenizer.h"
#include "core/rng.h"
#include "core/trainer.h"
#include "core/tsv.h"
#include "tokenizers/tokenizer.h"

static const char usage[] =
    "usage: tp-finetune --config RUN.json [--resume] [--KEY VALUE ...] [--model.KEY VALUE ...]\n"
    "\n"
    "Fine-tunes the encoder of a pre-trained model with a task head on TencentPretrain's TSV files\n"
    "(header row naming label, text_a and optionally text_b; docs/finetune_data.md).  Task kinds\n"
    "(`task`), each as TencentPretrain's script of the same purpose:\n"
    "  classification  label = class id 0..N-1; head pooling -> linear -> tanh -> linear (N),\n"
    "                  cross-entropy; dev: accuracy, macro-F1, confusion matrix (run_classifier.py)\n"
    "  multi_label     label = comma-separated class ids (\"0,3\"); the same head, sigmoid + binary\n"
    "                  cross-entropy per label, a label predicted where its logit > 0; dev: subset\n"
    "                  accuracy, micro- and macro-F1 (run_classifier_multi_label.py)\n"
    "  regression      label = a number; the same head with 1 output, mean squared error; dev:\n"
    "                  Spearman, Pearson, MSE (run_regression.py)\n"
    "  tagging         label = one tag per space-separated word of text_a (BIO, e.g. \"B-PER I-PER O\");\n"
    "                  each word is WordPiece-tokenized and its tag predicted at its first piece by a\n"
    "                  linear layer over every token, cross-entropy; dev: entity precision, recall\n"
    "                  and F1 (seqeval) (run_ner.py; text_b not allowed)\n"
    "  text2text       label = the target text; an encoder-decoder model (T5, BART) keeps its lm\n"
    "                  target: source text_a + eos, decoder input start + label, cross-entropy on\n"
    "                  label + eos; dev: the lm loss, then greedy / beam generation scored by exact\n"
    "                  match and corpus BLEU (sacreBLEU 13a) (run_text2text.py)\n"
    "  speech2text     speech lists instead of TSV files: `text<TAB>path` lines (or a text / wav_path\n"
    "                  header), audio in any format libsndfile reads; an encoder-decoder model whose\n"
    "                  embedding is speech (models/s2t/) keeps its lm target: target [CLS] + the\n"
    "                  transcript's tokens + [SEP], cross-entropy; dev: the lm loss, then greedy /\n"
    "                  beam decoding scored by word error rate (jiwer's) (run_speech2text.py;\n"
    "                  docs/media.md)\n"
    "Images: with a model config that says \"data_processor\": \"vit\" (models/vit/, a patch embedding)\n"
    "the classification task reads image lists (label<TAB>path lines, JPEG / PNG) or MNIST-style IDX\n"
    "image files (labels in the matching -labels-idx1- file) or pre-decoded image files (tp-preprocess\n"
    "--data_processor vit) instead of TSV text, with no tokenizer; images are decoded once, resized\n"
    "to the model's size, and the head pools the class token\n"
    "(run_image_classifier.py; docs/media.md).\n"
    "After every epoch the dev set is evaluated (stderr and one JSONL line with the dev loss, the\n"
    "epoch's mean training loss and the scores); the best-on-dev weights -- by accuracy, macro-F1,\n"
    "Spearman, entity F1, BLEU or the lowest WER -- are kept in <output_dir>/best and the test set is evaluated\n"
    "with them.\n"
    "<output_dir>/task.json and best/task.json record the task, label names, seq_length and tokenizer\n"
    "keys for tp-infer.\n"
    "\n"
    "Options:\n"
    "  --config FILE            run config (JSON), e.g. configs/finetune_fortunes.json\n"
    "  --resume                 continue after the last completed epoch (exactly: same losses)\n"
    "  --KEY VALUE              set a run-config key (e.g. --learning_rate 1e-4)\n"
    "  --model.KEY VALUE        set a model-config key (e.g. --model.dropout 0)\n"
    "  --help                   this text\n"
    "\n"
    "Run-config keys (default):\n"
    "  task                     classification, multi_label, regression, tagging, text2text or\n"
    "                           speech2text (classification)\n"
    "  model                    model config, TencentPretrain format; its targets are replaced by the\n"
    "                           task's head (cls, multi_label, regression or tagging; text2text and\n"
    "                           speech2text: lm)\n"
    "  hf_model_dir             instead of model + pretrained_model_path: a Hugging Face BERT, RoBERTa or\n"
    "                           ALBERT directory (config.json, model.safetensors; its vocab.txt or\n"
    "                           tokenizer.json unless the tokenizer keys say otherwise; docs/convert.md)\n"
    "  pretrained_model_path    weights to start from: a tp model.safetensors (pre-training heads are\n"
    "                           ignored; every embedding and encoder tensor must match) (none: random)\n"
    TP_RUN_TOKENIZER_HELP
    "  train_path, dev_path     TSV files (speech2text: speech lists) (required); dev must use train's\n"
    "                           labels / tags\n"
    "  test_path                TSV file evaluated with the best weights at the end (none)\n"
    "  output_dir               checkpoints, best weights and metrics (required)\n"
    "  skip_bad_images          images: leave out (and count) images that cannot be decoded instead of\n"
    "                           failing on the first (false)\n"
    "  skip_bad_audio           speech2text: leave out (and count) utterances whose audio cannot be read\n"
    "                           or is shorter than one frame instead of failing on the first (false)\n"
    "  pooling                  sequence-level kinds: first, mean, max, last, or patch_mean (an image's\n"
    "                           patches without the class token) (the model config's, else first)\n"
    "  tgt_seq_length           text2text, speech2text: target tokens incl. the eos (text2text 32,\n"
    "                           speech2text 50); longer labels are cut, generation stops there\n"
    "  num_beams                text2text, speech2text: beams of the dev / test generation; 1 = greedy (1)\n"
    "  length_penalty, early_stopping\n"
    "                           beam search: a finished hypothesis scores its log-probability over its\n"
    "                           length ^ length_penalty (1.0); stop once num_beams hypotheses are done\n"
    "                           (false: transformers' heuristic) (docs/generation.md)\n"
    "  word_delimiter           speech2text: a token that stands for each space of a transcript (e.g.\n"
    "                           \"|\" with the char tokenizer, whose vocabulary has no space) (none)\n"
    "                           (speech2text: the model config's TencentPretrain keys audio_preprocess\n"
    "                           and specaugment set the features' CMVN and the training batches'\n"
    "                           SpecAugment masks, drawn from (seed, epoch, example); docs/media.md)\n"
    "  crf                      tagging: true = a linear-chain CRF over the words' first pieces (loss\n"
    "                           its NLL, prediction its Viterbi path; docs/finetune.md) (false)\n"
    "  epochs_num               epochs (3)\n"
    "  batch_size               sequences per step and rank (32)\n"
    "  seq_length               tokens per sequence incl. [CLS]/[SEP] (128); longer input is cut\n"
    "  learning_rate            peak learning rate (2e-5)\n"
    "  scheduler, warmup, decay, weight_decay, beta1, beta2, adam_epsilon, correct_bias,\n"
    "  max_grad_norm, max_bad_steps, report_steps, keep_checkpoints, metrics_path,\n"
    "  dist_timeout, dist_bucket_mb, zero\n"
    "                           as in tp-pretrain (warmup 0.1 of all steps)\n"
    "  seed                     initialisation of the head, data order and dropout (7)\n"
    "  threads                  CPU threads (all cores)\n"
    "  device, precision        cpu or cuda; fp32, or on cuda tf32 / bf16 products (cpu, fp32; docs/gpu.md)\n"
    "\n"
    "Data-parallel: `mpirun -np N tp-finetune ...` trains on N ranks, each on its batch_size rows of\n"
    "every global batch of N x batch_size, and evaluates dev and test in shards; rank 0 writes.\n"
    "The same as one rank with N x batch_size up to fp32 rounding (docs/distributed.md).\n"
    "\n"
    "Continual learning (docs/continual.md): --continual MODE --tasks DIR1,DIR2,... learns the\n"
    "classification tasks one after another with one head per task (target.cls_<dir name>), keeping\n"
    "each task's best-on-dev state, and prints the test accuracy on every task seen so far after each\n"
    "task, then the accuracy matrix, average accuracy, forgetting and intransigence (also in\n"
    "<output_dir>/continual.jsonl).  Runs on the CPU, one process, without --resume.  Keys:\n"
    TP_CONTINUAL_HELP;

static volatile sig_atomic_t stop_requested;
static void request_stop(int signal_number) { stop_requested = signal_number; }

/* Below every score: the first epoch always becomes the best so far (and it is valid JSON). */
#define NO_SCORE (-1e300)

typedef struct finetune_job {
    tp_config *run, *model_config;
    tp_tokenizer *tokenizer;
    tp_task_kind kind;
    int images;                /* image classification: the model config's data_processor is vit */
    tp_tsv_task *tasks[3];     /* train, dev, test (test may be NULL) */
    tp_encoded_split splits[3];
    tp_model model;
    tp_trainer trainer;
    char *model_config_json;
    int64_t batch_size, seq_length, epochs, steps_per_epoch, labels_num;
    int64_t tgt_seq_length;    /* text2text, speech2text */
    tp_seq2seq_options search; /* their generation's num_beams, length_penalty, early_stopping */
    const char *word_delimiter; /* speech2text */
    int rank, ranks;           /* data-parallel: batch_size rows per rank, rank 0 writes (docs/distributed.md) */
    /* The training batch being assembled: the epoch's order and the next position in it. */
    int64_t *order, cursor, epoch;
    tp_batch batch;
    double epoch_loss; /* sum of the epoch's step losses so far */
    int64_t epoch_steps;
    double best_dev;
    char best_dir[4096];
    tp_continual *continual; /* continual mode */
} finetune_job;

/* ---- training data ------------------------------------------------------------ */

/* The training order of an epoch: a permutation drawn from (seed, TP_STREAM_DATA_ORDER, epoch). */
static void epoch_order(finetune_job *job, int64_t epoch)
{
    int64_t count = job->splits[0].count;
    for (int64_t i = 0; i < count; i++) job->order[i] = i;
    tp_rng rng = tp_rng_make(job->trainer.options.seed, TP_STREAM_DATA_ORDER, (uint64_t)epoch << 32);
    tp_rng_shuffle_i64(&rng, job->order, count);
    job->cursor = 0;
    job->epoch = epoch;
}

/* One global batch of ranks * batch_size rows of the epoch's order; rank r trains on its rows
 * r * batch_size .. + batch_size.  The epoch's last batch may leave the last ranks fewer rows or
 * none: such a rank runs a stand-in row that counts nothing. */
static int micro_step(tp_trainer *trainer, void *user, tp_step_metrics *metrics)
{
    finetune_job *job = user;
    int64_t rows = job->splits[0].count - job->cursor, first = job->rank * job->batch_size;
    if (rows > job->batch_size * job->ranks) rows = job->batch_size * job->ranks;
    int64_t mine = rows - first < job->batch_size ? rows - first : job->batch_size;
    const int64_t *indices = mine > 0 ? job->order + job->cursor + first : job->order; /* stand-in: any row */
    const tp_batch *batch = tp_task_fill_batch(&job->batch, &job->splits[0], indices, mine > 0 ? mine : 1);
    if (mine > 0) /* the model config's specaugment or image_preprocess, if any */
        tp_task_augment_batch(&job->batch, &job->splits[0], indices, mine, job->trainer.options.seed, job->epoch);
    job->cursor += rows;
    if ((mine > 0 ? tp_trainer_model_step(trainer, batch, metrics) : tp_trainer_stand_in_step(trainer, batch, metrics)) < 0)
        return -1;
    job->epoch_loss += metrics->loss;
    job->epoch_steps++;
    return 0;
}

/* ---- evaluation --------------------------------------------------------------- */

static int is_generating(tp_task_kind kind) { return kind == TP_TASK_TEXT2TEXT || kind == TP_TASK_SPEECH2TEXT; }

static const char *const *label_names(const finetune_job *job)
{
    return (const char *const *)job->tasks[0]->label_names;
}

static int evaluate(finetune_job *job, int split, tp_task_scores *scores)
{
    tp_task_predictions predictions;
    int rc = tp_task_predict_shared(&job->model, &job->trainer.ctx, job->trainer.comm, &job->splits[split],
                                    &job->batch, job->batch_size, &predictions);
    if (rc == 0 && is_generating(job->kind))
        rc = tp_task_generate(&job->model, &job->trainer.ctx, job->tokenizer, &job->splits[split], &job->search,
                              &predictions);
    if (rc == 0) rc = tp_task_score(&job->splits[split], job->tasks[split], label_names(job), &predictions, scores);
    tp_task_predictions_free(&predictions);
    return rc;
}

/* stderr and one JSONL line (rank 0); train_loss < 0: none (the test evaluation). */
static int report_evaluation(finetune_job *job, const char *split, const char *epoch, double train_loss,
                              const tp_task_scores *scores)
{
    FILE *metrics = job->trainer.metrics_file;
    if (job->rank != 0) return 0;
    fprintf(stderr, "epoch %s | %s ", epoch, split);
    tp_task_scores_print(stderr, scores, label_names(job));
    fprintf(metrics, "{\"step\":%lld,\"epoch\":%s,\"split\":\"%s\"", (long long)job->trainer.step, epoch, split);
    if (train_loss >= 0) fprintf(metrics, ",\"train_loss\":%.9g", train_loss);
    tp_task_scores_json(metrics, scores);
    fprintf(metrics, "}\n");
    return tp_trainer_flush_metrics(&job->trainer);
}

/* ---- what tp-infer needs besides the weights ------------------------------------ */

/* Run-config keys that <dir>/task.json carries over to tp-infer: the tokenizer's and the model
 * directory it may come from (paths as given here). */
static const char *const task_run_keys[] = {"hf_model_dir",   "tokenizer",           "vocab_path",    "merges_path",
                                            "spm_model_path", "tokenizer_json_path", "do_lower_case", "word_delimiter",
                                            NULL};

/* <dir>/task.json: {"task", "labels" (the label names, class i = labels[i]), "seq_length", and
 * the keys above that the run has}, written atomically. */
static int save_task(const finetune_job *job, const char *dir)
{
    if (job->rank != 0) return 0;
    char path[4200], *run_json = tp_config_to_json(job->run);
    cJSON *run = cJSON_Parse(run_json), *task = cJSON_CreateObject();
    cJSON_AddStringToObject(task, "task", tp_task_kind_keys[job->kind]);
    cJSON_AddItemToObject(task, "labels",
                          job->labels_num ? cJSON_CreateStringArray(label_names(job), (int)job->labels_num)
                                          : cJSON_CreateArray()); /* regression */
    cJSON_AddNumberToObject(task, "seq_length", (double)job->seq_length);
    if (is_generating(job->kind)) {
        cJSON_AddNumberToObject(task, "tgt_seq_length", (double)job->tgt_seq_length);
        cJSON_AddNumberToObject(task, "num_beams", (double)job->search.num_beams);
        cJSON_AddNumberToObject(task, "length_penalty", job->search.length_penalty);
        cJSON_AddBoolToObject(task, "early_stopping", job->search.early_stopping);
    }
    for (int i = 0; task_run_keys[i]; i++) {
        const cJSON *value = cJSON_GetObjectItemCaseSensitive(run, task_run_keys[i]);
        if (value) cJSON_AddItemToObject(task, task_run_keys[i], cJSON_Duplicate(value, 1));
    }
    char *text = cJSON_Print(task);
    snprintf(path, sizeof path, "%s/task.json", dir);
    int rc = tp_mkdirs(dir) < 0 ? -1 : tp_write_file_atomic(path, text, strlen(text));
    cJSON_free(text);
    cJSON_Delete(task);
    cJSON_Delete(run);
    free(run_json);
    return rc;
}

/* ---- set-up ------------------------------------------------------------------- */

/* The label set the model needs, from the training file: classes (at least 2), multi-label
 * classes (at least 1), tags (at least 1); regression has none. */
static int check_label_set(const finetune_job *job)
{
    const tp_tsv_task *train = job->tasks[0];
    int64_t minimum = job->kind == TP_TASK_CLASSIFICATION ? 2 : 1;
    if (job->kind != TP_TASK_REGRESSION && !is_generating(job->kind) && train->num_labels < minimum)
        return tp_fail("%s: only %lld label(s): %s needs at least %lld", train->path, (long long)train->num_labels,
                       tp_task_kind_name(job->kind), (long long)minimum);
    for (int i = 0; i < 3; i++)
        if (job->kind == TP_TASK_TAGGING && job->tasks[i] && job->tasks[i]->has_text_b)
            return tp_fail("%s: header: tagging takes text_a only (found a text_b column)", job->tasks[i]->path);
    return 0;
}

/* Split i from a TSV file or, for an image model, an image list / IDX pair (decoded now). */
static int read_split(finetune_job *job, int i, const char *path, const tp_tsv_options *options)
{
    int skip = 0;
    if (job->kind == TP_TASK_SPEECH2TEXT) {
        if (job->images) return tp_fail("%s: key 'task': speech2text needs a speech model, not an image model",
                                        tp_config_name(job->run));
        tp_s2t_read_options speech = {.allow_no_text = 0};
        if (tp_config_bool(job->run, "skip_bad_audio", 0, &speech.skip_bad_audio) < 0 ||
            tp_task_read_speech(path, job->model_config, &speech, &job->tasks[i], &job->splits[i]) < 0)
            return -1;
        tp_task_report_skipped(path, job->splits[i].images, job->splits[i].speech);
        return 0;
    }
    if (!job->images) return (job->tasks[i] = tp_tsv_read(path, options)) ? 0 : -1;
    if (job->kind != TP_TASK_CLASSIFICATION)
        return tp_fail("%s: key 'task': an image model (data_processor vit) does classification only",
                       tp_config_name(job->run));
    if (tp_config_bool(job->run, "skip_bad_images", 0, &skip) < 0 ||
        tp_task_read_images(path, job->model_config, options->num_labels, skip, &job->tasks[i], &job->splits[i]) < 0)
        return -1;
    tp_task_report_skipped(path, job->splits[i].images, job->splits[i].speech);
    return 0;
}

static int read_tasks(finetune_job *job)
{
    static const char *const keys[] = {"train_path", "dev_path", "test_path"};
    const char *paths[3] = {NULL, NULL, NULL};
    int kind = 0;
    if (tp_config_enum(job->run, "task", "classification", tp_task_kind_keys, &kind) < 0) return -1;
    job->kind = (tp_task_kind)kind;
    for (int i = 0; i < 3; i++) {
        if (tp_config_string(job->run, keys[i], NULL, &paths[i]) < 0) return -1;
        if (!paths[i] && i < 2) return tp_fail("%s: key '%s': missing", tp_config_name(job->run), keys[i]);
    }
    tp_tsv_options options = {.kind = job->kind};
    if (read_split(job, 0, paths[0], &options) < 0) return -1;
    /* dev and test must use the training set's labels (tags: the same names in the same order). */
    options.num_labels = job->tasks[0]->num_labels;
    if (job->kind == TP_TASK_TAGGING) options.label_names = (const char *const *)job->tasks[0]->label_names;
    for (int i = 1; i < 3; i++)
        if (paths[i] && read_split(job, i, paths[i], &options) < 0) return -1;
    job->labels_num = job->kind == TP_TASK_REGRESSION ? 0 : job->tasks[0]->num_labels; /* speech2text: 0 */
    return check_label_set(job);
}

static int open_model(finetune_job *job, const char **hf_dir, const char **pretrained)
{
    const char *model_path = NULL;
    if (tp_config_string(job->run, "model", NULL, &model_path) < 0 ||
        tp_config_string(job->run, "hf_model_dir", NULL, hf_dir) < 0 ||
        tp_config_string(job->run, "pretrained_model_path", NULL, pretrained) < 0)
        return -1;
    if (*hf_dir && (model_path || *pretrained))
        return tp_fail("%s: key 'hf_model_dir': give either hf_model_dir or model (+ pretrained_model_path)",
                       tp_config_name(job->run));
    if (*hf_dir) {
        if (!(job->model_config = tp_hf_config(*hf_dir))) return -1;
    } else {
        if (!model_path) return tp_fail("%s: key 'model': missing (or give hf_model_dir)", tp_config_name(job->run));
        if (!(job->model_config = tp_config_load(model_path))) return -1;
    }
    if ((job->images = tp_task_is_image(job->model_config))) return 0; /* no tokenizer */
    job->tokenizer = tp_run_tokenizer(job->run, *hf_dir);
    return job->tokenizer ? 0 : -1;
}

static int load_weights(tp_model *model, const char *hf_dir, const char *pretrained)
{
    if (hf_dir) return tp_hf_load(hf_dir, model, "target.");
    if (!pretrained) return 0;
    int64_t loaded = tp_checkpoint_load_backbone(pretrained, &model->params, "target.");
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
    if (is_generating(job->kind) &&
        tp_task_read_search(job->run, NULL, job->kind, &job->tgt_seq_length, &job->search) < 0)
        return -1;
    if (job->kind == TP_TASK_SPEECH2TEXT && tp_config_string(job->run, "word_delimiter", NULL, &job->word_delimiter) < 0)
        return -1;
    int64_t global_batch = job->batch_size * job->ranks;
    job->steps_per_epoch = (job->tasks[0]->count + global_batch - 1) / global_batch;
    /* The schedule spans the whole run; tp-finetune's defaults differ from pre-training's. */
    snprintf(text, sizeof text, "%lld", (long long)(job->steps_per_epoch * job->epochs));
    if (!tp_config_has(job->run, "learning_rate")) tp_config_set(job->run, "learning_rate", "2e-5");
    tp_config_set(job->run, "total_steps", text);
    if (tp_train_options_read(job->run, options) < 0) return -1;
    if (options->accumulation_steps != 1)
        return tp_fail("%s: key 'accumulation_steps': tp-finetune supports only 1 yet", tp_config_name(job->run));
    return 0;
}

/* The run key `crf` sets the tagging head's model key "crf". */
static int configure_crf(finetune_job *job)
{
    int crf = 0;
    if (tp_config_bool(job->run, "crf", 0, &crf) < 0) return -1;
    if (crf && job->kind != TP_TASK_TAGGING)
        return tp_fail("%s: key 'crf': only the tagging task has a CRF", tp_config_name(job->run));
    return crf ? tp_config_set(job->model_config, "crf", "true") : 0;
}

/* The run config with the command line's run keys. */
static int load_run(finetune_job *job, const tp_cli *cli)
{
    if (!(job->run = tp_config_load(cli->config_path))) return -1;
    tp_comm *comm = tp_comm_open(0); /* tp_trainer_init sets dist_timeout */
    if (!comm) return -1;
    job->rank = tp_comm_rank(comm);
    job->ranks = tp_comm_size(comm);
    return tp_cli_apply(cli, job->run, NULL);
}

static int encode_split(finetune_job *job, int i)
{
    if (job->kind == TP_TASK_TEXT2TEXT)
        return tp_encode_text2text(job->tokenizer, job->tasks[i], job->seq_length, job->tgt_seq_length,
                                   &job->splits[i]);
    if (job->kind == TP_TASK_SPEECH2TEXT)
        return tp_encode_speech_targets(job->tokenizer, job->word_delimiter, job->tgt_seq_length, &job->splits[i]);
    tp_encode_split(job->tokenizer, job->tasks[i], job->seq_length, job->labels_num, &job->splits[i]);
    return 0;
}

static int setup(finetune_job *job, const tp_cli *cli, tp_train_options *options)
{
    const char *hf_dir = NULL, *pretrained = NULL;
    const tp_backend *backend = NULL;
    int64_t threads = 0;
    if (open_model(job, &hf_dir, &pretrained) < 0 ||
        tp_cli_apply(cli, NULL, job->model_config) < 0 || read_tasks(job) < 0 ||
        tp_task_configure_head(job->kind, job->labels_num, job->run, job->model_config) < 0 || configure_crf(job) < 0 ||
        read_run(job, options, &threads) < 0 || !(backend = tp_device_from_config(job->run)))
        return -1;
    if (tp_model_build(&job->model, job->model_config, job->tokenizer ? job->tokenizer->vocab_size : 0) < 0) return -1;
    if (job->images) job->seq_length = job->splits[0].seq_length; /* the class token and the patches */
    if (tp_config_check_unused(job->model_config) < 0 || tp_config_check_unused(job->run) < 0) return -1;
    if (!job->images && job->kind != TP_TASK_SPEECH2TEXT &&
        tp_task_check_text_model(&job->model, tp_config_name(job->run), "task") < 0)
        return -1;
    if (job->kind == TP_TASK_SPEECH2TEXT) {
        if (tp_task_check_speech_model(&job->model, tp_config_name(job->run), "task") < 0) return -1;
        job->seq_length = job->splits[0].seq_length; /* subsampled frames: sinusoidal positions, any length */
    } else if (job->seq_length > job->model.hp.max_seq_length)
        return tp_fail("%s: key 'seq_length': %lld exceeds the model's max_seq_length %lld", tp_config_name(job->run),
                       (long long)job->seq_length, (long long)job->model.hp.max_seq_length);
    /* Generation feeds the start id and up to tgt_seq_length generated ids but the last. */
    if (job->tgt_seq_length > job->model.hp.max_seq_length)
        return tp_fail("%s: key 'tgt_seq_length': %lld exceeds the model's max_seq_length %lld",
                       tp_config_name(job->run), (long long)job->tgt_seq_length, (long long)job->model.hp.max_seq_length);
    if (is_generating(job->kind) && !job->model.decoder_type)
        return tp_fail("%s: key 'task': text2text needs an encoder-decoder model (a decoder and the lm target: T5, "
                       "BART)", tp_config_name(job->run));
    if (threads > 0) omp_set_num_threads((int)threads);
    tp_model_allocate(&job->model, backend, options->seed);
    if (load_weights(&job->model, hf_dir, pretrained) < 0) return -1;
    job->model_config_json = tp_config_to_json(job->model_config);
    for (int i = 0; i < 3; i++)
        if (job->tasks[i] && !job->images && encode_split(job, i) < 0) return -1;
    tp_task_batch_init(&job->batch, &job->splits[0], job->batch_size);
    job->order = tp_xmalloc((size_t)job->splits[0].count * sizeof *job->order);
    job->best_dev = NO_SCORE;
    if (job->rank == 0)
        fprintf(stderr, "model: %lld parameters; %s, %lld labels; %lld train / %lld dev examples; %lld steps per "
                "epoch of %lld sequences (%d rank%s); device %s\n",
                (long long)tp_params_logical_count(&job->model.params), tp_task_kind_name(job->kind),
                (long long)job->labels_num, (long long)job->splits[0].count, (long long)job->splits[1].count,
                (long long)job->steps_per_epoch, (long long)(job->batch_size * job->ranks), job->ranks,
                job->ranks > 1 ? "s" : "", backend->name);
    if (tp_trainer_init(&job->trainer, options, &job->model, job->model_config_json) < 0) return -1;
    snprintf(job->best_dir, sizeof job->best_dir, "%s/best", options->output_dir);
    return save_task(job, options->output_dir);
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

/* The checkpoint's epochs_done and best_dev (values) against this run: a whole number of epochs
 * up to epochs_num whose steps hold the checkpoint's step (fewer when a step was skipped as
 * non-finite; more: another batch_size or training set), and a score or none. */
static int check_epoch_state(const finetune_job *job, const double *values)
{
    char dir[4096];
    tp_checkpoint_latest(job->trainer.checkpoint_root, dir, sizeof dir);
    double epochs = values[0], best = values[1];
    if (!(epochs >= 0 && epochs <= (double)job->epochs && epochs == floor(epochs)))
        return tp_fail("%s/trainer_state.json: key 'data.epochs_done': %.17g is not a whole number of epochs from 0 "
                       "to epochs_num %lld", dir, epochs, (long long)job->epochs);
    if ((double)job->trainer.step > epochs * (double)job->steps_per_epoch)
        return tp_fail("%s/trainer_state.json: key 'data.epochs_done': %.0f epochs of %lld steps end by step %.0f, but "
                       "the checkpoint is at step %lld (another batch_size or training set?)", dir,
                       epochs, (long long)job->steps_per_epoch, epochs * (double)job->steps_per_epoch,
                       (long long)job->trainer.step);
    /* Scores run from -1 to 1; speech2text's, minus the WER, from 0 down. */
    double lowest = job->kind == TP_TASK_SPEECH2TEXT ? -1e9 : -1, highest = job->kind == TP_TASK_SPEECH2TEXT ? 0 : 1;
    if (!(best == NO_SCORE || (best >= lowest && best <= highest)))
        return tp_fail("%s/trainer_state.json: key 'data.best_dev': %.17g is no score (from %g to %g)", dir, best,
                       lowest, highest);
    return 0;
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
        if (check_epoch_state(job, values) < 0) return -1;
        *first_epoch = (int64_t)values[0];
        job->best_dev = values[1];
        if (job->rank == 0)
            fprintf(stderr, "resumed after epoch %lld (step %lld)\n", (long long)*first_epoch,
                    (long long)job->trainer.step);
    }
    return 0;
}

static int run_epoch(finetune_job *job, int64_t epoch)
{
    char epoch_text[32];
    epoch_order(job, epoch);
    job->epoch_loss = 0;
    job->epoch_steps = 0;
    while (job->cursor < job->splits[0].count)
        if (tp_trainer_step(&job->trainer, micro_step, job) < 0) return -1;
    /* Each rank's step losses are its shares of the global batches' (tp_trainer_model_step). */
    if (tp_comm_sum(job->trainer.comm, &job->epoch_loss, 1, "sum of the epoch's training loss") < 0) return -1;
    tp_task_scores dev;
    if (evaluate(job, 1, &dev) < 0) return -1;
    snprintf(epoch_text, sizeof epoch_text, "%lld", (long long)epoch + 1);
    int reported = report_evaluation(job, "dev", epoch_text, job->epoch_loss / (double)job->epoch_steps, &dev);
    int improved = dev.selection > job->best_dev;
    if (improved) job->best_dev = dev.selection;
    tp_task_scores_free(&dev);
    if (reported < 0) return -1;
    if (improved && job->rank == 0 &&
        (tp_checkpoint_save(job->best_dir, epoch + 1, &job->model.params, NULL, NULL, job->model_config_json, "{}",
                            1) < 0 ||
         save_task(job, job->best_dir) < 0))
        return -1;
    return save_epoch(job, epoch + 1);
}

/* 1 when a stop signal reached any rank: every rank stops after the same epoch. */
static int stop_agreed(finetune_job *job, int *stop)
{
    double requested = stop_requested != 0;
    if (tp_comm_sum(job->trainer.comm, &requested, 1, "agreement on stopping") < 0) return -1;
    *stop = requested > 0;
    return 0;
}

static int evaluate_test(finetune_job *job)
{
    char dir[4096], path[4200];
    if (!job->tasks[2]) return 0;
    /* Rank 0 wrote best/ (on the filesystem every rank resumes from). */
    if (tp_comm_barrier(job->trainer.comm, "wait for the best weights") < 0) return -1;
    if (!tp_checkpoint_latest(job->best_dir, dir, sizeof dir))
        return tp_fail("%s: no best-on-dev weights to evaluate test with", job->best_dir);
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    if (tp_checkpoint_load_weights(path, &job->model.params) < 0) return -1;
    tp_task_scores test;
    if (evaluate(job, 2, &test) < 0) return -1;
    int reported = report_evaluation(job, "test", "\"best\"", -1.0, &test);
    tp_task_scores_free(&test);
    return reported;
}

/* --continual: core/continual_run.h learns the task sequence; model and weights come as above. */
static int run_continual(finetune_job *job, const tp_cli *cli)
{
    const char *hf_dir = NULL, *pretrained = NULL;
    if (tp_cli_flag(cli, TP_CLI_RESUME))
        return tp_fail("--resume: a continual run does not resume (start it again in a fresh output_dir)");
    if (job->ranks > 1)
        return tp_fail("%s: key 'continual': continual mode runs as one process, not on %d ranks (tp-finetune "
                       "without it trains data-parallel)", tp_config_name(job->run), job->ranks);
    if (open_model(job, &hf_dir, &pretrained) < 0 || tp_cli_apply(cli, NULL, job->model_config) < 0) return -1;
    if (job->images)
        return tp_fail("%s: key 'continual': continual mode learns text classification tasks (the model reads "
                       "images)", tp_config_name(job->run));
    if (!(job->continual = tp_continual_open(job->run, job->model_config, job->tokenizer)) ||
        load_weights(tp_continual_model(job->continual), hf_dir, pretrained) < 0)
        return -1;
    signal(SIGINT, request_stop);
    signal(SIGTERM, request_stop);
    return tp_continual_train(job->continual, &stop_requested);
}

static int run(finetune_job *job, const tp_cli *cli)
{
    tp_train_options options;
    int64_t first_epoch = 0;
    if (load_run(job, cli) < 0) return -1;
    if (tp_config_has(job->run, "continual")) return run_continual(job, cli);
    if (setup(job, cli, &options) < 0 || resume_or_start(job, tp_cli_flag(cli, TP_CLI_RESUME), &first_epoch) < 0) return -1;
    signal(SIGINT, request_stop);
    signal(SIGTERM, request_stop);
    for (int64_t epoch = first_epoch; epoch < job->epochs; epoch++) {
        int stop = 0;
        if (run_epoch(job, epoch) < 0 || stop_agreed(job, &stop) < 0) return -1;
        if (stop && stop_requested)
            fprintf(stderr, "stopped by signal %d after epoch %lld\n", (int)stop_requested, (long long)epoch + 1);
        else if (stop)
            fprintf(stderr, "stopped by a signal to another rank after epoch %lld\n", (long long)epoch + 1);
        if (stop) return 0;
    }
    return evaluate_test(job);
}

static void cleanup(finetune_job *job)
{
    tp_continual_free(job->continual);
    tp_trainer_free(&job->trainer);
    tp_model_free(&job->model);
    for (int i = 0; i < 3; i++) {
        if (job->tasks[i]) tp_tsv_free(job->tasks[i]);
        tp_encoded_split_free(&job->splits[i]);
    }
    if (job->tokenizer) tp_tokenizer_free(job->tokenizer);
    if (job->model_config) tp_config_free(job->model_config);
    if (job->run) tp_config_free(job->run);
    tp_batch_free(&job->batch);
    free(job->order);
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
