#define _GNU_SOURCE /* nftw */
#include "support/scratch.h"

#include "core/fileio.h"

#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

static char scratch[512]; /* this program's directory; empty until tp_scratch_init */

static void setup_failed(const char *what, const char *path, const char *why)
{
    fprintf(stderr, "%s %s: %s\n", what, path, why);
    exit(1);
}

static int remove_entry(const char *path, const struct stat *info, int flag, struct FTW *ftw) { return remove(path); }

static void remove_scratch(void) { nftw(scratch, remove_entry, 16, FTW_DEPTH | FTW_PHYS); }

const char *tp_scratch_init(const char *tag)
{
    const char *tmp = getenv("TMPDIR"), *parent = tmp && tmp[0] ? tmp : "/tmp";
    int length = snprintf(scratch, sizeof scratch, "%s/tp_%s_XXXXXX", parent, tag);
    if (length < 0 || (size_t)length >= sizeof scratch)
        setup_failed("cannot create a scratch directory in", parent, "path too long");
    if (!mkdtemp(scratch)) setup_failed("cannot create a scratch directory in", parent, strerror(errno));
    atexit(remove_scratch);
    return scratch;
}

const char *tp_scratch_dir(void) { return scratch; }

const char *tp_scratch_path(const char *name)
{
    static char paths[8][sizeof scratch + 256];
    static int next;
    char *path = paths[next++ % 8];
    int length = snprintf(path, sizeof paths[0], "%s/%s", scratch, name);
    if (length < 0 || (size_t)length >= sizeof paths[0]) setup_failed("cannot name", name, "scratch path too long");
    return path;
}

const char *tp_scratch_write(const char *name, const void *data, size_t bytes)
{
    const char *path = tp_scratch_path(name);
    FILE *fp = fopen(path, "wb");
    if (!fp || fwrite(data, 1, bytes, fp) != bytes || fclose(fp) != 0) setup_failed("cannot write", path, strerror(errno));
    return path;
}

const char *tp_scratch_write_text(const char *name, const char *text)
{
    return tp_scratch_write(name, text, strlen(text));
}

int tp_scratch_file_equals(const char *path, const void *expected, size_t bytes)
{
    size_t found_bytes;
    char *found = tp_read_file(path, &found_bytes);
    int same = found && found_bytes == bytes && memcmp(found, expected, bytes) == 0;
    free(found);
    return same;
}

int tp_scratch_count_temp_files(const char *dir)
{
    DIR *handle = opendir(dir);
    int count = 0;
    for (struct dirent *entry; handle && (entry = readdir(handle));) count += strstr(entry->d_name, ".tmp.") != NULL;
    if (handle) closedir(handle);
    return count;
}

static struct rlimit original_file_size;
static int original_saved;

void tp_scratch_limit_file_size(int64_t bytes)
{
    if (!original_saved) {
        getrlimit(RLIMIT_FSIZE, &original_file_size);
        signal(SIGXFSZ, SIG_IGN); /* the write then fails with EFBIG instead of killing the test */
        original_saved = 1;
    }
    struct rlimit limit = original_file_size;
    limit.rlim_cur = (rlim_t)bytes;
    setrlimit(RLIMIT_FSIZE, &limit);
}

void tp_scratch_restore_file_size(void)
{
    if (original_saved) setrlimit(RLIMIT_FSIZE, &original_file_size);
}
