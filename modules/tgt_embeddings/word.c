/* Target-side "word" embedding (tgt_embedding: [word ...]): the decoder's input ids
 * (tp_model_batch.tgt_src) looked up in tgt_embedding.word.embedding.weight [vocab_size, emb_size],
 * or -- with share_embedding, as T5 and BART -- in the source side's embedding.word table; times
 * sqrt(emb_size) with scale_embedding (Pegasus). */
#include <math.h>

#include "modules/layers/layers.h"

static void *tgt_word_create(tp_build *build, const char *prefix)
{
    const tp_model_config *hp = build->hp;
    float scale = hp->scale_embedding ? sqrtf((float)hp->emb_size) : 1.0f;
    if (!hp->share_embedding) {
        tp_lookup_embedding *own = tp_lookup_embedding_create(build, prefix, hp->vocab_size, hp->vocab_row_multiple, NULL);
        own->scale = scale;
        return own;
    }
    tp_param *word = tp_params_find(build->params, "embedding.word.embedding.weight");
    if (!word) {
        tp_fail("%s: key 'share_embedding': the target side shares the 'word' embedding, which 'embedding' does not "
                "list", tp_config_name(build->config));
        return NULL;
    }
    tp_lookup_embedding *self = tp_xmalloc(sizeof *self);
    self->table = &word->tensor;
    self->ids = NULL;
    self->scale = scale;
    return self;
}

static tp_tensor *tgt_word_forward(void *self, tp_ctx *ctx, const tp_model_batch *batch)
{
    return tp_lookup_embedding_rows(ctx, self, batch->tgt_src, batch->batch_size * batch->tgt_seq_length);
}

const tp_embedding_type tp_tgt_embedding_word = {"word", tgt_word_create, tgt_word_forward, NULL};
