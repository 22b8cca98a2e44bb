/* Every model config under models/ builds, and the published architectures have the published
 * sizes: the embedding + encoder parameters of tp's model equal Hugging Face's count for the
 * same architecture (the model cards' numbers for the bare *Model, minus its pooler), after the
 * one layout difference: tp's segment embedding has 3 rows (padding, A, B) where Hugging Face
 * has type_vocab_size rows (and RoBERTa 2 more position rows, which tp's config leaves out);
 * embedding rows are embedding_size (ALBERT's emb_size) wide. */
#include <dirent.h>
#include <stdio.h>
#include <string.h>

#include "core/error.h"
#include "core/model.h"
#include "support/check.h"

typedef struct published_size {
    const char *config, *model_name;
    int64_t vocab_size, hf_parameters, hidden_size, embedding_size, type_vocab_size, extra_position_rows;
} published_size;

/* Hugging Face's parameter counts of the bare models (pooler included), from their model cards. */
static const published_size published[] = {
    {"models/bert/base_config.json", "bert-base-uncased", 30522, 109482240, 768, 768, 2, 0},
    {"models/bert/large_config.json", "bert-large-uncased", 30522, 335141888, 1024, 1024, 2, 0},
    {"models/roberta/base_config.json", "roberta-base", 50265, 124645632, 768, 768, 1, 2},
    {"models/roberta/large_config.json", "roberta-large", 50265, 355359744, 1024, 1024, 1, 2},
    {"models/albert/base_config.json", "albert-base-v2", 30000, 11683584, 768, 128, 2, 0},
    {"models/albert/large_config.json", "albert-large-v2", 30000, 17683968, 1024, 128, 2, 0},
};

static int64_t backbone_parameters(const tp_model *model)
{
    int64_t total = 0;
    for (int64_t i = 0; i < model->params.count; i++) {
        const tp_param *param = model->params.items[i];
        if (strncmp(param->name, "embedding.", 10) == 0 || strncmp(param->name, "encoder.", 8) == 0)
            total += tp_param_logical_numel(param);
    }
    return total;
}

static void check_published(const published_size *p)
{
    tp_config *config = tp_config_load(p->config);
    CHECK_MSG(config != NULL, "%s: %s", p->config, tp_last_error());
    if (!config) return;
    tp_model model;
    memset(&model, 0, sizeof model);
    int built = tp_model_build(&model, config, p->vocab_size) == 0;
    CHECK_MSG(built, "%s: %s", p->config, tp_last_error());
    if (built) {
        int64_t pooler = p->hidden_size * p->hidden_size + p->hidden_size;
        int64_t expected = p->hf_parameters - pooler +
                           (3 - p->type_vocab_size - p->extra_position_rows) * p->embedding_size;
        int64_t actual = backbone_parameters(&model);
        printf("%-36s %-20s %12lld %12lld\n", p->config, p->model_name, (long long)expected, (long long)actual);
        CHECK_MSG(actual == expected, "%s: %lld embedding+encoder parameters, %s has %lld", p->config,
                  (long long)actual, p->model_name, (long long)expected);
        tp_model_free(&model);
    }
    tp_config_free(config);
}

/* Every *.json in every folder under models/ builds with a 30522-token vocabulary. */
static void check_all_build(void)
{
    DIR *models = opendir("models");
    CHECK_MSG(models != NULL, "cannot open models/ (run from the repository root)");
    if (!models) return;
    int64_t checked = 0;
    for (struct dirent *family; (family = readdir(models));) {
        if (family->d_name[0] == '.') continue;
        char folder[512];
        snprintf(folder, sizeof folder, "models/%s", family->d_name);
        DIR *configs = opendir(folder);
        if (!configs) continue;
        for (struct dirent *entry; (entry = readdir(configs));) {
            size_t length = strlen(entry->d_name);
            if (length < 6 || strcmp(entry->d_name + length - 5, ".json") != 0) continue;
            char path[1024];
            snprintf(path, sizeof path, "%s/%s", folder, entry->d_name);
            tp_config *config = tp_config_load(path);
            tp_model model;
            memset(&model, 0, sizeof model);
            int ok = config && tp_model_build(&model, config, 30522) == 0 && tp_config_check_unused(config) == 0;
            CHECK_MSG(ok, "%s: %s", path, tp_last_error());
            if (ok) tp_model_free(&model);
            tp_config_free(config);
            checked++;
        }
        closedir(configs);
    }
    closedir(models);
    printf("%lld model configs under models/ build\n", (long long)checked);
    CHECK_MSG(checked >= 10, "only %lld configs found under models/", (long long)checked);
}

/* GPT-2 (decoder-only, tied lm head, no pooler and no segments): every parameter of tp's model
 * against Hugging Face's GPT2LMHeadModel count (= GPT2Model's: wte, wpe, the layers, ln_f). */
static const struct {
    const char *config, *model_name;
    int64_t hf_parameters;
} published_decoders[] = {
    {"models/gpt2/distil_config.json", "distilgpt2", 81912576},
    {"models/gpt2/base_config.json", "gpt2", 124439808},
    {"models/gpt2/medium_config.json", "gpt2-medium", 354823168},
    {"models/gpt2/large_config.json", "gpt2-large", 774030080},
};

static void check_published_decoder(const char *path, const char *model_name, int64_t expected)
{
    tp_config *config = tp_config_load(path);
    tp_model model;
    memset(&model, 0, sizeof model);
    int built = config && tp_model_build(&model, config, 50257) == 0;
    CHECK_MSG(built, "%s: %s", path, tp_last_error());
    if (built) {
        int64_t actual = tp_params_logical_count(&model.params);
        printf("%-36s %-20s %12lld %12lld\n", path, model_name, (long long)expected, (long long)actual);
        CHECK_MSG(actual == expected, "%s: %lld parameters, %s has %lld", path, (long long)actual, model_name,
                  (long long)expected);
        tp_model_free(&model);
    }
    tp_config_free(config);
}

/* Encoder-decoders (T5, T5 v1.1, BART; shared word table, tied head except T5 v1.1): every
 * parameter of tp's model against transformers' num_parameters() of T5ForConditionalGeneration /
 * BartForConditionalGeneration built from t5-small's, t5-base's, google/t5-v1_1-base's and
 * facebook/bart-base's configs.  BART's all-zero final_logits_bias buffer is not a parameter there
 * either.  t5-v1_1-small has 6 heads of 64 = 384 != d_model 512: attention_head_size 64. */
static const struct {
    const char *config, *model_name;
    int64_t vocab, hf_parameters;
} published_seq2seq[] = {
    {"models/t5/small_config.json", "t5-small", 32128, 60506624},
    {"models/t5/base_config.json", "t5-base", 32128, 222903552},
    {"models/t5-v1_1/base_config.json", "t5-v1_1-base", 32128, 247577856},
    {"models/t5-v1_1/small_config.json", "t5-v1_1-small", 32128, 76961152},
    /* PegasusConfig(d_model 768, 12 + 12 layers, 12 heads, ffn 3072, vocab 96103, 1024 positions):
     * 272285952 trainable parameters (its two fixed sinusoid tables excluded: tp computes them) + the
     * 96103 of final_logits_bias, a buffer there and tp's lm bias (has_lmtarget_bias). */
    {"models/pegasus/base_config.json", "pegasus (base dims)", 96103, 272285952 + 96103},
    {"models/bart/base_config.json", "bart-base", 50265, 139420416},
};

static void check_published_seq2seq(const char *path, const char *model_name, int64_t vocab, int64_t expected)
{
    tp_config *config = tp_config_load(path);
    tp_model model;
    memset(&model, 0, sizeof model);
    int built = config && tp_model_build(&model, config, vocab) == 0 && tp_config_check_unused(config) == 0;
    CHECK_MSG(built, "%s: %s", path, tp_last_error());
    if (built) {
        int64_t actual = tp_params_logical_count(&model.params);
        printf("%-36s %-20s %12lld %12lld\n", path, model_name, (long long)expected, (long long)actual);
        CHECK_MSG(actual == expected, "%s: %lld parameters, %s has %lld", path, (long long)actual, model_name,
                  (long long)expected);
    }
    tp_model_free(&model);
    tp_config_free(config);
}

/* ViT (patch + class token + positions, pre-LN encoder with its final norm, no pooler): tp's
 * embedding + encoder parameters against Hugging Face's ViTForImageClassification count with
 * ImageNet's 1000 classes (google/vit-base-patch16-224, -patch32-224), minus its one linear
 * classifier (hidden x 1000 + 1000). */
static const struct {
    const char *config, *model_name;
    int64_t hf_parameters;
} published_vits[] = {
    {"models/vit/base-16-224_config.json", "vit-base-patch16-224", 86567656},
    {"models/vit/base-32-224_config.json", "vit-base-patch32-224", 88224232},
};

static void check_published_vit(const char *path, const char *model_name, int64_t published_count)
{
    tp_config *config = tp_config_load(path);
    tp_model model;
    memset(&model, 0, sizeof model);
    int built = config && tp_model_build(&model, config, 0) == 0;
    CHECK_MSG(built, "%s: %s", path, tp_last_error());
    if (built) {
        int64_t expected = published_count - (768 * 1000 + 1000), actual = backbone_parameters(&model);
        printf("%-36s %-20s %12lld %12lld\n", path, model_name, (long long)expected, (long long)actual);
        CHECK_MSG(actual == expected, "%s: %lld embedding+encoder parameters, %s has %lld", path, (long long)actual,
                  model_name, (long long)expected);
        tp_model_free(&model);
    }
    tp_config_free(config);
}

int main(void)
{
    check_all_build();
    printf("%-36s %-20s %12s %12s\n", "config", "published as", "expected", "tp");
    for (size_t i = 0; i < sizeof published / sizeof published[0]; i++) check_published(&published[i]);
    for (size_t i = 0; i < sizeof published_decoders / sizeof published_decoders[0]; i++)
        check_published_decoder(published_decoders[i].config, published_decoders[i].model_name,
                                published_decoders[i].hf_parameters);
    for (size_t i = 0; i < sizeof published_vits / sizeof published_vits[0]; i++)
        check_published_vit(published_vits[i].config, published_vits[i].model_name, published_vits[i].hf_parameters);
    for (size_t i = 0; i < sizeof published_seq2seq / sizeof published_seq2seq[0]; i++)
        check_published_seq2seq(published_seq2seq[i].config, published_seq2seq[i].model_name,
                                published_seq2seq[i].vocab, published_seq2seq[i].hf_parameters);
    return tp_test_finish("test_model_configs");
}
