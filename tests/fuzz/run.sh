#!/usr/bin/env bash
# Builds the libFuzzer targets of tests/fuzz/ with clang (ASan + UBSan + libFuzzer) straight from
# the engine sources they need, replays every saved regression input first, then fuzzes each
# target for a bounded time starting from its seed corpus. Fails on any crash, leak, timeout or
# out-of-memory. Prints one line per target and a summary "fuzz: N passed, N failed".
#
#   tests/fuzz/run.sh [TARGET...]     (default: all targets)
#   FUZZ_SECONDS   seconds of fuzzing per target (default 60; 0 = replay regressions + seeds only)
#   FUZZ_BUILD     build/work folder (default build-fuzz in the repository root)
#   FUZZ_JOBS      targets compiled in parallel (default 2)
#   CC             the compiler (default clang)
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
cd "$root"
seconds="${FUZZ_SECONDS:-60}"
build="${FUZZ_BUILD:-$root/build-fuzz}"
jobs="${FUZZ_JOBS:-2}"
cc="${CC:-clang}"
# The clang that libFuzzer needs; CC from a gcc build environment is not one.
"$cc" --version 2>/dev/null | grep -q clang || cc=clang

declare -A SOURCES=(
  [fuzz_safetensors]="app/safetensors.c"
  [fuzz_config]="app/config.c app/json_guard.c app/safetensors.c"
  [fuzz_tokenizer]="app/tokenizer.c app/json_guard.c app/tokregex.c app/unicode_tables.c app/safetensors.c"
  [fuzz_png_text]="app/image_png.c app/image.c"
  [fuzz_image]="app/image.c app/image_png.c app/image_preprocess.c"
  [fuzz_npy]="app/npy.c app/safetensors.c"
)
ALL=(fuzz_safetensors fuzz_config fuzz_tokenizer fuzz_png_text fuzz_image fuzz_npy)
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=("${ALL[@]}")

if ! command -v "$cc" >/dev/null; then
  echo "fuzz: clang not found (install clang and libclang-rt-dev)"
  echo "fuzz: 0 passed, ${#targets[@]} failed"
  exit 1
fi
PKGS="glib-2.0 gio-2.0 json-glib-1.0 libpng gdk-pixbuf-2.0"
CFLAGS="-g -O1 -std=gnu11 -D_GNU_SOURCE -fno-omit-frame-pointer -fsanitize=fuzzer,address,undefined
  -fno-sanitize-recover=all -Wall -Wextra -I$root/app $(pkg-config --cflags $PKGS)"
LIBS="$(pkg-config --libs $PKGS) -lm"
mkdir -p "$build"

build_one() {  # build_one TARGET: compiles into $build/TARGET, log in $build/TARGET.build.log
  local t="$1"
  # shellcheck disable=SC2086
  "$cc" $CFLAGS -Werror=implicit-function-declaration -o "$build/$t" "$here/$t.c" ${SOURCES[$t]} $LIBS \
    >"$build/$t.build.log" 2>&1
}

# Build (a few at a time: the machine may be shared).
declare -A built
pids=()
for t in "${targets[@]}"; do
  if [ -z "${SOURCES[$t]:-}" ]; then echo "fuzz: unknown target $t"; exit 2; fi
  build_one "$t" & pids+=("$!:$t")
  if [ ${#pids[@]} -ge "$jobs" ]; then
    p="${pids[0]}"; pids=("${pids[@]:1}")
    wait "${p%%:*}" && built[${p#*:}]=1
  fi
done
for p in "${pids[@]}"; do wait "${p%%:*}" && built[${p#*:}]=1; done

export JF_FUZZ_DATA="$root/tests/data"
# Leaks in the system libraries we call into (gdk-pixbuf's loader modules, GLib's type system) are
# theirs; .ci/lsan.supp lists them.
export LSAN_OPTIONS="${LSAN_OPTIONS:-suppressions=$root/.ci/lsan.supp}"
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
FLAGS=(-timeout=10 -rss_limit_mb=2048 -malloc_limit_mb=2048 -print_final_stats=1)

passed=0; failed=0; summary=()
for t in "${targets[@]}"; do
  log="$build/$t.log"
  : >"$log"
  if [ -z "${built[$t]:-}" ]; then
    tail -n 30 "$build/$t.build.log"
    summary+=("FAIL  $t  (build failed, see $build/$t.build.log)"); failed=$((failed + 1)); continue
  fi
  art="$build/artifacts/$t/"; work="$build/corpus/$t"
  mkdir -p "$art" "$work"
  ok=1; what=""
  # 1. every saved crash input (one run each)
  regs=()
  if [ -d "$here/regressions/$t" ]; then
    while IFS= read -r -d '' f; do regs+=("$f"); done < <(find "$here/regressions/$t" -type f ! -name 'README*' -print0 | sort -z)
  fi
  if [ ${#regs[@]} -gt 0 ]; then
    if ! "$build/$t" "${FLAGS[@]}" -artifact_prefix="$art" "${regs[@]}" >>"$log" 2>&1; then
      ok=0; what="a regression input fails again"
    fi
  fi
  # 2. fuzzing from the seeds (new inputs go to the work corpus, never into the repository)
  if [ $ok = 1 ]; then
    seeds=(); [ -d "$here/corpus/$t" ] && seeds+=("$here/corpus/$t")
    if [ "$seconds" -gt 0 ]; then
      run=(-max_total_time="$seconds")
    else
      run=(-runs=0)
    fi
    if ! "$build/$t" "${FLAGS[@]}" "${run[@]}" -artifact_prefix="$art" "$work" "${seeds[@]}" >>"$log" 2>&1; then
      ok=0; what="crash, leak, timeout or OOM"
    fi
  fi
  execs=$(grep -E '^stat::number_of_executed_units:' "$log" | tail -n1 | awk '{print $2}')
  if [ $ok = 1 ]; then
    summary+=("PASS  $t  (${#regs[@]} regression inputs, ${execs:-?} runs in ${seconds}s)"); passed=$((passed + 1))
  else
    echo "----- $t: $what; the end of $log -----"
    grep -v -E '^#[0-9]+|^INFO: |^[[:space:]]+NEW_FUNC' "$log" | tail -n 60
    summary+=("FAIL  $t  ($what; input saved under $art)"); failed=$((failed + 1))
  fi
done
for s in "${summary[@]}"; do echo "fuzz: $s"; done
echo "fuzz: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
