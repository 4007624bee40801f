package peer

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/xtaci/smux"

	"smuxref/go-peer/internal/pattern"
	"smuxref/go-peer/internal/smuxcompat"
)

// Exchange is N:LINE of CONTRACT.md rule 20: send LINE, then N pattern bytes,
// half-close, read to EOF.
type Exchange struct {
	N    int64
	Line string
}

// ParseExchange parses "N:LINE"; LINE must itself be a valid command line.
func ParseExchange(spec string) (Exchange, error) {
	count, line, ok := strings.Cut(spec, ":")
	if !ok {
		return Exchange{}, fmt.Errorf("exchange %q is not N:LINE", spec)
	}
	n, err := parseCount(count, 1<<40)
	if err != nil {
		return Exchange{}, fmt.Errorf("exchange N: %w", err)
	}
	if len(line)+1 > MaxCommandLine {
		return Exchange{}, fmt.Errorf("exchange LINE longer than %d bytes", MaxCommandLine-1)
	}
	if _, err := ParseCommand(line); err != nil {
		return Exchange{}, fmt.Errorf("exchange LINE: %w", err)
	}
	return Exchange{N: n, Line: line}, nil
}

func (e Exchange) String() string { return strconv.FormatInt(e.N, 10) + ":" + e.Line }

// ExchangeList is the repeatable --run option (rule 22).
type ExchangeList []Exchange

func (l *ExchangeList) String() string { return fmt.Sprint(*l) }

func (l *ExchangeList) Set(s string) error {
	e, err := ParseExchange(s)
	if err != nil {
		return err
	}
	*l = append(*l, e)
	return nil
}

// errNoHalfClose: the tag's Stream has no CloseWrite, so rule 20's FIN
// cannot be sent while the stream is still read.
var errNoHalfClose = errors.New("this smux tag has no Stream.CloseWrite (no half-close)")

// closeWrite half-closes st when the tag can (CloseWrite, v1.5.57 and later).
func closeWrite(st *smux.Stream) error {
	if cw, ok := any(st).(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return errNoHalfClose
}

// ExchangeResult is what rule 20 reports: the stream and what was read on it.
type ExchangeResult struct {
	ID     uint32
	Count  int64
	SHA256 string
	Err    error
}

// Line renders the result as rule 21/22 print it (without newline).
func (r ExchangeResult) Line() string {
	if r.Err != nil {
		id := "-"
		if r.ID != 0 {
			id = strconv.FormatUint(uint64(r.ID), 10)
		}
		return fmt.Sprintf("RAN %s ERROR %s", id, strings.ReplaceAll(r.Err.Error(), "\n", " "))
	}
	return fmt.Sprintf("RAN %d %d %s", r.ID, r.Count, r.SHA256)
}

// runExchange opens a stream and runs e on it. Without half-close (older
// tags) the stream is read to EOF without the FIN; remotes waiting for EOF
// then wait in vain, which is the tag's behaviour under test.
func runExchange(sess *smux.Session, e Exchange) ExchangeResult {
	st, err := sess.OpenStream()
	if err != nil {
		return ExchangeResult{Err: fmt.Errorf("OpenStream: %w", err)}
	}
	defer st.Close()
	res := ExchangeResult{ID: st.ID()}
	sent := make(chan error, 1)
	go func() {
		if _, err := io.WriteString(st, e.Line+"\n"); err != nil {
			sent <- err
			return
		}
		if err := pattern.Write(st, e.N); err != nil {
			sent <- err
			return
		}
		sent <- closeWrite(st)
	}()
	h := sha256.New()
	buf := make([]byte, 32*1024)
	for {
		k, err := st.Read(buf)
		h.Write(buf[:k])
		res.Count += int64(k)
		if smuxcompat.IsEOF(err) {
			break
		}
		if err != nil {
			res.Err = fmt.Errorf("reading after %d bytes: %w", res.Count, err)
			return res
		}
	}
	if err := <-sent; err != nil && !errors.Is(err, errNoHalfClose) {
		res.Err = fmt.Errorf("sending: %w", err)
		return res
	}
	res.SHA256 = hex.EncodeToString(h.Sum(nil))
	return res
}

// runAll runs every exchange at once and returns the results in order.
func runAll(sess *smux.Session, list []Exchange) []ExchangeResult {
	results := make([]ExchangeResult, len(list))
	done := make(chan struct{})
	for i, e := range list {
		go func(i int, e Exchange) {
			results[i] = runExchange(sess, e)
			done <- struct{}{}
		}(i, e)
	}
	for range list {
		<-done
	}
	return results
}
