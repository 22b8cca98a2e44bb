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

int main(void)
{
    check_all_build();
    printf("%-36s %-20s %12s %12s\n", "config", "published as", "expected", "tp");
    for (size_t i = 0; i < sizeof published / sizeof published[0]; i++) check_published(&published[i]);
    return tp_test_finish("test_model_configs");
}
