/* Hugging Face model directories (config.json + model.safetensors) of the BERT, RoBERTa and
 * ALBERT families, and GPT-2 (core/hf_gpt2.h), ViT (core/hf_vit.h), BEiT (core/hf_beit.h),
 * T5 / BART / Pegasus (core/hf_seq2seq.h), read into tp's model config and parameter names (TencentPretrain's), and
 * written back.  docs/convert.md has the whole picture; in short:
 *
 * Families: the Hugging Face backbone prefix is "bert.", "roberta." or "albert." when the model
 * has a head and none for the bare model (BertModel, ...); loading accepts both.
 *   embeddings.word_embeddings.weight        embedding.word.embedding.weight
 *   embeddings.position_embeddings.weight    embedding.pos.embedding.weight   (whole table)
 *   embeddings.token_type_embeddings.weight  embedding.seg.embedding.weight   (see below)
 *   embeddings.LayerNorm.{weight,bias}       embedding.layer_norm.{weight,bias}
 * BERT and RoBERTa layers: encoder.layer.{i}.X -> encoder.transformer.{i}.Y with X -> Y
 *   attention.self.{query,key,value}  self_attn.linear_layers.{0,1,2}
 *   attention.output.dense            self_attn.final_linear
 *   attention.output.LayerNorm        layer_norm_1
 *   intermediate.dense                feed_forward.linear_1
 *   output.dense                      feed_forward.linear_2
 *   output.LayerNorm                  layer_norm_2
 * ALBERT: encoder.embedding_hidden_mapping_in -> encoder.linear; with one layer group
 * (parameter_sharing) encoder.albert_layer_groups.0.albert_layers.0.X -> encoder.transformer.Y,
 * with one group per layer (no sharing) group {i} -> encoder.transformer.{i}:
 *   attention.{query,key,value}  self_attn.linear_layers.{0,1,2}
 *   attention.dense              self_attn.final_linear
 *   attention.LayerNorm          layer_norm_1
 *   ffn, ffn_output              feed_forward.linear_1, feed_forward.linear_2
 *   full_layer_layer_norm        layer_norm_2
 * Heads (architectures[0] decides which; tp target names):
 *   target.mlm.linear_1     cls.predictions.transform.dense   lm_head.dense        predictions.dense
 *   target.mlm.layer_norm   cls.predictions.transform.LayerNorm lm_head.layer_norm predictions.LayerNorm
 *   target.mlm.linear_2.weight  ...decoder.weight (only when tie_word_embeddings is false)
 *   target.mlm.linear_2.bias    cls.predictions.bias           lm_head.bias         predictions.bias
 *   target.sp.linear_1      bert.pooler.dense                  -                    albert.pooler
 *   target.sp.linear_2      cls.seq_relationship               -                    sop_classifier.classifier
 *   target.cls.linear_1     bert.pooler.dense                  classifier.dense     albert.pooler
 *   target.cls.linear_2     classifier                         classifier.out_proj  classifier
 * Segment embeddings: tp's (TencentPretrain's) 3 rows are 0 = padding, 1 = A, 2 = B; Hugging
 * Face's T token types (T = type_vocab_size, 1 or 2) are A, B and padding uses type 0.  Rows 0
 * and 1 get type 0, row 2 type min(1, T-1); writing back, type t comes from row t+1.
 * RoBERTa's positions start at padding_idx + 1: the table is kept whole and the tp config gets
 * position_offset = padding_idx + 1, max_seq_length = max_position_embeddings - position_offset.
 * Layer norms are torch's everywhere (eps from layer_norm_eps).  The original config.json is
 * kept in the tp config under "huggingface" (tp ignores it) so that writing back restores its
 * other fields (token ids, label names, ...). */
#ifndef TP_HF_H
#define TP_HF_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "model.h"

/* A tp model config for dir/config.json (model_type bert, roberta or albert; the heads from
 * architectures[0]); NULL + error naming the file and key. */
tp_config *tp_hf_config(const char *dir);
/* Loads dir/model.safetensors into a model built from tp_hf_config(dir): every parameter whose
 * name does not start with skip_prefix (NULL: none; "target." keeps the heads' initialisation)
 * must be found with its shape (the error names the Hugging Face tensor).  Tensors of the file
 * that the model has no place for are ignored here (tp_hf_convert_from_hf reports them). */
int tp_hf_load(const char *dir, tp_model *model, const char *skip_prefix);

/* What a conversion did: tensors written, and the source tensors it had no place for (known
 * ones only: buffers, a pooler or NSP head the architecture lacks, copies of tied weights). */
typedef struct tp_hf_report {
    int64_t written, dropped;
    char dropped_names[1024]; /* the first dropped names, ", "-separated */
} tp_hf_report;

/* Hugging Face directory -> out_dir/{model.safetensors (tp names), model_config.json, tokenizer
 * files}.  out_dir must not exist; it appears complete or not at all.  Every tensor of the file
 * must map onto the model or be a known droppable one. */
int tp_hf_convert_from_hf(const char *hf_dir, const char *out_dir, tp_hf_report *report);
/* tp model config + tp weights -> out_dir/{config.json, model.safetensors (Hugging Face names),
 * tokenizer files}: the vocab_paths given, or without any the tokenizer files found next to
 * weights_path.  The weights must match the config exactly (the error names the first tensor
 * that is missing, unknown or of another shape); configs Hugging Face cannot express (tp's own
 * layer norms, pre-LN, ...) are refused naming the key. */
int tp_hf_convert_to_hf(const char *model_config_path, const char *weights_path, const char *const *vocab_paths,
                        int vocab_count, const char *out_dir, tp_hf_report *report);

/* For the family files (hf_gpt2.c, hf_vit.c, ...): *name = config.json's architectures[0], NULL
 * when the key is absent or null; -1 + message naming path when it is not a list of names. */
struct cJSON;
int tp_hf_first_architecture(const char *path, const struct cJSON *root, const char **name);
/* For a family with one bare and one headed architecture: *headed = 1 when architectures[0] is
 * headed_name, 0 when it is bare_name or absent; -1 + message naming both for any other name. */
int tp_hf_headed_architecture(const char *path, const struct cJSON *root, const char *bare_name,
                              const char *headed_name, int *headed);
/* Sets object[key] = item, replacing an existing value. */
void tp_hf_put(struct cJSON *object, const char *key, struct cJSON *item);

/* For the family files: config.json keys with a default (save_pretrained leaves out keys at their
 * default; null means the default too), or TP_HF_REQUIRED for none; -1 + error naming file and key.
 * tp_hf_json_int takes integers in [0, 2^31 - 1], tp_hf_json_range in [min, max]. */
#define TP_HF_REQUIRED INT64_MIN
int tp_hf_json_range(const char *path, const struct cJSON *root, const char *key, int64_t fallback, int64_t min,
                     int64_t max, int64_t *out);
int tp_hf_json_int(const char *path, const struct cJSON *root, const char *key, int64_t fallback, int64_t *out);
int tp_hf_json_number(const char *path, const struct cJSON *root, const char *key, double fallback, double *out);
int tp_hf_json_bool(const char *path, const struct cJSON *root, const char *key, int fallback, int *out);
const char *tp_hf_json_string(const struct cJSON *root, const char *key, const char *fallback);

/* How one family names and lays out tp's parameters in Hugging Face files; hf.c's one loading loop
 * and one writing loop serve every family that maps parameters one to one (BERT, RoBERTa, ALBERT,
 * T5, BART, Pegasus). */
struct tp_st_file;
#define TP_HF_SCALAR (-1)
typedef struct tp_hf_names {
    const char *model_type; /* in messages */
    const void *self;       /* the family's state, handed to each hook */
    /* The Hugging Face name of tp parameter tp_name in spelling `form` (0: the one written; 1: another
     * one files use, e.g. without the family prefix); 0 when there is none. */
    int (*name)(const void *self, const char *tp_name, int form, char *out, size_t cap);
    /* NULL, or: the Hugging Face tensor's dimensions into shape (returns ndim; 0: tp's logical shape;
     * TP_HF_SCALAR: a 0-dimensional tensor) and the element offset of its values in tp's. */
    int (*layout)(const void *self, const tp_param *param, int64_t *shape, int64_t *offset);
    /* NULL, or a reader for tensors whose values tp rearranges (BERT's token types): 1 when it read
     * the tensor into host (tp's storage), 0 to read by layout, -1 on error. */
    int (*read)(const void *self, const struct tp_st_file *file, const char *hf_name, const tp_param *param,
                float *host);
    /* A tensor of the file that the model may leave unused (buffers, tied copies, other heads). */
    int (*droppable)(const void *self, const char *hf_name);
    /* NULL, or: 1 for a tp parameter that the family's files may lack, loaded as zeros then (BEiT's
     * key bias, which the softmax cancels; its mask token in models that have none). */
    int (*optional)(const void *self, const char *tp_name);
    /* NULL, or: 1 for a tp parameter that writing leaves out (BEiT's key bias; its unused mask token). */
    int (*unwritten)(const void *self, const char *tp_name);
} tp_hf_names;

/* Name tables of the family files: tp's name (or its part) and Hugging Face's. */
typedef struct tp_hf_name_pair {
    const char *tp, *hf;
} tp_hf_name_pair;
/* The Hugging Face name paired with tp_name exactly; NULL when none is. */
const char *tp_hf_pair_find(const tp_hf_name_pair *pairs, size_t count, const char *tp_name);
/* A layer's parameter "<part>.<leaf>" (e.g. "self_attn.final_linear.weight"): the Hugging Face part
 * paired with <part>, with *leaf pointing at ".<leaf>"; NULL when none is. */
const char *tp_hf_pair_find_part(const tp_hf_name_pair *pairs, size_t count, const char *part, const char **leaf);

/* Loads the safetensors file at path into the model (parameters named skip_prefix... are left).
 * With a report, every tensor of the file must be used or droppable (the dropped ones are listed);
 * without one, unused tensors are ignored. */
int tp_hf_load_names(const char *path, tp_model *model, const char *skip_prefix, const tp_hf_names *names,
                     tp_hf_report *report);
/* Writes the model's parameters to path under Hugging Face's names (metadata format "pt"). */
int tp_hf_write_names(const char *path, const tp_model *model, const tp_hf_names *names);

#endif
