/* Hugging Face GPT-2 <-> tp: config.json, names and Conv1D layouts (core/hf_gpt2.h). */
#include "hf_gpt2.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "hf.h"
#include "safetensors.h"

#define NAME_CAP 256

/* One tp parameter as (part of) one Hugging Face tensor.  A transposed piece is the tp weight
 * [out, in] stored as columns [offset, offset + out) of the Hugging Face [in, columns] tensor; an
 * untransposed one is the tp tensor's values at element offset of the Hugging Face tensor. */
typedef struct gpt2_piece {
    char tp[NAME_CAP], hf[NAME_CAP];
    int ndim;
    int64_t hf_shape[2];
    int64_t offset;
    int transpose;
} gpt2_piece;

typedef struct piece_list {
    gpt2_piece *items;
    int64_t count;
} piece_list;

static gpt2_piece *add_piece(piece_list *list, const char *tp, const char *hf, int ndim, int64_t rows, int64_t cols,
                             int64_t offset, int transpose)
{
    gpt2_piece *piece = &list->items[list->count++];
    snprintf(piece->tp, sizeof piece->tp, "%s", tp);
    snprintf(piece->hf, sizeof piece->hf, "%s", hf);
    piece->ndim = ndim;
    piece->hf_shape[0] = rows;
    piece->hf_shape[1] = cols;
    piece->offset = offset;
    piece->transpose = transpose;
    return piece;
}

/* A torch module "<hf>.{weight,bias}" copied as it is. */
static void add_copied(piece_list *list, const char *tp, const char *hf, int64_t size)
{
    char tp_name[NAME_CAP], hf_name[NAME_CAP];
    snprintf(tp_name, sizeof tp_name, "%s.weight", tp), snprintf(hf_name, sizeof hf_name, "%s.weight", hf);
    add_piece(list, tp_name, hf_name, 1, size, 0, 0, 0);
    snprintf(tp_name, sizeof tp_name, "%s.bias", tp), snprintf(hf_name, sizeof hf_name, "%s.bias", hf);
    add_piece(list, tp_name, hf_name, 1, size, 0, 0, 0);
}

/* A Conv1D "<hf>" [in, columns] holding tp's linear "<tp>" [out, in] at columns [offset, offset + out). */
static void add_conv1d(piece_list *list, const char *tp, const char *hf, int64_t in, int64_t out, int64_t columns,
                       int64_t offset)
{
    char tp_name[NAME_CAP], hf_name[NAME_CAP];
    snprintf(tp_name, sizeof tp_name, "%s.weight", tp), snprintf(hf_name, sizeof hf_name, "%s.weight", hf);
    add_piece(list, tp_name, hf_name, 2, in, columns, offset, 1);
    snprintf(tp_name, sizeof tp_name, "%s.bias", tp), snprintf(hf_name, sizeof hf_name, "%s.bias", hf);
    add_piece(list, tp_name, hf_name, 1, columns, 0, offset, 0);
}

/* Every piece of the model, in Hugging Face's module order; prefix "transformer." or "". */
static piece_list model_pieces(const tp_model *model, const char *prefix)
{
    const tp_model_config *hp = &model->hp;
    int64_t hidden = hp->hidden_size, ff = hp->feedforward_size;
    piece_list list = {tp_xcalloc((size_t)(16 * hp->layers_num + 6), sizeof(gpt2_piece)), 0};
    char tp[NAME_CAP], hf[NAME_CAP];
    snprintf(hf, sizeof hf, "%swte.weight", prefix);
    add_piece(&list, "embedding.word.embedding.weight", hf, 2, hp->vocab_size, hidden, 0, 0);
    snprintf(hf, sizeof hf, "%swpe.weight", prefix);
    add_piece(&list, "embedding.pos.embedding.weight", hf, 2, hp->max_seq_length, hidden, 0, 0);
    for (int64_t i = 0; i < hp->layers_num; i++) {
        char tp_layer[NAME_CAP], hf_layer[NAME_CAP];
        snprintf(tp_layer, sizeof tp_layer, "encoder.transformer.%lld", (long long)i);
        snprintf(hf_layer, sizeof hf_layer, "%sh.%lld", prefix, (long long)i);
        snprintf(tp, sizeof tp, "%s.layer_norm_1", tp_layer), snprintf(hf, sizeof hf, "%s.ln_1", hf_layer);
        add_copied(&list, tp, hf, hidden);
        snprintf(hf, sizeof hf, "%s.attn.c_attn", hf_layer);
        for (int j = 0; j < 3; j++) {
            snprintf(tp, sizeof tp, "%s.self_attn.linear_layers.%d", tp_layer, j);
            add_conv1d(&list, tp, hf, hidden, hidden, 3 * hidden, j * hidden);
        }
        snprintf(tp, sizeof tp, "%s.self_attn.final_linear", tp_layer), snprintf(hf, sizeof hf, "%s.attn.c_proj", hf_layer);
        add_conv1d(&list, tp, hf, hidden, hidden, hidden, 0);
        snprintf(tp, sizeof tp, "%s.layer_norm_2", tp_layer), snprintf(hf, sizeof hf, "%s.ln_2", hf_layer);
        add_copied(&list, tp, hf, hidden);
        snprintf(tp, sizeof tp, "%s.feed_forward.linear_1", tp_layer), snprintf(hf, sizeof hf, "%s.mlp.c_fc", hf_layer);
        add_conv1d(&list, tp, hf, hidden, ff, ff, 0);
        snprintf(tp, sizeof tp, "%s.feed_forward.linear_2", tp_layer), snprintf(hf, sizeof hf, "%s.mlp.c_proj", hf_layer);
        add_conv1d(&list, tp, hf, ff, hidden, hidden, 0);
    }
    snprintf(hf, sizeof hf, "%sln_f", prefix);
    add_copied(&list, "encoder.layer_norm", hf, hidden);
    if (tp_params_find(&model->params, "target.lm.output_layer.weight"))
        add_piece(&list, "target.lm.output_layer.weight", "lm_head.weight", 2, hp->vocab_size, hidden, 0, 0);
    return list;
}

static const gpt2_piece *piece_of(const piece_list *list, const char *tp_name)
{
    for (int64_t i = 0; i < list->count; i++)
        if (!strcmp(list->items[i].tp, tp_name)) return &list->items[i];
    return NULL;
}

/* Moves one piece between the Hugging Face tensor hf and the tp tensor tp (logical rows x cols). */
static void move_piece(const gpt2_piece *piece, float *hf, float *tp, int64_t rows, int64_t cols, int to_hf)
{
    if (!piece->transpose) {
        float *dst = to_hf ? hf + piece->offset : tp, *src = to_hf ? tp : hf + piece->offset;
        memcpy(dst, src, (size_t)(rows * cols) * sizeof *dst);
        return;
    }
    int64_t columns = piece->hf_shape[1]; /* tp [out = rows, in = cols] <-> hf [in, columns] */
    for (int64_t o = 0; o < rows; o++)
        for (int64_t i = 0; i < cols; i++) {
            float *h = hf + i * columns + piece->offset + o, *t = tp + o * cols + i;
            if (to_hf)
                *h = *t;
            else
                *t = *h;
        }
}

static int64_t piece_numel(const gpt2_piece *piece) { return piece->hf_shape[0] * (piece->ndim == 2 ? piece->hf_shape[1] : 1); }

/* ---- config.json -> tp ---------------------------------------------------------- */

int tp_hf_gpt2_is(const cJSON *root)
{
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(root, "model_type");
    return cJSON_IsString(type) && !strcmp(type->valuestring, "gpt2");
}

/* An integer key with GPT2Config's default (save_pretrained leaves out keys at their default). */
/* A boolean key that must have the value tp implements. */
static int config_flag(const char *path, const cJSON *root, const char *key, int supported, int fallback, int *out)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(root, key);
    *out = fallback;
    if (item && !cJSON_IsBool(item)) return tp_fail("%s: key '%s': expected true or false", path, key);
    if (item) *out = cJSON_IsTrue(item);
    if (supported >= 0 && *out != supported)
        return tp_fail("%s: key '%s': only %s is supported", path, key, supported ? "true" : "false");
    return 0;
}

int tp_hf_gpt2_config(const char *path, const cJSON *root, cJSON *tp)
{
    int64_t hidden, layers, heads, inner, vocab, positions;
    double eps, dropout;
    int lm_head = 0, tie = 1, flag = 0;
    const cJSON *act = cJSON_GetObjectItemCaseSensitive(root, "activation_function");
    const char *act_name = cJSON_IsString(act) ? act->valuestring : act ? "" : "gelu_new";
    const char *tp_act = tp_hf_activation_to_tp(act_name);
    if (tp_hf_json_range(path, root, "n_embd", 768, 1, 1 << 16, &hidden) < 0 ||
        tp_hf_json_range(path, root, "n_layer", 12, 1, 1024, &layers) < 0 ||
        tp_hf_json_range(path, root, "n_head", 12, 1, 1024, &heads) < 0 ||
        tp_hf_json_range(path, root, "n_inner", 4 * hidden, 1, 1 << 20, &inner) < 0 ||
        tp_hf_json_range(path, root, "vocab_size", 50257, 1, INT32_MAX, &vocab) < 0 ||
        tp_hf_json_range(path, root, "n_positions", 1024, 1, 1 << 20, &positions) < 0 ||
        tp_hf_json_number(path, root, "layer_norm_epsilon", 1e-5, &eps) < 0 ||
        tp_hf_json_number(path, root, "resid_pdrop", 0.1, &dropout) < 0 ||
        config_flag(path, root, "scale_attn_weights", 1, 1, &flag) < 0 ||
        config_flag(path, root, "scale_attn_by_inverse_layer_idx", 0, 0, &flag) < 0 ||
        config_flag(path, root, "add_cross_attention", 0, 0, &flag) < 0 ||
        config_flag(path, root, "tie_word_embeddings", -1, 1, &tie) < 0 ||
        tp_hf_headed_architecture(path, root, "GPT2Model", "GPT2LMHeadModel", &lm_head) < 0)
        return -1;
    if (!tp_act)
        return tp_fail("%s: key 'activation_function': '%s' is not supported (supported: gelu_new, "
                       "gelu_pytorch_tanh, gelu, relu, silu, swish)", path, act_name);
    static const char *const embedding[] = {"word", "pos"}, *const target[] = {"lm"};
    cJSON_AddNumberToObject(tp, "emb_size", (double)hidden);
    cJSON_AddNumberToObject(tp, "hidden_size", (double)hidden);
    cJSON_AddNumberToObject(tp, "feedforward_size", (double)inner);
    cJSON_AddNumberToObject(tp, "heads_num", (double)heads);
    cJSON_AddNumberToObject(tp, "layers_num", (double)layers);
    cJSON_AddNumberToObject(tp, "vocab_size", (double)vocab);
    cJSON_AddNumberToObject(tp, "max_seq_length", (double)positions);
    cJSON_AddNumberToObject(tp, "dropout", dropout);
    cJSON_AddStringToObject(tp, "hidden_act", tp_act);
    cJSON_AddItemToObject(tp, "embedding", cJSON_CreateStringArray(embedding, 2));
    cJSON_AddBoolToObject(tp, "remove_embedding_layernorm", 1);
    cJSON_AddStringToObject(tp, "encoder", "transformer");
    cJSON_AddStringToObject(tp, "mask", "causal");
    cJSON_AddStringToObject(tp, "layernorm_positioning", "pre");
    cJSON_AddStringToObject(tp, "layernorm", "normal_torch");
    cJSON_AddNumberToObject(tp, "layernorm_eps", eps);
    if (lm_head) {
        cJSON_AddItemToObject(tp, "target", cJSON_CreateStringArray(target, 1));
        cJSON_AddBoolToObject(tp, "tie_weights", tie);
    }
    return 0;
}

/* ---- weights in ------------------------------------------------------------------ */

int tp_hf_gpt2_model(const tp_model *model) { return model->hp.mask == TP_MASK_CAUSAL; }

/* Buffers older files saved, and the copy of a tied lm_head. */
static int droppable(const char *name, const tp_model *model)
{
    static const char *const suffixes[] = {".attn.bias", ".attn.masked_bias", NULL};
    size_t length = strlen(name);
    for (const char *const *suffix = suffixes; *suffix; suffix++) {
        size_t suffix_length = strlen(*suffix);
        if (length > suffix_length && !strcmp(name + length - suffix_length, *suffix)) return 1;
    }
    return !strcmp(name, "lm_head.weight") && model->hp.tie_weights;
}

static int check_all_used(const tp_st_file *file, const piece_list *pieces, const tp_model *model,
                          tp_hf_report *report)
{
    for (int64_t i = 0; i < tp_st_count(file); i++) {
        const char *name = tp_st_at(file, i)->name;
        int used = 0;
        for (int64_t p = 0; p < pieces->count && !used; p++) used = !strcmp(pieces->items[p].hf, name);
        if (used) continue;
        if (!droppable(name, model))
            return tp_fail("%s: tensor '%s' has no counterpart in tp's gpt2 model with these heads", tp_st_path(file),
                           name);
        size_t at = strlen(report->dropped_names), cap = sizeof report->dropped_names;
        if (at + strlen(name) + 8 < cap) snprintf(report->dropped_names + at, cap - at, "%s%s", at ? ", " : "", name);
        report->dropped++;
    }
    return 0;
}

static int load_piece(const tp_st_file *file, const gpt2_piece *piece, tp_params *params, tp_param *param)
{
    int64_t rows = param->logical_rows, cols = tp_numel(&param->tensor) / param->tensor.shape[0];
    float *hf = tp_xmalloc((size_t)piece_numel(piece) * sizeof *hf);
    float *tp = tp_xcalloc((size_t)tp_numel(&param->tensor), sizeof *tp);
    int status = tp_st_find(file, piece->hf) ? tp_st_read_f32(file, piece->hf, piece->ndim, piece->hf_shape, hf)
                                             : tp_fail("%s: tensor '%s' is missing", tp_st_path(file), piece->hf);
    if (status == 0) {
        move_piece(piece, hf, tp, rows, cols, 0);
        params->backend->upload(param->tensor.data, tp, (size_t)tp_numel(&param->tensor) * sizeof *tp);
    }
    free(hf);
    free(tp);
    return status;
}

int tp_hf_gpt2_load(const char *path, tp_model *model, const char *skip_prefix, tp_hf_report *report)
{
    tp_st_file *file = tp_st_open(path);
    if (!file) return -1;
    piece_list pieces = model_pieces(model, tp_st_find(file, "transformer.wte.weight") ? "transformer." : "");
    tp_params *params = &model->params;
    int status = 0;
    for (int64_t i = 0; i < params->count && status == 0; i++) {
        tp_param *param = params->items[i];
        if (skip_prefix && !strncmp(param->name, skip_prefix, strlen(skip_prefix))) continue;
        const gpt2_piece *piece = piece_of(&pieces, param->name);
        status = piece ? load_piece(file, piece, params, param)
                       : tp_fail("%s: tp parameter '%s' has no Hugging Face counterpart in a gpt2 model", path,
                                 param->name);
        if (status == 0 && report) report->written++;
    }
    if (status == 0 && report) status = check_all_used(file, &pieces, model, report);
    free(pieces.items);
    tp_st_close(file);
    return status;
}

/* ---- tp -> Hugging Face ------------------------------------------------------------ */

static int refuse(tp_config *config, const char *key, const char *why)
{
    return tp_fail("%s: key '%s': %s (Hugging Face's GPT-2 has no equivalent)", tp_config_name(config), key, why);
}

int tp_hf_gpt2_architecture(const tp_model *model, tp_config *config, const char **architecture)
{
    const tp_model_config *hp = &model->hp;
    if (!hp->layernorm_pre) return refuse(config, "layernorm_positioning", "needs pre");
    if (hp->layernorm != TP_NORM_TORCH) return refuse(config, "layernorm", "needs normal_torch");
    if (!hp->remove_embedding_layernorm) return refuse(config, "remove_embedding_layernorm", "needs true");
    if (hp->remove_transformer_bias) return refuse(config, "remove_transformer_bias", "needs false");
    if (hp->parameter_sharing) return refuse(config, "parameter_sharing", "needs false");
    if (hp->factorized_embedding_parameterization)
        return refuse(config, "factorized_embedding_parameterization", "needs false");
    if (hp->position_offset) return refuse(config, "position_offset", "needs 0");
    if (model->embedding_count != 2 || !tp_params_find(&model->params, "embedding.pos.embedding.weight"))
        return refuse(config, "embedding", "needs word and pos");
    if (model->target_count > 1 || (model->target_count == 1 && strcmp(tp_model_target_name(model, 0), "lm")))
        return refuse(config, "target", "needs lm or none");
    *architecture = model->target_count ? "GPT2LMHeadModel" : "GPT2Model";
    return 0;
}

void tp_hf_gpt2_config_json(const tp_model *model, tp_config *config, const char *architecture, cJSON *hf)
{
    const tp_model_config *hp = &model->hp;
    double dropout = 0.1;
    tp_config_double(config, "dropout", 0.1, 0.0, 1.0, &dropout);
    const char *names[1] = {architecture};
    tp_hf_put(hf, "architectures", cJSON_CreateStringArray(names, 1));
    tp_hf_put(hf, "model_type", cJSON_CreateString("gpt2"));
    tp_hf_put(hf, "vocab_size", cJSON_CreateNumber((double)hp->vocab_size));
    tp_hf_put(hf, "n_embd", cJSON_CreateNumber((double)hp->hidden_size));
    tp_hf_put(hf, "n_layer", cJSON_CreateNumber((double)hp->layers_num));
    tp_hf_put(hf, "n_head", cJSON_CreateNumber((double)hp->heads_num));
    tp_hf_put(hf, "n_inner", cJSON_CreateNumber((double)hp->feedforward_size));
    tp_hf_put(hf, "n_positions", cJSON_CreateNumber((double)hp->max_seq_length));
    tp_hf_put(hf, "activation_function", cJSON_CreateString(tp_hf_activation_name(hp->hidden_act)));
    tp_hf_put(hf, "resid_pdrop", cJSON_CreateNumber(dropout));
    if (!cJSON_GetObjectItemCaseSensitive(hf, "embd_pdrop")) tp_hf_put(hf, "embd_pdrop", cJSON_CreateNumber(dropout));
    if (!cJSON_GetObjectItemCaseSensitive(hf, "attn_pdrop")) tp_hf_put(hf, "attn_pdrop", cJSON_CreateNumber(dropout));
    tp_hf_put(hf, "layer_norm_epsilon", cJSON_CreateNumber(hp->layernorm_eps));
    tp_hf_put(hf, "tie_word_embeddings", cJSON_CreateBool(model->target_count == 0 || hp->tie_weights));
}

int tp_hf_gpt2_write_weights(const char *path, const tp_model *model)
{
    const tp_params *params = &model->params;
    const char *prefix = model->target_count ? "transformer." : "";
    piece_list pieces = model_pieces(model, prefix);
    float *host = tp_xmalloc((size_t)params->total * sizeof *host);
    params->backend->download(host, params->data, (size_t)params->total * sizeof *host);
    /* One buffer per Hugging Face tensor, held by its first piece. */
    float **tensors = tp_xcalloc((size_t)pieces.count, sizeof *tensors);
    tp_st_writer *writer = tp_st_writer_new();
    int status = 0;
    for (int64_t i = 0; i < params->count && status == 0; i++)
        if (!piece_of(&pieces, params->items[i]->name))
            status = tp_fail("%s: tp parameter '%s' has no Hugging Face counterpart in a gpt2 model", path,
                             params->items[i]->name);
    for (int64_t p = 0; p < pieces.count && status == 0; p++) {
        const gpt2_piece *piece = &pieces.items[p];
        const tp_param *param = tp_params_find(params, piece->tp);
        int64_t owner = 0;
        while (strcmp(pieces.items[owner].hf, piece->hf)) owner++;
        if (!param) {
            status = tp_fail("%s: the model lacks '%s' (Hugging Face's '%s')", path, piece->tp, piece->hf);
            break;
        }
        if (owner == p) {
            tensors[p] = tp_xmalloc((size_t)piece_numel(piece) * sizeof(float));
            tp_st_writer_add(writer, piece->hf, TP_ST_F32, piece->ndim, piece->hf_shape, tensors[p]);
        }
        int64_t cols = tp_numel(&param->tensor) / param->tensor.shape[0];
        move_piece(piece, tensors[owner], host + param->offset, param->logical_rows, cols, 1);
    }
    tp_st_writer_metadata(writer, "format", "pt"); /* transformers refuses safetensors files without it */
    if (status == 0) status = tp_st_writer_save(writer, path);
    tp_st_writer_free(writer);
    for (int64_t p = 0; p < pieces.count; p++) free(tensors[p]);
    free(tensors);
    free(host);
    free(pieces.items);
    return status;
}
