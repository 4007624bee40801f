module smuxref/go-peer

go 1.22

require github.com/xtaci/smux v1.5.58
