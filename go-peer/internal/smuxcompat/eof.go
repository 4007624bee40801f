package smuxcompat

import (
	"errors"
	"io"
)

// IsEOF reports whether err is io.EOF, also when wrapped: v1.2.x-v1.4.x
// return errors.WithStack(io.EOF) from Stream.Read, and v1.4.8 links
// github.com/pkg/errors v0.8.1, whose wrappers have Cause but no Unwrap,
// so neither err == io.EOF nor errors.Is(err, io.EOF) is enough.
func IsEOF(err error) bool {
	for err != nil {
		if err == io.EOF {
			return true
		}
		if c, ok := err.(interface{ Cause() error }); ok && c.Cause() != err {
			err = c.Cause()
			continue
		}
		err = errors.Unwrap(err)
	}
	return false
}
