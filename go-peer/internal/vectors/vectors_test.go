package vectors

import (
	"encoding/hex"
	"testing"
	"time"

	"smuxref/go-peer/internal/smuxcompat"
)

func header(ver, cmd byte, length uint16, sid uint32) []byte {
	return []byte{ver, cmd, byte(length), byte(length >> 8), byte(sid), byte(sid >> 8), byte(sid >> 16), byte(sid >> 24)}
}

// Every tag delivers the bytes of a well-formed stream; the error names are
// only checked on tags whose AcceptStream reports how the session ended
// (v1.0.x reports "broken pipe" for every end).
func TestReplay(t *testing.T) {
	syn := header(1, 0, 0, 3)
	psh := append(header(1, 2, 5, 3), "hello"...)
	cases := []struct {
		name    string
		data    []byte
		outcome string
	}{
		{"syn and data", append(append([]byte{}, syn...), psh...), Accepted},
		{"wrong version", append(append([]byte{}, syn...), header(9, 0, 0, 5)...), InvalidProtocol},
		{"cut payload", append(append([]byte{}, syn...), psh[:10]...), UnexpectedEOF},
	}
	legacy := len(smuxcompat.ProtocolVersions()) == 1
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res, err := Replay(1, "server", 32768, c.data, 3*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			if got := res.Streams["3"]; got != hex.EncodeToString([]byte("hello")) && c.outcome == Accepted {
				t.Errorf("stream 3 delivered %q, want hello", got)
			}
			if !legacy && res.Outcome != c.outcome {
				t.Errorf("outcome %q, want %q", res.Outcome, c.outcome)
			}
		})
	}
}

func TestOutcomeWalksWrappedErrors(t *testing.T) {
	wrapped := causer{cause: causer{cause: errString("invalid protocol version")}}
	if got := outcome(wrapped); got != InvalidProtocol {
		t.Errorf("outcome(%v) = %q, want %q", wrapped, got, InvalidProtocol)
	}
}

type errString string

func (e errString) Error() string { return string(e) }

type causer struct{ cause error }

func (c causer) Error() string { return "wrapped: " + c.cause.Error() }
func (c causer) Cause() error  { return c.cause }
