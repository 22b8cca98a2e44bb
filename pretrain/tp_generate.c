/* tp-generate: text generation with a causal language model (GPT-2 layout), with a key/value
 * cache, or with an encoder-decoder model (T5, BART: greedy or beam search, core/generate_seq2seq.h);
 * or the model's perplexity on an lm dataset. */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/checkpoint.h"
#include "core/cli.h"
#include "core/config.h"
#include "core/dataset.h"
#include "core/device.h"
#include "core/error.h"
#include "core/fileio.h"
#include "core/finetune_task.h"
#include "core/generate.h"
#include "core/generate_seq2seq.h"
#include "core/hf.h"
#include "core/model.h"
#include "core/run_tokenizer.h"
#include "core/safetensors.h"
#include "tokenizers/tokenizer.h"

static const char usage[] =
    "usage: tp-generate [--config RUN.json] [--KEY VALUE ...]\n"
    "\n"
    "Continues a prompt with a causal language model (GPT-2 layout: word + pos embeddings, a causal\n"
    "transformer, the lm target) and prints the new text (or ids) to stdout; timings go to stderr.\n"
    "The next token is chosen as transformers' generate does (docs/convert.md, GPT-2): repetition penalty,\n"
    "then for sampling temperature, top-k and top-p, then the argmax or a draw.  With eval_dataset it\n"
    "prints the model's perplexity on that dataset instead.\n"
    "\n"
    "With an encoder-decoder model (T5, T5 v1.1, BART, Pegasus: a model config with a decoder) the prompt is the\n"
    "SOURCE: it is encoded once and the decoder generates the target from its start id, greedily or by\n"
    "beam search, as transformers' generate (docs/generation.md); one line of output per source.\n"
    "\n"
    "The model, from one of:\n"
    "  hf_model_dir             a Hugging Face GPT-2, T5, BART or Pegasus directory (GPT2LMHeadModel,\n"
    "                           T5ForConditionalGeneration, BartForConditionalGeneration, ...)\n"
    "  model + pretrained_model_path\n"
    "                           a tp model config and its weights (tp-convert's output, or a tp-pretrain\n"
    "                           checkpoint's model.safetensors)\n"
    TP_RUN_TOKENIZER_HELP
    "                           (not needed with prompt_ids and output_ids)\n"
    "\n"
    "Generation keys (default):\n"
    "  prompt                   the text to continue\n"
    "  prompt_ids               instead of prompt: token ids separated by spaces or commas\n"
    "  new_tokens               tokens to generate (32)\n"
    "  do_sample                false: greedy (the argmax); true: draw from the processed distribution (false)\n"
    "  temperature              sampling: logits divided by it (1.0)\n"
    "  top_k                    sampling: keep the k largest logits, 0 = all (0)\n"
    "  top_p                    sampling: keep the most likely tokens whose probabilities reach top_p (1.0)\n"
    "  repetition_penalty       logits of ids already in the sequence: divided by it if positive,\n"
    "                           multiplied if negative (1.0 = off)\n"
    "  seed                     sampling: draw t comes from (seed, t) (7)\n"
    "  stop_at_eos              stop after the tokenizer's end-of-text token (true)\n"
    "  kv_cache                 false: re-run the whole sequence for every token, as TencentPretrain (true)\n"
    "  output_ids               print the new ids, space-separated, instead of text (false)\n"
    "\n"
    "Encoder-decoder keys (defaults from the directory's generation_config.json or config.json with\n"
    "hf_model_dir; else as shown):\n"
    "  source_file              instead of prompt: one source text per line (each tokenized, then eos)\n"
    "  source_eos               text sources end with eos_id, as T5's tokenizer ends them (true)\n"
    "  output_path              write the generated lines there (atomically) instead of stdout\n"
    "  num_beams                1: greedy (or sampling); > 1: beam search (1)\n"
    "  length_penalty           beam search: a hypothesis scores sum log p / length^length_penalty (1.0)\n"
    "  early_stopping           beam search: false, true or never, as transformers (false)\n"
    "  no_repeat_ngram_size     ids that would repeat an n-gram of the output are banned, 0 = off (0)\n"
    "  min_length               no eos before the output (the start id included) is this long (0)\n"
    "  decoder_start_id, eos_id, pad_id\n"
    "                           the target's start, end and padding ids (required without hf_model_dir)\n"
    "  forced_bos_id, forced_eos_id\n"
    "                           the first / the last possible generated id forced (-1 = off; BART's config\n"
    "                           sets forced_eos_token_id)\n"
    "  new_tokens, kv_cache, output_ids, repetition_penalty, do_sample...: as above (sampling only with\n"
    "                           num_beams 1; kv_cache false re-runs encoder and decoder for every token)\n"
    "\n"
    "Speech-to-text keys (a model whose embedding starts with speech, models/s2t/; docs/media.md):\n"
    "  audio_file               instead of prompt: a speech list, `path` lines or `text<TAB>path` lines\n"
    "                           (audio in any format libsndfile reads); one transcript per utterance\n"
    "                           is written, and with transcripts the word error rate goes to stderr\n"
    "  word_delimiter           the token written as a space (e.g. \"|\" with the char tokenizer) (none)\n"
    "  decoder_start_id, eos_id, pad_id\n"
    "                           default to the tokenizer's [CLS], [SEP] and [PAD] (tp-finetune's targets)\n"
    "  new_tokens, num_beams, length_penalty, ...: as above (kv_cache true, text output only)\n"
    "\n"
    "Evaluation keys:\n"
    "  eval_dataset             an lm dataset (tp-preprocess --data_processor lm): prints the mean\n"
    "                           next-token loss and perplexity over its windows, in file order\n"
    "  seq_length               tokens per window (the dataset's window - 1, at most max_seq_length)\n"
    "  batch_size               windows per forward pass; a last partial batch is left out (16)\n"
    "\n"
    "  threads                  CPU threads (all cores)\n"
    "  device                   cpu or cuda (cpu)\n"
    "\n"
    "Options:\n"
    "  --config FILE            run config (JSON) holding any of the keys above\n"
    "  --KEY VALUE              set a key (e.g. --hf_model_dir gpt2 --prompt 'Hello')\n"
    "  --model.KEY VALUE        set a model-config key\n"
    "  --help                   this text\n";

typedef struct generate_job {
    tp_config *run, *model_config;
    tp_tokenizer *tokenizer;
    tp_model model;
    tp_ctx ctx;
    int ctx_ready;
    tp_lm_decoder *decoder;
    int32_t *prompt, *generated;
    int64_t prompt_length;
    tp_dataset *dataset;
    tp_loader *loader;
    const char *hf_dir;
    tp_seq2seq_decoder *seq2seq;
    const char *audio_path; /* speech-to-text: the speech list */
} generate_job;

/* ---- the model ------------------------------------------------------------------------ */

static int open_model(generate_job *job, const char **hf_dir, const char **weights)
{
    const char *name = tp_config_name(job->run), *model_path = NULL;
    if (tp_config_string(job->run, "hf_model_dir", NULL, hf_dir) < 0 ||
        tp_config_string(job->run, "model", NULL, &model_path) < 0 ||
        tp_config_string(job->run, "pretrained_model_path", NULL, weights) < 0)
        return -1;
    if (!*hf_dir == !(model_path || *weights))
        return tp_fail("%s: key 'hf_model_dir': give either hf_model_dir or model + pretrained_model_path", name);
    if (!*hf_dir && (!model_path || !*weights))
        return tp_fail("%s: key '%s': missing (model and pretrained_model_path go together)", name,
                       model_path ? "pretrained_model_path" : "model");
    job->hf_dir = *hf_dir;
    job->model_config = *hf_dir ? tp_hf_config(*hf_dir) : tp_config_load(model_path);
    return job->model_config ? 0 : -1;
}

/* The vocabulary size of tp weights: the word embedding's rows (the target's for a speech model,
 * whose source embedding reads audio). */
static int weights_vocab_size(const char *path, int64_t *vocab_size)
{
    static const char word[] = "embedding.word.embedding.weight", target[] = "tgt_embedding.word.embedding.weight";
    tp_st_file *file = tp_st_open(path);
    if (!file) return -1;
    const tp_st_tensor *tensor = tp_st_find(file, word);
    if (!tensor) tensor = tp_st_find(file, target);
    int status = tensor && tensor->ndim == 2 ? 0 : tp_fail("%s: tensor '%s' is missing", path, word);
    if (status == 0) *vocab_size = tensor->shape[0];
    tp_st_close(file);
    return status;
}

static int build_model(generate_job *job, const tp_cli *cli)
{
    const char *hf_dir = NULL, *weights = NULL;
    int64_t vocab_size = 0, threads = 0;
    const tp_backend *backend = NULL;
    if (open_model(job, &hf_dir, &weights) < 0 || tp_cli_apply(cli, NULL, job->model_config) < 0 ||
        tp_config_int(job->run, "threads", 0, 0, 4096, &threads) < 0 || !(backend = tp_device_from_config(job->run)))
        return -1;
    if (threads > 0) omp_set_num_threads((int)threads);
    /* The vocabulary size is the model's own: its config (Hugging Face) or its weights. */
    if (tp_config_int(job->model_config, "vocab_size", 0, 0, INT32_MAX, &vocab_size) < 0) return -1;
    if (!vocab_size && weights_vocab_size(weights, &vocab_size) < 0) return -1;
    if (tp_model_build(&job->model, job->model_config, vocab_size) < 0) return -1;
    tp_model_allocate(&job->model, backend, 1);
    tp_ctx_init(&job->ctx, backend, (size_t)1 << 22);
    job->ctx_ready = 1;
    return hf_dir ? tp_hf_load(hf_dir, &job->model, NULL) : tp_checkpoint_load_weights(weights, &job->model.params);
}

/* ---- prompt and output ------------------------------------------------------------------ */

static int parse_ids(generate_job *job, const char *text)
{
    const char *name = tp_config_name(job->run);
    size_t capacity = strlen(text) / 2 + 1;
    job->prompt = tp_xmalloc(capacity * sizeof *job->prompt);
    for (const char *cursor = text; *cursor;) {
        if (*cursor == ' ' || *cursor == ',') {
            cursor++;
            continue;
        }
        char *end = NULL;
        long long id = strtoll(cursor, &end, 10);
        if (end == cursor || id < 0 || id >= job->model.hp.vocab_size)
            return tp_fail("%s: key 'prompt_ids': '%.20s' is not an id in [0, %lld)", name, cursor,
                           (long long)job->model.hp.vocab_size);
        job->prompt[job->prompt_length++] = (int32_t)id;
        cursor = end;
    }
    return job->prompt_length ? 0 : tp_fail("%s: key 'prompt_ids': no ids", name);
}

static int read_prompt(generate_job *job)
{
    const char *name = tp_config_name(job->run), *text = NULL, *ids = NULL;
    if (tp_config_string(job->run, "prompt", NULL, &text) < 0 || tp_config_string(job->run, "prompt_ids", NULL, &ids) < 0)
        return -1;
    if (!text == !ids) return tp_fail("%s: key 'prompt': give either prompt or prompt_ids", name);
    if (ids) return parse_ids(job, ids);
    tp_ids encoded = {0};
    if (tp_tokenizer_encode(job->tokenizer, text, strlen(text), &encoded) < 0) return -1;
    job->prompt = encoded.ids;
    job->prompt_length = encoded.count;
    return encoded.count ? 0 : tp_fail("%s: key 'prompt': the text has no tokens", name);
}

/* GPT-2's bytes_to_unicode(), inverted: the byte a token character stands for (-1: none). */
static int byte_of(int32_t code_point)
{
    static int table[324];
    static int ready;
    if (!ready) {
        int next = 256;
        for (int i = 0; i < 324; i++) table[i] = -1;
        for (int b = 0; b < 256; b++) {
            int printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
            table[printable ? b : next++] = b;
        }
        ready = 1;
    }
    return code_point >= 0 && code_point < 324 ? table[code_point] : -1;
}

/* A byte-level BPE token's bytes (GPT-2, RoBERTa); other vocabularies print their tokens. */
static void print_token(FILE *out, const char *token, int byte_level, int first)
{
    static const char sentencepiece_space[] = "\xe2\x96\x81"; /* U+2581 starts a word */
    if (!strncmp(token, sentencepiece_space, 3)) {
        fprintf(out, "%s%s", first ? "" : " ", token + 3);
        return;
    }
    if (!byte_level) {
        int piece = !strncmp(token, "##", 2);
        fprintf(out, "%s%s", first || piece ? "" : " ", piece ? token + 2 : token);
        return;
    }
    for (const unsigned char *c = (const unsigned char *)token; *c;) {
        int32_t code_point = *c < 0x80 ? *c : (*c & 0x1F) << 6 | (c[1] & 0x3F);
        int byte = byte_of(code_point);
        c += *c < 0x80 ? 1 : 2;
        if (byte >= 0) fputc(byte, out);
    }
}

/* The ids, or their text (without the ids in skip[0..skip_count): special ids) and a newline. */
static void print_output(FILE *out, generate_job *job, const int32_t *ids, int64_t count, int output_ids,
                         int byte_level, const int32_t *skip, int skip_count)
{
    int first = 1;
    for (int64_t i = 0; i < count; i++) {
        int special = 0;
        for (int k = 0; k < skip_count; k++) special |= ids[i] == skip[k];
        if (output_ids)
            fprintf(out, "%s%d", i ? " " : "", ids[i]);
        else if (!special && ids[i] < job->tokenizer->vocab_size) {
            print_token(out, job->tokenizer->tokens[ids[i]], byte_level, first);
            first = 0;
        }
    }
    fputc('\n', out);
}

static int read_sampling(tp_config *run, tp_sampling *s)
{
    int64_t seed = 7;
    memset(s, 0, sizeof *s);
    if (tp_config_bool(run, "do_sample", 0, &s->do_sample) < 0 ||
        tp_config_double(run, "temperature", 1.0, 1e-6, 1e6, &s->temperature) < 0 ||
        tp_config_int(run, "top_k", 0, 0, INT32_MAX, &s->top_k) < 0 ||
        tp_config_double(run, "top_p", 1.0, 1e-9, 1.0, &s->top_p) < 0 ||
        tp_config_double(run, "repetition_penalty", 1.0, 1e-6, 1e6, &s->repetition_penalty) < 0 ||
        tp_config_int(run, "seed", 7, 0, INT64_MAX, &seed) < 0)
        return -1;
    s->seed = (uint64_t)seed;
    return 0;
}

static double now_seconds(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static int generate(generate_job *job)
{
    tp_sampling sampling;
    int64_t new_tokens = 0, count = 0;
    int stop_at_eos = 1, kv_cache = 1, output_ids = 0;
    const char *kind = "bert";
    if (read_sampling(job->run, &sampling) < 0 || tp_config_int(job->run, "new_tokens", 32, 1, 1 << 20, &new_tokens) < 0 ||
        tp_config_bool(job->run, "stop_at_eos", 1, &stop_at_eos) < 0 ||
        tp_config_bool(job->run, "kv_cache", 1, &kv_cache) < 0 ||
        tp_config_bool(job->run, "output_ids", 0, &output_ids) < 0 ||
        tp_config_string(job->run, "tokenizer", "bert", &kind) < 0)
        return -1;
    int need_tokenizer = !output_ids || tp_config_has(job->run, "prompt");
    if (need_tokenizer && !(job->tokenizer = tp_run_tokenizer(job->run, NULL))) return -1;
    if (read_prompt(job) < 0 || tp_config_check_unused(job->run) < 0) return -1;
    if (kv_cache && !(job->decoder = tp_lm_decoder_create(&job->model, 1))) return -1;
    int32_t stop_id = stop_at_eos && job->tokenizer ? job->tokenizer->eos_id : -1;
    job->generated = tp_xmalloc((size_t)new_tokens * sizeof *job->generated);
    double start = now_seconds();
    if (tp_generate(&job->model, &job->ctx, job->decoder, job->prompt, job->prompt_length, new_tokens, stop_id,
                    &sampling, job->generated, &count) < 0)
        return -1;
    double seconds = now_seconds() - start;
    print_output(stdout, job, job->generated, count, output_ids, !strcmp(kind, "bpe") || !strcmp(kind, "gpt2"), NULL, 0);
    fprintf(stderr, "tp-generate: %lld tokens after a %lld-token prompt in %.3f s (%.1f tokens/s, %s)\n",
            (long long)count, (long long)job->prompt_length, seconds, (double)count / seconds,
            kv_cache ? "key/value cache" : "full recomputation");
    return 0;
}

/* ---- encoder-decoder models ------------------------------------------------------------------ */

/* true, false or "never" (-1). */
static int read_early_stopping(tp_config *run, int *early)
{
    static const char *const never[] = {"never", NULL};
    int flag = 0, index = 0;
    if (!tp_config_has(run, "early_stopping")) return 0;
    if (tp_config_bool(run, "early_stopping", 0, &flag) == 0) {
        *early = flag;
        return 0;
    }
    if (tp_config_enum(run, "early_stopping", "never", never, &index) < 0)
        return tp_fail("%s: key 'early_stopping': expected true, false or \"never\"", tp_config_name(run));
    *early = -1;
    return 0;
}

static int read_seq2seq_options(generate_job *job, tp_seq2seq_options *o)
{
    tp_config *run = job->run;
    const char *name = tp_config_name(run);
    *o = tp_seq2seq_default_options();
    o->max_new_tokens = 32;
    if (job->hf_dir && tp_seq2seq_options_from_hf(job->hf_dir, o) < 0) return -1;
    int64_t start = o->decoder_start_id, eos = o->eos_id, pad = o->pad_id, bos_forced = o->forced_bos_id,
            eos_forced = o->forced_eos_id, vocab = job->model.hp.vocab_size - 1;
    if (read_sampling(run, &o->sampling) < 0 ||
        tp_config_int(run, "new_tokens", 32, 1, job->model.hp.max_seq_length - 1, &o->max_new_tokens) < 0 ||
        tp_config_int(run, "num_beams", o->num_beams, 1, 1024, &o->num_beams) < 0 ||
        tp_config_double(run, "length_penalty", o->length_penalty, -1e6, 1e6, &o->length_penalty) < 0 ||
        read_early_stopping(run, &o->early_stopping) < 0 ||
        tp_config_int(run, "no_repeat_ngram_size", o->no_repeat_ngram_size, 0, 1 << 20, &o->no_repeat_ngram_size) < 0 ||
        tp_config_int(run, "min_length", o->min_length, 0, 1 << 20, &o->min_length) < 0 ||
        tp_config_int(run, "decoder_start_id", start, -1, vocab, &start) < 0 ||
        tp_config_int(run, "eos_id", eos, -1, vocab, &eos) < 0 || tp_config_int(run, "pad_id", pad, -1, vocab, &pad) < 0 ||
        tp_config_int(run, "forced_bos_id", bos_forced, -1, vocab, &bos_forced) < 0 ||
        tp_config_int(run, "forced_eos_id", eos_forced, -1, vocab, &eos_forced) < 0)
        return -1;
    if (!job->audio_path && (start < 0 || eos < 0)) /* speech: the tokenizer's ids (tp_task_generate) */
        return tp_fail("%s: key '%s': missing (an encoder-decoder model needs decoder_start_id and eos_id)", name,
                       start < 0 ? "decoder_start_id" : "eos_id");
    o->decoder_start_id = (int32_t)start;
    o->eos_id = (int32_t)eos;
    o->pad_id = (int32_t)pad;
    o->forced_bos_id = (int32_t)bos_forced;
    o->forced_eos_id = (int32_t)eos_forced;
    if (o->num_beams > 1 && o->sampling.do_sample)
        return tp_fail("%s: key 'do_sample': sampling goes with num_beams 1 only", name);
    return 0;
}

/* The sources: prompt / prompt_ids (one), or source_file's lines (text); text ends with eos. */
typedef struct sources {
    int32_t **ids;
    int64_t *lengths, count;
} sources;

static void sources_add(sources *s, int32_t *ids, int64_t length)
{
    s->ids = tp_xrealloc(s->ids, (size_t)(s->count + 1) * sizeof *s->ids);
    s->lengths = tp_xrealloc(s->lengths, (size_t)(s->count + 1) * sizeof *s->lengths);
    s->ids[s->count] = ids;
    s->lengths[s->count++] = length;
}

static void sources_free(sources *s)
{
    for (int64_t i = 0; i < s->count; i++) free(s->ids[i]);
    free(s->ids);
    free(s->lengths);
}

static int encode_source(generate_job *job, const char *path, int64_t line, const char *text, int32_t eos,
                         sources *out)
{
    tp_ids encoded = {0};
    if (tp_tokenizer_encode(job->tokenizer, text, strlen(text), &encoded) < 0) return -1;
    encoded.ids = tp_xrealloc(encoded.ids, (size_t)(encoded.count + 1) * sizeof *encoded.ids);
    if (eos >= 0) encoded.ids[encoded.count++] = eos;
    sources_add(out, encoded.ids, encoded.count);
    if (encoded.count < 1) return tp_fail("%s: line %lld: the source has no tokens", path, (long long)line);
    if (encoded.count > job->model.hp.max_seq_length)
        return tp_fail("%s: line %lld: %lld tokens exceed max_seq_length %lld", path, (long long)line,
                       (long long)encoded.count, (long long)job->model.hp.max_seq_length);
    return 0;
}

static int read_sources(generate_job *job, const tp_seq2seq_options *o, sources *out)
{
    const char *path = NULL, *name = tp_config_name(job->run);
    int source_eos = 1;
    if (tp_config_string(job->run, "source_file", NULL, &path) < 0 || tp_config_bool(job->run, "source_eos", 1, &source_eos) < 0)
        return -1;
    int32_t eos = source_eos ? o->eos_id : -1;
    if (!path) {
        if (tp_config_has(job->run, "prompt_ids")) {
            if (read_prompt(job) < 0) return -1;
            sources_add(out, job->prompt, job->prompt_length);
            job->prompt = NULL;
            return 0;
        }
        const char *text = NULL;
        if (tp_config_string(job->run, "prompt", NULL, &text) < 0) return -1;
        if (!text) return tp_fail("%s: key 'prompt': give prompt, prompt_ids or source_file", name);
        return encode_source(job, "prompt", 1, text, eos, out);
    }
    char *all = tp_read_file(path, NULL);
    if (!all) return -1;
    int status = 0;
    int64_t line = 0;
    for (char *cursor = all; status == 0 && *cursor;) {
        char *end = cursor + strcspn(cursor, "\n"), *next = *end ? end + 1 : end;
        *end = '\0';
        if (end > cursor && end[-1] == '\r') end[-1] = '\0';
        status = encode_source(job, path, ++line, cursor, eos, out);
        cursor = next;
    }
    free(all);
    if (status == 0 && out->count == 0) return tp_fail("%s: no sources", path);
    return status;
}

/* Speech-to-text: audio_file's utterances through the speech encoder and the decoder, as tp-infer
 * decodes them (core/finetune_task.h), one transcript per line. */
static int generate_speech(generate_job *job, const tp_seq2seq_options *o, const char *word_delimiter, FILE *out,
                           int64_t *utterances)
{
    tp_tsv_task *gold = NULL;
    tp_encoded_split split = {0};
    tp_task_predictions predictions = {0};
    tp_task_scores scores = {0};
    int status = -1;
    const tp_s2t_read_options read_options = {.allow_no_text = 1};
    if (tp_task_read_speech(job->audio_path, job->model_config, &read_options, &gold, &split) < 0 ||
        tp_encode_speech_targets(job->tokenizer, word_delimiter, o->max_new_tokens, &split) < 0 ||
        tp_task_generate(&job->model, &job->ctx, job->tokenizer, &split, o, &predictions) < 0)
        goto done;
    for (int64_t i = 0; i < split.count; i++) fprintf(out, "%s\n", predictions.texts[i]);
    *utterances = split.count;
    if (split.has_labels) {
        if (tp_task_score(&split, gold, NULL, &predictions, &scores) < 0) goto done;
        fprintf(stderr, "%s | exact match %.4f | WER %.4f (%lld errors / %lld reference words)\n", job->audio_path,
                scores.exact_match, scores.wer, (long long)scores.wer_counts.errors,
                (long long)scores.wer_counts.reference_words);
    }
    status = 0;
done:
    tp_task_scores_free(&scores);
    tp_task_predictions_free(&predictions);
    tp_encoded_split_free(&split);
    if (gold) tp_tsv_free(gold);
    return status;
}

/* Speech keys: audio_file needs a speech model, the key/value caches and text output. */
static int read_speech_keys(generate_job *job, int kv_cache, int output_ids, const char **word_delimiter)
{
    const char *name = tp_config_name(job->run);
    if (tp_config_string(job->run, "audio_file", NULL, &job->audio_path) < 0 ||
        tp_config_string(job->run, "word_delimiter", NULL, word_delimiter) < 0)
        return -1;
    if (!job->audio_path) return *word_delimiter ? tp_fail("%s: key 'word_delimiter': goes with audio_file", name) : 0;
    if (tp_task_check_speech_model(&job->model, name, "audio_file") < 0) return -1;
    if (!kv_cache) return tp_fail("%s: key 'kv_cache': speech is decoded with the caches only (true)", name);
    if (output_ids) return tp_fail("%s: key 'output_ids': speech is written as text only", name);
    return 0;
}

static int generate_seq2seq(generate_job *job)
{
    tp_seq2seq_options o;
    sources src = {0};
    tp_atomic_file file = {0};
    int kv_cache = 1, output_ids = 0, status = -1;
    const char *kind = "bert", *output_path = NULL, *word_delimiter = NULL;
    if (tp_config_bool(job->run, "kv_cache", 1, &kv_cache) < 0 ||
        tp_config_bool(job->run, "output_ids", 0, &output_ids) < 0 ||
        read_speech_keys(job, kv_cache, output_ids, &word_delimiter) < 0 || read_seq2seq_options(job, &o) < 0 ||
        tp_config_string(job->run, "tokenizer", "bert", &kind) < 0 ||
        tp_config_string(job->run, "output_path", NULL, &output_path) < 0)
        return -1;
    int need_tokenizer = !output_ids || !tp_config_has(job->run, "prompt_ids");
    if (need_tokenizer && !(job->tokenizer = tp_run_tokenizer(job->run, NULL))) return -1;
    if ((!job->audio_path && read_sources(job, &o, &src) < 0) || tp_config_check_unused(job->run) < 0) goto done;
    if (output_path && tp_atomic_open(&file, output_path) < 0) goto done;
    FILE *out = output_path ? file.fp : stdout;
    if (job->audio_path) {
        int64_t utterances = 0;
        double start = now_seconds();
        if (generate_speech(job, &o, word_delimiter, out, &utterances) < 0) goto done;
        fprintf(stderr, "tp-generate: %lld utterances in %.3f s (%lld beam%s)\n", (long long)utterances,
                now_seconds() - start, (long long)o.num_beams, o.num_beams > 1 ? "s" : "");
        goto commit;
    }
    if (kv_cache && !(job->seq2seq = tp_seq2seq_decoder_create(&job->model, o.num_beams))) goto done;
    const int32_t special[3] = {o.decoder_start_id, o.eos_id, o.pad_id};
    job->generated = tp_xmalloc((size_t)o.max_new_tokens * sizeof *job->generated);
    int64_t total = 0;
    double start = now_seconds();
    for (int64_t i = 0; i < src.count; i++) {
        int64_t count = 0;
        int result = kv_cache ? tp_seq2seq_generate(job->seq2seq, tp_seq2seq_encode(&job->model, &job->ctx, src.ids[i],
                                                                                     src.lengths[i]),
                                                    NULL, &o, job->generated, &count)
                              : tp_seq2seq_generate_full(&job->model, &job->ctx, src.ids[i], src.lengths[i], &o,
                                                         job->generated, &count);
        if (result < 0) goto done;
        print_output(out, job, job->generated, count, output_ids, !strcmp(kind, "bpe") || !strcmp(kind, "gpt2"),
                     special, 3);
        total += count;
    }
    double seconds = now_seconds() - start;
    fprintf(stderr, "tp-generate: %lld sources, %lld tokens in %.3f s (%.1f tokens/s, %lld beam%s, %s)\n",
            (long long)src.count, (long long)total, seconds, (double)total / seconds, (long long)o.num_beams,
            o.num_beams > 1 ? "s" : "", kv_cache ? "key/value caches" : "full recomputation");
commit:
    if (output_path && tp_atomic_commit(&file) < 0) goto done;
    file.fp = NULL;
    status = 0;
done:
    if (file.fp) tp_atomic_abort(&file);
    sources_free(&src);
    return status;
}

/* ---- perplexity ---------------------------------------------------------------------------- */

static int evaluate(generate_job *job, const char *path)
{
    int64_t batch_size = 16, seq_length = 0;
    if (!(job->dataset = tp_dataset_open(path))) return -1;
    if (tp_dataset_kind(job->dataset) != TP_DATASET_LM)
        return tp_fail("%s: not an lm dataset (tp-preprocess --data_processor lm)", path);
    int64_t longest = tp_dataset_seq_length(job->dataset) - 1;
    if (longest > job->model.hp.max_seq_length) longest = job->model.hp.max_seq_length;
    if (tp_config_int(job->run, "batch_size", 16, 1, 1 << 20, &batch_size) < 0 ||
        tp_config_int(job->run, "seq_length", longest, 1, longest, &seq_length) < 0 ||
        tp_config_check_unused(job->run) < 0)
        return -1;
    int64_t batches = tp_dataset_count(job->dataset) / batch_size;
    if (batches == 0)
        return tp_fail("%s: %lld windows, fewer than batch_size %lld", path, (long long)tp_dataset_count(job->dataset),
                       (long long)batch_size);
    tp_loader_options options = {.batch_size = batch_size, .seq_length = seq_length, .world_size = 1,
                                 .masking = {.pad_id = 0, .vocab_size = job->model.hp.vocab_size}};
    if (!(job->loader = tp_loader_create(job->dataset, &options))) return -1;
    double total = 0;
    int64_t tokens = 0;
    for (int64_t b = 0; b < batches; b++) {
        tp_ctx_reset(&job->ctx);
        tp_model_batch batch = tp_model_batch_upload(&job->ctx, tp_loader_next(job->loader));
        tp_model_output out;
        float loss = 0;
        if (tp_model_forward(&job->model, &job->ctx, &batch, &out) < 0) return -1;
        if (!out.loss) return tp_fail("%s: the model has no lm target to score the dataset with", path);
        job->model.params.backend->download(&loss, out.loss->data, sizeof loss);
        total += (double)loss * (double)out.results[0].count;
        tokens += out.results[0].count;
    }
    printf("windows %lld tokens %lld loss %.6f perplexity %.4f\n", (long long)(batches * batch_size), (long long)tokens,
           total / (double)tokens, exp(total / (double)tokens));
    return 0;
}

/* ---- main ---------------------------------------------------------------------------------- */

static int run(generate_job *job, const tp_cli *cli)
{
    const char *eval_path = NULL;
    job->run = cli->config_path ? tp_config_load(cli->config_path) : tp_config_new_empty("command line");
    if (!job->run || tp_cli_apply(cli, job->run, NULL) < 0 || build_model(job, cli) < 0 ||
        tp_config_check_unused(job->model_config) < 0 || tp_config_string(job->run, "eval_dataset", NULL, &eval_path) < 0)
        return -1;
    if (eval_path) return evaluate(job, eval_path);
    return job->model.decoder_type ? generate_seq2seq(job) : generate(job);
}

static void cleanup(generate_job *job)
{
    tp_lm_decoder_free(job->decoder);
    tp_seq2seq_decoder_free(job->seq2seq);
    if (job->loader) tp_loader_free(job->loader);
    if (job->dataset) tp_dataset_close(job->dataset);
    if (job->ctx_ready) tp_ctx_free(&job->ctx);
    tp_model_free(&job->model);
    free(job->prompt);
    free(job->generated);
    if (job->tokenizer) tp_tokenizer_free(job->tokenizer);
    if (job->model_config) tp_config_free(job->model_config);
    if (job->run) tp_config_free(job->run);
}

int main(int argc, char **argv)
{
    static const char *const flags[] = {"help", NULL};
    generate_job job;
    tp_cli cli;
    memset(&job, 0, sizeof job);
    if (tp_cli_parse(argc, argv, flags, &cli) < 0) {
        fprintf(stderr, "tp-generate: error: %s\nrun tp-generate --help for usage\n", tp_last_error());
        return 2;
    }
    int status = 0;
    if (tp_cli_flag(&cli, 0)) {
        fputs(usage, stdout);
    } else if (run(&job, &cli) < 0) {
        fprintf(stderr, "tp-generate: error: %s\n", tp_last_error());
        status = 1;
    }
    cleanup(&job);
    tp_cli_free(&cli);
    return status;
}
