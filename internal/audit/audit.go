// Package audit turns API calls into audit-trail rows and checks the trail:
// parameters with secrets removed, the canonical form each row's hash
// covers, and the verification of the whole hash chain.
//
// It is not the storage (internal/store appends rows under a lock on the
// chain head) nor the decision of what is recorded (internal/api).
package audit

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strings"

	"github.com/certfleet/certfleet/internal/store"
)

// Seal returns hex(SHA-256(e.PrevHash || canonical row)). The canonical row
// is the JSON array [time_ms, account_id, principal, access_key_id,
// source_ip, action, params, code, request_id].
func Seal(e *store.AuditEvent) string {
	row, _ := json.Marshal([]any{e.Time.UnixMilli(), e.AccountID, e.Principal, e.AccessKeyID, e.SourceIP, e.Action, e.Params, e.Code, e.RequestID})
	h := sha256.New()
	h.Write([]byte(e.PrevHash))
	h.Write(row)
	return hex.EncodeToString(h.Sum(nil))
}

// Signing parameters are not recorded: they say nothing about the change.
var dropped = map[string]bool{"signature": true, "signaturenonce": true, "signaturemethod": true, "signatureversion": true,
	"timestamp": true, "accesskeyid": true, "format": true, "action": true, "version": true, "signaturetype": true}

// secretName reports whether a parameter (or JSON key) holds a secret.
func secretName(name string) bool {
	n := strings.ToLower(name)
	if n == "key" || n == "secretkey" || n == "accesskeysecret" {
		return true
	}
	for _, part := range []string{"secret", "password", "passwd", "token", "privatekey", "smtp", "credential"} {
		if strings.Contains(n, part) {
			return true
		}
	}
	return false
}

// maxValue bounds a recorded value (certificate bodies are long).
const maxValue = 256

// Redact returns params as a JSON object with signing parameters dropped,
// secrets replaced by "***" (also inside JSON-valued parameters such as
// Config), tokens inside URLs redacted (RedactURLs), and long values
// shortened. A parameter or JSON key is secret when its name says so
// (secret, password, token, …) or when it is one of secretKeys (the Config
// keys the product descriptions mark Secret, compared case-insensitively).
func Redact(params url.Values, secretKeys ...string) string {
	extra := map[string]bool{}
	for _, k := range secretKeys {
		extra[strings.ToLower(k)] = true
	}
	isSecret := func(name string) bool { return secretName(name) || extra[strings.ToLower(name)] }
	out := map[string]any{}
	keys := make([]string, 0, len(params))
	for k := range params {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if dropped[strings.ToLower(k)] {
			continue
		}
		v := params.Get(k)
		switch {
		case isSecret(k):
			out[k] = "***"
		case strings.HasPrefix(strings.TrimSpace(v), "{"):
			var obj any
			if json.Unmarshal([]byte(v), &obj) == nil {
				b, _ := json.Marshal(redactJSON(obj, isSecret))
				out[k] = shorten(string(b))
				continue
			}
			out[k] = shorten(RedactURLs(v))
		default:
			out[k] = shorten(RedactURLs(v))
		}
	}
	b, _ := json.Marshal(out)
	return string(b)
}

func redactJSON(v any, isSecret func(string) bool) any {
	switch x := v.(type) {
	case map[string]any:
		for k, vv := range x {
			if isSecret(k) {
				x[k] = "***"
			} else {
				x[k] = redactJSON(vv, isSecret)
			}
		}
	case []any:
		for i := range x {
			x[i] = redactJSON(x[i], isSecret)
		}
	case string:
		return RedactURLs(x)
	}
	return v
}

// urlPattern finds URLs in free text (an error message, a log line).
var urlPattern = regexp.MustCompile(`[A-Za-z][A-Za-z0-9+.-]*://[^\s"'<>` + "`" + `]+`)

// urlSecretParams are query parameters that carry credentials in webhook and
// API URLs (DingTalk's access_token, Feishu's sign, API keys).
var urlSecretParams = []string{"access_token", "key", "sign", "secret", "token"}

// RedactURLs returns s with the credentials inside every URL it contains
// replaced by "***": the password of userinfo (user:pass@), and the values
// of query parameters named access_token, key, sign, secret or token, or
// whose name says it is a secret (as Redact decides). Everything else is
// kept, so the host and path still tell which endpoint it was. It is the one
// redaction of URLs: the audit trail, logs and ListNotification use it.
func RedactURLs(s string) string {
	if !strings.Contains(s, "://") {
		return s
	}
	return urlPattern.ReplaceAllStringFunc(s, redactURL)
}

func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return raw[:strings.Index(raw, "://")+3] + "***"
	}
	if u.User != nil {
		if _, ok := u.User.Password(); ok {
			u.User = url.UserPassword(u.User.Username(), "***")
		} else if u.User.Username() != "" {
			u.User = url.User("***") // a token alone (https://TOKEN@host)
		}
	}
	if u.RawQuery != "" {
		parts := strings.Split(u.RawQuery, "&")
		for i, p := range parts {
			name, _, hasValue := strings.Cut(p, "=")
			n, _ := url.QueryUnescape(name)
			if hasValue && (slices.Contains(urlSecretParams, strings.ToLower(n)) || secretName(n)) {
				parts[i] = name + "=***"
			}
		}
		u.RawQuery = strings.Join(parts, "&")
	}
	return strings.ReplaceAll(u.String(), "%2A%2A%2A", "***")
}

func shorten(s string) string {
	if len(s) <= maxValue {
		return s
	}
	return s[:maxValue] + fmt.Sprintf("…(%d bytes)", len(s))
}

// BadRowError names the first row where the chain breaks.
type BadRowError struct {
	ID     int64
	Reason string
}

func (e *BadRowError) Error() string {
	return fmt.Sprintf("audit: row %d: %s", e.ID, e.Reason)
}

// Verify walks the whole chain, oldest first, and returns the number of rows
// checked, or a *BadRowError for the first row whose prev_hash does not link
// to the row before or whose hash does not match its content, or when the
// chain head does not name the last row (rows removed from the end).
func Verify(ctx context.Context, st store.AuditStore) (int64, error) {
	var after, n int64
	prev := ""
	for {
		rows, err := st.AuditScan(ctx, after, 1000)
		if err != nil {
			return n, err
		}
		for i := range rows {
			e := &rows[i]
			if e.PrevHash != prev {
				return n, &BadRowError{ID: e.ID, Reason: "prev_hash does not match the previous row's hash (a row before it was changed, removed or inserted)"}
			}
			if Seal(e) != e.Hash {
				return n, &BadRowError{ID: e.ID, Reason: "hash does not match the row's content (the row was changed)"}
			}
			prev, after = e.Hash, e.ID
			n++
		}
		if len(rows) < 1000 {
			break
		}
	}
	headID, headHash, err := st.AuditHead(ctx)
	if err != nil {
		return n, err
	}
	if headID != after || headHash != prev {
		return n, &BadRowError{ID: headID, Reason: fmt.Sprintf("the chain head names row %d but the last row is %d (rows were removed from the end)", headID, after)}
	}
	return n, nil
}
