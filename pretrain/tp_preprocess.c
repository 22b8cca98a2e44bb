/* tp-preprocess: a text corpus -> a binary dataset for tp-pretrain.
 * Options follow TencentPretrain's preprocess.py; see --help and docs/data.md. */
#include "core/error.h"
#include "core/preprocess.h"
#include "core/preprocess_clip.h"
#include "core/preprocess_seq2seq.h"
#include "core/preprocess_vit.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <omp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *program = "tp-preprocess";

typedef enum { OPT_PATH, OPT_CHOICE, OPT_INT, OPT_REAL, OPT_BOOL, OPT_FLAG } option_type;

typedef struct option_spec {
    const char *name;
    option_type type;
    void *target;        /* const char *, int64_t, double or int */
    const char *choices; /* OPT_CHOICE: "a|b" */
    double low, high;    /* OPT_INT / OPT_REAL: allowed range */
    const char *help;    /* ends with the default */
} option_spec;

typedef struct settings {
    const char *corpus_path, *vocab_path, *dataset_path, *processor, *tokenizer;
    const char *merges_path, *spm_model_path, *tokenizer_json_path, *config_path;
    int64_t seq_length, dup_factor, docs_buffer_size, seed, processes_num;
    double short_seq_prob, mask_prob;
    int do_lower_case, dynamic_masking, full_sentences, skip_bad_images, help;
    int64_t tgt_seq_length, span_max_length; /* mt; t5 and bart's span masking */
    double span_geo_prob;
    int span_masking;
} settings;

/* Defaults as preprocess.py's (dataset_path: .tpd instead of .pt). */
static settings args = {.dataset_path = "dataset.tpd",
                        .processor = "bert",
                        .tokenizer = "bert",
                        .seq_length = 128,
                        .dup_factor = 5,
                        .docs_buffer_size = 100000,
                        .seed = 7,
                        .short_seq_prob = 0.1,
                        .mask_prob = 0.15,
                        .tgt_seq_length = 128,
                        .span_geo_prob = 0.2,
                        .span_max_length = 10,
                        .do_lower_case = 1};

static const option_spec options[] = {
    {"corpus_path", OPT_PATH, &args.corpus_path, NULL, 0, 0,
     "Text corpus (UTF-8). bert: one sentence per line, documents separated by blank lines; mlm: one text per line. "
     "Required."},
    {"vocab_path", OPT_PATH, &args.vocab_path, NULL, 0, 0,
     "Vocabulary: one token per line (bert, char, space) or GPT-2's vocab.json (bpe). The bert and mlm processors "
     "need [CLS], [SEP], [MASK] and [PAD] in it. Required for bert, bpe, char and space."},
    {"merges_path", OPT_PATH, &args.merges_path, NULL, 0, 0, "bpe: GPT-2's merges.txt. Required for bpe."},
    {"spm_model_path", OPT_PATH, &args.spm_model_path, NULL, 0, 0,
     "sentencepiece: a SentencePiece .model file (unigram or BPE). Required for sentencepiece."},
    {"tokenizer_json_path", OPT_PATH, &args.tokenizer_json_path, NULL, 0, 0,
     "hf: a Hugging Face tokenizer.json (WordPiece, byte-level BPE or Unigram model). Required for hf."},
    {"dataset_path", OPT_PATH, &args.dataset_path, NULL, 0, 0, "Output dataset. Default: dataset.tpd."},
    {"data_processor", OPT_CHOICE, &args.processor, "bert|mlm|lm|vit|clip|vilt|t5|bart|mt|prefixlm", 0, 0,
     "bert: NSP pairs [CLS] A [SEP] B [SEP] per document; mlm: lines cut into seq_length pieces; lm (GPT-2): "
     "lines cut into windows of seq_length + 1 tokens, the inputs and their next tokens (with a bpe tokenizer "
     "<|endoftext|> frames each line; no masks, dup_factor 1); vit: the corpus is an image list (label<TAB>path "
     "lines) or an MNIST-style IDX images file, decoded and resized once into a pre-decoded image file that "
     "tp-finetune and tp-infer read in place of the list (no tokenizer; --config_path); clip: the corpus is "
     "TencentPretrain's text<TAB>path lines (image-text pairs), the images decoded and processed as "
     "CLIPImageProcessor for the model's vision stream and the texts tokenized as [CLS] text [SEP] (at most "
     "seq_length tokens), into a pre-decoded file that tp-pretrain trains a CLIP model on (--config_path); vilt: "
     "the same pairs with the images processed as vit's for the model's size, for tp-pretrain's ViLT (masked "
     "texts, half the images swapped for another pair's: docs/media.md); t5: "
     "mlm pieces whose "
     "masked spans become sentinels <extra_id_N> (needs <extra_id_0>...); bart: documents' sentence chunks, "
     "permuted and text-infilled with [MASK]; mt: source<TAB>target lines for an encoder-decoder; prefixlm: "
     "source<TAB>target lines as one sequence for a decoder-only model, loss on the target (docs/data.md). "
     "Default: bert."},
    {"processor", OPT_CHOICE, &args.processor, "bert|mlm|lm|vit|clip|vilt|t5|bart|mt|prefixlm", 0, 0,
     "Same as --data_processor."},
    {"tokenizer", OPT_CHOICE, &args.tokenizer, "bert|bpe|gpt2|sentencepiece|char|space|hf", 0, 0,
     "bert: BERT's basic tokenizer + WordPiece; bpe (= gpt2): GPT-2's byte-level BPE; sentencepiece: a "
     "SentencePiece model; char / space: TencentPretrain's character / space-separated tokens; hf: a Hugging Face "
     "tokenizer.json (docs/tokenizers.md). Default: bert."},
    {"do_lower_case", OPT_BOOL, &args.do_lower_case, "true|false", 0, 0,
     "Lower-case and strip accents before WordPiece (1/0 accepted). Default: true."},
    {"seq_length", OPT_INT, &args.seq_length, NULL, 1, 65535,
     "Instance length including [CLS]/[SEP] (bert: at least 5, mlm: at least 2; lm: the model's input length, "
     "at most 65534; clip, vilt: the longest text, texts are cut to it). Default: 128."},
    {"dup_factor", OPT_INT, &args.dup_factor, NULL, 1, 1e9,
     "Build the instances this many times with other random choices; 1 with --dynamic_masking. Default: 5."},
    {"short_seq_prob", OPT_REAL, &args.short_seq_prob, NULL, 0, 1,
     "bert: probability of a random shorter target length in [2, seq_length - 3]. Default: 0.1."},
    {"full_sentences", OPT_FLAG, &args.full_sentences, NULL, 0, 0,
     "mlm, lm: pack the lines of a buffer into full pieces across line ends (RoBERTa's FULL-SENTENCES; lm: one "
     "contiguous token stream). Default: off, each line is cut on its own."},
    {"config_path", OPT_PATH, &args.config_path, NULL, 0, 0,
     "vit, clip, vilt: the model config whose image_height, image_width and channels_num (clip: its stream_1's) "
     "the images are decoded and resized to (docs/media.md). Required for vit, clip and vilt."},
    {"skip_bad_images", OPT_FLAG, &args.skip_bad_images, NULL, 0, 0,
     "vit, clip, vilt: leave out (and count) images that cannot be read or decoded. Default: off, the first one fails."},
    {"tgt_seq_length", OPT_INT, &args.tgt_seq_length, NULL, 1, 65534,
     "mt: the target's (decoder's) length; [CLS] target [SEP] is cut to tgt_seq_length + 1 tokens. Default: 128."},
    {"span_masking", OPT_FLAG, &args.span_masking, NULL, 0, 0,
     "t5, bart: mask spans of geometric length instead of single tokens (TencentPretrain's --span_masking). "
     "Default: off."},
    {"span_geo_prob", OPT_REAL, &args.span_geo_prob, NULL, 1e-9, 1,
     "t5, bart with --span_masking: the geometric distribution's p. Default: 0.2."},
    {"span_max_length", OPT_INT, &args.span_max_length, NULL, 1, 1000,
     "t5, bart with --span_masking: the longest span. Default: 10."},
    {"docs_buffer_size", OPT_INT, &args.docs_buffer_size, NULL, 1, 1e12,
     "Documents (bert) or lines (mlm) processed together; bert draws random next segments within a buffer. "
     "Default: 100000."},
    {"seed", OPT_INT, &args.seed, NULL, 0, 9.2e18, "Random seed. Default: 7."},
    {"dynamic_masking", OPT_FLAG, &args.dynamic_masking, NULL, 0, 0,
     "Store no masks: the loader masks every epoch anew. Default: off (static masks in the dataset)."},
    {"mask_prob", OPT_REAL, &args.mask_prob, NULL, 1e-9, 1,
     "Static masking: fraction of tokens to predict (80% [MASK], 10% random, 10% kept). Default: 0.15."},
    {"processes_num", OPT_INT, &args.processes_num, NULL, 1, 4096,
     "Threads for tokenization (the output does not depend on it). Default: OMP_NUM_THREADS or all cores."},
    {"help", OPT_FLAG, &args.help, NULL, 0, 0, "Print this help and exit."},
};
enum { OPTION_COUNT = sizeof options / sizeof options[0] };

/* Prints text indented, broken at spaces before width columns. */
static void print_wrapped(const char *text, int indent, int width)
{
    while (*text) {
        int room = width - indent, len = (int)strlen(text);
        if (len > room) {
            len = room;
            while (len > 0 && text[len] != ' ') len--;
            if (len == 0) len = room;
        }
        printf("%*s%.*s\n", indent, "", len, text);
        text += len;
        while (*text == ' ') text++;
    }
}

static void print_help(void)
{
    printf("Usage: %s --corpus_path CORPUS --vocab_path VOCAB [--dataset_path OUT] [options]\n"
           "       %s --corpus_path CORPUS --tokenizer hf --tokenizer_json_path tokenizer.json [options]\n\n"
           "Turns a text corpus into a binary dataset (docs/data.md) with TencentPretrain's\n"
           "bert, mlm, lm, t5, bart, mt or prefixlm data processor (vit, clip, vilt: a pre-decoded image file).\n"
           "The output is written atomically and is the same for any thread count. Progress goes\n"
           "to stderr.\n\n"
           "Options:\n",
           program, program);
    for (int i = 0; i < OPTION_COUNT; i++) {
        const option_spec *o = &options[i];
        const char *value = o->type == OPT_PATH ? " PATH" : o->type == OPT_INT ? " N" : o->type == OPT_REAL ? " P" : "";
        if (o->choices)
            printf("  --%s {%s}\n", o->name, o->choices);
        else
            printf("  --%s%s\n", o->name, value);
        print_wrapped(o->help, 6, 80);
    }
}

static int usage_error(const char *fmt, ...) TP_PRINTF(1, 2);
static int usage_error(const char *fmt, ...)
{
    va_list values;
    va_start(values, fmt);
    fprintf(stderr, "%s: error: ", program);
    vfprintf(stderr, fmt, values);
    fprintf(stderr, " (see --help)\n");
    va_end(values);
    return 2;
}

static int in_choices(const char *value, const char *choices)
{
    size_t len = strlen(value);
    for (const char *c = choices; *c;) {
        const char *bar = strchr(c, '|');
        size_t choice_len = bar ? (size_t)(bar - c) : strlen(c);
        if (choice_len == len && strncmp(c, value, len) == 0) return 1;
        c += choice_len + (bar != NULL);
    }
    return 0;
}

/* Stores value into the option's target; returns 0 or a usage error status. */
static int set_option(const option_spec *o, const char *value)
{
    char *end;
    errno = 0;
    switch (o->type) {
    case OPT_PATH:
        *(const char **)o->target = value;
        return 0;
    case OPT_CHOICE:
        if (!in_choices(value, o->choices))
            return usage_error("--%s: '%s' is not one of %s", o->name, value, o->choices);
        *(const char **)o->target = value;
        return 0;
    case OPT_BOOL:
        if (!in_choices(value, "true|false|1|0"))
            return usage_error("--%s: '%s' is not true, false, 1 or 0", o->name, value);
        *(int *)o->target = strcmp(value, "true") == 0 || strcmp(value, "1") == 0;
        return 0;
    case OPT_INT: {
        long long number = strtoll(value, &end, 10);
        if (errno || end == value || *end) return usage_error("--%s: '%s' is not an integer", o->name, value);
        if (number < o->low || number > o->high) return usage_error("--%s: %s is out of range", o->name, value);
        *(int64_t *)o->target = number;
        return 0;
    }
    case OPT_REAL: {
        double number = strtod(value, &end);
        if (errno || end == value || *end || !isfinite(number))
            return usage_error("--%s: '%s' is not a number", o->name, value);
        if (number < o->low || number > o->high) return usage_error("--%s: %s is out of range", o->name, value);
        *(double *)o->target = number;
        return 0;
    }
    case OPT_FLAG:
        *(int *)o->target = 1;
        return 0;
    }
    return 0;
}

/* Accepts "--name value" and "--name=value". */
static int parse_arguments(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (strncmp(arg, "--", 2) != 0) return usage_error("unexpected argument '%s'", arg);
        const char *name = arg + 2, *equals = strchr(name, '=');
        size_t name_len = equals ? (size_t)(equals - name) : strlen(name);
        const option_spec *o = NULL;
        for (int k = 0; k < OPTION_COUNT && !o; k++)
            if (strlen(options[k].name) == name_len && strncmp(options[k].name, name, name_len) == 0) o = &options[k];
        if (!o) return usage_error("unknown option '%s'", arg);
        const char *value = equals ? equals + 1 : NULL;
        if (o->type == OPT_FLAG && value) return usage_error("--%s takes no value", o->name);
        if (o->type != OPT_FLAG && !value) {
            if (i + 1 >= argc) return usage_error("--%s needs a value", o->name);
            value = argv[++i];
        }
        int status = set_option(o, value);
        if (status) return status;
    }
    return 0;
}

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

typedef struct progress_state {
    double start, last_print;
} progress_state;

/* Reports at most every 5 seconds, so small corpora stay quiet. */
static void print_progress(const tp_preprocess_progress *p, void *user)
{
    progress_state *state = user;
    double now = now_seconds();
    if (now - state->last_print < 5.0) return;
    state->last_print = now;
    fprintf(stderr, "%s: %5.1f%% %" PRId64 " lines, %" PRId64 " tokens, %" PRId64 " instances, %.0f tokens/s\n",
            program, 100.0 * (double)p->bytes_done / (double)p->bytes_total, p->lines, p->corpus_tokens, p->instances,
            (double)p->corpus_tokens / (now - state->start));
}

/* The files the chosen tokenizer kind reads were given. */
static int check_tokenizer_paths(void)
{
    const char *kind = args.tokenizer;
    int is_bpe = strcmp(kind, "bpe") == 0 || strcmp(kind, "gpt2") == 0;
    if (strcmp(kind, "sentencepiece") == 0)
        return args.spm_model_path ? 0 : usage_error("--tokenizer sentencepiece needs --spm_model_path");
    if (strcmp(kind, "hf") == 0)
        return args.tokenizer_json_path ? 0 : usage_error("--tokenizer hf needs --tokenizer_json_path");
    if (!args.vocab_path) return usage_error("--vocab_path is required with --tokenizer %s", kind);
    if (is_bpe && !args.merges_path) return usage_error("--tokenizer %s needs --merges_path", kind);
    return 0;
}

/* Both processors put [CLS] [SEP] [MASK] [PAD] into their instances: a tokenizer without them
 * (GPT-2's BPE, most SentencePiece models) is refused before any work, naming what is missing. */
static int check_special_tokens(const tp_tokenizer_options *tokenizer)
{
    tp_tokenizer *tok = tp_tokenizer_create(tokenizer);
    if (!tok) {
        fprintf(stderr, "%s: error: %s\n", program, tp_last_error());
        return 1;
    }
    const struct {
        const char *name;
        int32_t id;
    } specials[] = {{"[CLS]", tok->cls_id}, {"[SEP]", tok->sep_id}, {"[MASK]", tok->mask_id}, {"[PAD]", tok->pad_id}};
    const char *first_missing = NULL;
    char others[64] = "";
    for (size_t i = 0; i < sizeof specials / sizeof specials[0]; i++) {
        if (specials[i].id >= 0) continue;
        if (!first_missing)
            first_missing = specials[i].name;
        else
            snprintf(others + strlen(others), sizeof others - strlen(others), " %s", specials[i].name);
    }
    /* A vocab.txt kind just lacks a line; the others were made for language models. */
    int line_vocabulary = strcmp(tokenizer->kind, "bert") == 0 || strcmp(tokenizer->kind, "char") == 0 ||
                          strcmp(tokenizer->kind, "space") == 0;
    if (first_missing)
        fprintf(stderr, "%s: error: %s: the vocabulary lacks %s (needed by the %s processor)%s%s%s%s%s\n", program,
                tok->source_path, first_missing, args.processor, *others ? "; it lacks" : "", others,
                line_vocabulary ? "" : "; tokenizer '", line_vocabulary ? "" : tokenizer->kind,
                line_vocabulary ? "" : "' suits a language-model processor (--data_processor lm)");
    tp_tokenizer_free(tok);
    return first_missing ? 1 : 0;
}

static tp_tokenizer_options tokenizer_options(void)
{
    return (tp_tokenizer_options){.kind = args.tokenizer,
                                  .vocab_path = args.vocab_path,
                                  .do_lower_case = args.do_lower_case,
                                  .merges_path = args.merges_path,
                                  .spm_model_path = args.spm_model_path,
                                  .tokenizer_json_path = args.tokenizer_json_path};
}

/* clip, vilt: the set's texts as token ids. */
static int tokenize_texts(tp_image_set *set, const tp_tokenizer_options *options)
{
    tp_tokenizer *tok = tp_tokenizer_create(options);
    int status = tok ? tp_clip_tokenize_set(set, tok, args.seq_length) : -1;
    if (tok) tp_tokenizer_free(tok);
    return status;
}

static void report_images(const tp_image_set *set, double seconds)
{
    fprintf(stderr, "%s: wrote %s: %" PRId64 " %s of %" PRId64 " x %" PRId64 " x %" PRId64, program, args.dataset_path,
            set->count, set->texts.count ? "image-text pairs" : "images", set->channels, set->height, set->width);
    if (set->texts.count)
        fprintf(stderr, ", %" PRId64 " text tokens (the longest text %" PRId64 ")", set->texts.token_count,
                set->texts.longest);
    else
        fprintf(stderr, ", %" PRId64 " classes", set->num_labels);
    fprintf(stderr, " (%" PRId64 " skipped) in %.2f s\n", set->skipped, seconds);
}

/* --data_processor vit, clip or vilt: the images decoded at the model's size (clip, vilt: with their
 * texts' token ids), written as a pre-decoded file. */
static int preprocess_images(void)
{
    int clip = strcmp(args.processor, "clip") == 0, vilt = strcmp(args.processor, "vilt") == 0, texts = clip || vilt;
    if (!args.config_path)
        return usage_error("--data_processor %s needs --config_path (the model config)", args.processor);
    if (texts) {
        int usage = check_tokenizer_paths();
        if (usage) return usage;
    }
    if (args.processes_num) omp_set_num_threads((int)args.processes_num);
    double start = now_seconds();
    tp_image_set_options options = {.skip_bad_images = args.skip_bad_images};
    tp_tokenizer_options tokenizer = tokenizer_options();
    tp_image_set set = {0};
    int64_t patch = 0, image_rows = 0;
    tp_config *config = tp_config_load(args.config_path);
    int geometry = !config                ? -1
                   : clip                 ? tp_clip_image_options(config, &options)
                   : vilt                 ? tp_vilt_image_options(config, &options, &image_rows)
                                          : tp_image_set_geometry(config, &options, &patch);
    int status = geometry == 0 && tp_image_set_read(args.corpus_path, &options, &set) == 0 &&
                         (!texts || tokenize_texts(&set, &tokenizer) == 0) &&
                         tp_image_set_write(&set, args.dataset_path) == 0
                     ? 0
                     : 1;
    if (status)
        fprintf(stderr, "%s: error: %s\n", program, tp_last_error());
    else
        report_images(&set, now_seconds() - start);
    tp_image_set_free(&set);
    if (config) tp_config_free(config);
    return status;
}

int main(int argc, char **argv)
{
    int status = parse_arguments(argc, argv);
    if (status) return status;
    if (args.help) {
        print_help();
        return 0;
    }
    if (!args.corpus_path) return usage_error("--corpus_path is required");
    if (!strcmp(args.processor, "vit") || !strcmp(args.processor, "clip") || !strcmp(args.processor, "vilt"))
        return preprocess_images();
    status = check_tokenizer_paths();
    if (status) return status;
    tp_tokenizer_options tokenizer = tokenizer_options();
    int lm = strcmp(args.processor, "lm") == 0; /* needs only a start and an end token: tp_preprocess checks */
    int seq2seq = tp_seq2seq_processor_kind(args.processor) != 0; /* tp_preprocess checks their own tokens */
    status = lm || seq2seq ? 0 : check_special_tokens(&tokenizer);
    if (status) return status;
    if (args.processes_num) omp_set_num_threads((int)args.processes_num);
    progress_state state = {now_seconds(), now_seconds()};
    tp_preprocess_options o = {
        .corpus_path = args.corpus_path,
        .dataset_path = args.dataset_path,
        .processor = args.processor,
        .tokenizer = tokenizer,
        .seq_length = args.seq_length,
        .dup_factor = args.dynamic_masking || lm ? 1 : args.dup_factor, /* as preprocess.py */
        .docs_buffer_size = args.docs_buffer_size,
        .short_seq_prob = args.short_seq_prob,
        .mask_prob = args.mask_prob,
        .seed = (uint64_t)args.seed,
        .dynamic_masking = args.dynamic_masking,
        .full_sentences = args.full_sentences,
        .progress = print_progress,
        .progress_user = &state,
        .span_masking = args.span_masking,
        .span_geo_prob = args.span_geo_prob,
        .span_max_length = args.span_max_length,
        .tgt_seq_length = args.tgt_seq_length,
    };
    tp_preprocess_progress totals;
    if (tp_preprocess(&o, &totals) != 0) {
        fprintf(stderr, "%s: error: %s\n", program, tp_last_error());
        return 1;
    }
    double seconds = now_seconds() - state.start;
    fprintf(stderr,
            "%s: wrote %s: %" PRId64 " instances (%" PRId64 " tokens, %" PRId64 " masks) from %" PRId64
            " lines, %" PRId64 " documents, %" PRId64 " corpus tokens in %.2f s (%.0f tokens/s, %d threads)\n",
            program, args.dataset_path, totals.instances, totals.instance_tokens, totals.masks, totals.lines,
            totals.documents, totals.corpus_tokens, seconds, (double)totals.corpus_tokens / seconds,
            omp_get_max_threads());
    return 0;
}
