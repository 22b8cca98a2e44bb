/* NCCL collectives over device memory for data-parallel training on GPUs (core/distributed.c).
 *
 * libnccl is loaded at run time (dlopen of libnccl.so.2, or the path in TP_NCCL_LIBRARY), not
 * linked: single-GPU runs and machines without NCCL never need it, and a missing library is one
 * clear error when a multi-GPU run asks for it.  Each communicator owns a non-blocking stream; a
 * collective starts on it after the work queued on the default stream so far (so it overlaps with
 * the kernels queued after it), and tp_nccl_wait returns when every started collective is done —
 * or fails, after aborting the communicator, when one reports an error or outlives the deadline. */
#ifndef TP_CUDA_NCCL_H
#define TP_CUDA_NCCL_H

#include <stdint.h>

enum { TP_NCCL_ID_BYTES = 128 };

typedef struct tp_nccl tp_nccl;

/* A fresh unique id for tp_nccl_create (rank 0 makes it; the others receive it). -1 + message
 * when libnccl cannot be loaded. */
int tp_nccl_unique_id(unsigned char id[TP_NCCL_ID_BYTES]);
/* Joins the communicator of `size` ranks on the current CUDA device.  NULL + message. */
tp_nccl *tp_nccl_create(int rank, int size, const unsigned char id[TP_NCCL_ID_BYTES]);
void tp_nccl_free(tp_nccl *nccl);

/* Starts the in-place sum of data[0, count) over the ranks. */
int tp_nccl_all_reduce_start(tp_nccl *nccl, float *data, int64_t count, const char *what);
/* Shards: rank r owns [offsets[r], offsets[r] + lengths[r]) of a flat buffer (lengths may differ
 * and be 0).  Each starts a group of per-rank operations:
 *   reduce_scatter: shard (this rank's) = the sum over ranks of its range of full;
 *   all_gather: every rank's range of full is copied to every other rank (in place);
 *   gather: rank 0's full receives every rank's shard (other ranks pass full = NULL). */
int tp_nccl_reduce_scatter_start(tp_nccl *nccl, const float *full, float *shard, const int64_t *offsets,
                                 const int64_t *lengths, const char *what);
int tp_nccl_all_gather_start(tp_nccl *nccl, float *full, const int64_t *offsets, const int64_t *lengths,
                             const char *what);
int tp_nccl_gather_start(tp_nccl *nccl, const float *shard, float *full, const int64_t *offsets,
                         const int64_t *lengths, const char *what);
/* Blocks until every collective started so far is done; the default stream's later work sees
 * their results.  -1 + message naming `what` on an NCCL error or after timeout_seconds (> 0). */
int tp_nccl_wait(tp_nccl *nccl, double timeout_seconds, const char *what);

#endif
