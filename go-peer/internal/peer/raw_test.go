package peer

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"testing"
	"time"

	"smuxref/go-peer/internal/smuxcompat"
)

// Frame commands of the smux wire format.
const (
	cmdSYN = 0
	cmdFIN = 1
	cmdPSH = 2
	cmdNOP = 3
	cmdUPD = 4
)

// rawConn speaks smux frames directly, without the library, so that a test
// can half-close a stream without the library's own half-close behaviour.
type rawConn struct {
	t       *testing.T
	conn    net.Conn
	version byte
}

func dialRaw(t *testing.T, addr string, version int) *rawConn {
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	return &rawConn{t: t, conn: conn, version: byte(version)}
}

func (c *rawConn) send(cmd byte, sid uint32, data []byte) {
	for first := true; first || len(data) > 0; first = false {
		// At most 32768 bytes per frame: v1.0.7 (and other old tags) panic
		// on a frame longer than 65527 (uint16 overflow in readFrame).
		n := min(len(data), 32768)
		hdr := make([]byte, 8, 8+n)
		hdr[0], hdr[1] = c.version, cmd
		binary.LittleEndian.PutUint16(hdr[2:], uint16(n))
		binary.LittleEndian.PutUint32(hdr[4:], sid)
		if _, err := c.conn.Write(append(hdr, data[:n]...)); err != nil {
			c.t.Fatal(err)
		}
		data = data[n:]
	}
}

// collect reads frames until FIN for sid and returns the PSH data for sid.
func (c *rawConn) collect(sid uint32) []byte {
	var data bytes.Buffer
	hdr := make([]byte, 8)
	for {
		if _, err := io.ReadFull(c.conn, hdr); err != nil {
			c.t.Fatalf("reading a frame header: %v (data so far %q)", err, data.Bytes())
		}
		body := make([]byte, binary.LittleEndian.Uint16(hdr[2:]))
		if _, err := io.ReadFull(c.conn, body); err != nil {
			c.t.Fatal(err)
		}
		if binary.LittleEndian.Uint32(hdr[4:]) != sid {
			continue
		}
		switch hdr[1] {
		case cmdPSH:
			data.Write(body)
		case cmdFIN:
			return data.Bytes()
		}
	}
}

func sha256hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// TestSinkRaw sends "SINK\n" + data + FIN as raw frames and checks the
// reply that precedes the peer's FIN, where the tag can write after FIN
// (see replyAfterFIN).
func TestSinkRaw(t *testing.T) {
	for _, v := range testVersions {
		for _, line := range []string{"SINK", "HOLD 200"} {
			t.Run(fmt.Sprintf("v%d/%s", v, line), func(t *testing.T) {
				srv, err := Listen("127.0.0.1:0", testConfig(t, v), testLogger())
				if err != nil {
					t.Fatal(err)
				}
				go srv.Serve()
				t.Cleanup(func() { srv.Close(time.Second) })

				c := dialRaw(t, srv.Addr().String(), v)
				payload := bytes.Repeat([]byte("abcdefghij"), 10_000)
				start := time.Now()
				c.send(cmdSYN, 1, nil)
				c.send(cmdPSH, 1, append([]byte(line+"\n"), payload[:100]...))
				c.send(cmdPSH, 1, payload[100:])
				c.send(cmdFIN, 1, nil)
				reply := string(c.collect(1))
				full := fmt.Sprintf("%d %s\n", len(payload), sha256hex(payload))
				wantReply, known := replyAfterFIN()
				switch {
				case known && wantReply && reply != full:
					t.Fatalf("%s: reply %q, want %q", smuxcompat.Tag(), reply, full)
				case known && !wantReply && reply != "":
					t.Fatalf("%s: reply %q, want none (this tag cannot write after FIN)", smuxcompat.Tag(), reply)
				case !known && reply != full && reply != "":
					t.Fatalf("reply %q, want %q or none", reply, full)
				case !known:
					t.Logf("tag %s: reply %q", smuxcompat.Tag(), reply)
				}
				if line == "HOLD 200" && time.Since(start) < 200*time.Millisecond {
					t.Fatalf("HOLD 200 answered after %v", time.Since(start))
				}
			})
		}
	}
}
