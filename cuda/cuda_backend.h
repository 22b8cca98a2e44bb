/* The CUDA backend's entry points (built when nvcc exists; TP_HAVE_CUDA is then defined). */
#ifndef TP_CUDA_BACKEND_H
#define TP_CUDA_BACKEND_H

#include "core/backend.h"
#include "core/device.h"

/* Number of visible CUDA devices (0 without a GPU or driver). */
int tp_cuda_device_count(void);
/* The CUDA kernel table, or NULL when no device is present or the table is incomplete. */
const tp_backend *tp_cuda_backend_get(void);
/* The input precision of every matrix product from now on (core/device.h); fp32 at start. */
void tp_cuda_set_precision(tp_precision precision);
/* Dense peak FLOP/s of device 0's matrix products at that precision, from its properties (SM
 * count, peak clock, compute capability); 0 for an architecture whose per-SM rate is not known. */
double tp_cuda_peak_flops(tp_precision precision);

#endif
