/* Where a run computes: the run-config keys `device` (cpu | cuda) and `precision` (fp32 | tf32 |
 * bf16), shared by every program.
 *
 * precision names the inputs of the matrix products; everything else is fp32 on every setting:
 *   fp32  plain fp32 products (the CPU, and cuBLAS without tensor cores): the tight path that
 *         must match the CPU (docs/gpu.md)
 *   tf32  CUDA only: tensor-core products with inputs rounded to tf32 (10-bit mantissa)
 *   bf16  CUDA only: tensor-core products with inputs rounded to bf16 (7-bit mantissa); fp32
 *         accumulation, fp32 master weights, optimizer state, activations and reductions */
#ifndef TP_DEVICE_H
#define TP_DEVICE_H

#include "backend.h"
#include "config.h"

typedef enum tp_precision { TP_PRECISION_FP32, TP_PRECISION_TF32, TP_PRECISION_BF16 } tp_precision;

/* The backend for `device` with `precision` set up on it; NULL + a message naming the key and
 * why (an unknown name, a build without CUDA, no visible GPU, a CPU run asking for tf32/bf16). */
const tp_backend *tp_device_open(const char *device, tp_precision precision);
/* Reads `device` (cpu) and `precision` (fp32) from a run config and opens the backend. */
const tp_backend *tp_device_from_config(tp_config *run);
const char *tp_precision_name(tp_precision precision);

#endif
