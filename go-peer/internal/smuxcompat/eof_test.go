package smuxcompat

import (
	"errors"
	"fmt"
	"io"
	"testing"
)

// causer mimics github.com/pkg/errors v0.8.1's withStack: Cause, no Unwrap.
type causer struct{ cause error }

func (c causer) Error() string { return "wrapped: " + c.cause.Error() }
func (c causer) Cause() error  { return c.cause }

func TestIsEOF(t *testing.T) {
	for _, err := range []error{io.EOF, causer{io.EOF}, fmt.Errorf("x: %w", causer{io.EOF})} {
		if !IsEOF(err) {
			t.Errorf("IsEOF(%v) = false", err)
		}
	}
	for _, err := range []error{nil, io.ErrUnexpectedEOF, errors.New("EOF"), causer{io.ErrClosedPipe}} {
		if IsEOF(err) {
			t.Errorf("IsEOF(%v) = true", err)
		}
	}
}
