package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/certfleet/certfleet/internal/auth"
)

// TestWriteError checks the error body every failure becomes: the five
// fields the SDK reads, the status, and no internal detail for a 500.
func TestWriteError(t *testing.T) {
	t.Parallel()
	f := setup(t, Options{})
	logs := f.logTo()
	host, _ := os.Hostname()
	const docs = "https://github.com/certfleet/certfleet/blob/main/docs/errors.md#"
	tests := []struct {
		desc      string
		err       error
		status    int
		code      string
		message   string // exact, when set
		recommend string
		logged    string // in the log with the RequestId, when set
	}{
		{desc: "an API error", err: errMissing("Name"), status: 400, code: "MissingParameter",
			message: "Name is mandatory for this action.", recommend: docs + "missingparameter"},
		{desc: "a dotted code's anchor drops the dot", err: errUnknownKey("LTAIx"), status: 404, code: "InvalidAccessKeyId.NotFound",
			recommend: docs + "invalidaccesskeyidnotfound"},
		{desc: "an explicit Recommend is kept", err: &Error{Code: "InUse", Status: 400, Message: "m", Recommend: "see the job"},
			status: 400, code: "InUse", message: "m", recommend: "see the job"},
		{desc: "a wrapped API error", err: fmt.Errorf("handler: %w", errNotFound("Contact", 9)), status: 404, code: "NotFound",
			message: "Contact 9 does not exist.", recommend: docs + "notfound"},
		{desc: "an auth error", err: &auth.Error{Code: auth.CodeSignatureDoesNotMatch, Status: 400, Message: "bad signature"},
			status: 400, code: "SignatureDoesNotMatch", message: "bad signature", recommend: docs + "signaturedoesnotmatch"},
		{desc: "a wrapped auth error", err: fmt.Errorf("x: %w", &auth.Error{Code: auth.CodeTimeStampExpired, Status: 400, Message: "late"}),
			status: 400, code: "InvalidTimeStamp.Expired", message: "late", recommend: docs + "invalidtimestampexpired"},
		{desc: "anything else is an InternalError that hides the cause", err: errors.New("disk on fire at /var/lib/secret"),
			status: 500, code: "InternalError", recommend: docs + "internalerror", logged: "disk on fire"},
	}
	for i, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			c := &call{requestID: fmt.Sprintf("0A1B2C3D-0000-4000-8000-%012d", i), action: "ListContact"}
			rec := httptest.NewRecorder()
			f.api.writeError(rec, c, tc.err)
			var body map[string]any
			if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
				t.Fatalf("body %q: %v", rec.Body.String(), err)
			}
			wantError(t, rec.Code, rec.Header(), body, tc.status, tc.code, "")
			if body["RequestId"] != c.requestID || body["HostId"] != host {
				t.Errorf("RequestId, HostId = %v, %v; want %s, %s", body["RequestId"], body["HostId"], c.requestID, host)
			}
			if tc.message != "" && body["Message"] != tc.message {
				t.Errorf("Message = %v, want %s", body["Message"], tc.message)
			}
			if body["Recommend"] != tc.recommend {
				t.Errorf("Recommend = %v, want %s", body["Recommend"], tc.recommend)
			}
			if tc.logged != "" {
				if strings.Contains(rec.Body.String(), tc.logged) {
					t.Errorf("the cause reached the caller: %s", rec.Body.String())
				}
				if !logHas(logs.String(), c.requestID, tc.logged) {
					t.Errorf("no log line with RequestId %s and %q:\n%s", c.requestID, tc.logged, logs.String())
				}
			}
		})
	}
}

func logHas(logs string, all ...string) bool {
	for _, line := range strings.Split(logs, "\n") {
		ok := true
		for _, s := range all {
			ok = ok && strings.Contains(line, s)
		}
		if ok {
			return true
		}
	}
	return false
}

// TestErrorCodesDocumented checks every error code the front answers with
// has the anchor its default Recommend links to in docs/errors.md.
func TestErrorCodesDocumented(t *testing.T) {
	t.Parallel()
	doc, err := os.ReadFile("../../docs/errors.md")
	if err != nil {
		t.Skipf("docs/errors.md not readable: %v", err)
	}
	anchors := map[string]bool{}
	for _, m := range regexp.MustCompile(`<a id="([^"]+)">`).FindAllStringSubmatch(string(doc), -1) {
		anchors[m[1]] = true
	}
	codes := []string{"MissingParameter", "InvalidParameter", "IncorrectStatus", "NotFound", "InUse", "NameAlreadyExists",
		"IncompleteSignature", "SignatureDoesNotMatch", "SignatureNonceUsed", "InvalidTimeStamp.Expired",
		"InvalidAccessKeyId.NotFound", "Throttling.User", "InvalidAction.NotFound", "InvalidVersion", "InternalError"}
	f := setup(t, Options{})
	for _, code := range codes {
		rec := httptest.NewRecorder()
		f.api.writeError(rec, &call{requestID: "R"}, &Error{Code: code, Status: http.StatusBadRequest, Message: "m"})
		var body errorBody
		if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
			t.Fatal(err)
		}
		_, anchor, _ := strings.Cut(body.Recommend, "#")
		if !anchors[anchor] {
			t.Errorf("%s: Recommend %s points to no anchor in docs/errors.md", code, body.Recommend)
		}
	}
}
