/* Read-only memory maps of whole files (model weights, GGUF, safetensors). */
#ifndef GR_MMAP_H
#define GR_MMAP_H
#include <stddef.h>
#include "gr_common.h"

/* Maps the regular file at path; *size gets its size. An empty file gives ""
 * (valid, nothing to unmap). NULL with err ("PATH: why") on failure. */
void *gr_mmap_file(const char *path, size_t *size, gr_err *err);
/* Unmaps what gr_mmap_file returned (a no-op for an empty file). */
void gr_munmap_file(void *map, size_t size);
#endif
