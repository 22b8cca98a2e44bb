/* Hugging Face encoder-decoder models in tp, for core/hf.c: T5 and T5 v1.1 (core/hf_t5.c, model_type
 * t5: T5ForConditionalGeneration) and BART (core/hf_bart.c, model_type bart:
 * BartForConditionalGeneration), read into TencentPretrain-style configs and names.  The shared
 * part (core/hf_seq2seq.c) maps names through a family's table of patterns, where "{i}" stands for
 * a layer index, and loads the weights.  docs/convert.md lists both tables. */
#ifndef TP_HF_SEQ2SEQ_H
#define TP_HF_SEQ2SEQ_H

#include <cjson/cJSON.h>

#include "hf.h"
#include "model.h"

/* One tp name pattern and its Hugging Face counterpart ("{i}" at most once in each). */
typedef struct tp_hf_rename {
    const char *tp, *hf;
} tp_hf_rename;

/* config.json's model_type is t5 or bart. */
int tp_hf_seq2seq_is(const cJSON *root);
/* Adds the tp model config's keys for that config.json (read from path) to tp; -1 + error naming
 * the file and key. */
int tp_hf_seq2seq_config(const char *path, const cJSON *root, cJSON *tp);
/* A tp model with a decoder. */
int tp_hf_seq2seq_model(const tp_model *model);
/* Loads the safetensors file at path into the model (parameters named skip_prefix... are left).
 * With a report, every tensor of the file must be used or a known droppable one (tied copies,
 * BART's all-zero final_logits_bias buffer). */
int tp_hf_seq2seq_load(const char *path, tp_model *model, const char *skip_prefix, tp_hf_report *report);

/* The families (hf_t5.c, hf_bart.c). */
int tp_hf_t5_config(const char *path, const cJSON *root, cJSON *tp);
extern const tp_hf_rename tp_hf_t5_names[], tp_hf_t5_gated_names[];
extern const char *const tp_hf_t5_droppable[];
int tp_hf_bart_config(const char *path, const cJSON *root, cJSON *tp);
extern const tp_hf_rename tp_hf_bart_names[];
extern const char *const tp_hf_bart_droppable[];

/* config.json helpers shared by the families: an integer / number / boolean key with the given
 * default (save_pretrained leaves out keys at their default); -1 + error naming file and key. */
int tp_hf_json_int(const char *path, const cJSON *root, const char *key, int64_t fallback, int64_t *out);
int tp_hf_json_number(const char *path, const cJSON *root, const char *key, double fallback, double *out);
int tp_hf_json_bool(const char *path, const cJSON *root, const char *key, int fallback, int *out);
const char *tp_hf_json_string(const cJSON *root, const char *key, const char *fallback);

#endif
