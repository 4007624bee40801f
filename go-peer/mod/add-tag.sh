#!/usr/bin/env bash
# Pin another xtaci/smux tag: writes mod/smux-TAG.mod and mod/smux-TAG.sum
# (alternative module files for `go build -modfile=...`). Needs the Go
# module proxy, or a module cache that already holds the tag.
#
#   mod/add-tag.sh v1.5.58
set -euo pipefail
tag=${1:?usage: mod/add-tag.sh TAG   (e.g. v1.5.58)}
cd "$(dirname "$0")/.."
mod=mod/smux-$tag.mod
cp go.mod "$mod"
rm -f "mod/smux-$tag.sum"
go mod edit -modfile="$mod" -require="github.com/xtaci/smux@$tag"
go mod tidy -modfile="$mod"
echo "wrote $mod and mod/smux-$tag.sum"
