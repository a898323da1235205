# Substrate devnet targets, included from the top-level Makefile.
#
# `make substrate-runtime` should run before `cargo test`: it installs Debian's Rust
# toolchain for wasm if missing and builds the dev runtime's wasm (only when its
# sources changed; the blob is cached under $(DEVNET_CACHE), the last one linked as
# $(DEVNET_CACHE)/runtime/latest.wasm). The Substrate adapter's tests call the same
# build script themselves (a cache hit costs milliseconds), so they always run the
# current runtime; doing it in make first keeps the build out of the test timings.

DEVNET_CACHE ?= $(HOME)/.cache/isthmus
export DEVNET_CACHE
SUBSTRATE_WASM_PATH = $(DEVNET_CACHE)/runtime/latest.wasm

.PHONY: substrate-toolchain substrate-runtime substrate-devnet substrate-devnet-stop pallet-weights omni-bencher

substrate-toolchain: ## Install Debian's Rust toolchain for the wasm runtime (rustc-web 1.96 with wasm32 and rust-src).
	@if ! { [ -x /usr/bin/cargo ] && /usr/bin/rustc --print target-list 2>/dev/null | grep -qx wasm32-unknown-unknown \
	        && [ -d /usr/lib/rustlib/src/rust/library ] && command -v wasm-ld-22 >/dev/null; }; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	        rustc-web cargo-web rust-web-src rust-web-llvm lld-22 >/dev/null; \
	fi

substrate-runtime: substrate-toolchain ## Build (or reuse) the dev runtime wasm; prints its path.
	@bash devnet/substrate-build-runtime.sh

substrate-devnet: devnet-tools substrate-runtime ## Start the Substrate dev chain (chopsticks); prints its port.
	@DEVNET_RUNTIME_WASM="$(SUBSTRATE_WASM_PATH)" bash devnet/substrate-devnet.sh start

substrate-devnet-stop: ## Stop the Substrate dev chain.
	@bash devnet/substrate-devnet.sh stop

# FRAME's benchmark runner, from crates.io. Building it compiles about 900 crates
# (over an hour on two cores) and needs libclang (bindgen) and protoc (litep2p's
# protobuf): it is not part of `make test`. SKIP_WASM_BUILD leaves out the test
# runtime of its `benchmark storage` command, which would need rustup's wasm target.
OMNI_BENCHER_VERSION = 0.28.0
OMNI_BENCHER = $(HOME)/.cargo/bin/frame-omni-bencher

omni-bencher: ## Install frame-omni-bencher $(OMNI_BENCHER_VERSION) (crates.io) and the libclang and protoc it builds with.
	@if ! "$(OMNI_BENCHER)" --version 2>/dev/null | grep -q " $(OMNI_BENCHER_VERSION)"; then \
	    if ! ls /usr/lib/llvm-*/lib/libclang.so >/dev/null 2>&1 || ! command -v protoc >/dev/null; then \
	        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	            libclang-dev protobuf-compiler >/dev/null; \
	    fi; \
	    SKIP_WASM_BUILD=1 $(CARGO) install frame-omni-bencher --version $(OMNI_BENCHER_VERSION) --locked; \
	fi

# Benchmarks run on the dev runtime built with `runtime-benchmarks`, under the
# runtime's `development` genesis preset; the result replaces weights.rs. Progress is
# printed per benchmark and step; about seven minutes on two cores.
PALLET_WEIGHTS = onchain/substrate/pallet/src/weights.rs
BENCH_STEPS ?= 50
BENCH_REPEAT ?= 20

pallet-weights: substrate-toolchain omni-bencher ## Benchmark pallet-isthmus on the dev runtime and regenerate its weights.rs (BENCH_STEPS, BENCH_REPEAT).
	@wasm="$$(bash devnet/substrate-build-runtime.sh benchmarks)" && \
	"$(OMNI_BENCHER)" v1 benchmark pallet --runtime "$$wasm" \
	    --pallet pallet_isthmus --extrinsic '*' \
	    --steps $(BENCH_STEPS) --repeat $(BENCH_REPEAT) \
	    --template onchain/substrate/pallet/weight-template.hbs \
	    --output $(PALLET_WEIGHTS)
	$(CARGO) fmt --all
	@echo "pallet-weights: wrote $(PALLET_WEIGHTS)"
