#!/usr/bin/env bash
# Many clients at once (issue #26): llama.cpp's llama-server and `recipe bench serve --clients`
# under the same closed-loop load, one table: asks/s and p50/p99 latency at each client count,
# the ratio of each program's N-client rate to its 1-client rate, and recipe / llama-server.
#
#   Pipelines/bench-serve-vs-llamacpp.sh --llama-server PATH/llama-server      (or LLAMA_SERVER=PATH)
#       [--clients 1,8,32] [--duration 30] [--warmup 5] [--max-tokens 8] [--facts 10000] [--threads 2]
#       [--port 18080] [--models DIR] [--recipe PATH] [--out DIR]
#
# The load, for both: N clients, each sending one question, waiting for the answer and sending
# the next, --warmup seconds and then --duration timed seconds; asks/s counts the asks finished
# in the timed window, latency those started in it (the clients stop at its end and the last
# answers are waited for); greedy answers of --max-tokens tokens. The questions are the eight
# of `recipe bench serve --clients` (ServeBench+Clients.swift: four about facts it stores, four
# about none), checked against the ones recipe reports. llama-server gets each as a raw prompt
# (POST /completion, n_predict, temperature 0, cache_prompt false: eight questions asked over
# and over would otherwise be answered from the slot's cached prefill, which no real load of
# new questions gets; recipe prefills every question too) from python3's http.client,
# one keep-alive connection per client; it is started once per N as
#   llama-server -m GGUF -t THREADS -np N -c N*256 --host 127.0.0.1 --port PORT
# (N slots, so all N clients are decoded together by its continuous batching; 256 positions
# per slot: a question is ~10 tokens and an answer 8, so no slot ever runs out of context,
# and the KV cache stays as small as the load allows). recipe gets the same through its
# worker's socket (method recipe: retrieval and the stored fact's continuous prompt for the
# probe questions), on a repository of --facts facts, with the same threads.
# Raw results go to --out (default Logs/bench-serve-vs-llamacpp-TIMESTAMP). On a machine shared
# with other work run it as `nice -n 19 Pipelines/bench-serve-vs-llamacpp.sh ...` (children
# inherit the niceness) and read the figures as preliminary. How to build llama-server outside
# the repository: Pipelines/README.md. Needs python3 (standard library only).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
llama_server=${LLAMA_SERVER:-}
recipe="$root/.build/release/recipe"
models=${RECIPE_MODELS:-${XDG_CACHE_HOME:-$HOME/.cache}/recipe/models}
clients=1,8,32
duration=30
warmup=5
max_tokens=8
facts=10000
threads=2
port=18080
out=""

die() { echo "bench-serve-vs-llamacpp: $*" >&2; exit 2; }
while [ $# -gt 0 ]; do
    case "$1" in
        --llama-server) llama_server=${2:?}; shift 2 ;;
        --recipe) recipe=${2:?}; shift 2 ;;
        --models) models=${2:?}; shift 2 ;;
        --clients) clients=${2:?}; shift 2 ;;
        --duration) duration=${2:?}; shift 2 ;;
        --warmup) warmup=${2:?}; shift 2 ;;
        --max-tokens) max_tokens=${2:?}; shift 2 ;;
        --facts) facts=${2:?}; shift 2 ;;
        --threads) threads=${2:?}; shift 2 ;;
        --port) port=${2:?}; shift 2 ;;
        --out) out=${2:?}; shift 2 ;;
        -h|--help) sed -n '2,29p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) die "unknown argument '$1' (see --help)" ;;
    esac
done

gguf="$models/SmolLM2-135M-Instruct.Q4_1.gguf"
[ -n "$llama_server" ] || die "no llama-server given: pass --llama-server PATH or set LLAMA_SERVER (build it as Pipelines/README.md says)"
[ -x "$llama_server" ] || die "llama-server '$llama_server' is not an executable file (build it as Pipelines/README.md says)"
[ -x "$recipe" ] || die "'$recipe' is missing: run 'swift build -c release --product recipe' (or pass --recipe PATH)"
[ -f "$gguf" ] || die "'$gguf' is missing: run Pipelines/fetch-models.sh (or pass --models DIR)"
command -v python3 >/dev/null || die "python3 is needed to drive llama-server and read the JSON results"
[[ "$clients" =~ ^[1-9][0-9]*(,[1-9][0-9]*)*$ ]] || die "--clients expects a list like 1,8,32, got '$clients'"
[[ "$duration" =~ ^[1-9][0-9]*$ ]] || die "--duration expects a positive integer (seconds), got '$duration'"
[[ "$warmup" =~ ^[0-9]+$ ]] || die "--warmup expects a non-negative integer (seconds), got '$warmup'"
[[ "$max_tokens" =~ ^[1-9][0-9]*$ ]] || die "--max-tokens expects a positive integer, got '$max_tokens'"
[[ "$facts" =~ ^[0-9]+$ ]] || die "--facts expects a non-negative integer, got '$facts'"
[[ "$threads" =~ ^[1-9][0-9]*$ ]] || die "--threads expects one positive integer, got '$threads'"
[[ "$port" =~ ^[1-9][0-9]*$ ]] || die "--port expects a port number, got '$port'"
out=${out:-$root/Logs/bench-serve-vs-llamacpp-$(date -u +%Y%m%dT%H%M%SZ)}
mkdir -p "$out"

server_pid=""
stop_server() {
    if [ -n "$server_pid" ]; then
        kill "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
        server_pid=""
    fi
}
trap stop_server EXIT

echo "model    $gguf"
echo "out      $out"
echo "niceness $(nice)   load before: $(cut -d' ' -f1-3 /proc/loadavg)"
for n in ${clients//,/ }; do
    echo "llama-server, $n clients ..." >&2
    "$llama_server" -m "$gguf" -t "$threads" -np "$n" -c $((n * 256)) --host 127.0.0.1 --port "$port" \
        > "$out/llama-server-$n.log" 2>&1 &
    server_pid=$!
    # /health answers 200 once the model is loaded (503 before)
    ready=0
    for _ in $(seq 1 300); do
        kill -0 "$server_pid" 2>/dev/null || { tail -5 "$out/llama-server-$n.log" >&2; die "llama-server exited at start (log: $out/llama-server-$n.log)"; }
        if python3 -c "import http.client, sys; c = http.client.HTTPConnection('127.0.0.1', $port, timeout=2); c.request('GET', '/health'); sys.exit(c.getresponse().status != 200)" 2>/dev/null
        then ready=1; break; fi
        sleep 0.2
    done
    [ "$ready" = 1 ] || { tail -5 "$out/llama-server-$n.log" >&2; die "llama-server did not answer /health on port $port (log: $out/llama-server-$n.log)"; }
    python3 - "$port" "$n" "$warmup" "$duration" "$max_tokens" > "$out/llama-$n.json" 2> "$out/llama-$n.driver.log" <<'EOF' || { tail -5 "$out/llama-$n.driver.log" >&2; die "the llama-server driver failed (log: $out/llama-$n.driver.log)"; }
# N closed-loop clients against llama-server's /completion; one JSON object on stdout.
import http.client, json, sys, threading, time
port, clients, warmup, duration, max_tokens = (int(x) for x in sys.argv[1:6])
# The questions of `recipe bench serve --clients` (ServeBench.loadQuestions), in its order.
questions = ["Toko Yasuda plays the", "Giovanni Guidetti has a citizenship from", "The Eiffel Tower is located in",
             "Final Cut Studio, developed by", "The capital of Japan is", "The largest planet in the solar system is",
             "Romeo and Juliet was written by", "Water is made of hydrogen and"]
asks, errors, lock = [], [], threading.Lock()
start = time.monotonic()
t0, t1 = start + warmup, start + warmup + duration

def client(c):
    conn, k = None, c
    while time.monotonic() < t1:
        q = questions[k % len(questions)]
        k += 1
        try:
            if conn is None:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
            body = json.dumps({"prompt": q, "n_predict": max_tokens, "temperature": 0, "cache_prompt": False})
            s = time.monotonic()
            conn.request("POST", "/completion", body, {"Content-Type": "application/json"})
            r = conn.getresponse()
            data = r.read()
            e = time.monotonic()
            if r.status != 200:
                with lock: errors.append(f"HTTP {r.status}: {data[:200]!r}")
                continue
            with lock: asks.append((s, e, json.loads(data).get("tokens_predicted", 0)))
        except Exception as x:
            with lock: errors.append(repr(x))
            if conn is not None: conn.close()
            conn = None
            time.sleep(0.1)
    if conn is not None: conn.close()

threads = [threading.Thread(target=client, args=(c,)) for c in range(clients)]
for t in threads: t.start()
for t in threads: t.join()
# As recipe's bench: rates of the asks finished in the window, latency of those started in it.
finished = [a for a in asks if t0 <= a[1] <= t1]
ms = sorted((e - s) * 1000 for s, e, _ in asks if s >= t0)
pct = lambda q: ms[min(len(ms) - 1, int(len(ms) * q))] if ms else None
json.dump({"clients": clients, "asks": len(finished), "asks_per_second": len(finished) / duration,
           "tokens_per_second": sum(a[2] for a in finished) / duration, "p50_ms": pct(0.5), "p99_ms": pct(0.99),
           "errors": len(errors), "first_error": errors[0] if errors else None, "questions": questions}, sys.stdout)
EOF
    stop_server
done

echo "recipe bench serve --clients $clients ..." >&2
recipe_status=0
"$recipe" bench serve --clients "$clients" --facts "$facts" --duration "$duration" --warmup "$warmup" --max-tokens "$max_tokens" \
    --threads "$threads" --models "$models" --json > "$out/recipe.json" 2> "$out/recipe.log" || recipe_status=$?
[ -s "$out/recipe.json" ] || { tail -5 "$out/recipe.log" >&2; die "recipe bench serve failed (exit $recipe_status, log: $out/recipe.log)"; }
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"

python3 - "$out" "$clients" "$threads" "$facts" <<'EOF'
import json, os, sys
out, clients, threads, facts = sys.argv[1], [int(n) for n in sys.argv[2].split(",")], sys.argv[3], sys.argv[4]
llama = {n: json.load(open(f"{out}/llama-{n}.json")) for n in clients}
rep = json.load(open(f"{out}/recipe.json"))
recipe = {r["clients"]: r for r in rep["rows"]}
if rep["questions"] != llama[clients[0]]["questions"]:
    print("WARNING: recipe asked other questions than the llama-server driver: update the driver's list from ServeBench.loadQuestions\n")
first = clients[0]
f = lambda x, d=1: "–" if x is None else f"{x:.{d}f}"
print(f"{rep['max_tokens']}-token greedy answers, closed loop: {rep['warmup_s']:.0f} s warm-up, {rep['duration_s']:.0f} s timed per client count; "
      f"{threads} threads; recipe: method {rep['method']}, {facts} facts; llama-server: -np N -c N*256\n")
print(f"| clients | llama-server asks/s | p50 ms | p99 ms | recipe asks/s | p50 ms | p99 ms | recipe / llama-server | "
      f"llama-server vs {first} client{'s' if first > 1 else ''} | recipe vs {first} client{'s' if first > 1 else ''} |")
print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
for n in clients:
    a, b = llama[n], recipe[n]
    ratio = lambda x, y: f"{x / y:.2f}×" if y else "–"
    print(f"| {n} | {f(a['asks_per_second'], 2)} | {f(a['p50_ms'], 0)} | {f(a['p99_ms'], 0)} | {f(b['asks_per_second'], 2)} | {f(b['p50_ms'], 0)} | "
          f"{f(b['p99_ms'], 0)} | {ratio(b['asks_per_second'], a['asks_per_second'])} | "
          f"{ratio(a['asks_per_second'], llama[first]['asks_per_second'])} | {ratio(b['asks_per_second'], recipe[first]['asks_per_second'])} |")
print()
for n in clients:
    a, b = llama[n], recipe[n]
    print(f"{n} clients: tokens/s llama-server {a['tokens_per_second']:.1f}, recipe {b['tokens_per_second']:.1f}; "
          f"errors llama-server {a['errors']}, recipe {b['errors']}; recipe probe asks with their fact {b['right_fact']}/{b['probe_asks']}; "
          f"recipe's largest batch {b['batch_largest'] if b['batch_largest'] is not None else '–'}")
    for who, e in (("llama-server", a.get("first_error")), ("recipe", b.get("first_error"))):
        if e: print(f"  first {who} error: {e}")
load = os.getloadavg()[0]
if load > 0.5 * (os.cpu_count() or 1):
    print(f"\nWARNING: 1-minute load average {load:.1f} on {os.cpu_count()} CPUs after the run: the machine is busy, so these figures are not reliable")
EOF
if [ "$recipe_status" != 0 ]; then
    echo "bench-serve-vs-llamacpp: recipe bench serve exited $recipe_status (errors, a probe ask without its fact, or lost facts: $out/recipe.log)" >&2
    exit 1
fi
