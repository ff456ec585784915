#!/usr/bin/env bash
# The README's first command, on a fresh Debian/Ubuntu machine with the Swift 6 toolchain:
#   1. setup: install what is missing and fetch the pinned models (Pipelines/setup.sh);
#   2. build the release binary .build/release/recipe;
#   3. the engine, briefly: SmolLM2-135M-Instruct completes a prompt, all-MiniLM-L6-v2
#      embeds a sentence (both in Swift on OpenBLAS);
#   4. the worker (Pipelines/feed-demo.sh): `recipe serve` on a temporary data directory,
#      fact files into its inbox, an RSS feed into its named pipe, a fact over the socket,
#      the same questions answered before and after side by side, then SIGTERM (exit 0)
#      and the data directory removed.
#
#   Pipelines/quickstart.sh [--keep]     (--keep leaves the worker's data directory)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
for arg in "$@"; do
    case $arg in
        --keep) ;;
        -h|--help) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "quickstart: unknown argument '$arg' (usage: Pipelines/quickstart.sh [--keep])" >&2; exit 2 ;;
    esac
done
section() { printf '\n==== %s\n' "$*"; }

section "1/4 setup: packages and models"
Pipelines/setup.sh

section "2/4 build (release)"
log=$(mktemp "${TMPDIR:-/tmp}/recipe-build.XXXXXX")
if swift build -c release --product recipe > "$log" 2>&1; then
    tail -n 1 "$log"; rm -f "$log"
else
    tail -n 40 "$log" >&2; echo "quickstart: the build failed (full log: $log)" >&2; exit 1
fi
recipe=.build/release/recipe

section "3/4 the engine"
echo "\$ recipe generate \"The capital of France is\" --max-tokens 12     # SmolLM2-135M-Instruct, greedy"
$recipe generate "The capital of France is" --max-tokens 12
echo
echo "\$ recipe embed \"Toko Yasuda plays the violin\"                    # all-MiniLM-L6-v2, 384-d, normalized"
$recipe embed "Toko Yasuda plays the violin"

section "4/4 the worker"
RECIPE=$recipe exec Pipelines/feed-demo.sh "$@"
