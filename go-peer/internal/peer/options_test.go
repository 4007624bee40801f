package peer

import (
	"errors"
	"strings"
	"testing"
	"time"

	"smuxref/go-peer/internal/smuxcompat"
)

func TestParseArgsAccepts(t *testing.T) {
	o, err := ParseArgs(strings.Fields("--role server --addr 127.0.0.1:0 --version 1 " +
		"--keepalive-interval 1500 --keepalive-timeout 4000 --max-frame-size 1024 " +
		"--max-receive-buffer 65536 --max-stream-buffer 4096"))
	if err != nil {
		t.Fatal(err)
	}
	s := o.Smux
	if o.Role != "server" || o.Addr != "127.0.0.1:0" || *s.Version != 1 ||
		*s.KeepAliveInterval != 1500*time.Millisecond || *s.KeepAliveTimeout != 4*time.Second ||
		*s.MaxFrameSize != 1024 || *s.MaxReceiveBuffer != 65536 || *s.MaxStreamBuffer != 4096 || s.NoKeepAlive {
		t.Fatalf("parsed %+v", o)
	}
	o, err = ParseArgs(strings.Fields("--role client --addr [::1]:7000 --no-keepalive"))
	if err != nil || !o.Smux.NoKeepAlive || o.Smux.Version != nil || o.Smux.MaxFrameSize != nil {
		t.Fatalf("parsed %+v, %v", o, err)
	}
}

func TestParseArgsRefuses(t *testing.T) {
	for _, args := range []string{
		"--role server --addr 127.0.0.1:0 --bogus 1",          // unknown option
		"--role server --addr 127.0.0.1:0 --max-frame-size x", // malformed value
		"--role server --addr 127.0.0.1:0 --version two",
		"--role server --addr 127.0.0.1:0 --keepalive-interval -5",
		"--role server --addr 127.0.0.1:0 --keepalive-timeout 1.5",
		"--role server --addr 127.0.0.1:0 --no-keepalive=maybe",
		"--role server --addr 127.0.0.1:0 extra",
		"--role server --addr 127.0.0.1:0 --max-frame-size",
		"--role bridge --addr 127.0.0.1:0",
		"--role server",
		"--addr 127.0.0.1:0",
		"--role client --addr localhost",
		"--role client --addr localhost:http",
		"--role client --addr 127.0.0.1:65536",
		"--role client --addr 127.0.0.1:-1",
		"--help",
	} {
		_, err := ParseArgs(strings.Fields(args))
		var ue *UsageError
		if !errors.As(err, &ue) || ue.Msg == "" {
			t.Errorf("%q: got %v, want a UsageError", args, err)
		}
	}
}

// TestNewConfig checks what the compiled-in tag accepts; every refusal is
// exit status 127 in Main.
func TestNewConfig(t *testing.T) {
	parse := func(args string) smuxcompat.Options {
		o, err := ParseArgs(strings.Fields("--role server --addr 127.0.0.1:0 " + args))
		if err != nil {
			t.Fatal(err)
		}
		return o.Smux
	}
	var unsupported *smuxcompat.UnsupportedError
	var invalid *smuxcompat.ConfigError

	for args, supported := range map[string]bool{
		"--version 2":              smuxcompat.HasVersion,
		"--no-keepalive":           smuxcompat.HasKeepAliveDisabled,
		"--max-stream-buffer 1024": smuxcompat.HasMaxStreamBuffer,
	} {
		_, err := smuxcompat.NewConfig(parse(args))
		if !supported && !errors.As(err, &unsupported) {
			t.Errorf("%s: got %v, want UnsupportedError", args, err)
		}
		if supported && err != nil {
			t.Errorf("%s: %v", args, err)
		}
	}
	for _, args := range []string{
		"--version 3", "--max-frame-size 65536", "--max-frame-size 0",
		"--keepalive-interval 0", "--keepalive-interval 5000 --keepalive-timeout 1000",
		"--max-receive-buffer 0",
	} {
		_, err := smuxcompat.NewConfig(parse(args))
		if !errors.As(err, &invalid) && !(legacyTag && errors.As(err, &unsupported)) {
			t.Errorf("%s: got %v, want a VerifyConfig error", args, err)
		}
	}
	cfg, err := smuxcompat.NewConfig(parse("--max-frame-size 65535 --keepalive-interval 100 --keepalive-timeout 100"))
	if err != nil || cfg.MaxFrameSize != 65535 || cfg.KeepAliveTimeout != 100*time.Millisecond {
		t.Fatalf("valid boundaries: %+v, %v", cfg, err)
	}
}

func TestMainRefusesWith127(t *testing.T) {
	cases := []string{
		"--role server --addr 127.0.0.1:0 --unknown-option",
		"--role server --addr 127.0.0.1:0 --max-frame-size 70000",
	}
	if !smuxcompat.HasVersion {
		cases = append(cases, "--role server --addr 127.0.0.1:0 --version 2")
	} else {
		cases = append(cases, "--role server --addr 127.0.0.1:0 --version 3")
	}
	if !smuxcompat.HasKeepAliveDisabled {
		cases = append(cases, "--role server --addr 127.0.0.1:0 --no-keepalive")
	}
	if !smuxcompat.HasMaxStreamBuffer {
		cases = append(cases, "--role server --addr 127.0.0.1:0 --max-stream-buffer 4096")
	}
	for _, args := range cases {
		var stdout, stderr strings.Builder
		if code := Main(strings.Fields(args), &stdout, &stderr); code != ExitUnsupported {
			t.Errorf("%q: exit %d, want 127", args, code)
		}
		if stdout.Len() != 0 || stderr.Len() == 0 {
			t.Errorf("%q: stdout %q, stderr %q: want the reason on stderr only", args, stdout.String(), stderr.String())
		}
	}
}
