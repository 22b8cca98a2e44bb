/* The communicator of core/distributed.h: MPI when built with it and launched by mpirun or srun,
 * else a world of one.  Device memory moves over NCCL (cuda/cuda_nccl.h), bootstrapped over MPI. */
#include "distributed.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "error.h"

#ifdef TP_HAVE_MPI
#include <mpi.h>
#endif
#ifdef TP_HAVE_CUDA
#include "cuda/cuda_nccl.h"
#endif

struct tp_comm {
    int rank, size;
    int mpi;                /* 1: MPI_Init was called by tp_comm_open */
    double timeout_seconds; /* deadline of every wait */
    double wait_seconds;    /* total time spent in waits */
#ifdef TP_HAVE_CUDA
    tp_nccl *nccl; /* once a gradient synchroniser over device memory made it */
#endif
};

static tp_comm process_comm;
static int process_comm_open;

/* The launcher's variables: *size = the world size it announces (0 when it names none).
 * Returns the variable found, NULL when no launcher started this process. */
static const char *launcher_variable(long *size)
{
    static const char *const sizes[] = {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "SLURM_STEP_NUM_TASKS", NULL};
    for (int i = 0; sizes[i]; i++) {
        const char *value = getenv(sizes[i]);
        if (value && *value) {
            *size = strtol(value, NULL, 10);
            return sizes[i];
        }
    }
    *size = 0;
    return getenv("PMIX_RANK") ? "PMIX_RANK" : NULL;
}

#ifdef TP_HAVE_MPI

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int mpi_fail(const tp_comm *comm, int code, const char *what)
{
    char text[MPI_MAX_ERROR_STRING];
    int length = 0;
    if (MPI_Error_string(code, text, &length) != MPI_SUCCESS) snprintf(text, sizeof text, "MPI error %d", code);
    return tp_fail("rank %d: %s: %s (a rank may have died)", comm->rank, what, text);
}

static int start_mpi(tp_comm *comm)
{
    int provided = 0, initialised = 0;
    MPI_Initialized(&initialised);
    /* Only the main thread calls MPI; OpenMP threads run the kernels in between. */
    if (!initialised && MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS)
        return tp_fail("MPI_Init failed");
    comm->mpi = 1;
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    MPI_Comm_rank(MPI_COMM_WORLD, &comm->rank);
    MPI_Comm_size(MPI_COMM_WORLD, &comm->size);
    return 0;
}

/* Polls requests until all are complete, an error, or the deadline: busy for the first
 * millisecond (collectives of small buffers finish in microseconds), then sleeping 50 us
 * between polls so that a rank waiting for a checkpoint write leaves its core to others. */
static int wait_requests(tp_comm *comm, MPI_Request *requests, int count, const char *what)
{
    double start = now_seconds(), deadline = start + comm->timeout_seconds;
    const struct timespec pause = {0, 50000};
    for (;;) {
        int done = 0;
        int code = MPI_Testall(count, requests, &done, MPI_STATUSES_IGNORE);
        double now = now_seconds();
        if (code != MPI_SUCCESS) return mpi_fail(comm, code, what);
        if (done) {
            comm->wait_seconds += now - start;
            return 0;
        }
        if (now > deadline)
            return tp_fail("rank %d: %s: no answer from the other ranks within dist_timeout %g s (a rank died, hangs or "
                           "is much slower); stopping all ranks",
                           comm->rank, what, comm->timeout_seconds);
        if (now - start > 1e-3) nanosleep(&pause, NULL);
    }
}

static int check_count(const tp_comm *comm, int64_t count, const char *what)
{
    return count <= INT_MAX ? 0 : tp_fail("rank %d: %s: %lld elements exceed MPI's int counts", comm->rank, what,
                                          (long long)count);
}

#endif

tp_comm *tp_comm_open(double timeout_seconds)
{
    tp_comm *comm = &process_comm;
    if (!process_comm_open) {
        long launcher_size = 0;
        const char *launcher = launcher_variable(&launcher_size);
        memset(comm, 0, sizeof *comm);
        comm->size = 1;
#ifdef TP_HAVE_MPI
        if (launcher && start_mpi(comm) < 0) return NULL;
#else
        if (launcher && launcher_size > 1) {
            tp_fail("launched as one of %ld processes (%s), but this build has no MPI: install an MPI (e.g. "
                    "libopenmpi-dev) and rebuild, or run one process",
                    launcher_size, launcher);
            return NULL;
        }
#endif
        process_comm_open = 1;
    }
    comm->timeout_seconds = timeout_seconds;
    return comm;
}

tp_comm *tp_comm_current(void) { return process_comm_open ? &process_comm : NULL; }
int tp_comm_rank(const tp_comm *comm) { return comm->rank; }
int tp_comm_size(const tp_comm *comm) { return comm->size; }
double tp_comm_wait_seconds(const tp_comm *comm) { return comm->wait_seconds; }

int tp_comm_sum(tp_comm *comm, double *values, int64_t count, const char *what)
{
    if (comm->size == 1) return 0;
#ifdef TP_HAVE_MPI
    MPI_Request request;
    if (check_count(comm, count, what) < 0) return -1;
    int code = MPI_Iallreduce(MPI_IN_PLACE, values, (int)count, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD, &request);
    return code != MPI_SUCCESS ? mpi_fail(comm, code, what) : wait_requests(comm, &request, 1, what);
#else
    return 0;
#endif
}

int tp_comm_broadcast(tp_comm *comm, void *data, int64_t bytes, int root, const char *what)
{
    if (comm->size == 1) return 0;
#ifdef TP_HAVE_MPI
    /* In pieces of at most 1 GiB: MPI counts are ints. */
    const int64_t piece = INT64_C(1) << 30;
    for (int64_t done = 0; done < bytes; done += piece) {
        int64_t length = bytes - done < piece ? bytes - done : piece;
        MPI_Request request;
        int code = MPI_Ibcast((char *)data + done, (int)length, MPI_BYTE, root, MPI_COMM_WORLD, &request);
        if (code != MPI_SUCCESS) return mpi_fail(comm, code, what);
        if (wait_requests(comm, &request, 1, what) < 0) return -1;
    }
#endif
    return 0;
}

int tp_comm_barrier(tp_comm *comm, const char *what)
{
    if (comm->size == 1) return 0;
#ifdef TP_HAVE_MPI
    MPI_Request request;
    int code = MPI_Ibarrier(MPI_COMM_WORLD, &request);
    return code != MPI_SUCCESS ? mpi_fail(comm, code, what) : wait_requests(comm, &request, 1, what);
#else
    return 0;
#endif
}

int tp_comm_finish(void)
{
    if (!process_comm_open) return 0;
    tp_comm *comm = &process_comm;
    if (tp_comm_barrier(comm, "the final barrier") < 0) return -1;
#ifdef TP_HAVE_CUDA
    tp_nccl_free(comm->nccl);
    comm->nccl = NULL;
#endif
#ifdef TP_HAVE_MPI
    if (comm->mpi) MPI_Finalize();
#endif
    process_comm_open = 0;
    return 0;
}

void tp_comm_abort(int status)
{
    if (!process_comm_open) return;
#ifdef TP_HAVE_MPI
    if (process_comm.mpi && process_comm.size > 1) MPI_Abort(MPI_COMM_WORLD, status);
    if (process_comm.mpi) MPI_Finalize();
#endif
    process_comm_open = 0;
}

/* ---- ZeRO-1 shards ---- */

void tp_comm_shard(const tp_comm *comm, int64_t count, int64_t *offset, int64_t *length)
{
    int64_t per_rank = (count + comm->size - 1) / comm->size;
    int64_t begin = per_rank * comm->rank;
    *offset = begin < count ? begin : count;
    *length = (begin + per_rank < count ? begin + per_rank : count) - *offset;
}

#ifdef TP_HAVE_MPI
/* Every rank's shard as MPI counts and displacements (size entries each). */
static int shard_layout(const tp_comm *comm, int64_t count, int *counts, int *displacements, const char *what)
{
    if (check_count(comm, count, what) < 0) return -1;
    tp_comm rank_view = *comm;
    for (int r = 0; r < comm->size; r++) {
        int64_t offset, length;
        rank_view.rank = r;
        tp_comm_shard(&rank_view, count, &offset, &length);
        counts[r] = (int)length;
        displacements[r] = (int)offset;
    }
    return 0;
}

/* Runs one shard collective: start(counts, displacements, request) then the wait. */
typedef int (*shard_start_fn)(const int *counts, const int *displacements, void *context, MPI_Request *request);

static int run_shard_collective(tp_comm *comm, int64_t count, shard_start_fn start, void *context, const char *what)
{
    int *counts = tp_xmalloc(sizeof(int) * (size_t)comm->size * 2), *displacements = counts + comm->size;
    MPI_Request request;
    int status = shard_layout(comm, count, counts, displacements, what);
    if (status == 0) {
        int code = start(counts, displacements, context, &request);
        status = code != MPI_SUCCESS ? mpi_fail(comm, code, what) : wait_requests(comm, &request, 1, what);
    }
    free(counts);
    return status;
}

typedef struct shard_buffers {
    const float *source;
    float *target;
    int rank;
} shard_buffers;

static int start_reduce_scatter(const int *counts, const int *displacements, void *context, MPI_Request *request)
{
    shard_buffers *b = context;
    return MPI_Ireduce_scatter(b->source, b->target, counts, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD, request);
}

static int start_all_gather(const int *counts, const int *displacements, void *context, MPI_Request *request)
{
    shard_buffers *b = context;
    return MPI_Iallgatherv(MPI_IN_PLACE, 0, MPI_FLOAT, b->target, counts, displacements, MPI_FLOAT, MPI_COMM_WORLD,
                           request);
}

static int start_gather(const int *counts, const int *displacements, void *context, MPI_Request *request)
{
    shard_buffers *b = context;
    return MPI_Igatherv(b->source, counts[b->rank], MPI_FLOAT, b->target, counts, displacements, MPI_FLOAT, 0,
                        MPI_COMM_WORLD, request);
}
#endif

#ifdef TP_HAVE_CUDA
/* With NCCL open, the shard collectives move device memory: every rank's range, then wait. */
typedef int (*nccl_shard_fn)(tp_nccl *nccl, const float *source, float *target, const int64_t *offsets,
                             const int64_t *lengths, const char *what);

static int nccl_shard_collective(tp_comm *comm, int64_t count, nccl_shard_fn start, const float *source,
                                 float *target, const char *what)
{
    int64_t *offsets = tp_xmalloc(sizeof(int64_t) * 2 * (size_t)comm->size), *lengths = offsets + comm->size;
    tp_comm rank_view = *comm;
    for (int r = 0; r < comm->size; r++) {
        rank_view.rank = r;
        tp_comm_shard(&rank_view, count, &offsets[r], &lengths[r]);
    }
    int status = start(comm->nccl, source, target, offsets, lengths, what);
    free(offsets);
    return status < 0 ? -1 : tp_nccl_wait(comm->nccl, comm->timeout_seconds, what);
}

static int start_nccl_all_gather(tp_nccl *nccl, const float *unused, float *full, const int64_t *offsets,
                                 const int64_t *lengths, const char *what)
{
    return tp_nccl_all_gather_start(nccl, full, offsets, lengths, what);
}
#endif

/* A world of one: its shard is the whole buffer. */
static void copy_floats(float *target, const float *source, int64_t count)
{
    if (target != source) memcpy(target, source, sizeof(float) * (size_t)count);
}

int tp_comm_reduce_scatter(tp_comm *comm, const float *full, float *shard, int64_t count, const char *what)
{
    if (comm->size == 1) {
        copy_floats(shard, full, count);
        return 0;
    }
#ifdef TP_HAVE_CUDA
    if (comm->nccl) return nccl_shard_collective(comm, count, tp_nccl_reduce_scatter_start, full, shard, what);
#endif
#ifdef TP_HAVE_MPI
    shard_buffers buffers = {full, shard, comm->rank};
    return run_shard_collective(comm, count, start_reduce_scatter, &buffers, what);
#else
    return 0;
#endif
}

int tp_comm_all_gather(tp_comm *comm, float *full, int64_t count, const char *what)
{
    if (comm->size == 1) return 0;
#ifdef TP_HAVE_CUDA
    if (comm->nccl) return nccl_shard_collective(comm, count, start_nccl_all_gather, NULL, full, what);
#endif
#ifdef TP_HAVE_MPI
    shard_buffers buffers = {NULL, full, comm->rank};
    return run_shard_collective(comm, count, start_all_gather, &buffers, what);
#else
    return 0;
#endif
}

int tp_comm_gather(tp_comm *comm, const float *shard, float *full, int64_t count, const char *what)
{
    if (comm->size == 1) {
        copy_floats(full, shard, count);
        return 0;
    }
#ifdef TP_HAVE_CUDA
    if (comm->nccl) return nccl_shard_collective(comm, count, tp_nccl_gather_start, shard, full, what);
#endif
#ifdef TP_HAVE_MPI
    shard_buffers buffers = {shard, full, comm->rank};
    return run_shard_collective(comm, count, start_gather, &buffers, what);
#else
    return 0;
#endif
}

/* ---- the bucketed gradient all-reduce ---- */

struct tp_grad_sync {
    tp_comm *comm;
    float *grad;
    int64_t count, bucket_floats, bucket_count;
    unsigned char *started; /* [bucket_count] */
    int nccl;               /* 1: the buckets move over comm->nccl (device memory) */
#ifdef TP_HAVE_MPI
    MPI_Request *requests;  /* [bucket_count]; MPI_REQUEST_NULL when not in flight */
#endif
};

/* 1 when gradients in `memory` move over NCCL: device memory and more than one rank, or one rank
 * with TP_NCCL=1 in the environment (how the GPU suite runs the NCCL path on one GPU).  0 for host
 * memory and for a single-GPU run; -1 + message when device memory must move and cannot. */
static int uses_nccl(const tp_comm *comm, const tp_backend *memory)
{
    if (memory == &tp_cpu_backend) return 0;
    const char *forced = getenv("TP_NCCL");
    if (comm->size == 1 && !(forced && strcmp(forced, "1") == 0)) return 0;
#ifdef TP_HAVE_CUDA
    return 1;
#else
    return tp_fail("data-parallel training moves %s memory only with NCCL, which this build lacks; the MPI path "
                   "moves host memory (device cpu)",
                   memory->name);
#endif
}

int tp_grad_sync_needed(const tp_comm *comm, const tp_backend *memory)
{
    return comm->size > 1 || uses_nccl(comm, memory) == 1;
}

/* The job's NCCL communicator: rank 0 makes the unique id, MPI carries it to the others. */
static int open_nccl(tp_comm *comm)
{
#ifdef TP_HAVE_CUDA
    if (comm->nccl) return 0;
    unsigned char id[TP_NCCL_ID_BYTES] = {0};
    if (comm->rank == 0 && tp_nccl_unique_id(id) < 0) return -1;
    if (tp_comm_broadcast(comm, id, sizeof id, 0, "the NCCL communicator's id") < 0) return -1;
    comm->nccl = tp_nccl_create(comm->rank, comm->size, id);
    return comm->nccl ? 0 : -1;
#else
    return 0;
#endif
}

int tp_comm_use_memory(tp_comm *comm, const tp_backend *memory)
{
    int nccl = uses_nccl(comm, memory);
    return nccl < 0 ? -1 : nccl ? open_nccl(comm) : 0;
}

tp_grad_sync *tp_grad_sync_create(tp_comm *comm, const tp_backend *memory, float *grad, int64_t count,
                                  int64_t bucket_bytes)
{
    if (bucket_bytes < (int64_t)sizeof(float)) {
        tp_fail("gradient buckets of %lld bytes: at least 4 needed", (long long)bucket_bytes);
        return NULL;
    }
    if (tp_comm_use_memory(comm, memory) < 0) return NULL;
    int nccl = uses_nccl(comm, memory);
    tp_grad_sync *sync = tp_xcalloc(1, sizeof *sync);
    sync->comm = comm;
    sync->grad = grad;
    sync->count = count;
    sync->bucket_floats = bucket_bytes / (int64_t)sizeof(float);
    if (sync->bucket_floats > INT_MAX) sync->bucket_floats = INT_MAX; /* MPI counts are ints */
    sync->bucket_count = count ? (count + sync->bucket_floats - 1) / sync->bucket_floats : 0;
    sync->nccl = nccl;
    sync->started = tp_xcalloc((size_t)sync->bucket_count + 1, 1);
#ifdef TP_HAVE_MPI
    sync->requests = tp_xmalloc(sizeof(MPI_Request) * ((size_t)sync->bucket_count + 1));
    for (int64_t b = 0; b < sync->bucket_count; b++) sync->requests[b] = MPI_REQUEST_NULL;
#endif
    return sync;
}

void tp_grad_sync_free(tp_grad_sync *sync)
{
    if (!sync) return;
    free(sync->started);
#ifdef TP_HAVE_MPI
    free(sync->requests);
#endif
    free(sync);
}

int64_t tp_grad_sync_bucket_count(const tp_grad_sync *sync) { return sync->bucket_count; }

void tp_grad_sync_bucket(const tp_grad_sync *sync, int64_t bucket, int64_t *offset, int64_t *length)
{
    *offset = bucket * sync->bucket_floats;
    *length = sync->count - *offset < sync->bucket_floats ? sync->count - *offset : sync->bucket_floats;
}

#if defined(TP_HAVE_MPI) || defined(TP_HAVE_CUDA)
static void bucket_name(const tp_grad_sync *sync, int64_t bucket, char *out, size_t cap)
{
    snprintf(out, cap, "all-reduce of gradient bucket %lld of %lld", (long long)bucket + 1,
             (long long)sync->bucket_count);
}
#endif

int tp_grad_sync_start(tp_grad_sync *sync, int64_t bucket)
{
    if (sync->started[bucket]) return 0;
    sync->started[bucket] = 1;
    int64_t offset, length;
    tp_grad_sync_bucket(sync, bucket, &offset, &length);
#ifdef TP_HAVE_CUDA
    if (sync->nccl) {
        char what[96];
        bucket_name(sync, bucket, what, sizeof what);
        return tp_nccl_all_reduce_start(sync->comm->nccl, sync->grad + offset, length, what);
    }
#endif
    if (sync->comm->size == 1) return 0;
#ifdef TP_HAVE_MPI
    int code = MPI_Iallreduce(MPI_IN_PLACE, sync->grad + offset, (int)length, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD,
                              &sync->requests[bucket]);
    if (code != MPI_SUCCESS) {
        char what[96];
        bucket_name(sync, bucket, what, sizeof what);
        return mpi_fail(sync->comm, code, what);
    }
#endif
    return 0;
}

int tp_grad_sync_progress(tp_grad_sync *sync)
{
#ifdef TP_HAVE_MPI
    if (sync->comm->size > 1 && !sync->nccl) {
        int done = 0;
        int code = MPI_Testall((int)sync->bucket_count, sync->requests, &done, MPI_STATUSES_IGNORE);
        if (code != MPI_SUCCESS) return mpi_fail(sync->comm, code, "all-reduce of gradients");
    }
#endif
    return 0;
}

int tp_grad_sync_finish(tp_grad_sync *sync)
{
    for (int64_t b = 0; b < sync->bucket_count; b++)
        if (tp_grad_sync_start(sync, b) < 0) return -1;
    memset(sync->started, 0, (size_t)sync->bucket_count);
#ifdef TP_HAVE_CUDA
    if (sync->nccl) return tp_nccl_wait(sync->comm->nccl, sync->comm->timeout_seconds, "all-reduce of gradients");
#endif
#ifdef TP_HAVE_MPI
    /* Bucket by bucket, so that an error names the bucket. */
    for (int64_t b = 0; b < sync->bucket_count && sync->comm->size > 1; b++) {
        char what[96];
        bucket_name(sync, b, what, sizeof what);
        if (wait_requests(sync->comm, &sync->requests[b], 1, what) < 0) return -1;
    }
#endif
    return 0;
}
