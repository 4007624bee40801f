package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/xtaci/smux"

	"smuxref/go-peer/internal/smuxcompat"
)

// TestMain lets the test binary act as the peer: the process tests below
// re-run it with SMUX_PEER_TEST_EXEC=1, so they test exactly this build.
func TestMain(m *testing.M) {
	if os.Getenv("SMUX_PEER_TEST_EXEC") == "1" {
		main()
		return
	}
	os.Exit(m.Run())
}

// peerProc is a running peer process.
type peerProc struct {
	cmd    *exec.Cmd
	stdout *bufio.Reader
	stderr *strings.Builder
	exited chan struct{}
}

// startProc starts bin (or this test binary as the peer) with args.
func startProc(t *testing.T, bin string, args ...string) *peerProc {
	t.Helper()
	cmd := exec.Command(bin, args...)
	if bin == "" {
		cmd = exec.Command(os.Args[0], args...)
		cmd.Env = append(os.Environ(), "SMUX_PEER_TEST_EXEC=1")
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	p := &peerProc{cmd: cmd, stdout: bufio.NewReader(out), stderr: &strings.Builder{}, exited: make(chan struct{})}
	cmd.Stderr = p.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { cmd.Wait(); close(p.exited) }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-p.exited
	})
	return p
}

func (p *peerProc) line(t *testing.T) string {
	t.Helper()
	got := make(chan string, 1)
	go func() {
		l, _ := p.stdout.ReadString('\n')
		got <- l
	}()
	select {
	case l := <-got:
		return l
	case <-time.After(10 * time.Second):
		t.Fatalf("no line on stdout after 10 s; stderr: %s", p.stderr)
		return ""
	}
}

// wait returns the exit status, failing if the process runs longer than d.
func (p *peerProc) wait(t *testing.T, d time.Duration) int {
	t.Helper()
	select {
	case <-p.exited:
		return p.cmd.ProcessState.ExitCode()
	case <-time.After(d):
		t.Fatalf("peer still running after %v; stderr: %s", d, p.stderr)
		return -1
	}
}

// startServer starts a server peer and returns it with its address.
func startServer(t *testing.T, bin string, args ...string) (*peerProc, string) {
	t.Helper()
	p := startProc(t, bin, append([]string{"--role", "server", "--addr", "127.0.0.1:0"}, args...)...)
	l := p.line(t)
	addr, ok := strings.CutPrefix(strings.TrimSuffix(l, "\n"), "LISTENING ")
	if !ok {
		t.Fatalf("first stdout line %q, want LISTENING HOST:PORT; stderr: %s", l, p.stderr)
	}
	return p, addr
}

func dial(t *testing.T, addr string) *smux.Session {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	sess, err := smux.Client(conn, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sess.Close() })
	return sess
}

// request sends a command line and returns everything read until EOF.
func request(t *testing.T, sess *smux.Session, line string) []byte {
	t.Helper()
	st, err := sess.OpenStream()
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, err := st.Write([]byte(line + "\n")); err != nil {
		t.Fatal(err)
	}
	st.SetReadDeadline(time.Now().Add(10 * time.Second))
	data, err := io.ReadAll(st)
	if smuxcompat.IsEOF(err) { // wrapped by v1.2.x-v1.4.x
		err = nil
	}
	if err != nil {
		t.Fatalf("%s: %v", line, err)
	}
	return data
}

func TestServerStopsOnSIGTERM(t *testing.T) {
	p, addr := startServer(t, "")
	sess := dial(t, addr)
	if n := len(request(t, sess, "SOURCE 1000")); n != 1000 {
		t.Fatalf("SOURCE 1000 gave %d bytes", n)
	}
	// A stream in HOLD and an idle session must not delay the exit.
	st, err := sess.OpenStream()
	if err != nil {
		t.Fatal(err)
	}
	st.Write([]byte("HOLD 60000\n"))
	dial(t, addr)
	time.Sleep(100 * time.Millisecond)

	start := time.Now()
	p.cmd.Process.Signal(syscall.SIGTERM)
	if code := p.wait(t, 5*time.Second); code != 0 {
		t.Fatalf("exit status %d after SIGTERM, want 0; stderr: %s", code, p.stderr)
	}
	if rest, _ := io.ReadAll(p.stdout); len(rest) != 0 {
		t.Fatalf("stdout after LISTENING: %q", rest)
	}
	t.Logf("exited %v after SIGTERM", time.Since(start))
}

func TestClientExitsWhenSessionEnds(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	p := startProc(t, "", "--role", "client", "--addr", ln.Addr().String())
	conn, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	sess, err := smux.Server(conn, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	if l := p.line(t); l != "CONNECTED\n" {
		t.Fatalf("stdout %q, want CONNECTED", l)
	}
	if n := len(request(t, sess, "SOURCE 5")); n != 5 {
		t.Fatalf("SOURCE 5 gave %d bytes", n)
	}
	st, _ := sess.OpenStream()
	st.Write([]byte("EXIT\n"))
	if code := p.wait(t, 5*time.Second); code != 0 {
		t.Fatalf("exit status %d after EXIT, want 0; stderr: %s", code, p.stderr)
	}
}

func TestRefusedOptionsExit127(t *testing.T) {
	for _, args := range [][]string{
		{"--role", "server", "--addr", "127.0.0.1:0", "--frobnicate"},
		{"--role", "server", "--addr", "127.0.0.1:0", "--max-frame-size", "big"},
		{"--role", "server", "--addr", "127.0.0.1:0", "--max-frame-size", "65536"},
		{"loadgen", "--addr", "127.0.0.1:1", "--mode", "sideways"},
	} {
		p := startProc(t, "", args...)
		if code := p.wait(t, 5*time.Second); code != 127 || p.stderr.Len() == 0 {
			t.Errorf("%v: exit %d, stderr %q; want 127 and a reason", args, code, p.stderr)
		}
	}
}

// TestBuiltTags builds the peer for each pinned xtaci/smux tag with
// build.sh and checks INFO and the tag-specific exit 127 refusals. It needs
// the tags in the module cache (or the Go module proxy).
func TestBuiltTags(t *testing.T) {
	if testing.Short() {
		t.Skip("builds three binaries")
	}
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("build.sh needs bash")
	}
	dir := t.TempDir()
	for _, tc := range []struct {
		tag      string
		versions string
		refused  [][]string
	}{
		{"v1.5.57", "[1 2]", [][]string{{"--version", "3"}}},
		{"v1.5.58", "[1 2]", [][]string{{"--max-stream-buffer", "0"}}},
		{"v1.0.7", "[1]", [][]string{{"--version", "2"}, {"--no-keepalive"}, {"--max-stream-buffer", "65536"}}},
	} {
		t.Run(tc.tag, func(t *testing.T) {
			build := exec.Command("bash", filepath.Join("..", "..", "build.sh"), tc.tag, dir)
			if out, err := build.CombinedOutput(); err != nil {
				t.Fatalf("build.sh %s: %v\n%s", tc.tag, err, out)
			}
			bin := filepath.Join(dir, "smux-peer-"+tc.tag)

			p, addr := startServer(t, bin, "--version", "1")
			var info struct {
				SmuxVersion      string         `json:"smux_version"`
				ProtocolVersions []int          `json:"protocol_versions"`
				Config           map[string]any `json:"config"`
			}
			data := request(t, dial(t, addr), "INFO")
			if err := json.Unmarshal(data, &info); err != nil {
				t.Fatalf("INFO %q: %v", data, err)
			}
			if info.SmuxVersion != tc.tag || fmt.Sprint(info.ProtocolVersions) != tc.versions {
				t.Fatalf("INFO %s", data)
			}
			t.Logf("INFO %s", strings.TrimSpace(string(data)))
			p.cmd.Process.Signal(syscall.SIGTERM)
			if code := p.wait(t, 5*time.Second); code != 0 {
				t.Fatalf("exit %d after SIGTERM", code)
			}

			for _, extra := range tc.refused {
				p := startProc(t, bin, append([]string{"--role", "server", "--addr", "127.0.0.1:0"}, extra...)...)
				if code := p.wait(t, 5*time.Second); code != 127 {
					t.Errorf("%v: exit %d, want 127", extra, code)
				}
				t.Logf("%v -> 127: %s", extra, strings.TrimSpace(p.stderr.String()))
			}
		})
	}
}
