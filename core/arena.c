#include "arena.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <unistd.h>

#include "error.h"

size_t tp_memory_limit(void)
{
    double limit = (double)sysconf(_SC_PHYS_PAGES) * (double)sysconf(_SC_PAGESIZE);
    const int resources[] = {RLIMIT_AS, RLIMIT_DATA};
    for (int i = 0; i < 2; i++) {
        struct rlimit rl;
        if (getrlimit(resources[i], &rl) == 0 && rl.rlim_cur != RLIM_INFINITY && (double)rl.rlim_cur < limit)
            limit = (double)rl.rlim_cur;
    }
    return limit > 0 && limit < (double)SIZE_MAX ? (size_t)limit : 0;
}

static void check_limit(const tp_arena *arena, size_t size)
{
    if (!arena->limit || (size <= arena->limit && arena->reserved <= arena->limit - size)) return;
    fprintf(stderr,
            "tp: error: out of memory: the activations of one step need more than %.1f GiB, and %.1f GiB is all "
            "this process may use (lower batch_size or seq_length)\n",
            ((double)arena->reserved + (double)size) / 1073741824.0, (double)arena->limit / 1073741824.0);
    exit(1);
}

static tp_arena_block *new_block(tp_arena *arena, size_t size)
{
    check_limit(arena, size);
    tp_arena_block *block = tp_xmalloc(sizeof *block);
    block->base = arena->alloc(size);
    block->size = size;
    block->used = 0;
    arena->reserved += size;
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
    arena->reserved = 0;
}

void tp_arena_init(tp_arena *arena, size_t initial_bytes, void *(*alloc)(size_t), void (*release)(void *))
{
    arena->blocks = NULL;
    arena->alloc = alloc;
    arena->release = release;
    arena->high_water = 0;
    arena->in_use = 0;
    arena->growth_count = 0;
    arena->reserved = 0;
    arena->limit = 0;
    arena->head = new_block(arena, initial_bytes ? initial_bytes : (1u << 20));
}

void *tp_arena_alloc(tp_arena *arena, size_t bytes)
{
    size_t rounded = (bytes + 63) & ~(size_t)63;
    tp_arena_block *block = arena->head;
    if (block->used + rounded > block->size) {
        size_t size = block->size * 2 > rounded ? block->size * 2 : rounded;
        /* Near the limit, only what this request needs: the limit's message then names a true need. */
        if (arena->limit && size > rounded && arena->reserved + size > arena->limit) size = rounded;
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
