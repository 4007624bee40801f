// Package vectors replays the codec vectors of vectors/frames.json through a
// real xtaci/smux session and reports what the library made of each one: how
// the session ended and which bytes it delivered on every stream it accepted.
// vectors/generate_frames.py merges the report into the "go" field of each
// vector, so that field can be regenerated for any pinned tag.
//
//	smux-peer vectors [--timeout SECONDS] FILE...   (JSON report on stdout)
//
// Each vector is replayed in a child process of this binary: some tags panic
// on some inputs (v1.0.7 on a LEN of 65528 or more), in a goroutine of the
// library where no recover can reach, and that panic is the tag's verdict.
package vectors

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/xtaci/smux"

	"smuxref/go-peer/internal/smuxcompat"
)

// Outcome names, shared with vectors/generate_frames.py (expected_go_outcome).
const (
	Accepted        = "accepted"            // io.EOF: every frame read, clean end
	InvalidProtocol = "ErrInvalidProtocol"  // the session refused a header
	UnexpectedEOF   = "io.ErrUnexpectedEOF" // the bytes ended inside a frame
	Timeout         = "timeout"             // the session neither ended nor failed
	Panic           = "panic"               // the library crashed the process
)

// Result is the report for one vector.
type Result struct {
	Outcome string            `json:"outcome"`
	Streams map[string]string `json:"streams"` // stream id -> hex of the bytes read
}

type vector struct {
	TcID int    `json:"tcId"`
	Hex  string `json:"hex"`
}

type group struct {
	Version      int      `json:"version"`
	Role         string   `json:"receiverRole"`
	MaxFrameSize int      `json:"receiverMaxFrameSize"`
	Tests        []vector `json:"tests"`
}

type document struct {
	TestGroups []group `json:"testGroups"`
}

// Main runs the subcommand and returns the process exit status: 0, 2 for a
// usage or input error, 1 when a vector could not be replayed at all.
func Main(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("smux-peer vectors", flag.ContinueOnError)
	fs.SetOutput(stderr)
	timeout := fs.Float64("timeout", 3, "seconds a session may take to end before it counts as a timeout")
	one := fs.Bool("one", false, "internal: replay the vector VERSION,ROLE,MAXFRAMESIZE,HEX read from stdin")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *one {
		spec, err := io.ReadAll(os.Stdin)
		if err != nil {
			fmt.Fprintln(stderr, err)
			return 2
		}
		return replayOne(strings.TrimSpace(string(spec)), secs(*timeout), stdout, stderr)
	}
	if fs.NArg() == 0 {
		fmt.Fprintln(stderr, "usage: smux-peer vectors [--timeout SECONDS] FILE...")
		return 2
	}
	report := map[string]Result{}
	skipped := 0
	for _, path := range fs.Args() {
		doc, err := load(path)
		if err != nil {
			fmt.Fprintln(stderr, err)
			return 2
		}
		for _, g := range doc.TestGroups {
			if !supported(g.Version) {
				// A tag that predates protocol 2 has no verdict on its vectors.
				skipped += len(g.Tests)
				continue
			}
			for _, v := range g.Tests {
				if _, err := hex.DecodeString(v.Hex); err != nil {
					fmt.Fprintf(stderr, "%s: tcId %d: hex: %v\n", path, v.TcID, err)
					return 2
				}
				spec := fmt.Sprintf("%d,%s,%d,%s", g.Version, g.Role, g.MaxFrameSize, v.Hex)
				res, err := isolated(spec, *timeout)
				if err != nil {
					fmt.Fprintf(stderr, "%s: tcId %d: %v\n", path, v.TcID, err)
					return 1
				}
				report[strconv.Itoa(v.TcID)] = res
			}
		}
	}
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", " ")
	if err := enc.Encode(report); err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	fmt.Fprintf(stderr, "xtaci/smux %s: %d vectors replayed, %d skipped (protocol version not in this tag)\n",
		smuxcompat.Tag(), len(report), skipped)
	return 0
}

// isolated replays one vector in a child process and turns a panic of the
// library into the Panic outcome with the panic's first line.
func isolated(spec string, timeout float64) (Result, error) {
	self, err := os.Executable()
	if err != nil {
		return Result{}, err
	}
	var out, errOut strings.Builder
	cmd := exec.Command(self, "vectors", "--timeout", strconv.FormatFloat(timeout, 'f', -1, 64), "--one")
	cmd.Stdin = strings.NewReader(spec)
	cmd.Stdout, cmd.Stderr = &out, &errOut
	runErr := cmd.Run()
	if first, _, _ := strings.Cut(errOut.String(), "\n"); strings.HasPrefix(first, "panic: ") {
		return Result{Outcome: Panic + ": " + strings.TrimPrefix(first, "panic: "), Streams: map[string]string{}}, nil
	}
	if runErr != nil {
		return Result{}, fmt.Errorf("replay child: %v: %s", runErr, strings.TrimSpace(errOut.String()))
	}
	var res Result
	if err := json.Unmarshal([]byte(out.String()), &res); err != nil {
		return Result{}, fmt.Errorf("replay child printed %q: %v", out.String(), err)
	}
	return res, nil
}

func replayOne(spec string, timeout time.Duration, stdout, stderr io.Writer) int {
	parts := strings.SplitN(spec, ",", 4)
	if len(parts) != 4 {
		fmt.Fprintln(stderr, "--one: want VERSION,ROLE,MAXFRAMESIZE,HEX on stdin")
		return 2
	}
	version, err1 := strconv.Atoi(parts[0])
	maxFrameSize, err2 := strconv.Atoi(parts[2])
	data, err3 := hex.DecodeString(parts[3])
	if err := errors.Join(err1, err2, err3); err != nil {
		fmt.Fprintf(stderr, "--one: %v\n", err)
		return 2
	}
	res, err := Replay(version, parts[1], maxFrameSize, data, timeout)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	if err := json.NewEncoder(stdout).Encode(res); err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	return 0
}

func load(path string) (document, error) {
	var doc document
	raw, err := os.ReadFile(path)
	if err != nil {
		return doc, err
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		return doc, fmt.Errorf("%s: %w", path, err)
	}
	return doc, nil
}

func supported(version int) bool {
	for _, v := range smuxcompat.ProtocolVersions() {
		if v == version {
			return true
		}
	}
	return false
}

func secs(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }

// Replay writes data to a fresh session of the given version and role over
// loopback TCP, half-closes, and reports how the session ended. TCP rather
// than net.Pipe: the writing side keeps reading after its half-close, so a
// version 2 session can still send the UPD frames its reads cause.
func Replay(version int, role string, maxFrameSize int, data []byte, timeout time.Duration) (Result, error) {
	local, remote, err := tcpPair()
	if err != nil {
		return Result{}, err
	}
	defer local.Close()
	defer remote.Close()
	sess, err := newSession(version, role, maxFrameSize, local)
	if err != nil {
		return Result{}, err
	}
	defer sess.Close()
	go func() { _, _ = io.Copy(io.Discard, remote) }()
	go func() {
		_, _ = remote.Write(data)
		_ = remote.CloseWrite()
	}()
	_ = sess.SetDeadline(time.Now().Add(timeout))
	res := Result{Streams: map[string]string{}}
	var streams []*smux.Stream
	// AcceptStream chooses at random between a queued stream and the session's
	// sticky error, so ask until the error has come many times in a row.
	for misses := 0; misses < 64; {
		st, err := sess.AcceptStream()
		if err != nil {
			res.Outcome = outcome(err)
			misses++
			continue
		}
		misses = 0
		streams = append(streams, st)
	}
	for _, st := range streams {
		res.Streams[strconv.FormatUint(uint64(st.ID()), 10)] = hex.EncodeToString(drain(st, timeout))
	}
	return res, nil
}

func newSession(version int, role string, maxFrameSize int, conn net.Conn) (*smux.Session, error) {
	// Keepalive far beyond the replay's deadline rather than disabled: the
	// oldest tags have no KeepAliveDisabled field.
	interval, limit := 10*time.Minute, 30*time.Minute
	o := smuxcompat.Options{KeepAliveInterval: &interval, KeepAliveTimeout: &limit, MaxFrameSize: &maxFrameSize}
	if version != 1 {
		o.Version = &version
	}
	cfg, err := smuxcompat.NewConfig(o)
	if err != nil {
		return nil, err
	}
	switch role {
	case "server":
		return smux.Server(conn, cfg)
	case "client":
		return smux.Client(conn, cfg)
	}
	return nil, fmt.Errorf("receiverRole %q: must be server or client", role)
}

func drain(st *smux.Stream, timeout time.Duration) []byte {
	_ = st.SetReadDeadline(time.Now().Add(timeout))
	var got []byte
	buf := make([]byte, 70000)
	for {
		n, err := st.Read(buf)
		got = append(got, buf[:n]...)
		if err != nil {
			return got
		}
	}
}

// outcome names the error that ended AcceptStream. The error values differ
// between tags (v1.0.x has only a message, v1.4.x wraps with pkg/errors), so
// the chain is walked and compared by identity first, then by message.
func outcome(err error) string {
	if smuxcompat.IsEOF(err) {
		return Accepted
	}
	for e := err; e != nil; e = cause(e) {
		switch {
		case errors.Is(e, io.ErrUnexpectedEOF):
			return UnexpectedEOF
		case strings.HasPrefix(e.Error(), "invalid protocol"):
			return InvalidProtocol
		case e.Error() == "timeout" || e.Error() == "i/o timeout":
			return Timeout
		}
	}
	return "other: " + err.Error()
}

func cause(err error) error {
	if c, ok := err.(interface{ Cause() error }); ok && c.Cause() != err {
		return c.Cause()
	}
	return errors.Unwrap(err)
}

var listener net.Listener

func tcpPair() (net.Conn, *net.TCPConn, error) {
	if listener == nil {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, nil, err
		}
		listener = ln
	}
	remote, err := net.Dial("tcp", listener.Addr().String())
	if err != nil {
		return nil, nil, err
	}
	local, err := listener.Accept()
	if err != nil {
		remote.Close()
		return nil, nil, err
	}
	return local, remote.(*net.TCPConn), nil
}
