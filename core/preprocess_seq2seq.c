/* The t5, bart, mt and prefixlm processors: see preprocess_seq2seq.h. */
#include "preprocess_seq2seq.h"

#include "error.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { MAX_SENTINELS = 1000 };

struct tp_seq2seq {
    tp_seq2seq_options o;
    int kind;
    int single_sequence; /* prefixlm: the pair becomes one decoder-only sequence */
    int32_t sentinels[MAX_SENTINELS];
    int64_t sentinel_count;
    /* scratch for one instance */
    int64_t room;
    int32_t *ids, *src, *tgt, *positions, *labels;
    int64_t *scratch, *order, *chunk;
    int64_t tokens_written;
};

/* ---- mask_seq ---- */

/* get_span_len: a geometric length in [1, max_length] by inverting its cumulative sums, as mask.py. */
static int64_t span_length(const tp_span_masking *m, tp_rng *rng)
{
    double cumulative[m->span_max_length + 1], probability = 1.0;
    cumulative[0] = 0.0;
    for (int64_t i = 1; i <= m->span_max_length; i++) {
        probability *= i == 1 ? m->span_geo_prob : 1.0 - m->span_geo_prob;
        cumulative[i] = cumulative[i - 1] + probability;
    }
    double draw = cumulative[m->span_max_length] * tp_rng_uniform(rng);
    int64_t length = 1;
    for (int64_t i = 0; i < m->span_max_length; i++)
        if (draw >= cumulative[i] && draw < cumulative[i + 1]) length = i + 1;
    return length;
}

static int is_special(const tp_span_masking *m, int32_t id)
{
    return id == m->cls_id || id == m->sep_id || id == m->pad_id || id == m->mask_id;
}

/* randint(1, vocab_size - 1) until it is no special token. */
static int32_t random_id(const tp_span_masking *m, tp_rng *rng)
{
    for (;;) {
        int32_t id = 1 + (int32_t)tp_rng_below(rng, (uint64_t)m->vocab_size - 1);
        if (!is_special(m, id)) return id;
    }
}

static int compare_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* create_index: span starts and lengths into starts[0..n), lengths[0..n); returns n. */
static int64_t span_index(const int32_t *ids, int64_t length, const tp_span_masking *m, tp_rng *rng,
                          int64_t *starts, int64_t *lengths)
{
    int64_t count = 0, span_end = -1;
    for (int64_t i = 0; i < length; i++) {
        if (ids[i] == m->cls_id || ids[i] == m->sep_id || ids[i] == m->pad_id || i < span_end) continue;
        int64_t span = m->span_masking ? span_length(m, rng) : 1;
        span_end = i + span;
        if (span_end > length) span = length - i;
        starts[count] = i;
        lengths[count++] = span;
    }
    return count;
}

int64_t tp_span_mask_sequence(int32_t *ids, int64_t length, const tp_span_masking *m, tp_rng *rng, int32_t *positions,
                              int32_t *labels, int64_t *scratch)
{
    int64_t *starts = scratch, *lengths = scratch + length;
    int64_t spans = span_index(ids, length, m, rng, starts, lengths);
    /* random.shuffle of the spans: Fisher-Yates from the end, as tp_rng_shuffle_i64, on the pairs. */
    for (int64_t i = spans - 1; i > 0; i--) {
        int64_t j = (int64_t)tp_rng_below(rng, (uint64_t)i + 1), start = starts[i], span = lengths[i];
        starts[i] = starts[j];
        lengths[i] = lengths[j];
        starts[j] = start;
        lengths[j] = span;
    }
    int64_t budget = (int64_t)nearbyint((double)length * m->mask_prob), chosen = 0; /* half to even */
    if (budget < 1) budget = 1;
    for (int64_t k = 0; k < spans && chosen < budget; k++) {
        if (chosen + lengths[k] > budget) continue;
        for (int64_t j = 0; j < lengths[k]; j++) {
            positions[chosen + j] = (int32_t)(starts[k] + j);
            labels[chosen + j] = ids[starts[k] + j];
        }
        double u = tp_rng_uniform(rng);
        for (int64_t j = 0; j < lengths[k]; j++) {
            int32_t *id = &ids[starts[k] + j];
            if (u < 0.8)
                *id = m->mask_id;
            else if (u < 0.9)
                *id = random_id(m, rng);
        }
        chosen += lengths[k];
    }
    /* The (position, label) pairs by position, packed into one key (scratch is free again). */
    for (int64_t k = 0; k < chosen; k++) scratch[k] = (int64_t)positions[k] << 32 | (uint32_t)labels[k];
    qsort(scratch, (size_t)chosen, sizeof *scratch, compare_i64);
    for (int64_t k = 0; k < chosen; k++) {
        positions[k] = (int32_t)(scratch[k] >> 32);
        labels[k] = (int32_t)(uint32_t)scratch[k];
    }
    return chosen;
}

/* ---- processors ---- */

int tp_seq2seq_processor_kind(const char *name)
{
    if (!strcmp(name, "t5") || !strcmp(name, "bart") || !strcmp(name, "mt")) return TP_DATASET_SEQ2SEQ;
    if (!strcmp(name, "prefixlm")) return TP_DATASET_PREFIXLM;
    return 0;
}

int tp_seq2seq_reads_pairs(const char *name) { return !strcmp(name, "mt") || !strcmp(name, "prefixlm"); }

static int missing(const tp_tokenizer *tok, const char *token, const char *processor)
{
    return tp_fail("%s: the vocabulary lacks %s (needed by the %s processor)", tok->source_path, token, processor);
}

static int find_sentinels(tp_seq2seq *s, const tp_tokenizer *tok)
{
    char name[32];
    for (s->sentinel_count = 0; s->sentinel_count < MAX_SENTINELS; s->sentinel_count++) {
        snprintf(name, sizeof name, "<extra_id_%" PRId64 ">", s->sentinel_count);
        int32_t id = tp_tokenizer_token_id(tok, name);
        if (id < 0) break;
        s->sentinels[s->sentinel_count] = id;
    }
    if (s->sentinel_count == 0)
        return tp_fail("%s: the vocabulary lacks the sentinel <extra_id_0> (needed by the t5 processor: add "
                       "<extra_id_0>, <extra_id_1>, ... lines to a vocab.txt, docs/data.md)",
                       tok->source_path);
    return 0;
}

static int check_options(const tp_seq2seq *s)
{
    const tp_seq2seq_options *o = &s->o;
    int64_t min_seq = !strcmp(o->processor, "prefixlm") ? 3 : 2;
    if (o->seq_length < min_seq || o->seq_length > 65535)
        return tp_fail("seq_length %" PRId64 " outside [%" PRId64 ", 65535] for the %s processor", o->seq_length,
                       min_seq, o->processor);
    if (!strcmp(o->processor, "mt") && (o->tgt_seq_length < 1 || o->tgt_seq_length > 65534))
        return tp_fail("tgt_seq_length %" PRId64 " outside [1, 65534] for the mt processor", o->tgt_seq_length);
    const tp_span_masking *m = &o->masking;
    if (!(m->mask_prob > 0 && m->mask_prob <= 1)) return tp_fail("mask_prob %g outside (0, 1]", m->mask_prob);
    if (m->span_masking && !(m->span_geo_prob > 0 && m->span_geo_prob <= 1))
        return tp_fail("span_geo_prob %g outside (0, 1]", m->span_geo_prob);
    if (m->span_masking && (m->span_max_length < 1 || m->span_max_length > 1000))
        return tp_fail("span_max_length %" PRId64 " outside [1, 1000]", m->span_max_length);
    return 0;
}

/* [CLS]/[SEP] or bos/eos, [PAD]; bart also [MASK] (and a random replacement to draw); t5 its sentinels. */
static int check_tokens(tp_seq2seq *s, const tp_tokenizer *tok)
{
    tp_span_masking *m = &s->o.masking;
    const char *processor = s->o.processor;
    m->cls_id = tok->cls_id >= 0 ? tok->cls_id : tok->bos_id;
    m->sep_id = tok->sep_id >= 0 ? tok->sep_id : tok->eos_id;
    m->pad_id = tok->pad_id;
    m->mask_id = tok->mask_id;
    m->vocab_size = tok->vocab_size;
    if (m->cls_id < 0) return missing(tok, "[CLS] (or a bos token)", processor);
    if (m->sep_id < 0) return missing(tok, "[SEP] (or an eos token)", processor);
    if (m->pad_id < 0) return missing(tok, "[PAD]", processor);
    if (!strcmp(processor, "bart") && m->mask_id < 0) return missing(tok, "[MASK]", processor);
    if (!strcmp(processor, "t5") && find_sentinels(s, tok) != 0) return -1;
    int masks = !strcmp(processor, "bart") || !strcmp(processor, "t5");
    int64_t specials = 1 + (m->sep_id != m->cls_id) + (m->pad_id != m->cls_id && m->pad_id != m->sep_id) +
                       (m->mask_id >= 0);
    if (masks && m->vocab_size - 1 <= specials)
        return tp_fail("%s: the vocabulary has no token other than the special ones to draw as a random replacement",
                       tok->source_path);
    return 0;
}

tp_seq2seq *tp_seq2seq_create(const tp_seq2seq_options *options, const tp_tokenizer *tok)
{
    tp_seq2seq *s = tp_xcalloc(1, sizeof *s);
    s->o = *options;
    s->kind = tp_seq2seq_processor_kind(options->processor);
    s->single_sequence = s->kind == TP_DATASET_PREFIXLM;
    if (s->kind == 0 || check_options(s) != 0 || check_tokens(s, tok) != 0) {
        if (s->kind == 0) tp_fail("unknown seq2seq processor '%s'", options->processor);
        free(s);
        return NULL;
    }
    s->room = options->seq_length + options->tgt_seq_length + 4;
    size_t room = (size_t)s->room;
    s->ids = tp_xmalloc(sizeof(int32_t) * 3 * room);
    s->src = tp_xmalloc(sizeof(int32_t) * room);
    s->tgt = tp_xmalloc(sizeof(int32_t) * 3 * room);
    s->positions = tp_xmalloc(sizeof(int32_t) * room);
    s->labels = tp_xmalloc(sizeof(int32_t) * room);
    s->scratch = tp_xmalloc(sizeof(int64_t) * 2 * room);
    s->order = tp_xmalloc(sizeof(int64_t) * room);
    s->chunk = tp_xmalloc(sizeof(int64_t) * room);
    return s;
}

void tp_seq2seq_free(tp_seq2seq *s)
{
    if (!s) return;
    free(s->ids);
    free(s->src);
    free(s->tgt);
    free(s->positions);
    free(s->labels);
    free(s->scratch);
    free(s->order);
    free(s->chunk);
    free(s);
}

int32_t tp_seq2seq_cls_id(const tp_seq2seq *s) { return s->o.masking.cls_id; }
int32_t tp_seq2seq_sep_id(const tp_seq2seq *s) { return s->o.masking.sep_id; }

/* The longest target each processor can write. */
tp_dataset_writer_options tp_seq2seq_writer_options(const tp_seq2seq *s)
{
    int64_t seq = s->o.seq_length, tgt = 0;
    if (!strcmp(s->o.processor, "t5")) tgt = 2 * seq + 3; /* [CLS] + (sentinel, token) per position + 2 */
    if (!strcmp(s->o.processor, "bart")) tgt = seq;
    if (!strcmp(s->o.processor, "mt")) tgt = s->o.tgt_seq_length + 1;
    if (tgt > 65535) tgt = 65535;
    tp_dataset_writer_options w = {s->kind, seq, s->o.masking.vocab_size, 0, s->kind == TP_DATASET_SEQ2SEQ ? tgt : 0};
    return w;
}

int64_t tp_seq2seq_tokens_written(const tp_seq2seq *s) { return s->tokens_written; }

static int write_instance(tp_seq2seq *s, tp_dataset_writer *writer, const int32_t *ids, int64_t length,
                          int64_t first_segment)
{
    tp_dataset_meta meta = {(uint16_t)first_segment, 0, 0};
    s->tokens_written += length;
    return tp_dataset_writer_add(writer, ids, length, meta, NULL, 0);
}

/* Writes src then tgt as one seq2seq instance. */
static int write_pair(tp_seq2seq *s, tp_dataset_writer *writer, int64_t src_length, int64_t tgt_length)
{
    memcpy(s->ids, s->src, sizeof(int32_t) * (size_t)src_length);
    memcpy(s->ids + src_length, s->tgt, sizeof(int32_t) * (size_t)tgt_length);
    return write_instance(s, writer, s->ids, src_length + tgt_length, src_length);
}

int64_t tp_seq2seq_t5_corrupt(tp_seq2seq *s, const int32_t *piece, int64_t length, tp_rng *rng, int32_t *src,
                              int32_t *tgt, int64_t *tgt_length)
{
    memcpy(src, piece, sizeof(int32_t) * (size_t)length);
    int64_t chosen = tp_span_mask_sequence(src, length, &s->o.masking, rng, s->positions, s->labels, s->scratch);
    int64_t n = 0, t = 0, sentinel = 0, k = 0;
    tgt[t++] = s->o.masking.cls_id;
    for (int64_t i = 0; i < length; i++) {
        if (k < chosen && s->positions[k] == i) {
            int continues = k > 0 && s->positions[k - 1] == i - 1; /* the run's sentinel is already out */
            if (!continues) {
                int32_t id = s->sentinels[sentinel < s->sentinel_count ? sentinel : s->sentinel_count - 1];
                src[n++] = tgt[t++] = id;
                sentinel++;
            }
            tgt[t++] = piece[i];
            k++;
        } else {
            src[n++] = piece[i];
        }
    }
    tgt[t++] = s->sentinels[sentinel < s->sentinel_count ? sentinel : s->sentinel_count - 1];
    tgt[t++] = s->o.masking.sep_id;
    *tgt_length = t;
    return n;
}

int64_t tp_seq2seq_t5_piece(tp_seq2seq *s, tp_dataset_writer *writer, const int32_t *piece, int64_t length,
                            tp_rng *rng)
{
    int64_t tgt_length, src_length = tp_seq2seq_t5_corrupt(s, piece, length, rng, s->src, s->tgt, &tgt_length);
    return write_pair(s, writer, src_length, tgt_length) == 0 ? 1 : -1;
}

int64_t tp_seq2seq_bart_infill(tp_seq2seq *s, int32_t *src, int64_t length, tp_rng *rng)
{
    tp_span_mask_sequence(src, length, &s->o.masking, rng, s->positions, s->labels, s->scratch);
    int64_t n = 0;
    for (int64_t i = 0; i < length; i++)
        if (!(src[i] == s->o.masking.mask_id && n > 0 && src[n - 1] == s->o.masking.mask_id)) src[n++] = src[i];
    return n;
}

/* One chunk (s->chunk's `count` sentences): target in order, source permuted and infilled. */
static int bart_chunk(tp_seq2seq *s, tp_dataset_writer *writer, const int32_t *const *sentences,
                      const int64_t *lengths, int64_t count, tp_rng *rng)
{
    int64_t n = 0, t = 0;
    memcpy(s->order, s->chunk, sizeof(int64_t) * (size_t)count);
    tp_rng_shuffle_i64(rng, s->order, count);
    s->src[n++] = s->tgt[t++] = s->o.masking.cls_id;
    for (int64_t k = 0; k < count; k++) {
        memcpy(s->src + n, sentences[s->order[k]], sizeof(int32_t) * (size_t)lengths[s->order[k]]);
        memcpy(s->tgt + t, sentences[s->chunk[k]], sizeof(int32_t) * (size_t)lengths[s->chunk[k]]);
        n += lengths[s->order[k]];
        t += lengths[s->chunk[k]];
    }
    s->src[n++] = s->tgt[t++] = s->o.masking.sep_id;
    n = tp_seq2seq_bart_infill(s, s->src, n, rng);
    return write_pair(s, writer, n, t);
}

/* BartDataset.create_ins_from_doc: sentences longer than seq_length - 2 are dropped; a chunk is
 * written when the next sentence would bring it to seq_length - 2 tokens, and at the end.  (An
 * empty chunk, which dataset.py writes as [CLS] [SEP] when a sentence of exactly seq_length - 2
 * tokens comes first, is not written.) */
int64_t tp_seq2seq_bart_document(tp_seq2seq *s, tp_dataset_writer *writer, const int32_t *const *sentences,
                                 const int64_t *lengths, int64_t count, tp_rng *rng)
{
    int64_t target = s->o.seq_length - 2, chunk_tokens = 0, members = 0, written = 0;
    for (int64_t i = 0; i < count; i++) {
        if (lengths[i] > target) continue;
        if (chunk_tokens + lengths[i] >= target && members > 0) {
            if (bart_chunk(s, writer, sentences, lengths, members, rng) != 0) return -1;
            written++;
            members = chunk_tokens = 0;
        }
        s->chunk[members++] = i;
        chunk_tokens += lengths[i];
    }
    if (members > 0) {
        if (bart_chunk(s, writer, sentences, lengths, members, rng) != 0) return -1;
        written++;
    }
    return written;
}

/* MtDataset / PrefixlmDataset on one line's two token sequences. */
int64_t tp_seq2seq_pair(tp_seq2seq *s, tp_dataset_writer *writer, const int32_t *source, int64_t source_length,
                        const int32_t *target, int64_t target_length)
{
    int64_t seq = s->o.seq_length, n = 0, t = 0;
    int32_t cls = s->o.masking.cls_id, sep = s->o.masking.sep_id;
    if (s->single_sequence) { /* prefixlm: [CLS] src [SEP] tgt [SEP] cut to seq; skipped when the prefix fills it */
        int64_t prefix = source_length + 2;
        if (prefix >= seq) return 0;
        s->ids[n++] = cls;
        memcpy(s->ids + n, source, sizeof(int32_t) * (size_t)source_length);
        n += source_length;
        s->ids[n++] = sep;
        int64_t body = target_length < seq - n ? target_length : seq - n;
        memcpy(s->ids + n, target, sizeof(int32_t) * (size_t)body);
        n += body;
        if (n < seq) s->ids[n++] = sep;
        return write_instance(s, writer, s->ids, n, prefix) == 0 ? 1 : -1;
    }
    /* mt: [CLS] src [SEP] cut to seq_length, [CLS] tgt [SEP] cut to tgt_seq_length + 1 */
    int64_t tgt_room = s->o.tgt_seq_length + 1;
    s->src[n++] = cls;
    int64_t body = source_length < seq - 1 ? source_length : seq - 1;
    memcpy(s->src + n, source, sizeof(int32_t) * (size_t)body);
    n += body;
    if (n < seq) s->src[n++] = sep;
    s->tgt[t++] = cls;
    body = target_length < tgt_room - 1 ? target_length : tgt_room - 1;
    memcpy(s->tgt + t, target, sizeof(int32_t) * (size_t)body);
    t += body;
    if (t < tgt_room) s->tgt[t++] = sep;
    return write_pair(s, writer, n, t) == 0 ? 1 : -1;
}
