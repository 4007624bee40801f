package loadgen

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync/atomic"
	"time"

	"github.com/xtaci/smux"

	"smuxref/go-peer/internal/pattern"
	"smuxref/go-peer/internal/smuxcompat"
)

// closeWriter is Stream.CloseWrite, present from xtaci/smux v1.5.55 on.
type closeWriter interface{ CloseWrite() error }

// HasCloseWrite tells whether the compiled-in tag can half-close a stream,
// which bulk upload needs to end its SINK data.
func HasCloseWrite() bool {
	_, ok := any((*smux.Stream)(nil)).(closeWriter)
	return ok
}

// runBulk moves p.Bytes over p.Streams streams: upload sends "SINK\n" and
// the pattern, then half-closes and checks the "<count> <sha256>" reply;
// download sends "SOURCE n\n" and checks the pattern until EOF.
func runBulk(sess *smux.Session, p Params, res *Result) error {
	res.Direction = p.Direction
	shares := split(p.Bytes, p.Streams)
	digests := map[int64]string{}
	if p.Direction == "upload" {
		for _, n := range shares { // before the clock starts
			if _, ok := digests[n]; !ok {
				digests[n] = pattern.Digest(n)
			}
		}
	}

	var verified, lost atomic.Int64
	start := time.Now()
	err := parallel(p.Streams, func(i int) error {
		st, err := sess.OpenStream()
		if err != nil {
			return fmt.Errorf("OpenStream: %w", err)
		}
		defer st.Close()
		if p.Direction == "upload" {
			err = upload(st, shares[i], digests[shares[i]])
			switch {
			case errors.Is(err, errReplyLost):
				lost.Add(1)
				err = nil
			case err == nil:
				verified.Add(1)
			}
		} else {
			err = download(st, shares[i])
		}
		if err != nil {
			return fmt.Errorf("stream %d: %w", st.ID(), err)
		}
		return nil
	})
	elapsed := time.Since(start)
	if err != nil {
		return err
	}
	res.Bytes = p.Bytes
	res.Seconds = elapsed.Seconds()
	res.MiBPerSec = mibPerSec(p.Bytes, elapsed)
	if p.Direction == "upload" {
		res.RepliesVerified, res.RepliesLost = ptr(verified.Load()), ptr(lost.Load())
	}
	return nil
}

// errReplyLost is a SINK reply that never reached the reader: EOF came with
// no byte of it. xtaci/smux v1.5.55-v1.5.58 cause this themselves: when the
// remote's FIN arrives on a stream this side has already CloseWrite'd, the
// session drops the stream and the data still buffered in it (the reply).
var errReplyLost = errors.New("SINK reply lost: EOF before any byte of it")

func ptr[T any](v T) *T { return &v }

func upload(st *smux.Stream, n int64, digest string) error {
	cw := any(st).(closeWriter) // Run checked HasCloseWrite
	if _, err := io.WriteString(st, "SINK\n"); err != nil {
		return fmt.Errorf("writing SINK: %w", err)
	}
	if err := pattern.Write(st, n); err != nil {
		return fmt.Errorf("writing data: %w", err)
	}
	if err := cw.CloseWrite(); err != nil {
		return fmt.Errorf("CloseWrite: %w", err)
	}
	reply, err := bufio.NewReaderSize(st, 128).ReadString('\n')
	if reply == "" && smuxcompat.IsEOF(err) {
		return errReplyLost
	}
	if err != nil {
		return fmt.Errorf("reading the SINK reply (got %q): %w", reply, err)
	}
	if want := fmt.Sprintf("%d %s\n", n, digest); reply != want {
		return fmt.Errorf("SINK reply %q, want %q", strings.TrimSpace(reply), strings.TrimSpace(want))
	}
	return nil
}

func download(st *smux.Stream, n int64) error {
	if _, err := fmt.Fprintf(st, "SOURCE %d\n", n); err != nil {
		return fmt.Errorf("writing SOURCE: %w", err)
	}
	var check pattern.Checker
	buf := make([]byte, 64*1024)
	for {
		k, err := st.Read(buf)
		if k > 0 {
			if cerr := check.Check(buf[:k]); cerr != nil {
				return cerr
			}
		}
		if smuxcompat.IsEOF(err) {
			break
		}
		if err != nil {
			return fmt.Errorf("reading after %d bytes: %w", check.Offset, err)
		}
	}
	if check.Offset != n {
		return fmt.Errorf("SOURCE %d delivered %d bytes", n, check.Offset)
	}
	return nil
}
