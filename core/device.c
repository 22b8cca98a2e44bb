/* The run-config keys `device` and `precision` (core/device.h). */
#include "device.h"

#include <string.h>

#include "error.h"
#ifdef TP_HAVE_CUDA
#include "cuda/cuda_backend.h"
#endif

static const char *const precision_names[] = {"fp32", "tf32", "bf16", NULL};
static const char *const device_names[] = {"cpu", "cuda", NULL};

const char *tp_precision_name(tp_precision precision) { return precision_names[precision]; }

const tp_backend *tp_device_open(const char *device, tp_precision precision)
{
    if (strcmp(device, "cpu") == 0) {
        if (precision != TP_PRECISION_FP32) {
            tp_fail("precision \"%s\" needs device \"cuda\" (the CPU computes in fp32)", tp_precision_name(precision));
            return NULL;
        }
        return &tp_cpu_backend;
    }
    if (strcmp(device, "cuda") != 0) {
        tp_fail("device \"%s\": expected \"cpu\" or \"cuda\"", device);
        return NULL;
    }
#ifdef TP_HAVE_CUDA
    const tp_backend *cuda = tp_cuda_backend_get();
    if (!cuda) {
        tp_fail("device \"cuda\": no CUDA device is visible (%d found)", tp_cuda_device_count());
        return NULL;
    }
    tp_cuda_set_precision(precision);
    return cuda;
#else
    tp_fail("device \"cuda\": no CUDA backend in this build (nvcc was not found when it was configured)");
    return NULL;
#endif
}

const tp_backend *tp_device_from_config(tp_config *run)
{
    int device = 0, precision = 0;
    if (tp_config_enum(run, "device", "cpu", device_names, &device) < 0 ||
        tp_config_enum(run, "precision", "fp32", precision_names, &precision) < 0)
        return NULL;
    const tp_backend *backend = tp_device_open(device_names[device], (tp_precision)precision);
    if (!backend) tp_fail_context("%s", tp_config_name(run));
    return backend;
}
