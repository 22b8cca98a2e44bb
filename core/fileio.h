/* Crash-safe file writing and small file helpers shared by every writer in tp. */
#ifndef TP_FILEIO_H
#define TP_FILEIO_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* An output file written under a temporary name in the same directory
 * ("<path>.tmp.<pid>") and renamed over path only by tp_atomic_commit, after
 * fflush + fsync of the file and followed by fsync of the directory.
 * tp_atomic_abort removes the temporary file.  Nothing ever appears under path
 * half-written. */
typedef struct tp_atomic_file {
    FILE *fp;
    char *path;
    char *tmp_path;
} tp_atomic_file;

int tp_atomic_open(tp_atomic_file *file, const char *path);
int tp_atomic_commit(tp_atomic_file *file); /* reports write errors (e.g. disk full) naming path */
void tp_atomic_abort(tp_atomic_file *file);
/* Whole buffer -> path, atomically. */
int tp_write_file_atomic(const char *path, const void *data, size_t bytes);
/* Reads a whole file (NUL-terminated); NULL + "path: <strerror>" on failure. */
char *tp_read_file(const char *path, size_t *bytes_out);
/* The next line of a text read by tp_read_file, split in place (its '\n' and a '\r' before it become
 * '\0'), advancing *cursor and counting *line_number; NULL after the last line. */
char *tp_next_line(char **cursor, int64_t *line_number);
/* fsync of the directory that holds path (makes a rename durable). */
int tp_fsync_parent_dir(const char *path);
/* rm -r: a file or a directory with everything in it (-1 when something could not be removed). */
int tp_remove_tree(const char *path);
/* mkdir -p; error names the path. */
int tp_mkdirs(const char *path);
/* Pushes the lines appended to a log (metrics JSONL) to its file: -1 + "path: cannot write:
 * <strerror>" when a write failed (disk full, file-size limit), for the caller to stop rather than
 * lose records without a word. */
int tp_log_flush(FILE *fp, const char *path);

#endif
