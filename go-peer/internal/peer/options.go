package peer

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"strconv"

	"smuxref/go-peer/internal/smuxcompat"
)

// Roles of the peer contract.
const (
	RoleServer = "server"
	RoleClient = "client"
)

// Options is the parsed command line of the peer.
type Options struct {
	Role string
	Addr string
	Runs ExchangeList // --run N:LINE, client only (rule 22)
	Smux smuxcompat.Options
}

// UsageError is a command line the peer refuses (exit status 127).
type UsageError struct{ Msg string }

func (e *UsageError) Error() string { return e.Msg }

// ParseArgs parses the peer command line (without the program name):
//
//	--role server|client --addr HOST:PORT [--version 1|2]
//	[--keepalive-interval MS --keepalive-timeout MS | --no-keepalive]
//	[--max-frame-size N] [--max-receive-buffer N] [--max-stream-buffer N]
//
// It checks syntax only; NewConfig decides what the compiled-in smux tag
// supports. Every error is a *UsageError.
func ParseArgs(args []string) (Options, error) {
	var o Options
	fs := flag.NewFlagSet("smux-peer", flag.ContinueOnError)
	fs.SetOutput(io.Discard) // the error is reported by the caller
	fs.StringVar(&o.Role, "role", "", "server or client")
	fs.StringVar(&o.Addr, "addr", "", "HOST:PORT to listen on (server) or dial (client)")
	fs.Var(&o.Runs, "run", "client: run exchange N:LINE on a new stream (repeatable)")
	o.Smux.Register(fs)

	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return o, &UsageError{Msg: "help requested; usage: " + Usage}
		}
		return o, &UsageError{Msg: err.Error()}
	}
	if fs.NArg() > 0 {
		return o, &UsageError{Msg: fmt.Sprintf("unexpected argument %q", fs.Arg(0))}
	}
	switch o.Role {
	case RoleServer, RoleClient:
	case "":
		return o, &UsageError{Msg: "missing --role (server or client)"}
	default:
		return o, &UsageError{Msg: fmt.Sprintf("--role must be server or client, not %q", o.Role)}
	}
	if o.Role == RoleServer && len(o.Runs) > 0 {
		return o, &UsageError{Msg: "--run is a client option (CONTRACT.md rule 22)"}
	}
	if o.Addr == "" {
		return o, &UsageError{Msg: "missing --addr HOST:PORT"}
	}
	_, port, err := net.SplitHostPort(o.Addr)
	if err != nil {
		return o, &UsageError{Msg: fmt.Sprintf("--addr %q is not HOST:PORT: %v", o.Addr, err)}
	}
	if p, err := strconv.Atoi(port); err != nil || p < 0 || p > 65535 || port[0] == '+' {
		return o, &UsageError{Msg: fmt.Sprintf("--addr %q: port must be a number from 0 to 65535", o.Addr)}
	}
	return o, nil
}

// Usage summarises the command line.
const Usage = `smux-peer --role server|client --addr HOST:PORT [--version 1|2]
    [--keepalive-interval MS --keepalive-timeout MS | --no-keepalive]
    [--max-frame-size N] [--max-receive-buffer N] [--max-stream-buffer N]
smux-peer loadgen --help`
