module smuxref/go-peer

go 1.22

require github.com/xtaci/smux v1.0.7

require github.com/pkg/errors v0.9.1 // indirect
