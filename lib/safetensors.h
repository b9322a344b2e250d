/* safetensors files: u64 header length N, N bytes of JSON
 *   {"NAME": {"dtype": "BF16", "shape": [..], "data_offsets": [begin, end]}, ...,
 *    "__metadata__": {...}}
 * then the data; offsets are relative to the end of the header.
 *
 * st_open maps a file read-only and checks every entry: a known dtype, a shape of
 * non-negative integers whose byte size matches end-begin (overflow-checked),
 * offsets inside the file, and no two tensors overlapping. */
#ifndef GR_SAFETENSORS_H
#define GR_SAFETENSORS_H
#include <stddef.h>
#include <stdint.h>
#include "gr_common.h"

enum st_dtype { ST_F64, ST_F32, ST_F16, ST_BF16, ST_I64, ST_I32, ST_I16, ST_I8, ST_U8, ST_BOOL };

#define ST_MAX_DIMS 8

typedef struct st_tensor {
    char *name;
    int dtype;                /* enum st_dtype */
    int n_dims;
    int64_t shape[ST_MAX_DIMS];
    uint64_t nbytes;
    const void *data;         /* in the mapping; may be unaligned */
} st_tensor;

typedef struct st_file {
    char *path;
    st_tensor *tensors;
    int n_tensors;
    const uint8_t *base;
    size_t size;
    void *map_;
} st_file;

st_file *st_open(const char *path, gr_err *err);
st_file *st_open_mem(const void *data, size_t size, const char *name, gr_err *err);
void st_close(st_file *f);
const st_tensor *st_find(const st_file *f, const char *name);
const char *st_dtype_name(int dtype);
int st_dtype_size(int dtype);

/* A model's tensors: one file, or the shards listed by model.safetensors.index.json. */
typedef struct st_set_ {
    st_file **files;
    int n_files;
} st_set;

/* Opens DIR/model.safetensors.index.json's shards, else DIR/model.safetensors. */
st_set *st_set_open(const char *dir, gr_err *err);
void st_set_close(st_set *s);
const st_tensor *st_set_find(const st_set *s, const char *name);
#endif
