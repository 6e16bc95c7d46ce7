#!/usr/bin/env bash
# Coverage-guided fuzzing of scimgate's parsers (issue #11) with cargo-fuzz and libFuzzer.
#
# Usage: bash fuzz/run.sh [SECONDS] [TARGET...]
#   SECONDS  how long each target runs (default 60); one target at a time.
#   TARGET   token_parse form_params scim_filter patch_path_value scim_normalize (default: all)
#
# Installs cargo-fuzz (pinned, `cargo install --locked`) when it is missing or another
# version, builds every target once (release, debug assertions and overflow checks on,
# no sanitizer: the stable toolchain suffices), then runs each target's binary on its seed
# corpus fuzz/corpus/<target> (read only, committed) and its grown corpus fuzz/work/<target>
# (not committed, kept between runs), plus fuzz/regressions/<target> (inputs of past
# findings). Every one of those is run first, so a run of any length replays them all.
#
# Prints one line per target:
#   fuzz TARGET: N executions in S s (R exec/s), C crashes, T timeouts, O ooms, K slow units ...
# and, for a finding, the panic, the input kept under fuzz/artifacts/<target>/ and the
# command that replays it. Exit status 1 on any finding (crash, timeout, out of memory,
# slow unit) or failed build, 2 on bad usage.
#
# Env: FUZZ_TIMEOUT (s per input before it counts as a timeout, default 10),
# FUZZ_SLOW (s per input reported as a slow unit, default 5), FUZZ_RSS_MB (memory limit,
# default 2048), FUZZ_SANITIZER (none, or address: needs RUSTC_BOOTSTRAP=1 on stable, set
# here), FUZZ_NICE (nice level of the fuzzers, default 0), FUZZ_CARGO_LOCK (a file: every
# cargo call runs under flock on it), FUZZ_ARGS (more libFuzzer flags, e.g. -max_len=65536).
set -uo pipefail
cd "$(dirname "$0")"
FUZZ=$PWD
CARGO_FUZZ_VERSION=0.13.2
ALL=(token_parse form_params scim_filter patch_path_value scim_normalize)

SECONDS_EACH=${1:-60}
case $SECONDS_EACH in '' | *[!0-9]*) echo "usage: $0 [SECONDS] [TARGET...]" >&2; exit 2 ;; esac
[ $# -gt 0 ] && shift
TARGETS=("$@")
[ ${#TARGETS[@]} -gt 0 ] || TARGETS=("${ALL[@]}")
for t in "${TARGETS[@]}"; do
  [ -f "fuzz_targets/$t.rs" ] || { echo "unknown fuzz target: $t (targets: ${ALL[*]})" >&2; exit 2; }
done

TIMEOUT=${FUZZ_TIMEOUT:-10}
SLOW=${FUZZ_SLOW:-5}
RSS_MB=${FUZZ_RSS_MB:-2048}
SANITIZER=${FUZZ_SANITIZER:-none}
NICE=${FUZZ_NICE:-0}
read -r -a EXTRA <<<"${FUZZ_ARGS:-}"
export CARGO_TERM_COLOR=${CARGO_TERM_COLOR:-never}
# The fuzz workspace has its own target directory, whatever the caller's is.
export CARGO_TARGET_DIR=$FUZZ/target
[ "$SANITIZER" = none ] || export RUSTC_BOOTSTRAP=1

cargo_() {
  if [ -n "${FUZZ_CARGO_LOCK:-}" ]; then flock "$FUZZ_CARGO_LOCK" cargo "$@"; else cargo "$@"; fi
}

T0=$SECONDS
if [ "$(cargo fuzz --version 2>/dev/null)" != "cargo-fuzz $CARGO_FUZZ_VERSION" ]; then
  echo "== installing cargo-fuzz $CARGO_FUZZ_VERSION"
  cargo_ install --locked --quiet cargo-fuzz --version "$CARGO_FUZZ_VERSION" || {
    echo "fuzz: cargo install cargo-fuzz failed"; exit 1; }
fi
T_INSTALL=$((SECONDS - T0))

echo "== cargo fuzz build (release, debug assertions, sanitizer: $SANITIZER)"
T1=$SECONDS
mkdir -p work
# The build's output goes to work/build.log as well; a failed build is tried once more (a
# download or the disk may have failed, not the code), then its cause is printed last, where
# a reader of the tail of a CI log looks: cargo's error lines and the disk's free space.
# (RUST_BACKTRACE=0: cargo-fuzz's own backtrace says nothing about the build.)
fuzz_build() {
  RUST_BACKTRACE=0 cargo_ fuzz build --release --debug-assertions --sanitizer "$SANITIZER" 2>&1 |
    tee work/build.log
}
if ! fuzz_build; then
  echo "fuzz: build failed; trying once more in 20 s"
  sleep 20
  fuzz_build || {
    echo "fuzz: build failed twice. Its errors (full log: fuzz/work/build.log):"
    grep -E -m 20 '^(error|warning: build failed)|No space left|failed to|could not' work/build.log
    echo "fuzz: free disk where it builds: $(df -h "$FUZZ" | awk 'NR == 2 {print $4 " of " $2}')"
    exit 1
  }
fi
T_BUILD=$((SECONDS - T1))
BIN=$CARGO_TARGET_DIR/$(rustc -vV | sed -n 's/^host: //p')/release

dict_of() {
  case $1 in
    token_parse) echo dict/token.dict ;;
    form_params) echo dict/form.dict ;;
    *) echo dict/scim.dict ;;
  esac
}
stat_of() { sed -n "s/^stat::$1: *//p" "$2" | tail -1; }

FINDINGS=0 TOTAL_EXECS=0 LINES=()
for t in "${TARGETS[@]}"; do
  mkdir -p "work/$t" "artifacts/$t"
  log=$FUZZ/work/$t.log
  echo "== $t: ${SECONDS_EACH}s"
  start=$SECONDS
  dirs=("work/$t" "corpus/$t")
  [ -d "regressions/$t" ] && dirs+=("regressions/$t")
  nice -n "$NICE" "$BIN/$t" "${dirs[@]}" \
    -max_total_time="$SECONDS_EACH" -timeout="$TIMEOUT" -report_slow_units="$SLOW" \
    -rss_limit_mb="$RSS_MB" -dict="$(dict_of "$t")" -artifact_prefix="artifacts/$t/" \
    -print_final_stats=1 "${EXTRA[@]+"${EXTRA[@]}"}" >"$log" 2>&1
  rc=$?
  took=$((SECONDS - start))
  # Inputs libFuzzer kept this run (crash-*, timeout-*, oom-*, slow-unit-*).
  new=$(sed -n "s#.*Test unit written to artifacts/$t/##p" "$log" | sort -u)
  count() { echo "$new" | grep -c "^$1-" ; }
  crashes=$(count crash) timeouts=$(count timeout) ooms=$(count oom) slow=$(count slow-unit)
  execs=$(stat_of number_of_executed_units "$log")
  rate=$(stat_of average_exec_per_sec "$log")
  units=$(ls "work/$t" | wc -l)
  line="fuzz $t: ${execs:-?} executions in ${took} s (${rate:-?} exec/s), $crashes crashes, $timeouts timeouts, $ooms ooms, $slow slow units (> ${SLOW} s); corpus: $(ls "corpus/$t" | wc -l) seeds + $units grown"
  found=$((crashes + timeouts + ooms + slow))
  if [ "$found" -gt 0 ] || [ "$rc" != 0 ]; then
    FINDINGS=$((FINDINGS + (found > 0 ? found : 1)))
    line="$line  FAILED (libFuzzer exit $rc)"
    echo "$line"
    grep -m1 -B2 -A8 "panicked at\|ERROR: libFuzzer\|==ERROR" "$log" | head -30
    for a in $new; do
      echo "  input: fuzz/artifacts/$t/$a; replay: $BIN/$t fuzz/artifacts/$t/$a"
    done
    echo "  log: fuzz/work/$t.log"
  else
    echo "$line"
  fi
  LINES+=("$line")
  TOTAL_EXECS=$((TOTAL_EXECS + ${execs:-0}))
done

echo
echo "== fuzz summary (install ${T_INSTALL}s, build ${T_BUILD}s, total $((SECONDS - T0))s)"
printf '%s\n' "${LINES[@]}"
echo "fuzz: ${#TARGETS[@]} targets, $TOTAL_EXECS executions, $FINDINGS findings"
[ "$FINDINGS" = 0 ]
