/* The "hf" kind: a Hugging Face tokenizer.json, read with cJSON.  Three models:
 *
 *   WordPiece  with normalizer BertNormalizer and pre_tokenizer BertPreTokenizer (BERT's):
 *              the bert kind's BasicTokenizer + WordPiece (wordpiece.c), lower-casing as the
 *              normalizer's "lowercase" says;
 *   BPE        with pre_tokenizer ByteLevel and no normalizer (GPT-2's, RoBERTa's): bpe.c;
 *   Unigram    with Metaspace and SentencePiece-style normalizers (T5's, ALBERT's): unigram.c.
 *
 * added_tokens are matched in the raw text first, as Hugging Face does (added_tokens.h); an
 * added token's id may lie past the model's vocabulary (T5's <pad>).  Options that would change
 * the ids and that tp does not implement (BPE dropout, a WordPiece prefix other than "##", ...)
 * are refused, naming the key.  Special ids come from the tokens' names: pad [PAD]/<pad>,
 * cls [CLS]/<s>, sep [SEP]/</s>, mask [MASK]/<mask>, bos <s>/<|endoftext|>,
 * eos </s>/<|endoftext|>; unk is the model's. */
#include "tokenizers/hf_json.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "tokenizers/added_tokens.h"
#include "tokenizers/bpe.h"
#include "tokenizers/unigram.h"
#include "tokenizers/vocab.h"
#include "tokenizers/wordpiece.h"

/* ---- JSON accessors ---- */

int tp_hf_fail(const char *path, const char *key, const char *fmt, ...)
{
    char message[1024];
    va_list args;
    va_start(args, fmt);
    vsnprintf(message, sizeof message, fmt, args);
    va_end(args);
    return tp_fail("%s: key '%s': %s", path, key, message);
}

const cJSON *tp_hf_member(const cJSON *object, const char *name)
{
    return cJSON_IsObject(object) ? cJSON_GetObjectItemCaseSensitive(object, name) : NULL;
}

int tp_hf_string(const cJSON *object, const char *name, const char *path, const char *key, const char *fallback,
                 const char **out)
{
    const cJSON *item = tp_hf_member(object, name);
    if ((!item || cJSON_IsNull(item)) && fallback) {
        *out = fallback;
        return 0;
    }
    if (!cJSON_IsString(item)) return tp_hf_fail(path, key, "expected a string%s", item ? "" : " (missing)");
    *out = item->valuestring;
    return 0;
}

int tp_hf_bool(const cJSON *object, const char *name, const char *path, const char *key, bool fallback, bool *out)
{
    const cJSON *item = tp_hf_member(object, name);
    if (!item || cJSON_IsNull(item)) {
        *out = fallback;
        return 0;
    }
    if (!cJSON_IsBool(item)) return tp_hf_fail(path, key, "'%s': expected true or false", name);
    *out = cJSON_IsTrue(item);
    return 0;
}

/* The key's value must be absent, null or `allowed` (a string, "" for none). */
static int require_string_or_null(const cJSON *object, const char *name, const char *path, const char *key,
                                  const char *allowed)
{
    const char *value;
    if (tp_hf_string(object, name, path, key, allowed, &value) != 0) return -1;
    if (strcmp(value, allowed) != 0)
        return tp_hf_fail(path, key, "'%s' is not supported (tp needs %s)", value, *allowed ? allowed : "null or \"\"");
    return 0;
}

static int type_of(const cJSON *object, const char *path, const char *key, const char **type)
{
    char type_key[64];
    snprintf(type_key, sizeof type_key, "%s.type", key);
    return tp_hf_string(object, "type", path, type_key, NULL, type);
}

/* ---- added tokens ---- */

static int added_token_id(const cJSON *item, const char *path, const char *key, int32_t *id)
{
    int64_t value;
    if (!tp_vocab_json_integer(tp_hf_member(item, "id"), 0, INT32_MAX, &value))
        return tp_hf_fail(path, key, "expected an integer id in [0, %d)", INT32_MAX);
    *id = (int32_t)value;
    return 0;
}

static int64_t added_tokens_max_id(const cJSON *root, const char *path)
{
    int64_t max_id = -1, index = 0;
    const cJSON *added = tp_hf_member(root, "added_tokens");
    if (added && !cJSON_IsNull(added) && !cJSON_IsArray(added))
        return tp_hf_fail(path, "added_tokens", "expected an array"), -2;
    for (const cJSON *item = added ? added->child : NULL; item; item = item->next, index++) {
        char key[64];
        int32_t id = 0;
        snprintf(key, sizeof key, "added_tokens[%lld].id", (long long)index);
        if (added_token_id(item, path, key, &id) != 0) return -2;
        if (id > max_id) max_id = id;
    }
    return max_id;
}

/* Gives each added token its id (past the model's vocabulary, or checked against it) and
 * registers it for matching in the text. */
static int add_added_tokens(tp_tokenizer *tok, tp_added_tokens *matcher, const cJSON *root, const char *path)
{
    int64_t index = 0;
    const cJSON *added = tp_hf_member(root, "added_tokens");
    for (const cJSON *item = added ? added->child : NULL; item; item = item->next, index++) {
        char key[64];
        snprintf(key, sizeof key, "added_tokens[%lld]", (long long)index);
        const char *content;
        int32_t id = 0;
        bool lstrip, rstrip, single_word;
        if (added_token_id(item, path, key, &id) != 0 || tp_hf_string(item, "content", path, key, NULL, &content) != 0 ||
            tp_hf_bool(item, "lstrip", path, key, false, &lstrip) != 0 ||
            tp_hf_bool(item, "rstrip", path, key, false, &rstrip) != 0 ||
            tp_hf_bool(item, "single_word", path, key, false, &single_word) != 0)
            return -1;
        size_t len = strlen(content);
        if (single_word) return tp_hf_fail(path, key, "single_word added tokens are not supported");
        if (len == 0 || tp_utf8_invalid_offset(content, len) >= 0)
            return tp_hf_fail(path, key, "the content is empty or not valid UTF-8");
        if (!tok->tokens[id]) {
            int32_t earlier = tp_vocab_add(tok, id, tp_vocab_store(tok, content, len), len);
            if (earlier >= 0) return tp_hf_fail(path, key, "'%s' already has id %d", content, earlier);
        } else if (strcmp(tok->tokens[id], content) != 0) {
            return tp_hf_fail(path, key, "id %d is '%s' in the model, not '%s'", id, tok->tokens[id], content);
        }
        tp_added_tokens_add(matcher, tok->tokens[id], len, id, lstrip, rstrip);
    }
    return 0;
}

/* ---- WordPiece ---- */

typedef struct hf_wordpiece {
    tp_vocab_index vocab; /* first: see vocab.h (wordpiece.c reads it) */
    tp_added_tokens added;
} hf_wordpiece;

static int hf_wordpiece_encode(const tp_tokenizer *tok, const char *text, size_t len, tp_ids *out)
{
    const hf_wordpiece *model = tok->impl;
    return tp_added_tokens_encode(&model->added, tok, text, len, tp_wordpiece_encode, out);
}

static void hf_wordpiece_destroy(tp_tokenizer *tok)
{
    tp_added_tokens_free(&((hf_wordpiece *)tok->impl)->added);
    tp_vocab_tokenizer_destroy(tok);
}

static const tp_tokenizer_ops hf_wordpiece_ops = {
    .encode = hf_wordpiece_encode,
    .destroy = hf_wordpiece_destroy,
};

/* BertNormalizer + BertPreTokenizer with the settings the bert kind implements. */
static int read_bert_pipeline(const cJSON *root, const char *path, bool *lowercase)
{
    const cJSON *normalizer = tp_hf_member(root, "normalizer"), *pre = tp_hf_member(root, "pre_tokenizer");
    const char *type;
    bool clean_text, chinese, strip_accents;
    if (type_of(normalizer, path, "normalizer", &type) != 0) return -1;
    if (strcmp(type, "BertNormalizer") != 0)
        return tp_hf_fail(path, "normalizer.type", "'%s' with a WordPiece model is not supported (tp needs BertNormalizer)",
                          type);
    if (tp_hf_bool(normalizer, "lowercase", path, "normalizer.lowercase", true, lowercase) != 0 ||
        tp_hf_bool(normalizer, "clean_text", path, "normalizer.clean_text", true, &clean_text) != 0 ||
        tp_hf_bool(normalizer, "handle_chinese_chars", path, "normalizer.handle_chinese_chars", true, &chinese) != 0 ||
        tp_hf_bool(normalizer, "strip_accents", path, "normalizer.strip_accents", *lowercase, &strip_accents) != 0)
        return -1;
    if (!clean_text || !chinese || strip_accents != *lowercase)
        return tp_hf_fail(path, "normalizer",
                          "tp needs clean_text and handle_chinese_chars true and strip_accents null or equal to lowercase");
    if (type_of(pre, path, "pre_tokenizer", &type) != 0) return -1;
    if (strcmp(type, "BertPreTokenizer") != 0)
        return tp_hf_fail(path, "pre_tokenizer.type",
                          "'%s' with a WordPiece model is not supported (tp needs BertPreTokenizer)", type);
    return 0;
}

static tp_tokenizer *read_wordpiece(const cJSON *root, const char *path, int64_t vocab_size)
{
    const cJSON *model = tp_hf_member(root, "model");
    const cJSON *chars = tp_hf_member(model, "max_input_chars_per_word");
    const char *unk;
    bool lowercase;
    if (read_bert_pipeline(root, path, &lowercase) != 0 ||
        require_string_or_null(model, "continuing_subword_prefix", path, "model.continuing_subword_prefix", "##") != 0 ||
        tp_hf_string(model, "unk_token", path, "model.unk_token", NULL, &unk) != 0)
        return NULL;
    int64_t max_chars;
    if (chars && !(tp_vocab_json_integer(chars, 100, 101, &max_chars))) {
        tp_hf_fail(path, "model.max_input_chars_per_word", "tp needs 100");
        return NULL;
    }
    tp_tokenizer *tok = tp_vocab_tokenizer_new(vocab_size, sizeof(hf_wordpiece));
    tok->ops = &hf_wordpiece_ops;
    ((tp_vocab_index *)tok->impl)->do_lower_case = lowercase;
    ((tp_vocab_index *)tok->impl)->keep_unassigned = 1;
    if (tp_vocab_add_json_object(tok, tp_hf_member(model, "vocab"), path, "model.vocab") != 0 ||
        add_added_tokens(tok, &((hf_wordpiece *)tok->impl)->added, root, path) != 0 ||
        tp_vocab_check_complete(tok, path) != 0) {
        tp_tokenizer_free(tok);
        return NULL;
    }
    tp_vocab_set_bert_special_ids(tok);
    tok->unk_id = tp_tokenizer_token_id(tok, unk);
    if (tok->unk_id < 0) {
        tp_hf_fail(path, "model.unk_token", "'%s' is not in the vocabulary", unk);
        tp_tokenizer_free(tok);
        return NULL;
    }
    return tok;
}

/* ---- BPE ---- */

static int read_byte_level(const cJSON *root, const char *path, tp_bpe_settings *settings)
{
    const cJSON *normalizer = tp_hf_member(root, "normalizer"), *pre = tp_hf_member(root, "pre_tokenizer");
    const char *type;
    bool use_regex;
    if (normalizer && !cJSON_IsNull(normalizer))
        return tp_hf_fail(path, "normalizer", "a normalizer with a BPE model is not supported (tp needs null)");
    if (type_of(pre, path, "pre_tokenizer", &type) != 0) return -1;
    if (strcmp(type, "ByteLevel") != 0)
        return tp_hf_fail(path, "pre_tokenizer.type", "'%s' with a BPE model is not supported (tp needs ByteLevel)", type);
    if (tp_hf_bool(pre, "add_prefix_space", path, "pre_tokenizer.add_prefix_space", false, &settings->add_prefix_space) != 0 ||
        tp_hf_bool(pre, "use_regex", path, "pre_tokenizer.use_regex", true, &use_regex) != 0)
        return -1;
    if (!use_regex) return tp_hf_fail(path, "pre_tokenizer.use_regex", "false is not supported");
    return 0;
}

static int read_bpe_options(const cJSON *model, const char *path, tp_bpe_settings *settings)
{
    const cJSON *dropout = tp_hf_member(model, "dropout");
    bool byte_fallback;
    if (dropout && !cJSON_IsNull(dropout)) return tp_hf_fail(path, "model.dropout", "BPE dropout is not supported");
    if (require_string_or_null(model, "continuing_subword_prefix", path, "model.continuing_subword_prefix", "") != 0 ||
        require_string_or_null(model, "end_of_word_suffix", path, "model.end_of_word_suffix", "") != 0 ||
        tp_hf_bool(model, "byte_fallback", path, "model.byte_fallback", false, &byte_fallback) != 0 ||
        tp_hf_bool(model, "ignore_merges", path, "model.ignore_merges", false, &settings->ignore_merges) != 0)
        return -1;
    if (byte_fallback) return tp_hf_fail(path, "model.byte_fallback", "true is not supported with byte-level BPE");
    return 0;
}

/* model.merges: "left right" strings (older files) or [left, right] pairs. */
static int read_merges(tp_tokenizer *tok, const cJSON *merges, const char *path)
{
    int64_t index = 0;
    for (const cJSON *item = merges->child; item; item = item->next, index++) {
        char key[64];
        snprintf(key, sizeof key, "model.merges[%lld]", (long long)index);
        const char *left, *right;
        size_t left_len, right_len;
        if (cJSON_IsString(item)) {
            left = item->valuestring;
            const char *space = strchr(left, ' ');
            if (!space || strchr(space + 1, ' ') || space == left || space[1] == '\0')
                return tp_hf_fail(path, key, "'%s' is not two tokens separated by one space", left);
            left_len = (size_t)(space - left);
            right = space + 1;
            right_len = strlen(right);
        } else if (cJSON_IsArray(item) && cJSON_GetArraySize(item) == 2 && cJSON_IsString(item->child) &&
                   cJSON_IsString(item->child->next)) {
            left = item->child->valuestring, right = item->child->next->valuestring;
            left_len = strlen(left), right_len = strlen(right);
        } else {
            return tp_hf_fail(path, key, "expected \"left right\" or [left, right]");
        }
        char where[1100];
        snprintf(where, sizeof where, "%s: key '%s'", path, key);
        if (tp_bpe_add_merge(tok, where, left, left_len, right, right_len) != 0) return -1;
    }
    return 0;
}

static tp_tokenizer *read_bpe(const cJSON *root, const char *path, int64_t vocab_size)
{
    const cJSON *model = tp_hf_member(root, "model"), *merges = tp_hf_member(model, "merges");
    tp_bpe_settings settings = {0};
    if (read_byte_level(root, path, &settings) != 0 || read_bpe_options(model, path, &settings) != 0) return NULL;
    if (!cJSON_IsArray(merges)) {
        tp_hf_fail(path, "model.merges", "expected an array");
        return NULL;
    }
    tp_tokenizer *tok = tp_bpe_new(vocab_size, cJSON_GetArraySize(merges));
    if (tp_vocab_add_json_object(tok, tp_hf_member(model, "vocab"), path, "model.vocab") != 0 ||
        read_merges(tok, merges, path) != 0 || add_added_tokens(tok, tp_bpe_added_tokens(tok), root, path) != 0 ||
        tp_vocab_check_complete(tok, path) != 0 || tp_bpe_finish(tok, path, settings) != 0) {
        tp_bpe_destroy(tok);
        return NULL;
    }
    return tok;
}

/* ---- Unigram ---- */

static tp_tokenizer *read_unigram(const cJSON *root, const char *path, int64_t vocab_size)
{
    tp_tokenizer *tok = tp_unigram_new(vocab_size);
    if (tp_unigram_read(tok, root, path) != 0 || add_added_tokens(tok, tp_unigram_added_tokens(tok), root, path) != 0 ||
        tp_vocab_check_complete(tok, path) != 0 || tp_unigram_finish(tok, path) != 0) {
        tp_unigram_destroy(tok);
        return NULL;
    }
    return tok;
}

/* ---- the kind ---- */

/* Ids the model's vocabulary spans: model.vocab's largest id + 1 ({token: id}) or its length ([[piece, score]]). */
static int64_t model_vocab_size(const cJSON *model, const char *type, const char *path)
{
    const cJSON *vocab = tp_hf_member(model, "vocab");
    if (strcmp(type, "Unigram") == 0) return cJSON_IsArray(vocab) ? cJSON_GetArraySize(vocab) : 0;
    int64_t max_id;
    return tp_vocab_json_max_id(vocab, path, "model.vocab", &max_id) == 0 ? max_id + 1 : -1;
}

static void set_special_ids(tp_tokenizer *tok)
{
    static const char *const names[][2] = {{"[PAD]", "<pad>"}, {"[CLS]", "<s>"},       {"[SEP]", "</s>"},
                                           {"[MASK]", "<mask>"}, {"<s>", "<|endoftext|>"}, {"</s>", "<|endoftext|>"}};
    int32_t *ids[] = {&tok->pad_id, &tok->cls_id, &tok->sep_id, &tok->mask_id, &tok->bos_id, &tok->eos_id};
    for (size_t k = 0; k < sizeof ids / sizeof ids[0]; k++) {
        *ids[k] = tp_tokenizer_token_id(tok, names[k][0]);
        if (*ids[k] < 0) *ids[k] = tp_tokenizer_token_id(tok, names[k][1]);
    }
}

static tp_tokenizer *read_tokenizer(const cJSON *root, const char *path)
{
    const cJSON *model = tp_hf_member(root, "model");
    const char *type;
    if (!cJSON_IsObject(root)) {
        tp_fail("%s: expected a JSON object at the top level", path);
        return NULL;
    }
    if (!model) {
        tp_hf_fail(path, "model", "missing");
        return NULL;
    }
    if (type_of(model, path, "model", &type) != 0) return NULL;
    bool wordpiece = strcmp(type, "WordPiece") == 0, bpe = strcmp(type, "BPE") == 0, unigram = strcmp(type, "Unigram") == 0;
    if (!wordpiece && !bpe && !unigram) {
        tp_hf_fail(path, "model.type", "unknown model type '%s' (known: WordPiece, BPE, Unigram)", type);
        return NULL;
    }
    int64_t model_size = model_vocab_size(model, type, path), added_max = added_tokens_max_id(root, path);
    if (model_size < 0 || added_max < -1) return NULL;
    int64_t vocab_size = model_size > added_max + 1 ? model_size : added_max + 1;
    if (vocab_size == 0) {
        tp_hf_fail(path, "model.vocab", "empty vocabulary");
        return NULL;
    }
    if (wordpiece) return read_wordpiece(root, path, vocab_size);
    return bpe ? read_bpe(root, path, vocab_size) : read_unigram(root, path, vocab_size);
}

tp_tokenizer *tp_hf_json_create(const tp_tokenizer_options *options)
{
    const char *path = options->tokenizer_json_path;
    if (!path) {
        tp_fail("tokenizer 'hf': no tokenizer.json given (tokenizer_json_path)");
        return NULL;
    }
    cJSON *root = tp_vocab_read_json(path);
    if (!root) return NULL;
    tp_tokenizer *tok = read_tokenizer(root, path);
    cJSON_Delete(root);
    if (!tok) return NULL;
    tok->source_path = tp_vocab_store(tok, path, strlen(path));
    set_special_ids(tok);
    return tok;
}
