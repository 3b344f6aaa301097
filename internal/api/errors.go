package api

import (
	"fmt"
	"net/http"

	"strings"

	"github.com/certfleet/certfleet/internal/api/apierr"
)

// Error is an API error as the SDK sees it (internal/api/apierr, shared
// with the RAM handlers).
type Error = apierr.Error

func errMissing(name string) *Error { return apierr.Missing(name) }

func errInvalid(name, format string, a ...any) *Error { return apierr.Invalid(name, format, a...) }

func errNotFound(what string, id int64) *Error {
	return &Error{Code: "NotFound", Status: http.StatusNotFound, Message: fmt.Sprintf("%s %d does not exist.", what, id)}
}

func errStatus(format string, a ...any) *Error {
	return &Error{Code: "IncorrectStatus", Status: http.StatusBadRequest, Message: fmt.Sprintf(format, a...)}
}

func errInUse(what string, id int64) *Error {
	return &Error{Code: "InUse", Status: http.StatusBadRequest,
		Message: fmt.Sprintf("%s %d is referenced by a deployment job that has not finished; delete or finish the job first.", what, id)}
}

var errInternal = &Error{Code: "InternalError", Status: http.StatusInternalServerError,
	Message: "The request processing has failed due to some unknown error; the server log has details under this RequestId."}

// errorBody is Alibaba's error response body.
type errorBody struct {
	RequestID string `json:"RequestId"`
	HostID    string `json:"HostId"`
	Code      string `json:"Code"`
	Message   string `json:"Message"`
	Recommend string `json:"Recommend"`
	// AccessDeniedDetail is read by the SDKs into ClientError.AccessDeniedDetail.
	AccessDeniedDetail map[string]string `json:"AccessDeniedDetail,omitempty"`
}

// joinStatuses joins statuses for a message: "editing or pending".
func joinStatuses[S ~string](v []S, sep string) string {
	s := make([]string, len(v))
	for i, x := range v {
		s[i] = string(x)
	}
	return strings.Join(s, sep)
}
