/* Internal to tokenizers/: darts-clone double-array units, the trie of SentencePiece's precompiled
 * character map.  Each unit is a little-endian uint32 holding a label byte (bit 31 set on a leaf,
 * so no byte matches it), a has-leaf flag and the XOR offset from a node to its children; a leaf
 * unit holds a value (here a byte offset into the map's replacement strings).  A common-prefix
 * search starts at offset(units[0]) and, for each key byte c, moves from node p to p ^ c. */
#ifndef TP_DARTS_H
#define TP_DARTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

static inline uint32_t tp_read_le32(const unsigned char *bytes)
{
    return (uint32_t)bytes[0] | (uint32_t)bytes[1] << 8 | (uint32_t)bytes[2] << 16 | (uint32_t)bytes[3] << 24;
}

/* A precompiled character map is a little-endian uint32 trie size in bytes, the trie, then the
 * replacement strings.  *trie_bytes: the size it declares (0 when it has no 4 bytes); whether the
 * map holds a trie of whole units that size. */
static inline bool tp_charsmap_holds_trie(const unsigned char *blob, size_t size, uint32_t *trie_bytes)
{
    *trie_bytes = size >= 4 ? tp_read_le32(blob) : 0;
    return size >= 4 && *trie_bytes % 4 == 0 && *trie_bytes <= size - 4;
}

static inline uint32_t tp_darts_label(uint32_t unit) { return unit & (0x80000000u | 0xFF); }
static inline bool tp_darts_has_leaf(uint32_t unit) { return (unit >> 8) & 1; }
static inline uint32_t tp_darts_value(uint32_t unit) { return unit & 0x7FFFFFFFu; }
static inline uint64_t tp_darts_offset(uint32_t unit)
{
    return (uint64_t)(unit >> 10) << ((unit & (1u << 9)) >> 6);
}

#endif
