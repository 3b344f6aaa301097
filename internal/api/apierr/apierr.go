// Package apierr is the error the RPC front answers with (an Alibaba code,
// an HTTP status and a message), shared by the handlers of both API
// versions: internal/api (2020-04-07) and internal/api/ramapi (RAM
// 2015-05-01).
//
// It is not where the error body is written (internal/api writes it, with
// RequestId, HostId and Recommend), nor where store errors are mapped.
package apierr

import (
	"fmt"
	"net/http"
)

// Error is an API error as the SDK sees it: an Alibaba code, an HTTP status
// and a message that says what failed and what to do.
type Error struct {
	Code    string
	Status  int
	Message string
	// Recommend overrides the default link in the error body.
	Recommend string
	// AccessDeniedDetail explains a Forbidden.RAM denial.
	AccessDeniedDetail map[string]string
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

// Missing is the error for a mandatory parameter that was not given.
func Missing(name string) *Error {
	return &Error{Code: "MissingParameter", Status: http.StatusBadRequest, Message: name + " is mandatory for this action."}
}

// Invalid is the error for a parameter that breaks a rule; format and a say which.
func Invalid(name, format string, a ...any) *Error {
	return &Error{Code: "InvalidParameter", Status: http.StatusBadRequest, Message: "The parameter " + name + " is invalid: " + fmt.Sprintf(format, a...)}
}
