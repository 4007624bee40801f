package peer

import (
	"context"
	"fmt"
	"log"
	"net"
	"time"

	"github.com/xtaci/smux"
)

// RunClient dials addr, runs one smux client session and serves the streams
// the remote opens. connected is called once the session exists. It returns
// nil when the session ends (or ctx is cancelled), an error if it could not
// be set up.
// With exchanges (rule 22) it runs them, reports each through report, and
// closes the session once all have ended.
func RunClient(ctx context.Context, addr string, cfg *smux.Config, logger *log.Logger, connected func(), runs []Exchange, report func(string)) error {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("dial %s: %w", addr, err)
	}
	sess, err := smux.Client(conn, cfg)
	if err != nil {
		conn.Close()
		return fmt.Errorf("smux.Client: %w", err)
	}
	connected()

	ended := make(chan struct{})
	go func() {
		defer close(ended)
		serveSession(sess, cfg, logger)
	}()
	if len(runs) > 0 {
		go func() {
			for _, r := range runAll(sess, runs) {
				report(r.Line())
			}
			report("DONE")
			sess.Close()
		}()
	}
	select {
	case <-ended:
	case <-ctx.Done():
		closeWithin(sess, 2*time.Second)
	}
	return nil
}

// closeWithin closes sess, giving up waiting after d.
func closeWithin(sess *smux.Session, d time.Duration) {
	done := make(chan struct{})
	go func() {
		sess.Close()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(d):
	}
}
