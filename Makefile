# zonegate: one entry point. `make demo` and `make test` are the two commands of README.md;
# both install what is missing first (make deps).
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := build

PG_CONFIG ?= pg_config
JOBS ?= $(shell nproc)
BUILD_DIR ?= build
ASAN_BUILD_DIR ?= build-asan
FUZZ_BUILD_DIR ?= build-fuzz
ASAN_EXT_DIR ?= build-asan-extension
FUZZ_SECONDS ?= 60
SUDO := $(shell [ "$$(id -u)" -eq 0 ] && echo "" || echo sudo)

# Debian packages the build, the test suites and the demo need (file and systemd: make package
# runs dpkg-shlibdeps, which needs file, and the package suite runs systemd-analyze verify).
APT_PACKAGES := build-essential cmake pkg-config clang-14 llvm-14 libclang-rt-14-dev \
  postgresql-15 postgresql-contrib postgresql-server-dev-15 libpq-dev postgresql-15-postgis-3 \
  libuv1-dev node-llhttp libyaml-cpp-dev rapidjson-dev libssl-dev libhiredis-dev redis-server \
  googletest libgtest-dev libbenchmark-dev \
  chromium prometheus python3 python3-pytest python3-psycopg2 python3-yaml python3-jwt python3-cryptography nodejs npm curl wrk \
  file systemd
# Extra packages for `make bench` only (peers to compare against).
APT_BENCH_PACKAGES := nginx-light pgbouncer libgeos++-dev \
  python3-fastapi python3-uvicorn python3-asyncpg python3-uvloop python3-httptools valgrind \
  python3-matplotlib

.PHONY: build extension extension-asan proxy install deps deps-bench npm-deps test test-unit test-sanitize \
        fuzz fuzz-build demo demo-stop bench format lint hooks package clean help

help:
	@echo "make deps        install missing Debian and npm packages"
	@echo "make             build the extension and the proxy"
	@echo "make install     install the extension into PostgreSQL"
	@echo "make test        deps, build, install, then every suite"
	@echo "make test-sanitize  proxy, core and extension suites under ASan+UBSan"
	@echo "make fuzz        every libFuzzer target for FUZZ_SECONDS (default 60) each"
	@echo "make demo        deps, build, run the embedded default; make demo-stop stops it"
	@echo "make package     Debian packages: zonegate-proxy and postgresql-15-zonegate (CPack)"
	@echo "make bench       benchmarks against their peers (not part of CI)"
	@echo "make hooks       install the pre-commit hook (clang-format check, unit suites)"
	@echo "make lint        clang-format check and clang-tidy (.clang-tidy), every finding an error"
	@echo "make format | clean"

# Installs only what is missing; prints what it installs. Idempotent.
deps:
	@missing=""; \
	for p in $(APT_PACKAGES) $(EXTRA_APT_PACKAGES); do \
	  if [ "$$p" = nodejs ] || [ "$$p" = npm ]; then command -v $$p >/dev/null 2>&1 && continue; \
	    [ "$$p" = nodejs ] && command -v node >/dev/null 2>&1 && continue; fi; \
	  dpkg-query -W -f='$${db:Status-Status}' "$$p" 2>/dev/null | grep -qx installed || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "deps: installing:$$missing"; \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get update -qq; \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	  echo "deps: installed:$$missing"; \
	else echo "deps: all Debian packages present"; fi
	@$(MAKE) --no-print-directory npm-deps

deps-bench:
	@$(MAKE) --no-print-directory deps EXTRA_APT_PACKAGES="$(APT_BENCH_PACKAGES)"

# npm packages go into ./node_modules (git-ignored), pinned by package-lock.json.
npm-deps:
	@if [ -f package-lock.json ] && [ -d node_modules ] && [ node_modules/.package-lock.json -nt package-lock.json ]; then \
	  echo "deps: npm packages present"; \
	else echo "deps: installing npm packages into node_modules/"; \
	  npm ci --no-audit --no-fund --loglevel=error; fi

build: extension proxy

extension:
	$(MAKE) -C extension PG_CONFIG=$(PG_CONFIG) -j$(JOBS)

# The extension built with ASan+UBSan, in a copy of its sources (PGXS builds in place), for the
# regress-asan suite: loaded into a server started with the ASan runtime preloaded.
extension-asan:
	rm -rf $(ASAN_EXT_DIR) && mkdir -p $(ASAN_EXT_DIR)
	tar --exclude='*.o' --exclude='*.so' --exclude='*.bc' -cf - extension sql | tar -C $(ASAN_EXT_DIR) -xf -
	$(MAKE) -C $(ASAN_EXT_DIR)/extension PG_CONFIG=$(PG_CONFIG) with_llvm=no \
	  SANITIZE="-fsanitize=address,undefined" -j$(JOBS) >$(ASAN_EXT_DIR)/build.log 2>&1 || \
	  { tail -n 40 $(ASAN_EXT_DIR)/build.log; exit 1; }

proxy: npm-deps
	cmake -S . -B $(BUILD_DIR) -DCMAKE_BUILD_TYPE=Release >/dev/null
	cmake --build $(BUILD_DIR) -j$(JOBS)

install: extension
	$(SUDO) $(MAKE) -C extension PG_CONFIG=$(PG_CONFIG) install >/dev/null
	@echo "installed the zonegate extension into $$($(PG_CONFIG) --sharedir)/extension"

# Every suite, in order: unit (ctest), pg_regress, isolation, integration, pg_regress and
# isolation against the extension's sanitizer build, the sanitizer build of the proxy and the
# core, and a short run of every fuzzer. Ends with "tests: N passed, M failed, K skipped".
test: deps build install fuzz-build extension-asan
	cmake -S . -B $(ASAN_BUILD_DIR) -DCMAKE_BUILD_TYPE=Debug -DZONEGATE_SANITIZE=ON >/dev/null
	cmake --build $(ASAN_BUILD_DIR) -j$(JOBS)
	FUZZ_SECONDS=15 tests/run.sh --build-dir $(BUILD_DIR) --asan-build-dir $(ASAN_BUILD_DIR) \
	  --fuzz-build-dir $(FUZZ_BUILD_DIR) --asan-extension $(ASAN_EXT_DIR)/extension/zonegate.so

# libFuzzer targets (clang-14) for the parsers: GeoJSON, YAML config, ...
fuzz-build:
	CC=clang-14 CXX=clang++-14 cmake -S . -B $(FUZZ_BUILD_DIR) -DCMAKE_BUILD_TYPE=Debug \
	  -DZONEGATE_FUZZ=ON -DZONEGATE_TESTS=OFF >/dev/null
	cmake --build $(FUZZ_BUILD_DIR) -j$(JOBS) --target $$(sed -n 's/^add_executable(\([a-z_]*_fuzz\).*/\1/p' tests/fuzz/CMakeLists.txt)

fuzz: deps fuzz-build
	FUZZ_SECONDS=$(FUZZ_SECONDS) tests/run.sh --suites fuzz --fuzz-build-dir $(FUZZ_BUILD_DIR)

test-unit: build
	tests/run.sh --build-dir $(BUILD_DIR) --suites unit

test-sanitize: deps extension install extension-asan
	cmake -S . -B $(ASAN_BUILD_DIR) -DCMAKE_BUILD_TYPE=Debug -DZONEGATE_SANITIZE=ON >/dev/null
	cmake --build $(ASAN_BUILD_DIR) -j$(JOBS)
	tests/run.sh --build-dir $(ASAN_BUILD_DIR) --suites unit,integration,regress-asan --sanitized \
	  --asan-extension $(ASAN_EXT_DIR)/extension/zonegate.so

# Debian packages of the proxy and the extension (CPack; deploy/package.sh, docs/DEPLOYMENT.md).
package: deps
	deploy/package.sh

demo: deps build install
	tests/lib/demo.sh start

demo-stop:
	tests/lib/demo.sh stop

bench: deps-bench build install
	tests/bench/run.sh

format:
	git ls-files '*.cpp' '*.hpp' | xargs clang-format -i

# clang-format over every tracked C++ file, then clang-tidy (.clang-tidy; tests/lib/lint.sh).
lint: npm-deps
	git ls-files '*.cpp' '*.hpp' | xargs clang-format --dry-run -Werror
	tests/lib/lint.sh

# The pre-commit hook lives in the tree (tests/lib/hooks/); the hook in .git is a link to it, so
# it stays current with the checkout.
hooks:
	@hooks=$$(git rev-parse --git-path hooks) && mkdir -p "$$hooks" && \
	ln -sf "$$(pwd)/tests/lib/hooks/pre-commit" "$$hooks/pre-commit" && \
	echo "installed $$hooks/pre-commit -> tests/lib/hooks/pre-commit (git commit --no-verify skips it)"

clean:
	$(MAKE) -C extension clean
	rm -rf $(BUILD_DIR) $(ASAN_BUILD_DIR) $(FUZZ_BUILD_DIR) $(ASAN_EXT_DIR) build-bench build-lint build-package
