package peer

import (
	"io"
	"log"
	"testing"
	"time"

	"github.com/xtaci/smux"
)

func TestListenReportsRequestedFamily(t *testing.T) {
	for addr, wantIP := range map[string]string{"0.0.0.0:0": "0.0.0.0", "127.0.0.1:0": "127.0.0.1"} {
		srv, err := Listen(addr, smux.DefaultConfig(), log.New(io.Discard, "", 0))
		if err != nil {
			t.Fatal(err)
		}
		if got := srv.Addr(); got.IP.String() != wantIP || got.Port == 0 {
			t.Errorf("Listen(%s) bound %v", addr, got)
		}
		srv.Close(time.Second)
	}
	if n := listenNetwork("[::1]:0"); n != "tcp6" {
		t.Errorf("[::1]:0 -> %s", n)
	}
	if n := listenNetwork("localhost:0"); n != "tcp" {
		t.Errorf("localhost:0 -> %s", n)
	}
}
