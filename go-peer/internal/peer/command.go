package peer

import (
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"time"

	"smuxref/go-peer/internal/smuxcompat"
)

// MaxCommandLine is the longest command line accepted, its '\n' included.
const MaxCommandLine = 256

// maxOpen bounds OPEN k so that one command cannot exhaust the process.
const maxOpen = 65536

// Command is a parsed command line of the peer's application protocol.
type Command struct {
	Name string    // ECHO, SINK, SOURCE, HOLD, OPEN, RUN, INFO, CLOSE, EXIT, HALFCLOSE or RESULT
	N    int64     // SOURCE: bytes; HOLD, RESULT: milliseconds; OPEN: stream count
	ID   uint32    // RESULT: the HALFCLOSE stream whose record is asked for
	Sub  *Command  // OPEN: the command run on each opened stream
	Run  *Exchange // RUN: the exchange (rule 21)
}

var (
	errLineTooLong = fmt.Errorf("command line longer than %d bytes", MaxCommandLine)
	errNotASCII    = errors.New("command line is not ASCII")
)

// ReadCommandLine reads one '\n'-terminated line one byte at a time, so
// that nothing after the newline is consumed from the stream (HOLD relies on
// the data after it staying unread). The newline is not returned.
func ReadCommandLine(r io.Reader) (string, error) {
	var line [MaxCommandLine]byte
	var one [1]byte
	for n := 0; n < MaxCommandLine; {
		k, err := r.Read(one[:])
		if k == 1 {
			switch {
			case one[0] == '\n':
				return string(line[:n]), nil
			case one[0] >= 0x80:
				return "", errNotASCII
			}
			line[n] = one[0]
			n++
			continue
		}
		if smuxcompat.IsEOF(err) {
			return "", io.ErrUnexpectedEOF
		}
		if err != nil {
			return "", err
		}
	}
	return "", errLineTooLong
}

// ParseCommand parses a command line without its newline. Arguments are
// separated by single spaces; numbers are plain decimal digits.
func ParseCommand(line string) (*Command, error) {
	name, rest, hasArg := strings.Cut(line, " ")
	switch name {
	case "ECHO", "SINK", "INFO", "CLOSE", "EXIT", "HALFCLOSE":
		if hasArg {
			return nil, fmt.Errorf("%s takes no argument", name)
		}
		return &Command{Name: name}, nil
	case "SOURCE":
		n, err := parseCount(rest, math.MaxInt64)
		if err != nil {
			return nil, fmt.Errorf("SOURCE n: %w", err)
		}
		return &Command{Name: name, N: n}, nil
	case "HOLD":
		n, err := parseCount(rest, math.MaxInt64/int64(time.Millisecond))
		if err != nil {
			return nil, fmt.Errorf("HOLD ms: %w", err)
		}
		return &Command{Name: name, N: n}, nil
	case "RESULT":
		id, ms, ok := strings.Cut(rest, " ")
		if !ok {
			return nil, errors.New("RESULT id ms: missing ms")
		}
		sid, err := parseCount(id, math.MaxUint32)
		if err != nil {
			return nil, fmt.Errorf("RESULT id: %w", err)
		}
		n, err := parseCount(ms, math.MaxInt64/int64(time.Millisecond))
		if err != nil {
			return nil, fmt.Errorf("RESULT ms: %w", err)
		}
		return &Command{Name: name, N: n, ID: uint32(sid)}, nil
	case "RUN":
		e, err := ParseExchange(rest)
		if err != nil {
			return nil, fmt.Errorf("RUN N:LINE: %w", err)
		}
		return &Command{Name: name, Run: &e}, nil
	case "OPEN":
		count, sub, ok := strings.Cut(rest, " ")
		if !ok {
			return nil, errors.New("OPEN k LINE: missing LINE")
		}
		k, err := parseCount(count, maxOpen)
		if err != nil {
			return nil, fmt.Errorf("OPEN k: %w", err)
		}
		subCmd, err := ParseCommand(sub)
		if err != nil {
			return nil, fmt.Errorf("OPEN LINE: %w", err)
		}
		return &Command{Name: name, N: k, Sub: subCmd}, nil
	}
	return nil, fmt.Errorf("unknown command %q", name)
}

// parseCount parses a non-empty string of decimal digits no larger than max.
func parseCount(s string, max int64) (int64, error) {
	if s == "" || strings.TrimLeft(s, "0123456789") != "" {
		return 0, fmt.Errorf("%q is not a non-negative decimal number", s)
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil || v > max {
		return 0, fmt.Errorf("%q is larger than %d", s, max)
	}
	return v, nil
}

// String renders the command as its command line (without newline).
func (c *Command) String() string {
	switch c.Name {
	case "SOURCE", "HOLD":
		return fmt.Sprintf("%s %d", c.Name, c.N)
	case "OPEN":
		return fmt.Sprintf("OPEN %d %s", c.N, c.Sub)
	case "RESULT":
		return fmt.Sprintf("RESULT %d %d", c.ID, c.N)
	case "RUN":
		return "RUN " + c.Run.String()
	}
	return c.Name
}
