/* core/fileio: atomic writes (nothing half-written, no temporary left behind on success or
 * failure), whole-file reads and mkdir -p, each with its error messages. */
#define _GNU_SOURCE
#include "core/error.h"
#include "core/fileio.h"
#include "support/check.h"

#include <dirent.h>
#include <ftw.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

static char scratch[256]; /* a fresh temporary directory for this run */

static const char *in_scratch(const char *name)
{
    static char path[4][512];
    static int next;
    char *out = path[next++ % 4];
    snprintf(out, sizeof path[0], "%s/%s", scratch, name);
    return out;
}

static int remove_entry(const char *path, const struct stat *info, int flag, struct FTW *ftw) { return remove(path); }

static void remove_scratch(void) { nftw(scratch, remove_entry, 16, FTW_DEPTH | FTW_PHYS); }

/* Number of entries in dir whose name holds ".tmp." (leftover temporary files). */
static int count_temp_files(const char *dir)
{
    DIR *handle = opendir(dir);
    int count = 0;
    for (struct dirent *entry; handle && (entry = readdir(handle));) count += strstr(entry->d_name, ".tmp.") != NULL;
    if (handle) closedir(handle);
    return count;
}

static int file_equals(const char *path, const char *expected)
{
    size_t bytes;
    char *content = tp_read_file(path, &bytes);
    int same = content && bytes == strlen(expected) && memcmp(content, expected, bytes) == 0;
    free(content);
    return same;
}

static int error_is(const char *expected) { return strcmp(tp_last_error(), expected) == 0; }
static int error_has(const char *fragment) { return strstr(tp_last_error(), fragment) != NULL; }

/* Lowers the soft file-size limit so that writes past `bytes` fail with EFBIG (a stand-in for a
 * full disk that needs no special filesystem); a negative value restores the original limit. */
static void limit_file_size(long long bytes)
{
    static struct rlimit original;
    static int saved;
    if (!saved) {
        getrlimit(RLIMIT_FSIZE, &original);
        signal(SIGXFSZ, SIG_IGN); /* the write then fails with EFBIG instead of killing us */
        saved = 1;
    }
    struct rlimit limit = original;
    if (bytes >= 0) limit.rlim_cur = (rlim_t)bytes;
    setrlimit(RLIMIT_FSIZE, &limit);
}

static void test_write_and_read_back(void)
{
    const char *path = in_scratch("hello.txt");
    CHECK(tp_write_file_atomic(path, "hello\n", 6) == 0);
    size_t bytes = 99;
    char *content = tp_read_file(path, &bytes);
    CHECK(content && bytes == 6 && strcmp(content, "hello\n") == 0);
    free(content);
    CHECK(tp_write_file_atomic(path, "replaced", 8) == 0);
    CHECK(file_equals(path, "replaced"));
    CHECK(tp_write_file_atomic(in_scratch("empty"), "", 0) == 0);
    content = tp_read_file(in_scratch("empty"), &bytes);
    CHECK(content && bytes == 0 && content[0] == '\0');
    free(content);
    CHECK(count_temp_files(scratch) == 0);
}

static void test_read_large_file(void)
{
    size_t size = 300000; /* several times the first read buffer */
    char *data = malloc(size);
    for (size_t i = 0; i < size; i++) data[i] = (char)('a' + i % 23);
    const char *path = in_scratch("large.bin");
    CHECK(tp_write_file_atomic(path, data, size) == 0);
    size_t bytes = 0;
    char *content = tp_read_file(path, &bytes);
    CHECK(content && bytes == size && memcmp(content, data, size) == 0 && content[size] == '\0');
    free(content);
    free(data);
}

static void test_read_errors(void)
{
    char expected[600];
    const char *missing = in_scratch("missing.txt");
    CHECK(tp_read_file(missing, NULL) == NULL);
    snprintf(expected, sizeof expected, "%s: No such file or directory", missing);
    CHECK_MSG(error_is(expected), "got '%s'", tp_last_error());
    CHECK(tp_read_file(scratch, NULL) == NULL);
    snprintf(expected, sizeof expected, "%s: Is a directory", scratch);
    CHECK_MSG(error_is(expected), "got '%s'", tp_last_error());
}

static void test_abort_leaves_nothing(void)
{
    const char *path = in_scratch("aborted.txt");
    tp_atomic_file file;
    CHECK(tp_atomic_open(&file, path) == 0);
    fputs("half-written", file.fp);
    CHECK(count_temp_files(scratch) == 1);
    CHECK(strstr(file.tmp_path, ".tmp.") != NULL && strncmp(file.tmp_path, path, strlen(path)) == 0);
    tp_atomic_abort(&file);
    CHECK(access(path, F_OK) != 0);
    CHECK(count_temp_files(scratch) == 0);

    const char *existing = in_scratch("existing.txt");
    CHECK(tp_write_file_atomic(existing, "original", 8) == 0);
    CHECK(tp_atomic_open(&file, existing) == 0);
    fputs("new content", file.fp);
    CHECK(file_equals(existing, "original")); /* nothing visible before commit */
    tp_atomic_abort(&file);
    CHECK(file_equals(existing, "original"));
    CHECK(count_temp_files(scratch) == 0);
}

static void test_open_failure(void)
{
    const char *path = in_scratch("no/such/dir/out.txt");
    char expected[600];
    CHECK(tp_write_file_atomic(path, "x", 1) == -1);
    snprintf(expected, sizeof expected, "%s: No such file or directory", path);
    CHECK_MSG(error_is(expected), "got '%s'", tp_last_error());
}

static void test_write_failure_keeps_old_file(void)
{
    const char *path = in_scratch("big.txt");
    CHECK(tp_write_file_atomic(path, "original", 8) == 0);
    size_t size = 1 << 20;
    char *data = calloc(1, size);
    char expected[600];
    limit_file_size(4096);
    int status = tp_write_file_atomic(path, data, size);
    limit_file_size(-1);
    CHECK(status == -1);
    snprintf(expected, sizeof expected, "%s: File too large", path);
    CHECK_MSG(error_is(expected), "got '%s'", tp_last_error());
    CHECK(file_equals(path, "original"));
    CHECK(count_temp_files(scratch) == 0);
    free(data);
}

static void test_rename_failure(void)
{
    const char *dir = in_scratch("a_directory");
    CHECK(mkdir(dir, 0777) == 0);
    char expected[600];
    CHECK(tp_write_file_atomic(dir, "x", 1) == -1); /* rename(file, existing directory) fails */
    snprintf(expected, sizeof expected, "%s: Is a directory", dir);
    CHECK_MSG(error_is(expected), "got '%s'", tp_last_error());
    struct stat info;
    CHECK(stat(dir, &info) == 0 && S_ISDIR(info.st_mode));
    CHECK(count_temp_files(scratch) == 0);
}

static void test_mkdirs(void)
{
    const char *deep = in_scratch("m/n/o/p");
    struct stat info;
    CHECK(tp_mkdirs(deep) == 0);
    CHECK(stat(deep, &info) == 0 && S_ISDIR(info.st_mode));
    CHECK(tp_mkdirs(deep) == 0); /* already there */
    CHECK(tp_mkdirs(in_scratch("m/n//q/")) == 0);
    CHECK(stat(in_scratch("m/n/q"), &info) == 0 && S_ISDIR(info.st_mode));

    const char *file = in_scratch("m/plain");
    CHECK(tp_write_file_atomic(file, "x", 1) == 0);
    char expected[600];
    CHECK(tp_mkdirs(in_scratch("m/plain/sub")) == -1);
    snprintf(expected, sizeof expected, "%s: Not a directory", file);
    CHECK_MSG(error_is(expected), "got '%s'", tp_last_error());
    CHECK(tp_mkdirs(file) == -1);
    CHECK_MSG(error_is(expected), "got '%s'", tp_last_error());
    CHECK(tp_mkdirs("") == -1 && error_has("empty path"));
}

static void test_fsync_parent_dir(void)
{
    CHECK(tp_fsync_parent_dir(in_scratch("hello.txt")) == 0);
    CHECK(tp_fsync_parent_dir("relative-name-in-cwd") == 0);
    CHECK(tp_fsync_parent_dir("/top-level-name") == 0);
    const char *missing = in_scratch("gone/x");
    char expected[600];
    CHECK(tp_fsync_parent_dir(missing) == -1);
    snprintf(expected, sizeof expected, "%s/gone: No such file or directory", scratch);
    CHECK_MSG(error_is(expected), "got '%s'", tp_last_error());
}

int main(void)
{
    const char *tmp = getenv("TMPDIR");
    snprintf(scratch, sizeof scratch, "%s/tp_fileio_XXXXXX", tmp && tmp[0] ? tmp : "/tmp");
    if (!mkdtemp(scratch)) {
        perror("mkdtemp");
        return 1;
    }
    test_write_and_read_back();
    test_read_large_file();
    test_read_errors();
    test_abort_leaves_nothing();
    test_open_failure();
    test_write_failure_keeps_old_file();
    test_rename_failure();
    test_mkdirs();
    test_fsync_parent_dir();
    remove_scratch();
    return tp_test_finish("test_fileio");
}
