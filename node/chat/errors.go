package chat

import (
	"fmt"
	"net/http"
	"time"
)

// Error is a client-visible failure with Discord's status, code and message. The api package
// turns it into Discord's error body; anything that is not an *Error is a 500.
type Error struct {
	Status  int
	Code    int
	Message string
	// Fields holds per-field validation errors for code 50035: field → (code, message).
	Fields map[string][2]string
	// RetryAfter is set for 429 answers.
	RetryAfter time.Duration
}

func (e *Error) Error() string { return fmt.Sprintf("%d %s", e.Code, e.Message) }

func newErr(status, code int, msg string) *Error {
	return &Error{Status: status, Code: code, Message: msg}
}

// Errors the domain returns. They are values, compared with errors.Is by identity.
var (
	ErrUnauthorized     = newErr(http.StatusUnauthorized, 0, "401: Unauthorized")
	ErrUnknownChannel   = newErr(http.StatusNotFound, 10003, "Unknown Channel")
	ErrUnknownGuild     = newErr(http.StatusNotFound, 10004, "Unknown Guild")
	ErrUnknownInvite    = newErr(http.StatusNotFound, 10006, "Unknown Invite")
	ErrUnknownMember    = newErr(http.StatusNotFound, 10007, "Unknown Member")
	ErrUnknownMessage   = newErr(http.StatusNotFound, 10008, "Unknown Message")
	ErrUnknownRole      = newErr(http.StatusNotFound, 10011, "Unknown Role")
	ErrUnknownUser      = newErr(http.StatusNotFound, 10013, "Unknown User")
	ErrUnknownEmoji     = newErr(http.StatusNotFound, 10014, "Unknown Emoji")
	ErrUnknownBan       = newErr(http.StatusNotFound, 10026, "Unknown Ban")
	ErrMissingAccess    = newErr(http.StatusForbidden, 50001, "Missing Access")
	ErrMissingPerms     = newErr(http.StatusForbidden, 50013, "Missing Permissions")
	ErrBanned           = newErr(http.StatusForbidden, 40007, "The user is banned from this guild.")
	ErrEmptyMessage     = newErr(http.StatusBadRequest, 50006, "Cannot send an empty message")
	ErrNotText          = newErr(http.StatusBadRequest, 50008, "Cannot send messages in a non-text channel")
	ErrBulkCount        = newErr(http.StatusBadRequest, 50016, "Provided too few or too many messages to delete. Must provide at least 2 and fewer than 100 messages to delete.")
	ErrBulkTooOld       = newErr(http.StatusBadRequest, 50034, "You can only bulk delete messages that are under 14 days old.")
	ErrOwnerCannotLeave = newErr(http.StatusBadRequest, 50055, "Invalid Guild: the owner cannot leave the guild")
	ErrMaxPins          = newErr(http.StatusBadRequest, 30003, "Maximum number of pins reached (50)")
	ErrMaxReactions     = newErr(http.StatusBadRequest, 30010, "Maximum number of reactions reached (20)")
	ErrCannotEditOthers = newErr(http.StatusForbidden, 50005, "Cannot edit a message authored by another user")
	ErrCannotDMSelf     = newErr(http.StatusBadRequest, 50007, "Cannot send messages to this user")
	ErrMaxGroupDM       = newErr(http.StatusBadRequest, 30031, "Maximum number of group DM recipients reached (10)")
	// ErrHomeUnreachable answers a change to a federated guild homed on another node when
	// that node cannot be reached: only the home node may make it (spec/federation.md).
	ErrHomeUnreachable = newErr(http.StatusServiceUnavailable, 0, "The guild's home node could not be reached; try again later.")
)

// invalid returns a 50035 error for one field.
func invalid(field, code, msg string) *Error {
	return &Error{Status: http.StatusBadRequest, Code: 50035, Message: "Invalid Form Body",
		Fields: map[string][2]string{field: {code, msg}}}
}

// RateLimited returns a 429 error.
func RateLimited(after time.Duration) *Error {
	return &Error{Status: http.StatusTooManyRequests, Code: 0, Message: "You are being rate limited.", RetryAfter: after}
}
