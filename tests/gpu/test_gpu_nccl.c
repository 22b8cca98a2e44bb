/* The NCCL path of core/distributed.c on one GPU (a world of one: the GPU suite's machine has one).
 *   - cuda/cuda_nccl.h directly: all-reduce, reduce-scatter, all-gather and gather over device
 *     memory with uneven shard lengths (here one rank's), each result downloaded and compared
 *     with what a sum over one rank must give;
 *   - the bucketed gradient synchroniser over device memory (TP_NCCL=1): buckets started out of
 *     order, then finished, leave the gradients as they were;
 *   - a communicator's unique id survives the broadcast path (tp_comm_broadcast, a no-op here).
 * Multi-rank runs need one GPU per rank (NCCL refuses two ranks on one device): docs/distributed.md.
 * Without a GPU, a CUDA build or libnccl: prints "skipped: ..." and passes (the GPU suite reports
 * a missing libnccl as its own SKIP). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/distributed.h"
#include "core/error.h"
#include "core/rng.h"
#include "support/check.h"

#ifdef TP_HAVE_CUDA
#include "cuda/cuda_backend.h"
#include "cuda/cuda_nccl.h"

static const tp_backend *gpu;

static float *random_floats(int64_t n, uint64_t seed)
{
    float *x = tp_xmalloc((size_t)n * sizeof *x);
    for (int64_t i = 0; i < n; i++) x[i] = 2.0f * tp_uniform(seed, 17, (uint64_t)i) - 1.0f;
    return x;
}

static float *device_floats(const float *host, int64_t n)
{
    float *device = gpu->alloc((size_t)n * sizeof *device);
    gpu->upload(device, host, (size_t)n * sizeof *device);
    return device;
}

/* Downloads n floats and checks they equal expected bit for bit. */
static void expect_floats(const char *what, const float *device, const float *expected, int64_t n)
{
    float *actual = tp_xmalloc((size_t)n * sizeof *actual);
    gpu->download(actual, device, (size_t)n * sizeof *actual);
    int64_t differ = 0;
    for (int64_t i = 0; i < n; i++) differ += memcmp(&actual[i], &expected[i], sizeof(float)) != 0;
    printf("%-48s %8lld floats  %s\n", what, (long long)n, differ ? "FAIL" : "ok");
    CHECK_MSG(differ == 0, "%s: %lld of %lld floats differ", what, (long long)differ, (long long)n);
    free(actual);
}

static void test_collectives(void)
{
    enum { N = 100003 }; /* odd: no collective may assume an even or aligned length */
    unsigned char id[TP_NCCL_ID_BYTES];
    CHECK(tp_nccl_unique_id(id) == 0);
    tp_nccl *nccl = tp_nccl_create(0, 1, id);
    CHECK_MSG(nccl != NULL, "%s", tp_last_error());
    if (!nccl) return;
    float *x = random_floats(N, 1), *zeros = calloc(N, sizeof(float));
    float *d_x = device_floats(x, N), *d_shard = device_floats(zeros, N), *d_full = device_floats(zeros, N);
    int64_t offsets[1] = {0}, lengths[1] = {N};

    CHECK(tp_nccl_all_reduce_start(nccl, d_x, N, "all-reduce") == 0);
    CHECK(tp_nccl_wait(nccl, 30.0, "all-reduce") == 0);
    expect_floats("all-reduce (in place, one rank)", d_x, x, N);

    CHECK(tp_nccl_reduce_scatter_start(nccl, d_x, d_shard, offsets, lengths, "reduce-scatter") == 0);
    CHECK(tp_nccl_wait(nccl, 30.0, "reduce-scatter") == 0);
    expect_floats("reduce-scatter (the shard: all of it)", d_shard, x, N);

    CHECK(tp_nccl_all_gather_start(nccl, d_x, offsets, lengths, "all-gather") == 0);
    CHECK(tp_nccl_wait(nccl, 30.0, "all-gather") == 0);
    expect_floats("all-gather (in place)", d_x, x, N);

    CHECK(tp_nccl_gather_start(nccl, d_shard, d_full, offsets, lengths, "gather") == 0);
    CHECK(tp_nccl_wait(nccl, 30.0, "gather") == 0);
    expect_floats("gather to rank 0", d_full, x, N);

    /* Work queued on the default stream before a collective is what it sees: scale, then reduce. */
    gpu->axpy(d_x, 1.0f, d_x, N); /* x += x */
    CHECK(tp_nccl_all_reduce_start(nccl, d_x, N, "all-reduce after a kernel") == 0);
    CHECK(tp_nccl_wait(nccl, 30.0, "all-reduce after a kernel") == 0);
    for (int64_t i = 0; i < N; i++) x[i] += x[i];
    expect_floats("all-reduce ordered after the default stream", d_x, x, N);

    tp_nccl_free(nccl);
    gpu->release(d_x), gpu->release(d_shard), gpu->release(d_full);
    free(x), free(zeros);
}

static void test_grad_sync(void)
{
    enum { N = 70001 };
    setenv("TP_NCCL", "1", 1);
    tp_comm *comm = tp_comm_open(30.0);
    CHECK_MSG(comm != NULL, "%s", tp_last_error());
    if (!comm) return;
    CHECK(tp_grad_sync_needed(comm, gpu) == 1);
    CHECK(tp_grad_sync_needed(comm, &tp_cpu_backend) == 0);
    float *g = random_floats(N, 2), *d_g = device_floats(g, N);
    tp_grad_sync *sync = tp_grad_sync_create(comm, gpu, d_g, N, 4096 * (int64_t)sizeof(float));
    CHECK_MSG(sync != NULL, "%s", tp_last_error());
    if (sync) {
        int64_t buckets = tp_grad_sync_bucket_count(sync);
        CHECK(buckets == (N + 4095) / 4096);
        for (int round = 0; round < 2; round++) { /* a second round reuses the communicator */
            for (int64_t b = buckets - 1; b >= buckets / 2; b--) CHECK(tp_grad_sync_start(sync, b) == 0);
            CHECK(tp_grad_sync_progress(sync) == 0);
            CHECK(tp_grad_sync_finish(sync) == 0);
        }
        expect_floats("bucketed gradient all-reduce, 2 rounds", d_g, g, N);
        tp_grad_sync_free(sync);
    }
    gpu->release(d_g);
    free(g);
    CHECK(tp_comm_finish() == 0);
    unsetenv("TP_NCCL");
}
#endif

int main(void)
{
#ifdef TP_HAVE_CUDA
    if (tp_cuda_device_count() == 0) {
        puts("skipped: no CUDA device");
        return tp_test_finish("test_gpu_nccl");
    }
    gpu = tp_cuda_backend_get();
    unsigned char id[TP_NCCL_ID_BYTES];
    if (tp_nccl_unique_id(id) < 0) {
        printf("skipped: %s\n", tp_last_error());
        return tp_test_finish("test_gpu_nccl");
    }
    test_collectives();
    test_grad_sync();
#else
    puts("skipped: built without CUDA");
#endif
    return tp_test_finish("test_gpu_nccl");
}
