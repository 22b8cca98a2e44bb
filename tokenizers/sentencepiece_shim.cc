// The C shim over libsentencepiece (see sentencepiece_shim.h).  Exceptions (std::bad_alloc)
// are caught here: none may cross into C.
#include "tokenizers/sentencepiece_shim.h"

#include <sentencepiece_processor.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>
#include <string>
#include <vector>

struct tp_spm_model {
    sentencepiece::SentencePieceProcessor processor;
};

static void set_error(char *error, size_t error_size, const char *message)
{
    if (error_size) std::snprintf(error, error_size, "%s", message);
}

extern "C" tp_spm_model *tp_spm_shim_load(const void *data, size_t size, char *error, size_t error_size)
{
    try {
        tp_spm_model *model = new tp_spm_model;
        auto status = model->processor.LoadFromSerializedProto(
            absl::string_view(static_cast<const char *>(data), size));
        if (!status.ok()) {
            set_error(error, error_size, status.ToString().c_str());
            delete model;
            return nullptr;
        }
        return model;
    } catch (const std::exception &e) {
        set_error(error, error_size, e.what());
        return nullptr;
    }
}

extern "C" void tp_spm_shim_free(tp_spm_model *model) { delete model; }

extern "C" int64_t tp_spm_shim_piece_count(const tp_spm_model *model) { return model->processor.GetPieceSize(); }

extern "C" const char *tp_spm_shim_piece(const tp_spm_model *model, int32_t id, size_t *len)
{
    const std::string &piece = model->processor.IdToPiece(id);
    *len = piece.size();
    return piece.c_str();
}

extern "C" tp_spm_special_ids tp_spm_shim_special_ids(const tp_spm_model *model)
{
    const auto &p = model->processor;
    return {p.unk_id(), p.bos_id(), p.eos_id(), p.pad_id()};
}

extern "C" int tp_spm_shim_encode(const tp_spm_model *model, const char *text, size_t len, int32_t **ids,
                                  int64_t *count, char *error, size_t error_size)
{
    try {
        std::vector<int> pieces;
        auto status = model->processor.Encode(absl::string_view(text, len), &pieces);
        if (!status.ok()) {
            set_error(error, error_size, status.ToString().c_str());
            return -1;
        }
        int32_t *grown = static_cast<int32_t *>(std::realloc(*ids, (pieces.size() + 1) * sizeof(int32_t)));
        if (!grown) throw std::bad_alloc();
        *ids = grown;
        for (size_t i = 0; i < pieces.size(); i++) grown[i] = pieces[i];
        *count = static_cast<int64_t>(pieces.size());
        return 0;
    } catch (const std::exception &e) {
        set_error(error, error_size, e.what());
        return -1;
    }
}
