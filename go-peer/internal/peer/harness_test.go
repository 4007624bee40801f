package peer

import (
	"context"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/xtaci/smux"

	"smuxref/go-peer/internal/smuxcompat"
)

// remote is the test's side of a session with a peer under test: the
// harness opens streams and sends command lines, as the conformance suite
// would.
type remote struct {
	sess *smux.Session
	addr string // server role: the peer's address (to dial it again)
	done <-chan struct{}
}

// testVersions are the protocol versions the compiled-in tag implements.
var testVersions = smuxcompat.ProtocolVersions()

// legacyTag is true for v1.0-v1.4 builds (Config without Version).
const legacyTag = !smuxcompat.HasVersion

func testLogger() *log.Logger {
	if os.Getenv("SMUX_PEER_TEST_LOG") != "" {
		return log.New(os.Stderr, "peer under test: ", log.Lmicroseconds)
	}
	return log.New(io.Discard, "", 0)
}

func testConfig(t *testing.T, version int, extra ...string) *smux.Config {
	t.Helper()
	args := append([]string{"--role", "server", "--addr", "127.0.0.1:0", "--version", fmt.Sprint(version)}, extra...)
	if legacyTag {
		args = append([]string{"--role", "server", "--addr", "127.0.0.1:0"}, extra...)
	}
	o, err := ParseArgs(args)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := smuxcompat.NewConfig(o.Smux)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// startPeer runs the peer in role with cfg and returns the harness's
// session with it. In the server role the harness is the smux client; in
// the client role the harness listens and the peer dials it.
func startPeer(t *testing.T, role string, cfg *smux.Config) *remote {
	t.Helper()
	if role == RoleServer {
		srv, err := Listen("127.0.0.1:0", cfg, testLogger())
		if err != nil {
			t.Fatal(err)
		}
		go srv.Serve()
		t.Cleanup(func() { srv.Close(time.Second) })
		r := dialPeer(t, srv.Addr().String(), cfg)
		r.addr = srv.Addr().String()
		return r
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	connected := make(chan struct{})
	go func() {
		defer close(done)
		err := RunClient(ctx, ln.Addr().String(), cfg, testLogger(), func() { close(connected) }, nil, nil)
		if err != nil {
			t.Errorf("RunClient: %v", err)
		}
	}()
	t.Cleanup(func() { cancel(); <-done })
	conn, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	sess, err := smux.Server(conn, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sess.Close() })
	<-connected
	return &remote{sess: sess, done: done}
}

func dialPeer(t *testing.T, addr string, cfg *smux.Config) *remote {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	sess, err := smux.Client(conn, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sess.Close() })
	return &remote{sess: sess}
}

// command opens a stream and sends line plus payload in one write.
func (r *remote) command(t *testing.T, line string, payload []byte) *smux.Stream {
	t.Helper()
	st, err := r.sess.OpenStream()
	if err != nil {
		t.Fatalf("OpenStream: %v", err)
	}
	t.Cleanup(func() { st.Close() })
	if _, err := st.Write(append([]byte(line+"\n"), payload...)); err != nil {
		t.Fatalf("writing %q: %v", line, err)
	}
	return st
}

// readAll reads st until EOF, failing the test after a timeout.
func readAll(t *testing.T, st *smux.Stream) []byte {
	t.Helper()
	st.SetReadDeadline(time.Now().Add(10 * time.Second))
	data, err := io.ReadAll(st)
	if smuxcompat.IsEOF(err) { // a wrapped EOF (v1.2.x-v1.4.x)
		err = nil
	}
	if err != nil {
		t.Fatalf("stream %d: reading until EOF: %v (after %d bytes)", st.ID(), err, len(data))
	}
	return data
}

// readLine reads one '\n'-terminated line (without over-reading).
func readLine(t *testing.T, st *smux.Stream) string {
	t.Helper()
	st.SetReadDeadline(time.Now().Add(10 * time.Second))
	line, err := ReadCommandLine(st) // same byte-at-a-time reader
	if err != nil {
		t.Fatalf("stream %d: reading a line: %v", st.ID(), err)
	}
	return line
}

// accept waits for a stream the peer opens.
func (r *remote) accept(t *testing.T) *smux.Stream {
	t.Helper()
	r.sess.SetDeadline(time.Now().Add(10 * time.Second))
	st, err := r.sess.AcceptStream()
	if err != nil {
		t.Fatalf("AcceptStream: %v", err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// forEachSetup runs f for both roles and every protocol version of the tag.
func forEachSetup(t *testing.T, f func(t *testing.T, role string, version int)) {
	for _, role := range []string{RoleServer, RoleClient} {
		for _, v := range testVersions {
			t.Run(fmt.Sprintf("%s/v%d", role, v), func(t *testing.T) { f(t, role, v) })
		}
	}
}

func waitClosed(t *testing.T, what string, ch <-chan struct{}) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(10 * time.Second):
		t.Fatalf("%s did not end", what)
	}
}

// openedIDs parses "OPENED id1 id2 ...".
func openedIDs(t *testing.T, line string) []string {
	t.Helper()
	f := strings.Fields(line)
	if len(f) == 0 || f[0] != "OPENED" {
		t.Fatalf("got %q, want OPENED ids", line)
	}
	return f[1:]
}

// halfClose sends FIN on st but keeps reading possible. Tags before
// v1.5.55 have no Stream.CloseWrite; the test is skipped there.
func halfClose(t *testing.T, st *smux.Stream) {
	t.Helper()
	cw, ok := any(st).(interface{ CloseWrite() error })
	if !ok {
		t.Skip("this xtaci/smux tag has no Stream.CloseWrite (added in v1.5.55)")
	}
	if err := cw.CloseWrite(); err != nil {
		t.Fatalf("CloseWrite: %v", err)
	}
}
