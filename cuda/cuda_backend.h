/* The CUDA backend's entry points (built when nvcc exists; TP_HAVE_CUDA is then defined). */
#ifndef TP_CUDA_BACKEND_H
#define TP_CUDA_BACKEND_H

#include "core/backend.h"

/* Number of visible CUDA devices (0 without a GPU or driver). */
int tp_cuda_device_count(void);
/* The CUDA kernel table, or NULL when no device is present or the table is incomplete. */
const tp_backend *tp_cuda_backend_get(void);

#endif
