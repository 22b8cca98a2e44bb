/* Data-parallel communication: the process group a launcher set up, and the collectives the
 * trainer needs (docs/distributed.md).
 *
 * One communicator per process.  tp_comm_open() joins MPI when the environment shows a
 * launcher (mpirun: OMPI_COMM_WORLD_SIZE; MPICH/Hydra: PMI_SIZE; PMIx: PMIX_RANK; srun:
 * SLURM_STEP_NUM_TASKS) and the build has MPI (TP_HAVE_MPI); otherwise it is a world of one
 * that never touches MPI, so single-process runs and builds without MPI take the same code
 * path (every collective of a world of one returns at once).
 *
 * No wait hangs: MPI's errors are returned (MPI_ERRORS_RETURN), every wait polls its requests
 * against a deadline (timeout_seconds, the run-config key dist_timeout), and a wait that errs or
 * outlives it fails with a message naming this rank and the operation.  The program then calls
 * tp_comm_abort(), which takes the whole job down (MPI_Abort): a rank that dies or hangs makes
 * every other rank exit within dist_timeout.  tp_cli_main() does this for the tp programs.
 *
 * Float buffers (gradients, parameters, moments) live in the memory of the tp_backend named when
 * a gradient synchroniser is created.  Host memory (tp_cpu_backend) moves over MPI; device memory
 * over NCCL (cuda/cuda_nccl.h, CUDA builds), whose communicator the first synchroniser over device
 * memory opens (rank 0's unique id broadcast over MPI).  From then on the shard collectives move
 * device memory too.  TP_NCCL=1 in the environment takes the NCCL path even for a world of one
 * (the GPU suite's check of it on one GPU). */
#ifndef TP_DISTRIBUTED_H
#define TP_DISTRIBUTED_H

#include <stdint.h>

#include "backend.h"

typedef struct tp_comm tp_comm;

/* Returns the process's communicator, joining MPI on the first call; timeout_seconds > 0 bounds
 * every later wait.  NULL + message when launched as one of several processes by a build without
 * MPI, or when MPI fails to start. */
tp_comm *tp_comm_open(double timeout_seconds);
/* The communicator if tp_comm_open succeeded, else NULL. */
tp_comm *tp_comm_current(void);
int tp_comm_rank(const tp_comm *comm);
int tp_comm_size(const tp_comm *comm);
/* Seconds spent waiting on other ranks since the communicator opened (communication that did not
 * overlap with computation). */
double tp_comm_wait_seconds(const tp_comm *comm);

/* In place: values becomes their sum over all ranks (host memory).  what names the operation in
 * errors ("metrics of step 7"). */
int tp_comm_sum(tp_comm *comm, double *values, int64_t count, const char *what);
/* Copies root's bytes (host memory) to every rank. */
int tp_comm_broadcast(tp_comm *comm, void *data, int64_t bytes, int root, const char *what);
/* Returns when every rank has called it (or fails after the deadline). */
int tp_comm_barrier(tp_comm *comm, const char *what);
/* Leaves the process group cleanly: a barrier, then MPI_Finalize.  -1 + message when another rank
 * does not arrive in time (call tp_comm_abort then).  Nothing to do for a world of one without MPI. */
int tp_comm_finish(void);
/* Ends the job after a failure on this rank: MPI_Abort, which stops every rank, when the world has
 * more than one; MPI_Finalize otherwise.  Returns (without MPI nothing happens). */
void tp_comm_abort(int status);

/* ZeRO-1 shards: rank r owns floats [offset, offset + length) of a flat buffer of count floats,
 * where every shard has ceil(count / size) floats except the last ranks' (shorter, maybe empty). */
void tp_comm_shard(const tp_comm *comm, int64_t count, int64_t *offset, int64_t *length);
/* shard = this rank's shard of the sum over ranks of full (count floats each). */
int tp_comm_reduce_scatter(tp_comm *comm, const float *full, float *shard, int64_t count, const char *what);
/* In place: every rank's shard of full is copied to every other rank. */
int tp_comm_all_gather(tp_comm *comm, float *full, int64_t count, const char *what);
/* Rank 0's full (count floats) receives every rank's shard; other ranks pass full = NULL. */
int tp_comm_gather(tp_comm *comm, const float *shard, float *full, int64_t count, const char *what);

/* The bucketed gradient all-reduce.  The flat buffer grad[0, count) is cut into buckets of
 * bucket_bytes (the last shorter); each bucket's sum over ranks starts (non-blocking) as soon as
 * the caller says its gradients are final, so the reduction of late layers runs while backward
 * still computes earlier ones.  The buffer must stay untouched from a bucket's start until
 * tp_grad_sync_finish returns. */
typedef struct tp_grad_sync tp_grad_sync;

/* Lets the collectives move `memory`: opens NCCL when it is device memory on more than one rank
 * (or with TP_NCCL=1); nothing for host memory.  Needed before the shard collectives above (ZeRO-1)
 * or tp_all_gather_rows run on device memory.  -1 + message when this build cannot move it. */
int tp_comm_use_memory(tp_comm *comm, const tp_backend *memory);
/* 1 when training must synchronise gradients: more than one rank, or device memory with TP_NCCL=1. */
int tp_grad_sync_needed(const tp_comm *comm, const tp_backend *memory);
/* NULL + message when memory is not one this build can move (see above). */
tp_grad_sync *tp_grad_sync_create(tp_comm *comm, const tp_backend *memory, float *grad, int64_t count,
                                  int64_t bucket_bytes);
void tp_grad_sync_free(tp_grad_sync *sync);
int64_t tp_grad_sync_bucket_count(const tp_grad_sync *sync);
/* Bucket b covers grad[*offset, *offset + *length). */
void tp_grad_sync_bucket(const tp_grad_sync *sync, int64_t bucket, int64_t *offset, int64_t *length);
/* Starts bucket b's all-reduce (once per round; starting a started bucket does nothing). */
int tp_grad_sync_start(tp_grad_sync *sync, int64_t bucket);
/* Lets started reductions progress (MPI progresses inside MPI calls); call between kernels. */
int tp_grad_sync_progress(tp_grad_sync *sync);
/* Starts the buckets not started yet, waits for all and ends the round: grad holds the sums. */
int tp_grad_sync_finish(tp_grad_sync *sync);

#endif
