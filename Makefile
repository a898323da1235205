# Isthmus: the two user-facing commands are `make demo` and `make test`.
# Everything they need is installed or started by the targets below.

SHELL := /bin/bash
CARGO ?= cargo
export DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/postgres
# Debug info that keeps the 2-core builds fast; tests run the same code.
export CARGO_INCREMENTAL ?= 0

include devnet/substrate.mk

.PHONY: help test lint fmt bench demo postgres softhsm build vectors clean devnet-tools contracts contracts-check alerts-check chaos

help: ## List the targets.
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

postgres: ## Make sure a PostgreSQL server answers (start or install one).
	@bash devnet/ensure-postgres.sh

softhsm: ## Make sure Debian's softhsm2 (a PKCS#11 token in software) is installed, for the key tests.
	@bash devnet/ensure-softhsm.sh

devnet-tools: devnet/node_modules/.patched ## Install the pinned npm tools (anvil, cast, solc-js, chopsticks) from devnet/package-lock.json.

# chopsticks is patched to keep the runtime's header digest (devnet/patch-chopsticks.mjs).
devnet/node_modules/.patched: devnet/node_modules/.installed devnet/patch-chopsticks.mjs
	node devnet/patch-chopsticks.mjs
	@touch $@

devnet/node_modules/.installed: devnet/package.json devnet/package-lock.json
	@command -v npm >/dev/null || { echo "npm is missing: apt-get install nodejs npm" >&2; exit 1; }
	cd devnet && npm ci --no-audit --no-fund --loglevel=error
	@touch $@

contracts: devnet-tools ## Rebuild onchain/evm/artifacts from the Solidity sources.
	node devnet/compile-contracts.js

contracts-check: contracts ## Fail if the committed contract artifacts differ from a rebuild.
	@git diff --exit-code --stat -- onchain/evm/artifacts || { echo "onchain/evm/artifacts is stale: run 'make contracts' and commit" >&2; exit 1; }

build: ## Build the workspace (the `isthmus` binary lands in target/debug).
	$(CARGO) build --workspace --all-targets

alerts-check: ## Check the Prometheus alert rules and their unit tests with promtool (installs Debian's prometheus if missing).
	@bash devnet/check-alerts.sh

test: postgres softhsm devnet-tools substrate-runtime alerts-check ## Run every test of the workspace (real Postgres, real anvil, real relayers).
	# The end-to-end tests run the `isthmus` binary as separate processes. Building the
	# tests builds it too (the relayer's own tests run it), with the features the tests
	# unify: `cargo build -p isthmus-relayer` would resolve other features and build
	# about 180 dependencies (ethers, subxt, sqlx, tokio...) a second time.
	$(CARGO) test --workspace --no-run
	$(CARGO) test --workspace --no-fail-fast

chaos: postgres devnet-tools substrate-runtime ## Chaos soak: faults on nodes, Postgres and members, minutes and thousands of messages (CHAOS_SEED, CHAOS_MESSAGES).
	$(CARGO) build -p isthmus-relayer --bin isthmus
	$(CARGO) test -p isthmus-integration-tests --test chaos_soak -- --nocapture

lint: ## rustfmt check and clippy with warnings denied.
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

fmt: ## Format the workspace.
	$(CARGO) fmt --all

bench: postgres softhsm devnet-tools ## Run the benchmarks (results: docs/benchmarks.md); the relayer's need anvil.
	# The end-to-end delivery benchmark runs the release `isthmus` binary.
	$(CARGO) build --release -p isthmus-relayer --bin isthmus
	DEVNET_ISTHMUS_BIN=$(CURDIR)/target/release/isthmus $(CARGO) bench --workspace

vectors: ## Regenerate protocol/vectors/v2.json (only for a new protocol version).
	ISTHMUS_UPDATE_VECTORS=1 $(CARGO) test -p isthmus-protocol --test vectors

demo: postgres devnet-tools substrate-runtime ## Two anvil ledgers, the Substrate dev chain, Postgres, three members' relayers; messages crossing every route.
	@for tool in jq xxd curl psql; do command -v $$tool >/dev/null || missing="$$missing $$tool"; done; \
	if [ -n "$$missing" ]; then echo "demo: installing$$missing"; apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq jq xxd curl postgresql-client >/dev/null; fi
	$(CARGO) build -p isthmus-relayer --bin isthmus
	bash devnet/demo.sh

clean: ## Remove build output.
	$(CARGO) clean
