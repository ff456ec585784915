#!/usr/bin/env bash
# The README's first command: install what is missing, fetch the models, build, and run the
# main job on the default models.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

Pipelines/setup.sh
echo "quickstart: building (release)"
swift build -c release --product recipe 2>&1 | tail -n 1
recipe=.build/release/recipe

echo
echo "== generate: SmolLM2-135M-Instruct, greedy, raw prompt"
$recipe generate "The capital of France is" --max-tokens 16
echo
echo "== generate: chat"
$recipe generate "What is the capital of France?" --chat --max-tokens 24
echo
echo "== embed: all-MiniLM-L6-v2 (first values of the 384-d normalized embedding)"
$recipe embed "The mother tongue of Danielle Darrieux is English"
