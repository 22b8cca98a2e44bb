// NCCL communicators and collectives for core/distributed.c: see cuda_nccl.h.
#include <dlfcn.h>
#include <nccl.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cuda/cuda_common.cuh"

extern "C" {
#include "core/error.h"
#include "cuda/cuda_nccl.h"
}

static_assert(TP_NCCL_ID_BYTES == NCCL_UNIQUE_ID_BYTES, "NCCL's unique id size changed");

// The entry points used, resolved from the library at run time (nccl.h gives only their types).
static struct {
    decltype(&ncclGetUniqueId) get_unique_id;
    decltype(&ncclCommInitRank) comm_init_rank;
    decltype(&ncclCommDestroy) comm_destroy;
    decltype(&ncclCommAbort) comm_abort;
    decltype(&ncclCommGetAsyncError) async_error;
    decltype(&ncclGetErrorString) error_string;
    decltype(&ncclAllReduce) all_reduce;
    decltype(&ncclReduce) reduce;
    decltype(&ncclBroadcast) broadcast;
    decltype(&ncclSend) send;
    decltype(&ncclRecv) recv;
    decltype(&ncclGroupStart) group_start;
    decltype(&ncclGroupEnd) group_end;
} nccl_api;

static int load_library(void)
{
    static int loaded;
    if (loaded) return 0;
    const char *path = getenv("TP_NCCL_LIBRARY");
    if (!path || !*path) path = "libnccl.so.2";
    void *library = dlopen(path, RTLD_NOW | RTLD_GLOBAL);
    if (!library)
        return tp_fail("NCCL: cannot load %s (%s): install NCCL (e.g. the nvidia-nccl-cu13 Python package or "
                       "libnccl2) and add its lib directory to LD_LIBRARY_PATH, or set TP_NCCL_LIBRARY to the file",
                       path, dlerror());
    struct {
        void **slot;
        const char *name;
    } symbols[] = {
        {(void **)&nccl_api.get_unique_id, "ncclGetUniqueId"},  {(void **)&nccl_api.comm_init_rank, "ncclCommInitRank"},
        {(void **)&nccl_api.comm_destroy, "ncclCommDestroy"},   {(void **)&nccl_api.comm_abort, "ncclCommAbort"},
        {(void **)&nccl_api.async_error, "ncclCommGetAsyncError"}, {(void **)&nccl_api.error_string, "ncclGetErrorString"},
        {(void **)&nccl_api.all_reduce, "ncclAllReduce"},       {(void **)&nccl_api.reduce, "ncclReduce"},
        {(void **)&nccl_api.broadcast, "ncclBroadcast"},        {(void **)&nccl_api.send, "ncclSend"},
        {(void **)&nccl_api.recv, "ncclRecv"},                  {(void **)&nccl_api.group_start, "ncclGroupStart"},
        {(void **)&nccl_api.group_end, "ncclGroupEnd"},
    };
    for (auto &symbol : symbols) {
        *symbol.slot = dlsym(library, symbol.name);
        if (!*symbol.slot) return tp_fail("NCCL: %s lacks %s (NCCL 2.7 or later is needed)", path, symbol.name);
    }
    loaded = 1;
    return 0;
}

struct tp_nccl {
    ncclComm_t comm;
    int rank, size;
    cudaStream_t stream;
    cudaEvent_t ready, done;
};

static int nccl_fail(ncclResult_t result, const char *what)
{
    return tp_fail("NCCL: %s: %s", what, nccl_api.error_string ? nccl_api.error_string(result) : "error");
}

extern "C" int tp_nccl_unique_id(unsigned char id[TP_NCCL_ID_BYTES])
{
    if (load_library() < 0) return -1;
    ncclUniqueId unique;
    ncclResult_t result = nccl_api.get_unique_id(&unique);
    if (result != ncclSuccess) return nccl_fail(result, "creating the communicator's unique id");
    memcpy(id, unique.internal, TP_NCCL_ID_BYTES);
    return 0;
}

extern "C" tp_nccl *tp_nccl_create(int rank, int size, const unsigned char id[TP_NCCL_ID_BYTES])
{
    if (load_library() < 0) return NULL;
    ncclUniqueId unique;
    memcpy(unique.internal, id, TP_NCCL_ID_BYTES);
    tp_nccl *nccl = (tp_nccl *)tp_xcalloc(1, sizeof *nccl);
    nccl->rank = rank;
    nccl->size = size;
    ncclResult_t result = nccl_api.comm_init_rank(&nccl->comm, size, unique, rank);
    if (result != ncclSuccess) {
        nccl_fail(result, "joining the communicator");
        free(nccl);
        return NULL;
    }
    // Non-blocking: the legacy default stream would otherwise wait for it, and it for the default
    // stream, and no collective could overlap with backward.
    CUDA_CHECK(cudaStreamCreateWithFlags(&nccl->stream, cudaStreamNonBlocking));
    CUDA_CHECK(cudaEventCreateWithFlags(&nccl->ready, cudaEventDisableTiming));
    CUDA_CHECK(cudaEventCreateWithFlags(&nccl->done, cudaEventDisableTiming));
    return nccl;
}

extern "C" void tp_nccl_free(tp_nccl *nccl)
{
    if (!nccl) return;
    if (nccl->comm) nccl_api.comm_destroy(nccl->comm);
    cudaStreamDestroy(nccl->stream);
    cudaEventDestroy(nccl->ready);
    cudaEventDestroy(nccl->done);
    free(nccl);
}

// The communicator's stream waits for the default stream's work queued so far.
static void after_default_stream(tp_nccl *nccl)
{
    CUDA_CHECK(cudaEventRecord(nccl->ready, 0));
    CUDA_CHECK(cudaStreamWaitEvent(nccl->stream, nccl->ready, 0));
}

extern "C" int tp_nccl_all_reduce_start(tp_nccl *nccl, float *data, int64_t count, const char *what)
{
    after_default_stream(nccl);
    ncclResult_t result =
        nccl_api.all_reduce(data, data, (size_t)count, ncclFloat32, ncclSum, nccl->comm, nccl->stream);
    return result == ncclSuccess ? 0 : nccl_fail(result, what);
}

// Runs one operation per rank inside an NCCL group (so they proceed together, not in turn).
template <typename PerRank> static int run_group(tp_nccl *nccl, PerRank per_rank, const char *what)
{
    after_default_stream(nccl);
    ncclResult_t result = nccl_api.group_start();
    for (int r = 0; r < nccl->size && result == ncclSuccess; r++) result = per_rank(r);
    ncclResult_t end = nccl_api.group_end();
    if (result == ncclSuccess) result = end;
    return result == ncclSuccess ? 0 : nccl_fail(result, what);
}

extern "C" int tp_nccl_reduce_scatter_start(tp_nccl *nccl, const float *full, float *shard, const int64_t *offsets,
                                            const int64_t *lengths, const char *what)
{
    // Rank r's range is reduced to rank r; the ranges differ in length, which ncclReduceScatter
    // (equal counts) cannot express.
    return run_group(
        nccl,
        [&](int r) {
            return nccl_api.reduce(full + offsets[r], r == nccl->rank ? shard : NULL, (size_t)lengths[r], ncclFloat32,
                                   ncclSum, r, nccl->comm, nccl->stream);
        },
        what);
}

extern "C" int tp_nccl_all_gather_start(tp_nccl *nccl, float *full, const int64_t *offsets, const int64_t *lengths,
                                        const char *what)
{
    return run_group(
        nccl,
        [&](int r) {
            return nccl_api.broadcast(full + offsets[r], full + offsets[r], (size_t)lengths[r], ncclFloat32, r,
                                      nccl->comm, nccl->stream);
        },
        what);
}

extern "C" int tp_nccl_gather_start(tp_nccl *nccl, const float *shard, float *full, const int64_t *offsets,
                                    const int64_t *lengths, const char *what)
{
    return run_group(
        nccl,
        [&](int r) {
            if (nccl->rank == 0 && r == 0) {
                CUDA_CHECK(cudaMemcpyAsync(full + offsets[0], shard, (size_t)lengths[0] * sizeof(float),
                                           cudaMemcpyDeviceToDevice, nccl->stream));
                return ncclSuccess;
            }
            if (nccl->rank == 0)
                return nccl_api.recv(full + offsets[r], (size_t)lengths[r], ncclFloat32, r, nccl->comm, nccl->stream);
            if (r == nccl->rank)
                return nccl_api.send(shard, (size_t)lengths[r], ncclFloat32, 0, nccl->comm, nccl->stream);
            return ncclSuccess;
        },
        what);
}

static double now_seconds(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)now.tv_sec + now.tv_nsec * 1e-9;
}

extern "C" int tp_nccl_wait(tp_nccl *nccl, double timeout_seconds, const char *what)
{
    CUDA_CHECK(cudaEventRecord(nccl->done, nccl->stream));
    double deadline = now_seconds() + timeout_seconds;
    for (;;) {
        cudaError_t status = cudaEventQuery(nccl->done);
        if (status == cudaSuccess) break;
        if (status != cudaErrorNotReady) CUDA_CHECK(status);
        ncclResult_t async = ncclSuccess;
        nccl_api.async_error(nccl->comm, &async);
        bool late = timeout_seconds > 0 && now_seconds() > deadline;
        if (async != ncclSuccess || late) {
            nccl_api.comm_abort(nccl->comm); // frees the stuck kernels, so the process can exit
            nccl->comm = NULL;
            if (late)
                return tp_fail("rank %d: %s: no answer from the other ranks within %g s (dist_timeout)", nccl->rank,
                               what, timeout_seconds);
            return tp_fail("rank %d: %s: NCCL: %s", nccl->rank, what, nccl_api.error_string(async));
        }
        struct timespec pause = {0, 50000};
        nanosleep(&pause, NULL);
    }
    // Later default-stream work (the optimizer) reads what the collectives wrote.
    CUDA_CHECK(cudaStreamWaitEvent(0, nccl->done, 0));
    return 0;
}
