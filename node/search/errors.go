package search

import (
	"errors"
	"fmt"
)

// ErrBadQuery matches (with errors.Is) every *QueryError: the query is the
// client's fault and the API answers 400 with Discord's error shape.
var ErrBadQuery = errors.New("search: bad query")

// ErrClosed is returned by operations on a closed Index.
var ErrClosed = errors.New("search: index closed")

// ErrUnresolved is returned by Search for a Query whose name filters were
// never passed through Resolve: a bug in the caller, not in the request.
var ErrUnresolved = errors.New("search: query has unresolved names")

// Code classifies a QueryError. The values are stable strings that the API
// may expose to clients (spec/search.md, section Errors).
type Code string

// Error codes, one per kind of client mistake.
const (
	CodeSyntax Code = "syntax" // the text form does not parse
	CodeValue  Code = "value"  // a parameter or filter value is malformed
	CodeRange  Code = "range"  // min/max or dates are out of range or empty
	CodeLimit  Code = "limit"  // offset, limit, length or count limits exceeded
	CodeEmpty  Code = "empty"  // nothing to search for
)

// QueryError describes a query the node refuses to run.
type QueryError struct {
	// Code classifies the error.
	Code Code
	// Field is the parameter or filter at fault ("content", "from", "min_id",
	// ...); empty when the query as a whole is at fault.
	Field string
	// Pos is the byte offset in the text form where a syntax error was found,
	// or -1 when it does not apply.
	Pos int
	// Msg says what is wrong, for humans.
	Msg string
}

func (e *QueryError) Error() string {
	s := "search: " + string(e.Code)
	if e.Field != "" {
		s += " " + e.Field
	}
	if e.Pos >= 0 {
		s += fmt.Sprintf(" at %d", e.Pos)
	}
	return s + ": " + e.Msg
}

// Is makes errors.Is(err, ErrBadQuery) true for every QueryError.
func (e *QueryError) Is(target error) bool { return target == ErrBadQuery }

func badf(code Code, field string, format string, args ...any) *QueryError {
	return &QueryError{Code: code, Field: field, Pos: -1, Msg: fmt.Sprintf(format, args...)}
}
