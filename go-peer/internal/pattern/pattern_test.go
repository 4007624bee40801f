package pattern

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"testing"
)

func TestWriteAndCheck(t *testing.T) {
	for _, n := range []int64{0, 1, 250, 251, 252, int64(len(block)), int64(len(block)) + 1, 100_000} {
		var buf bytes.Buffer
		if err := Write(&buf, n); err != nil {
			t.Fatal(err)
		}
		if int64(buf.Len()) != n {
			t.Fatalf("n=%d: wrote %d bytes", n, buf.Len())
		}
		for i, b := range buf.Bytes() {
			if b != byte(i%251) {
				t.Fatalf("n=%d: byte %d is %d", n, i, b)
			}
		}
		var c Checker
		data := buf.Bytes()
		for len(data) > 0 { // check in uneven pieces
			k := min(len(data), 777)
			if err := c.Check(data[:k]); err != nil {
				t.Fatal(err)
			}
			data = data[k:]
		}
		sum := sha256.Sum256(buf.Bytes())
		if got := Digest(n); got != hex.EncodeToString(sum[:]) {
			t.Fatalf("n=%d: digest %s", n, got)
		}
	}
}

func TestCheckDetectsMismatch(t *testing.T) {
	c := Checker{Offset: 251}
	if err := c.Check([]byte{0, 1, 3}); err == nil {
		t.Fatal("mismatch not detected")
	}
}
