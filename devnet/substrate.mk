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

.PHONY: substrate-toolchain substrate-runtime substrate-devnet substrate-devnet-stop

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
