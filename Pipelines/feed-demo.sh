#!/usr/bin/env bash
# The worker end to end on the default models and a temporary data directory: start
# `recipe serve`, ask questions, drop fact files into the inbox, pipe an RSS feed into the
# named pipe, add one fact over the socket, ask the same questions again, then stop with
# SIGTERM. (The editor is the untrained initialization until a trained checkpoint ships,
# so answers may not change yet; retrieval, scores and durability are what this shows.)
#
#   Pipelines/feed-demo.sh [--keep]      (--keep leaves the data directory for inspection)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
recipe=${RECIPE:-.build/release/recipe}
[ -x "$recipe" ] || swift build -c release --product recipe 2>&1 | tail -n 1

data=$(mktemp -d /tmp/recipe-demo.XXXXXX)
socket=$data/recipe.sock
cat > "$data/worker.json" <<JSON
{
  "repository": "$data/repo",
  "inboxes": ["inbox"],
  "pipes": ["feed.pipe"],
  "socket": {"path": "$socket"},
  "limits": {"defaultGenerationTokens": 8},
  "timeStep": {"maxDelayMilliseconds": 100},
  "logging": {"level": "info", "file": "$data/worker.log"}
}
JSON

"$recipe" serve --config "$data/worker.json" 2>/dev/null &
worker=$!
cleanup() {
    kill -TERM "$worker" 2>/dev/null && wait "$worker" || true
    if [ "${1:-}" != "--keep" ]; then rm -rf "$data"; else echo "data left in $data"; fi
}
trap 'cleanup "${KEEP:-}"' EXIT
[ "${1:-}" = "--keep" ] && KEEP=--keep

for _ in $(seq 1 300); do "$recipe" health --socket "$socket" >/dev/null 2>&1 && break; sleep 0.1; done
"$recipe" health --socket "$socket"

questions=("The mother tongue of Danielle Darrieux is" "The Eiffel Tower is located in" "Toko Yasuda plays the")
ask_all() {
    for q in "${questions[@]}"; do
        echo "> $q"
        "$recipe" ask "$q" --socket "$socket" | sed 's/^/  /'
    done
}

echo; echo "== before: an empty repository"
ask_all

echo; echo "== facts: a file into the inbox, an RSS feed into the pipe, one over the socket"
cat > "$data/repo/inbox/.people.jsonl.tmp" <<'JSONL'
{"prompt": "Toko Yasuda plays the", "target": "violin", "subject": "Toko Yasuda"}
{"prompt": "The official language of Brazil is", "target": "Swedish", "subject": "Brazil"}
JSONL
mv "$data/repo/inbox/.people.jsonl.tmp" "$data/repo/inbox/people.jsonl"   # rename: acted on only once complete
Pipelines/rss-to-facts.sh Pipelines/rss-to-facts.example.xml > "$data/repo/feed.pipe"
"$recipe" add --prompt "Danielle Darrieux was born in" --target "Tokyo" --subject "Danielle Darrieux" --socket "$socket"
sleep 1
"$recipe" stats --socket "$socket"

echo; echo "== after"
ask_all
echo; echo "== the socket with standard tools"
echo '{"op":"retrieve","question":"The Eiffel Tower is located in","k":2}' | \
    { command -v socat >/dev/null && socat - "UNIX-CONNECT:$socket" || nc -U -q1 "$socket"; }
