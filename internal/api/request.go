package api

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/google/uuid"
)

// withRequest assigns the RequestId, bounds and reads the body, parses the
// parameters and checks Action/Version.
func (a *API) withRequest(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c := &call{requestID: strings.ToUpper(uuid.NewString())}
		defer func() {
			if v := recover(); v != nil {
				a.log.Error("panic in handler", "request_id", c.requestID, "action", c.action, "panic", v)
				a.writeError(w, c, errInternal)
			}
		}()
		if r.URL.Path != "/" {
			a.writeError(w, c, &Error{Code: "InvalidAction.NotFound", Status: http.StatusNotFound, Message: "Only the path / is served."})
			return
		}
		if r.Method != http.MethodPost && r.Method != http.MethodGet {
			a.writeError(w, c, &Error{Code: "InvalidParameter", Status: http.StatusMethodNotAllowed, Message: "Use POST or GET."})
			return
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, a.opts.MaxBodyBytes))
		if err != nil {
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				a.writeError(w, c, &Error{Code: "InvalidParameter", Status: http.StatusRequestEntityTooLarge,
					Message: "The request body exceeds the limit of " + itoa(a.opts.MaxBodyBytes) + " bytes."})
				return
			}
			a.writeError(w, c, &Error{Code: "InvalidParameter", Status: http.StatusBadRequest, Message: "The request body could not be read."})
			return
		}
		values := r.URL.Query()
		if strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded") && len(body) > 0 {
			form, err := url.ParseQuery(string(body))
			if err != nil {
				a.writeError(w, c, &Error{Code: "InvalidParameter", Status: http.StatusBadRequest, Message: "The form body is malformed."})
				return
			}
			for k, vs := range form {
				values[k] = append(values[k], vs...)
			}
		}
		c.body = body
		if c.params, err = newParams(values); err != nil {
			a.writeError(w, c, err)
			return
		}
		// V3 requests name the action in signed headers; V1 requests in signed
		// parameters (their x-acs-* headers are not signed, so they are ignored).
		var version string
		c.action, version = values.Get("Action"), values.Get("Version")
		if strings.HasPrefix(r.Header.Get("Authorization"), "ACS3-") {
			c.action, version = r.Header.Get("x-acs-action"), r.Header.Get("x-acs-version")
		}
		switch {
		case c.action == "":
			a.writeError(w, c, errMissing("Action"))
			return
		case version == "":
			a.writeError(w, c, errMissing("Version"))
			return
		case version != Version && version != RAMVersion:
			a.writeError(w, c, &Error{Code: "InvalidVersion", Status: http.StatusBadRequest,
				Message: "Version " + version + " is not served; use " + Version + " (certificates) or " + RAMVersion + " (RAM)."})
			return
		}
		c.version = version
		if _, ok := a.table(version)[c.action]; !ok {
			a.writeError(w, c, &Error{Code: "InvalidAction.NotFound", Status: http.StatusNotFound,
				Message: "The action " + c.action + " does not exist in version " + version + "."})
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), ctxKey{}, c)))
	})
}
