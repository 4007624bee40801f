module smuxref/go-peer

go 1.22

require github.com/xtaci/smux v1.4.8

require github.com/pkg/errors v0.8.1 // indirect
