/* TP_HOST_DEVICE: the qualifier of the formulas shared by the CPU kernels and the CUDA kernels
 * (core/activation_math.h, core/loss_math.h, core/crf_math.h): one definition for both compilers. */
#ifndef TP_HOST_DEVICE_H
#define TP_HOST_DEVICE_H

#ifdef __CUDACC__
#define TP_HOST_DEVICE __host__ __device__
#else
#define TP_HOST_DEVICE
#endif

#endif
