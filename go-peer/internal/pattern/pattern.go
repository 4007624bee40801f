// Package pattern produces and checks the SOURCE byte pattern of the peer
// contract: byte i of a stream is i % 251.
package pattern

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
)

// Period is the length after which the pattern repeats.
const Period = 251

// block holds whole periods, so any write of a prefix of it that starts at
// a multiple of Period continues the pattern correctly.
var block = func() []byte {
	b := make([]byte, Period*128) // 32128 bytes
	for i := range b {
		b[i] = byte(i % Period)
	}
	return b
}()

// Write writes the first n bytes of the pattern to w.
func Write(w io.Writer, n int64) error {
	for n > 0 {
		chunk := block
		if n < int64(len(chunk)) {
			chunk = chunk[:n]
		}
		if _, err := w.Write(chunk); err != nil {
			return err
		}
		n -= int64(len(chunk))
	}
	return nil
}

// Digest returns the lowercase hex SHA-256 of the first n pattern bytes.
func Digest(n int64) string {
	h := sha256.New()
	_ = Write(h, n) // hash.Hash never fails
	return hex.EncodeToString(h.Sum(nil))
}

// Checker verifies that consecutive reads carry the pattern.
type Checker struct {
	Offset int64 // number of bytes checked so far
}

// Check verifies p as the continuation of the bytes checked so far.
func (c *Checker) Check(p []byte) error {
	for len(p) > 0 {
		start := int(c.Offset % Period)
		k := min(len(p), len(block)-start)
		if !bytes.Equal(p[:k], block[start:start+k]) {
			for i := range k {
				if p[i] != block[start+i] {
					return fmt.Errorf("pattern mismatch at byte %d: got %d, want %d", c.Offset+int64(i), p[i], block[start+i])
				}
			}
		}
		c.Offset += int64(k)
		p = p[k:]
	}
	return nil
}
