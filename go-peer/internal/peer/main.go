// Package peer implements the smuxref peer contract on github.com/xtaci/smux:
// a server or client that runs the ECHO/SINK/SOURCE/HOLD/OPEN/INFO/CLOSE/EXIT
// application protocol on every stream its remote opens.
package peer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"smuxref/go-peer/internal/smuxcompat"
)

// Exit statuses.
const (
	ExitOK          = 0
	ExitFailure     = 1   // could not listen or dial
	ExitUnsupported = 127 // option or value refused
)

// Main runs the peer with the given arguments (program name excluded) and
// returns the process exit status. It returns on SIGTERM/SIGINT (server)
// or when the session ends (client).
func Main(args []string, stdout, stderr io.Writer) int {
	logger := log.New(stderr, "smux-peer: ", log.Ltime|log.Lmicroseconds)
	o, err := ParseArgs(args)
	if err != nil {
		fmt.Fprintf(stderr, "smux-peer: %v\n", err)
		return ExitUnsupported
	}
	cfg, err := smuxcompat.NewConfig(o.Smux)
	if err != nil {
		fmt.Fprintf(stderr, "smux-peer: %v\n", err)
		return ExitUnsupported
	}
	logger.SetPrefix(fmt.Sprintf("smux-peer %s %s: ", smuxcompat.Tag(), o.Role))

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()

	if o.Role == RoleClient {
		say := func(line string) { fmt.Fprintln(stdout, line) }
		err := RunClient(ctx, o.Addr, cfg, logger, func() { say("CONNECTED") }, o.Runs, say)
		if err != nil {
			logger.Print(err)
			return ExitFailure
		}
		return ExitOK
	}

	srv, err := Listen(o.Addr, cfg, logger)
	if err != nil {
		logger.Printf("listen: %v", err)
		return ExitFailure
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve() }()
	a := srv.Addr()
	fmt.Fprintf(stdout, "LISTENING %s\n", net.JoinHostPort(a.IP.String(), strconv.Itoa(a.Port)))

	select {
	case <-ctx.Done():
		logger.Print("signal received, shutting down")
		srv.Close(2 * time.Second)
		return ExitOK
	case err := <-served:
		srv.Close(2 * time.Second)
		if err != nil && !errors.Is(err, net.ErrClosed) {
			logger.Printf("serve: %v", err)
			return ExitFailure
		}
		return ExitOK
	}
}
