//go:build unix

package main

import (
	"fmt"
	"os"
	"strings"
	"syscall"
)

// measuring takes the exclusive flock on path (the machine's benchmark lock) for a
// measured phase and returns its release; with path "" it does nothing. Set-up (registering
// users, joins) runs outside the lock, so that a long set-up does not hold other
// benchmarks off the cores.
func measuring(path string) (func(), error) {
	if path == "" {
		return func() {}, nil
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o666)
	if err != nil {
		return nil, fmt.Errorf("lock: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	fmt.Printf("(holding %s for the measured phase; load %s)\n", path, loadavg())
	return func() {
		fmt.Printf("(measured phase over; load %s)\n", loadavg())
		f.Close() // closing the file releases the lock
	}, nil
}

// loadavg is the first three fields of /proc/loadavg, or "?".
func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if f := strings.Fields(string(b)); err == nil && len(f) >= 3 {
		return strings.Join(f[:3], " ")
	}
	return "?"
}
