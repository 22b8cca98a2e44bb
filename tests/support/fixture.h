/* Tensors of committed fixture files (safetensors written by tests/reference/ scripts). */
#ifndef TP_TEST_FIXTURE_H
#define TP_TEST_FIXTURE_H

#include "core/error.h"
#include "core/safetensors.h"

/* The tensor named by the printf format; a missing one exits the test, naming the file, the
 * tensor and the generator script that writes the fixture. */
const tp_st_tensor *tp_fixture_tensor(const tp_st_file *file, const char *generator, const char *fmt, ...)
    TP_PRINTF(3, 4);

#endif
