/* The "sentencepiece" kind: ids exactly as spm_encode --output_format=id gives them, since
 * libsentencepiece itself encodes (through sentencepiece_shim.cc).  The pieces are copied into
 * tp_tokenizer.tokens so that token lookups work as for every kind.  Special ids: unk, bos, eos
 * and pad as the model defines them; cls, sep and mask are the pieces [CLS] [SEP] [MASK] when
 * the model has them (ALBERT's do, as user-defined symbols). */
#include "tokenizers/sentencepiece.h"

#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/fileio.h"
#include "tokenizers/sentencepiece_shim.h"
#include "tokenizers/vocab.h"

#ifdef TP_HAVE_SENTENCEPIECE

typedef struct tp_spm {
    tp_vocab_index vocab; /* first: see vocab.h */
    tp_spm_model *model;
} tp_spm;

static int spm_encode(const tp_tokenizer *tok, const char *text, size_t len, tp_ids *out)
{
    const tp_spm *spm = tok->impl;
    int32_t *ids = NULL;
    int64_t count = 0;
    char error[512];
    if (tp_spm_shim_encode(spm->model, text, len, &ids, &count, error, sizeof error) != 0) {
        free(ids);
        return tp_fail("%s: sentencepiece: %s", tok->source_path, error);
    }
    for (int64_t i = 0; i < count; i++) tp_ids_push(out, ids[i]);
    free(ids);
    return 0;
}

static void spm_destroy(tp_tokenizer *tok)
{
    tp_spm *spm = tok->impl;
    tp_spm_shim_free(spm->model);
    tp_vocab_tokenizer_destroy(tok);
}

static const tp_tokenizer_ops spm_ops = {
    .encode = spm_encode,
    .destroy = spm_destroy,
};

static int copy_pieces(tp_tokenizer *tok, const char *path)
{
    const tp_spm *spm = tok->impl;
    for (int32_t id = 0; id < tok->vocab_size; id++) {
        size_t len;
        const char *piece = tp_spm_shim_piece(spm->model, id, &len);
        if (len == 0 || memchr(piece, '\0', len)) return tp_fail("%s: piece %d is empty or holds a NUL byte", path, id);
        int32_t earlier = tp_vocab_add(tok, id, tp_vocab_store(tok, piece, len), len);
        if (earlier >= 0) return tp_fail("%s: piece %d '%s' repeats piece %d", path, id, piece, earlier);
    }
    return 0;
}

static void set_special_ids(tp_tokenizer *tok)
{
    tp_spm_special_ids ids = tp_spm_shim_special_ids(((const tp_spm *)tok->impl)->model);
    tok->unk_id = ids.unk;
    tok->bos_id = ids.bos;
    tok->eos_id = ids.eos;
    tok->pad_id = ids.pad >= 0 ? ids.pad : tp_tokenizer_token_id(tok, "[PAD]");
    tok->cls_id = tp_tokenizer_token_id(tok, "[CLS]");
    tok->sep_id = tp_tokenizer_token_id(tok, "[SEP]");
    tok->mask_id = tp_tokenizer_token_id(tok, "[MASK]");
}

tp_tokenizer *tp_spm_create(const tp_tokenizer_options *options)
{
    const char *path = options->spm_model_path;
    if (!path) {
        tp_fail("tokenizer 'sentencepiece': no model file given (spm_model_path)");
        return NULL;
    }
    size_t size;
    char *data = tp_read_file(path, &size);
    if (!data) return NULL;
    if (tp_spm_model_check((const unsigned char *)data, size, path) != 0) {
        free(data);
        return NULL;
    }
    char error[512];
    tp_spm_model *model = tp_spm_shim_load(data, size, error, sizeof error);
    free(data);
    if (!model) {
        tp_fail("%s: not a SentencePiece model: %s", path, error);
        return NULL;
    }
    int64_t pieces = tp_spm_shim_piece_count(model);
    if (pieces <= 0 || pieces > INT32_MAX) {
        tp_spm_shim_free(model);
        tp_fail("%s: %lld pieces", path, (long long)pieces);
        return NULL;
    }
    tp_tokenizer *tok = tp_vocab_tokenizer_new(pieces, sizeof(tp_spm));
    ((tp_spm *)tok->impl)->model = model;
    tok->ops = &spm_ops;
    tok->source_path = tp_vocab_store(tok, path, strlen(path));
    if (copy_pieces(tok, path) != 0) {
        spm_destroy(tok);
        return NULL;
    }
    set_special_ids(tok);
    return tok;
}

#else

tp_tokenizer *tp_spm_create(const tp_tokenizer_options *options)
{
    tp_fail("%s: this build has no SentencePiece (install libsentencepiece-dev, e.g. with scripts/install_deps.sh, "
            "and rebuild)",
            options->spm_model_path ? options->spm_model_path : "tokenizer 'sentencepiece'");
    return NULL;
}

#endif
