# amanuensis — top-level driver around CMake.
#   make          build ./build/amanuensis (and a ./amanuensis symlink)
#   make test     install missing Debian packages, build, run all tests, then
#                 the unit tests again under ASan+UBSan
#   make run      build and start the main job
#   make bench    run the core microbenchmark
#   make model MODEL=base.en   download a real model from the whisper.cpp zoo
BUILD      ?= build
ASAN_BUILD ?= build-asan
JOBS       ?= $(shell nproc)
MODEL      ?= base.en
MODELS_DIR ?= models
CTEST_ARGS ?= --output-on-failure

.PHONY: all build asan test test-release test-asan run bench deps model clean

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

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) amanuensis
