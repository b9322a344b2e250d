# guardreasoner-c — one `make` builds every tool for the CPU.
#
#   make                 build bin/gr-* (the CPU backend)
#   make test            unit tests (native, x86-64-v3, portable builds) + CLI tests;
#                        ends with "N passed, N failed"
#   make asan            unit tests under AddressSanitizer + UBSan
#   make fuzz            libFuzzer targets (clang), a short run of each
#   make bench           benchmarks (scripts/bench-*), printed as ratios
#   make install PREFIX=/usr/local
#   make NATIVE=0        no -march=native: one binary for any x86-64 (the kernels
#                        still use AVX2/AVX-512 where the CPU has them: run-time dispatch)
#   make CUDA=0          no CUDA backend even when nvcc is found (it is built, into
#                        build/libgr-cuda.so, whenever nvcc is on PATH or in
#                        /usr/local/cuda; the tools load it only for --device cuda)
#   make cuda            the CUDA backend (an error without nvcc)
#
# Files are discovered by name, so a new tool, library file or test needs no
# edit here: cmd/gr-NAME.c -> bin/gr-NAME, lib/*.c and kernels/cpu/*.c ->
# build/libgr.a, tests/unit/test_*.c -> one test binary each, tests/cli/*.sh ->
# one script each.
#
# lib/ sees only its own headers (-Ilib): it reaches the backends through
# lib/backend.h. kernels/cpu/ also sees its own (-Ikernels/cpu), and so do the
# unit tests, which test kernels directly.

VERSION := 0.1.0
PREFIX  ?= /usr/local
CC      ?= cc
OPT     ?= -O2
NATIVE  ?= 1

ifeq ($(NATIVE),1)
ARCHFLAGS := -march=native
endif

WARN     := -Wall -Wextra -Werror
CPPFLAGS := -Ilib -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE -DGR_VERSION='"$(VERSION)"' -DGR_CPU_VARIANTS
BASE_CFLAGS := -std=c11 $(OPT) $(WARN) -g -pthread $(EXTRA_CFLAGS)
CFLAGS   := $(BASE_CFLAGS) $(ARCHFLAGS)
LDLIBS   := -ljq -lonig -lzstd -lcurl -lm -lpthread -ldl
# the include path of one source: kernels/cpu/ files see their folder
src_inc = $(if $(filter kernels/cpu/%,$(1)),-Ikernels/cpu)
# Run-time ISA dispatch (kernels/cpu/README): each ISA variant file is compiled
# with its own flags, on top of any -march (none in the portable build), and
# kernels/cpu/isa.c picks the variants the CPU runs. So every build has every
# variant (-DGR_CPU_VARIANTS says so to the sources), and the NATIVE=0 binary
# runs on any x86-64 and uses AVX2 or AVX-512 where the CPU has them.
AVX2_FLAGS   := -mavx2 -mfma -mf16c
AVX512_FLAGS := $(AVX2_FLAGS) -mavx512f -mavx512bw -mavx512vl -mavx512dq -mavx512vnni -mavx512bf16
AMX_FLAGS    := $(AVX512_FLAGS) -mamx-tile -mamx-bf16
isa_flags = $(if $(filter %_avx2.c,$(1)),$(AVX2_FLAGS))$(if $(filter %_avx512.c,$(1)),$(AVX512_FLAGS))$(if $(filter %_amx.c,$(1)),$(AMX_FLAGS))
TEST_INC := -Ikernels/cpu -Itests/unit

LIB_SRC  := $(sort $(wildcard lib/*.c kernels/cpu/*.c))
CMD_SRC  := $(sort $(wildcard cmd/gr-*.c))
UNIT_SRC := $(sort $(wildcard tests/unit/test_*.c))
FUZZ_SRC := $(sort $(wildcard tests/fuzz/fuzz_*.c))

LIB_OBJ  := $(LIB_SRC:%.c=build/%.o)

# --- CUDA (kernels/cuda/*.cu -> build/libgr-cuda.so when nvcc is found) ------
# Device code: every nvcc warning an error, and the host compiler's -Wall -Wextra
# -Werror; sm_90 (H100/H200) machine code. lib/ sees no CUDA header: only
# backend_open.c, train_ops_open.c and dp.c learn, by GR_HAVE_CUDA/GR_HAVE_NCCL,
# that the CUDA backend exists. It is a shared library that alone links the
# CUDA libraries, opened by lib/cuda_dl.c on --device cuda, so the tools need
# none of them to start (and CPU runs do not pay ~110 ms to load them). The
# tools export to it the few lib/ functions it calls (kernels/cuda/host.sym).
NVCC ?= $(or $(shell command -v nvcc 2>/dev/null),$(wildcard /usr/local/cuda/bin/nvcc))
CUDA ?= $(if $(NVCC),1,0)
CUDA_ARCH ?= -gencode=arch=compute_90,code=sm_90
CU_SRC := $(sort $(wildcard kernels/cuda/*.cu))
ifeq ($(CUDA),1)
ifeq ($(NVCC),)
$(error CUDA=1 but no nvcc found: put it on PATH or set NVCC=)
endif
CUDA_HOME ?= $(patsubst %/bin/nvcc,%,$(NVCC))
NVCCFLAGS := -std=c++17 -O2 -g $(CUDA_ARCH) -Werror all-warnings -Xcompiler -Wall,-Wextra,-Werror \
	-Ilib -Ikernels/cuda -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE -Xcompiler -fPIC
CU_OBJ := $(CU_SRC:%.cu=build/%.o)
CUDA_LIB := build/libgr-cuda.so
CUDA_LDLIBS := -L$(CUDA_HOME)/lib64 -Xlinker -rpath,$(CUDA_HOME)/lib64 -lcublasLt -lcublas -lcudart
LDLIBS += -Wl,--dynamic-list=$(CURDIR)/kernels/cuda/host.sym
# ... and each of them linked in even where the program itself never calls it
# (a test that uses no model code would otherwise lack gr_tensor_row_f32, and
# the library would not load: tests/gpu/test_ops, test_train_ops)
HOST_SYMS := $(shell sed -n 's/^ *\([A-Za-z_][A-Za-z_0-9]*\);.*/\1/p' kernels/cuda/host.sym)
LDLIBS += $(foreach s,$(HOST_SYMS),-Wl,-u,$(s))
build/lib/backend_open.o build/lib/train_ops_open.o: CPPFLAGS += -DGR_HAVE_CUDA
# NCCL (data parallelism on GPUs, lib/dp.h): kernels/cuda/dp_nccl.cu when nccl.h is found
NCCL ?= $(if $(wildcard $(CUDA_HOME)/include/nccl.h /usr/include/nccl.h),1,0)
ifeq ($(NCCL),1)
build/lib/dp.o: CPPFLAGS += -DGR_HAVE_NCCL
NVCCFLAGS += -DGR_HAVE_NCCL
CUDA_LDLIBS += -lnccl
endif
ifeq ($(MAKELEVEL),0)
$(info CUDA backend: on ($(NVCC), $(CUDA_ARCH); CUDA=0 turns it off))
endif
else
CU_OBJ :=
CUDA_LIB :=
ifeq ($(MAKELEVEL),0)
$(info CUDA backend: off ($(if $(NVCC),CUDA=0,no nvcc found)); the CPU backend only)
endif
endif
BINS     := $(CMD_SRC:cmd/%.c=bin/%)
UNITS    := $(UNIT_SRC:tests/unit/%.c=build/tests/%)
MANS     := $(sort $(wildcard man/*.1 man/*.5 man/*.7))

ASAN_FLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
ASAN_LIB_OBJ := $(LIB_SRC:%.c=build-asan/%.o)
ASAN_UNITS   := $(UNIT_SRC:tests/unit/%.c=build-asan/tests/%)

.PHONY: print-ldlibs mpi all test test-native unit cli asan fuzz bench install clean deps test-integration cuda test-gpu gpu-tests
.SECONDARY:

all: $(BINS) $(CUDA_LIB)

deps:
	scripts/setup

build/libgr.a: $(LIB_OBJ)
	@mkdir -p $(@D)
	rm -f $@
	rm -f $@ && $(AR) rcs $@ $^

build/kernels/cuda/%.o: kernels/cuda/%.cu
	@mkdir -p $(@D)
	$(NVCC) $(NVCCFLAGS) -MMD -MP -c $< -o $@

# -z defs is left out on purpose: the library's few calls into lib/ resolve
# against the program that loads it (kernels/cuda/host.sym)
build/libgr-cuda.so: $(CU_OBJ)
	$(NVCC) -shared $(CUDA_ARCH) -cudart shared $^ -o $@ $(CUDA_LDLIBS)

# backend_open.o is rebuilt when CUDA changes between 0 and 1
# (build/cuda.flag holds the last value; rewritten only when it changes)
$(shell mkdir -p build; [ "$$(cat build/cuda.flag 2>/dev/null)" = "$(CUDA)" ] || echo $(CUDA) > build/cuda.flag)
build/lib/backend_open.o build/lib/train_ops_open.o build/lib/dp.o: build/cuda.flag

cuda:
	@if [ "$(CUDA)" != 1 ]; then echo "make cuda: no nvcc (or CUDA=0)"; exit 1; fi
	@$(MAKE) --no-print-directory all

# the GPU suite and benchmarks (tests/gpu/run.sh: on a machine with a GPU); its
# C programs are built with every CUDA build, so that CI compiles them
GPU_SRC  := $(sort $(wildcard tests/gpu/*.c))
GPU_BINS := $(GPU_SRC:tests/gpu/%.c=build/gpu/%)
build/gpu/%: tests/gpu/%.c build/libgr.a
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(CFLAGS) -MMD -MP $< build/libgr.a -o $@ $(LDLIBS)
gpu-tests: $(GPU_BINS)
ifeq ($(CUDA),1)
all: $(GPU_BINS)
endif
test-gpu:
	tests/gpu/run.sh

build/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(call src_inc,$<) $(CFLAGS) $(call isa_flags,$<) -MMD -MP -c $< -o $@

bin/%: build/cmd/%.o build/libgr.a
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $^ -o $@ $(LDLIBS)

build/tests/%: tests/unit/%.c tests/unit/test.h build/libgr.a
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(TEST_INC) $(CFLAGS) -MMD -MP $< build/libgr.a -o $@ $(LDLIBS)

# `make test` runs the unit tests three times: built for this CPU (-march=native),
# for x86-64-v3 (AVX2/FMA, no AVX-512 or VNNI) and portable (no -march); in each,
# the kernel tests run every ISA variant this CPU has (GR_CPU_ISA levels) against
# the scalar one. A compiler bug or a kernel that shows on one target only (GCC 12
# turning a signed int8 dot loop into vpdpbusd under -march=native on VNNI
# CPUs) fails on any machine, and the portable paths stay tested.
MATRIX := v3 portable
ARCH_v3 := -march=x86-64-v3
ARCH_portable :=
define matrix_rules
build-$(1)/%.o: %.c
	@mkdir -p $$(@D)
	$$(CC) $$(CPPFLAGS) $$(call src_inc,$$<) $$(BASE_CFLAGS) $$(ARCH_$(1)) $$(call isa_flags,$$<) -MMD -MP -c $$< -o $$@
build-$(1)/libgr.a: $$(LIB_SRC:%.c=build-$(1)/%.o)
	@mkdir -p $$(@D)
	rm -f $$@ && $$(AR) rcs $$@ $$^
build-$(1)/tests/%: tests/unit/%.c tests/unit/test.h build-$(1)/libgr.a
	@mkdir -p $$(@D)
	$$(CC) $$(CPPFLAGS) $$(TEST_INC) $$(BASE_CFLAGS) $$(ARCH_$(1)) -MMD -MP $$< build-$(1)/libgr.a -o $$@ $$(LDLIBS)
-include $$(LIB_SRC:%.c=build-$(1)/%.d)
endef
$(foreach v,$(MATRIX),$(eval $(call matrix_rules,$(v))))
MATRIX_UNITS := $(foreach v,$(MATRIX),$(UNIT_SRC:tests/unit/%.c=build-$(v)/tests/%))

test: all $(UNITS) $(MATRIX_UNITS)
	@GR_TEST_BUILD="native ($(or $(ARCHFLAGS),no -march)), x86-64-v3, portable" \
		tests/run.sh $(UNITS) $(MATRIX_UNITS) -- $(sort $(wildcard tests/cli/*.sh))

# the native build's tests only (quicker while working)
test-native: all $(UNITS)
	@GR_TEST_BUILD="native ($(or $(ARCHFLAGS),no -march))" tests/run.sh $(UNITS) -- $(sort $(wildcard tests/cli/*.sh))

# slow tests against real servers (tests/integration/*.sh), not part of `make test`
test-integration: all
	@tests/run.sh -- $(sort $(wildcard tests/integration/*.sh))

# --- sanitizers -------------------------------------------------------------
build-asan/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(call src_inc,$<) $(CFLAGS) $(call isa_flags,$<) -O1 $(ASAN_FLAGS) -MMD -MP -c $< -o $@

build-asan/libgr.a: $(ASAN_LIB_OBJ)
	@mkdir -p $(@D)
	rm -f $@ && $(AR) rcs $@ $^

build-asan/tests/%: tests/unit/%.c tests/unit/test.h build-asan/libgr.a
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(TEST_INC) $(CFLAGS) -O1 $(ASAN_FLAGS) $< build-asan/libgr.a -o $@ $(LDLIBS)

asan: $(ASAN_UNITS)
	@ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1 \
		tests/run.sh $(ASAN_UNITS) --

# --- fuzzing (clang + libFuzzer) --------------------------------------------
FUZZ_CC ?= clang
build-fuzz/%: tests/fuzz/%.c $(LIB_SRC) $(wildcard lib/*.h kernels/cpu/*.h)
	@mkdir -p $(@D)
	$(FUZZ_CC) $(filter-out -DGR_CPU_VARIANTS,$(CPPFLAGS)) -Ikernels/cpu -std=c11 -g -O1 -fsanitize=fuzzer,address,undefined $< $(LIB_SRC) -o $@ $(LDLIBS)

fuzz: $(FUZZ_SRC:tests/fuzz/%.c=build-fuzz/%)
	@for f in $^; do echo "fuzz: $$f"; mkdir -p build-fuzz/corpus/$$(basename $$f); \
		ASAN_OPTIONS=fast_unwind_on_malloc=0 LSAN_OPTIONS=suppressions=tests/fuzz/lsan.supp \
		$$f -max_total_time=$${FUZZ_SECONDS:-20} -artifact_prefix=build-fuzz/ \
		build-fuzz/corpus/$$(basename $$f) tests/fuzz/corpus/$$(basename $$f) || exit 1; done

# the link flags of programs built against build/libgr.a outside make (the
# benchmarks): CUDA libraries too when the CUDA backend is in it
print-ldlibs:
	@echo '$(LDLIBS)'

# Data-parallel trainers over MPI (lib/dp.h): cmd/gr-sft.c and cmd/gr-dpo.c
# compiled by mpicc with -DGR_MPI and the MPI transport (lib/mpi/dp_mpi.c,
# outside libgr.a, which has no MPI). Run with mpirun or srun (scripts/slurm/train.sh).
MPICC ?= mpicc
mpi: build/mpi/gr-sft build/mpi/gr-dpo
build/mpi/gr-%: cmd/gr-%.c lib/mpi/dp_mpi.c build/libgr.a
	@mkdir -p $(@D)
	$(MPICC) -DGR_MPI $(CPPFLAGS) $(CFLAGS) $^ -o $@ $(LDLIBS)

bench: all
	@for b in $(sort $(wildcard scripts/bench-*)); do echo "== $$b"; $$b || exit 1; done

install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/man/man1 $(DESTDIR)$(PREFIX)/share/man/man5 \
		$(DESTDIR)$(PREFIX)/share/man/man7
	install -m 755 $(BINS) $(DESTDIR)$(PREFIX)/bin/
	$(if $(CUDA_LIB),install -d $(DESTDIR)$(PREFIX)/lib/guardreasoner-c && install -m 755 $(CUDA_LIB) $(DESTDIR)$(PREFIX)/lib/guardreasoner-c/)
	for m in $(MANS); do case $$m in \
		*.1) install -m 644 $$m $(DESTDIR)$(PREFIX)/share/man/man1/ ;; \
		*.5) install -m 644 $$m $(DESTDIR)$(PREFIX)/share/man/man5/ ;; \
		*.7) install -m 644 $$m $(DESTDIR)$(PREFIX)/share/man/man7/ ;; esac; done
	install -d $(DESTDIR)$(PREFIX)/share/guardreasoner-c
	install -m 644 man/gr-verdict.schema.json scripts/check-schema.jq $(DESTDIR)$(PREFIX)/share/guardreasoner-c/

clean:
	rm -rf build build-asan build-fuzz $(MATRIX:%=build-%) bin

-include $(LIB_OBJ:.o=.d) $(CU_OBJ:.o=.d) $(GPU_BINS:=.d) $(CMD_SRC:cmd/%.c=build/cmd/%.d) $(ASAN_LIB_OBJ:.o=.d) $(UNITS:=.d)
