#include "fileio.h"

#include "error.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void release_names(tp_atomic_file *file)
{
    free(file->path);
    free(file->tmp_path);
    file->path = NULL;
    file->tmp_path = NULL;
    file->fp = NULL;
}

int tp_atomic_open(tp_atomic_file *file, const char *path)
{
    size_t tmp_size = strlen(path) + 32;
    file->tmp_path = tp_xmalloc(tmp_size);
    snprintf(file->tmp_path, tmp_size, "%s.tmp.%ld", path, (long)getpid());
    file->path = tp_xstrdup(path);
    file->fp = fopen(file->tmp_path, "wb");
    if (!file->fp) {
        int err = errno;
        release_names(file);
        return tp_fail("%s: %s", path, strerror(err));
    }
    return 0;
}

/* Flushes, syncs and closes the temporary file; returns 0 or the first errno seen. */
static int flush_and_close(FILE *fp)
{
    /* A stream keeps no errno for a write that failed earlier (glibc drops the buffer, so fflush
     * then succeeds).  Writers call commit right after their last write to the stream, so errno
     * still holds that write's reason (ENOSPC, EFBIG, ...). */
    int earlier = errno;
    int err = 0;
    if (ferror(fp)) err = earlier ? earlier : EIO;
    else if (fflush(fp) != 0) err = errno;
    if (!err && fsync(fileno(fp)) != 0) err = errno;
    if (fclose(fp) != 0 && !err) err = errno;
    return err;
}

int tp_atomic_commit(tp_atomic_file *file)
{
    int err = flush_and_close(file->fp);
    file->fp = NULL;
    if (!err && rename(file->tmp_path, file->path) != 0) err = errno;
    if (err) {
        unlink(file->tmp_path);
        tp_fail("%s: %s", file->path, strerror(err));
        release_names(file);
        return -1;
    }
    int status = tp_fsync_parent_dir(file->path);
    release_names(file);
    return status;
}

void tp_atomic_abort(tp_atomic_file *file)
{
    if (file->fp) fclose(file->fp);
    if (file->tmp_path) unlink(file->tmp_path);
    release_names(file);
}

int tp_write_file_atomic(const char *path, const void *data, size_t bytes)
{
    tp_atomic_file file;
    if (tp_atomic_open(&file, path) != 0) return -1;
    if (bytes) fwrite(data, 1, bytes, file.fp); /* a short write sets the error flag that commit reports */
    return tp_atomic_commit(&file);
}

char *tp_read_file(const char *path, size_t *bytes_out)
{
    FILE *fp = fopen(path, "rb");
    if (!fp) {
        tp_fail("%s: %s", path, strerror(errno));
        return NULL;
    }
    size_t capacity = 1 << 16, used = 0;
    char *buffer = tp_xmalloc(capacity);
    /* Reads until EOF rather than trusting the size from stat: works for pipes and /proc too. */
    for (;;) {
        used += fread(buffer + used, 1, capacity - used - 1, fp);
        if (used < capacity - 1) break;
        capacity *= 2;
        buffer = tp_xrealloc(buffer, capacity);
    }
    int err = ferror(fp) ? (errno ? errno : EIO) : 0;
    fclose(fp);
    if (err) {
        free(buffer);
        tp_fail("%s: %s", path, strerror(err));
        return NULL;
    }
    buffer[used] = '\0';
    if (bytes_out) *bytes_out = used;
    return buffer;
}

char *tp_next_line(char **cursor, int64_t *line_number)
{
    char *start = *cursor;
    if (!*start) return NULL;
    char *newline = strchr(start, '\n');
    *cursor = newline ? newline + 1 : start + strlen(start);
    if (newline) *newline = '\0';
    size_t length = strlen(start);
    if (length && start[length - 1] == '\r') start[length - 1] = '\0';
    (*line_number)++;
    return start;
}

int tp_fsync_parent_dir(const char *path)
{
    const char *slash = strrchr(path, '/');
    char *dir;
    if (!slash)
        dir = tp_xstrdup(".");
    else {
        size_t len = slash == path ? 1 : (size_t)(slash - path);
        dir = tp_xmalloc(len + 1);
        memcpy(dir, path, len);
        dir[len] = '\0';
    }
    int fd = open(dir, O_RDONLY | O_DIRECTORY);
    int err = fd < 0 ? errno : 0;
    /* Some filesystems cannot sync a directory (EINVAL); the rename is then as durable as they allow. */
    if (fd >= 0 && fsync(fd) != 0 && errno != EINVAL) err = errno;
    if (fd >= 0) close(fd);
    int status = err ? tp_fail("%s: %s", dir, strerror(err)) : 0;
    free(dir);
    return status;
}

/* Creates one directory level; an existing directory is fine, anything else there is an error. */
static int make_one_dir(const char *dir)
{
    if (mkdir(dir, 0777) == 0) return 0;
    int err = errno;
    struct stat info;
    if (err == EEXIST && stat(dir, &info) == 0) {
        if (S_ISDIR(info.st_mode)) return 0;
        err = ENOTDIR;
    }
    return tp_fail("%s: %s", dir, strerror(err));
}

int tp_mkdirs(const char *path)
{
    if (!path[0]) return tp_fail("tp_mkdirs: empty path");
    char *prefix = tp_xstrdup(path);
    int status = 0;
    for (char *cursor = prefix + 1; status == 0 && *cursor; cursor++) {
        if (*cursor != '/') continue;
        *cursor = '\0';
        status = make_one_dir(prefix);
        *cursor = '/';
    }
    if (status == 0) status = make_one_dir(prefix);
    free(prefix);
    return status;
}

int tp_remove_tree(const char *path)
{
    DIR *dir = opendir(path);
    if (!dir) return unlink(path) == 0 || errno == ENOENT ? 0 : -1;
    struct dirent *entry;
    char child[4096];
    while ((entry = readdir(dir))) {
        if (!strcmp(entry->d_name, ".") || !strcmp(entry->d_name, "..")) continue;
        snprintf(child, sizeof child, "%s/%s", path, entry->d_name);
        tp_remove_tree(child);
    }
    closedir(dir);
    return rmdir(path);
}

int tp_log_flush(FILE *fp, const char *path)
{
    if (fflush(fp) == 0 && !ferror(fp)) return 0;
    int error = errno ? errno : EIO;
    clearerr(fp);
    return tp_fail("%s: cannot write: %s", path, strerror(error));
}
