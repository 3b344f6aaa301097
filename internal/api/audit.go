package api

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/certfleet/certfleet/internal/audit"
	"github.com/certfleet/certfleet/internal/store"
)

// readOnly reports whether an action changes nothing (and so is not audited
// unless denied). LookupAuditEvents reads the trail itself.
func readOnly(action string) bool {
	for _, p := range []string{"List", "Describe", "Get", "Check", "Preview", "Lookup"} {
		if strings.HasPrefix(action, p) {
			return true
		}
	}
	return false
}

// withAudit records every call that changes something, every call
// refused by authorization and every answer that carries a private key
// (as the action yundun-cert:GetUserCertificatePrivateKey, naming CertId), after it was answered, in the hash-chained
// audit trail. A failure to record is logged with the RequestId.
func (a *API) withAudit(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		next.ServeHTTP(w, r)
		c := callFrom(r.Context())
		if !a.audit || (readOnly(c.action) && c.code != "Forbidden.RAM" && c.keyRead == 0) {
			return
		}
		if c.nonceSpent != nil && c.nonceSpent() != nil {
			return // a replayed read: refused, and not recorded as a call
		}
		code := c.code
		if code == "" {
			code = "Success"
		}
		principal := c.principal
		if c.userID != 0 && principal == "root" { // denied before the user was named
			principal = "user:" + itoa(c.userID)
		}
		action, params := ramAction(c.version, c.action), c.params.v
		if c.keyRead != 0 { // who read which certificate's key, and through which operation
			params = url.Values{"CertId": {itoa(c.keyRead)}, "Operation": {action}}
			if c.action == "GetCsrDetail" { // a CSR's key (issue 20)
				params = url.Values{"CsrId": {itoa(c.keyRead)}, "Operation": {action}}
			}
			action = ActionReadPrivateKey
		}
		e := &store.AuditEvent{Time: time.Now(), AccountID: c.accountID, Principal: principal, AccessKeyID: c.accessKeyID,
			SourceIP: sourceIP(r).String(), Action: action, Params: audit.Redact(params, a.secretKeys...), Code: code, RequestID: c.requestID}
		ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), 10*time.Second)
		defer cancel()
		if err := a.auditLog.do(ctx, e); err != nil {
			msg := "audit append failed"
			if ctx.Err() != nil { // its batch goes on: the event may yet be recorded
				msg = "audit append not confirmed within 10 s"
			}
			a.log.Error(msg, "request_id", c.requestID, "action", c.action, "error", err.Error())
		}
	})
}

type auditItem struct {
	EventId     int64
	EventTime   int64
	Principal   string
	AccessKeyId string
	SourceIp    string
	Action      string
	Parameters  string
	ResultCode  string
	RequestId   string
	Hash        string
}

// lookupAuditEvents lists the account's audit trail, newest first:
// filters Action (RAM action name), Principal, StartTime, EndTime (epoch ms);
// paging CurrentPage/ShowSize (default 50).
func (a *API) lookupAuditEvents(ctx context.Context, c *call) (any, error) {
	page, size, err := c.params.page(50)
	if err != nil {
		return nil, err
	}
	start, err := c.params.epochMS("StartTime")
	if err != nil {
		return nil, err
	}
	end, err := c.params.epochMS("EndTime")
	if err != nil {
		return nil, err
	}
	// The filter is EventAction; Action works too on V3 requests (V1 requests
	// use Action for the operation's own name, which is then not a filter).
	action := c.params.str("EventAction")
	if action == "" && c.params.str("Action") != c.action {
		action = c.params.str("Action")
	}
	list, total, err := a.store.AuditList(ctx, store.AuditListParams{AccountID: c.accountID, Action: action, Principal: c.params.str("Principal"),
		Start: start, End: end, Offset: (page - 1) * size, Limit: size})
	if err != nil {
		return nil, err
	}
	items := make([]auditItem, 0, len(list))
	for _, e := range list {
		items = append(items, auditItem{EventId: e.ID, EventTime: e.Time.UnixMilli(), Principal: e.Principal, AccessKeyId: e.AccessKeyID,
			SourceIp: e.SourceIP, Action: e.Action, Parameters: e.Params, ResultCode: e.Code, RequestId: e.RequestID, Hash: e.Hash})
	}
	return struct {
		Events      []auditItem
		CurrentPage int64
		ShowSize    int64
		TotalCount  int64
	}{items, int64(page), int64(size), total}, nil
}
