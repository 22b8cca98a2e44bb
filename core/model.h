/* A model assembled at run time from the five registries (embedding, encoder,
 * target embedding, decoder, target) named in a TencentPretrain model config. */
#ifndef TP_MODEL_H
#define TP_MODEL_H

#include <stdint.h>

#include "config.h"
#include "dataset.h"
#include "ops.h"
#include "params.h"

/* Hyper-parameters shared by the modules, read once from the model config. */
typedef struct tp_model_config {
    int64_t vocab_size, emb_size, hidden_size, feedforward_size, heads_num, layers_num, max_seq_length;
    float dropout, layernorm_eps;
    tp_activation hidden_act;
    int layernorm_pre;          /* layernorm_positioning: 0 post (BERT), 1 pre */
    tp_norm_kind layernorm;     /* "normal" (TencentPretrain) or "normal_torch": the encoder's norms */
    /* tp extensions: TencentPretrain always gives the embedding and the MLM head its own
     * LayerNorm (eps 1e-6); Hugging Face models use torch's (eps layernorm_eps) there too. */
    tp_norm_kind embedding_layernorm, target_layernorm;
    tp_mask_kind mask;
    int tie_weights;
    int remove_embedding_layernorm;
    int remove_attention_scale;
    int remove_transformer_bias;
    /* ALBERT (TencentPretrain's keys): the embedding (emb_size) is mapped to hidden_size by
     * encoder.linear; one transformer layer's weights serve all layers_num layers. */
    int factorized_embedding_parameterization;
    int parameter_sharing;
    /* tp extension: the position of token s is s + position_offset, and the position table has
     * max_seq_length + position_offset rows (Hugging Face RoBERTa: padding_idx + 1 = 2, its
     * table kept whole so that conversions are lossless). */
    int64_t position_offset;
    int64_t vocab_row_multiple; /* storage padding of vocabulary-sized matrices */
    /* Encoder-decoder models (T5, BART): T5's relative position bias (buckets, bidirectional in the
     * encoder, causal in the decoder), the gated feed-forward (`feed_forward: gated`), the decoder's
     * depth, and share_embedding (the target side's word embedding is the source side's). */
    int relative_position_embedding;
    int64_t relative_attention_buckets_num;
    int64_t relative_attention_max_distance; /* tp extension: TencentPretrain fixes it at 128 */
    int feed_forward_gated;
    int64_t decoder_layers_num;
    int share_embedding;
    /* TencentPretrain's attention_head_size: each head's width (default hidden_size / heads_num); the
     * attention's inner width heads_num * attention_head_size may differ from hidden_size
     * (t5-v1_1-small: 6 x 64 != 512). */
    int64_t attention_head_size;
    /* tp extension (Hugging Face's scale_embedding): word embeddings times sqrt(emb_size) (Pegasus). */
    int scale_embedding;
    /* tp extension (initializer: t5): Hugging Face T5's fan-in scaled initialisation (core/init_t5.h)
     * instead of TencentPretrain's N(0, 0.02). */
    int initializer_t5;
} tp_model_config;

/* A batch in backend memory (image pixels excepted, see below), as the modules see it. */
typedef struct tp_model_batch {
    int64_t batch_size, seq_length;
    const int32_t *src, *seg, *positions; /* [B*S] */
    const int32_t *mlm_positions, *mlm_labels;
    int64_t mlm_count;
    const int32_t *sp_labels; /* [B] */
    const int32_t *labels;    /* [B] class ids for the cls target */
    const float *targets;     /* [B * target_width] regression values / multi-label 0/1 indicators */
    int64_t target_width;
    const int32_t *tags;      /* [B*S] tag ids for the tagging target, -1 ignored */
    const int32_t *first_rows; /* [B]: b * S, the rows of each sequence's first token */
    const int32_t *last_rows;  /* [B]: the row of each sequence's last real token */
    /* Image batches (src NULL): tp_batch's pixels, left in HOST memory -- the patch embedding lays
     * out its patch matrix on the host and uploads that, as pos.c does its ids. */
    const float *pixels;
    int64_t pixel_width;
    /* BEiT (the masked_patch embedding): [B * patches] in HOST memory, 1 where the image's patch is
     * replaced by the mask token (Hugging Face's bool_masked_pos); NULL: no patch is masked. */
    const uint8_t *patch_mask;
    /* Audio batches (src NULL): tp_batch's audio, B utterances of audio_frames x audio_feature_size
     * features (fbank), in HOST memory as the pixels are; seq_length is then the speech embedding's
     * subsampled length, and seg marks each utterance's real subsampled frames. */
    const float *audio;
    int64_t audio_frames, audio_feature_size;
    /* Encoder-decoder batches: the decoder's input ids [B*tgt_seq_length]; the lm target's labels
     * are then `tags` over the same rows. */
    int64_t tgt_seq_length;
    const int32_t *tgt_src;
    /* Two-stream models (CLIP: token ids and pixels in one batch), set by tp_model_forward
     * (modules/layers/streams.h): the stream the dual embedding and encoder run, and for the targets
     * (which get stream 0's output as `hidden`) both streams' encoder outputs. */
    int stream;
    tp_tensor *const *stream_hidden;
    /* The rows targets can read -- each sequence's first and last real token and its masked tokens -- as
     * tp_model_batch_upload plans them: marked_per_seq of each sequence (0: that would be every row),
     * marked_rows [B * marked_per_seq] their rows, sequence by sequence in order, a sequence with fewer
     * repeating its first row; marked_first_rows, marked_last_rows and marked_mlm_positions are
     * first_rows, last_rows and mlm_positions as rows of that selection. */
    int64_t marked_per_seq;
    const int32_t *marked_rows, *marked_first_rows, *marked_last_rows, *marked_mlm_positions;
    /* Set by callers that read nothing of tp_model_forward's output but the targets' results: the
     * encoder may then skip the rows no target reads (see tp_model_forward). */
    int targets_only;
    /* Set by tp_model_forward for the encoder alone: it may return only these keep_per_seq rows of each
     * sequence (the marked rows), [B * keep_per_seq, hidden]; an encoder that cannot returns every row. */
    int64_t keep_per_seq;
    const int32_t *keep_rows;
} tp_model_batch;

/* What a module's create() gets: the config to read its own keys from, the
 * shared hyper-parameters, and the parameter set to declare its weights in. */
typedef struct tp_build {
    tp_config *config;
    const tp_model_config *hp;
    tp_params *params;
    tp_config *streams[2]; /* two-stream models: each stream's view of the config; NULL otherwise */
} tp_build;

typedef struct tp_embedding_type {
    const char *name;
    void *(*create)(tp_build *build, const char *prefix); /* NULL + tp_fail on a bad config */
    tp_tensor *(*forward)(void *self, tp_ctx *ctx, const tp_model_batch *batch); /* [B*S, emb_size] */
    void (*destroy)(void *self);                          /* NULL: free(self) */
} tp_embedding_type;

typedef struct tp_encoder_type {
    const char *name;
    void *(*create)(tp_build *build, const char *prefix);
    tp_tensor *(*forward)(void *self, tp_ctx *ctx, tp_tensor *input, const tp_model_batch *batch);
    void (*destroy)(void *self);
} tp_encoder_type;

/* One target's loss and metrics for a batch. */
typedef struct tp_target_result {
    tp_tensor *loss;      /* [1] on the tape */
    tp_tensor *logits;    /* [rows, classes (+ padding columns)]: the head's output */
    int64_t classes;      /* real classes among the logits' columns */
    int64_t correct, count;
} tp_target_result;

typedef struct tp_target_type {
    const char *name;
    void *(*create)(tp_build *build, const char *prefix);
    int (*forward)(void *self, tp_ctx *ctx, tp_tensor *hidden, const tp_model_batch *batch, tp_target_result *out);
    void (*destroy)(void *self);
    /* 1 when the target reads no row of hidden but the batch's first_rows, last_rows and mlm_positions;
     * NULL: it may read any row. */
    int (*reads_marked_rows)(const void *self);
} tp_target_type;

/* A decoder attends to the encoder's output (encoder-decoder models). */
typedef struct tp_decoder_type {
    const char *name;
    void *(*create)(tp_build *build, const char *prefix);
    tp_tensor *(*forward)(void *self, tp_ctx *ctx, tp_tensor *input, tp_tensor *memory, const tp_model_batch *batch);
    void (*destroy)(void *self);
} tp_decoder_type;

/* The five registries (modules/registry.c): NULL-terminated, one line per module
 * type.  Target embeddings are embedding types applied to the target side. */
extern const tp_embedding_type *const tp_embedding_registry[];
extern const tp_encoder_type *const tp_encoder_registry[];
extern const tp_embedding_type *const tp_tgt_embedding_registry[];
extern const tp_decoder_type *const tp_decoder_registry[];
extern const tp_target_type *const tp_target_registry[];

#define TP_MAX_PARTS 8

typedef struct tp_model {
    tp_model_config hp;
    tp_params params;
    int embedding_count;
    const tp_embedding_type *embedding_types[TP_MAX_PARTS];
    void *embeddings[TP_MAX_PARTS];
    void *embedding_norm; /* NULL with remove_embedding_layernorm */
    const tp_encoder_type *encoder_type;
    void *encoder;
    /* Encoder-decoder models only (decoder_type NULL otherwise). */
    int tgt_embedding_count;
    const tp_embedding_type *tgt_embedding_types[TP_MAX_PARTS];
    void *tgt_embeddings[TP_MAX_PARTS];
    void *tgt_embedding_norm; /* NULL with remove_embedding_layernorm */
    const tp_decoder_type *decoder_type;
    void *decoder;
    int target_count;
    const tp_target_type *target_types[TP_MAX_PARTS];
    void *targets[TP_MAX_PARTS];
    /* Two-stream models (a config with stream_0 and stream_1: CLIP): each stream's view of the
     * config (modules/layers/streams.h); stream_count 0 otherwise. */
    int stream_count;
    tp_config *stream_configs[2];
} tp_model;

typedef struct tp_model_output {
    tp_tensor *loss;        /* sum of the targets' losses (NULL for a model without targets) */
    tp_tensor *hidden;      /* encoder output [B*S, hidden] (encoder-decoder: the decoder's, [B*T, hidden]) */
    tp_tensor *stream_hidden[2]; /* two-stream models: each stream's encoder output (hidden is stream 0's) */
    tp_target_result results[TP_MAX_PARTS];
} tp_model_output;

/* Reads the model config (every key checked; unknown keys are left for the caller's
 * tp_config_check_unused) and declares all parameters.  vocab_size comes from the
 * vocabulary (a "vocab_size" key in the config must agree with it). */
int tp_model_build(tp_model *model, tp_config *config, int64_t vocab_size);
/* The shared hyper-parameters of a model config (every key checked as tp_model_build checks them);
 * the dual modules read each stream's with it. */
int tp_model_read_hyperparameters(tp_config *cfg, tp_model_config *hp, int64_t vocab_size);
/* Allocates the flat buffers on the backend and initialises them from seed. */
void tp_model_allocate(tp_model *model, const tp_backend *backend, uint64_t seed);
void tp_model_free(tp_model *model);
/* Copies a host batch into the step arena. */
tp_model_batch tp_model_batch_upload(tp_ctx *ctx, const tp_batch *batch);
/* The embedding and the encoder alone -> the encoder's output [B*S, hidden] (what an
 * encoder-decoder model's decoder attends to). */
tp_tensor *tp_model_encode(tp_model *model, tp_ctx *ctx, const tp_model_batch *batch);
/* Encoder-decoder models: the target side's embeddings of tgt_src (summed, normed) -> [B*T, emb_size]. */
tp_tensor *tp_model_embed_target(tp_model *model, tp_ctx *ctx, const tp_model_batch *batch);
/* Forward through every part; the loss is on the tape when ctx->record.  With batch->targets_only, a
 * model whose targets all read only the marked rows (no decoder, one stream) has its encoder compute
 * the last layer for those rows alone: out->hidden is then [B * marked_per_seq, hidden] (or every
 * row, when the encoder cannot skip any) and the targets' results are the full forward's. */
int tp_model_forward(tp_model *model, tp_ctx *ctx, const tp_model_batch *batch, tp_model_output *out);
/* Name of target i as in the config ("mlm", "sp"). */
const char *tp_model_target_name(const tp_model *model, int index);
/* The index of the target named name ("clr"), or -1 when the model has none. */
int tp_model_target_index(const tp_model *model, const char *name);
/* 1 when one of the model's embeddings is the type named name ("word_patch"). */
int tp_model_has_embedding(const tp_model *model, const char *name);

#endif
