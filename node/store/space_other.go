//go:build !unix

package store

import "errors"

// freeBytes is not implemented here: the guard logs that it cannot tell, and writes go on.
func freeBytes(string) (uint64, error) { return 0, errors.ErrUnsupported }
