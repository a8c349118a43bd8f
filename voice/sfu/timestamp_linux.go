package sfu

import (
	"bytes"
	"encoding/binary"
	"net"
	"time"

	"golang.org/x/sys/unix"
)

// enableTimestamps asks the kernel to stamp every packet c receives with its
// arrival time (SO_TIMESTAMPNS), read back by kernelTimestamp.
func enableTimestamps(c *net.UDPConn) error {
	rc, err := c.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_TIMESTAMPNS, 1)
	}); err != nil {
		return err
	}
	return serr
}

// kernelTimestamp returns the arrival time in a packet's control messages.
func kernelTimestamp(oob []byte) (time.Time, bool) {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return time.Time{}, false
	}
	for _, m := range msgs {
		if m.Header.Level != unix.SOL_SOCKET || m.Header.Type != unix.SCM_TIMESTAMPNS {
			continue
		}
		var ts unix.Timespec
		if binary.Read(bytes.NewReader(m.Data), binary.NativeEndian, &ts) == nil {
			return time.Unix(ts.Unix()), true
		}
	}
	return time.Time{}, false
}
