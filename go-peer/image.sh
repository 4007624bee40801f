#!/usr/bin/env bash
# Build the go-peer image for one xtaci/smux tag from a prebuilt binary
# (no registry needed: the image is FROM scratch).
#
#   ./image.sh [TAG [IMAGE]]     defaults: the tag go.mod pins, smuxref/go-peer:TAG
set -euo pipefail
cd "$(dirname "$0")"
source mod/lib.sh
tag=${1:-$(smux_default_tag)}
image=${2:-smuxref/go-peer:$tag}

ctx=$(mktemp -d)
trap 'rm -rf "$ctx"' EXIT
./build.sh "$tag" "$ctx" >/dev/null
cp Dockerfile "$ctx/"
docker build --quiet --build-arg SMUX_TAG="$tag" -t "$image" "$ctx" >/dev/null
echo "$image"
