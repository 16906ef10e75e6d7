# amanuensis — top-level driver around CMake.
#   make          build ./build/amanuensis (and a ./amanuensis symlink)
#   make test     install missing Debian packages, build, run all tests, then
#                 the unit tests again under ASan+UBSan
#   make run      build and start the main job
#   make bench    run the core microbenchmark
#   make model MODEL=base.en   download a real model from the whisper.cpp zoo
#   make fuzz     build the libFuzzer targets (clang, ASan+UBSan) in build-fuzz/ and
#                 run each for FUZZ_SECONDS (default 60) on its corpus (fuzz/README.md)
BUILD      ?= build
ASAN_BUILD ?= build-asan
JOBS       ?= $(shell nproc)
MODEL      ?= base.en
MODELS_DIR ?= models
CTEST_ARGS ?= --output-on-failure
FUZZ_BUILD ?= build-fuzz
FUZZ_SECONDS ?= 60
FUZZ_TARGETS ?=
FUZZ_JOBS ?= 1

.PHONY: all build asan test test-release test-asan run bench deps model clean fuzz

all: build

deps:
	@bash scripts/install-deps.sh

$(BUILD)/Makefile:
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release

build: $(BUILD)/Makefile $(MODELS_DIR)/ggml-silero-v6.2.0.bin
	cmake --build $(BUILD) -j$(JOBS)
	@ln -sf $(BUILD)/amanuensis amanuensis

# the VAD model that ships in data/ (the default of --vad-model)
$(MODELS_DIR)/ggml-silero-v6.2.0.bin: data/ggml-silero-v6.2.0.bin
	@mkdir -p $(MODELS_DIR) && cp $< $@

$(ASAN_BUILD)/Makefile:
	cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DAM_SANITIZE=ON

asan: $(ASAN_BUILD)/Makefile
	cmake --build $(ASAN_BUILD) -j$(JOBS)

test-release: build
	cd $(BUILD) && ctest $(CTEST_ARGS)

test-asan: asan
	cd $(ASAN_BUILD) && ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  ctest $(CTEST_ARGS) -L unit

test: deps
	$(MAKE) test-release
	$(MAKE) test-asan

run: build
	./scripts/run.sh

bench: build
	$(BUILD)/bench_core

model:
	@bash scripts/download-model.sh $(MODEL) $(MODELS_DIR)

# libFuzzer targets (fuzz/): exits non-zero on any crash, leak, timeout or OOM and
# prints the reproducer. FUZZ_TARGETS="http audio" runs some; FUZZ_JOBS=2 two at once.
$(FUZZ_BUILD)/Makefile:
	cmake -S . -B $(FUZZ_BUILD) -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=Release -DAM_FUZZ=ON

fuzz: deps $(FUZZ_BUILD)/Makefile
	cmake --build $(FUZZ_BUILD) -j$(JOBS) --target fuzz_all
	FUZZ_SECONDS=$(FUZZ_SECONDS) FUZZ_JOBS=$(FUZZ_JOBS) bash fuzz/run.sh $(FUZZ_BUILD) $(FUZZ_TARGETS)

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) amanuensis
