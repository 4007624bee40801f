package smuxcompat

import "time"

// applyCommon copies the options every tag's Config has.
func applyCommon(o Options, interval, timeout *time.Duration, frame, recvBuf *int) {
	if o.KeepAliveInterval != nil {
		*interval = *o.KeepAliveInterval
	}
	if o.KeepAliveTimeout != nil {
		*timeout = *o.KeepAliveTimeout
	}
	if o.MaxFrameSize != nil {
		*frame = *o.MaxFrameSize
	}
	if o.MaxReceiveBuffer != nil {
		*recvBuf = *o.MaxReceiveBuffer
	}
}
