#include "core/finetune_task.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/bleu.h"
#include "core/error.h"
#include "core/generate_seq2seq.h"
#include "core/rng.h"

const char *const tp_task_kind_keys[] = {"classification", "multi_label", "regression", "tagging", "text2text", "speech2text", NULL};

const char *tp_task_target_name(tp_task_kind kind)
{
    static const char *const targets[] = {"cls", "multi_label", "regression", "tagging", "lm", "lm"};
    return targets[kind];
}

int64_t tp_task_outputs(tp_task_kind kind, int64_t labels_num)
{
    switch (kind) {
    case TP_TASK_REGRESSION: return 1;
    case TP_TASK_TAGGING:
    case TP_TASK_TEXT2TEXT:
    case TP_TASK_SPEECH2TEXT: return 0;
    default: return labels_num;
    }
}

int tp_task_configure_head(tp_task_kind kind, int64_t labels_num, tp_config *run, tp_config *model_config)
{
    char text[64];
    snprintf(text, sizeof text, "[\"%s\"]", tp_task_target_name(kind));
    tp_config_ignore(model_config, "target");
    /* A converted Hugging Face classifier brings its own head's keys: the task's head decides. */
    tp_config_ignore(model_config, "labels_num");
    /* Its pooling (e.g. BEiT's patch_mean) is the default of the run's. */
    const char *model_pooling = "first", *pooling = NULL;
    if (tp_config_string(model_config, "pooling", "first", &model_pooling) < 0) return -1;
    if (tp_config_set(model_config, "target", text) < 0) return -1;
    if (kind == TP_TASK_TEXT2TEXT || kind == TP_TASK_SPEECH2TEXT) return 0; /* the lm target predicts the vocabulary */
    if (kind != TP_TASK_REGRESSION) {
        snprintf(text, sizeof text, "%lld", (long long)labels_num);
        if (tp_config_set(model_config, "labels_num", text) < 0) return -1;
    }
    if (kind == TP_TASK_TAGGING) return 0;
    if (tp_config_string(run, "pooling", model_pooling, &pooling) < 0) return -1;
    return tp_config_set(model_config, "pooling", pooling);
}

/* ---- encoding ------------------------------------------------------------------------------- */

static void append_text(const tp_tokenizer *tok, const char *text, tp_ids *ids)
{
    tp_tokenizer_encode(tok, text, strlen(text), ids);
    tp_ids_push(ids, tok->sep_id);
}

/* Example i's ids and segments into row i of the split, cut or padded to seq_length. */
static void store_row(tp_encoded_split *out, int64_t i, const tp_ids *ids, int64_t a_length, int32_t pad_id)
{
    int64_t seq = out->seq_length;
    for (int64_t s = 0; s < seq; s++) {
        int real = s < ids->count;
        out->src[i * seq + s] = real ? ids->ids[s] : pad_id;
        out->seg[i * seq + s] = real ? (s < a_length ? 1 : 2) : 0;
    }
}

static void store_labels(tp_encoded_split *out, const tp_tsv_task *task, int64_t i)
{
    const tp_tsv_example *example = &task->examples[i];
    switch (task->kind) {
    case TP_TASK_CLASSIFICATION: out->labels[i] = (int32_t)example->label; break;
    case TP_TASK_REGRESSION: out->targets[i] = (float)example->value; break;
    case TP_TASK_MULTI_LABEL:
        for (int64_t k = 0; k < example->label_count; k++)
            out->targets[i * out->labels_num + task->label_ids[example->first_label + k]] = 1.0f;
        break;
    case TP_TASK_TAGGING:
    case TP_TASK_TEXT2TEXT:
    case TP_TASK_SPEECH2TEXT: break; /* stored with the pieces */
    }
}

/* [CLS] word pieces [SEP]: each word tokenized alone, its tag on its first piece. */
static void encode_words(const tp_tokenizer *tok, const tp_tsv_task *task, int64_t i, tp_encoded_split *out,
                         tp_ids *ids)
{
    const tp_tsv_example *example = &task->examples[i];
    int64_t seq = out->seq_length, first = out->first_word[i];
    tp_ids_push(ids, tok->cls_id);
    for (int64_t w = 0; w < example->token_count; w++) {
        const tp_tsv_span *word = &task->tokens[first + w];
        int64_t start = ids->count;
        tp_tokenizer_encode(tok, word->text, (size_t)word->length, ids);
        if (ids->count == start) tp_ids_push(ids, tok->unk_id); /* e.g. only characters BERT drops */
        out->word_position[first + w] = start < seq ? (int32_t)start : -1;
        if (task->has_labels && start < seq)
            out->tags[i * seq + start] = task->label_ids[example->first_label + w];
    }
    tp_ids_push(ids, tok->sep_id);
}

void tp_encode_split(const tp_tokenizer *tok, const tp_tsv_task *task, int64_t seq_length, int64_t labels_num,
                     tp_encoded_split *out)
{
    int64_t count = task->count, tokens = count * seq_length;
    memset(out, 0, sizeof *out);
    out->kind = task->kind;
    out->count = count;
    out->seq_length = seq_length;
    out->labels_num = labels_num;
    out->has_labels = task->has_labels;
    out->src = tp_xmalloc((size_t)tokens * sizeof *out->src);
    out->seg = tp_xmalloc((size_t)tokens * sizeof *out->seg);
    int labelled = task->has_labels;
    if (labelled && task->kind == TP_TASK_CLASSIFICATION) out->labels = tp_xmalloc((size_t)count * sizeof *out->labels);
    if (labelled && (task->kind == TP_TASK_REGRESSION || task->kind == TP_TASK_MULTI_LABEL))
        out->targets = tp_xcalloc((size_t)(count * tp_task_outputs(task->kind, labels_num)), sizeof *out->targets);
    if (labelled && task->kind == TP_TASK_TAGGING) {
        out->tags = tp_xmalloc((size_t)tokens * sizeof *out->tags);
        for (int64_t t = 0; t < tokens; t++) out->tags[t] = -1;
    }
    if (task->kind == TP_TASK_TAGGING) {
        out->first_word = tp_xmalloc((size_t)(count + 1) * sizeof *out->first_word);
        out->first_word[0] = 0;
        for (int64_t i = 0; i < count; i++) out->first_word[i + 1] = out->first_word[i] + task->examples[i].token_count;
        out->word_position = tp_xmalloc((size_t)(out->first_word[count] ? out->first_word[count] : 1) *
                                        sizeof *out->word_position);
    }
    tp_ids ids = {0};
    for (int64_t i = 0; i < count; i++) {
        const tp_tsv_example *example = &task->examples[i];
        tp_ids_clear(&ids);
        if (task->kind == TP_TASK_TAGGING) {
            encode_words(tok, task, i, out, &ids);
        } else {
            tp_ids_push(&ids, tok->cls_id);
            append_text(tok, example->text_a, &ids);
        }
        int64_t a_length = ids.count;
        if (example->text_b) append_text(tok, example->text_b, &ids);
        store_row(out, i, &ids, a_length, tok->pad_id);
        if (task->has_labels) store_labels(out, task, i);
    }
    tp_ids_free(&ids);
}

void tp_encoded_split_free(tp_encoded_split *split)
{
    free(split->src), free(split->seg), free(split->labels), free(split->targets), free(split->tags);
    free(split->tgt_src);
    free(split->first_word), free(split->word_position);
    if (split->images) tp_image_set_free(split->images);
    free(split->images);
    if (split->speech) tp_s2t_set_free(split->speech);
    free(split->speech);
    memset(split, 0, sizeof *split);
}

/* ---- text2text ------------------------------------------------------------------------------ */

static int is_wordpiece(const tp_tokenizer *tok)
{
    for (int64_t v = 0; v < tok->vocab_size; v++)
        if (tok->tokens[v] && !strncmp(tok->tokens[v], "##", 2)) return 1;
    return 0;
}

int tp_text2text_ids_of(const tp_tokenizer *tok, tp_text2text_ids *ids)
{
    const char *vocab = tok->source_path ? tok->source_path : "the tokenizer";
    ids->wordpiece = is_wordpiece(tok);
    ids->eos_id = tok->eos_id >= 0 ? tok->eos_id : tok->sep_id;
    ids->start_id = tok->cls_id >= 0 ? tok->cls_id : tok->pad_id;
    ids->pad_id = tok->pad_id;
    ids->delimiter_id = -1;
    if (ids->eos_id < 0) return tp_fail("%s: text2text needs an end token (eos or [SEP]) in the vocabulary", vocab);
    if (ids->pad_id < 0) return tp_fail("%s: text2text needs a padding token ([PAD] or pad) in the vocabulary", vocab);
    return 0;
}

/* tokens[0..count) then pad_id into row i of ids (width columns); labels (when not NULL) get
 * tokens[1..count) then -1: the next token at each position. */
static void store_target(int32_t *ids, int32_t *labels, int64_t i, int64_t width, const tp_ids *tokens, int32_t pad)
{
    for (int64_t s = 0; s < width; s++) {
        ids[i * width + s] = s < tokens->count - 1 ? tokens->ids[s] : pad;
        if (labels) labels[i * width + s] = s + 1 < tokens->count ? tokens->ids[s + 1] : -1;
    }
}

/* Row i of the decoder rows: start, the text's tokens (none for NULL), eos; the decoder reads all
 * but its last token and is asked for all but its first (TencentPretrain's tgt_in / tgt_out). */
static void encode_target(const tp_tokenizer *tok, const tp_text2text_ids *special, const char *text,
                          tp_encoded_split *out, int64_t i, tp_ids *ids)
{
    tp_ids_clear(ids);
    tp_ids_push(ids, special->start_id);
    if (text) tp_tokenizer_encode(tok, text, strlen(text), ids);
    if (ids->count > out->tgt_seq_length) ids->count = out->tgt_seq_length;
    tp_ids_push(ids, special->eos_id);
    store_target(out->tgt_src, out->tags, i, out->tgt_seq_length, ids, special->pad_id);
}

int tp_encode_text2text(const tp_tokenizer *tok, const tp_tsv_task *task, int64_t seq_length, int64_t tgt_seq_length,
                        tp_encoded_split *out)
{
    tp_text2text_ids special;
    int64_t count = task->count;
    memset(out, 0, sizeof *out);
    if (tp_text2text_ids_of(tok, &special) < 0) return -1;
    out->kind = TP_TASK_TEXT2TEXT;
    out->count = count;
    out->seq_length = seq_length;
    out->tgt_seq_length = tgt_seq_length;
    out->has_labels = task->has_labels;
    out->src = tp_xmalloc((size_t)(count * seq_length) * sizeof *out->src);
    out->seg = tp_xmalloc((size_t)(count * seq_length) * sizeof *out->seg);
    out->tgt_src = tp_xmalloc((size_t)(count * tgt_seq_length) * sizeof *out->tgt_src);
    if (task->has_labels) out->tags = tp_xmalloc((size_t)(count * tgt_seq_length) * sizeof *out->tags);
    tp_ids ids = {0};
    for (int64_t i = 0; i < count; i++) {
        const tp_tsv_example *example = &task->examples[i];
        tp_ids_clear(&ids);
        tp_tokenizer_encode(tok, example->text_a, strlen(example->text_a), &ids);
        if (example->text_b) tp_tokenizer_encode(tok, example->text_b, strlen(example->text_b), &ids);
        /* The eos stays when the text is cut, as the tokenizers of T5 and BART keep it. */
        if (ids.count >= seq_length) ids.count = seq_length - 1;
        tp_ids_push(&ids, special.eos_id);
        store_row(out, i, &ids, ids.count, special.pad_id);
        encode_target(tok, &special, example->target, out, i, &ids);
    }
    tp_ids_free(&ids);
    return 0;
}

char *tp_text2text_detokenize(const tp_tokenizer *tok, const tp_text2text_ids *ids, const int32_t *generated,
                              int64_t count)
{
    static const char spm_space[] = "\xe2\x96\x81"; /* U+2581 */
    int wordpiece = ids->wordpiece;
    size_t length = 1;
    for (int64_t i = 0; i < count; i++)
        if (generated[i] >= 0 && generated[i] < tok->vocab_size) length += strlen(tok->tokens[generated[i]]) + 1;
    char *text = tp_xmalloc(length), *end = text;
    for (int64_t i = 0; i < count; i++) {
        int32_t id = generated[i];
        if (id < 0 || id >= tok->vocab_size || id == ids->eos_id || id == ids->pad_id || id == ids->start_id) continue;
        if (id == ids->delimiter_id) {
            *end++ = ' ';
            continue;
        }
        const char *token = tok->tokens[id];
        if (wordpiece && !strncmp(token, "##", 2)) {
            token += 2;
        } else if (wordpiece && end > text) {
            *end++ = ' ';
        } else if (!strncmp(token, spm_space, 3)) {
            token += 3;
            if (end > text) *end++ = ' ';
        }
        end += sprintf(end, "%s", token);
    }
    *end = '\0';
    return text;
}

/* ---- images --------------------------------------------------------------------------------- */

int tp_task_is_image(tp_config *model_config)
{
    const char *processor = NULL;
    return tp_config_string(model_config, "data_processor", NULL, &processor) == 0 && processor &&
           !strcmp(processor, "vit");
}

/* The gold task of a split that is no TSV file: its path and count, empty texts. */
static tp_tsv_task *gold_of(const char *path, tp_task_kind kind, int64_t count, int has_labels)
{
    tp_tsv_task *gold = tp_xcalloc(1, sizeof *gold);
    gold->path = tp_xstrdup(path);
    gold->kind = kind;
    gold->has_labels = has_labels;
    gold->count = count;
    gold->examples = tp_xcalloc((size_t)(count ? count : 1), sizeof *gold->examples);
    for (int64_t i = 0; i < count; i++) {
        gold->examples[i].text_a = "";
        gold->examples[i].line = i + 1;
    }
    return gold;
}

/* The gold task of an image split: its labels, with the label names "0", "1", ... */
static tp_tsv_task *image_gold(const tp_image_set *set)
{
    tp_tsv_task *gold = gold_of(set->path, TP_TASK_CLASSIFICATION, set->count, 1);
    for (int64_t i = 0; i < set->count; i++) gold->examples[i].label = set->labels[i];
    gold->num_labels = set->num_labels;
    gold->label_names = tp_xcalloc((size_t)set->num_labels, sizeof *gold->label_names);
    for (int64_t c = 0; c < set->num_labels; c++) {
        char name[32];
        snprintf(name, sizeof name, "%lld", (long long)c);
        gold->label_names[c] = tp_xstrdup(name);
    }
    return gold;
}

int tp_task_read_images(const char *path, tp_config *model_config, int64_t num_labels, int skip_bad_images,
                        tp_tsv_task **gold, tp_encoded_split *split)
{
    tp_image_set_options options = {.num_labels = num_labels, .skip_bad_images = skip_bad_images};
    int64_t patch = 0;
    memset(split, 0, sizeof *split);
    if (tp_image_set_geometry(model_config, &options, &patch) < 0) return -1;
    tp_image_set *set = tp_xcalloc(1, sizeof *set);
    if (tp_image_set_read(path, &options, set) < 0) {
        free(set);
        return -1;
    }
    split->kind = TP_TASK_CLASSIFICATION;
    split->count = set->count;
    split->seq_length = (options.height / patch) * (options.width / patch) + 1;
    split->labels_num = set->num_labels;
    split->has_labels = 1;
    split->labels = tp_xmalloc((size_t)set->count * sizeof *split->labels);
    memcpy(split->labels, set->labels, (size_t)set->count * sizeof *split->labels);
    split->images = set;
    split->augment = options.augment;
    *gold = image_gold(set);
    return 0;
}

/* ---- speech -------------------------------------------------------------------------------- */

int tp_task_read_speech(const char *path, tp_config *model_config, const tp_s2t_read_options *options,
                        tp_tsv_task **gold, tp_encoded_split *split)
{
    memset(split, 0, sizeof *split);
    tp_s2t_set *set = tp_xcalloc(1, sizeof *set);
    if (tp_s2t_geometry_of(model_config, &split->geometry) < 0 ||
        tp_s2t_read(path, &split->geometry, options, set) < 0) {
        free(set);
        return -1;
    }
    split->kind = TP_TASK_SPEECH2TEXT;
    split->count = set->count;
    split->has_labels = set->has_text;
    split->word_delimiter_id = -1;
    for (int64_t i = 0; i < set->count; i++) {
        int64_t rows = tp_s2t_subsampled_frames(set->items[i].frames, split->geometry.kernels, split->geometry.layers);
        if (rows > split->seq_length) split->seq_length = rows;
    }
    split->speech = set;
    *gold = gold_of(path, TP_TASK_SPEECH2TEXT, set->count, set->has_text);
    return 0;
}

void tp_task_report_skipped(const char *path, const tp_image_set *images, const tp_s2t_set *speech)
{
    if (images && images->skipped)
        fprintf(stderr, "%s: skipped %lld images that could not be decoded\n", path, (long long)images->skipped);
    if (speech && speech->skipped)
        fprintf(stderr, "%s: skipped %lld utterances whose audio could not be read (the first: %s)\n", path,
                (long long)speech->skipped, speech->first_skipped);
}

/* text with every space as the delimiter (a new string). */
static char *delimited(const char *text, const char *delimiter)
{
    size_t extra = strlen(delimiter), length = 0;
    for (const char *c = text; *c; c++) length += *c == ' ' ? extra : 1;
    char *out = tp_xmalloc(length + 1), *w = out;
    for (const char *c = text; *c; c++) {
        if (*c == ' ') memcpy(w, delimiter, extra), w += extra;
        else *w++ = *c;
    }
    *w = '\0';
    return out;
}

int tp_task_check_speech_model(const tp_model *model, const char *config_name, const char *key)
{
    if (model->embedding_count < 1 || strcmp(model->embedding_types[0]->name, "speech"))
        return tp_fail("%s: key '%s': speech-to-text needs a model whose embedding starts with speech (models/s2t/)",
                       config_name, key);
    return 0;
}

int tp_task_check_text_model(const tp_model *model, const char *config_name, const char *key)
{
    static const char *const media[][2] = {
        {"patch", "image classification reads images (the model config's data_processor vit)"},
        {"masked_patch", "image classification reads images (the model config's data_processor vit)"},
        {"word_patch", "a ViLT model pre-trains on image-text pairs (tp-pretrain) and classifies images zero-shot "
                       "(tp-infer --candidates_path); tp has no ViLT fine-tuning task"},
        {"speech", "speech-to-text reads audio lists (task speech2text)"},
    };
    for (size_t i = 0; i < sizeof media / sizeof media[0]; i++)
        if (tp_model_has_embedding(model, media[i][0]))
            return tp_fail("%s: key '%s': embedding '%s' does not read token ids, and this task's files hold text: %s",
                           config_name, key, media[i][0], media[i][1]);
    return 0;
}

int tp_encode_speech_targets(const tp_tokenizer *tok, const char *word_delimiter, int64_t tgt_seq_length,
                             tp_encoded_split *split)
{
    tp_text2text_ids special;
    if (tp_text2text_ids_of(tok, &special) < 0) return -1;
    if (word_delimiter && (split->word_delimiter_id = tp_tokenizer_token_id(tok, word_delimiter)) < 0)
        return tp_fail("%s: word_delimiter \"%s\" is not a token of the vocabulary",
                       tok->source_path ? tok->source_path : "the tokenizer", word_delimiter);
    int64_t count = split->count;
    split->tgt_seq_length = tgt_seq_length;
    split->tgt_src = tp_xmalloc((size_t)(count * tgt_seq_length) * sizeof *split->tgt_src);
    if (split->has_labels) split->tags = tp_xmalloc((size_t)(count * tgt_seq_length) * sizeof *split->tags);
    tp_ids ids = {0};
    for (int64_t i = 0; i < count; i++) {
        const char *text = split->speech->items[i].text;
        char *spelled = text && word_delimiter ? delimited(text, word_delimiter) : NULL;
        encode_target(tok, &special, spelled ? spelled : text, split, i, &ids);
        free(spelled);
    }
    tp_ids_free(&ids);
    return 0;
}

int tp_task_read_search(tp_config *run, tp_config *stored, tp_task_kind kind, int64_t *tgt_seq_length,
                        tp_seq2seq_options *search)
{
    int64_t length = kind == TP_TASK_SPEECH2TEXT ? 50 : 32, beams = 1;
    double penalty = 1.0;
    int early = 0;
    *search = tp_seq2seq_default_options();
    if (stored && (tp_config_int(stored, "tgt_seq_length", length, 1, 1 << 20, &length) < 0 ||
                   tp_config_int(stored, "num_beams", beams, 1, 1024, &beams) < 0 ||
                   tp_config_double(stored, "length_penalty", penalty, -100, 100, &penalty) < 0 ||
                   tp_config_bool(stored, "early_stopping", early, &early) < 0))
        return -1;
    if (tp_config_int(run, "tgt_seq_length", length, 1, 1 << 20, tgt_seq_length) < 0 ||
        tp_config_int(run, "num_beams", beams, 1, 1024, &search->num_beams) < 0 ||
        tp_config_double(run, "length_penalty", penalty, -100, 100, &search->length_penalty) < 0 ||
        tp_config_bool(run, "early_stopping", early, &search->early_stopping) < 0)
        return -1;
    search->max_new_tokens = *tgt_seq_length;
    return 0;
}

/* ---- batches -------------------------------------------------------------------------------- */

void tp_task_batch_init(tp_batch *batch, const tp_encoded_split *split, int64_t batch_size)
{
    int64_t tokens = batch_size * split->seq_length;
    memset(batch, 0, sizeof *batch);
    if (split->speech) return; /* each batch is laid out at its own lengths (tp_s2t_fill_batch) */
    if (split->images) {
        const tp_image_set *images = split->images;
        batch->pixel_width = images->channels * images->height * images->width;
        batch->pixels = tp_xmalloc((size_t)(batch_size * batch->pixel_width) * sizeof *batch->pixels);
    } else {
        batch->src = tp_xmalloc((size_t)tokens * sizeof *batch->src);
    }
    batch->seg = tp_xmalloc((size_t)tokens * sizeof *batch->seg);
    if (split->labels) batch->labels = tp_xmalloc((size_t)batch_size * sizeof *batch->labels);
    if (split->targets) {
        batch->target_width = tp_task_outputs(split->kind, split->labels_num);
        batch->targets = tp_xmalloc((size_t)(batch_size * batch->target_width) * sizeof *batch->targets);
    }
    if (split->tgt_src) {
        batch->tgt_seq_length = split->tgt_seq_length;
        batch->tgt_src = tp_xmalloc((size_t)(batch_size * split->tgt_seq_length) * sizeof *batch->tgt_src);
        tokens = batch_size * split->tgt_seq_length; /* the lm labels are over the decoder's rows */
    }
    if (split->tags) batch->tags = tp_xmalloc((size_t)tokens * sizeof *batch->tags);
}

/* n elements of row `from` of src into row `to` of dst. */
#define COPY_ROW(dst, src, to, from, n) memcpy((dst) + (to) * (n), (src) + (from) * (n), (size_t)(n) * sizeof *(dst))

const tp_batch *tp_task_fill_batch(tp_batch *batch, const tp_encoded_split *split, const int64_t *indices,
                                   int64_t rows)
{
    int64_t seq = split->seq_length, width = batch->target_width, tgt = split->tgt_seq_length;
    if (split->speech) {
        tp_batch_free(batch);
        tp_s2t_fill_batch(split->speech, indices, rows, split->tgt_src, split->tags, tgt, &split->geometry, batch);
        return batch;
    }
    batch->batch_size = rows;
    batch->seq_length = seq;
    batch->real_tokens = 0;
    for (int64_t r = 0; r < rows; r++) {
        int64_t i = indices[r];
        if (split->images) {
            tp_image_set_normalize(split->images, i, batch->pixels + r * batch->pixel_width);
            for (int64_t s = 0; s < seq; s++) batch->seg[r * seq + s] = 1;
            batch->labels[r] = split->labels[i];
            batch->real_tokens += seq;
            continue;
        }
        COPY_ROW(batch->src, split->src, r, i, seq);
        COPY_ROW(batch->seg, split->seg, r, i, seq);
        if (split->labels) batch->labels[r] = split->labels[i];
        if (split->targets) COPY_ROW(batch->targets, split->targets, r, i, width);
        if (split->tgt_src) COPY_ROW(batch->tgt_src, split->tgt_src, r, i, tgt);
        if (split->tags) COPY_ROW(batch->tags, split->tags, r, i, split->tgt_src ? tgt : seq);
        for (int64_t s = 0; s < seq; s++) batch->real_tokens += split->seg[i * seq + s] != 0;
    }
    return batch;
}

void tp_task_augment_batch(tp_batch *batch, const tp_encoded_split *split, const int64_t *indices, int64_t rows,
                           uint64_t seed, int64_t epoch)
{
    if (split->speech) tp_s2t_augment_batch(split->speech, indices, rows, seed, epoch, &split->geometry, batch);
    if (!split->images || !tp_image_augment_active(&split->augment)) return;
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < rows; r++) {
        uint64_t draw = (uint64_t)epoch * (uint64_t)split->count + (uint64_t)indices[r];
        tp_rng rng = tp_rng_make(tp_hash3(seed, TP_STREAM_IMAGE_AUGMENT, draw), TP_STREAM_IMAGE_AUGMENT, 0);
        tp_image_set_augment(split->images, indices[r], &split->augment, &rng, batch->pixels + r * batch->pixel_width);
    }
}

/* ---- predictions ---------------------------------------------------------------------------- */

static int64_t argmax(const float *row, int64_t classes)
{
    int64_t best = 0;
    for (int64_t c = 1; c < classes; c++)
        if (row[c] > row[best]) best = c;
    return best;
}

/* The tagging head's CRF parameters (modules/targets/tagging.c names them) on the host: transitions
 * [classes * classes], start, end [classes]; NULL when the head has no CRF. */
static float *tagging_crf_download(const tp_model *model, int64_t classes)
{
    static const char *const names[3] = {"target.tagging.crf.transitions", "target.tagging.crf.start_transitions",
                                         "target.tagging.crf.end_transitions"};
    const int64_t offsets[3] = {0, classes * classes, classes * classes + classes};
    if (!tp_params_find(&model->params, names[0])) return NULL;
    float *crf = tp_xmalloc((size_t)(classes * classes + 2 * classes) * sizeof *crf);
    for (int i = 0; i < 3; i++) {
        const tp_tensor *t = &tp_params_find(&model->params, names[i])->tensor;
        model->params.backend->download(crf + offsets[i], t->data, (size_t)tp_numel(t) * sizeof *crf);
    }
    return crf;
}

/* Example i's word tags from its sequence's scores [seq, cols]: the Viterbi path over the first
 * pieces of its words in order with a CRF (the chain the CRF was trained on), else each first
 * piece's argmax; -1 for words cut off. */
static void predict_tags(const tp_encoded_split *split, int64_t i, const float *scores, int64_t cols,
                         const float *crf, tp_task_predictions *out)
{
    int64_t classes = split->labels_num, first = split->first_word[i], words = split->first_word[i + 1] - first;
    int64_t *rows = tp_xmalloc((size_t)(words ? words : 1) * sizeof *rows), kept = 0;
    int32_t *path = tp_xmalloc((size_t)(words ? words : 1) * sizeof *path);
    for (int64_t w = first; w < first + words; w++)
        if (split->word_position[w] >= 0) rows[kept++] = split->word_position[w];
    if (crf) tp_crf_viterbi(scores, cols, rows, kept, crf, crf + classes * classes, crf + classes * (classes + 1),
                            classes, path);
    for (int64_t w = first, k = 0; w < first + words; w++)
        out->ids[w] = split->word_position[w] < 0 ? -1
                      : crf                       ? path[k++]
                                                  : (int32_t)argmax(scores + rows[k++] * cols, classes);
    free(rows);
    free(path);
}

/* Turns one batch's downloaded head outputs (rows x cols; tagging: rows*seq x cols) into ids
 * (crf: the tagging head's CRF parameters, or NULL). */
static void predict_rows(const tp_encoded_split *split, int64_t first, int64_t rows, const float *logits,
                         int64_t cols, const float *crf, tp_task_predictions *out)
{
    int64_t classes = split->labels_num, seq = split->seq_length;
    for (int64_t r = 0; r < rows; r++) {
        int64_t i = first + r;
        const float *row = logits + r * cols;
        switch (split->kind) {
        case TP_TASK_CLASSIFICATION: out->ids[i] = (int32_t)argmax(row, classes); break;
        case TP_TASK_MULTI_LABEL:
            for (int64_t c = 0; c < classes; c++) out->ids[i * classes + c] = row[c] > 0.0f;
            break;
        case TP_TASK_REGRESSION:
        case TP_TASK_TEXT2TEXT:
        case TP_TASK_SPEECH2TEXT: break;
        case TP_TASK_TAGGING: predict_tags(split, i, logits + r * seq * cols, cols, crf, out); break;
        }
        if (out->logits) memcpy(out->logits + i * out->outputs, row, (size_t)out->outputs * sizeof *out->logits);
    }
}

/* The predicted ids of rows [begin, end) are ids[*first, *first + *count). */
static void ids_of_rows(const tp_encoded_split *split, int64_t begin, int64_t end, int64_t *first, int64_t *count)
{
    *first = *count = 0;
    switch (split->kind) {
    case TP_TASK_CLASSIFICATION: *first = begin, *count = end - begin; break;
    case TP_TASK_MULTI_LABEL: *first = begin * split->labels_num, *count = (end - begin) * split->labels_num; break;
    case TP_TASK_REGRESSION:
    case TP_TASK_TEXT2TEXT:
    case TP_TASK_SPEECH2TEXT: break;
    case TP_TASK_TAGGING: *first = split->first_word[begin], *count = split->first_word[end] - *first; break;
    }
}

/* Zero-filled: tp_task_predict_shared adds up the ranks' predictions. */
static void predictions_init(const tp_encoded_split *split, tp_task_predictions *out)
{
    int64_t first, ids;
    memset(out, 0, sizeof *out);
    out->kind = split->kind;
    out->count = split->count;
    out->outputs = tp_task_outputs(split->kind, split->labels_num);
    if (out->outputs) out->logits = tp_xcalloc((size_t)(split->count * out->outputs), sizeof *out->logits);
    ids_of_rows(split, 0, split->count, &first, &ids);
    out->ids = tp_xcalloc((size_t)(ids ? ids : 1), sizeof *out->ids);
}

int tp_task_predict(tp_model *model, tp_ctx *ctx, const tp_encoded_split *split, tp_batch *batch,
                    int64_t batch_size, tp_task_predictions *out)
{
    return tp_task_predict_observed(model, ctx, split, batch, batch_size, NULL, out);
}

/* The predictions of rows [begin, end) into out (set up by predictions_init), and the sum of their
 * losses weighted by their counts, and those counts, added to loss[0] and loss[1]. */
static int predict_range(tp_model *model, tp_ctx *ctx, const tp_encoded_split *split, tp_batch *batch,
                         int64_t batch_size, int64_t begin, int64_t end, const tp_task_observer *observer,
                         tp_task_predictions *out, double loss[2])
{
    int64_t *indices = tp_xmalloc((size_t)batch_size * sizeof *indices);
    float *logits = NULL;
    int rc = 0;
    float *crf = split->kind == TP_TASK_TAGGING ? tagging_crf_download(model, split->labels_num) : NULL;
    for (int64_t first = begin; first < end && rc == 0; first += batch_size) {
        int64_t rows = end - first < batch_size ? end - first : batch_size;
        for (int64_t r = 0; r < rows; r++) indices[r] = first + r;
        tp_model_batch model_batch = tp_model_batch_upload(ctx, tp_task_fill_batch(batch, split, indices, rows));
        model_batch.targets_only = observer == NULL; /* an observer may read the encoder's output */
        tp_model_output result;
        ctx->record = 0;
        ctx->training = 0;
        rc = tp_model_forward(model, ctx, &model_batch, &result);
        if (rc == 0 && model->target_count > 0) { /* a model without a head: only the observer's */
            const tp_target_result *head = &result.results[0];
            int64_t elements = tp_numel(head->logits), cols = tp_cols(head->logits);
            /* The generating kinds: only the loss; tp_task_generate predicts. */
            if (split->kind != TP_TASK_TEXT2TEXT && split->kind != TP_TASK_SPEECH2TEXT) {
                logits = tp_xrealloc(logits, (size_t)elements * sizeof *logits);
                ctx->backend->download(logits, head->logits->data, (size_t)elements * sizeof *logits);
                predict_rows(split, first, rows, logits, cols, crf, out);
            }
            if (head->loss) {
                float value;
                ctx->backend->download(&value, head->loss->data, sizeof value);
                loss[0] += (double)value * (double)head->count;
                loss[1] += (double)head->count;
            }
        }
        if (rc == 0 && observer) rc = observer->batch(observer->user, ctx, &result, first, rows);
        tp_ctx_reset(ctx);
    }
    free(indices);
    free(logits);
    free(crf);
    return rc;
}

int tp_task_predict_observed(tp_model *model, tp_ctx *ctx, const tp_encoded_split *split, tp_batch *batch,
                             int64_t batch_size, const tp_task_observer *observer, tp_task_predictions *out)
{
    double loss[2] = {0, 0};
    predictions_init(split, out);
    int rc = predict_range(model, ctx, split, batch, batch_size, 0, split->count, observer, out, loss);
    out->loss = loss[1] > 0 ? loss[0] / loss[1] : NAN;
    return rc;
}

/* Every rank's predictions (zero outside its rows) added up, with the loss sums: each value is
 * one rank's plus zeros, so the sum is exact.  Moved as doubles, which hold every float and id. */
static int share_predictions(tp_comm *comm, const tp_encoded_split *split, tp_task_predictions *out, double loss[2])
{
    int64_t first, ids, logits = out->logits ? out->count * out->outputs : 0;
    ids_of_rows(split, 0, split->count, &first, &ids);
    double *values = tp_xmalloc((size_t)(logits + ids + 2) * sizeof *values);
    for (int64_t i = 0; i < logits; i++) values[i] = out->logits[i];
    for (int64_t i = 0; i < ids; i++) values[logits + i] = out->ids[i];
    values[logits + ids] = loss[0];
    values[logits + ids + 1] = loss[1];
    int rc = tp_comm_sum(comm, values, logits + ids + 2, "sum of the evaluation's predictions");
    for (int64_t i = 0; i < logits; i++) out->logits[i] = (float)values[i];
    for (int64_t i = 0; i < ids; i++) out->ids[i] = (int32_t)values[logits + i];
    loss[0] = values[logits + ids];
    loss[1] = values[logits + ids + 1];
    free(values);
    return rc;
}

int tp_task_predict_shared(tp_model *model, tp_ctx *ctx, tp_comm *comm, const tp_encoded_split *split,
                           tp_batch *batch, int64_t batch_size, tp_task_predictions *out)
{
    double loss[2] = {0, 0};
    int64_t begin, rows;
    tp_comm_shard(comm, split->count, &begin, &rows);
    predictions_init(split, out);
    int rc = predict_range(model, ctx, split, batch, batch_size, begin, begin + rows, NULL, out, loss);
    /* A rank that failed stops the job (tp_comm_abort); the others must not wait for it here. */
    if (rc == 0) rc = share_predictions(comm, split, out, loss);
    out->loss = loss[1] > 0 ? loss[0] / loss[1] : NAN;
    return rc;
}

void tp_task_predictions_free(tp_task_predictions *predictions)
{
    for (int64_t i = 0; predictions->texts && i < predictions->count; i++) free(predictions->texts[i]);
    free(predictions->texts);
    free(predictions->logits);
    free(predictions->ids);
    memset(predictions, 0, sizeof *predictions);
}

/* Row i's encoder output: its source tokens' or its utterance's (in ctx, reset first). */
static tp_tensor *encode_row(tp_model *model, tp_ctx *ctx, const tp_encoded_split *split, int64_t i)
{
    if (split->speech) return tp_s2t_encode(model, ctx, split->speech, i, &split->geometry);
    const int32_t *seg = split->seg + i * split->seq_length;
    int64_t length = 0;
    while (length < split->seq_length && seg[length]) length++;
    return tp_seq2seq_encode(model, ctx, split->src + i * split->seq_length, length);
}

int tp_task_generate(tp_model *model, tp_ctx *ctx, const tp_tokenizer *tok, const tp_encoded_split *split,
                     const tp_seq2seq_options *search, tp_task_predictions *out)
{
    tp_seq2seq_options options = *search;
    tp_text2text_ids special;
    if (tp_text2text_ids_of(tok, &special) < 0) return -1;
    if (split->speech) special.delimiter_id = split->word_delimiter_id;
    options.max_new_tokens = split->tgt_seq_length;
    if (options.decoder_start_id < 0) options.decoder_start_id = special.start_id;
    if (options.eos_id < 0) options.eos_id = special.eos_id;
    if (options.pad_id < 0) options.pad_id = special.pad_id;
    tp_seq2seq_decoder *decoder = tp_seq2seq_decoder_create(model, options.num_beams);
    if (!decoder) return -1;
    int32_t *generated = tp_xmalloc((size_t)options.max_new_tokens * sizeof *generated);
    out->texts = tp_xcalloc((size_t)(split->count ? split->count : 1), sizeof *out->texts);
    out->count = split->count;
    int rc = 0;
    for (int64_t i = 0; i < split->count && rc == 0; i++) {
        int64_t count = 0;
        tp_tensor *memory = encode_row(model, ctx, split, i);
        rc = memory ? tp_seq2seq_generate(decoder, memory, NULL, &options, generated, &count) : -1;
        if (rc == 0) out->texts[i] = tp_text2text_detokenize(tok, &special, generated, count);
        tp_ctx_reset(ctx);
    }
    free(generated);
    tp_seq2seq_decoder_free(decoder);
    return rc;
}

/* ---- scores --------------------------------------------------------------------------------- */

static void score_classification(const tp_encoded_split *split, const tp_task_predictions *p, tp_task_scores *out)
{
    out->confusion = tp_confusion_new(split->labels_num);
    for (int64_t i = 0; i < split->count; i++) tp_confusion_add(out->confusion, split->labels[i], p->ids[i]);
    out->selection = tp_confusion_accuracy(out->confusion);
}

static void score_multi_label(const tp_encoded_split *split, const tp_task_predictions *p, tp_task_scores *out)
{
    int64_t labels = split->labels_num;
    uint8_t *gold = tp_xmalloc((size_t)labels), *predicted = tp_xmalloc((size_t)labels);
    out->multilabel = tp_multilabel_new(labels);
    for (int64_t i = 0; i < split->count; i++) {
        for (int64_t c = 0; c < labels; c++) {
            gold[c] = split->targets[i * labels + c] > 0.5f;
            predicted[c] = (uint8_t)p->ids[i * labels + c];
        }
        tp_multilabel_add(out->multilabel, gold, predicted);
    }
    out->selection = tp_multilabel_macro_f1(out->multilabel);
    free(gold);
    free(predicted);
}

static void score_regression(const tp_encoded_split *split, const tp_task_predictions *p, tp_task_scores *out)
{
    double *gold = tp_xmalloc((size_t)split->count * sizeof *gold);
    double *predicted = tp_xmalloc((size_t)split->count * sizeof *predicted);
    double squares = 0;
    for (int64_t i = 0; i < split->count; i++) {
        gold[i] = split->targets[i];
        predicted[i] = p->logits[i];
        squares += (predicted[i] - gold[i]) * (predicted[i] - gold[i]);
    }
    out->mse = squares / (double)split->count;
    out->pearson = tp_pearson(predicted, gold, split->count);
    out->spearman = tp_spearman(predicted, gold, split->count);
    out->selection = isnan(out->spearman) ? -1.0 : out->spearman; /* constant predictions rank worst */
    free(gold);
    free(predicted);
}

static void score_tagging(const tp_encoded_split *split, const tp_tsv_task *gold, const char *const *label_names,
                          const tp_task_predictions *p, tp_task_scores *out)
{
    int64_t words = split->first_word[split->count];
    const char **gold_tags = tp_xmalloc((size_t)(words ? words : 1) * sizeof *gold_tags);
    const char **predicted_tags = tp_xmalloc((size_t)(words ? words : 1) * sizeof *predicted_tags);
    for (int64_t i = 0; i < split->count; i++) {
        const tp_tsv_example *example = &gold->examples[i];
        int64_t first = split->first_word[i], kept = 0;
        while (kept < example->token_count && split->word_position[first + kept] >= 0) kept++;
        for (int64_t w = 0; w < kept; w++) {
            gold_tags[w] = label_names[gold->label_ids[example->first_label + w]];
            predicted_tags[w] = label_names[p->ids[first + w]];
        }
        tp_entity_add(&out->entity_counts, gold_tags, predicted_tags, kept);
    }
    out->entities = tp_entity_f1(&out->entity_counts);
    out->selection = out->entities.f1;
    free(gold_tags);
    free(predicted_tags);
}

static void score_text2text(const tp_tsv_task *gold, const tp_task_predictions *p, tp_task_scores *out)
{
    tp_bleu bleu;
    int64_t exact = 0;
    memset(&bleu, 0, sizeof bleu);
    for (int64_t i = 0; i < gold->count; i++) {
        const char *hypothesis = p->texts && p->texts[i] ? p->texts[i] : "";
        exact += strcmp(hypothesis, gold->examples[i].target) == 0;
        tp_bleu_add(&bleu, hypothesis, gold->examples[i].target);
    }
    out->exact_match = gold->count ? (double)exact / (double)gold->count : 0.0;
    out->bleu = tp_bleu_score(&bleu, NULL, NULL);
    out->selection = out->bleu / 100.0; /* in [0, 1] as the other kinds' selection scores */
}

static void score_speech2text(const tp_encoded_split *split, const tp_task_predictions *p, tp_task_scores *out)
{
    int64_t exact = 0;
    for (int64_t i = 0; i < split->count; i++) {
        const char *hypothesis = p->texts && p->texts[i] ? p->texts[i] : "";
        exact += strcmp(hypothesis, split->speech->items[i].text) == 0;
        tp_wer_add(&out->wer_counts, split->speech->items[i].text, hypothesis);
    }
    out->exact_match = split->count ? (double)exact / (double)split->count : 0.0;
    out->wer = tp_wer(&out->wer_counts);
    out->selection = -out->wer; /* higher is better, as the other kinds' */
}

int tp_task_score(const tp_encoded_split *split, const tp_tsv_task *gold, const char *const *label_names,
                  const tp_task_predictions *predictions, tp_task_scores *out)
{
    memset(out, 0, sizeof *out);
    out->kind = split->kind;
    out->loss = predictions->loss;
    if (!split->has_labels) return tp_fail("%s: no label column to score against", gold->path);
    switch (split->kind) {
    case TP_TASK_CLASSIFICATION: score_classification(split, predictions, out); break;
    case TP_TASK_MULTI_LABEL: score_multi_label(split, predictions, out); break;
    case TP_TASK_REGRESSION: score_regression(split, predictions, out); break;
    case TP_TASK_TAGGING: score_tagging(split, gold, label_names, predictions, out); break;
    case TP_TASK_TEXT2TEXT: score_text2text(gold, predictions, out); break;
    case TP_TASK_SPEECH2TEXT: score_speech2text(split, predictions, out); break;
    }
    return 0;
}

void tp_task_scores_free(tp_task_scores *scores)
{
    if (scores->confusion) tp_confusion_free(scores->confusion);
    if (scores->multilabel) tp_multilabel_free(scores->multilabel);
    scores->confusion = NULL;
    scores->multilabel = NULL;
}

const char *tp_task_selection_name(tp_task_kind kind)
{
    static const char *const names[] = {"accuracy", "macro_f1", "spearman", "f1", "bleu", "wer"};
    return names[kind];
}

void tp_task_scores_print(FILE *out, const tp_task_scores *s, const char *const *label_names)
{
    fprintf(out, "loss %.4f | ", s->loss);
    switch (s->kind) {
    case TP_TASK_CLASSIFICATION:
        fprintf(out, "accuracy %.4f | macro-F1 %.4f\n", tp_confusion_accuracy(s->confusion),
                tp_confusion_macro_f1(s->confusion));
        tp_confusion_print(out, s->confusion, label_names);
        break;
    case TP_TASK_MULTI_LABEL:
        fprintf(out, "subset accuracy %.4f | micro-F1 %.4f | macro-F1 %.4f\n",
                tp_multilabel_subset_accuracy(s->multilabel), tp_multilabel_micro_f1(s->multilabel),
                tp_multilabel_macro_f1(s->multilabel));
        break;
    case TP_TASK_REGRESSION:
        fprintf(out, "Spearman %.4f | Pearson %.4f | MSE %.4f\n", s->spearman, s->pearson, s->mse);
        break;
    case TP_TASK_TAGGING:
        fprintf(out, "entity precision %.4f | recall %.4f | F1 %.4f (%lld gold, %lld predicted, %lld correct)\n",
                s->entities.precision, s->entities.recall, s->entities.f1, (long long)s->entity_counts.gold,
                (long long)s->entity_counts.predicted, (long long)s->entity_counts.correct);
        break;
    case TP_TASK_TEXT2TEXT: fprintf(out, "exact match %.4f | BLEU %.2f\n", s->exact_match, s->bleu); break;
    case TP_TASK_SPEECH2TEXT:
        fprintf(out, "exact match %.4f | WER %.4f (%lld errors / %lld reference words)\n", s->exact_match, s->wer,
                (long long)s->wer_counts.errors, (long long)s->wer_counts.reference_words);
        break;
    }
}

/* JSON has no NaN: undefined scores are written as null. */
static void json_number(FILE *out, const char *key, double value)
{
    if (isfinite(value))
        fprintf(out, ",\"%s\":%.9g", key, value);
    else
        fprintf(out, ",\"%s\":null", key);
}

static void json_confusion(FILE *out, const tp_confusion *confusion)
{
    fprintf(out, ",\"confusion\":[");
    for (int64_t gold = 0; gold < confusion->classes; gold++) {
        fprintf(out, "%s[", gold ? "," : "");
        for (int64_t predicted = 0; predicted < confusion->classes; predicted++)
            fprintf(out, "%s%lld", predicted ? "," : "", (long long)tp_confusion_count(confusion, gold, predicted));
        fprintf(out, "]");
    }
    fprintf(out, "]");
}

void tp_task_scores_json(FILE *out, const tp_task_scores *s)
{
    json_number(out, "loss", s->loss);
    switch (s->kind) {
    case TP_TASK_CLASSIFICATION:
        json_number(out, "accuracy", tp_confusion_accuracy(s->confusion));
        json_number(out, "macro_f1", tp_confusion_macro_f1(s->confusion));
        json_confusion(out, s->confusion);
        break;
    case TP_TASK_MULTI_LABEL:
        json_number(out, "subset_accuracy", tp_multilabel_subset_accuracy(s->multilabel));
        json_number(out, "micro_f1", tp_multilabel_micro_f1(s->multilabel));
        json_number(out, "macro_f1", tp_multilabel_macro_f1(s->multilabel));
        break;
    case TP_TASK_REGRESSION:
        json_number(out, "spearman", s->spearman);
        json_number(out, "pearson", s->pearson);
        json_number(out, "mse", s->mse);
        break;
    case TP_TASK_TAGGING:
        json_number(out, "precision", s->entities.precision);
        json_number(out, "recall", s->entities.recall);
        json_number(out, "f1", s->entities.f1);
        break;
    case TP_TASK_TEXT2TEXT:
        json_number(out, "exact_match", s->exact_match);
        json_number(out, "bleu", s->bleu);
        break;
    case TP_TASK_SPEECH2TEXT:
        json_number(out, "exact_match", s->exact_match);
        json_number(out, "wer", s->wer);
        fprintf(out, ",\"word_errors\":%lld,\"reference_words\":%lld", (long long)s->wer_counts.errors,
                (long long)s->wer_counts.reference_words);
        break;
    }
}
