/* Internal to tokenizers/: the "hf" kind, a Hugging Face tokenizer.json (WordPiece, byte-level
 * BPE or Unigram model), and the JSON accessors its parts share.  Every message names the
 * file and the JSON key ("model.vocab[12]"). */
#ifndef TP_HF_JSON_H
#define TP_HF_JSON_H

#include <stdbool.h>

#include "core/error.h"
#include "tokenizers/tokenizer.h"

struct cJSON;

tp_tokenizer *tp_hf_json_create(const tp_tokenizer_options *options);

/* "<path>: key '<key>': <message>"; returns -1. */
int tp_hf_fail(const char *path, const char *key, const char *fmt, ...) TP_PRINTF(3, 4);
/* The member `name` of object (NULL when absent or when object is not an object). */
const struct cJSON *tp_hf_member(const struct cJSON *object, const char *name);
/* key holds a string (*out), or, when absent or null and fallback is given, *out = fallback. */
int tp_hf_string(const struct cJSON *object, const char *name, const char *path, const char *key,
                 const char *fallback, const char **out);
/* key holds true or false, or, when absent or null, *out = fallback. */
int tp_hf_bool(const struct cJSON *object, const char *name, const char *path, const char *key, bool fallback,
               bool *out);

#endif
