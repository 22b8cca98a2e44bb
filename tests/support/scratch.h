/* A scratch directory for tests that write files: a fresh mkdtemp directory per program, removed
 * with everything in it when the program exits, plus the small file helpers those tests share.
 * Setup failures (no directory, a file that cannot be written) print why and exit(1): a test
 * that cannot set up has nothing to check. */
#ifndef TP_TEST_SCRATCH_H
#define TP_TEST_SCRATCH_H

#include <stddef.h>
#include <stdint.h>

/* Creates $TMPDIR/tp_<tag>_XXXXXX (/tmp without TMPDIR), registers its removal at exit and
 * returns its path.  Call once, before any other tp_scratch_ function. */
const char *tp_scratch_init(const char *tag);
const char *tp_scratch_dir(void);
/* "<scratch>/<name>" in one of 8 rotating static buffers: valid for the next 7 calls. */
const char *tp_scratch_path(const char *name);
/* Writes bytes to <scratch>/<name> (plain fopen, not atomic) and returns tp_scratch_path(name). */
const char *tp_scratch_write(const char *name, const void *data, size_t bytes);
/* The same for a NUL-terminated text (without its NUL). */
const char *tp_scratch_write_text(const char *name, const char *text);
/* The file at path holds exactly these bytes. */
int tp_scratch_file_equals(const char *path, const void *expected, size_t bytes);
/* Number of entries in dir whose name holds ".tmp." (temporaries a tp writer left behind). */
int tp_scratch_count_temp_files(const char *dir);
/* Lowers the soft RLIMIT_FSIZE so that writes past `bytes` fail with EFBIG, a stand-in for a full
 * disk that needs no special filesystem; restore puts back the limit the program started with. */
void tp_scratch_limit_file_size(int64_t bytes);
void tp_scratch_restore_file_size(void);

#endif
