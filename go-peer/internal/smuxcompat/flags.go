package smuxcompat

import (
	"flag"
	"fmt"
	"math"
	"strconv"
	"time"
)

// Register adds the smux configuration options of the peer contract to fs:
//
//	--version 1|2 --keepalive-interval MS --keepalive-timeout MS --no-keepalive
//	--max-frame-size N --max-receive-buffer N --max-stream-buffer N
//
// Values are only parsed here; whether the tag supports them and whether
// they make a valid Config is decided by NewConfig.
func (o *Options) Register(fs *flag.FlagSet) {
	fs.Func("version", "smux protocol version (1 or 2)", func(s string) error {
		return setInt(&o.Version, s)
	})
	fs.Func("keepalive-interval", "keepalive interval in milliseconds", func(s string) error {
		return setMillis(&o.KeepAliveInterval, s)
	})
	fs.Func("keepalive-timeout", "keepalive timeout in milliseconds", func(s string) error {
		return setMillis(&o.KeepAliveTimeout, s)
	})
	fs.BoolFunc("no-keepalive", "disable keepalive (Config.KeepAliveDisabled)", func(s string) error {
		v, err := strconv.ParseBool(s)
		if err != nil {
			return fmt.Errorf("not a boolean: %q", s)
		}
		o.NoKeepAlive = v
		return nil
	})
	fs.Func("max-frame-size", "Config.MaxFrameSize in bytes", func(s string) error {
		return setInt(&o.MaxFrameSize, s)
	})
	fs.Func("max-receive-buffer", "Config.MaxReceiveBuffer in bytes", func(s string) error {
		return setInt(&o.MaxReceiveBuffer, s)
	})
	fs.Func("max-stream-buffer", "Config.MaxStreamBuffer in bytes", func(s string) error {
		return setInt(&o.MaxStreamBuffer, s)
	})
}

// setInt parses a decimal integer. Its range is left to smux.VerifyConfig.
func setInt(dst **int, s string) error {
	v, err := strconv.Atoi(s)
	if err != nil {
		return fmt.Errorf("not an integer: %q", s)
	}
	*dst = &v
	return nil
}

// setMillis parses a non-negative number of milliseconds. Zero is accepted
// so that smux.VerifyConfig can reject it with its own message; negative
// values are refused here because they would make time.NewTicker panic.
func setMillis(dst **time.Duration, s string) error {
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil || v < 0 {
		return fmt.Errorf("not a non-negative number of milliseconds: %q", s)
	}
	if v > math.MaxInt64/int64(time.Millisecond) {
		return fmt.Errorf("too many milliseconds: %q", s)
	}
	d := time.Duration(v) * time.Millisecond
	*dst = &d
	return nil
}
