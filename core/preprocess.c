/* tp-preprocess's processors: see preprocess.h. */
#include "preprocess.h"

#include "dataset.h"
#include "error.h"
#include "preprocess_seq2seq.h"
#include "rng.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <utf8proc.h>

enum { BLOCK_LINES = 256 }; /* lines per tokenization task */

typedef struct corpus {
    const char *path;
    const char *data; /* mmap'd */
    size_t size;
    size_t pos;        /* first unread byte */
    int64_t next_line; /* 1-based number of the line at pos */
} corpus;

/* The lines of one buffer and their token ids. */
typedef struct buffer {
    int64_t first_line; /* line number of lines[0] */
    int64_t line_count, line_capacity;
    int64_t *line_start, *line_end; /* byte range in the corpus, without the newline */
    uint8_t *blank;
    int32_t *ids; /* all lines' ids, concatenated */
    int64_t id_capacity;
    int64_t *token_start;         /* [line_count + 1]: line l's ids are ids[token_start[l] .. token_start[l + 1]) */
    int64_t *split;               /* mt, prefixlm: the tokens of line l before its first tab */
    int64_t start_byte, end_byte; /* the corpus bytes the buffer covers */
} buffer;

/* Bert documents of a buffer: document d's sentences are sentence_line[first_sentence[d] .. first_sentence[d + 1]). */
typedef struct documents {
    int64_t count;
    int64_t *first_sentence;
    int64_t *sentence_line;
} documents;

typedef struct preprocess {
    const tp_preprocess_options *o;
    tp_tokenizer *tok;
    tp_masking_options masking;
    tp_dataset_writer *writer;
    tp_preprocess_progress totals;
    int kind;
    int static_masking; /* masks are stored (bert, mlm without dynamic_masking) */
    int documents;      /* buffers count documents (bert, bart), not lines */
    int pairs;          /* lines are source<TAB>target (mt, prefixlm) */
    tp_seq2seq *seq2seq; /* t5, bart, mt, prefixlm */
    int64_t buffer_index;
    /* scratch for one instance */
    tp_ids a, b;
    int32_t *instance, *masked, *positions, *labels;
    tp_dataset_mask *masks;
} preprocess;

/* ---- the corpus ---- */

static int open_corpus(corpus *c, const char *path)
{
    memset(c, 0, sizeof *c);
    c->path = path;
    c->next_line = 1;
    int fd = open(path, O_RDONLY);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) {
        int err = errno;
        if (fd >= 0) close(fd);
        return tp_fail("%s: %s", path, strerror(err));
    }
    if (S_ISDIR(st.st_mode)) {
        close(fd);
        return tp_fail("%s: %s", path, strerror(EISDIR));
    }
    c->size = (size_t)st.st_size;
    if (c->size == 0) {
        close(fd);
        return tp_fail("%s: empty corpus (0 bytes)", path);
    }
    void *map = mmap(NULL, c->size, PROT_READ, MAP_PRIVATE, fd, 0);
    int err = errno;
    close(fd);
    if (map == MAP_FAILED) return tp_fail("%s: mmap: %s", path, strerror(err));
    c->data = map;
    madvise(map, c->size, MADV_SEQUENTIAL);
    return 0;
}

static void close_corpus(corpus *c)
{
    if (c->data) munmap((void *)c->data, c->size);
}

/* Drops the pages of a processed buffer from memory (they are file-backed and read-only). */
static void release_pages(const corpus *c, int64_t start, int64_t end)
{
    int64_t page = sysconf(_SC_PAGESIZE);
    int64_t first = (start + page - 1) / page * page, last = end / page * page;
    if (last > first) madvise((void *)(c->data + first), (size_t)(last - first), MADV_DONTNEED);
}

/* Blank as in Python's `not line.strip()`, for ASCII whitespace. */
static int is_blank(const char *text, int64_t len)
{
    for (int64_t i = 0; i < len; i++) {
        char c = text[i];
        if (c != ' ' && c != '\t' && c != '\r' && c != '\f' && c != '\v') return 0;
    }
    return 1;
}

static void push_line(buffer *buf, int64_t start, int64_t end, int blank)
{
    if (buf->line_count == buf->line_capacity) {
        buf->line_capacity = buf->line_capacity ? 2 * buf->line_capacity : 4096;
        buf->line_start = tp_xrealloc(buf->line_start, sizeof(int64_t) * (size_t)buf->line_capacity);
        buf->line_end = tp_xrealloc(buf->line_end, sizeof(int64_t) * (size_t)buf->line_capacity);
        buf->blank = tp_xrealloc(buf->blank, (size_t)buf->line_capacity);
        buf->token_start = tp_xrealloc(buf->token_start, sizeof(int64_t) * (size_t)(buf->line_capacity + 1));
        buf->split = tp_xrealloc(buf->split, sizeof(int64_t) * (size_t)buf->line_capacity);
    }
    buf->line_start[buf->line_count] = start;
    buf->line_end[buf->line_count] = end;
    buf->blank[buf->line_count] = (uint8_t)blank;
    buf->line_count++;
}

/* Reads lines up to docs_buffer_size units: bert documents (ended by a blank line) or mlm non-blank lines. */
static void read_buffer(const preprocess *p, corpus *c, buffer *buf)
{
    int64_t units = 0;
    int in_document = 0;
    buf->line_count = 0;
    buf->first_line = c->next_line;
    buf->start_byte = (int64_t)c->pos;
    while (c->pos < c->size && units < p->o->docs_buffer_size) {
        const char *line = c->data + c->pos;
        const char *newline = memchr(line, '\n', c->size - c->pos);
        int64_t len = newline ? newline - line : (int64_t)(c->size - c->pos);
        int blank = is_blank(line, len);
        push_line(buf, (int64_t)c->pos, (int64_t)c->pos + len, blank);
        c->pos += (size_t)len + (newline != NULL);
        c->next_line++;
        if (!p->documents)
            units += !blank;
        else if (blank && in_document)
            units++;
        in_document = !blank;
    }
    buf->end_byte = (int64_t)c->pos;
}

/* ---- parallel tokenization ---- */

/* Byte offset of the first invalid UTF-8 sequence in text, -1 if none. */
static int64_t invalid_utf8_offset(const char *text, int64_t len)
{
    const utf8proc_uint8_t *bytes = (const utf8proc_uint8_t *)text;
    for (int64_t pos = 0; pos < len;) {
        if (bytes[pos] < 0x80) {
            pos++;
            continue;
        }
        utf8proc_int32_t code_point;
        utf8proc_ssize_t step = utf8proc_iterate(bytes + pos, len - pos, &code_point);
        if (step < 0) return pos;
        pos += step;
    }
    return -1;
}

typedef struct block_result {
    tp_ids ids;
    char *error; /* the block's first error, with its line */
} block_result;

/* A line's ids; pairs: the source's, then the target's (after the first tab), *split the source's count. */
static int encode_line(const preprocess *p, const char *text, int64_t len, tp_ids *ids, int64_t *split)
{
    if (!p->pairs) return tp_tokenizer_encode(p->tok, text, (size_t)len, ids);
    const char *tab = memchr(text, '\t', (size_t)len);
    int64_t before = ids->count, source = tab - text;
    if (tp_tokenizer_encode(p->tok, text, (size_t)source, ids) != 0) return -1;
    *split = ids->count - before;
    return tp_tokenizer_encode(p->tok, tab + 1, (size_t)(len - source - 1), ids);
}

static void tokenize_block(const preprocess *p, const corpus *c, const buffer *buf, int64_t block, block_result *result,
                           int64_t *line_tokens)
{
    int64_t end = (block + 1) * BLOCK_LINES < buf->line_count ? (block + 1) * BLOCK_LINES : buf->line_count;
    for (int64_t line = block * BLOCK_LINES; line < end; line++) {
        line_tokens[line] = 0;
        if (buf->blank[line]) continue;
        const char *text = c->data + buf->line_start[line];
        int64_t len = buf->line_end[line] - buf->line_start[line], before = result->ids.count;
        int64_t bad = invalid_utf8_offset(text, len);
        char message[1024];
        if (bad >= 0)
            snprintf(message, sizeof message, "%s: line %" PRId64 ": invalid UTF-8 at byte %" PRId64 " of the line",
                     c->path, buf->first_line + line, bad + 1);
        else if (p->pairs && !memchr(text, '\t', (size_t)len))
            snprintf(message, sizeof message,
                     "%s: line %" PRId64 ": no tab: the %s processor reads source<TAB>target lines", c->path,
                     buf->first_line + line, p->o->processor);
        else if (encode_line(p, text, len, &result->ids, &buf->split[line]) != 0)
            snprintf(message, sizeof message, "%s: line %" PRId64 ": %s", c->path, buf->first_line + line,
                     tp_last_error());
        else {
            line_tokens[line] = result->ids.count - before;
            continue;
        }
        result->error = tp_xstrdup(message); /* tp_fail's message is per thread: carry it out */
        return;
    }
}

static int tokenize_buffer(const preprocess *p, const corpus *c, buffer *buf)
{
    int64_t blocks = (buf->line_count + BLOCK_LINES - 1) / BLOCK_LINES;
    block_result *results = tp_xcalloc((size_t)(blocks ? blocks : 1), sizeof *results);
    int64_t *line_tokens = tp_xmalloc(sizeof(int64_t) * (size_t)(buf->line_count + 1));
#pragma omp parallel for schedule(dynamic, 1)
    for (int64_t block = 0; block < blocks; block++) tokenize_block(p, c, buf, block, &results[block], line_tokens);
    int status = 0;
    int64_t total = 0;
    for (int64_t block = 0; block < blocks; block++) {
        if (results[block].error && status == 0) status = tp_fail("%s", results[block].error); /* the earliest line */
        total += results[block].ids.count;
    }
    if (status == 0) {
        if (total > buf->id_capacity) {
            buf->id_capacity = total;
            buf->ids = tp_xrealloc(buf->ids, sizeof(int32_t) * (size_t)total);
        }
        int64_t filled = 0;
        for (int64_t block = 0; block < blocks; block++) {
            if (results[block].ids.count == 0) continue; /* its ids may be NULL */
            memcpy(buf->ids + filled, results[block].ids.ids, sizeof(int32_t) * (size_t)results[block].ids.count);
            filled += results[block].ids.count;
        }
        buf->token_start[0] = 0;
        for (int64_t line = 0; line < buf->line_count; line++)
            buf->token_start[line + 1] = buf->token_start[line] + line_tokens[line];
    }
    for (int64_t block = 0; block < blocks; block++) {
        tp_ids_free(&results[block].ids);
        free(results[block].error);
    }
    free(results);
    free(line_tokens);
    return status;
}

/* ---- instances ---- */

/* The generator of one unit (bert: document, mlm: buffer) in one dup round. */
static tp_rng unit_rng(uint64_t seed, int64_t round, int64_t unit)
{
    uint64_t key =
        tp_hash3(tp_hash3(seed, TP_STREAM_PREPROCESS, (uint64_t)round), TP_STREAM_PREPROCESS, (uint64_t)unit);
    return tp_rng_make(key, TP_STREAM_PREPROCESS, 0);
}

/* randint(low, high) with both ends included, as Python's random.randint. */
static int64_t rand_int(tp_rng *rng, int64_t low, int64_t high)
{
    return low + (int64_t)tp_rng_below(rng, (uint64_t)(high - low + 1));
}

/* Masks (static masking) and writes one instance. */
static int emit(preprocess *p, const int32_t *ids, int64_t length, tp_dataset_meta meta, tp_rng *rng)
{
    int64_t mask_count = 0;
    if (p->static_masking) {
        memcpy(p->masked, ids, sizeof(int32_t) * (size_t)length);
        mask_count = tp_mask_sequence(p->masked, length, &p->masking, rng, p->positions, p->labels);
        for (int64_t k = 0; k < mask_count; k++) {
            p->masks[k].position = (uint16_t)p->positions[k];
            p->masks[k].reserved = 0;
            p->masks[k].replacement = p->masked[p->positions[k]];
        }
    }
    if (tp_dataset_writer_add(p->writer, ids, length, meta, p->masks, mask_count) != 0) return -1;
    p->totals.instances++;
    p->totals.instance_tokens += length;
    p->totals.masks += mask_count;
    return 0;
}

static void append_ids(tp_ids *dst, const int32_t *src, int64_t count)
{
    if (dst->count + count > dst->capacity) {
        dst->capacity = 2 * (dst->count + count);
        dst->ids = tp_xrealloc(dst->ids, sizeof(int32_t) * (size_t)dst->capacity);
    }
    memcpy(dst->ids + dst->count, src, sizeof(int32_t) * (size_t)count);
    dst->count += count;
}

static const int32_t *sentence_ids(const buffer *buf, const documents *docs, int64_t sentence, int64_t *length)
{
    int64_t line = docs->sentence_line[sentence];
    *length = buf->token_start[line + 1] - buf->token_start[line];
    return buf->ids + buf->token_start[line];
}

static void append_sentences(tp_ids *dst, const buffer *buf, const documents *docs, int64_t first, int64_t end)
{
    for (int64_t s = first; s < end; s++) {
        int64_t length;
        const int32_t *ids = sentence_ids(buf, docs, s, &length);
        append_ids(dst, ids, length);
    }
}

/* Sentences of a random document (another one if 10 draws find one) from a random start until target_length. */
static void random_next_segment(preprocess *p, const buffer *buf, const documents *docs, int64_t document,
                                int64_t target_length, tp_rng *rng)
{
    int64_t other = document;
    for (int attempt = 0; attempt < 10 && other == document; attempt++) other = rand_int(rng, 0, docs->count - 1);
    int64_t first = docs->first_sentence[other], end = docs->first_sentence[other + 1];
    /* At least one sentence, even when A already reaches the target. */
    for (int64_t s = rand_int(rng, first, end - 1); s < end; s++) {
        append_sentences(&p->b, buf, docs, s, s + 1);
        if (p->b.count >= target_length) break;
    }
}

/* TencentPretrain's truncate_seq_pair: drop tokens from the front or back (at random) of the longer segment. */
static void truncate_pair(tp_ids *a, tp_ids *b, int64_t max_tokens, tp_rng *rng, int64_t *a_first, int64_t *b_first)
{
    int64_t a_end = a->count, b_end = b->count;
    *a_first = *b_first = 0;
    while ((a_end - *a_first) + (b_end - *b_first) > max_tokens) {
        int a_longer = a_end - *a_first > b_end - *b_first;
        int64_t *first = a_longer ? a_first : b_first, *end = a_longer ? &a_end : &b_end;
        if (tp_rng_uniform(rng) < 0.5)
            (*first)++;
        else
            (*end)--;
    }
    a->count = a_end;
    b->count = b_end;
}

static int emit_pair(preprocess *p, int is_random_next, tp_rng *rng)
{
    int64_t a_first, b_first;
    truncate_pair(&p->a, &p->b, p->o->seq_length - 3, rng, &a_first, &b_first);
    int64_t a_length = p->a.count - a_first, b_length = p->b.count - b_first, n = 0;
    int32_t *ids = p->instance;
    ids[n++] = p->tok->cls_id;
    memcpy(ids + n, p->a.ids + a_first, sizeof(int32_t) * (size_t)a_length);
    n += a_length;
    ids[n++] = p->tok->sep_id;
    tp_dataset_meta meta = {(uint16_t)n, (uint8_t)is_random_next, 0};
    memcpy(ids + n, p->b.ids + b_first, sizeof(int32_t) * (size_t)b_length);
    n += b_length;
    ids[n++] = p->tok->sep_id;
    return emit(p, ids, n, meta, rng);
}

/* BertDataset.create_ins_from_doc for document d of the buffer (global number unit). */
static int bert_document(preprocess *p, const buffer *buf, const documents *docs, int64_t d, tp_rng *rng)
{
    int64_t max_tokens = p->o->seq_length - 3, target_length = max_tokens;
    if (tp_rng_uniform(rng) < p->o->short_seq_prob) target_length = rand_int(rng, 2, max_tokens);
    int64_t first = docs->first_sentence[d], end = docs->first_sentence[d + 1];
    int64_t chunk_first = first, chunk_tokens = 0;
    for (int64_t s = first; s < end; s++) {
        int64_t length;
        sentence_ids(buf, docs, s, &length);
        chunk_tokens += length;
        if (s < end - 1 && chunk_tokens < target_length) continue;
        int64_t chunk_sentences = s - chunk_first + 1;
        int64_t a_sentences = chunk_sentences >= 2 ? rand_int(rng, 1, chunk_sentences - 1) : 1;
        p->a.count = p->b.count = 0;
        append_sentences(&p->a, buf, docs, chunk_first, chunk_first + a_sentences);
        int is_random_next = chunk_sentences == 1 || tp_rng_uniform(rng) < 0.5;
        if (is_random_next) {
            random_next_segment(p, buf, docs, d, target_length - p->a.count, rng);
            s -= chunk_sentences - a_sentences; /* the unused sentences start the next chunk */
        } else {
            append_sentences(&p->b, buf, docs, chunk_first + a_sentences, s + 1);
        }
        if (emit_pair(p, is_random_next, rng) != 0) return -1;
        chunk_first = s + 1;
        chunk_tokens = 0;
    }
    return 0;
}

/* Documents: runs of non-blank lines; lines without tokens are dropped, and documents without sentences. */
static void find_documents(const buffer *buf, documents *docs)
{
    docs->first_sentence = tp_xrealloc(docs->first_sentence, sizeof(int64_t) * (size_t)(buf->line_count + 1));
    docs->sentence_line = tp_xrealloc(docs->sentence_line, sizeof(int64_t) * (size_t)(buf->line_count + 1));
    int64_t sentences = 0;
    docs->count = 0;
    docs->first_sentence[0] = 0;
    for (int64_t line = 0; line <= buf->line_count; line++) {
        int ends_document = line == buf->line_count || buf->blank[line];
        if (ends_document && sentences > docs->first_sentence[docs->count])
            docs->first_sentence[++docs->count] = sentences;
        else if (!ends_document && buf->token_start[line + 1] > buf->token_start[line])
            docs->sentence_line[sentences++] = line;
    }
}

static int bert_buffer(preprocess *p, const buffer *buf, documents *docs)
{
    find_documents(buf, docs);
    for (int64_t round = 0; round < p->o->dup_factor; round++) {
        for (int64_t d = 0; d < docs->count; d++) {
            tp_rng rng = unit_rng(p->o->seed, round, p->totals.documents + d);
            if (bert_document(p, buf, docs, d, &rng) != 0) return -1;
        }
    }
    p->totals.documents += docs->count;
    p->totals.sentences += docs->first_sentence[docs->count];
    return 0;
}

/* Writes the mlm piece in p->instance; a last piece of one token (a lone [SEP]) is dropped: an instance needs 2. */
static int emit_piece(preprocess *p, int64_t length, tp_rng *rng)
{
    tp_dataset_meta meta = {(uint16_t)length, 0, 0};
    if (length < 2) return 0;
    if (!p->seq2seq) return emit(p, p->instance, length, meta, rng);
    int64_t written = tp_seq2seq_t5_piece(p->seq2seq, p->writer, p->instance, length, rng);
    p->totals.instances += written > 0 ? written : 0;
    return written < 0 ? -1 : 0;
}

/* MlmDataset: [CLS] line [SEP] cut into seq_length pieces, per line or (full_sentences) over the buffer.
 * LmDataset is the same with pieces of seq_length + 1 tokens (inputs and the next token of each). */
static int mlm_buffer(preprocess *p, const buffer *buf)
{
    int64_t seq = p->o->seq_length + (p->kind == TP_DATASET_LM);
    for (int64_t round = 0; round < p->o->dup_factor; round++) {
        tp_rng rng = unit_rng(p->o->seed, round, p->buffer_index);
        int64_t fill = 0;
        for (int64_t line = 0; line < buf->line_count; line++) {
            int64_t first = buf->token_start[line], end = buf->token_start[line + 1];
            if (first == end) continue;
            for (int64_t t = first - 1; t <= end; t++) {
                p->instance[fill++] = t < first ? p->masking.cls_id : t == end ? p->masking.sep_id : buf->ids[t];
                int line_done = t == end && !p->o->full_sentences;
                if (fill < seq && !line_done) continue;
                if (emit_piece(p, fill, &rng) != 0) return -1;
                fill = 0;
            }
        }
        if (emit_piece(p, fill, &rng) != 0) return -1;
    }
    for (int64_t line = 0; line < buf->line_count; line++)
        p->totals.documents += buf->token_start[line + 1] > buf->token_start[line];
    return 0;
}

/* bart: per dup round and document, BartDataset's chunks (core/preprocess_seq2seq.h). */
static int bart_buffer(preprocess *p, const buffer *buf, documents *docs)
{
    find_documents(buf, docs);
    int64_t sentences = docs->first_sentence[docs->count];
    const int32_t **ids = tp_xmalloc(sizeof(int32_t *) * (size_t)(sentences + 1));
    int64_t *lengths = tp_xmalloc(sizeof(int64_t) * (size_t)(sentences + 1));
    for (int64_t s = 0; s < sentences; s++) ids[s] = sentence_ids(buf, docs, s, &lengths[s]);
    int status = 0;
    for (int64_t round = 0; round < p->o->dup_factor && status == 0; round++)
        for (int64_t d = 0; d < docs->count && status == 0; d++) {
            tp_rng rng = unit_rng(p->o->seed, round, p->totals.documents + d);
            int64_t first = docs->first_sentence[d];
            int64_t written = tp_seq2seq_bart_document(p->seq2seq, p->writer, ids + first, lengths + first,
                                                       docs->first_sentence[d + 1] - first, &rng);
            status = written < 0 ? -1 : 0;
            p->totals.instances += written > 0 ? written : 0;
        }
    p->totals.documents += docs->count;
    p->totals.sentences += sentences;
    free(ids);
    free(lengths);
    return status;
}

/* mt, prefixlm: one instance per source<TAB>target line (no randomness). */
static int pairs_buffer(preprocess *p, const buffer *buf)
{
    for (int64_t line = 0; line < buf->line_count; line++) {
        if (buf->blank[line]) continue;
        const int32_t *ids = buf->ids + buf->token_start[line];
        int64_t length = buf->token_start[line + 1] - buf->token_start[line], split = buf->split[line];
        int64_t written = tp_seq2seq_pair(p->seq2seq, p->writer, ids, split, ids + split, length - split);
        if (written < 0) return -1;
        p->totals.instances += written;
        p->totals.documents++;
    }
    return 0;
}

static int process_buffer(preprocess *p, const buffer *buf, documents *docs)
{
    if (p->kind == TP_DATASET_BERT) return bert_buffer(p, buf, docs);
    if (p->pairs) return pairs_buffer(p, buf);
    if (p->documents) return bart_buffer(p, buf, docs);
    return mlm_buffer(p, buf); /* mlm, lm, t5 */
}

/* ---- setup ---- */

static int check_options(const tp_preprocess_options *o, int *kind)
{
    if ((*kind = tp_seq2seq_processor_kind(o->processor)) != 0) { /* tp_seq2seq_create checks the rest */
        if (o->dup_factor < 1) return tp_fail("dup_factor %" PRId64 " must be at least 1", o->dup_factor);
        if (o->docs_buffer_size < 1) return tp_fail("docs_buffer_size %" PRId64 " too small", o->docs_buffer_size);
        return 0;
    }
    if (strcmp(o->processor, "bert") == 0)
        *kind = TP_DATASET_BERT;
    else if (strcmp(o->processor, "mlm") == 0)
        *kind = TP_DATASET_MLM;
    else if (strcmp(o->processor, "lm") == 0)
        *kind = TP_DATASET_LM;
    else
        return tp_fail("unknown processor '%s' (known: bert, mlm, lm, t5, bart, mt, prefixlm)", o->processor);
    int64_t min_seq = *kind == TP_DATASET_BERT ? 5 : *kind == TP_DATASET_MLM ? 2 : 1;
    int64_t max_seq = *kind == TP_DATASET_LM ? 65534 : 65535; /* lm windows hold seq_length + 1 tokens */
    if (o->seq_length < min_seq || o->seq_length > max_seq)
        return tp_fail("seq_length %" PRId64 " outside [%" PRId64 ", %" PRId64 "] for the %s processor",
                       o->seq_length, min_seq, max_seq, o->processor);
    if (o->dup_factor < 1) return tp_fail("dup_factor %" PRId64 " must be at least 1", o->dup_factor);
    if (o->docs_buffer_size < (*kind == TP_DATASET_BERT ? 2 : 1))
        return tp_fail(
            "docs_buffer_size %" PRId64 " too small%s", o->docs_buffer_size,
            *kind == TP_DATASET_BERT ? ": bert draws random next sentences from other documents of the buffer" : "");
    if (!(o->short_seq_prob >= 0 && o->short_seq_prob <= 1))
        return tp_fail("short_seq_prob %g outside [0, 1]", o->short_seq_prob);
    if (!(o->mask_prob > 0 && o->mask_prob <= 1)) return tp_fail("mask_prob %g outside (0, 1]", o->mask_prob);
    return 0;
}

/* lm: each line is framed by [CLS] and [SEP], or by the tokenizer's bos and eos (GPT-2's <|endoftext|>,
 * as TencentPretrain's GPT-2 special-token map gives it both roles); nothing is masked. */
static int check_lm_tokens(const preprocess *p)
{
    if (p->masking.cls_id < 0 || p->masking.sep_id < 0)
        return tp_fail("%s: the vocabulary lacks [CLS] and [SEP] or a bos/eos token (needed by the lm processor)",
                       p->tok->source_path);
    return 0;
}

static int check_special_tokens(const preprocess *p)
{
    if (p->kind == TP_DATASET_LM) return check_lm_tokens(p);
    const struct {
        const char *name;
        int32_t id;
    } specials[] = {
        {"[CLS]", p->tok->cls_id}, {"[SEP]", p->tok->sep_id}, {"[MASK]", p->tok->mask_id}, {"[PAD]", p->tok->pad_id}};
    for (size_t i = 0; i < sizeof specials / sizeof specials[0]; i++)
        if (specials[i].id < 0)
            return tp_fail("%s: the vocabulary lacks %s (needed by the %s processor)", p->tok->source_path,
                           specials[i].name, p->o->processor);
    return tp_masking_options_check(&p->masking) == 0 ? 0 : tp_fail_context("%s", p->tok->source_path);
}

static int setup(preprocess *p, const tp_preprocess_options *o)
{
    p->o = o;
    if (check_options(o, &p->kind) != 0) return -1;
    p->tok = tp_tokenizer_create(&o->tokenizer);
    if (!p->tok) return -1;
    p->masking = (tp_masking_options){.mask_prob = o->mask_prob,
                                      .mask_id = p->tok->mask_id,
                                      .pad_id = p->tok->pad_id,
                                      .cls_id = p->tok->cls_id,
                                      .sep_id = p->tok->sep_id,
                                      .vocab_size = p->tok->vocab_size};
    if (p->kind == TP_DATASET_LM && p->masking.cls_id < 0) p->masking.cls_id = p->tok->bos_id;
    if (p->kind == TP_DATASET_LM && p->masking.sep_id < 0) p->masking.sep_id = p->tok->eos_id;
    p->static_masking = !o->dynamic_masking && (p->kind == TP_DATASET_BERT || p->kind == TP_DATASET_MLM);
    p->documents = p->kind == TP_DATASET_BERT || strcmp(o->processor, "bart") == 0;
    p->pairs = tp_seq2seq_reads_pairs(o->processor);
    if (tp_seq2seq_processor_kind(o->processor)) {
        tp_seq2seq_options seq2seq = {o->processor, o->seq_length, o->tgt_seq_length,
                                      {.mask_prob = o->mask_prob, .span_masking = o->span_masking,
                                       .span_geo_prob = o->span_geo_prob, .span_max_length = o->span_max_length}};
        if (!(p->seq2seq = tp_seq2seq_create(&seq2seq, p->tok))) return -1;
        p->masking.cls_id = tp_seq2seq_cls_id(p->seq2seq); /* the t5 pieces' frame */
        p->masking.sep_id = tp_seq2seq_sep_id(p->seq2seq);
    } else if (check_special_tokens(p) != 0) {
        return -1;
    }
    size_t seq = (size_t)o->seq_length + 1;
    p->instance = tp_xmalloc(sizeof(int32_t) * seq);
    p->masked = tp_xmalloc(sizeof(int32_t) * seq);
    p->positions = tp_xmalloc(sizeof(int32_t) * seq);
    p->labels = tp_xmalloc(sizeof(int32_t) * seq);
    p->masks = tp_xmalloc(sizeof(tp_dataset_mask) * seq);
    return 0;
}

static void teardown(preprocess *p, buffer *buf, documents *docs)
{
    tp_tokenizer_free(p->tok);
    tp_ids_free(&p->a);
    tp_ids_free(&p->b);
    free(p->instance);
    free(p->masked);
    free(p->positions);
    free(p->labels);
    free(p->masks);
    free(buf->line_start);
    free(buf->line_end);
    free(buf->blank);
    free(buf->ids);
    free(buf->token_start);
    free(buf->split);
    tp_seq2seq_free(p->seq2seq);
    free(docs->first_sentence);
    free(docs->sentence_line);
}

static int process_corpus(preprocess *p, corpus *c, buffer *buf, documents *docs)
{
    while (c->pos < c->size) {
        read_buffer(p, c, buf);
        if (tokenize_buffer(p, c, buf) != 0) return -1;
        if (process_buffer(p, buf, docs) != 0) return -1;
        if (p->seq2seq) p->totals.instance_tokens = tp_seq2seq_tokens_written(p->seq2seq);
        p->totals.lines += buf->line_count;
        p->totals.corpus_tokens += buf->token_start[buf->line_count];
        p->totals.bytes_done = (int64_t)c->pos;
        p->buffer_index++;
        release_pages(c, buf->start_byte, buf->end_byte);
        if (p->o->progress) p->o->progress(&p->totals, p->o->progress_user);
    }
    if (p->totals.corpus_tokens == 0)
        return tp_fail("%s: no tokens: all %" PRId64 " lines are blank or tokenize to nothing", c->path,
                       p->totals.lines);
    if (p->totals.instances == 0)
        return tp_fail("%s: no instances: every line is too long for seq_length %" PRId64 " or has no tokens", c->path,
                       p->o->seq_length);
    if (p->kind == TP_DATASET_BERT && p->totals.documents == 1)
        return tp_fail("%s: the bert processor needs documents separated by blank lines; found 1 document", c->path);
    return 0;
}

int tp_preprocess(const tp_preprocess_options *o, tp_preprocess_progress *totals)
{
    preprocess p = {0};
    corpus c = {0};
    buffer buf = {0};
    documents docs = {0};
    int status = setup(&p, o);
    if (status == 0) status = open_corpus(&c, o->corpus_path);
    if (status == 0) {
        p.totals.bytes_total = (int64_t)c.size;
        tp_dataset_writer_options writer_options = {p.kind, o->seq_length + (p.kind == TP_DATASET_LM),
                                                    p.tok->vocab_size, p.static_masking, 0};
        if (p.seq2seq) writer_options = tp_seq2seq_writer_options(p.seq2seq);
        p.writer = tp_dataset_writer_open(o->dataset_path, &writer_options);
        status = p.writer ? process_corpus(&p, &c, &buf, &docs) : -1;
        if (status == 0)
            status = tp_dataset_writer_commit(p.writer);
        else
            tp_dataset_writer_abort(p.writer);
    }
    if (totals) *totals = p.totals;
    close_corpus(&c);
    teardown(&p, &buf, &docs);
    return status;
}
