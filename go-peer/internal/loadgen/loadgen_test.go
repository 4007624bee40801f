package loadgen

import (
	"io"
	"log"
	"strings"
	"testing"
	"time"

	"smuxref/go-peer/internal/peer"
	"smuxref/go-peer/internal/smuxcompat"
)

func startPeer(t *testing.T, version string) string {
	t.Helper()
	o, err := peer.ParseArgs([]string{"--role", "server", "--addr", "127.0.0.1:0", "--version", version})
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := smuxcompat.NewConfig(o.Smux)
	if err != nil {
		t.Skip(err) // protocol 2 on a legacy tag
	}
	srv, err := peer.Listen(o.Addr, cfg, log.New(io.Discard, "", 0))
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve()
	t.Cleanup(func() { srv.Close(time.Second) })
	return srv.Addr().String()
}

func run(t *testing.T, args string) *Result {
	t.Helper()
	p, err := ParseArgs(strings.Fields(args))
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := smuxcompat.NewConfig(p.Smux)
	if err != nil {
		t.Fatal(err)
	}
	res, err := Run(p, cfg)
	if err != nil {
		t.Fatalf("%s: %v", args, err)
	}
	return res
}

func TestLoadgen(t *testing.T) {
	for _, v := range []string{"1", "2"} {
		addr := startPeer(t, v)
		common := "--addr " + addr + " --version " + v + " --timeout 30 "

		res := run(t, common+"--mode bulk --direction download --streams 3 --bytes 1000001")
		if res.Bytes != 1000001 || res.MiBPerSec <= 0 || res.Direction != "download" {
			t.Fatalf("download: %+v", res)
		}

		res = run(t, common+"--mode echo-latency --streams 4 --size 100 --count 50")
		if res.Count != 50 || res.Bytes != 5000 || res.LatencyStats == nil ||
			res.P50Us <= 0 || res.P99Us < res.P50Us || res.MaxUs < res.P99Us {
			t.Fatalf("echo-latency: %+v %+v", res, res.LatencyStats)
		}

		if !HasCloseWrite() {
			continue // tags before v1.5.55 cannot end an upload
		}
		res = run(t, common+"--mode bulk --streams 4 --bytes 3000000")
		if res.Bytes != 3000000 || *res.RepliesVerified+*res.RepliesLost != 4 {
			t.Fatalf("upload: %+v", res)
		}
	}
}

func TestParseArgsRefuses(t *testing.T) {
	for _, args := range []string{
		"", "--addr x:1 --mode fast", "--addr x:1 --direction sideways", "--addr x:1 --streams 0",
		"--addr x:1 --size 0", "--addr x:1 --count 0", "--addr x:1 --timeout 0", "--addr x:1 extra",
	} {
		if _, err := ParseArgs(strings.Fields(args)); err == nil {
			t.Errorf("%q accepted", args)
		}
	}
}

func TestSplit(t *testing.T) {
	got := split(10, 4)
	if len(got) != 4 || got[0] != 3 || got[1] != 3 || got[2] != 2 || got[3] != 2 {
		t.Fatalf("split(10, 4) = %v", got)
	}
}
