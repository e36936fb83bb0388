# nvdp build. `make` builds build/nvdp; `make check` runs every test layer that exists.
# Sources are found by wildcard: a new file in src/<module>/ or tests/unit/ needs no edit here.

VERSION    := $(shell cat VERSION)
BUILD      ?= build
CC         ?= gcc
DEPS_STAMP := $(BUILD)/.deps-installed

WARN     := -Wall -Wextra -Wformat=2 -Wshadow -Wmissing-prototypes -Wstrict-prototypes -Wno-unused-parameter \
            -Wno-missing-field-initializers
ifneq ($(CI),)
WERROR   ?= 1
endif
ifeq ($(WERROR),1)
WARN     += -Werror
endif
HARDEN   := -D_FORTIFY_SOURCE=2 -fstack-protector-strong -fPIE
OPT      ?= -O2 -g
CFLAGS   += -std=gnu11 $(OPT) $(WARN) $(HARDEN) -D_GNU_SOURCE -DNVDP_VERSION=\"$(VERSION)\" -Isrc -I$(BUILD)/gen
# pack-relative-relocs (DT_RELR): static OpenSSL's 20,000 relative relocations take 7 KiB instead of 460 KiB
# of RSS; needs glibc >= 2.36 at run time (the image's Debian 12 has it; docs/bench.md).
LDFLAGS  += -pie -Wl,-z,relro,-z,now -Wl,-z,pack-relative-relocs
# libc (and libdl/libpthread, part of glibc) dynamic; everything else static.
LIBS     := -Wl,-Bstatic -lnghttp2 -lprotobuf-c -lyaml -ljson-c -lssl -lcrypto -Wl,-Bdynamic -ldl -lpthread -lm

ifeq ($(SANITIZE),1)
CFLAGS   += -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
LDFLAGS  += -fsanitize=address,undefined
HARDEN   := -fPIE
endif

PROTO_SRC := $(wildcard proto/*.proto)
PROTO_C   := $(patsubst proto/%.proto,$(BUILD)/gen/%.pb-c.c,$(PROTO_SRC))
PROTO_H   := $(PROTO_C:.c=.h)
LIB_SRC   := $(filter-out src/main.c,$(wildcard src/*/*.c))
LIB_OBJ   := $(patsubst %.c,$(BUILD)/obj/%.o,$(LIB_SRC)) $(patsubst $(BUILD)/gen/%.c,$(BUILD)/obj/gen/%.o,$(PROTO_C))
UNIT_SRC  := $(wildcard tests/unit/test-*.c)
UNIT_BIN  := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(UNIT_SRC))
HELPER_SRC:= $(wildcard tests/helpers/*.c)
HELPER_BIN:= $(patsubst tests/helpers/%.c,$(BUILD)/tests/helpers/%,$(HELPER_SRC))
MOCK_SRC  := $(wildcard mock/nvml/*.c)
MOCK_LIB  := $(BUILD)/mock-nvml/libnvidia-ml.so.1
MOCK_MPS  := $(BUILD)/mock-mps/nvidia-cuda-mps-control
FUZZ_SRC  := $(wildcard tests/fuzz/fuzz-*.c)
FUZZ_BIN  := $(patsubst tests/fuzz/%.c,$(BUILD)/bin/%,$(FUZZ_SRC))
FUZZ_SECONDS ?= 60

.PHONY: all deps check unit unit-arm64 arm64 chart push integration valgrind kubelet cdi compat deploy e2e asan lint demo clean bench image fuzz soak \
	fuzz-build failinject gpu-e2e-bundle gpu-e2e-bundle-check bench-smoke
all: $(BUILD)/nvdp $(BUILD)/nvdp-cdi-hook $(MOCK_LIB) $(MOCK_MPS) $(HELPER_BIN)

deps: $(DEPS_STAMP)
$(DEPS_STAMP): scripts/install-deps
	@scripts/install-deps
	@mkdir -p $(@D) && touch $@

# Generated sources stay (make would delete them as intermediates and rebuild every object).
.SECONDARY: $(PROTO_C) $(PROTO_H)
$(BUILD)/gen/%.pb-c.c $(BUILD)/gen/%.pb-c.h: proto/%.proto | $(DEPS_STAMP)
	@mkdir -p $(@D)
	protoc-c --proto_path=proto --c_out=$(BUILD)/gen $<

# Generated sources are kept (not intermediates make deletes), so a second build does not redo everything.
.SECONDARY: $(PROTO_C) $(PROTO_H)

$(BUILD)/obj/gen/%.o: $(BUILD)/gen/%.c
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -Wno-missing-prototypes -MMD -MP -c -o $@ $<

$(BUILD)/obj/%.o: %.c $(PROTO_H) | $(DEPS_STAMP)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -MMD -MP -c -o $@ $<

$(BUILD)/libnvdp.a: $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/nvdp: $(BUILD)/obj/src/main.o $(BUILD)/libnvdp.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LIBS)

# The CDI hooks alone, linked statically: the runtime runs a hook on the host, whose C library may be older
# than the one we build against. --fatal-warnings: glibc warns when a static program uses NSS or dlopen,
# which would need the host's libraries after all. The sanitizer build links it as nvdp (ASan's runtime
# is a shared library).
ifeq ($(SANITIZE),1)
HOOK_LINK := $(LDFLAGS)
HOOK_LIBS := $(LIBS)
else
HOOK_LINK := -static-pie -Wl,-z,relro,-z,now -Wl,--fatal-warnings
HOOK_LIBS := -ljson-c
endif
$(BUILD)/nvdp-cdi-hook: $(BUILD)/obj/src/main-cdi-hook.o $(BUILD)/libnvdp.a
	$(CC) $(HOOK_LINK) -o $@ $^ $(HOOK_LIBS)

# The simulated NVML: a shared library any NVML client can load through LD_LIBRARY_PATH.
# It needs the libraries the real libnvidia-ml.so.1 needs (libdl, libpthread, librt, libm as files of their
# own), so that an image lacking them fails on the simulated node as it does on a GPU host.
$(MOCK_LIB): $(MOCK_SRC) $(wildcard mock/nvml/*.h) | $(DEPS_STAMP)
	@mkdir -p $(@D)
	$(CC) -std=gnu11 $(OPT) $(WARN) -D_GNU_SOURCE -Isrc -fPIC -shared -Wl,-soname,libnvidia-ml.so.1 \
		$(filter -fsanitize=% -fno-omit-frame-pointer -fno-sanitize-recover=%,$(CFLAGS)) -o $@ $(MOCK_SRC) -Wl,-Bstatic -lyaml \
		-Wl,-Bdynamic -Wl,--no-as-needed -l:libdl.so.2 -l:libpthread.so.0 -l:librt.so.1 -lm -Wl,--as-needed
	ln -sf libnvidia-ml.so.1 $(@D)/libnvidia-ml.so

# A stand-in for NVIDIA's nvidia-cuda-mps-control (the MPS tests, the MOCK=1 image).
$(MOCK_MPS): mock/mps/nvidia-cuda-mps-control.c
	@mkdir -p $(@D)
	$(CC) -std=gnu11 $(OPT) $(WARN) $(HARDEN) -D_GNU_SOURCE $(LDFLAGS) -o $@ $<

# -rdynamic: backtraces name functions (failmalloc.h's FAILMALLOC_DEBUG, and its exemptions by function).
$(BUILD)/tests/%: tests/unit/%.c $(wildcard tests/unit/*.h) $(BUILD)/libnvdp.a
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -Wno-missing-prototypes -Itests/unit -o $@ $< $(BUILD)/libnvdp.a $(LDFLAGS) -rdynamic -lcmocka $(LIBS)

# Small programs the tests drive (e.g. a gRPC server over the rpc layer for grpcio to talk to).
$(BUILD)/tests/helpers/%: tests/helpers/%.c $(wildcard tests/unit/*.h) $(BUILD)/libnvdp.a
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -Wno-missing-prototypes -o $@ $< $(BUILD)/libnvdp.a $(LDFLAGS) $(LIBS)

# The bench's programs (bench/*.c): clients, launchers and the floor server, which uses nvdp's own stack.
BENCH_BIN := $(patsubst bench/%.c,$(BUILD)/bench/%,$(wildcard bench/*.c))
$(BUILD)/bench/%: bench/%.c $(BUILD)/libnvdp.a
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -Wno-missing-prototypes -o $@ $< $(BUILD)/libnvdp.a $(LDFLAGS) $(LIBS)

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)

# ---- tests ---------------------------------------------------------------------------------------
# Everything CI runs (.ci/run calls this): style, the test layers, the end-to-end cluster, the
# sanitizer build with failure injection, and every fuzz target for FUZZ_SECONDS.
check: lint unit unit-arm64 integration valgrind kubelet cdi compat deploy e2e gpu-e2e-bundle-check asan fuzz bench-smoke

unit: $(UNIT_BIN) all
	@CC=$(CC) tests/run-unit $(BUILD) $(UNIT_BIN)

# The arm64 build (GH200/GB200 and Jetson nodes), cross-compiled with Debian's multiarch packages
# into $(BUILD)/arm64; its unit tests run under qemu-user.
ARM64_MAKE := $(MAKE) BUILD=$(BUILD)/arm64 CC=aarch64-linux-gnu-gcc
arm64: | $(DEPS_STAMP)
	@$(ARM64_MAKE) $(BUILD)/arm64/nvdp $(BUILD)/arm64/nvdp-cdi-hook

unit-arm64: | $(DEPS_STAMP)
	@$(ARM64_MAKE) UNIT_EXEC=qemu-aarch64 unit

integration: all
	@if ls tests/integration/test_*.py >/dev/null 2>&1; then \
		NVDP_BUILD=$(abspath $(BUILD)) /usr/bin/python3 -m pytest -q tests/integration; \
	else echo "integration: no tests yet"; fi

kubelet: all
	@if [ -f tests/kubelet/go.mod ]; then \
		cd tests/kubelet && NVDP_BUILD=$(abspath $(BUILD)) go test -count=1 ./...; \
	else echo "kubelet: no tests yet"; fi

# nvdp's CDI spec read, resolved and injected by the CDI project's own Go library.
cdi: all
	@cd tests/cdi && NVDP_BUILD=$(abspath $(BUILD)) go test -count=1 ./...

# nvdp next to NVIDIA's plugin and GFD (built once from the Go module proxy) on every fixture; every
# difference must be an intended one (tests/compat/intended-differences.yaml, docs/compat.md).
compat: all
	@BUILD=$(BUILD) tests/compat/run

deploy: all arm64
	@tests/deploy/run

# nvdp info on every fixture and error path under valgrind: no leak, no memory error.
valgrind: all
	@tests/valgrind-info $(BUILD)

e2e: all
	@if [ -x tests/e2e/run ]; then tests/e2e/run; else echo "e2e: not present"; fi

# The bundle the real-GPU e2e runs from on the GPU host (docs/testing-gpu.md): build/gpu-e2e/part{1,2}.
gpu-e2e-bundle: all
	@BUILD=$(BUILD) tests/gpu/make-bundle $(BUILD)/gpu-e2e

# What CI can check of it without a GPU: it assembles, every file the e2e needs is there and its
# MANIFEST lists exactly what it holds (no compression: that is the slow part and changes nothing).
gpu-e2e-bundle-check: all
	@BUILD=$(BUILD) tests/gpu/make-bundle --check $(BUILD)/gpu-e2e

asan:
	$(MAKE) BUILD=build/asan SANITIZE=1 OPT="-O1 -g" unit integration failinject

# Each NVML call the plugin makes failing in turn, and a GPU lost mid-run (a few seconds).
failinject: all
	@NVDP_BUILD=$(abspath $(BUILD)) /usr/bin/python3 -m pytest -q tests/failinject

# 100,000 Allocates, 200 kubelet restarts, 100 reloads; RSS and fds must not grow (under a minute).
soak: all
	@tests/soak/run $(BUILD)

# libFuzzer targets (clang, ASan+UBSan) in build/fuzz/bin/, each run for FUZZ_SECONDS from its seed corpus.
fuzz:
	$(MAKE) BUILD=build/fuzz CC=clang SANITIZE=1 OPT="-O1 -g -fsanitize=fuzzer-no-link" fuzz-build
	@tests/fuzz/run build/fuzz $(FUZZ_SECONDS)

fuzz-build: $(FUZZ_BIN)

$(BUILD)/bin/fuzz-%: tests/fuzz/fuzz-%.c tests/fuzz/fuzz-common.h $(BUILD)/libnvdp.a
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -fsanitize=fuzzer -Wno-missing-prototypes -Itests/unit -o $@ $< $(BUILD)/libnvdp.a \
		$(LDFLAGS) $(LIBS)

lint: | $(DEPS_STAMP)
	scripts/check-layers src
	clang-format --dry-run -Werror $(shell find src mock tests/unit -name '*.[ch]')
	@# memleak is off: cppcheck does not understand __attribute__((cleanup)), our ownership idiom
	@# (ASan/LeakSanitizer and valgrind check leaks instead).
	cppcheck --quiet --error-exitcode=1 --enable=warning,portability --inline-suppr \
		--suppress=missingIncludeSystem --suppress=memleak -D__GNUC__ -Isrc $(shell find src mock -name '*.c')

image: all arm64
	@BUILD=$(BUILD) scripts/make-image

# Release artefacts (.github/workflows/release.yml runs these on a tag): the chart package, and the
# image index and chart pushed to REGISTRY (scripts/release says how).
chart: | $(DEPS_STAMP)
	@BUILD=$(BUILD) scripts/release chart

push: image
	@BUILD=$(BUILD) scripts/release push

demo: all
	@scripts/demo $(BUILD)

bench: all $(BENCH_BIN)
	@BUILD=$(BUILD) bench/bench

# The bench scripts in a seconds-long smoke mode (make check): they run end to end, no figure is judged.
bench-smoke: all $(BENCH_BIN)
	@BUILD=$(BUILD) BENCH_SMOKE=1 bench/bench

clean:
	rm -rf build
