package peer

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"smuxref/go-peer/internal/smuxcompat"
)

// TestHalfCloseResult runs CONTRACT.md rule 19 with raw frames: HALFCLOSE
// on stream 1 (its FIN comes back at once), data and FIN on it, then
// RESULT 1 on stream 3; the record depends on the tag (halfCloseKeepsData).
func TestHalfCloseResult(t *testing.T) {
	for _, v := range testVersions {
		t.Run(fmt.Sprintf("v%d", v), func(t *testing.T) {
			srv, err := Listen("127.0.0.1:0", testConfig(t, v), testLogger())
			if err != nil {
				t.Fatal(err)
			}
			go srv.Serve()
			t.Cleanup(func() { srv.Close(time.Second) })

			c := dialRaw(t, srv.Addr().String(), v)
			payload := bytes.Repeat([]byte("0123456789"), 100)
			c.send(cmdSYN, 1, nil)
			c.send(cmdPSH, 1, []byte("HALFCLOSE\n"))
			first := string(c.collect(1)) // "" then FIN, or UNSUPPORTED
			supported, keeps, known := halfCloseKeepsData()
			if first == unsupportedReply {
				if known && supported {
					t.Fatalf("%s answered UNSUPPORTED but has CloseWrite", smuxcompat.Tag())
				}
				return
			}
			if first != "" || (known && !supported) {
				t.Fatalf("%s: HALFCLOSE sent %q before its FIN", smuxcompat.Tag(), first)
			}
			c.send(cmdPSH, 1, payload)
			c.send(cmdFIN, 1, nil)
			c.send(cmdSYN, 3, nil)
			c.send(cmdPSH, 3, []byte("RESULT 1 5000\n"))
			reply := string(c.collect(3))
			kept := fmt.Sprintf("%d %s\n", len(payload), sha256hex(payload))
			dropped := fmt.Sprintf("0 %s\n", sha256hex(nil))
			switch {
			case known && keeps && reply != kept:
				t.Fatalf("%s: RESULT %q, want %q", smuxcompat.Tag(), reply, kept)
			case known && !keeps && reply != dropped:
				t.Fatalf("%s: RESULT %q, want %q (the tag drops the unread data)", smuxcompat.Tag(), reply, dropped)
			case !known && reply != kept && reply != dropped:
				t.Fatalf("RESULT %q, want %q or %q", reply, kept, dropped)
			}
		})
	}
}

// TestResultWithoutHalfClose: RESULT for an id that is no HALFCLOSE stream
// answers NONE once its time is up.
func TestResultWithoutHalfClose(t *testing.T) {
	r := startPeer(t, "server", testConfig(t, testVersions[0]))
	start := time.Now()
	st := r.command(t, "RESULT 99 100", nil)
	if got := string(readAll(t, st)); got != noneReply {
		t.Fatalf("got %q, want %q", got, noneReply)
	}
	if time.Since(start) < 100*time.Millisecond {
		t.Fatalf("NONE after %v, before the 100 ms", time.Since(start))
	}
}
