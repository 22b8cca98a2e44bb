/* The communication layer (core/distributed.h) and the loader's sharding.
 *
 * Run by ctest as one process: checks the world of one (no launcher, so no MPI) and that
 * world_size ranks with batch B read exactly the instances one rank with batch world_size * B
 * reads; then, when this build has MPI and mpirun exists, runs itself under
 * `mpirun -np 2` (TP_DISTRIBUTED_TEST_CHILD=1), where every rank checks the collectives against
 * sums computed here from each rank's known contribution:
 *   - the bucketed all-reduce over 100003 floats in buckets of 4099 bytes (odd sizes: 98
 *     buckets, the last shorter), started in reverse order with progress calls between, the
 *     rest by finish, for two rounds on the same buffer;
 *   - tp_comm_sum, tp_comm_broadcast (from rank 1), tp_comm_barrier;
 *   - ZeRO-1 shards of 1001 floats: reduce-scatter, all-gather in place and gather to rank 0.
 * The contributions are small integers, so every sum is exact whatever MPI's order. */
#include "core/dataset.h"
#include "core/distributed.h"
#include "core/error.h"
#include "support/check.h"
#include "support/scratch.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { PAD = 0, CLS = 2, SEP = 3, MASK = 4, FIRST_WORD = 5, VOCAB = 50, SEQ = 12 };

/* ---- one process ---- */

static void test_world_of_one(void)
{
    tp_comm *comm = tp_comm_open(10);
    CHECK(comm && tp_comm_size(comm) == 1 && tp_comm_rank(comm) == 0);
    if (!comm) return;
    double values[2] = {1.5, -2};
    CHECK(tp_comm_sum(comm, values, 2, "sum") == 0 && values[0] == 1.5 && values[1] == -2);
    float grad[10] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
    tp_grad_sync *sync = tp_grad_sync_create(comm, &tp_cpu_backend, grad, 10, 12);
    CHECK(sync && tp_grad_sync_bucket_count(sync) == 4);
    if (sync) {
        int64_t offset, length;
        tp_grad_sync_bucket(sync, 3, &offset, &length);
        CHECK(offset == 9 && length == 1);
        CHECK(tp_grad_sync_start(sync, 2) == 0 && tp_grad_sync_finish(sync) == 0 && grad[9] == 10);
        tp_grad_sync_free(sync);
    }
    int64_t offset, length;
    tp_comm_shard(comm, 7, &offset, &length);
    CHECK(offset == 0 && length == 7);
}

static void write_dataset(const char *path, int64_t count)
{
    tp_dataset_writer_options options = {TP_DATASET_BERT, SEQ, VOCAB, 0, 0};
    tp_dataset_writer *writer = tp_dataset_writer_open(path, &options);
    CHECK(writer != NULL);
    if (!writer) return;
    for (int64_t i = 0; i < count; i++) {
        int32_t ids[SEQ];
        int64_t length = 4 + i % (SEQ - 4);
        for (int64_t t = 0; t < length; t++) ids[t] = FIRST_WORD + (int32_t)((i * 7 + t) % (VOCAB - FIRST_WORD));
        ids[0] = CLS;
        ids[2] = SEP;
        ids[length - 1] = SEP;
        tp_dataset_meta meta = {3, (uint8_t)(i % 2), 0};
        CHECK(tp_dataset_writer_add(writer, ids, length, meta, NULL, 0) == 0);
    }
    CHECK(tp_dataset_writer_commit(writer) == 0);
}

static tp_loader *make_loader(const tp_dataset *ds, int64_t batch_size, int rank, int world_size)
{
    tp_loader_options options = {.batch_size = batch_size, .seq_length = SEQ, .seed = 5, .rank = rank,
                                 .world_size = world_size, .shuffle = 1,
                                 .masking = {0.3, MASK, PAD, CLS, SEP, VOCAB}};
    return tp_loader_create(ds, &options);
}

/* Rows of rank r's batch equal rows [r * B, (r + 1) * B) of the one-rank batch of 3 * B, over
 * 13 instances (every global batch of 12 crosses or ends an epoch), and the positions agree. */
static void test_sharding(void)
{
    enum { RANKS = 3, B = 4, STEPS = 9 };
    const char *path = tp_scratch_path("shard.tpd");
    write_dataset(path, 13);
    tp_dataset *ds = tp_dataset_open(path);
    CHECK(ds != NULL);
    if (!ds) return;
    tp_loader *single = make_loader(ds, RANKS * B, 0, 1), *ranks[RANKS];
    for (int r = 0; r < RANKS; r++) ranks[r] = make_loader(ds, B, r, RANKS);
    int differ = 0, positions_differ = 0;
    for (int step = 0; step < STEPS; step++) {
        const tp_batch *whole = tp_loader_next(single);
        int64_t masks_before = 0;
        for (int r = 0; r < RANKS; r++) {
            const tp_batch *part = tp_loader_next(ranks[r]);
            size_t cells = (size_t)(B * SEQ), first = (size_t)(r * B * SEQ);
            differ += memcmp(part->src, whole->src + first, cells * 4) != 0;
            differ += memcmp(part->seg, whole->seg + first, cells * 4) != 0;
            differ += memcmp(part->sp_labels, whole->sp_labels + r * B, B * 4) != 0;
            /* The masked positions of rank r are the whole batch's, shifted by r * B rows. */
            for (int64_t k = 0; k < part->mlm_count; k++)
                differ += part->mlm_positions[k] + (int32_t)first != whole->mlm_positions[masks_before + k] ||
                          part->mlm_labels[k] != whole->mlm_labels[masks_before + k];
            masks_before += part->mlm_count;
        }
        differ += masks_before != whole->mlm_count;
        int64_t epoch, cursor, rank_epoch, rank_cursor;
        tp_loader_position(single, &epoch, &cursor);
        for (int r = 0; r < RANKS; r++) {
            tp_loader_position(ranks[r], &rank_epoch, &rank_cursor);
            positions_differ += rank_epoch != epoch || rank_cursor != cursor;
        }
    }
    CHECK(differ == 0 && positions_differ == 0);
    int64_t epoch, cursor;
    tp_loader_position(single, &epoch, &cursor);
    CHECK(epoch == STEPS * RANKS * B / 13 && cursor == STEPS * RANKS * B % 13);
    tp_loader_free(single);
    for (int r = 0; r < RANKS; r++) tp_loader_free(ranks[r]);
    tp_dataset_close(ds);
}

/* ---- two ranks (under mpirun) ---- */

static float contribution(int rank, int64_t i) { return (float)((rank + 1) * (i % 97) - 40); }
static float summed(int64_t i) { return (float)(3 * (i % 97) - 80); } /* ranks 0 and 1 */

static void test_grad_sync(tp_comm *comm)
{
    enum { COUNT = 100003, BUCKET_BYTES = 4099 };
    int rank = tp_comm_rank(comm);
    float *grad = tp_xmalloc(sizeof(float) * COUNT);
    tp_grad_sync *sync = tp_grad_sync_create(comm, &tp_cpu_backend, grad, COUNT, BUCKET_BYTES);
    CHECK(sync && tp_grad_sync_bucket_count(sync) == (COUNT + 1023) / 1024);
    if (!sync) return;
    int64_t covered = 0, offset, length;
    for (int64_t b = 0; b < tp_grad_sync_bucket_count(sync); b++) {
        tp_grad_sync_bucket(sync, b, &offset, &length);
        covered += offset == covered ? length : COUNT; /* a gap or overlap spoils the total */
    }
    CHECK(covered == COUNT);
    for (int round = 0; round < 2; round++) {
        for (int64_t i = 0; i < COUNT; i++) grad[i] = contribution(rank, i) * (float)(round + 1);
        int status = 0;
        for (int64_t b = tp_grad_sync_bucket_count(sync) - 1; b >= 50; b--)
            status |= tp_grad_sync_start(sync, b) | tp_grad_sync_progress(sync);
        status |= tp_grad_sync_start(sync, 60); /* again: nothing happens */
        status |= tp_grad_sync_finish(sync);
        CHECK_MSG(status == 0, "%s", tp_last_error());
        int64_t wrong = 0;
        for (int64_t i = 0; i < COUNT; i++) wrong += grad[i] != summed(i) * (float)(round + 1);
        CHECK_MSG(wrong == 0, "rank %d round %d: %lld wrong sums", rank, round, (long long)wrong);
    }
    tp_grad_sync_free(sync);
    free(grad);
}

static void test_small_collectives(tp_comm *comm)
{
    int rank = tp_comm_rank(comm);
    double values[3] = {rank + 1.0, 0.5, rank * 1e10};
    CHECK(tp_comm_sum(comm, values, 3, "sum") == 0 && values[0] == 3 && values[1] == 1 && values[2] == 1e10);
    char text[32];
    snprintf(text, sizeof text, "from rank %d", rank);
    CHECK(tp_comm_broadcast(comm, text, sizeof text, 1, "broadcast") == 0 && strcmp(text, "from rank 1") == 0);
    CHECK(tp_comm_barrier(comm, "barrier") == 0);
}

static void test_shards(tp_comm *comm)
{
    enum { COUNT = 1001 };
    int rank = tp_comm_rank(comm);
    int64_t offset, length;
    tp_comm_shard(comm, COUNT, &offset, &length);
    CHECK(offset == (rank ? 501 : 0) && length == (rank ? 500 : 501));
    float *full = tp_xmalloc(sizeof(float) * COUNT), *shard = tp_xmalloc(sizeof(float) * 501);
    for (int64_t i = 0; i < COUNT; i++) full[i] = contribution(rank, i);
    CHECK(tp_comm_reduce_scatter(comm, full, shard, COUNT, "reduce-scatter") == 0);
    int64_t wrong = 0;
    for (int64_t i = 0; i < length; i++) wrong += shard[i] != summed(offset + i);
    CHECK(wrong == 0);
    /* Each rank writes its shard of the "updated parameters"; the all-gather completes them. */
    for (int64_t i = 0; i < COUNT; i++) full[i] = i >= offset && i < offset + length ? (float)i : -1.0f;
    CHECK(tp_comm_all_gather(comm, full, COUNT, "all-gather") == 0);
    wrong = 0;
    for (int64_t i = 0; i < COUNT; i++) wrong += full[i] != (float)i;
    CHECK(wrong == 0);
    float *gathered = rank == 0 ? tp_xcalloc(COUNT, sizeof(float)) : NULL;
    for (int64_t i = 0; i < length; i++) shard[i] = (float)(2 * (offset + i));
    CHECK(tp_comm_gather(comm, shard, gathered, COUNT, "gather") == 0);
    wrong = 0;
    for (int64_t i = 0; rank == 0 && i < COUNT; i++) wrong += gathered[i] != (float)(2 * i);
    CHECK(wrong == 0);
    free(gathered);
    free(full);
    free(shard);
}

static int run_child(void)
{
    tp_comm *comm = tp_comm_open(20);
    CHECK_MSG(comm && tp_comm_size(comm) == 2, "%s", comm ? "world size is not 2" : tp_last_error());
    if (!comm || tp_comm_size(comm) != 2) return tp_test_finish("test_distributed (rank ?)");
    test_grad_sync(comm);
    test_small_collectives(comm);
    test_shards(comm);
    char name[64];
    snprintf(name, sizeof name, "test_distributed (rank %d of 2)", tp_comm_rank(comm));
    CHECK_MSG(tp_comm_finish() == 0, "%s", tp_last_error());
    return tp_test_finish(name);
}

/* Runs this program again as 2 ranks under mpirun; skipped without MPI or mpirun. */
static void test_two_ranks(void)
{
#ifdef TP_HAVE_MPI
    if (system("command -v mpirun >/dev/null 2>&1") != 0) {
        printf("test_distributed: 2-rank checks skipped (no mpirun)\n");
        return;
    }
    char self[4096], command[8192];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    CHECK(n > 0);
    if (n <= 0) return;
    self[n] = '\0';
    /* OpenMPI's allocations outlive MPI_Finalize: a sanitizer build's leak check would report them. */
    const char *asan = getenv("ASAN_OPTIONS");
    char asan_options[1024];
    snprintf(asan_options, sizeof asan_options, "%s%sdetect_leaks=0", asan ? asan : "", asan && *asan ? ":" : "");
    setenv("ASAN_OPTIONS", asan_options, 1);
    setenv("TP_DISTRIBUTED_TEST_CHILD", "1", 1);
    snprintf(command, sizeof command, "mpirun %s--oversubscribe --bind-to none -np 2 '%s'",
             geteuid() == 0 ? "--allow-run-as-root " : "", self);
    CHECK_MSG(system(command) == 0, "%s failed", command);
#else
    printf("test_distributed: 2-rank checks skipped (built without MPI)\n");
#endif
}

int main(void)
{
    if (getenv("TP_DISTRIBUTED_TEST_CHILD")) return run_child();
    tp_scratch_init("distributed");
    test_world_of_one();
    test_sharding();
    test_two_ranks();
    return tp_test_finish("test_distributed");
}
