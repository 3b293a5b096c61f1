#!/usr/bin/env bash
# Runs every fuzz target for SECONDS (default 600) on a scratch copy of its seed corpus, so the
# committed corpus stays small; prints libFuzzer's final stats line per target.
# All targets are built first, then run from their binaries, so editing the sources while a long
# run goes on cannot change or break it.
# Usage: fuzz/run.sh [SECONDS] [TARGET...]   (needs `cargo install cargo-fuzz` and a nightly toolchain)
set -euo pipefail
cd "$(dirname "$0")"
seconds="${1:-600}"
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(verify_token jwks_document token_request scope_parse)
work="${FUZZ_WORK:-$(mktemp -d)}"
for target in "${targets[@]}"; do
    cargo +nightly fuzz build "$target"
done
bin_dir="target/$(rustc -vV | sed -n 's/^host: //p')/release"
for target in "${targets[@]}"; do
    mkdir -p "$work/$target"
    cp -n corpus/"$target"/* "$work/$target"/ 2>/dev/null || true
    echo "== $target: ${seconds}s"
    "$bin_dir/$target" "$work/$target" -max_total_time="$seconds" -print_final_stats=1 2>&1 \
        | grep -E "stat::number_of_executed_units|stat::new_units_added|Done [0-9]+ runs|SUMMARY|panicked|ERROR" || true
done
