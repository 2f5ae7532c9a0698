#!/usr/bin/env bash
# Runs each fuzz target for N seconds (default 600) with cargo-fuzz, growing fuzz/corpus/<target>/.
#
#   fuzz/run.sh [SECONDS] [TARGET...]       targets: packet_decoder conn_object args_framing
#                                            app_bincode app_json app_postcard app_serialize_json
#   CMIN=1 fuzz/run.sh ...                   also minimise each corpus afterwards (cargo fuzz cmin),
#                                            to under 2000 files
#
# libFuzzer needs `-Zsanitizer`, so a nightly compiler: the current toolchain if it is nightly, else
# an installed `nightly` toolchain, else the current stable one with RUSTC_BOOTSTRAP=1. Without
# cargo-fuzz or any of these it prints "skipped: needs nightly" and exits 0. A crash exits non-zero;
# the input is in fuzz/artifacts/<target>/. A single allocation over 64 MiB is a crash too: no input
# of these targets is that large, so such an allocation trusts a length the input only claims. CI does not fuzz: it replays the corpus on stable
# (tests/fuzz_corpus.rs).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")"

seconds=${1:-600}
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    targets=(packet_decoder conn_object args_framing app_bincode app_json app_postcard app_serialize_json)
fi

skip() {
    echo "skipped: needs nightly ($1)"
    exit 0
}

command -v cargo >/dev/null || skip "no cargo"
cargo fuzz --version >/dev/null 2>&1 || skip "cargo-fuzz is not installed: cargo install cargo-fuzz"

# Can this rustc (toolchain argument in $1, may be empty) build with the address sanitizer?
sanitizer_works() {
    local dir
    dir=$(mktemp -d)
    echo 'fn main() {}' >"$dir/probe.rs"
    local ok=1
    rustc ${1:+"$1"} -Zsanitizer=address --edition 2021 "$dir/probe.rs" -o "$dir/probe" \
        >/dev/null 2>&1 && ok=0
    rm -rf "$dir"
    return $ok
}

toolchain=()
if rustc --version | grep -q nightly && sanitizer_works ""; then
    :
elif rustup run nightly rustc --version >/dev/null 2>&1 && sanitizer_works "+nightly"; then
    toolchain=(+nightly)
elif RUSTC_BOOTSTRAP=1 sanitizer_works ""; then
    export RUSTC_BOOTSTRAP=1
else
    skip "no nightly toolchain, and RUSTC_BOOTSTRAP=1 does not enable -Zsanitizer"
fi
echo "fuzzing with $(rustc ${toolchain[@]+"${toolchain[@]}"} --version)${RUSTC_BOOTSTRAP:+ (RUSTC_BOOTSTRAP=1)}"

for target in "${targets[@]}"; do
    echo "==> $target for ${seconds}s"
    cargo ${toolchain[@]+"${toolchain[@]}"} fuzz run "$target" -- \
        -max_total_time="$seconds" -print_final_stats=1 -rss_limit_mb=1024 -malloc_limit_mb=64
    if [ "${CMIN:-0}" = 1 ]; then
        echo "==> minimising corpus/$target"
        cargo ${toolchain[@]+"${toolchain[@]}"} fuzz cmin "$target" -- -set_cover_merge=1
        if [ "$(find "corpus/$target" -type f | wc -l)" -ge 2000 ]; then
            # Still too many to commit: keep a set that covers every edge, ignoring hit counts.
            cargo ${toolchain[@]+"${toolchain[@]}"} fuzz cmin "$target" -- -set_cover_merge=1 \
                -use_counters=0
        fi
        # cmin renames everything by hash: put the named seeds back (and drop their copies).
        python3 make_seeds.py
    fi
done
