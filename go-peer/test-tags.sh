#!/usr/bin/env bash
# Run the Go tests against one or more xtaci/smux tags.
#
#   ./test-tags.sh                      v1.5.58 v1.5.57 v1.0.7
#   ./test-tags.sh v1.5.28 v1.4.8       any tag with mod/smux-TAG.mod
#   GOTESTFLAGS="-race -count=3" ./test-tags.sh
#
# Each run also names the tag to the tests (-X ...smuxcompat.tagOverride),
# which plain `go test` binaries cannot know, so tag-specific expectations
# (internal/peer/history_test.go) are checked strictly.
set -euo pipefail
cd "$(dirname "$0")"
source mod/lib.sh

tags=("$@")
[[ ${#tags[@]} -gt 0 ]] || tags=(v1.5.58 v1.5.57 v1.0.7)
failed=()
for tag in "${tags[@]}"; do
	smux_select "$tag"
	echo "=== xtaci/smux $tag (build tags: ${gotags:-none})"
	# shellcheck disable=SC2086  # GOTESTFLAGS is a list of flags
	if ! go test "${modflag[@]}" -tags "$gotags" \
		-ldflags "-X smuxref/go-peer/internal/smuxcompat.tagOverride=$tag" \
		${GOTESTFLAGS:-} ./...; then
		failed+=("$tag")
	fi
done
if [[ ${#failed[@]} -gt 0 ]]; then
	echo "FAILED for: ${failed[*]}"
	exit 1
fi
echo "all passed: ${tags[*]}"
