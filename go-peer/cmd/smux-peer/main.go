// Command smux-peer is the go-peer of smuxref: a peer of the conformance
// suite built on the real github.com/xtaci/smux (see the README).
//
//	smux-peer --role server|client --addr HOST:PORT [options]   the peer
//	smux-peer loadgen --addr HOST:PORT [options]                benchmark client
//	smux-peer vectors FILE...                                   replay codec vectors
package main

import (
	"os"

	"smuxref/go-peer/internal/loadgen"
	"smuxref/go-peer/internal/peer"
	"smuxref/go-peer/internal/vectors"
)

func main() {
	args := os.Args[1:]
	if len(args) > 0 {
		switch args[0] {
		case "loadgen":
			os.Exit(loadgen.Main(args[1:], os.Stdout, os.Stderr))
		case "vectors":
			os.Exit(vectors.Main(args[1:], os.Stdout, os.Stderr))
		}
	}
	os.Exit(peer.Main(args, os.Stdout, os.Stderr))
}
