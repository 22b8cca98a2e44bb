/* safetensors reading (mmap) and writing (temporary name, fsync, rename).
 *
 * Format: 8-byte little-endian header length N, N bytes of JSON
 *   {"name": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}, ...,
 *    "__metadata__": {"key": "value", ...}}
 * then the data; offsets are relative to the end of the header.
 * Reading validates everything before any tensor is handed out: header length
 * inside the file, JSON well formed, known dtype, shape product * dtype size
 * (64-bit, overflow-checked) == end - begin, offsets inside the data section,
 * no two tensors overlapping, no duplicate names.  Errors name the file and the
 * tensor (or byte offset). */
#ifndef TP_SAFETENSORS_H
#define TP_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#define TP_ST_MAX_DIMS 8

typedef enum tp_st_dtype {
    TP_ST_F32, TP_ST_F16, TP_ST_BF16, TP_ST_F64, TP_ST_I64, TP_ST_I32, TP_ST_I16, TP_ST_I8,
    TP_ST_U8, TP_ST_BOOL, TP_ST_U16, TP_ST_U32, TP_ST_U64,
} tp_st_dtype;

size_t tp_st_dtype_size(tp_st_dtype dtype);
const char *tp_st_dtype_name(tp_st_dtype dtype); /* "F32", ... */

typedef struct tp_st_tensor {
    const char *name;
    tp_st_dtype dtype;
    int ndim;
    int64_t shape[TP_ST_MAX_DIMS];
    int64_t numel;
    const void *data;   /* points into the mapping (not necessarily aligned) */
    int64_t nbytes;
} tp_st_tensor;

typedef struct tp_st_file tp_st_file;

tp_st_file *tp_st_open(const char *path);           /* NULL + error on any problem */
void tp_st_close(tp_st_file *file);
int64_t tp_st_count(const tp_st_file *file);
const tp_st_tensor *tp_st_at(const tp_st_file *file, int64_t index);   /* in file order */
const tp_st_tensor *tp_st_find(const tp_st_file *file, const char *name); /* NULL if absent */
const char *tp_st_metadata(const tp_st_file *file, const char *key);  /* NULL if absent */
const char *tp_st_path(const tp_st_file *file);
/* Copies a tensor that must be F32 with exactly the given shape into dst; on mismatch the
 * error names the file, the tensor, the expected and the found shape / dtype. */
int tp_st_read_f32(const tp_st_file *file, const char *name, int ndim, const int64_t *shape, float *dst);

/* Writer: collect tensors (the data must stay valid until tp_st_writer_save), then save. */
typedef struct tp_st_writer tp_st_writer;
tp_st_writer *tp_st_writer_new(void);
void tp_st_writer_add(tp_st_writer *writer, const char *name, tp_st_dtype dtype, int ndim, const int64_t *shape,
                      const void *data);
void tp_st_writer_metadata(tp_st_writer *writer, const char *key, const char *value);
/* Writes to "<path>.tmp.<pid>", fsyncs, renames to path, fsyncs the directory.  On any
 * failure the temporary file is removed and path is untouched. */
int tp_st_writer_save(tp_st_writer *writer, const char *path);
void tp_st_writer_free(tp_st_writer *writer);

#endif
