/* The t5, bart, mt and prefixlm processors (core/preprocess_seq2seq.h) and their datasets' loader:
 *   - t5's sentinel corruption and bart's permutation + text infilling against
 *     tests/fixtures/seq2seq_data.json, made by tests/reference/gen_seq2seq_data.py (TencentPretrain's
 *     mask_seq / T5Dataloader / BartDataset / BartDataloader in plain Python, same draws);
 *   - properties on a corpus run through tp_preprocess: every t5 target's spans put back into its
 *     sentinels give the line again, the masked share and mean span length of span masking, bart's
 *     sources are permutations of the targets' tokens up to [MASK]s, the same bytes for 1 and 2 threads;
 *   - mt / prefixlm instances of tab lines exactly, the loader's shifted decoder input and tags;
 *   - refusals: missing sentinel or [MASK], a line without a tab. */
#include "core/dataset.h"
#include "core/error.h"
#include "core/fileio.h"
#include "core/preprocess.h"
#include "core/preprocess_seq2seq.h"
#include "support/check.h"
#include "support/scratch.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { PAD = 0, CLS = 2, SEP = 3, MASK = 4, VOCAB = 100, FIRST_SENTINEL = 90, MAX_IDS = 512 };

/* ids 0..99: [PAD] [UNK] [CLS] [SEP] [MASK], w5 .. w89, <extra_id_0> .. <extra_id_9> (the fixture's);
 * the path is the caller's to free. */
static char *write_vocab(const char *name, int with_sentinels, int with_mask)
{
    char text[4096] = "[PAD]\n[UNK]\n[CLS]\n[SEP]\n";
    strcat(text, with_mask ? "[MASK]\n" : "w4\n");
    for (int id = 5; id < VOCAB; id++)
        snprintf(text + strlen(text), sizeof text - strlen(text), id < FIRST_SENTINEL || !with_sentinels ? "w%d\n"
                                                                                                          : "<extra_id_%d>\n",
                 id < FIRST_SENTINEL || !with_sentinels ? id : id - FIRST_SENTINEL);
    return tp_xstrdup(tp_scratch_write(name, text, strlen(text)));
}

static tp_tokenizer *space_tokenizer(const char *vocab)
{
    tp_tokenizer_options o = {.kind = "space", .vocab_path = vocab};
    tp_tokenizer *tok = tp_tokenizer_create(&o);
    CHECK_MSG(tok != NULL, "%s", tp_last_error());
    return tok;
}

static int64_t json_ids(const cJSON *array, int32_t *ids)
{
    int64_t n = 0;
    const cJSON *item;
    cJSON_ArrayForEach(item, array) ids[n++] = (int32_t)item->valuedouble;
    return n;
}

static int same_ids(const int32_t *a, int64_t a_length, const int32_t *b, int64_t b_length)
{
    return a_length == b_length && memcmp(a, b, sizeof(int32_t) * (size_t)a_length) == 0;
}

static tp_seq2seq *case_processor(const cJSON *c, const char *processor, int64_t seq_length, const tp_tokenizer *tok)
{
    tp_seq2seq_options o = {processor, seq_length, 0,
                            {.mask_prob = cJSON_GetObjectItem(c, "mask_prob")->valuedouble,
                             .span_masking = cJSON_GetObjectItem(c, "span_masking")->valueint,
                             .span_geo_prob = cJSON_GetObjectItem(c, "span_geo_prob")->valuedouble,
                             .span_max_length = cJSON_GetObjectItem(c, "span_max_length")->valueint}};
    tp_seq2seq *s = tp_seq2seq_create(&o, tok);
    CHECK_MSG(s != NULL, "%s", tp_last_error());
    return s;
}

static void check_t5_case(const cJSON *c, const tp_tokenizer *tok, int index)
{
    int32_t piece[MAX_IDS], want_src[MAX_IDS], want_tgt[MAX_IDS], src[MAX_IDS], tgt[2 * MAX_IDS];
    int64_t length = json_ids(cJSON_GetObjectItem(c, "piece"), piece);
    int64_t src_length = json_ids(cJSON_GetObjectItem(c, "src"), want_src);
    int64_t tgt_length = json_ids(cJSON_GetObjectItem(c, "tgt"), want_tgt), got_tgt = 0;
    tp_seq2seq *s = case_processor(c, "t5", 64, tok);
    if (!s) return;
    tp_rng rng = tp_rng_make((uint64_t)cJSON_GetObjectItem(c, "seed")->valuedouble, TP_STREAM_PREPROCESS, 0);
    int64_t got_src = tp_seq2seq_t5_corrupt(s, piece, length, &rng, src, tgt, &got_tgt);
    CHECK_MSG(same_ids(src, got_src, want_src, src_length), "t5 case %d: source differs from the reference", index);
    CHECK_MSG(same_ids(tgt, got_tgt, want_tgt, tgt_length), "t5 case %d: target differs from the reference", index);
    tp_seq2seq_free(s);
}

static void check_bart_case(const cJSON *c, const tp_tokenizer *tok, int index)
{
    static int32_t ids[64][MAX_IDS];
    const int32_t *sentences[64];
    int64_t lengths[64], count = 0;
    const cJSON *sentence, *instance;
    cJSON_ArrayForEach(sentence, cJSON_GetObjectItem(c, "document")) {
        lengths[count] = json_ids(sentence, ids[count]);
        sentences[count] = ids[count];
        count++;
    }
    tp_seq2seq *s = case_processor(c, "bart", cJSON_GetObjectItem(c, "seq_length")->valueint, tok);
    if (!s) return;
    const char *path = tp_scratch_path("bart_case.tpd");
    tp_dataset_writer_options wo = tp_seq2seq_writer_options(s);
    tp_dataset_writer *w = tp_dataset_writer_open(path, &wo);
    tp_rng rng = tp_rng_make((uint64_t)cJSON_GetObjectItem(c, "seed")->valuedouble, TP_STREAM_PREPROCESS, 0);
    int64_t written = tp_seq2seq_bart_document(s, w, sentences, lengths, count, &rng);
    const cJSON *want = cJSON_GetObjectItem(c, "instances");
    CHECK_MSG(written == cJSON_GetArraySize(want), "bart case %d: %lld instances, reference %d", index,
              (long long)written, cJSON_GetArraySize(want));
    CHECK_MSG(tp_dataset_writer_commit(w) == 0, "%s", tp_last_error());
    tp_dataset *ds = tp_dataset_open(path);
    CHECK_MSG(ds != NULL, "%s", tp_last_error());
    int64_t i = 0;
    cJSON_ArrayForEach(instance, want) {
        if (!ds || i >= tp_dataset_count(ds)) break;
        int32_t got[2 * MAX_IDS], want_src[MAX_IDS], want_tgt[MAX_IDS];
        tp_dataset_meta meta;
        int64_t length = tp_dataset_instance(ds, i++, got, &meta);
        int64_t src_length = json_ids(cJSON_GetObjectItem(instance, "src"), want_src);
        int64_t tgt_length = json_ids(cJSON_GetObjectItem(instance, "tgt"), want_tgt);
        CHECK_MSG(same_ids(got, meta.segment_a_length, want_src, src_length), "bart case %d: source differs", index);
        CHECK_MSG(same_ids(got + meta.segment_a_length, length - meta.segment_a_length, want_tgt, tgt_length),
                  "bart case %d: target differs", index);
    }
    tp_dataset_close(ds);
    tp_seq2seq_free(s);
}

static void test_reference(void)
{
    size_t bytes = 0;
    char *text = tp_read_file("tests/fixtures/seq2seq_data.json", &bytes);
    CHECK_MSG(text != NULL, "%s", tp_last_error());
    cJSON *root = text ? cJSON_Parse(text) : NULL;
    free(text);
    CHECK(root != NULL);
    if (!root) return;
    char *vocab = write_vocab("vocab.txt", 1, 1);
    tp_tokenizer *tok = space_tokenizer(vocab);
    free(vocab);
    int index = 0, t5 = 0, bart = 0;
    const cJSON *c;
    cJSON_ArrayForEach(c, cJSON_GetObjectItem(root, "cases")) {
        if (!tok) break;
        const char *kind = cJSON_GetObjectItem(c, "kind")->valuestring;
        if (!strcmp(kind, "t5")) check_t5_case(c, tok, index), t5++;
        if (!strcmp(kind, "bart")) check_bart_case(c, tok, index), bart++;
        index++;
    }
    CHECK(t5 == 24 && bart == 12);
    tp_tokenizer_free(tok);
    cJSON_Delete(root);
}

/* ---- properties on a corpus ---- */

/* The t5 pieces the corpus must give back: per buffer of BUFFER_LINES non-blank lines, its lines'
 * [CLS] words [SEP] once per dup round (DUP), cut into PIECE tokens as the mlm processor cuts them
 * (a last piece of one token, the lone [SEP], is dropped). */
enum { BUFFER_LINES = 50, DUP = 2, PIECE = 32 };
static tp_ids expected_pieces;

/* Lines of 1..60 words w5..w89 drawn from a test stream; blank lines every 7th (bart documents).
 * The path is the caller's to free. */
static char *write_corpus(const char *name, int64_t lines)
{
    size_t capacity = (size_t)lines * 400 + 1, used = 0;
    char *text = tp_xmalloc(capacity);
    tp_ids buffer = {0};
    tp_rng rng = tp_rng_make(4242, 99, 0);
    for (int64_t l = 0, in_buffer = 0; l < lines; l++) {
        int64_t words = l % 7 == 6 ? 0 : 1 + (int64_t)tp_rng_below(&rng, 60);
        if (words) tp_ids_push(&buffer, CLS);
        for (int64_t k = 0; k < words; k++) {
            int id = 5 + (int)tp_rng_below(&rng, 85);
            used += (size_t)snprintf(text + used, capacity - used, "%sw%d", k ? " " : "", id);
            tp_ids_push(&buffer, id);
        }
        if (words && (words + 2) % PIECE != 1) tp_ids_push(&buffer, SEP);
        text[used++] = '\n';
        in_buffer += words > 0;
        if (in_buffer == BUFFER_LINES || l == lines - 1) {
            for (int round = 0; round < DUP; round++)
                for (int64_t t = 0; t < buffer.count; t++) tp_ids_push(&expected_pieces, buffer.ids[t]);
            buffer.count = in_buffer = 0;
        }
    }
    tp_ids_free(&buffer);
    char *path = tp_xstrdup(tp_scratch_write(name, text, used));
    free(text);
    return path;
}

static tp_preprocess_options corpus_options(const char *processor, const char *corpus, const char *vocab,
                                            const char *dataset)
{
    tp_preprocess_options o = {.corpus_path = corpus,
                               .dataset_path = dataset,
                               .processor = processor,
                               .tokenizer = {.kind = "space", .vocab_path = vocab},
                               .seq_length = PIECE,
                               .dup_factor = DUP,
                               .docs_buffer_size = BUFFER_LINES,
                               .mask_prob = 0.15,
                               .seed = 7,
                               .span_masking = 1,
                               .span_geo_prob = 0.2,
                               .span_max_length = 10,
                               .tgt_seq_length = 16};
    return o;
}

static int same_file(const char *a, const char *b)
{
    size_t na = 0, nb = 0;
    char *x = tp_read_file(a, &na), *y = tp_read_file(b, &nb);
    int same = x && y && na == nb && memcmp(x, y, na) == 0;
    free(x);
    free(y);
    return same;
}

/* Builds the dataset with 1 and with 2 threads (the same bytes) and opens it. */
static tp_dataset *preprocess_twice(tp_preprocess_options *o, const char *name)
{
    char one[256], two[256];
    snprintf(one, sizeof one, "%s", tp_scratch_path(name));
    snprintf(two, sizeof two, "%s.2", one);
    o->dataset_path = one;
    omp_set_num_threads(1);
    CHECK_MSG(tp_preprocess(o, NULL) == 0, "%s: %s", name, tp_last_error());
    o->dataset_path = two;
    omp_set_num_threads(2);
    CHECK_MSG(tp_preprocess(o, NULL) == 0, "%s: %s", name, tp_last_error());
    CHECK_MSG(same_file(one, two), "%s: 1 and 2 threads wrote different datasets", name);
    tp_dataset *ds = tp_dataset_open(one);
    CHECK_MSG(ds != NULL, "%s", tp_last_error());
    return ds;
}

/* Every t5 instance's source with its sentinels replaced by the target's spans is its piece again:
 * the pieces in order are the corpus's lines (expected_pieces); the masked share is near mask_prob (spans that would pass a piece's
 * budget are skipped, so it falls a little short) and span masking gives spans of several tokens. */
static void test_t5_properties(const char *corpus, const char *vocab)
{
    tp_preprocess_options o = corpus_options("t5", corpus, vocab, NULL);
    tp_dataset *ds = preprocess_twice(&o, "t5.tpd");
    if (!ds) return;
    CHECK(tp_dataset_kind(ds) == TP_DATASET_SEQ2SEQ);
    int64_t bad = 0, masked = 0, tokens = 0, spans = 0, mismatched = 0;
    for (int64_t i = 0; i < tp_dataset_count(ds); i++) {
        int32_t ids[2 * MAX_IDS], rebuilt[MAX_IDS];
        tp_dataset_meta meta;
        int64_t length = tp_dataset_instance(ds, i, ids, &meta), source = meta.segment_a_length, n = 0;
        const int32_t *tgt = ids + source;
        int64_t tgt_length = length - source, t = 1, sentinel = 0;
        bad += tgt[0] != CLS || tgt[tgt_length - 1] != SEP;
        for (int64_t s = 0; s < source; s++) {
            if (ids[s] < FIRST_SENTINEL) {
                rebuilt[n++] = ids[s];
                continue;
            }
            bad += ids[s] != FIRST_SENTINEL + sentinel || tgt[t++] != ids[s];
            sentinel++;
            spans++;
            while (t < tgt_length && tgt[t] < FIRST_SENTINEL) rebuilt[n++] = tgt[t++], masked++;
        }
        bad += tgt[t] != FIRST_SENTINEL + sentinel || t + 2 != tgt_length; /* the closing sentinel, [SEP] */
        bad += n > o.seq_length;
        mismatched += tokens + n > expected_pieces.count ||
                      memcmp(rebuilt, expected_pieces.ids + tokens, sizeof(int32_t) * (size_t)n) != 0;
        tokens += n;
    }
    CHECK_MSG(mismatched == 0 && tokens == expected_pieces.count,
              "t5: %lld pieces differ from the corpus's, %lld of %lld tokens", (long long)mismatched,
              (long long)tokens, (long long)expected_pieces.count);
    double share = (double)masked / (double)tokens, mean_span = (double)masked / (double)spans;
    CHECK_MSG(bad == 0, "%lld t5 instances do not rebuild their piece", (long long)bad);
    CHECK_MSG(fabs(share - 0.15) < 0.02, "t5: masked share %.4f, expected 0.15", share);
    CHECK_MSG(mean_span > 1.5 && mean_span < 5, "t5: mean span %.3f, expected several tokens", mean_span);
    printf("t5: masked share %.4f, mean span %.3f over %lld sentinels\n", share, mean_span, (long long)spans);
    tp_dataset_close(ds);
}

static int compare_i32(const void *a, const void *b)
{
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x > y) - (x < y);
}

/* bart: targets are [CLS] sentences [SEP] under seq_length; a source holds the target's tokens in
 * another order, some replaced (a [MASK] run standing for one or more of them, or random ids). */
static void test_bart_properties(const char *corpus, const char *vocab)
{
    tp_preprocess_options o = corpus_options("bart", corpus, vocab, NULL);
    o.span_masking = 0;
    tp_dataset *ds = preprocess_twice(&o, "bart.tpd");
    if (!ds) return;
    int64_t bad = 0, masks = 0, target_tokens = 0;
    for (int64_t i = 0; i < tp_dataset_count(ds); i++) {
        int32_t ids[2 * MAX_IDS], src[MAX_IDS], tgt[MAX_IDS];
        tp_dataset_meta meta;
        int64_t length = tp_dataset_instance(ds, i, ids, &meta), source = meta.segment_a_length;
        int64_t tgt_length = length - source, kept = 0;
        bad += tgt_length > o.seq_length || ids[source] != CLS || ids[length - 1] != SEP;
        memcpy(tgt, ids + source, sizeof(int32_t) * (size_t)tgt_length);
        for (int64_t s = 0; s < source; s++) {
            masks += ids[s] == MASK;
            if (ids[s] != MASK) src[kept++] = ids[s];
        }
        bad += source > tgt_length; /* a [MASK] stands for one token or a run of them */
        /* all but the replaced tokens (at most a mask share of them) are the target's */
        qsort(src, (size_t)kept, sizeof *src, compare_i32);
        qsort(tgt, (size_t)tgt_length, sizeof *tgt, compare_i32);
        int64_t common = 0;
        for (int64_t a = 0, b = 0; a < kept && b < tgt_length;)
            if (src[a] == tgt[b])
                common++, a++, b++;
            else if (src[a] < tgt[b])
                a++;
            else
                b++;
        bad += common < kept - (int64_t)ceil(0.2 * (double)tgt_length) - 1;
        target_tokens += tgt_length;
    }
    CHECK_MSG(bad == 0, "%lld bart instances are no corrupted permutation of their target", (long long)bad);
    double share = (double)masks / (double)target_tokens;
    /* 80% of the 15% become [MASK], a little less after adjacent ones merge */
    CHECK_MSG(share > 0.09 && share < 0.13, "bart: [MASK] share %.4f, expected about 0.8 x 0.15", share);
    tp_dataset_close(ds);
}

/* mt and prefixlm on two tab lines, then a loader batch of each. */
static void test_pairs(const char *vocab)
{
    char *corpus = tp_xstrdup(tp_scratch_write("pairs.txt", "w5 w6 w7\tw8 w9\n\nw10\tw11 w12 w13 w14\n", 35));
    char *mt = tp_xstrdup(tp_scratch_path("mt.tpd")), *prefixlm = tp_xstrdup(tp_scratch_path("prefixlm.tpd"));
    tp_preprocess_options o = corpus_options("mt", corpus, vocab, mt);
    o.seq_length = 4;
    o.tgt_seq_length = 3;
    CHECK_MSG(tp_preprocess(&o, NULL) == 0, "%s", tp_last_error());
    tp_dataset *ds = tp_dataset_open(o.dataset_path);
    CHECK_MSG(ds != NULL, "%s", tp_last_error());
    if (!ds) return;
    /* MtDataset: [CLS] src [SEP] cut to 4, [CLS] tgt [SEP] cut to tgt_seq_length + 1 = 4 */
    static const int32_t mt0[] = {CLS, 5, 6, 7, CLS, 8, 9, SEP}, mt1[] = {CLS, 10, SEP, CLS, 11, 12, 13};
    int32_t ids[32];
    tp_dataset_meta meta;
    CHECK(tp_dataset_count(ds) == 2 && tp_dataset_tgt_seq_length(ds) == 4);
    CHECK(same_ids(ids, tp_dataset_instance(ds, 0, ids, &meta), mt0, 8) && meta.segment_a_length == 4);
    CHECK(same_ids(ids, tp_dataset_instance(ds, 1, ids, &meta), mt1, 7) && meta.segment_a_length == 3);
    tp_loader_options lo = {.batch_size = 2, .seed = 1, .world_size = 1, .masking = {.pad_id = PAD}};
    tp_loader *loader = tp_loader_create(ds, &lo);
    CHECK_MSG(loader != NULL, "%s", tp_last_error());
    const tp_batch *b = loader ? tp_loader_next(loader) : NULL;
    static const int32_t tgt_in[] = {CLS, 8, 9, CLS, 11, 12}, tags[] = {8, 9, SEP, 11, 12, 13};
    static const int32_t src[] = {CLS, 5, 6, 7, CLS, 10, SEP, PAD}, seg[] = {1, 1, 1, 1, 1, 1, 1, 0};
    CHECK(b && b->tgt_seq_length == 3 && same_ids(b->tgt_src, 6, tgt_in, 6) && same_ids(b->tags, 6, tags, 6));
    CHECK(b && same_ids(b->src, 8, src, 8) && same_ids(b->seg, 8, seg, 8) && b->real_tokens == 7 + 6);
    tp_loader_free(loader);
    tp_dataset_close(ds);

    o = corpus_options("prefixlm", corpus, vocab, prefixlm);
    o.seq_length = 6;
    CHECK_MSG(tp_preprocess(&o, NULL) == 0, "%s", tp_last_error());
    ds = tp_dataset_open(o.dataset_path);
    CHECK_MSG(ds != NULL, "%s", tp_last_error());
    if (!ds) return;
    /* PrefixlmDataset: [CLS] src [SEP] tgt [SEP] cut to 6; the first line's prefix (5) leaves room */
    static const int32_t p0[] = {CLS, 5, 6, 7, SEP, 8}, p1[] = {CLS, 10, SEP, 11, 12, 13};
    CHECK(tp_dataset_kind(ds) == TP_DATASET_PREFIXLM && tp_dataset_count(ds) == 2);
    CHECK(same_ids(ids, tp_dataset_instance(ds, 0, ids, &meta), p0, 6) && meta.segment_a_length == 5);
    CHECK(same_ids(ids, tp_dataset_instance(ds, 1, ids, &meta), p1, 6) && meta.segment_a_length == 3);
    lo.shuffle = 0;
    loader = tp_loader_create(ds, &lo);
    CHECK_MSG(loader != NULL, "%s", tp_last_error());
    b = loader ? tp_loader_next(loader) : NULL;
    static const int32_t ptags[] = {-1, -1, -1, -1, 8, -1, -1, -1, 11, 12, 13, -1};
    static const int32_t pseg[] = {1, 1, 1, 1, 1, 2, 1, 1, 1, 2, 2, 2};
    CHECK(b && same_ids(b->tags, 12, ptags, 12) && same_ids(b->seg, 12, pseg, 12) && !b->tgt_src);
    tp_loader_free(loader);
    tp_dataset_close(ds);
    free(corpus);
    free(mt);
    free(prefixlm);
}

static void expect_error(tp_preprocess_options o, const char *expected)
{
    CHECK(tp_preprocess(&o, NULL) != 0);
    CHECK_MSG(strcmp(tp_last_error(), expected) == 0, "expected \"%s\", got \"%s\"", expected, tp_last_error());
}

static void test_refusals(const char *corpus, const char *vocab)
{
    char *plain = write_vocab("plain.txt", 0, 1), *no_mask = write_vocab("no_mask.txt", 1, 0);
    char expected[512];
    snprintf(expected, sizeof expected,
             "%s: the vocabulary lacks the sentinel <extra_id_0> (needed by the t5 processor: add <extra_id_0>, "
             "<extra_id_1>, ... lines to a vocab.txt, docs/data.md)",
             plain);
    expect_error(corpus_options("t5", corpus, plain, tp_scratch_path("x.tpd")), expected);
    snprintf(expected, sizeof expected, "%s: the vocabulary lacks [MASK] (needed by the bart processor)", no_mask);
    expect_error(corpus_options("bart", corpus, no_mask, tp_scratch_path("x.tpd")), expected);
    snprintf(expected, sizeof expected, "%s: line 1: no tab: the prefixlm processor reads source<TAB>target lines",
             corpus);
    expect_error(corpus_options("prefixlm", corpus, vocab, tp_scratch_path("x.tpd")), expected);
    tp_preprocess_options o = corpus_options("t5", corpus, vocab, tp_scratch_path("x.tpd"));
    o.span_geo_prob = 0;
    expect_error(o, "span_geo_prob 0 outside (0, 1]");
    free(plain);
    free(no_mask);
}

int main(void)
{
    tp_scratch_init("preprocess_seq2seq");
    test_reference();
    char *corpus = write_corpus("corpus.txt", 400), *vocab = write_vocab("corpus_vocab.txt", 1, 1);
    test_t5_properties(corpus, vocab);
    test_bart_properties(corpus, vocab);
    test_pairs(vocab);
    test_refusals(corpus, vocab);
    free(corpus);
    free(vocab);
    tp_ids_free(&expected_pieces);
    return tp_test_finish("test_preprocess_seq2seq");
}
