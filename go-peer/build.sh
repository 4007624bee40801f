#!/usr/bin/env bash
# Build a static smux-peer binary against one tag of github.com/xtaci/smux.
#
#   ./build.sh [TAG [OUTDIR]]        defaults: the tag go.mod pins, ./bin
#   ./build.sh v1.0.7 /tmp/peers     -> /tmp/peers/smux-peer-v1.0.7
#
# The tag go.mod pins (v1.5.58) builds from go.mod/go.sum; any other tag
# from mod/smux-TAG.mod + .sum (make them with mod/add-tag.sh TAG). Nothing
# is fetched once the module cache holds the tag (GOPROXY=off works), and
# the output is byte-for-byte reproducible.
set -euo pipefail
cd "$(dirname "$0")"
source mod/lib.sh

tag=${1:-$(smux_default_tag)}
outdir=${2:-bin}
smux_select "$tag"

mkdir -p "$outdir"
out="$outdir/smux-peer-$tag"
CGO_ENABLED=0 go build "${modflag[@]}" -tags "$gotags" -trimpath -buildvcs=false \
	-ldflags "-s -w -buildid=" -o "$out" ./cmd/smux-peer

# The binary must name the tag it was built against (INFO reads this).
built=$(go version -m "$out" | awk -v m="$smux_module" '$1 == "dep" && $2 == m { print $3 }')
if [[ $built != "$tag" ]]; then
	echo "build.sh: $out was built against xtaci/smux '$built', not $tag" >&2
	exit 1
fi
echo "$(cd "$(dirname "$out")" && pwd)/$(basename "$out") (xtaci/smux $tag, build tags: ${gotags:-none})"
