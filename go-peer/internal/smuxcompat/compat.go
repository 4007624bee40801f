// Package smuxcompat hides the few API differences between tags of
// github.com/xtaci/smux behind one small surface: building a *smux.Config
// from command-line options, describing it for INFO, and naming the tag.
//
// Session and stream handling needs no adapter: Client, Server,
// Session.OpenStream/AcceptStream/Close and Stream.Read/Write/Close/ID have
// the same signatures in every tag from v1.0.7 to v1.5.58. Only Config
// differs, in three generations, each selected by a Go build tag:
//
//	(no tag)          v1.5.15 and later: Version, KeepAliveDisabled, KeepAliveInterval,
//	                  KeepAliveTimeout, MaxFrameSize, MaxReceiveBuffer, MaxStreamBuffer
//	smux_nokadisable  early v1.5.x: as above without KeepAliveDisabled
//	smux_legacy       v1.0.x-v1.4.x: KeepAliveInterval, KeepAliveTimeout,
//	                  MaxFrameSize, MaxReceiveBuffer; protocol version 1 only
package smuxcompat

import (
	"fmt"
	"time"
)

// Options are the smux settings chosen on the command line. A nil field
// was not given and keeps the tag's default (smux.DefaultConfig()).
type Options struct {
	Version           *int
	NoKeepAlive       bool
	KeepAliveInterval *time.Duration
	KeepAliveTimeout  *time.Duration
	MaxFrameSize      *int
	MaxReceiveBuffer  *int
	MaxStreamBuffer   *int
}

// ConfigInfo is the "config" object of the INFO reply. Fields the tag's
// Config lacks are nil and left out of the JSON.
type ConfigInfo struct {
	Version             *int  `json:"version,omitempty"`
	KeepAliveDisabled   *bool `json:"keepalive_disabled,omitempty"`
	KeepAliveIntervalMs int64 `json:"keepalive_interval_ms"`
	KeepAliveTimeoutMs  int64 `json:"keepalive_timeout_ms"`
	MaxFrameSize        int   `json:"max_frame_size"`
	MaxReceiveBuffer    int   `json:"max_receive_buffer"`
	MaxStreamBuffer     *int  `json:"max_stream_buffer,omitempty"`
}

// UnsupportedError reports an option the compiled-in smux tag cannot honour.
type UnsupportedError struct {
	Option string // as written on the command line, e.g. "--version 2"
	Reason string
}

func (e *UnsupportedError) Error() string {
	return fmt.Sprintf("%s is not supported by xtaci/smux %s: %s", e.Option, Tag(), e.Reason)
}

// ConfigError wraps the error of the tag's own smux.VerifyConfig.
type ConfigError struct{ Err error }

func (e *ConfigError) Error() string {
	return fmt.Sprintf("invalid smux configuration (smux.VerifyConfig of %s): %v", Tag(), e.Err)
}

func (e *ConfigError) Unwrap() error { return e.Err }

func ptr[T any](v T) *T { return &v }

func ms(d time.Duration) int64 { return d.Milliseconds() }
