package peer

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log"
	"strconv"
	"strings"
	"time"

	"github.com/xtaci/smux"

	"smuxref/go-peer/internal/pattern"
	"smuxref/go-peer/internal/smuxcompat"
)

// app runs the peer's application protocol on the streams of one session.
type app struct {
	sess *smux.Session
	info []byte        // the INFO reply, ending in '\n'
	done chan struct{} // closed when the session has ended
	log  *log.Logger
	half halfCloses // the session's HALFCLOSE streams, for RESULT
}

// handleAccepted serves a stream the remote opened: it reads the command
// line, then runs the command.
func (a *app) handleAccepted(st *smux.Stream) {
	line, err := ReadCommandLine(st)
	if err != nil {
		a.logf(st, "no command line (%v); closing the stream", err)
		st.Close()
		return
	}
	cmd, err := ParseCommand(line)
	if err != nil {
		a.logf(st, "bad command line %q (%v); closing the stream", line, err)
		st.Close()
		return
	}
	a.run(st, cmd)
}

// run executes cmd on st and closes st when done (except EXIT, which
// closes the whole session).
func (a *app) run(st *smux.Stream, cmd *Command) {
	var err error
	switch cmd.Name {
	case "ECHO":
		err = echo(st)
	case "SINK":
		err = sink(st)
	case "SOURCE":
		err = pattern.Write(st, cmd.N)
	case "HOLD":
		err = a.hold(st, time.Duration(cmd.N)*time.Millisecond)
	case "OPEN":
		err = a.open(st, int(cmd.N), cmd.Sub)
	case "RUN":
		_, err = io.WriteString(st, runExchange(a.sess, *cmd.Run).Line()+"\n")
	case "INFO":
		_, err = st.Write(a.info)
	case "HALFCLOSE":
		err = a.halfClose(st)
	case "RESULT":
		err = a.result(st, cmd.ID, time.Duration(cmd.N)*time.Millisecond)
	case "CLOSE":
	case "EXIT":
		a.sess.Close()
		return
	}
	if err != nil {
		a.logf(st, "%s: %v", cmd, err)
	}
	st.Close()
}

// echo writes back every byte read until EOF.
func echo(st *smux.Stream) error {
	buf := make([]byte, 32*1024)
	for {
		n, err := st.Read(buf)
		if n > 0 {
			if _, werr := st.Write(buf[:n]); werr != nil {
				return fmt.Errorf("writing the echo: %w", werr)
			}
		}
		if smuxcompat.IsEOF(err) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("reading: %w", err)
		}
	}
}

// sink reads until EOF, then writes "<count> <sha256 hex>\n".
func sink(st *smux.Stream) error {
	record, err := digest(st)
	if err != nil {
		return err
	}
	if _, err := io.WriteString(st, record); err != nil {
		return fmt.Errorf("writing the SINK reply: %w", err)
	}
	return nil
}

// digest reads until EOF and returns "<count> <sha256 hex>\n" of what it read.
func digest(st *smux.Stream) (string, error) {
	h := sha256.New()
	buf := make([]byte, 32*1024)
	var n int64
	for {
		k, err := st.Read(buf)
		h.Write(buf[:k])
		n += int64(k)
		if smuxcompat.IsEOF(err) {
			break
		}
		if err != nil {
			return "", fmt.Errorf("reading after %d bytes: %w", n, err)
		}
	}
	return fmt.Sprintf("%d %x\n", n, h.Sum(nil)), nil
}

// hold reads nothing for d, then acts as SINK.
func (a *app) hold(st *smux.Stream, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-a.done:
		return errors.New("session ended during HOLD")
	}
	return sink(st)
}

// open opens k streams toward the remote, runs sub on each, and replies
// "OPENED id1 id2 ...\n" on st.
func (a *app) open(st *smux.Stream, k int, sub *Command) error {
	var reply strings.Builder
	reply.WriteString("OPENED")
	for i := 0; i < k; i++ {
		ns, err := a.sess.OpenStream()
		if err != nil {
			return fmt.Errorf("OpenStream %d of %d: %w", i+1, k, err)
		}
		reply.WriteString(" " + strconv.FormatUint(uint64(ns.ID()), 10))
		go a.run(ns, sub)
	}
	reply.WriteString("\n")
	_, err := io.WriteString(st, reply.String())
	return err
}

func (a *app) logf(st *smux.Stream, format string, args ...any) {
	a.log.Printf("stream %d: "+format, append([]any{st.ID()}, args...)...)
}
