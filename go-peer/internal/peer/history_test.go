package peer

import (
	"strconv"
	"strings"

	"smuxref/go-peer/internal/smuxcompat"
)

// Behaviour of xtaci/smux tags as observed with this suite. Tests are strict
// where the compiled-in tag is known (build information, or -ldflags -X
// ...smuxcompat.tagOverride=TAG as test-tags.sh passes) and lenient
// otherwise (plain `go test` binaries carry no dependency versions).

// replyAfterFIN tells whether a stream can still write after the remote's
// FIN, i.e. whether SINK can answer:
//
//	v1.0.7-v1.2.11   no: Stream.Read closes the stream (sends FIN) on EOF
//	v1.3.6-v1.5.24   yes
//	v1.5.28-v1.5.53  no: Stream.Write returns io.EOF once FIN has arrived
//	v1.5.55-v1.5.58  yes (half-close)
//
// known is false for an unknown tag or one between the observed ranges.
func replyAfterFIN() (want, known bool) {
	v, ok := parseTag(smuxcompat.Tag())
	switch {
	case !ok:
		return false, false
	case v <= tagNum(1, 2, 11):
		return false, true
	case v >= tagNum(1, 3, 6) && v <= tagNum(1, 5, 24):
		return true, true
	case v >= tagNum(1, 5, 28) && v <= tagNum(1, 5, 53):
		return false, true
	case v >= tagNum(1, 5, 55):
		return true, true
	}
	return false, false
}

func tagNum(major, minor, patch int) int { return major<<20 | minor<<10 | patch }

// parseTag turns "v1.5.57" into a comparable number.
func parseTag(tag string) (int, bool) {
	parts := strings.Split(strings.TrimPrefix(tag, "v"), ".")
	if len(parts) != 3 || !strings.HasPrefix(tag, "v") {
		return 0, false
	}
	var n [3]int
	for i, p := range parts {
		v, err := strconv.Atoi(p)
		if err != nil || v < 0 || v >= 1<<10 {
			return 0, false
		}
		n[i] = v
	}
	return tagNum(n[0], n[1], n[2]), true
}

// halfCloseKeepsData tells what RESULT reports for a HALFCLOSE stream whose
// data and FIN both arrived before it read (CONTRACT.md rule 19):
//
//	before v1.5.55   no CloseWrite: HALFCLOSE answers UNSUPPORTED
//	v1.5.55-v1.5.57  the data is dropped when the FIN completes the close
//	v1.5.58          the data is kept until read
func halfCloseKeepsData() (supported, keeps, known bool) {
	v, ok := parseTag(smuxcompat.Tag())
	switch {
	case !ok:
		return false, false, false
	case v < tagNum(1, 5, 55):
		return false, false, true
	case v <= tagNum(1, 5, 57):
		return true, false, true
	}
	return true, true, v == tagNum(1, 5, 58)
}
