/* What tp checks in a SentencePiece .model before libsentencepiece loads it.  The library trusts
 * the precompiled character maps of the normalizer and denormalizer specs: it walks their
 * darts-clone tries and reads their replacement strings without bounds checks, so a hostile model
 * made it read far outside its memory on the first encode (found by fuzz_spm, docs/robustness.md).
 * Here the ModelProto's wire format is walked just far enough to find those maps, and every unit
 * a common-prefix search can reach, for any input bytes, is proven to lie inside the trie, and
 * every leaf's value inside the replacement strings. */
#include <stdint.h>
#include <stdlib.h>

#include "core/error.h"
#include "tokenizers/darts.h"
#include "tokenizers/sentencepiece.h"

/* ModelProto's and NormalizerSpec's field numbers (sentencepiece_model.proto). */
enum { MODEL_NORMALIZER_SPEC = 3, MODEL_DENORMALIZER_SPEC = 5, SPEC_PRECOMPILED_CHARSMAP = 2 };
enum { WIRE_VARINT = 0, WIRE_FIXED64 = 1, WIRE_BYTES = 2, WIRE_FIXED32 = 5 };

typedef struct proto_field {
    uint64_t number;
    int wire_type;
    size_t payload, payload_size; /* WIRE_BYTES: where its bytes start, how many */
} proto_field;

static int read_varint(const unsigned char *data, size_t end, size_t *pos, uint64_t *value)
{
    *value = 0;
    for (int shift = 0; shift < 64 && *pos < end; shift += 7) {
        unsigned char byte = data[(*pos)++];
        *value |= (uint64_t)(byte & 0x7F) << shift;
        if (!(byte & 0x80)) return 0;
    }
    return -1;
}

/* The field at *pos (before end), *pos moved past it; -1 on a truncated or malformed field. */
static int next_field(const unsigned char *data, size_t end, size_t *pos, proto_field *field)
{
    uint64_t key, length;
    if (read_varint(data, end, pos, &key) != 0) return -1;
    field->number = key >> 3;
    field->wire_type = (int)(key & 7);
    switch (field->wire_type) {
    case WIRE_VARINT: return read_varint(data, end, pos, &length);
    case WIRE_FIXED64: return end - *pos < 8 ? -1 : (*pos += 8, 0);
    case WIRE_FIXED32: return end - *pos < 4 ? -1 : (*pos += 4, 0);
    case WIRE_BYTES:
        if (read_varint(data, end, pos, &length) != 0 || length > end - *pos) return -1;
        field->payload = *pos;
        field->payload_size = (size_t)length;
        *pos += (size_t)length;
        return 0;
    default: return -1; /* groups (3, 4) and wire types 6, 7: no SentencePiece model has them */
    }
}

static uint32_t unit_at(const unsigned char *trie, uint64_t index) { return tp_read_le32(trie + 4 * index); }

/* Every node a common-prefix search reaches, for any key, depth first from the root: from node p
 * the search reads unit p ^ c for the key's next byte c, so all 256 of them must exist; a unit
 * labelled c leads on to node (p ^ c) ^ offset, whose unit holds the value when it has a leaf. */
static int check_trie(const unsigned char *trie, uint64_t unit_count, size_t replacements_size, const char *path,
                      const char *spec, size_t offset)
{
    if (unit_count == 0) return tp_fail("%s: %s.precompiled_charsmap (byte %zu): the trie is empty", path, spec, offset);
    unsigned char *seen = calloc(unit_count, 1);
    uint64_t *pending = malloc(sizeof *pending * unit_count);
    if (!seen || !pending) {
        free(seen);
        free(pending);
        return tp_fail("%s: out of memory checking a %llu-unit trie", path, (unsigned long long)unit_count);
    }
    int status = 0;
    uint64_t pending_count = 0, root = tp_darts_offset(unit_at(trie, 0));
    if ((root | 0xFF) >= unit_count)
        status = tp_fail("%s: %s.precompiled_charsmap (byte %zu): the root's children lie past the %llu-unit trie",
                         path, spec, offset, (unsigned long long)unit_count);
    else {
        seen[root] = 1;
        pending[pending_count++] = root;
    }
    while (status == 0 && pending_count > 0) {
        uint64_t node = pending[--pending_count];
        for (uint32_t byte = 0; byte < 256 && status == 0; byte++) {
            uint32_t unit = unit_at(trie, node ^ byte);
            if (tp_darts_label(unit) != byte) continue;
            uint64_t child = node ^ byte ^ tp_darts_offset(unit);
            if ((child | 0xFF) >= unit_count)
                status = tp_fail("%s: %s.precompiled_charsmap (byte %zu): unit %llu points past the %llu-unit trie",
                                 path, spec, offset, (unsigned long long)(node ^ byte), (unsigned long long)unit_count);
            else if (tp_darts_has_leaf(unit) && tp_darts_value(unit_at(trie, child)) >= replacements_size)
                status = tp_fail("%s: %s.precompiled_charsmap (byte %zu): unit %llu points at byte %u of the %zu bytes "
                                 "of replacements",
                                 path, spec, offset, (unsigned long long)child, tp_darts_value(unit_at(trie, child)),
                                 replacements_size);
            else if (!seen[child]) {
                seen[child] = 1;
                pending[pending_count++] = child;
            }
        }
    }
    free(seen);
    free(pending);
    return status;
}

/* An empty map is no map: the library then uses the rule the spec names (or none, "identity"). */
static int check_charsmap(const unsigned char *blob, size_t size, const char *path, const char *spec, size_t offset)
{
    if (size == 0) return 0;
    uint32_t trie_size;
    if (!tp_charsmap_holds_trie(blob, size, &trie_size))
        return tp_fail("%s: %s.precompiled_charsmap (byte %zu): %zu bytes cannot hold a %u-byte trie", path, spec,
                       offset, size, trie_size);
    return check_trie(blob + 4, trie_size / 4, size - 4 - trie_size, path, spec, offset);
}

static int check_spec(const unsigned char *data, size_t begin, size_t end, const char *path, const char *spec)
{
    proto_field field;
    for (size_t pos = begin; pos < end;) {
        size_t at = pos;
        if (next_field(data, end, &pos, &field) != 0)
            return tp_fail("%s: not a SentencePiece model: malformed %s field at byte %zu", path, spec, at);
        if (field.number == SPEC_PRECOMPILED_CHARSMAP && field.wire_type == WIRE_BYTES &&
            check_charsmap(data + field.payload, field.payload_size, path, spec, field.payload) != 0)
            return -1;
    }
    return 0;
}

/* Protobuf merges repeated occurrences of a message field and keeps the last of a bytes field:
 * every occurrence is checked, so whichever the library keeps is sound. */
int tp_spm_model_check(const unsigned char *data, size_t size, const char *path)
{
    proto_field field;
    for (size_t pos = 0; pos < size;) {
        size_t at = pos;
        if (next_field(data, size, &pos, &field) != 0)
            return tp_fail("%s: not a SentencePiece model: malformed protobuf field at byte %zu", path, at);
        if (field.wire_type != WIRE_BYTES) continue;
        size_t end = field.payload + field.payload_size;
        if (field.number == MODEL_NORMALIZER_SPEC && check_spec(data, field.payload, end, path, "normalizer_spec"))
            return -1;
        if (field.number == MODEL_DENORMALIZER_SPEC && check_spec(data, field.payload, end, path, "denormalizer_spec"))
            return -1;
    }
    return 0;
}
