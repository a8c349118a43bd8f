//go:build !linux

package sfu

import (
	"errors"
	"net"
	"time"
)

// enableTimestamps is not supported here: arrivals are stamped when the
// socket is read.
func enableTimestamps(*net.UDPConn) error { return errors.ErrUnsupported }

// kernelTimestamp finds nothing where enableTimestamps is unsupported.
func kernelTimestamp([]byte) (time.Time, bool) { return time.Time{}, false }
