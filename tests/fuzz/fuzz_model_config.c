/* libFuzzer harness for model configs: the input is parsed as a model config file and built
 * with tp_model_build over a 40-token vocabulary, then checked for unused keys -- what
 * tp-pretrain does before it allocates anything.  Every refusal must name the file; every
 * accepted config must declare parameters with positive shapes whose sizes sum without
 * overflow.  tp_model_allocate is never called: the harness allocates no parameter memory, so a
 * config declaring a huge model costs nothing here (see docs/robustness.md: tp_model_build has no
 * limit on the total size it declares).  Build and run with tests/fuzz/run.sh model_config <seconds>. */
#include "tests/fuzz/memfile.h"

#include "core/config.h"
#include "core/error.h"
#include "core/model.h"

#include <string.h>

enum { VOCAB_SIZE = 40 };

static const char config_name[] = "fuzz_model.json";

static int refusal_names_file(void) { return strncmp(tp_last_error(), config_name, sizeof config_name - 1) == 0; }

/* Elements of one parameter's storage, or -1 on overflow or a non-positive dimension. */
static int64_t storage_numel(const tp_tensor *tensor)
{
    int64_t numel = 1;
    for (int d = 0; d < tensor->ndim; d++)
        if (tensor->shape[d] < 1 || __builtin_mul_overflow(numel, tensor->shape[d], &numel)) return -1;
    return numel;
}

static void check_params(const tp_params *params)
{
    int64_t total = 0;
    fuzz_check(params->count >= 1 && params->data == NULL);
    for (int64_t i = 0; i < params->count; i++) {
        const tp_param *param = params->items[i];
        fuzz_check(param->name && param->name[0]);
        fuzz_check(param->tensor.ndim >= 1 && param->tensor.ndim <= TP_MAX_DIMS);
        int64_t numel = storage_numel(&param->tensor);
        fuzz_check(numel > 0 && !__builtin_add_overflow(total, numel, &total));
        fuzz_check(param->logical_rows >= 1 && param->logical_rows <= param->tensor.shape[0]);
    }
    fuzz_check(tp_params_logical_count(params) <= total);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    memcpy(text, data, size);
    text[size] = '\0';
    tp_config *config = tp_config_parse(config_name, text);
    free(text);
    if (!config) {
        fuzz_check(refusal_names_file());
        return 0;
    }
    tp_model model;
    if (tp_model_build(&model, config, VOCAB_SIZE) == 0) {
        fuzz_check(model.hp.vocab_size == VOCAB_SIZE && model.hp.hidden_size % model.hp.heads_num == 0);
        fuzz_check(model.embedding_count >= 1 && model.encoder_type); /* no target: an encoder for tp-infer */
        for (int i = 0; i < model.target_count; i++) fuzz_check(tp_model_target_name(&model, i) != NULL);
        check_params(&model.params);
        if (tp_config_check_unused(config) != 0) fuzz_check(refusal_names_file());
        tp_model_free(&model);
    } else
        fuzz_check(refusal_names_file());
    tp_config_free(config);
    return 0;
}
