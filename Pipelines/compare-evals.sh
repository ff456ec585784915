#!/usr/bin/env bash
# Compares two `recipe eval --details` files sample by sample: for each T and metric
# (reliability, generality, locality, and generation exact match where recorded) the two
# means over the samples both files scored, and the paired difference A − B with one
# standard error (of the per-sample differences' mean). This is how the engineering log's
# "paired per sample ± SE" figures are computed (docs/engineering-log.md).
#
#   Pipelines/compare-evals.sh A.jsonl B.jsonl
#   e.g. two editors on the same samples:
#     recipe eval --data ../shared/data/counterfact/dev.json --edits 1000 --samples 1000 \
#         --method recipe --checkpoint new.rcpe --details new.jsonl
#     (the same with --checkpoint old.rcpe --details old.jsonl)
#     Pipelines/compare-evals.sh new.jsonl old.jsonl
#
# A sample's score per metric is the mean over its queries of that kind, as the harness
# averages them; only samples that have queries of the kind count (the harness's locality
# counts a sample without unrelated prompts as 1, so on WikiData_recent its headline
# differs from this script's). Files of one method each; a line that is not a scored
# query (no "kind", "sample" or "score") is an error naming the file and line.
set -euo pipefail
if [ $# -ne 2 ] || [ "$1" = -h ] || [ "$1" = --help ]; then
  sed -n '2,19p' "$0" >&2
  exit 2
fi
for f in "$1" "$2"; do
  [ -r "$f" ] || { echo "compare-evals: cannot read '$f'" >&2; exit 1; }
done
exec python3 - "$1" "$2" <<'EOF'
import json, math, sys
from collections import defaultdict

def load(path):
    """{(T, metric): {sample: [scores]}}"""
    scores = defaultdict(lambda: defaultdict(list))
    with open(path) as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                r = json.loads(line)
                kind, sample, score = r["kind"], r["sample"], float(r["score"])
            except (ValueError, KeyError, TypeError) as e:
                sys.exit(f"compare-evals: {path}:{n}: not a scored query of recipe eval --details ({e})")
            T = r.get("T")
            scores[(T, kind)][sample].append(score)
            if "exactMatch" in r:
                scores[(T, "gen. EM " + kind)][sample].append(1.0 if r["exactMatch"] else 0.0)
    return scores

a, b = load(sys.argv[1]), load(sys.argv[2])
order = ["reliability", "generality", "locality", "gen. EM reliability", "gen. EM generality"]
keys = sorted(set(a) & set(b), key=lambda k: (k[0] or 0, order.index(k[1]) if k[1] in order else 99, k[1]))
if not keys:
    sys.exit("compare-evals: the two files share no (T, metric) with scored samples")
print(f"A = {sys.argv[1]}\nB = {sys.argv[2]}")
print("| T | metric | samples | A | B | A − B (paired ± SE) |")
print("|---:|---|---:|---:|---:|---:|")
for T, metric in keys:
    common = sorted(set(a[(T, metric)]) & set(b[(T, metric)]))
    if not common:
        continue
    mean = lambda s: sum(s) / len(s)
    x = [mean(a[(T, metric)][s]) for s in common]
    y = [mean(b[(T, metric)][s]) for s in common]
    d = [p - q for p, q in zip(x, y)]
    m = mean(d)
    se = math.sqrt(sum((v - m) ** 2 for v in d) / (len(d) - 1) / len(d)) if len(d) > 1 else float("nan")
    print(f"| {T if T is not None else '–'} | {metric} | {len(common)} | {100 * mean(x):.1f} | {100 * mean(y):.1f} | "
          f"{100 * m:+.1f} ± {100 * se:.1f} |")
EOF
