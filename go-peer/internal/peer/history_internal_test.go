package peer

import "testing"

func TestParseTag(t *testing.T) {
	a, ok1 := parseTag("v1.5.9")
	b, ok2 := parseTag("v1.5.10")
	if !ok1 || !ok2 || a >= b {
		t.Fatalf("v1.5.9 -> %d, v1.5.10 -> %d", a, b)
	}
	for _, bad := range []string{"unknown", "1.5.57", "v1.5", "v1.5.x", "(devel)"} {
		if _, ok := parseTag(bad); ok {
			t.Errorf("%q parsed", bad)
		}
	}
}
