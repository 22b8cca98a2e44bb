/* The per-step activation arena: a bump allocator reset after every optimizer
 * step.  The first steps may add blocks; tp_arena_reset then merges them into
 * one block of the high-water size, so from then on a step allocates nothing. */
#ifndef TP_ARENA_H
#define TP_ARENA_H

#include <stddef.h>

typedef struct tp_arena_block {
    struct tp_arena_block *next;
    char *base;
    size_t size, used;
} tp_arena_block;

typedef struct tp_arena {
    tp_arena_block *head;    /* block being filled */
    tp_arena_block *blocks;  /* all blocks, newest first */
    size_t high_water;       /* bytes handed out in the largest step so far */
    size_t in_use;
    size_t growth_count;     /* blocks added since creation (tests: 0 after warm-up) */
    size_t reserved;         /* bytes of all blocks */
    size_t limit;            /* most bytes the blocks may hold (0: no limit), e.g. tp_memory_limit() */
    void *(*alloc)(size_t bytes);
    void (*release)(void *ptr);
} tp_arena;

void tp_arena_init(tp_arena *arena, size_t initial_bytes, void *(*alloc)(size_t), void (*release)(void *));
/* 64-byte aligned; never fails: out of memory, or past the limit, exits with the size needed. */
void *tp_arena_alloc(tp_arena *arena, size_t bytes);
void tp_arena_reset(tp_arena *arena);
void tp_arena_free(tp_arena *arena);
/* This machine's physical memory, or less where RLIMIT_AS / RLIMIT_DATA allow less: beyond it,
 * host memory handed out lazily is paged in until the kernel kills the process without a word. */
size_t tp_memory_limit(void);

#endif
