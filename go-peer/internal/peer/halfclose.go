package peer

import (
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/xtaci/smux"
)

// closeWriter is Stream.CloseWrite (xtaci/smux v1.5.55 and later): a
// half-close that sends FIN and keeps the stream readable.
type closeWriter interface{ CloseWrite() error }

// unsupportedReply answers HALFCLOSE on a tag without CloseWrite
// (CONTRACT.md rule 19), so the suite reports the case unsupported.
const unsupportedReply = "UNSUPPORTED\n"

// noneReply answers RESULT when there is no record to give.
const noneReply = "NONE\n"

// halfCloses pairs the HALFCLOSE streams of one session with the RESULT
// commands that ask for them. Either side may come first, so both create
// the entry for an id on demand.
type halfCloses struct {
	mu      sync.Mutex
	entries map[uint32]*halfCloseEntry
}

// halfCloseEntry is one HALFCLOSE stream: RESULT closes start to let it
// read; it closes done once record holds what it read.
type halfCloseEntry struct {
	startOnce sync.Once
	start     chan struct{}
	done      chan struct{}
	record    string // "<count> <sha256 hex>\n", or NONE when reading failed
}

func (h *halfCloses) entry(id uint32) *halfCloseEntry {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.entries == nil {
		h.entries = make(map[uint32]*halfCloseEntry)
	}
	e, ok := h.entries[id]
	if !ok {
		e = &halfCloseEntry{start: make(chan struct{}), done: make(chan struct{})}
		h.entries[id] = e
	}
	return e
}

func (h *halfCloses) forget(id uint32, e *halfCloseEntry) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.entries[id] == e {
		delete(h.entries, id)
	}
}

// halfClose runs HALFCLOSE: the entry exists before the FIN is sent (so a
// RESULT sent after that FIN arrived finds it), nothing is read until
// RESULT starts it, so the remote's data and FIN are both waiting in the
// stream when reading begins: exactly where v1.5.54-v1.5.57 drop the data.
func (a *app) halfClose(st *smux.Stream) error {
	cw, ok := any(st).(closeWriter)
	if !ok {
		_, err := io.WriteString(st, unsupportedReply)
		return err
	}
	e := a.half.entry(st.ID())
	defer close(e.done)
	e.record = noneReply
	if err := cw.CloseWrite(); err != nil {
		return fmt.Errorf("CloseWrite: %w", err)
	}
	select {
	case <-e.start:
	case <-a.done:
		return errors.New("session ended before RESULT")
	}
	record, err := digest(st)
	if err != nil {
		return err
	}
	e.record = record
	return nil
}

// result runs RESULT id ms: start the HALFCLOSE stream id reading and
// write its record, or NONE if it has none within d.
func (a *app) result(st *smux.Stream, id uint32, d time.Duration) error {
	e := a.half.entry(id)
	e.startOnce.Do(func() { close(e.start) })
	t := time.NewTimer(d)
	defer t.Stop()
	reply := noneReply
	select {
	case <-e.done:
		reply = e.record
		a.half.forget(id, e)
	case <-t.C:
	case <-a.done:
		return errors.New("session ended during RESULT")
	}
	_, err := io.WriteString(st, reply)
	return err
}
