#include "support/fixture.h"

#include "core/backend.h"
#include "core/hf.h"
#include "support/check.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const tp_st_tensor *tp_fixture_tensor(const tp_st_file *file, const char *generator, const char *fmt, ...)
{
    char name[256];
    va_list args;
    va_start(args, fmt);
    vsnprintf(name, sizeof name, fmt, args);
    va_end(args);
    const tp_st_tensor *t = tp_st_find(file, name);
    if (!t) {
        fprintf(stderr, "%s: no tensor '%s' (rerun %s)\n", tp_st_path(file), name, generator);
        exit(1);
    }
    return t;
}

float *tp_fixture_floats(const tp_st_file *file, const char *generator, const char *name, int64_t *n)
{
    const tp_st_tensor *t = tp_fixture_tensor(file, generator, "%s", name);
    float *values = tp_xmalloc((size_t)t->numel * sizeof *values);
    memcpy(values, t->data, (size_t)t->numel * sizeof *values);
    if (n) *n = t->numel;
    return values;
}

int32_t *tp_fixture_ids(const tp_st_file *file, const char *generator, const char *name, int64_t *n)
{
    int64_t count = 0;
    float *values = tp_fixture_floats(file, generator, name, &count);
    int32_t *ids = tp_xmalloc((size_t)count * sizeof *ids);
    for (int64_t i = 0; i < count; i++) ids[i] = (int32_t)values[i];
    free(values);
    if (n) *n = count;
    return ids;
}

int tp_fixture_hf_model(const char *dir, tp_config **config, tp_model *model)
{
    int64_t vocab_size = 0;
    *config = tp_hf_config(dir);
    if (!*config || tp_config_int(*config, "vocab_size", 0, 0, INT32_MAX, &vocab_size) < 0 ||
        tp_model_build(model, *config, vocab_size) < 0 || tp_config_check_unused(*config) < 0)
        return -1;
    tp_model_allocate(model, &tp_cpu_backend, 3);
    return tp_hf_load(dir, model, NULL);
}

tp_st_file *tp_fixture_open_model(const char *dir, const char *test_name, tp_config **config, tp_model *model)
{
    char path[512];
    int loaded = tp_fixture_hf_model(dir, config, model);
    CHECK_MSG(loaded == 0, "%s: %s", dir, tp_last_error());
    snprintf(path, sizeof path, "%s/expected.safetensors", dir);
    tp_st_file *expected = tp_st_open(path);
    CHECK_MSG(expected != NULL, "%s", tp_last_error());
    if (loaded < 0 || !expected) exit(tp_test_finish(test_name));
    return expected;
}

void tp_fixture_check_same_tensors(const char *label, const char *original_path, const char *copy_path,
                                   const char *may_omit, int64_t omitted)
{
    tp_st_file *original = tp_st_open(original_path), *copy = tp_st_open(copy_path);
    CHECK_MSG(original && copy, "%s: %s", label, tp_last_error());
    if (!original || !copy) {
        if (original) tp_st_close(original);
        if (copy) tp_st_close(copy);
        return;
    }
    int64_t identical = 0, missing = 0;
    for (int64_t i = 0; i < tp_st_count(original); i++) {
        const tp_st_tensor *a = tp_st_at(original, i), *b = tp_st_find(copy, a->name);
        if (!b && may_omit && strstr(a->name, may_omit)) {
            missing++;
            continue;
        }
        int same = b && a->dtype == b->dtype && a->ndim == b->ndim &&
                   !memcmp(a->shape, b->shape, (size_t)a->ndim * sizeof *a->shape) && a->nbytes == b->nbytes &&
                   !memcmp(a->data, b->data, (size_t)a->nbytes);
        CHECK_MSG(same, "%s: tensor '%s' %s after HF -> tp -> HF", label, a->name, b ? "differs" : "is missing");
        identical += same;
    }
    CHECK_MSG(missing == omitted && identical == tp_st_count(copy),
              "%s: %lld of %lld tensors identical, %lld left out (expected %lld), %lld written back", label,
              (long long)identical, (long long)tp_st_count(original), (long long)missing, (long long)omitted,
              (long long)tp_st_count(copy));
    fprintf(stderr, "  %-28s %lld tensors bit-identical after HF -> tp -> HF\n", label, (long long)identical);
    tp_st_close(original);
    tp_st_close(copy);
}
