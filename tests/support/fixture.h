/* Tensors of committed fixture files (safetensors written by tests/reference/ scripts). */
#ifndef TP_TEST_FIXTURE_H
#define TP_TEST_FIXTURE_H

#include "core/config.h"
#include "core/error.h"
#include "core/model.h"
#include "core/safetensors.h"

/* The tensor named by the printf format; a missing one exits the test, naming the file, the
 * tensor and the generator script that writes the fixture. */
const tp_st_tensor *tp_fixture_tensor(const tp_st_file *file, const char *generator, const char *fmt, ...)
    TP_PRINTF(3, 4);
/* A tensor's values as floats, copied (the mapping need not be aligned); n (if not NULL) gets
 * their number.  Exits like tp_fixture_tensor when it is missing.  The caller frees. */
float *tp_fixture_floats(const tp_st_file *file, const char *generator, const char *name, int64_t *n);
/* The same values as int32 ids (fixtures store ids as floats). */
int32_t *tp_fixture_ids(const tp_st_file *file, const char *generator, const char *name, int64_t *n);

/* A Hugging Face fixture directory as a tp model on the CPU: config.json converted (every key used),
 * the model built with its vocab_size (0 when it has none: image models), the weights loaded.  -1 with tp's error message otherwise;
 * *config is the caller's to free either way. */
int tp_fixture_hf_model(const char *dir, tp_config **config, tp_model *model);
/* tp_fixture_hf_model, and the directory's expected.safetensors opened; when either fails, the
 * check fails naming it and the test ends (exit with tp_test_finish(test_name)'s status). */
tp_st_file *tp_fixture_open_model(const char *dir, const char *test_name, tp_config **config, tp_model *model);

/* Checks (CHECK) that copy_path holds the tensors of original_path and no others: names, dtypes,
 * shapes and bytes (a Hugging Face -> tp -> Hugging Face round trip), except that exactly
 * `omitted` tensors whose names contain may_omit (NULL: none) are missing from the copy (Pegasus'
 * sinusoidal positions, which tp computes); prints how many are bit-identical after label. */
void tp_fixture_check_same_tensors(const char *label, const char *original_path, const char *copy_path,
                                   const char *may_omit, int64_t omitted);

#endif
