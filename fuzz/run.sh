#!/usr/bin/env bash
# The fuzz campaign (not CI; CI runs the seeds and regression inputs through the same code in
# `tests/fuzz_corpora.rs`). Usage: fuzz/run.sh SECONDS [TARGET...]
#
# Builds the targets without a sanitizer but with overflow checks and debug assertions (`-a`),
# writes the seed corpora from the fixtures, samples, real dumps and test PDBs (fuzz/seeds/),
# then runs each target for SECONDS on one worker, one target at a time, growing
# fuzz/corpus/TARGET. Findings go to fuzz/artifacts/TARGET/, logs with libFuzzer's final
# statistics to fuzz/logs/TARGET.log. Caps: one second per input, 2 GiB resident, 64 MiB per
# allocation (enforced by the targets' allocator, see src/lib.rs), inputs up to 1 MiB.
set -uo pipefail
cd "$(dirname "$0")/.."
secs=${1:?seconds per target}
shift
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    targets=(open_read discover dump_all walk_nt walk_lfh walk_page_heap walk_segment_heap stacks allocation_at exports pdb)
fi
if [ ! -d fuzz/seeds ]; then
    NTHEAP_FUZZ_SEEDS_OUT="$PWD/fuzz/seeds" cargo test --release --quiet --test fuzz_corpora -- --ignored write_seeds
fi
RUSTC_BOOTSTRAP=1 cargo fuzz build -s none -a -O
bin=fuzz/target/x86_64-unknown-linux-gnu/release
mkdir -p fuzz/logs
for t in "${targets[@]}"; do
    mkdir -p "fuzz/corpus/$t" "fuzz/artifacts/$t"
    "$bin/$t" "fuzz/corpus/$t" "fuzz/seeds/$t" -max_total_time="$secs" -timeout=1 -rss_limit_mb=2048 \
        -malloc_limit_mb=64 -max_len=1048576 -print_final_stats=1 -artifact_prefix="fuzz/artifacts/$t/" \
        >"fuzz/logs/$t.log" 2>&1
    echo "$t: exit $? $(grep -E 'stat::number_of_executed_units' "fuzz/logs/$t.log" | tail -1) corpus $(ls "fuzz/corpus/$t" | wc -l)"
done
