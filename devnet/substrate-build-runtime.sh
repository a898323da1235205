#!/usr/bin/env bash
# Builds the Isthmus dev runtime to wasm with Debian's toolchain (rustc-web, 1.9x,
# wasm32-unknown-unknown with rust-src for -Zbuild-std) and caches the blob under
# ~/.cache/isthmus keyed by a hash of every source that goes into it, so an unchanged
# tree costs nothing. Prints the path of the blob on stdout.
#
# With the argument `benchmarks`, builds the runtime `make pallet-weights` runs under
# frame-omni-bencher instead (feature runtime-benchmarks), cached beside the other.
#
# Needs: apt-get install rustc-web cargo-web rust-web-src rust-web-llvm lld-22
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/.." && pwd)"
cache="${DEVNET_CACHE:-$HOME/.cache/isthmus}"
mkdir -p "$cache/runtime"

variant=""
features=()
case "${1:-}" in
    "") ;;
    benchmarks) variant="bench-"; features=(--features runtime-benchmarks) ;;
    *) echo "usage: $0 [benchmarks]" >&2; exit 2 ;;
esac

# Paths relative to the repository, so every clone of the same tree shares the key.
sources=(
    onchain/substrate/runtime
    onchain/substrate/pallet
    onchain/substrate/clearing
    protocol/src
    protocol/Cargo.toml
)
key="$(
    cd "$repo"
    {
        find "${sources[@]}" -type f \( -name '*.rs' -o -name 'Cargo.toml' -o -name 'Cargo.lock' \) \
            -not -path '*/target/*' -print0 | sort -z | xargs -0 sha256sum
        # The protocol crate's dependencies are declared in the main workspace.
        grep -E '^(isthmus-protocol|tiny-keccak|k256|hex|thiserror) =' Cargo.toml || true
        /usr/bin/rustc --version 2>/dev/null || true
    } | sha256sum | cut -c1-16
)"
out="$cache/runtime/isthmus-dev-runtime-$variant$key.wasm"
if [[ -s "$out" ]]; then
    echo "$out"
    exit 0
fi

if [[ ! -x /usr/bin/cargo ]] || ! /usr/bin/rustc --print target-list 2>/dev/null | grep -qx wasm32-unknown-unknown; then
    echo "Debian's Rust toolchain is missing: apt-get install rustc-web cargo-web rust-web-src rust-web-llvm lld-22" >&2
    exit 1
fi

target_dir="$cache/runtime-${variant}target"
(
    cd "$repo/onchain/substrate/runtime"
    PATH="/usr/bin:$PATH" \
    RUSTC=/usr/bin/rustc \
    RUSTC_BOOTSTRAP=1 \
    RUSTFLAGS="-C target-cpu=mvp -C link-arg=--export-table -C link-arg=--export=__heap_base -C link-arg=--import-memory --cfg substrate_runtime" \
        /usr/bin/cargo build --locked --release \
        --target wasm32-unknown-unknown -Zbuild-std=core,alloc \
        -p isthmus-dev-runtime-wasm "${features[@]}" --target-dir "$target_dir" >&2
)
tmp="$(mktemp "$cache/runtime/.build-XXXXXX")"
cp "$target_dir/wasm32-unknown-unknown/release/isthmus_dev_runtime_wasm.wasm" "$tmp"
mv "$tmp" "$out"
if [[ -z "$variant" ]]; then
    ln -sfn "$out" "$cache/runtime/latest.wasm"
    # Keep the cache small: only the blob just built (and its genesis spec, made
    # later), and the benchmark variant's.
    find "$cache/runtime" -maxdepth 1 -name 'isthmus-dev-runtime-*' ! -name 'isthmus-dev-runtime-bench-*' \
        ! -name "$(basename "$out")*" -delete
else
    find "$cache/runtime" -maxdepth 1 -name "isthmus-dev-runtime-$variant*" ! -name "$(basename "$out")" -delete
fi
echo "$out"
