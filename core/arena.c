#include "arena.h"

#include <stdlib.h>

#include "error.h"

static tp_arena_block *new_block(tp_arena *arena, size_t size)
{
    tp_arena_block *block = tp_xmalloc(sizeof *block);
    block->base = arena->alloc(size);
    block->size = size;
    block->used = 0;
    block->next = arena->blocks;
    arena->blocks = block;
    return block;
}

static void free_blocks(tp_arena *arena)
{
    while (arena->blocks) {
        tp_arena_block *next = arena->blocks->next;
        arena->release(arena->blocks->base);
        free(arena->blocks);
        arena->blocks = next;
    }
    arena->head = NULL;
}

void tp_arena_init(tp_arena *arena, size_t initial_bytes, void *(*alloc)(size_t), void (*release)(void *))
{
    arena->blocks = NULL;
    arena->alloc = alloc;
    arena->release = release;
    arena->high_water = 0;
    arena->in_use = 0;
    arena->growth_count = 0;
    arena->head = new_block(arena, initial_bytes ? initial_bytes : (1u << 20));
}

void *tp_arena_alloc(tp_arena *arena, size_t bytes)
{
    size_t rounded = (bytes + 63) & ~(size_t)63;
    tp_arena_block *block = arena->head;
    if (block->used + rounded > block->size) {
        size_t size = block->size * 2 > rounded ? block->size * 2 : rounded;
        block = arena->head = new_block(arena, size);
        arena->growth_count++;
    }
    void *ptr = block->base + block->used;
    block->used += rounded;
    arena->in_use += rounded;
    if (arena->in_use > arena->high_water) arena->high_water = arena->in_use;
    return ptr;
}

void tp_arena_reset(tp_arena *arena)
{
    if (arena->blocks->next) {
        /* Several blocks were needed: replace them by one that holds the whole step. */
        free_blocks(arena);
        arena->head = new_block(arena, arena->high_water);
    }
    arena->head->used = 0;
    arena->in_use = 0;
}

void tp_arena_free(tp_arena *arena) { free_blocks(arena); }
