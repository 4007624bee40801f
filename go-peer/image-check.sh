#!/usr/bin/env bash
# Smoke-test a go-peer image: run it as a server with its port published on
# 127.0.0.1 and do ECHO and SOURCE runs through it from the host
# with the host's loadgen, then stop it (SIGTERM) and check exit status 0.
#
#   ./image-check.sh [IMAGE]     default: smuxref/go-peer:<tag go.mod pins>
set -euo pipefail
cd "$(dirname "$0")"
source mod/lib.sh
default=$(smux_default_tag)
image=${1:-smuxref/go-peer:$default}

./build.sh "$default" >/dev/null
loadgen=bin/smux-peer-$default

cid=$(docker run -d -p 127.0.0.1::7000 "$image" --role server --addr 0.0.0.0:7000)
trap 'docker rm -f "$cid" >/dev/null 2>&1 || true' EXIT
for _ in $(seq 50); do
	docker logs "$cid" 2>/dev/null | grep -q '^LISTENING ' && break
	sleep 0.1
done
echo "container: $(docker logs "$cid" 2>/dev/null | head -1)"
addr=$(docker port "$cid" 7000/tcp | grep '^127\.0\.0\.1:' | head -1)
echo "published: $addr"

"$loadgen" loadgen --addr "$addr" --mode echo-latency --count 200 --size 1000 --timeout 20
"$loadgen" loadgen --addr "$addr" --mode bulk --direction download --streams 4 --bytes 4000000 --timeout 20

docker stop "$cid" >/dev/null
status=$(docker inspect -f '{{.State.ExitCode}}' "$cid")
echo "exit status after docker stop: $status"
[[ $status == 0 ]]
echo "image OK: $image"
