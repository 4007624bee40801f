// Package loadgen is the benchmark client of the go-peer: it dials a server
// that follows the peer contract and measures bulk throughput (SINK/SOURCE)
// or echo latency (ECHO), printing one JSON line of results.
package loadgen

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/xtaci/smux"

	"smuxref/go-peer/internal/smuxcompat"
)

// Params is the parsed loadgen command line.
type Params struct {
	Addr      string
	Mode      string // bulk | echo-latency
	Direction string // upload | download (bulk)
	Streams   int
	Bytes     int64 // bulk: total payload over all streams
	Size      int   // echo-latency: bytes per round trip
	Count     int   // echo-latency: round trips over all streams
	Timeout   time.Duration
	Smux      smuxcompat.Options
}

// Result is printed as one JSON line. Latencies are in microseconds.
type Result struct {
	Mode             string                `json:"mode"`
	Direction        string                `json:"direction,omitempty"`
	SmuxVersion      string                `json:"smux_version"`
	Addr             string                `json:"addr"`
	Streams          int                   `json:"streams"`
	Bytes            int64                 `json:"bytes"`
	Seconds          float64               `json:"seconds"`
	MiBPerSec        float64               `json:"mib_per_s"`
	Size             int                   `json:"size,omitempty"`
	Count            int                   `json:"count,omitempty"`
	RoundTripsPerSec float64               `json:"round_trips_per_s,omitempty"`
	RepliesVerified  *int64                `json:"replies_verified,omitempty"` // bulk upload
	RepliesLost      *int64                `json:"replies_lost,omitempty"`     // bulk upload, see errReplyLost
	*LatencyStats                          // echo-latency only
	Config           smuxcompat.ConfigInfo `json:"config"`
}

const usage = `smux-peer loadgen --addr HOST:PORT [--version 1|2]
    [--mode bulk|echo-latency] [--streams N]
    bulk:         [--bytes B] [--direction upload|download]
    echo-latency: [--size S] [--count C]
    [--timeout SECONDS] [--keepalive-interval MS --keepalive-timeout MS | --no-keepalive]
    [--max-frame-size N] [--max-receive-buffer N] [--max-stream-buffer N]`

// ParseArgs parses the loadgen command line (after "loadgen").
func ParseArgs(args []string) (Params, error) {
	p := Params{Mode: "bulk", Direction: "upload", Streams: 1, Bytes: 64 << 20, Size: 64, Count: 1000}
	fs := flag.NewFlagSet("loadgen", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&p.Addr, "addr", "", "server HOST:PORT")
	fs.StringVar(&p.Mode, "mode", p.Mode, "bulk or echo-latency")
	fs.StringVar(&p.Direction, "direction", p.Direction, "bulk: upload (SINK) or download (SOURCE)")
	fs.IntVar(&p.Streams, "streams", p.Streams, "number of concurrent streams")
	fs.Int64Var(&p.Bytes, "bytes", p.Bytes, "bulk: total payload bytes over all streams")
	fs.IntVar(&p.Size, "size", p.Size, "echo-latency: bytes per round trip")
	fs.IntVar(&p.Count, "count", p.Count, "echo-latency: round trips over all streams")
	timeout := fs.Float64("timeout", 300, "give up after this many seconds")
	p.Smux.Register(fs)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return p, fmt.Errorf("usage:\n%s", usage)
		}
		return p, err
	}
	p.Timeout = time.Duration(*timeout * float64(time.Second))
	switch {
	case fs.NArg() > 0:
		return p, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	case p.Addr == "":
		return p, errors.New("missing --addr HOST:PORT")
	case p.Mode != "bulk" && p.Mode != "echo-latency":
		return p, fmt.Errorf("--mode must be bulk or echo-latency, not %q", p.Mode)
	case p.Direction != "upload" && p.Direction != "download":
		return p, fmt.Errorf("--direction must be upload or download, not %q", p.Direction)
	case p.Streams < 1:
		return p, errors.New("--streams must be at least 1")
	case p.Bytes < 0:
		return p, errors.New("--bytes must not be negative")
	case p.Size < 1:
		return p, errors.New("--size must be at least 1")
	case p.Count < 1:
		return p, errors.New("--count must be at least 1")
	case p.Timeout <= 0:
		return p, errors.New("--timeout must be positive")
	}
	return p, nil
}

// Main runs loadgen and returns the exit status: 0 success, 1 the run
// failed, 127 the command line was refused.
func Main(args []string, stdout, stderr io.Writer) int {
	p, err := ParseArgs(args)
	if err != nil {
		fmt.Fprintf(stderr, "smux-peer loadgen: %v\n", err)
		return 127
	}
	cfg, err := smuxcompat.NewConfig(p.Smux)
	if err != nil {
		fmt.Fprintf(stderr, "smux-peer loadgen: %v\n", err)
		return 127
	}
	res, err := Run(p, cfg)
	if err != nil {
		fmt.Fprintf(stderr, "smux-peer loadgen: %v\n", err)
		return 1
	}
	if res.RepliesLost != nil && *res.RepliesLost > 0 {
		fmt.Fprintf(stderr, "smux-peer loadgen: warning: %d of %d SINK replies lost to the xtaci/smux %s half-close bug (see README); their data was sent but not verified\n",
			*res.RepliesLost, p.Streams, res.SmuxVersion)
	}
	line, _ := json.Marshal(res)
	fmt.Fprintf(stdout, "%s\n", line)
	return 0
}

// Run dials the server, runs the benchmark and closes the session.
func Run(p Params, cfg *smux.Config) (*Result, error) {
	if p.Mode == "bulk" && p.Direction == "upload" && !HasCloseWrite() {
		return nil, fmt.Errorf("bulk upload needs Stream.CloseWrite, which xtaci/smux %s lacks (v1.5.55+ has it); use --direction download", smuxcompat.Tag())
	}
	conn, err := net.DialTimeout("tcp", p.Addr, 10*time.Second)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", p.Addr, err)
	}
	sess, err := smux.Client(conn, cfg)
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("smux.Client: %w", err)
	}
	defer sess.Close()
	watchdog := time.AfterFunc(p.Timeout, func() { sess.Close() })
	defer watchdog.Stop()

	res := &Result{
		Mode: p.Mode, SmuxVersion: smuxcompat.Tag(), Addr: p.Addr,
		Streams: p.Streams, Config: smuxcompat.DescribeConfig(cfg),
	}
	if p.Mode == "bulk" {
		err = runBulk(sess, p, res)
	} else {
		err = runEcho(sess, p, res)
	}
	if err != nil && !watchdog.Stop() {
		return nil, fmt.Errorf("timed out after %v: %w", p.Timeout, err)
	}
	return res, err
}

// split divides total into n shares that differ by at most one.
func split(total int64, n int) []int64 {
	shares := make([]int64, n)
	for i := range shares {
		shares[i] = total / int64(n)
		if int64(i) < total%int64(n) {
			shares[i]++
		}
	}
	return shares
}

// parallel runs f(0..n-1) concurrently and returns the first error.
func parallel(n int, f func(i int) error) error {
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		go func() { errs <- f(i) }()
	}
	var first error
	for i := 0; i < n; i++ {
		if err := <-errs; err != nil && first == nil {
			first = err
		}
	}
	return first
}

func mibPerSec(bytes int64, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(bytes) / (1 << 20) / d.Seconds()
}
