#!/usr/bin/env bash
# Side by side: llama.cpp's llama-bench and `recipe bench engine` on the same GGUF file, with
# the same thread counts and sizes (prefill 16/64/512 tokens, decode 32 tokens), one table
# with the ratios against the goals of issue #2 (prefill >= 1.0x, decode >= 0.6x llama.cpp).
#
#   Pipelines/bench-vs-llamacpp.sh --llama-bench PATH/llama-bench      (or LLAMA_BENCH=PATH)
#       [--threads 1,2] [--repeats 5] [--rounds 1] [--cpu-time] [--models DIR] [--recipe PATH] [--out DIR]
#
# --rounds N runs llama-bench then recipe N times, alternating, and reports the median of the
# rounds (on a noisy machine both programs then see the same disturbances). Raw JSON of every
# run goes to --out (default Logs/bench-vs-llamacpp-TIMESTAMP). On a machine shared with other
# work, give both programs the same handicap: `nice -n 19 Pipelines/bench-vs-llamacpp.sh ...`
# (children inherit the niceness), and add --cpu-time: it also reports tokens per CPU-second
# of each program (llama-bench is then run once per test under bash's `time`, without
# warm-up, minus the CPU of a 1-token run for the load), which does not depend on how much of
# the CPU the other work left; it is meaningful at 1 thread (with 2, waiting threads spin).
# How to build llama-bench outside the repository: Pipelines/README.md. Needs python3
# (standard library only) to read the JSON.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
llama_bench=${LLAMA_BENCH:-}
recipe="$root/.build/release/recipe"
models=${RECIPE_MODELS:-${XDG_CACHE_HOME:-$HOME/.cache}/recipe/models}
threads=1,2
repeats=5
rounds=1
cpu_time=0
out=""

die() { echo "bench-vs-llamacpp: $*" >&2; exit 2; }
while [ $# -gt 0 ]; do
    case "$1" in
        --llama-bench) llama_bench=${2:?}; shift 2 ;;
        --recipe) recipe=${2:?}; shift 2 ;;
        --models) models=${2:?}; shift 2 ;;
        --threads) threads=${2:?}; shift 2 ;;
        --repeats) repeats=${2:?}; shift 2 ;;
        --rounds) rounds=${2:?}; shift 2 ;;
        --out) out=${2:?}; shift 2 ;;
        --cpu-time) cpu_time=1; shift ;;
        -h|--help) sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) die "unknown argument '$1' (see --help)" ;;
    esac
done

gguf="$models/SmolLM2-135M-Instruct.Q4_1.gguf"
[ -n "$llama_bench" ] || die "no llama-bench given: pass --llama-bench PATH or set LLAMA_BENCH (build it as Pipelines/README.md says)"
[ -x "$llama_bench" ] || die "llama-bench '$llama_bench' is not an executable file (build it as Pipelines/README.md says)"
[ -x "$recipe" ] || die "'$recipe' is missing: run 'swift build -c release --product recipe' (or pass --recipe PATH)"
[ -f "$gguf" ] || die "'$gguf' is missing: run Pipelines/fetch-models.sh (or pass --models DIR)"
command -v python3 >/dev/null || die "python3 is needed to read the JSON results"
[[ "$threads" =~ ^[1-9][0-9]*(,[1-9][0-9]*)*$ ]] || die "--threads expects a list like 1,2, got '$threads'"
[[ "$repeats" =~ ^[1-9][0-9]*$ ]] || die "--repeats expects a positive integer, got '$repeats'"
[[ "$rounds" =~ ^[1-9][0-9]*$ ]] || die "--rounds expects a positive integer, got '$rounds'"
out=${out:-$root/Logs/bench-vs-llamacpp-$(date -u +%Y%m%dT%H%M%SZ)}
mkdir -p "$out"

echo "model    $gguf"
echo "out      $out"
echo "niceness $(nice)   load before: $(cut -d' ' -f1-3 /proc/loadavg)"
for r in $(seq 1 "$rounds"); do
    echo "round $r/$rounds: llama-bench ..." >&2
    "$llama_bench" -m "$gguf" -t "$threads" -p 16,64,512 -n 32 -r "$repeats" -o json \
        > "$out/llama-$r.json" 2> "$out/llama-$r.log" \
        || { tail -5 "$out/llama-$r.log" >&2; die "llama-bench failed (log: $out/llama-$r.log)"; }
    echo "round $r/$rounds: recipe bench engine ..." >&2
    "$recipe" bench engine --models "$models" --threads "$threads" --lengths 16,64,512 --repeats "$repeats" --no-encoder --json \
        > "$out/recipe-$r.json" 2> "$out/recipe-$r.log" \
        || { tail -5 "$out/recipe-$r.log" >&2; die "recipe bench engine failed (log: $out/recipe-$r.log)"; }
done
if [ "$cpu_time" = 1 ]; then
    # CPU seconds (user + sys) of one llama-bench invocation
    cpu_of() {
        local TIMEFORMAT='%U %S' t
        t=$( { time "$llama_bench" -m "$gguf" --no-warmup -o json "$@" > /dev/null 2>> "$out/llama-cpu.log"; } 2>&1 ) \
            || die "llama-bench $* failed (log: $out/llama-cpu.log)"
        awk '{ print $1 + $2 }' <<< "$t"
    }
    echo "llama-bench per test for CPU time ..." >&2
    : > "$out/llama-cpu.tsv"
    for t in ${threads//,/ }; do
        base=$(cpu_of -t "$t" -p 1 -n 0 -r 1)
        for test in p16 p64 p512 n32; do
            n=${test#?}
            if [ "${test:0:1}" = p ]; then args=(-p "$n" -n 0); name=pp$n; else args=(-p 0 -n "$n"); name=tg$n; fi
            c=$(cpu_of -t "$t" "${args[@]}" -r "$repeats")
            printf '%s\t%s\t%s\t%s\n' "$t" "$name" "$((n * repeats))" "$(awk -v c="$c" -v b="$base" 'BEGIN { print c - b }')" >> "$out/llama-cpu.tsv"
        done
    done
fi
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"

python3 - "$out" "$rounds" "$cpu_time" <<'EOF'
import json, statistics, sys
out, rounds, cpu_time = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "1"
llama, recipe = {}, {}   # (threads, test) -> [tok/s per round]
meta = {}
for r in range(1, rounds + 1):
    for row in json.load(open(f"{out}/llama-{r}.json")):
        test = f"pp{row['n_prompt']}" if row["n_gen"] == 0 else f"tg{row['n_gen']}"
        llama.setdefault((row["n_threads"], test), []).append(row["avg_ts"])
        meta["llama"] = f"llama.cpp {row.get('build_commit', '?')} (build {row.get('build_number', '?')}), {row.get('cpu_info', '')}"
    rep = json.load(open(f"{out}/recipe-{r}.json"))
    for e in rep["engine"]:
        t = e["threads"]
        for n, s in e["prefillTokensPerSecond"].items():
            recipe.setdefault((t, f"pp{n}"), []).append(s["median"])
        recipe.setdefault((t, "tg32"), []).append(e["decodeTokensPerSecond"]["median"])
        for n, v in e["prefillTokensPerCPUSecond"].items():
            recipe.setdefault((t, f"cpu pp{n}"), []).append(v)
        recipe.setdefault((t, "cpu tg32"), []).append(e["decodeTokensPerCPUSecond"])
        recipe.setdefault((t, "bw"), []).append(e["memoryBandwidthGBps"])
        recipe.setdefault((t, "bwcpu"), []).append(e.get("memoryBandwidthPerCPUGBps", float("nan")))
        recipe.setdefault((t, "bound"), []).append(e["decodeBoundTokensPerSecond"])
    meta["recipe"] = rep
med = lambda xs: statistics.median(xs) if xs else float("nan")
rep = meta["recipe"]
print(f"{meta.get('llama', 'llama.cpp')}")
print(f"recipe: check max |dlogit| {rep['check']['maxAbsLogitDiff']:.1e}, greedy {'ok' if rep['check']['greedyMatches'] else 'DIFFERS'}; "
      f"load {rep['loadSeconds'] * 1000:.0f} ms; decode reads {rep['decodeBytesPerToken'] / 1e6:.1f} MB/token; "
      f"medians of {rounds} round(s)\n")
import os
loads = [x for r in (rep.get("loadBefore"), rep.get("loadAfter")) if r for x in r[:1]]
if loads and max(loads) > 0.5 * (os.cpu_count() or 1):
    print(f"WARNING: 1-minute load average {max(loads):.1f} on {os.cpu_count()} CPUs during the run: the machine is busy, "
          "so the wall-clock figures and the verdicts below are not reliable (see --cpu-time)\n")
print("| threads | test | llama.cpp tok/s | recipe tok/s | recipe / llama.cpp | goal |")
print("|---|---|---:|---:|---:|---|")
for t in sorted({k[0] for k in llama}):
    for test in ["pp16", "pp64", "pp512", "tg32"]:
        a, b = med(llama.get((t, test), [])), med(recipe.get((t, test), []))
        goal = 0.6 if test == "tg32" else 1.0
        ratio = b / a if a == a and a > 0 else float("nan")
        verdict = "" if test == "pp16" else (f">= {goal:.1f}x: " + ("met" if ratio >= goal else "NOT met"))
        print(f"| {t} | {test} | {a:.1f} | {b:.1f} | {ratio:.2f} | {verdict} |")
print()
for t in sorted({k[0] for k in recipe}):
    print(f"threads {t}: memory read {med(recipe[(t, 'bw')]):.1f} GB/s ({med(recipe[(t, 'bwcpu')]):.1f} per CPU-s) -> decode bound {med(recipe[(t, 'bound')]):.0f} tok/s "
          f"(recipe tg32 {med(recipe[(t, 'tg32')]):.1f}, llama.cpp {med(llama.get((t, 'tg32'), [])):.1f})")
if cpu_time:
    print("\ntokens per CPU-second (user + sys of the whole process; load-independent at 1 thread)\n")
    print("| threads | test | llama.cpp tok/CPU-s | recipe tok/CPU-s | recipe / llama.cpp |")
    print("|---|---|---:|---:|---:|")
    for line in open(f"{out}/llama-cpu.tsv"):
        t, test, tokens, cpu = line.split()
        a = int(tokens) / float(cpu) if float(cpu) > 0 else float("nan")
        b = med(recipe.get((int(t), f"cpu {test}"), []))
        print(f"| {t} | {test} | {a:.1f} | {b:.1f} | {b / a:.2f} |")
EOF
