/* core/fileio: atomic writes (nothing half-written, no temporary left behind on success or
 * failure), whole-file reads and mkdir -p, each with its error messages. */
#include "core/error.h"
#include "core/fileio.h"
#include "support/check.h"
#include "support/scratch.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int error_is(const char *expected) { return strcmp(tp_last_error(), expected) == 0; }
static int error_has(const char *fragment) { return strstr(tp_last_error(), fragment) != NULL; }

static void test_write_and_read_back(void)
{
    const char *path = tp_scratch_path("hello.txt");
    CHECK(tp_write_file_atomic(path, "hello\n", 6) == 0);
    size_t bytes = 99;
    char *content = tp_read_file(path, &bytes);
    CHECK(content && bytes == 6 && strcmp(content, "hello\n") == 0);
    free(content);
    CHECK(tp_write_file_atomic(path, "replaced", 8) == 0);
    CHECK(tp_scratch_file_equals(path, "replaced", 8));
    CHECK(tp_write_file_atomic(tp_scratch_path("empty"), "", 0) == 0);
    content = tp_read_file(tp_scratch_path("empty"), &bytes);
    CHECK(content && bytes == 0 && content[0] == '\0');
    free(content);
    CHECK(tp_scratch_count_temp_files(tp_scratch_dir()) == 0);
}

static void test_read_large_file(void)
{
    size_t size = 300000; /* several times the first read buffer */
    char *data = malloc(size);
    for (size_t i = 0; i < size; i++) data[i] = (char)('a' + i % 23);
    const char *path = tp_scratch_path("large.bin");
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
    const char *missing = tp_scratch_path("missing.txt");
    CHECK(tp_read_file(missing, NULL) == NULL);
    snprintf(expected, sizeof expected, "%s: No such file or directory", missing);
    CHECK_MSG(error_is(expected), "got '%s'", tp_last_error());
    CHECK(tp_read_file(tp_scratch_dir(), NULL) == NULL);
    snprintf(expected, sizeof expected, "%s: Is a directory", tp_scratch_dir());
    CHECK_MSG(error_is(expected), "got '%s'", tp_last_error());
}

static void test_abort_leaves_nothing(void)
{
    const char *path = tp_scratch_path("aborted.txt");
    tp_atomic_file file;
    CHECK(tp_atomic_open(&file, path) == 0);
    fputs("half-written", file.fp);
    CHECK(tp_scratch_count_temp_files(tp_scratch_dir()) == 1);
    CHECK(strstr(file.tmp_path, ".tmp.") != NULL && strncmp(file.tmp_path, path, strlen(path)) == 0);
    tp_atomic_abort(&file);
    CHECK(access(path, F_OK) != 0);
    CHECK(tp_scratch_count_temp_files(tp_scratch_dir()) == 0);

    const char *existing = tp_scratch_path("existing.txt");
    CHECK(tp_write_file_atomic(existing, "original", 8) == 0);
    CHECK(tp_atomic_open(&file, existing) == 0);
    fputs("new content", file.fp);
    CHECK(tp_scratch_file_equals(existing, "original", 8)); /* nothing visible before commit */
    tp_atomic_abort(&file);
    CHECK(tp_scratch_file_equals(existing, "original", 8));
    CHECK(tp_scratch_count_temp_files(tp_scratch_dir()) == 0);
}

static void test_open_failure(void)
{
    const char *path = tp_scratch_path("no/such/dir/out.txt");
    char expected[600];
    CHECK(tp_write_file_atomic(path, "x", 1) == -1);
    snprintf(expected, sizeof expected, "%s: No such file or directory", path);
    CHECK_MSG(error_is(expected), "got '%s'", tp_last_error());
}

static void test_write_failure_keeps_old_file(void)
{
    const char *path = tp_scratch_path("big.txt");
    CHECK(tp_write_file_atomic(path, "original", 8) == 0);
    size_t size = 1 << 20;
    char *data = calloc(1, size);
    char expected[600];
    tp_scratch_limit_file_size(4096);
    int status = tp_write_file_atomic(path, data, size);
    tp_scratch_restore_file_size();
    CHECK(status == -1);
    snprintf(expected, sizeof expected, "%s: File too large", path);
    CHECK_MSG(error_is(expected), "got '%s'", tp_last_error());
    CHECK(tp_scratch_file_equals(path, "original", 8));
    CHECK(tp_scratch_count_temp_files(tp_scratch_dir()) == 0);
    free(data);
}

static void test_rename_failure(void)
{
    const char *dir = tp_scratch_path("a_directory");
    CHECK(mkdir(dir, 0777) == 0);
    char expected[600];
    CHECK(tp_write_file_atomic(dir, "x", 1) == -1); /* rename(file, existing directory) fails */
    snprintf(expected, sizeof expected, "%s: Is a directory", dir);
    CHECK_MSG(error_is(expected), "got '%s'", tp_last_error());
    struct stat info;
    CHECK(stat(dir, &info) == 0 && S_ISDIR(info.st_mode));
    CHECK(tp_scratch_count_temp_files(tp_scratch_dir()) == 0);
}

static void test_mkdirs(void)
{
    const char *deep = tp_scratch_path("m/n/o/p");
    struct stat info;
    CHECK(tp_mkdirs(deep) == 0);
    CHECK(stat(deep, &info) == 0 && S_ISDIR(info.st_mode));
    CHECK(tp_mkdirs(deep) == 0); /* already there */
    CHECK(tp_mkdirs(tp_scratch_path("m/n//q/")) == 0);
    CHECK(stat(tp_scratch_path("m/n/q"), &info) == 0 && S_ISDIR(info.st_mode));

    const char *file = tp_scratch_path("m/plain");
    CHECK(tp_write_file_atomic(file, "x", 1) == 0);
    char expected[600];
    CHECK(tp_mkdirs(tp_scratch_path("m/plain/sub")) == -1);
    snprintf(expected, sizeof expected, "%s: Not a directory", file);
    CHECK_MSG(error_is(expected), "got '%s'", tp_last_error());
    CHECK(tp_mkdirs(file) == -1);
    CHECK_MSG(error_is(expected), "got '%s'", tp_last_error());
    CHECK(tp_mkdirs("") == -1 && error_has("empty path"));
}

static void test_fsync_parent_dir(void)
{
    CHECK(tp_fsync_parent_dir(tp_scratch_path("hello.txt")) == 0);
    CHECK(tp_fsync_parent_dir("relative-name-in-cwd") == 0);
    CHECK(tp_fsync_parent_dir("/top-level-name") == 0);
    const char *missing = tp_scratch_path("gone/x");
    char expected[600];
    CHECK(tp_fsync_parent_dir(missing) == -1);
    snprintf(expected, sizeof expected, "%s/gone: No such file or directory", tp_scratch_dir());
    CHECK_MSG(error_is(expected), "got '%s'", tp_last_error());
}

int main(void)
{
    tp_scratch_init("fileio");
    test_write_and_read_back();
    test_read_large_file();
    test_read_errors();
    test_abort_leaves_nothing();
    test_open_failure();
    test_write_failure_keeps_old_file();
    test_rename_failure();
    test_mkdirs();
    test_fsync_parent_dir();
    return tp_test_finish("test_fileio");
}
