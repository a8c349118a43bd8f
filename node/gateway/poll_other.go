//go:build !linux

package gateway

import "errors"

// poller is Linux-only; elsewhere every connection keeps a reader goroutine.
type poller struct{}

func newPoller() (*poller, error) { return nil, errors.New("gateway: no epoll on this system") }

func (p *poller) close()           {}
func (p *poller) arm(c *conn) bool { return false }
func (p *poller) forget(c *conn)   {}
