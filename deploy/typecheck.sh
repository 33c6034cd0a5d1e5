#!/usr/bin/env bash
# mypy over the project under its installed names. The folders ingest/, alarms/, api/ and
# simulators/ install as minewatch.ingest, ... (setup.py); mypy names modules from their paths,
# so it reads them through build/typecheck/minewatch/, a tree of symbolic links with that shape.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV=${MINEWATCH_VENV:-$ROOT/.venv}
tree="$ROOT/build/typecheck/minewatch"
rm -rf "$ROOT/build/typecheck"
mkdir -p "$tree"
for entry in "$ROOT"/minewatch/*; do
  [ "$(basename "$entry")" = "__pycache__" ] || ln -s "$entry" "$tree/"
done
for folder in ingest alarms api simulators; do
  ln -s "$ROOT/$folder" "$tree/$folder"
done
cd "$ROOT"
MYPYPATH="$ROOT/build/typecheck" exec "$VENV/bin/mypy" --cache-dir "$ROOT/build/mypy-cache" -p minewatch "$@"
