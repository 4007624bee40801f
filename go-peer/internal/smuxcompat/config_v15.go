//go:build !smux_legacy && !smux_nokadisable

package smuxcompat

import "github.com/xtaci/smux"

// Generation names the Config API this file adapts.
const Generation = "v1.5 (Version, KeepAliveDisabled, MaxStreamBuffer)"

// Config fields this generation has (besides the four every tag has).
const (
	HasVersion           = true
	HasKeepAliveDisabled = true
	HasMaxStreamBuffer   = true
)

// ProtocolVersions lists the smux protocol versions the tag implements.
func ProtocolVersions() []int { return []int{1, 2} }

// NewConfig starts from smux.DefaultConfig(), applies the options and checks
// the result with the tag's own smux.VerifyConfig.
func NewConfig(o Options) (*smux.Config, error) {
	c := smux.DefaultConfig()
	if o.Version != nil {
		c.Version = *o.Version
	}
	c.KeepAliveDisabled = o.NoKeepAlive
	applyCommon(o, &c.KeepAliveInterval, &c.KeepAliveTimeout, &c.MaxFrameSize, &c.MaxReceiveBuffer)
	if o.MaxStreamBuffer != nil {
		c.MaxStreamBuffer = *o.MaxStreamBuffer
	}
	if err := smux.VerifyConfig(c); err != nil {
		return nil, &ConfigError{Err: err}
	}
	return c, nil
}

// DescribeConfig returns the INFO view of c.
func DescribeConfig(c *smux.Config) ConfigInfo {
	return ConfigInfo{
		Version:             ptr(c.Version),
		KeepAliveDisabled:   ptr(c.KeepAliveDisabled),
		KeepAliveIntervalMs: ms(c.KeepAliveInterval),
		KeepAliveTimeoutMs:  ms(c.KeepAliveTimeout),
		MaxFrameSize:        c.MaxFrameSize,
		MaxReceiveBuffer:    c.MaxReceiveBuffer,
		MaxStreamBuffer:     ptr(c.MaxStreamBuffer),
	}
}
