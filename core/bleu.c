/* sacreBLEU's corpus BLEU with 13a tokenization (core/bleu.h). */
#include "bleu.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"

/* A growing output string. */
typedef struct text {
    char *data;
    size_t length, capacity;
} text;

static void put(text *t, const char *bytes, size_t n)
{
    if (t->length + n + 1 > t->capacity) {
        t->capacity = 2 * (t->length + n + 1);
        t->data = tp_xrealloc(t->data, t->capacity);
    }
    memcpy(t->data + t->length, bytes, n);
    t->length += n;
    t->data[t->length] = '\0';
}

static void put_char(text *t, char c) { put(t, &c, 1); }

static int is_digit(char c) { return c >= '0' && c <= '9'; }

/* Bytes of the UTF-8 character that starts with lead (1 for stray continuation bytes). */
static size_t char_length(unsigned char lead)
{
    return lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : lead >= 0xC0 ? 2 : 1;
}

/* The language-independent part: replacements of fixed strings, in sacreBLEU's order. */
static char *replace_all(char *s, const char *from, const char *to)
{
    text out = {0};
    put(&out, "", 0);
    size_t from_length = strlen(from);
    for (const char *cursor = s;;) {
        const char *hit = strstr(cursor, from);
        if (!hit) {
            put(&out, cursor, strlen(cursor));
            break;
        }
        put(&out, cursor, (size_t)(hit - cursor));
        put(&out, to, strlen(to));
        cursor = hit + from_length;
    }
    free(s);
    return out.data;
}

/* ([\{-\~\[-\` -\&\(-\+\:-\@\/]) -> ' \1 ' */
static int punctuation(char c)
{
    return (c >= '{' && c <= '~') || (c >= '[' && c <= '`') || (c >= ' ' && c <= '&') || (c >= '(' && c <= '+') ||
           (c >= ':' && c <= '@') || c == '/';
}

static char *pass_punctuation(char *s)
{
    text out = {0};
    put(&out, "", 0);
    for (const char *c = s; *c; c++) {
        if (punctuation(*c)) {
            put_char(&out, ' ');
            put_char(&out, *c);
            put_char(&out, ' ');
        } else {
            put_char(&out, *c);
        }
    }
    free(s);
    return out.data;
}

/* ([^0-9])([\.,]) -> '\1 \2 ': the character before is the last byte before the period. */
static char *pass_period_after(char *s)
{
    text out = {0};
    put(&out, "", 0);
    for (size_t i = 0; s[i];) {
        if (!is_digit(s[i]) && (s[i + 1] == '.' || s[i + 1] == ',')) {
            char both[4] = {s[i], ' ', s[i + 1], ' '};
            put(&out, both, 4);
            i += 2;
        } else {
            put_char(&out, s[i++]);
        }
    }
    free(s);
    return out.data;
}

/* ([\.,])([^0-9]) -> ' \1 \2': the following character is consumed whole. */
static char *pass_period_before(char *s)
{
    text out = {0};
    put(&out, "", 0);
    for (size_t i = 0; s[i];) {
        if ((s[i] == '.' || s[i] == ',') && s[i + 1] && !is_digit(s[i + 1])) {
            size_t next = char_length((unsigned char)s[i + 1]);
            char mark[3] = {' ', s[i], ' '};
            put(&out, mark, 3);
            put(&out, s + i + 1, strnlen(s + i + 1, next));
            i += 1 + strnlen(s + i + 1, next);
        } else {
            put_char(&out, s[i++]);
        }
    }
    free(s);
    return out.data;
}

/* ([0-9])(-) -> '\1 \2 ' */
static char *pass_dash(char *s)
{
    text out = {0};
    put(&out, "", 0);
    for (size_t i = 0; s[i];) {
        if (is_digit(s[i]) && s[i + 1] == '-') {
            char both[4] = {s[i], ' ', '-', ' '};
            put(&out, both, 4);
            i += 2;
        } else {
            put_char(&out, s[i++]);
        }
    }
    free(s);
    return out.data;
}

/* Bytes of the whitespace character at s (Python's str.isspace), 0 when it is not one. */
static size_t space_length(const unsigned char *s)
{
    if ((*s >= '\t' && *s <= '\r') || *s == ' ' || (*s >= 0x1C && *s <= 0x1F)) return 1;
    if (s[0] == 0xC2 && (s[1] == 0x85 || s[1] == 0xA0)) return 2;
    if (s[0] == 0xE1 && s[1] == 0x9A && s[2] == 0x80) return 3;                 /* U+1680 */
    if (s[0] == 0xE2 && s[1] == 0x80 && ((s[2] >= 0x80 && s[2] <= 0x8A) || s[2] == 0xA8 || s[2] == 0xA9 || s[2] == 0xAF))
        return 3;                                                                /* U+2000-200A, 2028, 2029, 202F */
    if (s[0] == 0xE2 && s[1] == 0x81 && s[2] == 0x9F) return 3;                 /* U+205F */
    if (s[0] == 0xE3 && s[1] == 0x80 && s[2] == 0x80) return 3;                 /* U+3000 */
    return 0;
}

/* ' '.join(line.split()) */
static char *collapse_spaces(char *s)
{
    text out = {0};
    put(&out, "", 0);
    int pending = 0;
    for (const unsigned char *c = (const unsigned char *)s; *c;) {
        size_t space = space_length(c);
        if (space) {
            pending = out.length > 0;
            c += space;
            continue;
        }
        if (pending) put_char(&out, ' ');
        pending = 0;
        size_t n = strnlen((const char *)c, char_length(*c));
        put(&out, (const char *)c, n);
        c += n;
    }
    free(s);
    return out.data;
}

char *tp_bleu_tokenize_13a(const char *input)
{
    size_t length = strlen(input);
    while (length && space_length((const unsigned char *)input + length - 1) == 1) length--; /* rstrip */
    text line = {0};
    put(&line, " ", 1); /* the opening space of f' {line} ' */
    put(&line, input, length);
    char *s = line.data;
    s = replace_all(s, "<skipped>", "");
    s = replace_all(s, "-\n", "");
    s = replace_all(s, "\n", " ");
    s = replace_all(s, "&quot;", "\"");
    s = replace_all(s, "&amp;", "&");
    s = replace_all(s, "&lt;", "<");
    s = replace_all(s, "&gt;", ">");
    size_t n = strlen(s);
    s = tp_xrealloc(s, n + 2);
    s[n] = ' '; /* the closing space of f' {line} ', after the replacements as in sacreBLEU */
    s[n + 1] = '\0';
    return collapse_spaces(pass_dash(pass_period_before(pass_period_after(pass_punctuation(s)))));
}

/* Tokens of a tokenized line (single spaces): starts and lengths. */
typedef struct tokens {
    const char **start;
    size_t *length;
    int64_t count;
} tokens;

static tokens split(const char *s)
{
    tokens t = {0};
    size_t capacity = strlen(s) / 2 + 1;
    t.start = tp_xmalloc(capacity * sizeof *t.start);
    t.length = tp_xmalloc(capacity * sizeof *t.length);
    for (const char *c = s; *c;) {
        size_t n = strcspn(c, " ");
        t.start[t.count] = c;
        t.length[t.count++] = n;
        c += n;
        if (*c == ' ') c++;
    }
    return t;
}

static int same_ngram(const tokens *a, int64_t i, const tokens *b, int64_t j, int n)
{
    for (int k = 0; k < n; k++)
        if (a->length[i + k] != b->length[j + k] || memcmp(a->start[i + k], b->start[j + k], a->length[i + k]))
            return 0;
    return 1;
}

static int64_t occurrences(const tokens *in, const tokens *of, int64_t at, int n)
{
    int64_t count = 0;
    for (int64_t j = 0; j + n <= in->count; j++) count += same_ngram(in, j, of, at, n);
    return count;
}

void tp_bleu_add(tp_bleu *stats, const char *hypothesis, const char *reference)
{
    char *hyp_text = tp_bleu_tokenize_13a(hypothesis), *ref_text = tp_bleu_tokenize_13a(reference);
    tokens hyp = split(hyp_text), ref = split(ref_text);
    stats->hypothesis_length += hyp.count;
    stats->reference_length += ref.count;
    for (int n = 1; n <= 4; n++) {
        if (hyp.count < n) continue;
        stats->total[n - 1] += hyp.count - n + 1;
        for (int64_t i = 0; i + n <= hyp.count; i++) {
            int64_t earlier = 0;
            for (int64_t j = 0; j < i && !earlier; j++) earlier = same_ngram(&hyp, j, &hyp, i, n);
            if (earlier) continue; /* each distinct n-gram once, clipped by the reference's count */
            int64_t in_hyp = occurrences(&hyp, &hyp, i, n), in_ref = occurrences(&ref, &hyp, i, n);
            stats->correct[n - 1] += in_hyp < in_ref ? in_hyp : in_ref;
        }
    }
    free(hyp.start), free(hyp.length), free(ref.start), free(ref.length);
    free(hyp_text), free(ref_text);
}

static double floored_log(double x) { return x == 0.0 ? -9999999999.0 : log(x); }

double tp_bleu_score(const tp_bleu *stats, double *precisions, double *brevity_penalty)
{
    double p[4] = {0, 0, 0, 0}, bp = 1.0, smooth = 1.0;
    int64_t sys = stats->hypothesis_length, ref = stats->reference_length, any = 0;
    if (sys < ref) bp = sys > 0 ? exp(1.0 - (double)ref / (double)sys) : 0.0;
    for (int n = 0; n < 4; n++) any |= stats->correct[n];
    double score = 0;
    if (any) {
        for (int n = 0; n < 4; n++) {
            if (stats->total[n] == 0) break;
            if (stats->correct[n] == 0) {
                smooth *= 2;
                p[n] = 100.0 / (smooth * (double)stats->total[n]);
            } else {
                p[n] = 100.0 * (double)stats->correct[n] / (double)stats->total[n];
            }
        }
        double sum = 0;
        for (int n = 0; n < 4; n++) sum += floored_log(p[n]);
        score = bp * exp(sum / 4);
    }
    if (precisions) memcpy(precisions, p, sizeof p);
    if (brevity_penalty) *brevity_penalty = bp;
    return score;
}
