package api

import (
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/google/uuid"

	"github.com/certfleet/certfleet/internal/auth"
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
		cc, console := consoleCallerFrom(r.Context())
		if r.URL.Path != "/" && !console {
			a.writeError(w, c, &Error{Code: "InvalidAction.NotFound", Status: http.StatusNotFound, Message: "Only the path / is served."})
			return
		}
		if r.Method != http.MethodPost && r.Method != http.MethodGet {
			a.writeError(w, c, &Error{Code: "InvalidParameter", Status: http.StatusMethodNotAllowed, Message: "Use POST or GET."})
			return
		}
		c.source = sourceOf(r)
		if console { // authenticated by its session (internal/console): console.go
			c.setConsole(cc)
		} else if err := a.beforeBody(r, c); err != nil {
			// Before a byte of the body is read: a V3 caller proves its key from
			// the headers, a V1 caller naming its key in the query string has the
			// key looked up, and any other request spends a token of its source.
			a.writeError(w, c, err)
			return
		}
		if r.ContentLength > a.opts.MaxBodyBytes {
			a.writeError(w, c, errTooLarge(a.opts.MaxBodyBytes))
			return
		}
		if c.key == nil && !console {
			n := r.ContentLength
			if n < 0 { // unknown length (chunked): the most it may be
				n = a.opts.MaxBodyBytes
			}
			if !a.bodies.acquire(n) {
				a.writeError(w, c, errInflightFull())
				return
			}
			defer a.bodies.release(n)
		}
		hash := sha256.New()
		body, err := readBody(io.TeeReader(http.MaxBytesReader(w, r.Body, a.opts.MaxBodyBytes), hash), r.ContentLength)
		if err == nil && c.key != nil {
			err = auth.CheckBody(r, c.signed, hash.Sum(nil))
		}
		if err != nil {
			var ae *auth.Error
			if errors.As(err, &ae) {
				a.writeError(w, c, a.stranger(c, err))
				return
			}
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				a.writeError(w, c, errTooLarge(a.opts.MaxBodyBytes))
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
		if strings.HasPrefix(r.Header.Get("Authorization"), "ACS3-") && !console {
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

// beforeBody is what can be known of the caller before its body is read; see
// withRequest. It returns the error to answer, if any.
func (a *API) beforeBody(r *http.Request, c *call) error {
	if a.opts.SkipSignature {
		return nil
	}
	if strings.HasPrefix(r.Header.Get("Authorization"), "ACS3-") {
		signed, err := auth.Parse(r, nil)
		if err == nil {
			err = checkClaimSize(signed)
		}
		if err != nil {
			return a.stranger(c, err)
		}
		key, err := a.lookupKey(r.Context(), signed.AccessKeyID)
		if err == nil {
			err = auth.VerifyHead(r, signed, key.secret, a.opts.Clock())
		}
		if err != nil {
			return a.stranger(c, err)
		}
		c.accessKeyID, c.signed, c.key = signed.AccessKeyID, signed, &key
		return nil
	}
	if q := r.URL.Query(); q.Has("Signature") && q.Get("AccessKeyId") != "" {
		// V1 signs every parameter, and some may be in the body: the key can
		// only be known to exist; the signature is checked once the body is read.
		if _, err := a.lookupKey(r.Context(), q.Get("AccessKeyId")); err != nil {
			return a.stranger(c, err)
		}
		return nil
	}
	res, ok := a.sources.take(c.source)
	if !ok {
		return errSourceThrottled()
	}
	c.charged = res
	return nil
}

// stranger charges a request that failed to prove its key to its source, if
// it has not been charged yet, and returns err, or Throttling.Source when the
// source has spent its tokens. Errors of the store (not the caller's) pass.
func (a *API) stranger(c *call, err error) error {
	var ae *auth.Error
	var e *Error
	if !errors.As(err, &ae) && !(errors.As(err, &e) && e.Status < 500) {
		return err
	}
	if c.charged != nil {
		return err
	}
	res, ok := a.sources.take(c.source)
	if !ok {
		return errSourceThrottled()
	}
	c.charged = res
	return err
}

func errTooLarge(limit int64) *Error {
	return &Error{Code: "InvalidParameter", Status: http.StatusRequestEntityTooLarge,
		Message: "The request body exceeds the limit of " + itoa(limit) + " bytes."}
}

// readBody reads a body of length n (-1: unknown) into a buffer of its size
// when n is known, so a large body does not leave the garbage of a growing one.
func readBody(rd io.Reader, n int64) ([]byte, error) {
	if n < 0 {
		return io.ReadAll(rd)
	}
	if n == 0 {
		return nil, nil
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(rd, b); err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, errors.New("the body is shorter than its Content-Length")
		}
		return nil, err
	}
	return b, nil
}
