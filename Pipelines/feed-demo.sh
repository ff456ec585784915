#!/usr/bin/env bash
# The worker end to end, on the default models and a temporary data directory:
#   1. start `recipe serve` and ask some questions on an empty repository;
#   2. drop two fact files into its inbox (JSON lines with one bad line, plain text), pipe
#      an RSS feed through Pipelines/rss-to-facts.sh into its named pipe, add one fact
#      over the socket;
#   3. ask the same questions again and show the answers side by side: before, after with
#      RECIPE's continuous prompt, after with the retrieved statement as text (in-context),
#      after with both (recipe+text);
#   4. stop the worker with SIGTERM (it must exit 0) and remove the data directory.
# The facts are CounterFact-style counterfactuals ("Toko Yasuda plays the" -> "violin"),
# so a changed answer shows that the edit reached the model. Most questions are the facts'
# prompts, phrased as the facts are; two facts are also asked as a person would type the
# question, as it is ("What does Toko Yasuda play?") and as a chat turn ("chat:", `ask
# --chat`: the model's chat template, the continuous prompt still in front, a statement
# as text opening the user's message).
#
#   Pipelines/feed-demo.sh [--keep]      (--keep leaves the data directory for inspection)
#
# RECIPE=path/to/recipe picks the binary (default .build/release/recipe, built if absent).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
keep=no
for arg in "$@"; do
    case $arg in
        --keep) keep=yes ;;
        -h|--help) sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "feed-demo: unknown argument '$arg' (usage: Pipelines/feed-demo.sh [--keep])" >&2; exit 2 ;;
    esac
done
recipe=${RECIPE:-.build/release/recipe}
[ -x "$recipe" ] || swift build -c release --product recipe 2>&1 | tail -n 1

section() { printf '\n== %s\n' "$*"; }
fail() { echo "feed-demo: $*" >&2; [ -f "$data/worker.log" ] && tail -n 20 "$data/worker.log" >&2; exit 1; }

data=$(mktemp -d "${TMPDIR:-/tmp}/recipe-demo.XXXXXX")
socket=$data/recipe.sock
inbox=$data/repo/inbox
pipe=$data/repo/feed.pipe
cat > "$data/worker.json" <<JSON
{
  "repository": "$data/repo",
  "inboxes": ["inbox"],
  "pipes": ["feed.pipe"],
  "socket": {"path": "$socket"},
  "limits": {"defaultGenerationTokens": 6},
  "timeStep": {"maxDelayMilliseconds": 100},
  "logging": {"level": "info", "file": "$data/worker.log"}
}
JSON

section "worker: recipe serve --config $data/worker.json"
"$recipe" serve --config "$data/worker.json" 2>/dev/null &
worker=$!
finish() {
    local status=$?
    if kill -0 "$worker" 2>/dev/null; then kill -TERM "$worker"; wait "$worker" || true; fi
    if [ "$keep" = no ]; then rm -rf "$data"; elif [ "$status" != 0 ]; then echo "data left in $data" >&2; fi
    exit "$status"
}
trap finish EXIT

# Ready once the socket answers and the sources exist (they start right after READY).
for _ in $(seq 1 3000); do
    kill -0 "$worker" 2>/dev/null || fail "the worker exited during start-up"
    "$recipe" health --socket "$socket" >/dev/null 2>&1 && [ -d "$inbox" ] && [ -p "$pipe" ] && break
    sleep 0.1
done
[ -p "$pipe" ] || fail "the worker did not become ready within 5 minutes"
"$recipe" health --socket "$socket"
editor=$("$recipe" stats --socket "$socket" --json | grep -o '"editor" *: *"[^"]*"' | sed 's/.*: *"//; s/"$//' || true)
case $editor in
    untrained*) echo "editor: the untrained initialization ($editor): no trained checkpoint in this build, so"
                echo "        the RECIPE column will not show the new targets; the in-context column shows the retrieval at work" ;;
    *) echo "editor: the trained checkpoint $editor" ;;
esac

questions=(
    "Toko Yasuda plays the"                     # inbox, people.jsonl
    "Jussi Markkanen plays as"                  # inbox, people.jsonl
    "Sam Crawford, who plays the position"      # inbox, notes.txt
    "Zuni Indian Reservation is located in"     # named pipe, RSS feed
    "Final Cut Studio, developed by"            # named pipe, RSS feed
    "Giovanni Guidetti has a citizenship from"  # socket
    "She toured Japan. Toko Yasuda plays the"   # context first: the question view finds the fact
    "What does Toko Yasuda play?"               # typed as a question
    "chat: What does Toko Yasuda play?"         # the same as a chat turn
    "Where is Zuni Indian Reservation located?"
    "chat: Where is Zuni Indian Reservation located?"
    "The capital of France is"                  # no fact: the answer must not change
)

# The answer of `recipe ask --json` on one line (and the statement of the fact used).
field() { sed -nE "s/.*\"$1\":\"(([^\"\\\\]|\\\\.)*)\".*/\\1/p" | sed -E 's/\\n/ /g; s/\\"/"/g; s/\\\\/\\/g; s/  +/ /g; s/^ //'; }
ask() {  # QUESTION METHOD [TOKENS] -> "answer<TAB>statement of the fact used" ("chat: QUESTION": as a chat turn)
    local reply answer statement chat=() tokens=()
    local q=$1
    if [[ $q == "chat: "* ]]; then q=${q#chat: }; chat=(--chat); fi
    [ -n "${3:-}" ] && tokens=(--max-tokens "$3")
    reply=$("$recipe" ask "$q" --method "$2" "${chat[@]}" "${tokens[@]}" --socket "$socket" --json) || fail "ask failed: $reply"
    answer=$(printf '%s' "$reply" | field answer)
    statement=$(printf '%s' "$reply" | grep -o '"fact":{[^}]*}' | field statement || true)
    printf '%s\t%s' "$answer" "${statement:--}"
}

section "before: the questions on an empty repository"
declare -A before
for q in "${questions[@]}"; do
    before[$q]=$(ask "$q" recipe | cut -f1)
    printf '  %-48s %s\n' "$q" "${before[$q]}"
done

section "facts: two files into the inbox, an RSS feed into the named pipe, one over the socket"
cat > "$inbox/.people.jsonl.part" <<'JSONL'
{"prompt": "Toko Yasuda plays the", "target": "violin", "subject": "Toko Yasuda"}
{"prompt": "Jussi Markkanen plays as", "target": "quarterback", "subject": "Jussi Markkanen"}
{"prompt": "a line without a target is reported, not fatal"}
JSONL
echo "Sam Crawford, who plays the position goaltender" > "$inbox/.notes.txt.part"
# Renamed into place: a file is acted on only once complete.
mv "$inbox/.people.jsonl.part" "$inbox/people.jsonl"
mv "$inbox/.notes.txt.part" "$inbox/notes.txt"
echo "  inbox:  people.jsonl (2 facts, 1 bad line), notes.txt (1 statement)"
Pipelines/rss-to-facts.sh Pipelines/rss-to-facts.example.xml | sed 's/^/  pipe:   /'
timeout 60 bash -c 'Pipelines/rss-to-facts.sh Pipelines/rss-to-facts.example.xml > "$1"' _ "$pipe" || fail "could not write the pipe"
printf '  socket: '
"$recipe" add --prompt "Giovanni Guidetti has a citizenship from" --target "Frankfurt" \
    --subject "Giovanni Guidetti" --socket "$socket"
expected=$((2 + 1 + $(Pipelines/rss-to-facts.sh Pipelines/rss-to-facts.example.xml | wc -l) + 1))
live=0
for _ in $(seq 1 600); do
    live=$("$recipe" health --socket "$socket" --json | grep -o '"live_facts":[0-9]*' | cut -d: -f2)
    [ "${live:-0}" -ge "$expected" ] && [ -f "$inbox/.rejected/people.jsonl.rejections" ] && break
    sleep 0.1
done
[ "${live:-0}" -ge "$expected" ] || fail "only $live of $expected facts stored after 60 s"
[ -f "$inbox/.rejected/people.jsonl.rejections" ] || fail "people.jsonl's bad line was not reported"
"$recipe" stats --socket "$socket" | sed 's/^/  /'
echo "  the bad line, reported next to the file:"
sed 's/^/    /' "$inbox/.rejected/people.jsonl.rejections"

section "after: the same questions (RECIPE = the fact's continuous prompt; in-context = its statement as text; +text = both)"
printf '  %-48s | %-24s | %-24s | %-24s | %-24s | %s\n' "question" "before" "RECIPE" "in-context" "RECIPE+text" "fact retrieved"
for q in "${questions[@]}"; do
    line=$(ask "$q" recipe); IFS=$'\t' read -r recipe_answer fact <<< "$line"
    line=$(ask "$q" incontext); IFS=$'\t' read -r incontext_answer _ <<< "$line"
    line=$(ask "$q" recipe+text); IFS=$'\t' read -r text_answer _ <<< "$line"
    printf '  %-48s | %-24.24s | %-24.24s | %-24.24s | %-24.24s | %s\n' "$q" "${before[$q]}" "$recipe_answer" "$incontext_answer" \
        "$text_answer" "$fact"
done

section "chat turns in full (recipe+text: the prompt in front, the statement opening the user's message; 24 tokens)"
for q in "${questions[@]}"; do
    [[ $q == "chat: "* ]] || continue
    printf '  %s\n    %s\n' "${q#chat: }" "$(ask "$q" recipe+text 24 | cut -f1)"
done

section "the socket with standard tools: retrieve, two candidates"
request='{"op":"retrieve","question":"Zuni Indian Reservation is located in","k":2}'
echo "  $ echo '$request' | socat - UNIX-CONNECT:$socket"
if command -v socat >/dev/null; then echo "$request" | socat - "UNIX-CONNECT:$socket" | sed 's/^/  /'
elif nc -h 2>&1 | grep -q -- '-U'; then echo "$request" | nc -U -q1 "$socket" | sed 's/^/  /'
else echo "  (neither socat nor nc with -U installed; \`recipe ask/add/retract/stats/health\` do the same)"; fi

section "stop: SIGTERM"
kill -TERM "$worker"
status=0
wait "$worker" || status=$?
[ "$status" = 0 ] || fail "the worker exited with $status at SIGTERM"
[ ! -e "$socket" ] || fail "the socket file is still there after exit"
echo "  worker exited 0 (every step durable, socket removed)"
if [ "$keep" = yes ]; then echo "  repository, inbox and log (worker.log) are in $data"; else echo "  removing $data (--keep to inspect it)"; fi
