/* Internal to tokenizers/: a C view of libsentencepiece's SentencePieceProcessor (C++),
 * implemented by sentencepiece_shim.cc, which CMake compiles only when the library is found
 * (then TP_HAVE_SENTENCEPIECE is defined).  No function throws or prints; failures return
 * NULL / -1 with the library's message in error[0..error_size). */
#ifndef TP_SENTENCEPIECE_SHIM_H
#define TP_SENTENCEPIECE_SHIM_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct tp_spm_model tp_spm_model;

typedef struct tp_spm_special_ids {
    int32_t unk, bos, eos, pad; /* -1 when the model has none */
} tp_spm_special_ids;

/* A model from the bytes of a .model file (a serialized ModelProto). */
tp_spm_model *tp_spm_shim_load(const void *data, size_t size, char *error, size_t error_size);
void tp_spm_shim_free(tp_spm_model *model);
int64_t tp_spm_shim_piece_count(const tp_spm_model *model);
/* The piece of id (0 <= id < piece count), valid while the model lives. */
const char *tp_spm_shim_piece(const tp_spm_model *model, int32_t id, size_t *len);
tp_spm_special_ids tp_spm_shim_special_ids(const tp_spm_model *model);
/* The ids of text[0..len) (as spm_encode --output_format=id): *ids is realloc'ed to hold
 * *count of them.  Safe to call concurrently on one model. */
int tp_spm_shim_encode(const tp_spm_model *model, const char *text, size_t len, int32_t **ids, int64_t *count,
                       char *error, size_t error_size);

#ifdef __cplusplus
}
#endif

#endif
