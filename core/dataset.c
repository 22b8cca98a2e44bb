/* Binary datasets: validation on open, instance access, MLM masking, the
 * batch loader and the writer.  The format is described in dataset.h. */
#include "dataset.h"

#include "error.h"
#include "fileio.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "tp datasets are stored little-endian and read in place: a big-endian host needs byte swapping here"
#endif

_Static_assert(sizeof(tp_dataset_header) == 128, "the dataset header is 128 bytes");
_Static_assert(sizeof(tp_dataset_meta) == 4, "tp_dataset_meta is stored as 4 bytes");
_Static_assert(sizeof(tp_dataset_mask) == 8, "tp_dataset_mask is stored as 8 bytes");

static const char dataset_magic[8] = "TPDATA\0\0";
enum { DATASET_VERSION = 1, SECTION_ALIGN = 64, MAX_SEQ_LENGTH = 65535 };

struct tp_dataset {
    char *path;
    const uint8_t *map;
    size_t map_bytes;
    int fd;                /* kept open: the loader checks that the file did not change under a run */
    struct timespec mtime; /* when it was opened */
    tp_dataset_header header;
    const uint64_t *offsets;
    const uint8_t *tokens;
    const tp_dataset_meta *meta;
    const uint64_t *mask_offsets; /* NULL with dynamic masking */
    const tp_dataset_mask *masks;
};

/* ---- checks shared by the reader and the writer ---- */

/* Each returns NULL when fine, else the problem written into buf. */
static const char *meta_problem(const tp_dataset_header *h, tp_dataset_meta meta, uint64_t length, char *buf,
                                size_t size)
{
    int kind = (int)h->kind;
    uint64_t tgt_length = length - meta.segment_a_length;
    if (meta.segment_a_length > length)
        snprintf(buf, size, "segment_a_length %u exceeds the instance length %" PRIu64, meta.segment_a_length, length);
    else if (kind == TP_DATASET_BERT && (meta.segment_a_length < 2 || meta.segment_a_length == length))
        snprintf(buf, size, "segment_a_length %u leaves no room for [CLS] A [SEP] B [SEP] in %" PRIu64 " tokens",
                 meta.segment_a_length, length);
    else if (kind == TP_DATASET_SEQ2SEQ && (meta.segment_a_length < 1 || meta.segment_a_length > h->seq_length))
        snprintf(buf, size, "source length %u outside [1, seq_length %" PRIu32 "]", meta.segment_a_length,
                 h->seq_length);
    else if (kind == TP_DATASET_SEQ2SEQ && (tgt_length < 2 || tgt_length > h->tgt_seq_length))
        snprintf(buf, size, "target length %" PRIu64 " outside [2, tgt_seq_length %" PRIu32 "]", tgt_length,
                 h->tgt_seq_length);
    else if (kind == TP_DATASET_PREFIXLM && (meta.segment_a_length < 1 || meta.segment_a_length >= length))
        snprintf(buf, size, "prefix length %u leaves no target in %" PRIu64 " tokens", meta.segment_a_length, length);
    else if (meta.is_random_next > 1)
        snprintf(buf, size, "is_random_next %u is not 0 or 1", meta.is_random_next);
    else
        return NULL;
    return buf;
}

/* previous: the position of the instance's mask before this one, -1 for the first. */
static const char *mask_problem(tp_dataset_mask mask, int64_t previous, uint64_t length, uint64_t vocab_size, char *buf,
                                size_t size)
{
    if ((int64_t)mask.position <= previous)
        snprintf(buf, size, "mask position %u not after the previous one (%" PRId64 ")", mask.position, previous);
    else if (mask.position >= length)
        snprintf(buf, size, "mask position %u beyond the instance length %" PRIu64, mask.position, length);
    else if (mask.replacement < 0 || (uint64_t)mask.replacement >= vocab_size)
        snprintf(buf, size, "replacement id %" PRId32 " outside [0, vocab_size %" PRIu64 ")", mask.replacement,
                 vocab_size);
    else
        return NULL;
    return buf;
}

/* ---- opening and validation ---- */

static int fail_at(const tp_dataset *ds, uint64_t offset, const char *fmt, ...) TP_PRINTF(3, 4);
static int fail_at(const tp_dataset *ds, uint64_t offset, const char *fmt, ...)
{
    char what[1024];
    va_list args;
    va_start(args, fmt);
    vsnprintf(what, sizeof what, fmt, args);
    va_end(args);
    return tp_fail("%s: offset %" PRIu64 ": %s", ds->path, offset, what);
}

static int check_header(const tp_dataset *ds)
{
    const tp_dataset_header *h = &ds->header;
    if (memcmp(h->magic, dataset_magic, sizeof dataset_magic) != 0)
        return fail_at(ds, 0, "bad magic (not a tp dataset)");
    if (h->version != DATASET_VERSION)
        return fail_at(ds, offsetof(tp_dataset_header, version),
                       "unsupported version %" PRIu32 " (this build reads version %d)", h->version, DATASET_VERSION);
    if (h->kind < TP_DATASET_BERT || h->kind > TP_DATASET_PREFIXLM)
        return fail_at(ds, offsetof(tp_dataset_header, kind),
                       "unknown dataset kind %" PRIu32 " (1 = bert, 2 = mlm, 3 = lm, 4 = seq2seq, 5 = prefixlm)", h->kind);
    if (h->kind == TP_DATASET_SEQ2SEQ ? h->tgt_seq_length < 2 || h->tgt_seq_length > MAX_SEQ_LENGTH
                                      : h->tgt_seq_length != 0)
        return fail_at(ds, offsetof(tp_dataset_header, tgt_seq_length), "tgt_seq_length %" PRIu32 " %s",
                       h->tgt_seq_length,
                       h->kind == TP_DATASET_SEQ2SEQ ? "outside [2, 65535]" : "must be 0 (not a seq2seq dataset)");
    if (h->token_bytes != 2 && h->token_bytes != 4)
        return fail_at(ds, offsetof(tp_dataset_header, token_bytes), "token_bytes %" PRIu32 " is not 2 or 4",
                       h->token_bytes);
    if (h->seq_length < 2 || h->seq_length > MAX_SEQ_LENGTH)
        return fail_at(ds, offsetof(tp_dataset_header, seq_length), "seq_length %" PRIu32 " outside [2, %d]",
                       h->seq_length, MAX_SEQ_LENGTH);
    if (h->vocab_size < 1 || h->vocab_size > INT32_MAX)
        return fail_at(ds, offsetof(tp_dataset_header, vocab_size), "vocab_size %" PRIu64 " outside [1, %d]",
                       h->vocab_size, INT32_MAX);
    if (h->instance_count == 0)
        return fail_at(ds, offsetof(tp_dataset_header, instance_count), "instance_count is 0 (an empty dataset)");
    if ((h->mask_offsets_pos == 0) != (h->masks_pos == 0))
        return fail_at(ds, offsetof(tp_dataset_header, mask_offsets_pos),
                       "mask_offsets_pos and masks_pos must both be set (static masking) or both be 0");
    if (h->masks_pos == 0 && h->mask_count != 0)
        return fail_at(ds, offsetof(tp_dataset_header, mask_count), "mask_count %" PRIu64 " without a masks section",
                       h->mask_count);
    if (h->file_size != ds->map_bytes)
        return tp_fail("%s: truncated or extended: header says %" PRIu64 " bytes, file has %zu", ds->path, h->file_size,
                       ds->map_bytes);
    /* Every instance holds at least 2 tokens, so the count is below the file size
     * (and instance_count + 1 cannot wrap). */
    if (h->instance_count >= ds->map_bytes)
        return fail_at(ds, offsetof(tp_dataset_header, instance_count),
                       "instance_count %" PRIu64 " impossible in a %zu-byte file", h->instance_count, ds->map_bytes);
    return 0;
}

typedef struct section {
    const char *name;
    size_t field; /* offset of the position field in the header */
    uint64_t pos, count, element_bytes;
} section;

static int check_section(const tp_dataset *ds, const section *s)
{
    uint64_t file_bytes = ds->map_bytes;
    if (s->pos % SECTION_ALIGN != 0)
        return fail_at(ds, s->field, "%s section at %" PRIu64 " is not %d-byte aligned", s->name, s->pos,
                       SECTION_ALIGN);
    if (s->pos < sizeof(tp_dataset_header))
        return fail_at(ds, s->field, "%s section at %" PRIu64 " overlaps the header", s->name, s->pos);
    /* Division first: count * element_bytes may not fit in 64 bits. */
    if (s->pos > file_bytes || s->count > (file_bytes - s->pos) / s->element_bytes)
        return fail_at(ds, s->field,
                       "%s section (%" PRIu64 " entries of %" PRIu64 " bytes at %" PRIu64
                       ") extends past the end of the file (%" PRIu64 " bytes)",
                       s->name, s->count, s->element_bytes, s->pos, file_bytes);
    return 0;
}

/* By position, empty sections first among equals (an empty section overlaps nothing). */
static int compare_section_pos(const void *a, const void *b)
{
    const section *x = a, *y = b;
    if (x->pos != y->pos) return (x->pos > y->pos) - (x->pos < y->pos);
    return (x->count > y->count) - (x->count < y->count);
}

static int check_sections(tp_dataset *ds)
{
    const tp_dataset_header *h = &ds->header;
    section sections[5] = {
        {"offsets", offsetof(tp_dataset_header, offsets_pos), h->offsets_pos, h->instance_count + 1, 8},
        {"tokens", offsetof(tp_dataset_header, tokens_pos), h->tokens_pos, h->token_count, h->token_bytes},
        {"meta", offsetof(tp_dataset_header, meta_pos), h->meta_pos, h->instance_count, sizeof(tp_dataset_meta)},
        {"mask_offsets", offsetof(tp_dataset_header, mask_offsets_pos), h->mask_offsets_pos, h->instance_count + 1, 8},
        {"masks", offsetof(tp_dataset_header, masks_pos), h->masks_pos, h->mask_count, sizeof(tp_dataset_mask)},
    };
    int count = h->masks_pos ? 5 : 3;
    for (int i = 0; i < count; i++)
        if (check_section(ds, &sections[i]) != 0) return -1;
    qsort(sections, count, sizeof sections[0], compare_section_pos);
    for (int i = 0; i + 1 < count; i++)
        if (sections[i].pos + sections[i].count * sections[i].element_bytes > sections[i + 1].pos)
            return tp_fail("%s: sections %s (at %" PRIu64 ") and %s (at %" PRIu64 ") overlap", ds->path,
                           sections[i].name, sections[i].pos, sections[i + 1].name, sections[i + 1].pos);
    ds->offsets = (const uint64_t *)(ds->map + h->offsets_pos);
    ds->tokens = ds->map + h->tokens_pos;
    ds->meta = (const tp_dataset_meta *)(ds->map + h->meta_pos);
    if (h->masks_pos) {
        ds->mask_offsets = (const uint64_t *)(ds->map + h->mask_offsets_pos);
        ds->masks = (const tp_dataset_mask *)(ds->map + h->masks_pos);
    }
    return 0;
}

static inline uint32_t token_at(const tp_dataset *ds, uint64_t t)
{
    if (ds->header.token_bytes == 2) return ((const uint16_t *)ds->tokens)[t];
    return ((const uint32_t *)ds->tokens)[t];
}

static int check_instances(const tp_dataset *ds)
{
    const tp_dataset_header *h = &ds->header;
    char problem[256];
    if (ds->offsets[0] != 0)
        return fail_at(ds, h->offsets_pos, "offsets[0] is %" PRIu64 ", expected 0", ds->offsets[0]);
    for (uint64_t i = 0; i < h->instance_count; i++) {
        uint64_t start = ds->offsets[i], end = ds->offsets[i + 1], end_pos = h->offsets_pos + 8 * (i + 1);
        if (end > h->token_count)
            return fail_at(ds, end_pos, "offsets[%" PRIu64 "] = %" PRIu64 " is beyond token_count %" PRIu64, i + 1, end,
                           h->token_count);
        if (end < start) return fail_at(ds, end_pos, "token offsets not increasing at instance %" PRIu64, i);
        if (end - start < 2)
            return fail_at(ds, end_pos, "instance %" PRIu64 " has %" PRIu64 " tokens, fewer than 2", i, end - start);
        if (end - start > (uint64_t)h->seq_length + h->tgt_seq_length)
            return fail_at(ds, end_pos, "instance %" PRIu64 " has %" PRIu64 " tokens, more than seq_length %" PRIu32 "%s",
                           i, end - start, h->seq_length, h->tgt_seq_length ? " + tgt_seq_length" : "");
        if (meta_problem(h, ds->meta[i], end - start, problem, sizeof problem))
            return fail_at(ds, h->meta_pos + sizeof(tp_dataset_meta) * i, "instance %" PRIu64 ": %s", i, problem);
        for (uint64_t t = start; t < end; t++)
            if (token_at(ds, t) >= h->vocab_size)
                return fail_at(ds, h->tokens_pos + h->token_bytes * t,
                               "instance %" PRIu64 ": token id %" PRIu32 " >= vocab_size %" PRIu64, i, token_at(ds, t),
                               h->vocab_size);
    }
    if (ds->offsets[h->instance_count] != h->token_count)
        return fail_at(ds, h->offsets_pos + 8 * h->instance_count,
                       "offsets end at %" PRIu64 " but token_count is %" PRIu64, ds->offsets[h->instance_count],
                       h->token_count);
    return 0;
}

static int check_masks(const tp_dataset *ds)
{
    const tp_dataset_header *h = &ds->header;
    char problem[256];
    if (ds->mask_offsets[0] != 0)
        return fail_at(ds, h->mask_offsets_pos, "mask_offsets[0] is %" PRIu64 ", expected 0", ds->mask_offsets[0]);
    for (uint64_t i = 0; i < h->instance_count; i++) {
        uint64_t start = ds->mask_offsets[i], end = ds->mask_offsets[i + 1];
        uint64_t length = ds->offsets[i + 1] - ds->offsets[i], end_pos = h->mask_offsets_pos + 8 * (i + 1);
        if (end > h->mask_count)
            return fail_at(ds, end_pos, "mask_offsets[%" PRIu64 "] = %" PRIu64 " is beyond mask_count %" PRIu64, i + 1,
                           end, h->mask_count);
        if (end < start) return fail_at(ds, end_pos, "mask offsets not increasing at instance %" PRIu64, i);
        int64_t previous = -1;
        for (uint64_t m = start; m < end; m++) {
            if (mask_problem(ds->masks[m], previous, length, h->vocab_size, problem, sizeof problem))
                return fail_at(ds, h->masks_pos + sizeof(tp_dataset_mask) * m, "instance %" PRIu64 ": %s", i, problem);
            previous = ds->masks[m].position;
        }
    }
    if (ds->mask_offsets[h->instance_count] != h->mask_count)
        return fail_at(ds, h->mask_offsets_pos + 8 * h->instance_count,
                       "mask offsets end at %" PRIu64 " but mask_count is %" PRIu64,
                       ds->mask_offsets[h->instance_count], h->mask_count);
    return 0;
}

static int map_file(tp_dataset *ds)
{
    int fd = open(ds->path, O_RDONLY);
    if (fd < 0) return tp_fail("%s: %s", ds->path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int err = errno;
        close(fd);
        return tp_fail("%s: %s", ds->path, strerror(err));
    }
    ds->map_bytes = (size_t)st.st_size;
    if (ds->map_bytes < sizeof(tp_dataset_header)) {
        close(fd);
        return tp_fail("%s: file has %zu bytes, less than the %zu-byte header", ds->path, ds->map_bytes,
                       sizeof(tp_dataset_header));
    }
    void *map = mmap(NULL, ds->map_bytes, PROT_READ, MAP_PRIVATE, fd, 0);
    int err = errno;
    if (map == MAP_FAILED) {
        close(fd);
        return tp_fail("%s: mmap: %s", ds->path, strerror(err));
    }
    ds->map = map;
    ds->fd = fd;
    ds->mtime = st.st_mtim;
    memcpy(&ds->header, ds->map, sizeof ds->header);
    return 0;
}

tp_dataset *tp_dataset_open(const char *path)
{
    tp_dataset *ds = tp_xcalloc(1, sizeof *ds);
    ds->path = tp_xstrdup(path);
    ds->fd = -1;
    if (map_file(ds) != 0 || check_header(ds) != 0 || check_sections(ds) != 0 || check_instances(ds) != 0 ||
        (ds->masks && check_masks(ds) != 0)) {
        tp_dataset_close(ds);
        return NULL;
    }
    return ds;
}

void tp_dataset_close(tp_dataset *ds)
{
    if (!ds) return;
    if (ds->map) munmap((void *)ds->map, ds->map_bytes);
    if (ds->fd >= 0) close(ds->fd);
    free(ds->path);
    free(ds);
}

int tp_dataset_kind(const tp_dataset *ds) { return (int)ds->header.kind; }
int64_t tp_dataset_count(const tp_dataset *ds) { return (int64_t)ds->header.instance_count; }
int64_t tp_dataset_seq_length(const tp_dataset *ds) { return ds->header.seq_length; }
int64_t tp_dataset_tgt_seq_length(const tp_dataset *ds) { return ds->header.tgt_seq_length; }
int64_t tp_dataset_vocab_size(const tp_dataset *ds) { return (int64_t)ds->header.vocab_size; }
int tp_dataset_static_masking(const tp_dataset *ds) { return ds->masks != NULL; }

/* Copies at most max_length ids of instance index (validated at open); returns how many. */
static int64_t copy_ids(const tp_dataset *ds, int64_t index, int32_t *out, int64_t max_length)
{
    uint64_t start = ds->offsets[index];
    int64_t length = (int64_t)(ds->offsets[index + 1] - start);
    if (length > max_length) length = max_length;
    for (int64_t t = 0; t < length; t++) out[t] = (int32_t)token_at(ds, start + t);
    return length;
}

int64_t tp_dataset_instance(const tp_dataset *ds, int64_t index, int32_t *out, tp_dataset_meta *meta)
{
    if (index < 0 || index >= tp_dataset_count(ds))
        return tp_fail("%s: instance %" PRId64 " outside [0, %" PRId64 ")", ds->path, index, tp_dataset_count(ds));
    if (meta) *meta = ds->meta[index];
    return copy_ids(ds, index, out, INT64_MAX);
}

/* ---- masking ---- */

int tp_masking_options_check(const tp_masking_options *m)
{
    if (!(m->mask_prob > 0 && m->mask_prob <= 1)) return tp_fail("masking: mask_prob %g outside (0, 1]", m->mask_prob);
    if (m->vocab_size < 2 || m->vocab_size > INT32_MAX)
        return tp_fail("masking: vocab_size %" PRId64 " outside [2, %d]", m->vocab_size, INT32_MAX);
    const int32_t ids[4] = {m->mask_id, m->pad_id, m->cls_id, m->sep_id};
    const char *names[4] = {"mask_id", "pad_id", "cls_id", "sep_id"};
    int64_t specials_in_range = 0; /* distinct special ids in [1, vocab_size - 1] */
    for (int i = 0; i < 4; i++) {
        if (ids[i] < 0 || ids[i] >= m->vocab_size)
            return tp_fail("masking: %s %" PRId32 " outside [0, vocab_size %" PRId64 ")", names[i], ids[i],
                           m->vocab_size);
        int repeated = 0;
        for (int j = 0; j < i; j++) repeated |= ids[j] == ids[i];
        specials_in_range += ids[i] >= 1 && !repeated;
    }
    if (m->vocab_size - 1 <= specials_in_range)
        return tp_fail("masking: no id in [1, %" PRId64
                       "] other than the special tokens to use as a random replacement",
                       m->vocab_size - 1);
    return 0;
}

static int is_special(const tp_masking_options *m, int32_t id)
{
    return id == m->cls_id || id == m->sep_id || id == m->pad_id || id == m->mask_id;
}

static int32_t random_replacement(const tp_masking_options *m, tp_rng *rng)
{
    /* As TencentPretrain: redraw until the id is not special (checked to exist). */
    for (;;) {
        int32_t id = 1 + (int32_t)tp_rng_below(rng, (uint64_t)m->vocab_size - 1);
        if (!is_special(m, id)) return id;
    }
}

static int compare_i32(const void *a, const void *b)
{
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x > y) - (x < y);
}

int64_t tp_mask_sequence(int32_t *ids, int64_t length, const tp_masking_options *m, tp_rng *rng, int32_t *positions,
                         int32_t *labels)
{
    int64_t candidates = 0;
    for (int64_t i = 0; i < length; i++)
        if (ids[i] != m->cls_id && ids[i] != m->sep_id && ids[i] != m->pad_id) positions[candidates++] = (int32_t)i;
    /* nearbyint rounds half to even in the default mode, as Python's round. */
    int64_t wanted = (int64_t)nearbyint((double)length * m->mask_prob);
    if (wanted < 1) wanted = 1;
    int64_t chosen = wanted < candidates ? wanted : candidates;
    /* A partial Fisher-Yates shuffle: the first `chosen` candidates are a uniform random subset. */
    for (int64_t k = 0; k < chosen; k++) {
        int64_t j = k + (int64_t)tp_rng_below(rng, (uint64_t)(candidates - k));
        int32_t tmp = positions[k];
        positions[k] = positions[j];
        positions[j] = tmp;
    }
    qsort(positions, (size_t)chosen, sizeof *positions, compare_i32);
    for (int64_t k = 0; k < chosen; k++) {
        int32_t pos = positions[k];
        labels[k] = ids[pos];
        double u = tp_rng_uniform(rng);
        if (u < 0.8)
            ids[pos] = m->mask_id;
        else if (u < 0.9)
            ids[pos] = random_replacement(m, rng);
    }
    return chosen;
}

/* ---- the loader ---- */

struct tp_loader {
    const tp_dataset *ds;
    tp_loader_options options;
    int64_t epoch, cursor; /* position of the next global batch in the stream of all ranks */
    int64_t *order;        /* the dataset permutation of order_epoch */
    int64_t order_epoch;
    int64_t *row_instance, *row_epoch, *row_length, *row_masks;
    int32_t *row_positions, *row_labels; /* [B*S]: each row's masks before compaction */
    tp_batch batch;
};

void tp_data_order(uint64_t seed, int64_t epoch, int shuffle, int64_t *order, int64_t count)
{
    for (int64_t i = 0; i < count; i++) order[i] = i;
    if (shuffle) {
        uint64_t key = tp_hash3(seed, TP_STREAM_DATA_ORDER, (uint64_t)epoch);
        tp_rng rng = tp_rng_make(key, TP_STREAM_DATA_ORDER, 0);
        tp_rng_shuffle_i64(&rng, order, count);
    }
}

static void build_order(tp_loader *loader, int64_t epoch)
{
    loader->order_epoch = epoch;
    tp_data_order(loader->options.seed, epoch, loader->options.shuffle, loader->order, tp_dataset_count(loader->ds));
}

static int check_loader_options(const tp_dataset *ds, tp_loader_options *o)
{
    int kind = tp_dataset_kind(ds), lm = kind == TP_DATASET_LM;
    int unmasked = lm || kind == TP_DATASET_SEQ2SEQ || kind == TP_DATASET_PREFIXLM; /* their targets are ids */
    int64_t ds_seq = tp_dataset_seq_length(ds) - lm; /* an lm window's last token is only a target */
    if (o->batch_size < 1) return tp_fail("loader: batch_size %" PRId64 " must be at least 1", o->batch_size);
    if (o->seq_length == 0) o->seq_length = ds_seq;
    if (o->seq_length < 1 + !lm || o->seq_length > ds_seq)
        return tp_fail("loader: seq_length %" PRId64 " outside [%d, %" PRId64 "] (the dataset's seq_length%s)",
                       o->seq_length, 1 + !lm, ds_seq, lm ? " - 1" : "");
    if (o->world_size < 1 || o->rank < 0 || o->rank >= o->world_size)
        return tp_fail("loader: rank %d outside [0, world_size %d)", o->rank, o->world_size);
    if (tp_dataset_count(ds) < o->world_size)
        return tp_fail("%s: %" PRId64 " instances are fewer than world_size %d", ds->path, tp_dataset_count(ds),
                       o->world_size);
    if (o->masking.vocab_size == 0) o->masking.vocab_size = tp_dataset_vocab_size(ds);
    if (o->masking.vocab_size < tp_dataset_vocab_size(ds))
        return tp_fail("loader: masking vocab_size %" PRId64 " is smaller than the dataset's %" PRId64,
                       o->masking.vocab_size, tp_dataset_vocab_size(ds));
    if (unmasked && (o->masking.pad_id < 0 || o->masking.pad_id >= o->masking.vocab_size))
        return tp_fail("loader: pad_id %" PRId32 " outside [0, vocab_size %" PRId64 ")", o->masking.pad_id,
                       o->masking.vocab_size);
    return unmasked ? 0 : tp_masking_options_check(&o->masking); /* lm, seq2seq, prefixlm: not masked */
}

tp_loader *tp_loader_create(const tp_dataset *ds, const tp_loader_options *options)
{
    tp_loader_options resolved = *options;
    if (check_loader_options(ds, &resolved) != 0) return NULL;
    tp_loader *loader = tp_xcalloc(1, sizeof *loader);
    loader->ds = ds;
    loader->options = resolved;
    int64_t rows = resolved.batch_size, cells = rows * resolved.seq_length;
    loader->order = tp_xmalloc(sizeof(int64_t) * (size_t)tp_dataset_count(ds));
    loader->row_instance = tp_xmalloc(sizeof(int64_t) * (size_t)rows);
    loader->row_epoch = tp_xmalloc(sizeof(int64_t) * (size_t)rows);
    loader->row_length = tp_xmalloc(sizeof(int64_t) * (size_t)rows);
    loader->row_masks = tp_xmalloc(sizeof(int64_t) * (size_t)rows);
    loader->row_positions = tp_xmalloc(sizeof(int32_t) * (size_t)cells);
    loader->row_labels = tp_xmalloc(sizeof(int32_t) * (size_t)cells);
    tp_batch *batch = &loader->batch;
    batch->batch_size = rows;
    batch->seq_length = resolved.seq_length;
    batch->src = tp_xmalloc(sizeof(int32_t) * (size_t)cells);
    batch->seg = tp_xmalloc(sizeof(int32_t) * (size_t)cells);
    batch->mlm_positions = tp_xmalloc(sizeof(int32_t) * (size_t)cells);
    batch->mlm_labels = tp_xmalloc(sizeof(int32_t) * (size_t)cells);
    batch->sp_labels = tp_xmalloc(sizeof(int32_t) * (size_t)rows);
    if (tp_dataset_kind(ds) == TP_DATASET_LM || tp_dataset_kind(ds) == TP_DATASET_PREFIXLM)
        batch->tags = tp_xmalloc(sizeof(int32_t) * (size_t)cells);
    if (tp_dataset_kind(ds) == TP_DATASET_SEQ2SEQ) {
        batch->tgt_seq_length = tp_dataset_tgt_seq_length(ds) - 1; /* the decoder's input: the target less its end */
        batch->tgt_src = tp_xmalloc(sizeof(int32_t) * (size_t)(rows * batch->tgt_seq_length));
        batch->tags = tp_xmalloc(sizeof(int32_t) * (size_t)(rows * batch->tgt_seq_length));
    }
    build_order(loader, 0);
    return loader;
}

void tp_batch_free(tp_batch *batch)
{
    free(batch->src), free(batch->seg), free(batch->mlm_positions), free(batch->mlm_labels);
    free(batch->sp_labels), free(batch->labels), free(batch->targets), free(batch->tags);
    free(batch->pixels), free(batch->audio), free(batch->tgt_src);
    memset(batch, 0, sizeof *batch);
}

void tp_loader_free(tp_loader *loader)
{
    if (!loader) return;
    free(loader->order);
    free(loader->row_instance);
    free(loader->row_epoch);
    free(loader->row_length);
    free(loader->row_masks);
    free(loader->row_positions);
    free(loader->row_labels);
    tp_batch_free(&loader->batch);
    free(loader);
}

/* Applies the stored masks that survive truncation to length; returns how many. */
static int64_t apply_static_masks(const tp_dataset *ds, int64_t index, int32_t *src, int64_t length, int32_t *positions,
                                  int32_t *labels)
{
    int64_t count = 0;
    for (uint64_t m = ds->mask_offsets[index]; m < ds->mask_offsets[index + 1]; m++) {
        tp_dataset_mask mask = ds->masks[m];
        if (mask.position >= length) break;
        positions[count] = mask.position;
        labels[count] = src[mask.position];
        src[mask.position] = mask.replacement;
        count++;
    }
    return count;
}

/* An lm window (truncated to seq + 1 tokens): the inputs are its first seq tokens and the target
 * of position s is token s + 1; seg 1 marks the inputs (TencentPretrain's seg_pos), padding gets
 * pad_id and target -1. */
static void fill_lm_row(tp_loader *loader, int64_t row)
{
    const tp_dataset *ds = loader->ds;
    int64_t seq = loader->options.seq_length, index = loader->row_instance[row];
    int32_t *src = loader->batch.src + row * seq, *seg = loader->batch.seg + row * seq;
    int32_t *targets = loader->batch.tags + row * seq;
    uint64_t start = ds->offsets[index];
    int64_t window = (int64_t)(ds->offsets[index + 1] - start);
    if (window > seq + 1) window = seq + 1;
    for (int64_t s = 0; s < seq; s++) {
        seg[s] = s < window;
        src[s] = s < window ? (int32_t)token_at(ds, start + (uint64_t)s) : loader->options.masking.pad_id;
        targets[s] = s + 1 < window ? (int32_t)token_at(ds, start + (uint64_t)s + 1) : -1;
    }
    loader->row_masks[row] = 0;
    loader->row_length[row] = window < seq ? window : seq;
    loader->batch.sp_labels[row] = 0;
}

/* A seq2seq instance: the source (truncated to seq tokens) with seg 1, the target less its last
 * token as the decoder's input and less its first as the tags (-1 and pad_id past its end). */
static void fill_seq2seq_row(tp_loader *loader, int64_t row)
{
    const tp_dataset *ds = loader->ds;
    int64_t seq = loader->options.seq_length, tgt_seq = loader->batch.tgt_seq_length;
    int64_t index = loader->row_instance[row];
    int32_t pad_id = loader->options.masking.pad_id;
    int32_t *src = loader->batch.src + row * seq, *seg = loader->batch.seg + row * seq;
    int32_t *tgt_in = loader->batch.tgt_src + row * tgt_seq, *tgt_out = loader->batch.tags + row * tgt_seq;
    uint64_t start = ds->offsets[index];
    int64_t source = ds->meta[index].segment_a_length, target = (int64_t)(ds->offsets[index + 1] - start) - source;
    int64_t kept = source < seq ? source : seq;
    for (int64_t s = 0; s < seq; s++) {
        seg[s] = s < kept;
        src[s] = s < kept ? (int32_t)token_at(ds, start + (uint64_t)s) : pad_id;
    }
    uint64_t tgt_start = start + (uint64_t)source;
    for (int64_t t = 0; t < tgt_seq; t++) {
        int real = t + 1 < target;
        tgt_in[t] = real ? (int32_t)token_at(ds, tgt_start + (uint64_t)t) : pad_id;
        tgt_out[t] = real ? (int32_t)token_at(ds, tgt_start + (uint64_t)t + 1) : -1;
    }
    loader->row_masks[row] = 0;
    loader->row_length[row] = kept + target - 1;
    loader->batch.sp_labels[row] = 0;
}

/* A prefixlm instance (truncated to seq): seg 1 on the prefix, 2 on the target; the tags ask for the
 * next token from the prefix's last position on. */
static void fill_prefixlm_row(tp_loader *loader, int64_t row)
{
    const tp_dataset *ds = loader->ds;
    int64_t seq = loader->options.seq_length, index = loader->row_instance[row];
    int32_t *src = loader->batch.src + row * seq, *seg = loader->batch.seg + row * seq;
    int32_t *targets = loader->batch.tags + row * seq;
    int64_t length = copy_ids(ds, index, src, seq), prefix = ds->meta[index].segment_a_length;
    for (int64_t s = 0; s < seq; s++) {
        seg[s] = s >= length ? 0 : s < prefix ? 1 : 2;
        if (s >= length) src[s] = loader->options.masking.pad_id;
        targets[s] = s >= prefix - 1 && s + 1 < length ? src[s + 1] : -1;
    }
    loader->row_masks[row] = 0;
    loader->row_length[row] = length;
    loader->batch.sp_labels[row] = 0;
}

static void fill_row(tp_loader *loader, int64_t row)
{
    switch (loader->ds->header.kind) {
    case TP_DATASET_LM:
        fill_lm_row(loader, row);
        return;
    case TP_DATASET_SEQ2SEQ:
        fill_seq2seq_row(loader, row);
        return;
    case TP_DATASET_PREFIXLM:
        fill_prefixlm_row(loader, row);
        return;
    }
    const tp_dataset *ds = loader->ds;
    const tp_loader_options *o = &loader->options;
    int64_t seq = o->seq_length, index = loader->row_instance[row];
    int32_t *src = loader->batch.src + row * seq, *seg = loader->batch.seg + row * seq;
    int32_t *positions = loader->row_positions + row * seq, *labels = loader->row_labels + row * seq;
    tp_dataset_meta meta = ds->meta[index];
    int64_t length = copy_ids(ds, index, src, seq);
    int64_t segment_a = ds->header.kind == TP_DATASET_BERT ? meta.segment_a_length : length;
    for (int64_t s = 0; s < seq; s++) {
        seg[s] = s >= length ? 0 : s < segment_a ? 1 : 2;
        if (s >= length) src[s] = o->masking.pad_id;
    }
    if (ds->masks) {
        loader->row_masks[row] = apply_static_masks(ds, index, src, length, positions, labels);
    } else {
        uint64_t draw = (uint64_t)loader->row_epoch[row] * (uint64_t)tp_dataset_count(ds) + (uint64_t)index;
        tp_rng rng = tp_rng_make(tp_hash3(o->seed, TP_STREAM_MASKING, draw), TP_STREAM_MASKING, 0);
        loader->row_masks[row] = tp_mask_sequence(src, length, &o->masking, &rng, positions, labels);
    }
    loader->row_length[row] = length;
    loader->batch.sp_labels[row] = ds->header.kind == TP_DATASET_BERT ? meta.is_random_next : 0;
}

/* ---- reading a file that may change under a long run ---- */

/* The dataset stays mapped for the whole run.  When its file is truncated under the run, or its
 * storage fails, reading a lost page raises SIGBUS, which would kill the process without a word:
 * the loader fills rows under this guard, which turns the signal into an error at that offset. */
typedef struct read_guard {
    sigjmp_buf jump;
    const uint8_t *map;
    size_t map_bytes;
    volatile uint64_t fault_offset;
} read_guard;

static _Thread_local read_guard *active_guard;

static void on_sigbus(int signal_number, siginfo_t *info, void *context)
{
    (void)context;
    read_guard *guard = active_guard;
    const uint8_t *address = info->si_addr;
    if (guard && address >= guard->map && address < guard->map + guard->map_bytes) {
        guard->fault_offset = (uint64_t)(address - guard->map);
        siglongjmp(guard->jump, 1);
    }
    /* Not a read of the dataset: the default action, when the access repeats on return. */
    signal(signal_number, SIG_DFL);
}

/* 0, or -1 with the offset of the unreadable byte. */
static int fill_row_guarded(tp_loader *loader, int64_t row, uint64_t *fault_offset)
{
    read_guard guard = {.map = loader->ds->map, .map_bytes = loader->ds->map_bytes};
    active_guard = &guard;
    int faulted = sigsetjmp(guard.jump, 0);
    if (!faulted) fill_row(loader, row);
    active_guard = NULL;
    *fault_offset = guard.fault_offset;
    return faulted ? -1 : 0;
}

/* The rows' data came from the file as it was opened (and validated): not from a file rewritten
 * or cut short since, whose ids could lie outside the vocabulary. */
static int check_unchanged(const tp_dataset *ds)
{
    struct stat st;
    if (fstat(ds->fd, &st) != 0) return tp_fail("%s: %s", ds->path, strerror(errno));
    if ((size_t)st.st_size < ds->map_bytes)
        return tp_fail("%s: offset %lld: the file was cut short while training (it had %zu bytes when opened)",
                       ds->path, (long long)st.st_size, ds->map_bytes);
    if ((size_t)st.st_size != ds->map_bytes || st.st_mtim.tv_sec != ds->mtime.tv_sec ||
        st.st_mtim.tv_nsec != ds->mtime.tv_nsec)
        return tp_fail("%s: the file was modified while training (%zu bytes when opened, %lld now)", ds->path,
                       ds->map_bytes, (long long)st.st_size);
    return 0;
}

/* Fills every row in parallel; NULL + an error naming the file when it cannot be read as opened. */
static int fill_rows(tp_loader *loader)
{
    struct sigaction guard_action = {.sa_sigaction = on_sigbus, .sa_flags = SA_SIGINFO | SA_NODEFER}, previous;
    sigemptyset(&guard_action.sa_mask);
    sigaction(SIGBUS, &guard_action, &previous);
    int64_t rows = loader->batch.batch_size;
    uint64_t first_fault = UINT64_MAX;
#pragma omp parallel for schedule(static)
    for (int64_t row = 0; row < rows; row++) {
        uint64_t fault_offset;
        if (fill_row_guarded(loader, row, &fault_offset) != 0) {
#pragma omp critical(tp_loader_fault)
            if (fault_offset < first_fault) first_fault = fault_offset;
        }
    }
    sigaction(SIGBUS, &previous, NULL);
    if (first_fault != UINT64_MAX) {
        struct stat st;
        long long now = fstat(loader->ds->fd, &st) == 0 ? (long long)st.st_size : -1;
        return tp_fail("%s: offset %" PRIu64 ": unreadable (the file has %lld bytes now, %zu when opened: it was "
                       "truncated, or its storage failed, during the run)",
                       loader->ds->path, first_fault, now, loader->ds->map_bytes);
    }
    return check_unchanged(loader->ds);
}

const tp_batch *tp_loader_next(tp_loader *loader)
{
    const tp_loader_options *o = &loader->options;
    tp_batch *batch = &loader->batch;
    int64_t rows = batch->batch_size, seq = batch->seq_length;
    int64_t count = tp_dataset_count(loader->ds);
    /* Pick the rows' instances first (sequential: an epoch may end mid-batch), then fill them in parallel.
     * This rank's rows are positions [rank * rows, (rank + 1) * rows) of the global batch. */
    for (int64_t row = 0; row < rows; row++) {
        int64_t position = loader->cursor + o->rank * rows + row;
        int64_t epoch = loader->epoch + position / count;
        if (epoch != loader->order_epoch) build_order(loader, epoch);
        loader->row_epoch[row] = epoch;
        loader->row_instance[row] = loader->order[position % count];
    }
    loader->cursor += rows * o->world_size;
    loader->epoch += loader->cursor / count;
    loader->cursor %= count;
    if (fill_rows(loader) != 0) return NULL;
    batch->mlm_count = 0;
    batch->real_tokens = 0;
    for (int64_t row = 0; row < rows; row++) {
        for (int64_t k = 0; k < loader->row_masks[row]; k++) {
            batch->mlm_positions[batch->mlm_count] = (int32_t)(row * seq + loader->row_positions[row * seq + k]);
            batch->mlm_labels[batch->mlm_count] = loader->row_labels[row * seq + k];
            batch->mlm_count++;
        }
        batch->real_tokens += loader->row_length[row];
    }
    return batch;
}

void tp_loader_position(const tp_loader *loader, int64_t *epoch, int64_t *cursor)
{
    *epoch = loader->epoch;
    *cursor = loader->cursor;
}

int tp_loader_seek(tp_loader *loader, int64_t epoch, int64_t cursor)
{
    int64_t count = tp_dataset_count(loader->ds);
    if (epoch < 0 || cursor < 0 || cursor >= count)
        return tp_fail("loader: position (epoch %" PRId64 ", cursor %" PRId64
                       ") outside epoch >= 0, cursor in [0, %" PRId64 ")",
                       epoch, cursor, count);
    loader->cursor = cursor;
    loader->epoch = epoch;
    return 0;
}

/* ---- the writer ---- */

struct tp_dataset_writer {
    tp_atomic_file file;
    FILE *mask_spill; /* masks until commit; already unlinked, so nothing is left behind */
    tp_dataset_header header;
    uint64_t written; /* bytes written to file.fp */
    uint64_t *offsets, *mask_offsets;
    tp_dataset_meta *meta;
    int64_t count, capacity;
    uint8_t *row; /* one instance's ids in token_bytes */
    uint32_t longest_target; /* seq2seq: what the header's tgt_seq_length becomes */
};

static int check_writer_options(const char *path, const tp_dataset_writer_options *o)
{
    if (o->kind < TP_DATASET_BERT || o->kind > TP_DATASET_PREFIXLM)
        return tp_fail("%s: unknown dataset kind %d (1 = bert, 2 = mlm, 3 = lm, 4 = seq2seq, 5 = prefixlm)", path,
                       o->kind);
    if (o->kind == TP_DATASET_SEQ2SEQ ? o->tgt_seq_length < 2 || o->tgt_seq_length > MAX_SEQ_LENGTH
                                      : o->tgt_seq_length != 0)
        return tp_fail("%s: tgt_seq_length %" PRId64 " %s", path, o->tgt_seq_length,
                       o->kind == TP_DATASET_SEQ2SEQ ? "outside [2, 65535]" : "must be 0 (not a seq2seq dataset)");
    if (o->seq_length < 2 || o->seq_length > MAX_SEQ_LENGTH)
        return tp_fail("%s: seq_length %" PRId64 " outside [2, %d]", path, o->seq_length, MAX_SEQ_LENGTH);
    if (o->vocab_size < 1 || o->vocab_size > INT32_MAX)
        return tp_fail("%s: vocab_size %" PRId64 " outside [1, %d]", path, o->vocab_size, INT32_MAX);
    return 0;
}

static void write_bytes(tp_dataset_writer *w, const void *data, uint64_t bytes)
{
    /* A short write sets the stream's error flag, which tp_atomic_commit reports. */
    if (bytes == 0) return;
    fwrite(data, 1, bytes, w->file.fp);
    w->written += bytes;
}

static uint64_t write_aligned_section(tp_dataset_writer *w, const void *data, uint64_t bytes)
{
    static const uint8_t zeros[SECTION_ALIGN];
    write_bytes(w, zeros, (SECTION_ALIGN - w->written % SECTION_ALIGN) % SECTION_ALIGN);
    uint64_t pos = w->written;
    write_bytes(w, data, bytes);
    return pos;
}

static int open_mask_spill(tp_dataset_writer *w, const char *path)
{
    size_t size = strlen(path) + 40;
    char *spill_path = tp_xmalloc(size);
    snprintf(spill_path, size, "%s.masks.tmp.%ld", path, (long)getpid());
    w->mask_spill = fopen(spill_path, "w+b");
    int err = errno;
    if (w->mask_spill) unlink(spill_path);
    int status = w->mask_spill ? 0 : tp_fail("%s: %s", spill_path, strerror(err));
    free(spill_path);
    return status;
}

tp_dataset_writer *tp_dataset_writer_open(const char *path, const tp_dataset_writer_options *options)
{
    if (check_writer_options(path, options) != 0) return NULL;
    tp_dataset_writer *w = tp_xcalloc(1, sizeof *w);
    if (tp_atomic_open(&w->file, path) != 0) {
        free(w);
        return NULL;
    }
    if (options->static_masking && open_mask_spill(w, path) != 0) {
        tp_dataset_writer_abort(w);
        return NULL;
    }
    tp_dataset_header *h = &w->header;
    memcpy(h->magic, dataset_magic, sizeof h->magic);
    h->version = DATASET_VERSION;
    h->kind = (uint32_t)options->kind;
    h->token_bytes = options->vocab_size <= 65536 ? 2 : 4;
    h->seq_length = (uint32_t)options->seq_length;
    h->vocab_size = (uint64_t)options->vocab_size;
    h->tgt_seq_length = (uint32_t)options->tgt_seq_length; /* the cap while writing */
    w->row = tp_xmalloc((size_t)(options->seq_length + options->tgt_seq_length) * 4);
    w->capacity = 1024;
    w->offsets = tp_xmalloc(sizeof(uint64_t) * (size_t)(w->capacity + 1));
    w->mask_offsets = tp_xmalloc(sizeof(uint64_t) * (size_t)(w->capacity + 1));
    w->meta = tp_xmalloc(sizeof(tp_dataset_meta) * (size_t)w->capacity);
    w->offsets[0] = w->mask_offsets[0] = 0;
    /* The header is written last, when every position is known. */
    write_bytes(w, h, sizeof *h);
    h->tokens_pos = w->written;
    return w;
}

static int check_instance(const tp_dataset_writer *w, const int32_t *ids, int64_t length, tp_dataset_meta meta,
                          const tp_dataset_mask *masks, int64_t mask_count)
{
    const tp_dataset_header *h = &w->header;
    const char *path = w->file.path;
    char problem[256];
    if (length < 2 || length > (int64_t)h->seq_length + h->tgt_seq_length)
        return tp_fail("%s: instance %" PRId64 ": length %" PRId64 " outside [2, seq_length %" PRIu32 "%s]", path,
                       w->count, length, h->seq_length, h->tgt_seq_length ? " + tgt_seq_length" : "");
    for (int64_t t = 0; t < length; t++)
        if (ids[t] < 0 || (uint64_t)ids[t] >= h->vocab_size)
            return tp_fail("%s: instance %" PRId64 ": token id %" PRId32 " outside [0, vocab_size %" PRIu64 ")", path,
                           w->count, ids[t], h->vocab_size);
    if (meta_problem(h, meta, (uint64_t)length, problem, sizeof problem))
        return tp_fail("%s: instance %" PRId64 ": %s", path, w->count, problem);
    if (mask_count > 0 && !w->mask_spill)
        return tp_fail("%s: instance %" PRId64 ": masks given to a dataset without static masking", path, w->count);
    int64_t previous = -1;
    for (int64_t m = 0; m < mask_count; m++) {
        if (mask_problem(masks[m], previous, (uint64_t)length, h->vocab_size, problem, sizeof problem))
            return tp_fail("%s: instance %" PRId64 ": %s", path, w->count, problem);
        previous = masks[m].position;
    }
    return 0;
}

int tp_dataset_writer_add(tp_dataset_writer *w, const int32_t *ids, int64_t length, tp_dataset_meta meta,
                          const tp_dataset_mask *masks, int64_t mask_count)
{
    if (check_instance(w, ids, length, meta, masks, mask_count) != 0) return -1;
    tp_dataset_header *h = &w->header;
    for (int64_t t = 0; t < length; t++) {
        if (h->token_bytes == 2)
            ((uint16_t *)w->row)[t] = (uint16_t)ids[t];
        else
            ((uint32_t *)w->row)[t] = (uint32_t)ids[t];
    }
    write_bytes(w, w->row, (uint64_t)length * h->token_bytes);
    if (mask_count > 0) fwrite(masks, sizeof *masks, (size_t)mask_count, w->mask_spill);
    if (w->count == w->capacity) {
        w->capacity *= 2;
        w->offsets = tp_xrealloc(w->offsets, sizeof(uint64_t) * (size_t)(w->capacity + 1));
        w->mask_offsets = tp_xrealloc(w->mask_offsets, sizeof(uint64_t) * (size_t)(w->capacity + 1));
        w->meta = tp_xrealloc(w->meta, sizeof(tp_dataset_meta) * (size_t)w->capacity);
    }
    h->token_count += (uint64_t)length;
    h->mask_count += (uint64_t)mask_count;
    if (h->kind == TP_DATASET_SEQ2SEQ && (uint32_t)(length - meta.segment_a_length) > w->longest_target)
        w->longest_target = (uint32_t)(length - meta.segment_a_length);
    w->meta[w->count] = meta;
    w->count++;
    w->offsets[w->count] = h->token_count;
    w->mask_offsets[w->count] = h->mask_count;
    return 0;
}

static void free_writer(tp_dataset_writer *w)
{
    if (w->mask_spill) fclose(w->mask_spill);
    free(w->offsets);
    free(w->mask_offsets);
    free(w->meta);
    free(w->row);
    free(w);
}

void tp_dataset_writer_abort(tp_dataset_writer *w)
{
    if (!w) return;
    tp_atomic_abort(&w->file);
    free_writer(w);
}

/* Copies the spilled masks into the dataset file as its last section. */
static int write_masks(tp_dataset_writer *w)
{
    uint8_t buffer[1 << 16];
    tp_dataset_header *h = &w->header;
    if (fflush(w->mask_spill) != 0 || fseek(w->mask_spill, 0, SEEK_SET) != 0)
        return tp_fail("%s: temporary mask file: %s", w->file.path, strerror(errno));
    h->masks_pos = write_aligned_section(w, NULL, 0);
    uint64_t left = h->mask_count * sizeof(tp_dataset_mask);
    while (left > 0) {
        size_t chunk = left < sizeof buffer ? (size_t)left : sizeof buffer;
        if (fread(buffer, 1, chunk, w->mask_spill) != chunk)
            return tp_fail("%s: temporary mask file: short read", w->file.path);
        write_bytes(w, buffer, chunk);
        left -= chunk;
    }
    return 0;
}

int tp_dataset_writer_commit(tp_dataset_writer *w)
{
    tp_dataset_header *h = &w->header;
    if (w->count == 0) {
        tp_fail("%s: no instances to write", w->file.path);
        tp_dataset_writer_abort(w);
        return -1;
    }
    h->instance_count = (uint64_t)w->count;
    if (h->kind == TP_DATASET_SEQ2SEQ) h->tgt_seq_length = w->longest_target;
    h->offsets_pos = write_aligned_section(w, w->offsets, sizeof(uint64_t) * (uint64_t)(w->count + 1));
    h->meta_pos = write_aligned_section(w, w->meta, sizeof(tp_dataset_meta) * (uint64_t)w->count);
    if (w->mask_spill) {
        h->mask_offsets_pos = write_aligned_section(w, w->mask_offsets, sizeof(uint64_t) * (uint64_t)(w->count + 1));
        if (write_masks(w) != 0) {
            tp_dataset_writer_abort(w);
            return -1;
        }
    }
    h->file_size = w->written;
    if (fseek(w->file.fp, 0, SEEK_SET) != 0) {
        tp_fail("%s: %s", w->file.path, strerror(errno));
        tp_dataset_writer_abort(w);
        return -1;
    }
    fwrite(h, sizeof *h, 1, w->file.fp);
    int status = tp_atomic_commit(&w->file);
    free_writer(w);
    return status;
}
