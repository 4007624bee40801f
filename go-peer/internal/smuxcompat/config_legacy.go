//go:build smux_legacy

package smuxcompat

import (
	"fmt"

	"github.com/xtaci/smux"
)

// Generation names the Config API this file adapts.
const Generation = "legacy v1.0-v1.4 (four fields, protocol 1 only)"

// Config fields this generation has (besides the four every tag has).
const (
	HasVersion           = false
	HasKeepAliveDisabled = false
	HasMaxStreamBuffer   = false
)

// ProtocolVersions lists the smux protocol versions the tag implements.
func ProtocolVersions() []int { return []int{1} }

// NewConfig starts from smux.DefaultConfig(), applies the options and checks
// the result with the tag's own smux.VerifyConfig.
func NewConfig(o Options) (*smux.Config, error) {
	if o.Version != nil && *o.Version != 1 {
		return nil, &UnsupportedError{
			Option: fmt.Sprintf("--version %d", *o.Version),
			Reason: "this tag implements protocol version 1 only",
		}
	}
	if o.NoKeepAlive {
		return nil, &UnsupportedError{Option: "--no-keepalive", Reason: "this tag's Config has no KeepAliveDisabled field"}
	}
	if o.MaxStreamBuffer != nil {
		return nil, &UnsupportedError{Option: "--max-stream-buffer", Reason: "this tag's Config has no MaxStreamBuffer field"}
	}
	c := smux.DefaultConfig()
	applyCommon(o, &c.KeepAliveInterval, &c.KeepAliveTimeout, &c.MaxFrameSize, &c.MaxReceiveBuffer)
	if err := smux.VerifyConfig(c); err != nil {
		return nil, &ConfigError{Err: err}
	}
	return c, nil
}

// DescribeConfig returns the INFO view of c. The tag's Config has no
// Version, KeepAliveDisabled or MaxStreamBuffer, so those are left out.
func DescribeConfig(c *smux.Config) ConfigInfo {
	return ConfigInfo{
		KeepAliveIntervalMs: ms(c.KeepAliveInterval),
		KeepAliveTimeoutMs:  ms(c.KeepAliveTimeout),
		MaxFrameSize:        c.MaxFrameSize,
		MaxReceiveBuffer:    c.MaxReceiveBuffer,
	}
}
