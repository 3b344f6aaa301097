// Package ramapi serves the RAM operations of version 2015-05-01 (users,
// access keys, groups, policies and their attachments) on certfleet's one
// endpoint, with the request and response fields of
// github.com/alibabacloud-go/ram-20150501/v2. The front (internal/api)
// verifies the signature, authorizes the call, and dispatches an Action of
// this version to Routes; the handlers read the parameters, call the store
// and return the response body (the front adds RequestId) or an
// *apierr.Error.
//
// It is not where policies are evaluated (internal/policy, called by the
// front's authorizer) nor where access keys are verified (internal/auth).
package ramapi

import (
	"context"
	"errors"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/certfleet/certfleet/internal/api/apierr"
	"github.com/certfleet/certfleet/internal/auth"
	"github.com/certfleet/certfleet/internal/policy"
	"github.com/certfleet/certfleet/internal/store"
)

// Version is the API version of the RAM operations.
const Version = "2015-05-01"

// Params reads a call's parameters; errors are *apierr.Error naming the
// parameter. The front implements it.
type Params interface {
	// Has reports whether name is given and not empty.
	Has(name string) bool
	// Given reports whether name is given, even empty.
	Given(name string) bool
	// Str is name's value, trimmed; "" when absent.
	Str(name string) string
	// Required is Str, or MissingParameter when empty.
	Required(name string) (string, error)
	// Text is an optional free text of at most max characters.
	Text(name string, max int) (string, error)
	// Int64 is an optional integer; ok is false when absent.
	Int64(name string) (v int64, ok bool, err error)
	// Bool is an optional boolean, false when absent.
	Bool(name string) (bool, error)
}

// Call is what a handler knows of a request: the caller, authenticated and
// authorized by the front, and the parameters.
type Call struct {
	AccountID int64
	UserID    int64 // the RAM user calling; 0 for the account's root
	Params    Params
}

// Handler serves one action and returns the response body fields (the
// front adds RequestId).
type Handler func(ctx context.Context, c *Call) (any, error)

// Config is what the handlers need from the node.
type Config struct {
	// Store keeps the RAM entities and access keys. Required.
	Store store.Store
	// SealSecret seals a new access key's secret for the store. Required.
	SealSecret func(secret []byte) []byte
	// Changed is called after a RAM change (users, groups, policies,
	// attachments), so cached authorizations are dropped. Optional.
	Changed func()
	// KeyChanged is called after an access key's status changed or it was
	// deleted, so a cached key is dropped. Optional.
	KeyChanged func(accessKeyID string)
}

// Server serves the RAM operations. It is safe for concurrent use.
type Server struct {
	store store.Store
	cfg   Config
}

// New returns the RAM handlers.
func New(cfg Config) *Server { return &Server{store: cfg.Store, cfg: cfg} }

// Routes is the table of the RAM operations: Action → handler.
func (s *Server) Routes() map[string]Handler {
	return map[string]Handler{
		"CreateUser": s.createUser, "GetUser": s.getUser, "UpdateUser": s.updateUser,
		"DeleteUser": s.deleteUser, "ListUsers": s.listUsers,
		"CreateAccessKey": s.createAccessKey, "UpdateAccessKey": s.updateAccessKey,
		"DeleteAccessKey": s.deleteAccessKey, "ListAccessKeys": s.listAccessKeys,
		"CreateGroup": s.createGroup, "DeleteGroup": s.deleteGroup, "ListGroups": s.listGroups,
		"AddUserToGroup": s.addUserToGroup, "RemoveUserFromGroup": s.removeUserFromGroup,
		"ListGroupsForUser": s.listGroupsForUser,
		"CreatePolicy":      s.createPolicy, "GetPolicy": s.getPolicy, "DeletePolicy": s.deletePolicy,
		"ListPolicies": s.listPolicies, "CreatePolicyVersion": s.createPolicyVersion,
		"SetDefaultPolicyVersion": s.setDefaultPolicyVersion, "ListPolicyVersions": s.listPolicyVersions,
		"AttachPolicyToUser": s.attach(store.PrincipalUser), "AttachPolicyToGroup": s.attach(store.PrincipalGroup),
		"DetachPolicyFromUser": s.detach(store.PrincipalUser), "DetachPolicyFromGroup": s.detach(store.PrincipalGroup),
		"ListPoliciesForUser": s.listPoliciesFor(store.PrincipalUser), "ListPoliciesForGroup": s.listPoliciesFor(store.PrincipalGroup),
		"CreateLoginProfile": s.createLoginProfile, "UpdateLoginProfile": s.updateLoginProfile, // loginprofile.go
		"GetLoginProfile": s.getLoginProfile, "DeleteLoginProfile": s.deleteLoginProfile,
	}
}

// Limits as RAM's.
const (
	maxUserKeys       = 2
	maxPolicyVersions = 5
)

func ramError(code string, status int, msg string) *apierr.Error {
	return &apierr.Error{Code: code, Status: status, Message: msg}
}

func errNoEntity(kind, name string) *apierr.Error {
	return ramError("EntityNotExist."+kind, http.StatusNotFound, "The "+strings.ToLower(kind)+" "+name+" does not exist in this account.")
}

func errEntityExists(kind, name string) *apierr.Error {
	return ramError("EntityAlreadyExists."+kind, http.StatusConflict, "The "+strings.ToLower(kind)+" "+name+" already exists in this account.")
}

func ramDate(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05Z") }

var ramName = regexp.MustCompile(`^[a-zA-Z0-9.@_-]{1,64}$`)
var policyName = regexp.MustCompile(`^[a-zA-Z0-9-]{1,128}$`)

// validName reads a required name parameter that must match re.
func validName(p Params, name string, re *regexp.Regexp) (string, error) {
	v, err := p.Required(name)
	if err != nil {
		return "", err
	}
	if !re.MatchString(v) {
		return "", apierr.Invalid(name, "%q must match %s", v, re.String())
	}
	return v, nil
}

// changed tells the front's authorizer that RAM changed through this node.
func (s *Server) changed() {
	if s.cfg.Changed != nil {
		s.cfg.Changed()
	}
}

// keyChanged tells the front that an access key changed through this node
// (other nodes drop it from their caches within their TTL).
func (s *Server) keyChanged(id string) {
	if s.cfg.KeyChanged != nil {
		s.cfg.KeyChanged(id)
	}
}

type ramUserOut struct {
	UserId      string
	UserName    string
	DisplayName string
	Email       string
	MobilePhone string
	Comments    string
	CreateDate  string
	UpdateDate  string
}

func userOut(u store.RAMUser) ramUserOut {
	return ramUserOut{UserId: strconv.FormatInt(u.ID, 10), UserName: u.Name, DisplayName: u.DisplayName, Email: u.Email,
		MobilePhone: u.Mobile, Comments: u.Comments, CreateDate: ramDate(u.Created), UpdateDate: ramDate(u.Updated)}
}

func (s *Server) user(ctx context.Context, c *Call, param string) (store.RAMUser, error) {
	name, err := c.Params.Required(param)
	if err != nil {
		return store.RAMUser{}, err
	}
	u, err := s.store.RAMUserGet(ctx, c.AccountID, name)
	if errors.Is(err, store.ErrNotFound) {
		return u, errNoEntity("User", name)
	}
	return u, err
}

func (s *Server) createUser(ctx context.Context, c *Call) (any, error) {
	name, err := validName(c.Params, "UserName", ramName)
	if err != nil {
		return nil, err
	}
	u := store.RAMUser{AccountID: c.AccountID, Name: name}
	for _, f := range []struct {
		param string
		dst   *string
		max   int
	}{{"DisplayName", &u.DisplayName, 128}, {"Email", &u.Email, 128}, {"MobilePhone", &u.Mobile, 32}, {"Comments", &u.Comments, 128}} {
		if *f.dst, err = c.Params.Text(f.param, f.max); err != nil {
			return nil, err
		}
	}
	if u.DisplayName == "" {
		u.DisplayName = name
	}
	if err := s.store.RAMUserCreate(ctx, &u); errors.Is(err, store.ErrConflict) {
		return nil, errEntityExists("User", name)
	} else if err != nil {
		return nil, err
	}
	s.changed()
	return struct{ User ramUserOut }{userOut(u)}, nil
}

func (s *Server) getUser(ctx context.Context, c *Call) (any, error) {
	u, err := s.user(ctx, c, "UserName")
	if err != nil {
		return nil, err
	}
	return struct{ User ramUserOut }{userOut(u)}, nil
}

func (s *Server) updateUser(ctx context.Context, c *Call) (any, error) {
	u, err := s.user(ctx, c, "UserName")
	if err != nil {
		return nil, err
	}
	if c.Params.Has("NewUserName") {
		if u.Name, err = validName(c.Params, "NewUserName", ramName); err != nil {
			return nil, err
		}
	}
	for _, f := range []struct {
		param string
		dst   *string
		max   int
	}{{"NewDisplayName", &u.DisplayName, 128}, {"NewEmail", &u.Email, 128}, {"NewMobilePhone", &u.Mobile, 32}, {"NewComments", &u.Comments, 128}} {
		if c.Params.Given(f.param) {
			if *f.dst, err = c.Params.Text(f.param, f.max); err != nil {
				return nil, err
			}
		}
	}
	if err := s.store.RAMUserUpdate(ctx, &u); errors.Is(err, store.ErrConflict) {
		return nil, errEntityExists("User", u.Name)
	} else if err != nil {
		return nil, err
	}
	s.changed()
	return struct{ User ramUserOut }{userOut(u)}, nil
}

func (s *Server) deleteUser(ctx context.Context, c *Call) (any, error) {
	u, err := s.user(ctx, c, "UserName")
	if err != nil {
		return nil, err
	}
	if err := s.store.RAMUserDelete(ctx, c.AccountID, u.ID); errors.Is(err, store.ErrInUse) {
		return nil, ramError("DeleteConflict.User.AccessKey", http.StatusConflict, "The user "+u.Name+" still has access keys; delete them first.")
	} else if err != nil {
		return nil, err
	}
	// Its console password and sessions go with it (user IDs are never reused).
	if err := s.store.LoginProfileDelete(ctx, c.AccountID, u.ID); err != nil && !errors.Is(err, store.ErrNotFound) {
		return nil, err
	}
	s.changed()
	return struct{}{}, nil
}

// marker pages RAM lists: Marker is the last ID seen, MaxItems 1–1000 (default 100).
func marker(p Params) (after int64, max int, err error) {
	if s := p.Str("Marker"); s != "" {
		if after, err = strconv.ParseInt(s, 10, 64); err != nil {
			return 0, 0, apierr.Invalid("Marker", "use the Marker of the previous response")
		}
	}
	max = 100
	if v, ok, err := p.Int64("MaxItems"); err != nil {
		return 0, 0, err
	} else if ok {
		if v < 1 || v > 1000 {
			return 0, 0, apierr.Invalid("MaxItems", "must be between 1 and 1000")
		}
		max = int(v)
	}
	return after, max, nil
}

func page[T any](items []T, max int, id func(T) int64) ([]T, bool, string) {
	if len(items) > max {
		items = items[:max]
		return items, true, strconv.FormatInt(id(items[max-1]), 10)
	}
	return items, false, ""
}

func (s *Server) listUsers(ctx context.Context, c *Call) (any, error) {
	after, max, err := marker(c.Params)
	if err != nil {
		return nil, err
	}
	list, err := s.store.RAMUserList(ctx, store.RAMListParams{AccountID: c.AccountID, AfterID: after, Limit: max + 1})
	if err != nil {
		return nil, err
	}
	list, trunc, next := page(list, max, func(u store.RAMUser) int64 { return u.ID })
	out := make([]ramUserOut, 0, len(list))
	for _, u := range list {
		out = append(out, userOut(u))
	}
	return struct {
		IsTruncated bool
		Marker      string `json:",omitempty"`
		Users       struct{ User []ramUserOut }
	}{trunc, next, struct{ User []ramUserOut }{out}}, nil
}

// keyOwner resolves the UserName of a key operation: absent means the caller itself.
func (s *Server) keyOwner(ctx context.Context, c *Call) (int64, error) {
	if !c.Params.Has("UserName") {
		return c.UserID, nil
	}
	u, err := s.user(ctx, c, "UserName")
	return u.ID, err
}

func (s *Server) createAccessKey(ctx context.Context, c *Call) (any, error) {
	uid, err := s.keyOwner(ctx, c)
	if err != nil {
		return nil, err
	}
	id, sec := auth.NewAccessKey()
	k := store.AccessKey{ID: id, AccountID: c.AccountID, UserID: uid, Status: "Active", SecretEnc: s.cfg.SealSecret([]byte(sec)), Created: time.Now()}
	if err := s.store.AccessKeyCreate(ctx, k, maxUserKeys); errors.Is(err, store.ErrLimitExceeded) {
		return nil, ramError("LimitExceeded.User.AccessKey", http.StatusBadRequest, "A user may have at most 2 access keys; delete one first.")
	} else if err != nil {
		return nil, err
	}
	type keyOut struct{ AccessKeyId, AccessKeySecret, Status, CreateDate string }
	return struct{ AccessKey keyOut }{keyOut{id, sec, "Active", ramDate(k.Created)}}, nil
}

func (s *Server) updateAccessKey(ctx context.Context, c *Call) (any, error) {
	uid, err := s.keyOwner(ctx, c)
	if err != nil {
		return nil, err
	}
	id, err := c.Params.Required("UserAccessKeyId")
	if err != nil {
		return nil, err
	}
	status, err := c.Params.Required("Status")
	if err != nil {
		return nil, err
	}
	if status != "Active" && status != "Inactive" {
		return nil, apierr.Invalid("Status", "must be Active or Inactive")
	}
	if err := s.store.AccessKeySetStatus(ctx, c.AccountID, uid, id, store.AccessKeyStatus(status)); errors.Is(err, store.ErrNotFound) {
		return nil, errNoEntity("User.AccessKey", id)
	} else if err != nil {
		return nil, err
	}
	s.keyChanged(id)
	return struct{}{}, nil
}

func (s *Server) deleteAccessKey(ctx context.Context, c *Call) (any, error) {
	uid, err := s.keyOwner(ctx, c)
	if err != nil {
		return nil, err
	}
	id, err := c.Params.Required("UserAccessKeyId")
	if err != nil {
		return nil, err
	}
	if err := s.store.AccessKeyDelete(ctx, c.AccountID, uid, id); errors.Is(err, store.ErrNotFound) {
		return nil, errNoEntity("User.AccessKey", id)
	} else if err != nil {
		return nil, err
	}
	s.keyChanged(id)
	return struct{}{}, nil
}

func (s *Server) listAccessKeys(ctx context.Context, c *Call) (any, error) {
	uid, err := s.keyOwner(ctx, c)
	if err != nil {
		return nil, err
	}
	keys, err := s.store.AccessKeyList(ctx, c.AccountID, uid)
	if err != nil {
		return nil, err
	}
	type keyOut struct{ AccessKeyId, Status, CreateDate string }
	out := make([]keyOut, 0, len(keys))
	for _, k := range keys {
		out = append(out, keyOut{k.ID, string(k.Status), ramDate(k.Created)})
	}
	return struct{ AccessKeys struct{ AccessKey []keyOut } }{struct{ AccessKey []keyOut }{out}}, nil
}

type ramGroupOut struct {
	GroupId    string
	GroupName  string
	Comments   string
	CreateDate string `json:",omitempty"`
	UpdateDate string `json:",omitempty"`
	JoinDate   string `json:",omitempty"`
}

func groupOut(g store.RAMGroup) ramGroupOut {
	o := ramGroupOut{GroupId: strconv.FormatInt(g.ID, 10), GroupName: g.Name, Comments: g.Comments}
	if g.Joined.IsZero() {
		o.CreateDate, o.UpdateDate = ramDate(g.Created), ramDate(g.Updated)
	} else {
		o.JoinDate = ramDate(g.Joined)
	}
	return o
}

func (s *Server) group(ctx context.Context, c *Call) (store.RAMGroup, error) {
	name, err := c.Params.Required("GroupName")
	if err != nil {
		return store.RAMGroup{}, err
	}
	g, err := s.store.RAMGroupGet(ctx, c.AccountID, name)
	if errors.Is(err, store.ErrNotFound) {
		return g, errNoEntity("Group", name)
	}
	return g, err
}

func (s *Server) createGroup(ctx context.Context, c *Call) (any, error) {
	name, err := validName(c.Params, "GroupName", ramName)
	if err != nil {
		return nil, err
	}
	g := store.RAMGroup{AccountID: c.AccountID, Name: name}
	if g.Comments, err = c.Params.Text("Comments", 128); err != nil {
		return nil, err
	}
	if err := s.store.RAMGroupCreate(ctx, &g); errors.Is(err, store.ErrConflict) {
		return nil, errEntityExists("Group", name)
	} else if err != nil {
		return nil, err
	}
	s.changed()
	return struct{ Group ramGroupOut }{groupOut(g)}, nil
}

func (s *Server) deleteGroup(ctx context.Context, c *Call) (any, error) {
	g, err := s.group(ctx, c)
	if err != nil {
		return nil, err
	}
	if err := s.store.RAMGroupDelete(ctx, c.AccountID, g.ID); errors.Is(err, store.ErrInUse) {
		return nil, ramError("DeleteConflict.Group.User", http.StatusConflict, "The group "+g.Name+" still has members or attached policies; remove them first.")
	} else if err != nil {
		return nil, err
	}
	s.changed()
	return struct{}{}, nil
}

func (s *Server) listGroups(ctx context.Context, c *Call) (any, error) {
	after, max, err := marker(c.Params)
	if err != nil {
		return nil, err
	}
	list, err := s.store.RAMGroupList(ctx, store.RAMListParams{AccountID: c.AccountID, AfterID: after, Limit: max + 1})
	if err != nil {
		return nil, err
	}
	list, trunc, next := page(list, max, func(g store.RAMGroup) int64 { return g.ID })
	out := make([]ramGroupOut, 0, len(list))
	for _, g := range list {
		out = append(out, groupOut(g))
	}
	return struct {
		IsTruncated bool
		Marker      string `json:",omitempty"`
		Groups      struct{ Group []ramGroupOut }
	}{trunc, next, struct{ Group []ramGroupOut }{out}}, nil
}

func (s *Server) addUserToGroup(ctx context.Context, c *Call) (any, error) {
	g, err := s.group(ctx, c)
	if err != nil {
		return nil, err
	}
	u, err := s.user(ctx, c, "UserName")
	if err != nil {
		return nil, err
	}
	if err := s.store.RAMGroupAddUser(ctx, c.AccountID, g.ID, u.ID); errors.Is(err, store.ErrConflict) {
		return nil, errEntityExists("User.Group", u.Name+" in "+g.Name)
	} else if err != nil {
		return nil, err
	}
	s.changed()
	return struct{}{}, nil
}

func (s *Server) removeUserFromGroup(ctx context.Context, c *Call) (any, error) {
	g, err := s.group(ctx, c)
	if err != nil {
		return nil, err
	}
	u, err := s.user(ctx, c, "UserName")
	if err != nil {
		return nil, err
	}
	if err := s.store.RAMGroupRemoveUser(ctx, c.AccountID, g.ID, u.ID); errors.Is(err, store.ErrNotFound) {
		return nil, errNoEntity("User.Group", u.Name+" in "+g.Name)
	} else if err != nil {
		return nil, err
	}
	s.changed()
	return struct{}{}, nil
}

func (s *Server) listGroupsForUser(ctx context.Context, c *Call) (any, error) {
	u, err := s.user(ctx, c, "UserName")
	if err != nil {
		return nil, err
	}
	list, err := s.store.RAMGroupsForUser(ctx, c.AccountID, u.ID)
	if err != nil {
		return nil, err
	}
	out := make([]ramGroupOut, 0, len(list))
	for _, g := range list {
		out = append(out, groupOut(g))
	}
	return struct{ Groups struct{ Group []ramGroupOut } }{struct{ Group []ramGroupOut }{out}}, nil
}

type ramPolicyOut struct {
	PolicyName      string
	PolicyType      string
	Description     string
	DefaultVersion  string
	CreateDate      string
	UpdateDate      string `json:",omitempty"`
	AttachmentCount *int32 `json:",omitempty"`
	PolicyDocument  string `json:",omitempty"`
}

func customOut(p store.RAMPolicy) ramPolicyOut {
	return ramPolicyOut{PolicyName: p.Name, PolicyType: store.PolicyCustom, Description: p.Description, DefaultVersion: p.DefaultVersion,
		CreateDate: ramDate(p.Created), UpdateDate: ramDate(p.Updated)}
}

// systemEpoch is the creation date shown for System policies.
var systemEpoch = time.Date(2020, 4, 7, 0, 0, 0, 0, time.UTC)

func systemOut(name string) ramPolicyOut {
	return ramPolicyOut{PolicyName: name, PolicyType: store.PolicySystem, Description: systemPolicies[name].Description, DefaultVersion: "v1",
		CreateDate: ramDate(systemEpoch), UpdateDate: ramDate(systemEpoch)}
}

// policyDoc validates a PolicyDocument parameter.
func policyDoc(c *Call) (string, error) {
	doc, err := c.Params.Required("PolicyDocument")
	if err != nil {
		return "", err
	}
	if len(doc) > 6144 {
		return "", ramError("LimitExceeded.Policy.Document", http.StatusBadRequest, "A policy document may be at most 6144 bytes.")
	}
	if _, err := policy.Parse(doc); err != nil {
		return "", ramError("MalformedPolicyDocument", http.StatusBadRequest, "The policy document is malformed: "+err.Error())
	}
	return doc, nil
}

// customPolicy finds a custom policy of the account by PolicyName.
func (s *Server) customPolicy(ctx context.Context, c *Call) (store.RAMPolicy, error) {
	name, err := c.Params.Required("PolicyName")
	if err != nil {
		return store.RAMPolicy{}, err
	}
	p, err := s.store.RAMPolicyGet(ctx, c.AccountID, name)
	if errors.Is(err, store.ErrNotFound) {
		return p, errNoEntity("Policy", name)
	}
	return p, err
}

func (s *Server) createPolicy(ctx context.Context, c *Call) (any, error) {
	name, err := validName(c.Params, "PolicyName", policyName)
	if err != nil {
		return nil, err
	}
	if _, ok := systemPolicies[name]; ok {
		return nil, errEntityExists("Policy", name)
	}
	doc, err := policyDoc(c)
	if err != nil {
		return nil, err
	}
	p := store.RAMPolicy{AccountID: c.AccountID, Name: name}
	if p.Description, err = c.Params.Text("Description", 1024); err != nil {
		return nil, err
	}
	if err := s.store.RAMPolicyCreate(ctx, &p, doc); errors.Is(err, store.ErrConflict) {
		return nil, errEntityExists("Policy", name)
	} else if err != nil {
		return nil, err
	}
	s.changed()
	o := customOut(p)
	o.UpdateDate = ""
	return struct{ Policy ramPolicyOut }{o}, nil
}

// policyType reads PolicyType (System or Custom), required unless def is set.
func policyType(c *Call, def string) (string, error) {
	t := c.Params.Str("PolicyType")
	if t == "" && def != "" {
		return def, nil
	}
	if t != store.PolicySystem && t != store.PolicyCustom {
		if t == "" {
			return "", apierr.Missing("PolicyType")
		}
		return "", apierr.Invalid("PolicyType", "must be System or Custom")
	}
	return t, nil
}

type versionOut struct {
	VersionId        string
	IsDefaultVersion bool
	PolicyDocument   string
	CreateDate       string
}

func (s *Server) getPolicy(ctx context.Context, c *Call) (any, error) {
	typ, err := policyType(c, "")
	if err != nil {
		return nil, err
	}
	var o ramPolicyOut
	var v versionOut
	if typ == store.PolicySystem {
		name, err := c.Params.Required("PolicyName")
		if err != nil {
			return nil, err
		}
		sp, ok := systemPolicies[name]
		if !ok {
			return nil, errNoEntity("Policy", name)
		}
		o, v = systemOut(name), versionOut{"v1", true, sp.Document, ramDate(systemEpoch)}
	} else {
		p, err := s.customPolicy(ctx, c)
		if err != nil {
			return nil, err
		}
		o, v = customOut(p), versionOut{p.DefaultVersion, true, p.DefaultDocument, ramDate(p.Updated)}
	}
	n, err := s.store.RAMAttachmentCount(ctx, c.AccountID, typ, o.PolicyName)
	if err != nil {
		return nil, err
	}
	n32 := int32(n)
	o.AttachmentCount, o.PolicyDocument = &n32, v.PolicyDocument
	return struct {
		Policy               ramPolicyOut
		DefaultPolicyVersion versionOut
	}{o, v}, nil
}

func (s *Server) deletePolicy(ctx context.Context, c *Call) (any, error) {
	p, err := s.customPolicy(ctx, c)
	if err != nil {
		return nil, err
	}
	if err := s.store.RAMPolicyDelete(ctx, c.AccountID, p.ID); errors.Is(err, store.ErrInUse) {
		return nil, ramError("DeleteConflict.Policy.User", http.StatusConflict, "The policy "+p.Name+" is attached to users or groups; detach it first.")
	} else if err != nil {
		return nil, err
	}
	s.changed()
	return struct{}{}, nil
}

func (s *Server) listPolicies(ctx context.Context, c *Call) (any, error) {
	after, max, err := marker(c.Params)
	if err != nil {
		return nil, err
	}
	typ := c.Params.Str("PolicyType")
	var out []ramPolicyOut
	// System policies come first, under Marker 0 ("" for the first page).
	if (typ == "" || typ == store.PolicySystem) && after == 0 {
		for _, n := range systemPolicyNames {
			out = append(out, systemOut(n))
		}
	}
	trunc, next := false, ""
	if typ == "" || typ == store.PolicyCustom {
		list, err := s.store.RAMPolicyList(ctx, store.RAMListParams{AccountID: c.AccountID, AfterID: after, Limit: max + 1})
		if err != nil {
			return nil, err
		}
		list, trunc, next = page(list, max, func(p store.RAMPolicy) int64 { return p.ID })
		for _, p := range list {
			out = append(out, customOut(p))
		}
	}
	for i := range out {
		n, err := s.store.RAMAttachmentCount(ctx, c.AccountID, out[i].PolicyType, out[i].PolicyName)
		if err != nil {
			return nil, err
		}
		n32 := int32(n)
		out[i].AttachmentCount = &n32
	}
	return struct {
		IsTruncated bool
		Marker      string `json:",omitempty"`
		Policies    struct{ Policy []ramPolicyOut }
	}{trunc, next, struct{ Policy []ramPolicyOut }{out}}, nil
}

func (s *Server) createPolicyVersion(ctx context.Context, c *Call) (any, error) {
	p, err := s.customPolicy(ctx, c)
	if err != nil {
		return nil, err
	}
	doc, err := policyDoc(c)
	if err != nil {
		return nil, err
	}
	setDefault, err := c.Params.Bool("SetAsDefault")
	if err != nil {
		return nil, err
	}
	rotate := c.Params.Str("RotateStrategy") == "DeleteOldestNonDefaultVersionWhenLimitExceeded"
	v, err := s.store.RAMPolicyVersionCreate(ctx, c.AccountID, p.ID, doc, setDefault, rotate, maxPolicyVersions)
	if errors.Is(err, store.ErrLimitExceeded) {
		return nil, ramError("LimitExceeded.Policy.Version", http.StatusBadRequest,
			"A policy may have at most 5 versions; delete one or set RotateStrategy=DeleteOldestNonDefaultVersionWhenLimitExceeded.")
	} else if err != nil {
		return nil, err
	}
	s.changed()
	return struct{ PolicyVersion versionOut }{versionOut{v.VersionID, v.IsDefault, v.Document, ramDate(v.Created)}}, nil
}

func (s *Server) setDefaultPolicyVersion(ctx context.Context, c *Call) (any, error) {
	p, err := s.customPolicy(ctx, c)
	if err != nil {
		return nil, err
	}
	vid, err := c.Params.Required("VersionId")
	if err != nil {
		return nil, err
	}
	if err := s.store.RAMPolicySetDefault(ctx, c.AccountID, p.ID, vid); errors.Is(err, store.ErrNotFound) {
		return nil, errNoEntity("PolicyVersion", p.Name+" "+vid)
	} else if err != nil {
		return nil, err
	}
	s.changed()
	return struct{}{}, nil
}

func (s *Server) listPolicyVersions(ctx context.Context, c *Call) (any, error) {
	typ, err := policyType(c, "")
	if err != nil {
		return nil, err
	}
	var out []versionOut
	if typ == store.PolicySystem {
		name, err := c.Params.Required("PolicyName")
		if err != nil {
			return nil, err
		}
		sp, ok := systemPolicies[name]
		if !ok {
			return nil, errNoEntity("Policy", name)
		}
		out = []versionOut{{"v1", true, sp.Document, ramDate(systemEpoch)}}
	} else {
		p, err := s.customPolicy(ctx, c)
		if err != nil {
			return nil, err
		}
		vs, err := s.store.RAMPolicyVersions(ctx, c.AccountID, p.ID)
		if err != nil {
			return nil, err
		}
		for _, v := range vs {
			out = append(out, versionOut{v.VersionID, v.IsDefault, v.Document, ramDate(v.Created)})
		}
	}
	return struct {
		PolicyVersions struct{ PolicyVersion []versionOut }
	}{struct{ PolicyVersion []versionOut }{out}}, nil
}

// attachment resolves the principal and policy of an attach/detach call.
func (s *Server) attachment(ctx context.Context, c *Call, principal string) (store.RAMAttachment, error) {
	at := store.RAMAttachment{AccountID: c.AccountID, PrincipalType: principal}
	typ, err := policyType(c, "")
	if err != nil {
		return at, err
	}
	at.PolicyType = typ
	if typ == store.PolicySystem {
		name, err := c.Params.Required("PolicyName")
		if err != nil {
			return at, err
		}
		if _, ok := systemPolicies[name]; !ok {
			return at, errNoEntity("Policy", name)
		}
		at.PolicyName = name
	} else {
		p, err := s.customPolicy(ctx, c)
		if err != nil {
			return at, err
		}
		at.PolicyName = p.Name
	}
	if principal == store.PrincipalUser {
		u, err := s.user(ctx, c, "UserName")
		at.PrincipalID = u.ID
		return at, err
	}
	g, err := s.group(ctx, c)
	at.PrincipalID = g.ID
	return at, err
}

func (s *Server) attach(principal string) Handler {
	return func(ctx context.Context, c *Call) (any, error) {
		at, err := s.attachment(ctx, c, principal)
		if err != nil {
			return nil, err
		}
		if err := s.store.RAMAttach(ctx, at); errors.Is(err, store.ErrConflict) {
			return nil, errEntityExists(principal+".Policy", at.PolicyName)
		} else if err != nil {
			return nil, err
		}
		s.changed()
		return struct{}{}, nil
	}
}

func (s *Server) detach(principal string) Handler {
	return func(ctx context.Context, c *Call) (any, error) {
		at, err := s.attachment(ctx, c, principal)
		if err != nil {
			return nil, err
		}
		if err := s.store.RAMDetach(ctx, at); errors.Is(err, store.ErrNotFound) {
			return nil, errNoEntity(principal+".Policy", at.PolicyName)
		} else if err != nil {
			return nil, err
		}
		s.changed()
		return struct{}{}, nil
	}
}

func (s *Server) listPoliciesFor(principal string) Handler {
	return func(ctx context.Context, c *Call) (any, error) {
		var id int64
		if principal == store.PrincipalUser {
			u, err := s.user(ctx, c, "UserName")
			if err != nil {
				return nil, err
			}
			id = u.ID
		} else {
			g, err := s.group(ctx, c)
			if err != nil {
				return nil, err
			}
			id = g.ID
		}
		ats, err := s.store.RAMAttachments(ctx, c.AccountID, principal, id)
		if err != nil {
			return nil, err
		}
		type attOut struct{ PolicyName, PolicyType, Description, DefaultVersion, AttachDate string }
		out := make([]attOut, 0, len(ats))
		for _, at := range ats {
			o := attOut{PolicyName: at.PolicyName, PolicyType: at.PolicyType, DefaultVersion: "v1", AttachDate: ramDate(at.Attached)}
			if at.PolicyType == store.PolicySystem {
				o.Description = systemPolicies[at.PolicyName].Description
			} else if p, err := s.store.RAMPolicyGet(ctx, c.AccountID, at.PolicyName); err == nil {
				o.Description, o.DefaultVersion = p.Description, p.DefaultVersion
			}
			out = append(out, o)
		}
		return struct{ Policies struct{ Policy []attOut } }{struct{ Policy []attOut }{out}}, nil
	}
}
