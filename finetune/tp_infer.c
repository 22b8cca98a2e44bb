/* tp-infer: batch prediction with a fine-tuned model (a tp-finetune checkpoint, a tp model config
 * + weights, or a Hugging Face classifier directory) on a TencentPretrain TSV file, written as a
 * TSV (TencentPretrain's run_classifier_infer.py columns); optionally the final hidden states
 * and head outputs as safetensors for parity checks.  The per-kind encoding, prediction and
 * scoring are tp-finetune's (core/finetune_task.c). */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/checkpoint.h"
#include "core/cli.h"
#include "core/config.h"
#include "core/device.h"
#include "core/error.h"
#include "core/fileio.h"
#include "core/finetune_task.h"
#include "core/hf.h"
#include "core/model.h"
#include "core/preprocess_clip.h"
#include "core/run_tokenizer.h"
#include "core/safetensors.h"
#include "core/tsv.h"
#include "tokenizers/tokenizer.h"

static const char usage[] =
    "usage: tp-infer [--config RUN.json] [--KEY VALUE ...] [--output_logits] [--output_prob]\n"
    "\n"
    "Predicts the labels of a TencentPretrain TSV file (header row naming text_a, optionally text_b\n"
    "and label; docs/finetune_data.md) with a fine-tuned model, and writes them as a TSV with a\n"
    "header: `label` (classification: the class name -- tp-finetune's are the class ids;\n"
    "multi_label: the predicted names, comma-separated; regression: the value; tagging: one tag per\n"
    "word of text_a, space-separated, words cut off by seq_length left out), then with\n"
    "--output_logits a `logits` and with --output_prob a `prob` column (softmax, or sigmoid per\n"
    "label for multi_label), values space-separated.  When the file has a label column, the scores\n"
    "(as tp-finetune's dev evaluation) go to stderr.  docs/finetune.md has examples.\n"
    "Images: for a model config with \"data_processor\": \"vit\" (a ViT checkpoint of tp-finetune, a\n"
    "Hugging Face ViTForImageClassification / ViTModel directory), test_path is an image list\n"
    "(label<TAB>path lines), an MNIST-style IDX images file or a pre-decoded image file of\n"
    "tp-preprocess --data_processor vit, read as tp-finetune reads them (no tokenizer; key\n"
    "skip_bad_images as there); --dump then holds no input_ids / seg (docs/media.md).\n"
    "Zero-shot classification: with candidates_path (one candidate text per line) and a CLIP model\n"
    "(target clr: a tp-pretrain output_dir or checkpoint directory, model + pretrained_model_path, or a\n"
    "Hugging Face CLIPModel directory) or a ViLT model (embedding word_patch, target sp), test_path is a\n"
    "text<TAB>path list or a pre-decoded file of tp-preprocess --data_processor clip (vilt for ViLT);\n"
    "each image's highest-scoring candidate -- by the clr logits, or by the sp target's log-odds that\n"
    "image and text match -- is written (column `text`, with --output_logits / --output_prob over the\n"
    "candidates), the accuracy over the images whose own text is a candidate goes to stderr;\n"
    "seq_length defaults to the model's max_seq_length (ViLT: less the image's rows), the tokenizer\n"
    "comes from the run's keys (docs/media.md).\n"
    "Speech: for a speech2text checkpoint (tp-finetune's task speech2text, docs/media.md), test_path\n"
    "is a speech list -- `path` lines, or `text<TAB>path` lines whose transcripts are then scored by\n"
    "word error rate -- decoded greedily (num_beams 1) or by beam search; prediction_path gets one\n"
    "transcript per line (key skip_bad_audio as in tp-finetune: lines whose audio cannot be read get\n"
    "none; their count and the first one's error go to stderr).\n"
    "\n"
    "The model, from one of:\n"
    "  checkpoint               a tp-finetune output_dir (its best/ weights), its best/, or a checkpoint\n"
    "                           directory (model.safetensors with the model config in its metadata);\n"
    "                           the task, label names, seq_length and tokenizer keys come from the\n"
    "                           task.json tp-finetune writes (in it or one or two directories above)\n"
    "  model + pretrained_model_path\n"
    "                           a tp model config and weights holding the task head (e.g. tp-convert's\n"
    "                           output); every parameter must be in the file with its shape\n"
    "  hf_model_dir             a Hugging Face BERT, RoBERTa or ALBERT directory: a classifier, or a bare\n"
    "                           encoder (no head, no `task`: only dump, of the hidden states)\n"
    "With model or hf_model_dir, the task comes from these keys (default):\n"
    "  task                     classification, multi_label, regression, tagging, text2text or\n"
    "                           speech2text (classification)\n"
    "  labels_path              the label names, one per line (class i on line i+1)\n"
    "  labels_num               instead of labels_path: N labels named 0..N-1 (the model config's\n"
    "                           labels_num, e.g. a Hugging Face classifier's)\n"
    "  pooling                  sequence-level kinds: first, mean, max, last, or patch_mean (an image's\n"
    "                           patches without the class token) (the model config's, else first)\n"
    TP_RUN_TOKENIZER_HELP
    "                           (default: the checkpoint's; a model directory's own vocab files)\n"
    "\n"
    "Inputs and outputs:\n"
    "  test_path                the TSV file (a label column is optional)\n"
    "  candidates_path          zero-shot classification by a CLIP or ViLT model: the candidate texts\n"
    "                           (see above)\n"
    "  inputs_path              instead of test_path: token ids, a safetensors file with int32\n"
    "                           input_ids and seg [N, seq] (seg 1 = text_a, 2 = text_b, 0 = padding;\n"
    "                           what --dump writes)\n"
    "  prediction_path          the predictions TSV (none); text2text, speech2text: the generated text\n"
    "                           of each line\n"
    "  tgt_seq_length, num_beams, length_penalty, early_stopping, word_delimiter\n"
    "                           text2text, speech2text: generated tokens at most, beams, beam scoring\n"
    "                           and stopping, the token for a space (the checkpoint's; tp-finetune --help)\n"
    "  output_logits, output_prob  add the columns (--output_logits / --output_prob; not for tagging,\n"
    "                           prob not for regression) (false)\n"
    "  dump                     a safetensors file (fp32) with input_ids, seg, hidden (the encoder's\n"
    "                           final hidden states [N, seq, hidden]) and target.<name>.logits for each\n"
    "                           head ([N, outputs], tagging [N, seq, tags]) (none)\n"
    "  batch_size               sequences per forward pass (32)\n"
    "  seq_length               tokens per sequence incl. [CLS]/[SEP] (the checkpoint's, else 128)\n"
    "  threads                  CPU threads (all cores)\n"
    "  device, precision        cpu or cuda; fp32, or on cuda tf32 / bf16 products (cpu, fp32)\n"
    "\n"
    "Options:\n"
    "  --config FILE            run config (JSON) holding any of the keys above\n"
    "  --KEY VALUE              set a key (e.g. --checkpoint out --test_path dev.tsv)\n"
    "  --model.KEY VALUE        set a model-config key\n"
    "  --help                   this text\n"
    "Outputs are written to a temporary name and renamed; on any error nothing is written.\n";

enum { FLAG_HELP, FLAG_OUTPUT_LOGITS, FLAG_OUTPUT_PROB };

/* The --dump arrays on the host, filled batch by batch. */
typedef struct dump_buffers {
    float *hidden;                  /* [count * seq * hidden] */
    float *logits[TP_MAX_PARTS];    /* per target: [count (* seq) * classes] */
    int64_t classes[TP_MAX_PARTS];
    int per_token[TP_MAX_PARTS];    /* the target scores every token (tagging) */
} dump_buffers;

typedef struct infer_job {
    tp_config *run, *model_config;
    tp_config *task_file;           /* the checkpoint's task.json */
    tp_tokenizer *tokenizer;
    tp_task_kind kind;
    int64_t labels_num, batch_size, seq_length;
    int64_t tgt_seq_length;         /* text2text, speech2text */
    tp_seq2seq_options search;      /* their generation's num_beams, length_penalty, early_stopping */
    const char *word_delimiter;     /* speech2text */
    char **label_names;             /* [labels_num] */
    const char *test_path, *inputs_path, *prediction_path, *dump_path;
    int output_logits, output_prob;
    int headless;                   /* the model has no target: --dump of the hidden states only */
    int images;                     /* the model reads images (data_processor vit): no tokenizer */
    tp_tsv_task *tsv;
    tp_encoded_split split;
    tp_model model;
    tp_ctx ctx;
    int ctx_ready;
    tp_batch batch;
    tp_task_predictions predictions;
    dump_buffers dump;
    /* zero-shot classification (a CLIP or ViLT model and candidates_path): the images, the candidate
     * texts (as ids and as written), each image's best candidate and its logits against all of them;
     * ViLT: the image's rows after the text */
    int zero_shot;
    int64_t zs_image_rows;
    tp_image_set zs_images;
    tp_id_lists zs_candidates;
    char **zs_texts;
    int64_t *zs_best;
    float *zs_logits;
} infer_job;

/* ---- the task: from the checkpoint's task.json or from the run's keys -------------------------- */

static int names_from_strings(infer_job *job, const char *const *names, int64_t count)
{
    job->labels_num = count;
    job->label_names = tp_xmalloc((size_t)(count ? count : 1) * sizeof *job->label_names);
    for (int64_t i = 0; i < count; i++) job->label_names[i] = tp_xstrdup(names[i]);
    return 0;
}

static void names_from_count(infer_job *job, int64_t count)
{
    char name[32];
    job->labels_num = count;
    job->label_names = tp_xmalloc((size_t)(count ? count : 1) * sizeof *job->label_names);
    for (int64_t i = 0; i < count; i++) {
        snprintf(name, sizeof name, "%lld", (long long)i);
        job->label_names[i] = tp_xstrdup(name);
    }
}

/* One label name per line (a final newline optional, CRLF accepted). */
static int read_labels_file(infer_job *job, const char *path)
{
    char *text = tp_read_file(path, NULL);
    if (!text) return -1;
    int64_t count = 0, capacity = 16, line = 0;
    char **names = tp_xmalloc((size_t)capacity * sizeof *names);
    int rc = 0;
    for (char *cursor = text, *name; rc == 0 && (name = tp_next_line(&cursor, &line));) {
        if (!*name) {
            rc = tp_fail("%s: line %lld: empty label name", path, (long long)line);
        } else {
            if (count == capacity) names = tp_xrealloc(names, (size_t)(capacity *= 2) * sizeof *names);
            names[count++] = name;
        }
    }
    if (rc == 0 && count == 0) rc = tp_fail("%s: no label names", path);
    if (rc == 0) names_from_strings(job, (const char *const *)names, count);
    free(names);
    free(text);
    return rc;
}

static int is_generating(tp_task_kind kind) { return kind == TP_TASK_TEXT2TEXT || kind == TP_TASK_SPEECH2TEXT; }

static int task_from_run(infer_job *job)
{
    const char *labels_path = NULL;
    int kind = 0;
    int64_t labels_num = 0, model_labels = 0;
    if (!tp_config_has(job->run, "task") && !tp_config_has(job->model_config, "target")) {
        job->headless = 1; /* e.g. a bare Hugging Face encoder: texts are encoded as for classification */
        job->kind = TP_TASK_CLASSIFICATION;
        names_from_count(job, 0);
        return 0;
    }
    if (tp_config_enum(job->run, "task", "classification", tp_task_kind_keys, &kind) < 0 ||
        tp_config_string(job->run, "labels_path", NULL, &labels_path) < 0 ||
        tp_config_int(job->run, "labels_num", 0, 1, INT32_MAX, &labels_num) < 0 ||
        tp_config_int(job->model_config, "labels_num", 0, 0, INT32_MAX, &model_labels) < 0)
        return -1;
    job->kind = (tp_task_kind)kind;
    if (labels_path && labels_num)
        return tp_fail("%s: key 'labels_num': give either labels_path or labels_num", tp_config_name(job->run));
    if (job->kind == TP_TASK_REGRESSION || is_generating(job->kind)) {
        if (labels_path || labels_num)
            return tp_fail("%s: key '%s': %s has no labels", tp_config_name(job->run),
                           labels_path ? "labels_path" : "labels_num", tp_task_kind_name(job->kind));
        names_from_count(job, 0);
    } else if (labels_path) {
        if (read_labels_file(job, labels_path) < 0) return -1;
    } else {
        if (!labels_num) labels_num = model_labels;
        if (!labels_num)
            return tp_fail("%s: key 'labels_num': missing (or labels_path; the model config has no labels_num)",
                           tp_config_name(job->run));
        names_from_count(job, labels_num);
    }
    return tp_task_configure_head(job->kind, job->labels_num, job->run, job->model_config);
}

static int task_from_file(infer_job *job)
{
    static const char *const run_keys[] = {"task", "labels_path", "labels_num", "pooling", NULL};
    const char *const *names = NULL;
    int kind = 0, count = 0;
    for (int i = 0; run_keys[i]; i++)
        if (tp_config_has(job->run, run_keys[i]))
            return tp_fail("%s: key '%s': a checkpoint brings its own (%s)", tp_config_name(job->run), run_keys[i],
                           tp_config_name(job->task_file));
    if (tp_config_enum(job->task_file, "task", NULL, tp_task_kind_keys, &kind) < 0 ||
        tp_config_strings(job->task_file, "labels", &names, &count) < 0)
        return -1;
    if (!tp_config_has(job->task_file, "task"))
        return tp_fail("%s: key 'task': missing", tp_config_name(job->task_file));
    job->kind = (tp_task_kind)kind;
    int64_t model_labels = 0;
    if (kind != TP_TASK_REGRESSION && !is_generating(job->kind) &&
        (tp_config_int(job->model_config, "labels_num", 0, 0, INT32_MAX, &model_labels) < 0 || model_labels != count))
        return tp_fail("%s: key 'labels': %d names, but the model's head has %lld labels", tp_config_name(job->task_file),
                       count, (long long)model_labels);
    return names_from_strings(job, names, count);
}

/* ---- the model ---------------------------------------------------------------------------------- */

static int is_file(const char *path) { return access(path, R_OK) == 0; }

/* The weights of a checkpoint directory: its model.safetensors, else the newest checkpoint under
 * dir/best, else under dir. */
static int find_weights(const char *dir, char *out, size_t cap)
{
    char path[4200], step_dir[4096];
    snprintf(out, cap, "%s/model.safetensors", dir);
    if (is_file(out)) return 0;
    snprintf(path, sizeof path, "%s/best", dir);
    if (tp_checkpoint_latest(path, step_dir, sizeof step_dir) || tp_checkpoint_latest(dir, step_dir, sizeof step_dir)) {
        snprintf(out, cap, "%s/model.safetensors", step_dir);
        return 0;
    }
    return tp_fail("%s: no checkpoint (model.safetensors, best/latest or latest)", dir);
}

/* task.json in dir or one or two directories above (best/step-N -> best/, checkpoints/step-N -> ../). */
static int load_task_file(infer_job *job, const char *dir)
{
    char path[4200];
    const char *const ups[] = {"", "/..", "/../.."};
    for (int i = 0; i < 3; i++) {
        snprintf(path, sizeof path, "%s%s/task.json", dir, ups[i]);
        if (is_file(path)) return (job->task_file = tp_config_load(path)) ? 0 : -1;
    }
    return tp_fail("%s: no task.json in it or above (tp-finetune writes one; or give model + "
                   "pretrained_model_path with task and labels)", dir);
}

/* The model config that tp-finetune stores in the weights' metadata. */
static tp_config *stored_model_config(const char *weights)
{
    tp_st_file *file = tp_st_open(weights);
    if (!file) return NULL;
    const char *text = tp_st_metadata(file, "model_config");
    tp_config *config = text ? tp_config_parse(weights, text) : NULL;
    if (!text) tp_fail("%s: no model_config in the metadata (not a tp checkpoint)", weights);
    tp_st_close(file);
    return config;
}

typedef struct model_source {
    const char *checkpoint, *model_path, *weights_path, *hf_dir;
    char weights[4200];
} model_source;

static int read_source(infer_job *job, model_source *source)
{
    const char *name = tp_config_name(job->run);
    if (tp_config_string(job->run, "checkpoint", NULL, &source->checkpoint) < 0 ||
        tp_config_string(job->run, "model", NULL, &source->model_path) < 0 ||
        tp_config_string(job->run, "pretrained_model_path", NULL, &source->weights_path) < 0 ||
        tp_config_string(job->run, "hf_model_dir", NULL, &source->hf_dir) < 0)
        return -1;
    int given = !!source->checkpoint + !!(source->model_path || source->weights_path) + !!source->hf_dir;
    if (given != 1)
        return tp_fail("%s: key 'checkpoint': give one of checkpoint, model + pretrained_model_path, hf_model_dir",
                       name);
    if (source->model_path && !source->weights_path)
        return tp_fail("%s: key 'pretrained_model_path': missing (the weights for model)", name);
    if (source->weights_path && !source->model_path)
        return tp_fail("%s: key 'model': missing (the config for pretrained_model_path)", name);
    return 0;
}

/* The model config and the task, from whichever source the run names. */
static int open_model(infer_job *job, model_source *source)
{
    if (read_source(job, source) < 0) return -1;
    if (source->checkpoint) {
        if (find_weights(source->checkpoint, source->weights, sizeof source->weights) < 0 ||
            load_task_file(job, source->checkpoint) < 0 ||
            !(job->model_config = stored_model_config(source->weights)))
            return -1;
        return task_from_file(job);
    }
    job->model_config = source->hf_dir ? tp_hf_config(source->hf_dir) : tp_config_load(source->model_path);
    return job->model_config ? task_from_run(job) : -1;
}

/* The run's tokenizer keys, else the checkpoint's; a model directory's files otherwise. */
static int open_tokenizer(infer_job *job, const model_source *source)
{
    static const char *const keys[] = {"tokenizer",      "vocab_path",          "merges_path",
                                       "spm_model_path", "tokenizer_json_path", "do_lower_case", NULL};
    tp_config *keys_from = job->run;
    const char *model_dir = source->hf_dir;
    if ((job->images = tp_task_is_image(job->model_config))) return 0;
    if (job->task_file) {
        int run_has_keys = 0;
        for (int i = 0; keys[i]; i++) run_has_keys |= tp_config_has(job->run, keys[i]);
        if (!run_has_keys) keys_from = job->task_file;
        if (tp_config_string(job->task_file, "hf_model_dir", NULL, &model_dir) < 0) return -1;
    }
    job->tokenizer = tp_run_tokenizer(keys_from, model_dir);
    return job->tokenizer ? 0 : -1;
}

static int load_weights(infer_job *job, const model_source *source)
{
    if (source->hf_dir) return tp_hf_load(source->hf_dir, &job->model, NULL);
    if (source->checkpoint) return tp_checkpoint_load_weights(source->weights, &job->model.params);
    return tp_checkpoint_load_backbone(source->weights_path, &job->model.params, NULL) < 0 ? -1 : 0;
}

/* ---- the run's other keys ----------------------------------------------------------------------- */

static int read_outputs(infer_job *job)
{
    const char *name = tp_config_name(job->run);
    if (tp_config_string(job->run, "test_path", NULL, &job->test_path) < 0 ||
        tp_config_string(job->run, "inputs_path", NULL, &job->inputs_path) < 0 ||
        tp_config_string(job->run, "prediction_path", NULL, &job->prediction_path) < 0 ||
        tp_config_string(job->run, "dump", NULL, &job->dump_path) < 0 ||
        tp_config_bool(job->run, "output_logits", 0, &job->output_logits) < 0 ||
        tp_config_bool(job->run, "output_prob", 0, &job->output_prob) < 0)
        return -1;
    if (!job->test_path == !job->inputs_path)
        return tp_fail("%s: key 'test_path': give either test_path or inputs_path", name);
    if (job->headless && !job->dump_path)
        return tp_fail("%s: key 'dump': missing (the model has no head to predict with; without `task` only the "
                       "hidden states can be dumped)", name);
    if (job->headless && (job->prediction_path || job->output_logits || job->output_prob))
        return tp_fail("%s: key '%s': the model has no head to predict with (give `task` for a model with one)", name,
                       job->prediction_path ? "prediction_path" : job->output_logits ? "output_logits" : "output_prob");
    if (job->kind == TP_TASK_TAGGING && (job->output_logits || job->output_prob))
        return tp_fail("%s: key '%s': not available for tagging", name,
                       job->output_logits ? "output_logits" : "output_prob");
    if (job->kind == TP_TASK_REGRESSION && job->output_prob)
        return tp_fail("%s: key 'output_prob': regression has no probabilities", name);
    if (is_generating(job->kind) && (job->output_logits || job->output_prob || job->inputs_path ||
                                     (job->kind == TP_TASK_SPEECH2TEXT && job->dump_path)))
        return tp_fail("%s: key '%s': not available for %s (it reads test_path and writes the generated texts)", name,
                       job->output_logits ? "output_logits" : job->output_prob ? "output_prob"
                                                            : job->inputs_path ? "inputs_path" : "dump",
                       tp_task_kind_name(job->kind));
    return 0;
}

static int read_run(infer_job *job, int64_t *threads)
{
    int64_t stored_length = 128;
    if (job->task_file && tp_config_int(job->task_file, "seq_length", 128, 2, 1 << 20, &stored_length) < 0) return -1;
    if (tp_config_int(job->run, "batch_size", 32, 1, 1 << 20, &job->batch_size) < 0 ||
        tp_config_int(job->run, "seq_length", stored_length, 2, 1 << 20, &job->seq_length) < 0 ||
        tp_config_int(job->run, "threads", 0, 0, 4096, threads) < 0)
        return -1;
    /* defaults: the checkpoint's */
    if (is_generating(job->kind) &&
        tp_task_read_search(job->run, job->task_file, job->kind, &job->tgt_seq_length, &job->search) < 0)
        return -1;
    if (job->kind == TP_TASK_SPEECH2TEXT) {
        const char *stored = NULL;
        if ((job->task_file && tp_config_string(job->task_file, "word_delimiter", NULL, &stored) < 0) ||
            tp_config_string(job->run, "word_delimiter", stored, &job->word_delimiter) < 0)
            return -1;
    }
    return read_outputs(job);
}

/* ---- inputs ------------------------------------------------------------------------------------- */

static int read_tsv(infer_job *job)
{
    tp_tsv_options options = {.kind = job->kind, .num_labels = job->labels_num, .allow_missing_label = 1};
    if (job->kind == TP_TASK_TAGGING) options.label_names = (const char *const *)job->label_names;
    if (!(job->tsv = tp_tsv_read(job->test_path, &options))) return -1;
    if (job->kind == TP_TASK_TAGGING && job->tsv->has_text_b)
        return tp_fail("%s: header: tagging takes text_a only (found a text_b column)", job->test_path);
    if (job->kind == TP_TASK_TEXT2TEXT)
        return tp_encode_text2text(job->tokenizer, job->tsv, job->seq_length, job->tgt_seq_length, &job->split);
    tp_encode_split(job->tokenizer, job->tsv, job->seq_length, job->labels_num, &job->split);
    return 0;
}

/* An image list, IDX pair or pre-decoded file (core/preprocess_vit.h) at the model's input size. */
static int read_images(infer_job *job)
{
    int skip = 0;
    if (job->inputs_path)
        return tp_fail("%s: key 'inputs_path': token ids; an image model reads test_path", tp_config_name(job->run));
    if (tp_config_bool(job->run, "skip_bad_images", 0, &skip) < 0 ||
        tp_task_read_images(job->test_path, job->model_config, job->labels_num, skip, &job->tsv, &job->split) < 0)
        return -1;
    tp_task_report_skipped(job->test_path, job->split.images, job->split.speech);
    job->seq_length = job->split.seq_length; /* the class token and the patches */
    return 0;
}

/* A speech list at the model's features, its transcripts (when it has them) as the decoder rows. */
static int read_speech(infer_job *job)
{
    if (job->inputs_path)
        return tp_fail("%s: key 'inputs_path': token ids; a speech model reads test_path", tp_config_name(job->run));
    tp_s2t_read_options options = {.allow_no_text = 1};
    if (tp_config_bool(job->run, "skip_bad_audio", 0, &options.skip_bad_audio) < 0 ||
        tp_task_check_speech_model(&job->model, tp_config_name(job->run), "task") < 0 ||
        tp_task_read_speech(job->test_path, job->model_config, &options, &job->tsv, &job->split) < 0 ||
        tp_encode_speech_targets(job->tokenizer, job->word_delimiter, job->tgt_seq_length, &job->split) < 0)
        return -1;
    tp_task_report_skipped(job->test_path, job->split.images, job->split.speech);
    job->seq_length = job->split.seq_length; /* subsampled frames: sinusoidal positions, any length */
    return 0;
}

/* Token ids as --dump writes them: int32 input_ids and seg [N, seq], no labels, no words. */
static int read_inputs(infer_job *job)
{
    tp_st_file *file = tp_st_open(job->inputs_path);
    if (!file) return -1;
    const tp_st_tensor *ids = tp_st_find(file, "input_ids"), *seg = tp_st_find(file, "seg");
    int rc = 0;
    if (!ids || !seg)
        rc = tp_fail("%s: no tensor '%s'", job->inputs_path, ids ? "seg" : "input_ids");
    else if (ids->dtype != TP_ST_I32 || ids->ndim != 2 || ids->shape[1] < 2)
        rc = tp_fail("%s: tensor 'input_ids': expected int32 [N, seq >= 2]", job->inputs_path);
    else if (seg->dtype != TP_ST_I32 || seg->ndim != 2 || seg->shape[0] != ids->shape[0] ||
             seg->shape[1] != ids->shape[1])
        rc = tp_fail("%s: tensor 'seg': expected int32 with input_ids' shape", job->inputs_path);
    else if (ids->shape[1] > job->model.hp.max_seq_length)
        rc = tp_fail("%s: tensor 'input_ids': sequences of %lld tokens, more than the model's max_seq_length %lld",
                     job->inputs_path, (long long)ids->shape[1], (long long)job->model.hp.max_seq_length);
    if (rc == 0) {
        tp_encoded_split *split = &job->split;
        split->kind = job->kind;
        split->count = ids->shape[0];
        split->seq_length = job->seq_length = ids->shape[1];
        split->labels_num = job->labels_num;
        split->src = tp_xmalloc((size_t)ids->nbytes);
        split->seg = tp_xmalloc((size_t)seg->nbytes);
        memcpy(split->src, ids->data, (size_t)ids->nbytes);
        memcpy(split->seg, seg->data, (size_t)seg->nbytes);
        if (job->kind == TP_TASK_TAGGING) {
            split->first_word = tp_xcalloc((size_t)split->count + 1, sizeof *split->first_word);
            split->word_position = tp_xmalloc(sizeof *split->word_position);
        }
        for (int64_t i = 0; i < split->count * split->seq_length && rc == 0; i++)
            if (split->src[i] < 0 || split->src[i] >= job->tokenizer->vocab_size)
                rc = tp_fail("%s: input_ids[%lld][%lld]: token id %d outside the vocabulary [0, %lld)",
                             job->inputs_path, (long long)(i / split->seq_length), (long long)(i % split->seq_length),
                             (int)split->src[i], (long long)job->tokenizer->vocab_size);
            else if (split->seg[i] < 0 || split->seg[i] > 2)
                rc = tp_fail("%s: seg[%lld][%lld]: segment %d is not 0 (padding), 1 (text_a) or 2 (text_b)",
                             job->inputs_path, (long long)(i / split->seq_length), (long long)(i % split->seq_length),
                             (int)split->seg[i]);
    }
    tp_st_close(file);
    return rc;
}

/* ---- set-up ------------------------------------------------------------------------------------- */

static int check_seq_length(const infer_job *job)
{
    if (job->kind != TP_TASK_SPEECH2TEXT && job->seq_length > job->model.hp.max_seq_length)
        return tp_fail("%s: key 'seq_length': %lld exceeds the model's max_seq_length %lld", tp_config_name(job->run),
                       (long long)job->seq_length, (long long)job->model.hp.max_seq_length);
    return 0;
}

/* ---- zero-shot classification: a CLIP or ViLT model, candidate texts --------------------------- */

/* A CLIP or ViLT model's weights: a tp-pretrain output_dir or checkpoint directory (no task.json), a
 * tp config + weights, or a Hugging Face CLIPModel directory. */
static int open_clip_model(infer_job *job, model_source *source, const tp_cli *cli)
{
    if (read_source(job, source) < 0) return -1;
    char pretrained[4200]; /* tp-pretrain's output_dir keeps them in checkpoints/ */
    snprintf(pretrained, sizeof pretrained, "%s/checkpoints", source->checkpoint ? source->checkpoint : "");
    if (source->checkpoint) {
        if ((find_weights(pretrained, source->weights, sizeof source->weights) < 0 &&
             find_weights(source->checkpoint, source->weights, sizeof source->weights) < 0) ||
            !(job->model_config = stored_model_config(source->weights)))
            return -1;
    } else {
        job->model_config = source->hf_dir ? tp_hf_config(source->hf_dir) : tp_config_load(source->model_path);
        if (!job->model_config) return -1;
    }
    if (tp_cli_apply(cli, NULL, job->model_config) < 0 || open_tokenizer(job, source) < 0) return -1;
    if (job->tokenizer && tp_model_build(&job->model, job->model_config, job->tokenizer->vocab_size) < 0) return -1;
    int clr = tp_model_target_index(&job->model, "clr") >= 0, sp = tp_model_target_index(&job->model, "sp") >= 0;
    if (!clr && !(sp && tp_model_has_embedding(&job->model, "word_patch")))
        return tp_fail("%s: key 'candidates_path': zero-shot classification needs a CLIP model (target clr) or a "
                       "ViLT model (embedding word_patch, target sp); %s is neither", tp_config_name(job->run),
                       tp_config_name(job->model_config));
    return 0;
}

/* The images (a text<TAB>path list or a clip pre-decoded file) and the candidates, as ids. */
static int read_zero_shot_inputs(infer_job *job, tp_image_set_options *options)
{
    const char *name = tp_config_name(job->run), *candidates_path = NULL;
    if (tp_config_string(job->run, "test_path", NULL, &job->test_path) < 0 ||
        tp_config_string(job->run, "candidates_path", NULL, &candidates_path) < 0 ||
        tp_config_bool(job->run, "skip_bad_images", 0, &options->skip_bad_images) < 0)
        return -1;
    if (!job->test_path)
        return tp_fail("%s: key 'test_path': missing (the images: text<TAB>path lines or a pre-decoded file of "
                       "tp-preprocess --data_processor clip)", name);
    tp_image_set *images = &job->zs_images;
    if (tp_image_set_read(job->test_path, options, images) < 0 ||
        (images->captions && tp_clip_tokenize_set(images, job->tokenizer, job->seq_length) < 0) ||
        tp_clip_read_texts(candidates_path, job->tokenizer, job->seq_length, &job->zs_candidates, &job->zs_texts) < 0)
        return -1;
    if (images->vocab_size != job->tokenizer->vocab_size)
        return tp_fail("%s: made with a vocabulary of %lld tokens, but %s has %lld", job->test_path,
                       (long long)images->vocab_size, job->tokenizer->source_path,
                       (long long)job->tokenizer->vocab_size);
    tp_task_report_skipped(job->test_path, images, NULL);
    return 0;
}

static int zero_shot_setup(infer_job *job, const tp_cli *cli)
{
    model_source source = {0};
    tp_image_set_options options = {0};
    const tp_backend *backend = NULL;
    int64_t threads = 0;
    job->zero_shot = 1;
    if (open_clip_model(job, &source, cli) < 0) return -1;
    int vilt = tp_model_has_embedding(&job->model, "word_patch");
    if ((vilt ? tp_vilt_image_options(job->model_config, &options, &job->zs_image_rows)
              : tp_clip_image_options(job->model_config, &options)) < 0)
        return -1;
    int64_t text_rows = job->model.hp.max_seq_length - job->zs_image_rows; /* ViLT: the image's rows follow */
    if (tp_config_string(job->run, "prediction_path", NULL, &job->prediction_path) < 0 ||
        tp_config_bool(job->run, "output_logits", 0, &job->output_logits) < 0 ||
        tp_config_bool(job->run, "output_prob", 0, &job->output_prob) < 0 ||
        tp_config_int(job->run, "seq_length", text_rows, 2, text_rows, &job->seq_length) < 0 ||
        tp_config_int(job->run, "threads", 0, 0, 4096, &threads) < 0 || !(backend = tp_device_from_config(job->run)) ||
        read_zero_shot_inputs(job, &options) < 0 || tp_config_check_unused(job->model_config) < 0 ||
        tp_config_check_unused(job->run) < 0)
        return -1;
    if (threads > 0) omp_set_num_threads((int)threads);
    tp_model_allocate(&job->model, backend, 7);
    if (load_weights(job, &source) < 0) return -1;
    tp_ctx_init(&job->ctx, backend, (size_t)64 << 20);
    job->ctx_ready = 1;
    return 0;
}

static int setup(infer_job *job, const tp_cli *cli)
{
    model_source source = {0};
    const tp_backend *backend = NULL;
    int64_t threads = 0;
    job->run = cli->config_path ? tp_config_load(cli->config_path) : tp_config_new_empty("command line");
    if (!job->run || tp_cli_apply(cli, job->run, NULL) < 0) return -1;
    if (tp_cli_flag(cli, FLAG_OUTPUT_LOGITS)) tp_config_set(job->run, "output_logits", "true");
    if (tp_cli_flag(cli, FLAG_OUTPUT_PROB)) tp_config_set(job->run, "output_prob", "true");
    if (tp_config_has(job->run, "candidates_path")) return zero_shot_setup(job, cli);
    if (open_model(job, &source) < 0 || tp_cli_apply(cli, NULL, job->model_config) < 0 ||
        open_tokenizer(job, &source) < 0 || read_run(job, &threads) < 0 || !(backend = tp_device_from_config(job->run)))
        return -1;
    if (tp_model_build(&job->model, job->model_config, job->tokenizer ? job->tokenizer->vocab_size : 0) < 0)
        return -1;
    if (!job->images && job->kind != TP_TASK_SPEECH2TEXT &&
        tp_task_check_text_model(&job->model, tp_config_name(job->run), "task") < 0)
        return -1;
    int read = job->images                          ? read_images(job)
               : job->kind == TP_TASK_SPEECH2TEXT ? read_speech(job)
               : job->inputs_path                 ? read_inputs(job)
                                                  : read_tsv(job);
    if (read < 0 || tp_config_check_unused(job->model_config) < 0 || tp_config_check_unused(job->run) < 0 ||
        check_seq_length(job) < 0)
        return -1;
    if (!job->prediction_path && !job->dump_path && !job->split.has_labels)
        return tp_fail("%s: key 'prediction_path': nothing to do (no prediction_path, no dump, and %s has no labels "
                       "to score)", tp_config_name(job->run), job->test_path ? job->test_path : job->inputs_path);
    if (threads > 0) omp_set_num_threads((int)threads);
    tp_model_allocate(&job->model, backend, 7);
    if (load_weights(job, &source) < 0) return -1;
    tp_ctx_init(&job->ctx, backend, (size_t)64 << 20);
    job->ctx_ready = 1;
    tp_task_batch_init(&job->batch, &job->split, job->batch_size);
    return 0;
}

/* ---- --dump ------------------------------------------------------------------------------------- */

/* Downloads the first `columns` of each of `rows` rows of a backend matrix (cols wide) to dst. */
static void download_columns(const tp_ctx *ctx, const tp_tensor *matrix, int64_t rows, int64_t columns, float *dst)
{
    int64_t cols = tp_cols(matrix);
    float *all = tp_xmalloc((size_t)(rows * cols) * sizeof *all);
    ctx->backend->download(all, matrix->data, (size_t)(rows * cols) * sizeof *all);
    for (int64_t r = 0; r < rows; r++) memcpy(dst + r * columns, all + r * cols, (size_t)columns * sizeof *dst);
    free(all);
}

static int dump_batch(void *user, tp_ctx *ctx, const tp_model_output *output, int64_t first, int64_t rows)
{
    infer_job *job = user;
    dump_buffers *dump = &job->dump;
    int64_t seq = job->seq_length, hidden = job->model.hp.hidden_size, count = job->split.count;
    if (!dump->hidden) dump->hidden = tp_xmalloc((size_t)(count * seq * hidden) * sizeof *dump->hidden);
    download_columns(ctx, output->hidden, rows * seq, hidden, dump->hidden + first * seq * hidden);
    for (int t = 0; t < job->model.target_count; t++) {
        const tp_target_result *result = &output->results[t];
        if (!dump->logits[t]) {
            dump->classes[t] = result->classes;
            dump->per_token[t] = tp_rows(result->logits) == rows * seq;
            int64_t units = dump->per_token[t] ? count * seq : count;
            dump->logits[t] = tp_xmalloc((size_t)(units * result->classes) * sizeof *dump->logits[t]);
        }
        int64_t unit_rows = dump->per_token[t] ? rows * seq : rows, offset = dump->per_token[t] ? first * seq : first;
        download_columns(ctx, result->logits, unit_rows, dump->classes[t], dump->logits[t] + offset * dump->classes[t]);
    }
    return 0;
}

static int write_dump(infer_job *job)
{
    const tp_encoded_split *split = &job->split;
    int64_t tokens[2] = {split->count, split->seq_length};
    int64_t hidden[3] = {split->count, split->seq_length, job->model.hp.hidden_size};
    char names[TP_MAX_PARTS][96];
    tp_st_writer *writer = tp_st_writer_new();
    if (split->src) { /* images have none */
        tp_st_writer_add(writer, "input_ids", TP_ST_I32, 2, tokens, split->src);
        tp_st_writer_add(writer, "seg", TP_ST_I32, 2, tokens, split->seg);
    }
    tp_st_writer_add(writer, "hidden", TP_ST_F32, 3, hidden, job->dump.hidden);
    for (int t = 0; t < job->model.target_count; t++) {
        int64_t shape[3] = {split->count, split->seq_length, job->dump.classes[t]};
        int per_token = job->dump.per_token[t];
        if (!per_token) shape[1] = job->dump.classes[t];
        snprintf(names[t], sizeof names[t], "target.%s.logits", tp_model_target_name(&job->model, t));
        tp_st_writer_add(writer, names[t], TP_ST_F32, per_token ? 3 : 2, shape, job->dump.logits[t]);
    }
    int rc = tp_st_writer_save(writer, job->dump_path);
    tp_st_writer_free(writer);
    return rc;
}

/* ---- the predictions TSV ------------------------------------------------------------------------ */

static void write_values(FILE *out, const float *values, int64_t count)
{
    for (int64_t c = 0; c < count; c++) fprintf(out, "%s%.9g", c ? " " : "", (double)values[c]);
}

/* softmax (classification) or a sigmoid per label (multi-label), in double. */
static void write_probabilities(FILE *out, tp_task_kind kind, const float *logits, int64_t count)
{
    double largest = logits[0], sum = 0;
    for (int64_t c = 1; c < count; c++) largest = fmax(largest, logits[c]);
    for (int64_t c = 0; c < count; c++) sum += exp((double)logits[c] - largest);
    for (int64_t c = 0; c < count; c++) {
        double p = kind == TP_TASK_MULTI_LABEL ? 1.0 / (1.0 + exp(-(double)logits[c]))
                                               : exp((double)logits[c] - largest) / sum;
        fprintf(out, "%s%.9g", c ? " " : "", p);
    }
}

static void write_label(FILE *out, const infer_job *job, int64_t i)
{
    const tp_task_predictions *p = &job->predictions;
    const char *separator = "";
    switch (job->kind) {
    case TP_TASK_CLASSIFICATION: fputs(job->label_names[p->ids[i]], out); break;
    case TP_TASK_MULTI_LABEL:
        for (int64_t c = 0; c < job->labels_num; c++)
            if (p->ids[i * job->labels_num + c]) fprintf(out, "%s%s", separator, job->label_names[c]), separator = ",";
        break;
    case TP_TASK_REGRESSION: fprintf(out, "%.9g", (double)p->logits[i]); break;
    case TP_TASK_TAGGING:
        for (int64_t w = job->split.first_word[i]; w < job->split.first_word[i + 1]; w++)
            if (p->ids[w] >= 0) fprintf(out, "%s%s", separator, job->label_names[p->ids[w]]), separator = " ";
        break;
    case TP_TASK_TEXT2TEXT:
    case TP_TASK_SPEECH2TEXT: fputs(p->texts[i], out); break;
    }
}

static int write_predictions(infer_job *job)
{
    tp_atomic_file file;
    if (tp_atomic_open(&file, job->prediction_path) < 0) return -1;
    const tp_task_predictions *p = &job->predictions;
    fprintf(file.fp, "label%s%s\n", job->output_logits ? "\tlogits" : "", job->output_prob ? "\tprob" : "");
    for (int64_t i = 0; i < job->split.count; i++) {
        write_label(file.fp, job, i);
        if (job->output_logits) fputc('\t', file.fp), write_values(file.fp, p->logits + i * p->outputs, p->outputs);
        if (job->output_prob)
            fputc('\t', file.fp), write_probabilities(file.fp, job->kind, p->logits + i * p->outputs, p->outputs);
        fputc('\n', file.fp);
    }
    return tp_atomic_commit(&file);
}

/* ---- run ---------------------------------------------------------------------------------------- */

static int report_scores(infer_job *job)
{
    tp_task_scores scores;
    if (tp_task_score(&job->split, job->tsv, (const char *const *)job->label_names, &job->predictions, &scores) < 0)
        return -1;
    fprintf(stderr, "%s | ", job->test_path);
    tp_task_scores_print(stderr, &scores, (const char *const *)job->label_names);
    tp_task_scores_free(&scores);
    return 0;
}

/* Each image's best candidate (and its logits and softmax over the candidates). */
static int write_zero_shot(const infer_job *job)
{
    tp_atomic_file file;
    if (tp_atomic_open(&file, job->prediction_path) < 0) return -1;
    int64_t candidates = job->zs_candidates.count;
    fprintf(file.fp, "text%s%s\n", job->output_logits ? "\tlogits" : "", job->output_prob ? "\tprob" : "");
    for (int64_t i = 0; i < job->zs_images.count; i++) {
        const float *logits = job->zs_logits + i * candidates;
        fputs(job->zs_texts[job->zs_best[i]], file.fp);
        if (job->output_logits) fputc('\t', file.fp), write_values(file.fp, logits, candidates);
        if (job->output_prob)
            fputc('\t', file.fp), write_probabilities(file.fp, TP_TASK_CLASSIFICATION, logits, candidates);
        fputc('\n', file.fp);
    }
    return tp_atomic_commit(&file);
}

/* The accuracy over the images whose own text is one of the candidates. */
static void report_zero_shot(const infer_job *job)
{
    const tp_id_lists *texts = &job->zs_images.texts;
    int64_t scored = 0, correct = 0;
    for (int64_t i = 0; i < texts->count; i++) {
        int64_t truth = tp_id_lists_find(&job->zs_candidates, texts->ids + texts->offsets[i],
                                         texts->offsets[i + 1] - texts->offsets[i]);
        scored += truth >= 0;
        correct += truth >= 0 && truth == job->zs_best[i];
    }
    if (scored)
        fprintf(stderr, "%s | zero-shot accuracy %.4f (%lld of %lld images; %lld without their text among the "
                "candidates)\n", job->test_path, (double)correct / (double)scored, (long long)correct,
                (long long)scored, (long long)(texts->count - scored));
}

static int run_zero_shot(infer_job *job)
{
    int64_t count = job->zs_images.count;
    job->zs_best = tp_xmalloc((size_t)count * sizeof *job->zs_best);
    job->zs_logits = tp_xmalloc((size_t)(count * job->zs_candidates.count) * sizeof *job->zs_logits);
    int32_t pad_id = job->tokenizer->pad_id >= 0 ? job->tokenizer->pad_id : job->tokenizer->eos_id;
    if (tp_image_text_zero_shot(&job->model, &job->ctx, &job->zs_images, &job->zs_candidates, job->seq_length,
                                job->zs_image_rows, pad_id, job->zs_best, job->zs_logits) < 0 ||
        (job->prediction_path && write_zero_shot(job) < 0))
        return -1;
    report_zero_shot(job);
    fprintf(stderr, "tp-infer: %lld images against %lld candidate texts on device %s%s%s\n", (long long)count,
            (long long)job->zs_candidates.count, job->ctx.backend->name,
            job->prediction_path ? "; predictions in " : "", job->prediction_path ? job->prediction_path : "");
    return 0;
}

static int run(infer_job *job, const tp_cli *cli)
{
    if (setup(job, cli) < 0) return -1;
    if (job->zero_shot) return run_zero_shot(job);
    tp_task_observer observer = {dump_batch, job};
    if (tp_task_predict_observed(&job->model, &job->ctx, &job->split, &job->batch, job->batch_size,
                                 job->dump_path ? &observer : NULL, &job->predictions) < 0)
        return -1;
    if (is_generating(job->kind) &&
        tp_task_generate(&job->model, &job->ctx, job->tokenizer, &job->split, &job->search, &job->predictions) < 0)
        return -1;
    if (job->dump_path && write_dump(job) < 0) return -1;
    if (job->prediction_path && write_predictions(job) < 0) return -1;
    if (job->split.has_labels && !job->headless && report_scores(job) < 0) return -1;
    fprintf(stderr, "tp-infer: %lld examples on device %s%s%s%s%s\n", (long long)job->split.count, job->ctx.backend->name,
            job->prediction_path ? "; predictions in " : "", job->prediction_path ? job->prediction_path : "",
            job->dump_path ? "; dump in " : "", job->dump_path ? job->dump_path : "");
    return 0;
}

static void cleanup(infer_job *job)
{
    tp_task_predictions_free(&job->predictions);
    tp_batch_free(&job->batch);
    if (job->ctx_ready) tp_ctx_free(&job->ctx);
    tp_model_free(&job->model);
    tp_encoded_split_free(&job->split);
    if (job->tsv) tp_tsv_free(job->tsv);
    for (int64_t i = 0; job->label_names && i < job->labels_num; i++) free(job->label_names[i]);
    free(job->label_names);
    free(job->dump.hidden);
    for (int t = 0; t < TP_MAX_PARTS; t++) free(job->dump.logits[t]);
    if (job->tokenizer) tp_tokenizer_free(job->tokenizer);
    if (job->model_config) tp_config_free(job->model_config);
    if (job->task_file) tp_config_free(job->task_file);
    if (job->run) tp_config_free(job->run);
    tp_image_set_free(&job->zs_images);
    tp_id_lists_free(&job->zs_candidates);
    for (int64_t i = 0; job->zs_texts && job->zs_texts[i]; i++) free(job->zs_texts[i]);
    free(job->zs_texts);
    free(job->zs_best);
    free(job->zs_logits);
}

int main(int argc, char **argv)
{
    static const char *const flags[] = {"help", "output_logits", "output_prob", NULL};
    infer_job job;
    tp_cli cli;
    memset(&job, 0, sizeof job);
    if (tp_cli_parse(argc, argv, flags, &cli) < 0) {
        fprintf(stderr, "tp-infer: error: %s\nrun tp-infer --help for usage\n", tp_last_error());
        return 2;
    }
    int status = 0;
    if (tp_cli_flag(&cli, FLAG_HELP)) {
        fputs(usage, stdout);
    } else if (run(&job, &cli) < 0) {
        fprintf(stderr, "tp-infer: error: %s\n", tp_last_error());
        status = 1;
    }
    cleanup(&job);
    tp_cli_free(&cli);
    return status;
}
