/* The CUDA backend as a library loaded on demand (lib/cuda_dl.c).
 *
 * kernels/cuda/ is built into libgr-cuda.so, which alone links libcudart,
 * cuBLAS(Lt) and NCCL; the tools link none of them, so a CPU run never pays
 * for loading them (~110 ms of dynamic linking at every start) and a binary
 * built with nvcc still runs on a machine without the CUDA libraries. The
 * library is opened the first time --device cuda asks for it, from, in order:
 *   $GR_CUDA_LIB (a path; nothing else is tried when it is set),
 *   DIR/../build/libgr-cuda.so and DIR/../libgr-cuda.so (a source tree's bin/
 *   and build/ programs), DIR/../lib/guardreasoner-c/libgr-cuda.so (make install),
 * with DIR the folder of the running program. */
#ifndef GR_CUDA_DL_H
#define GR_CUDA_DL_H

#include "gr_common.h"

/* The address of `name` in libgr-cuda.so, loading it on first use (thread-safe);
 * NULL with err naming every path tried and why it failed. */
void *gr_cuda_symbol(const char *name, gr_err *err);
/* The path gr_cuda_symbol would load (or has loaded), without loading it; NULL
 * when none of the candidates exists. */
const char *gr_cuda_lib_path(void);

#endif
