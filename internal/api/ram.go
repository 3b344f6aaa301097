package api

import (
	"context"
	"errors"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/certfleet/certfleet/internal/auth"
	"github.com/certfleet/certfleet/internal/policy"
	"github.com/certfleet/certfleet/internal/secret"
	"github.com/certfleet/certfleet/internal/store"
)

// ramRoutes is the table of the RAM operations (version 2015-05-01), with
// the request and response fields of github.com/alibabacloud-go/ram-20150501/v2.
func (a *API) ramRoutes() map[string]handler {
	return map[string]handler{
		"CreateUser": a.ramCreateUser, "GetUser": a.ramGetUser, "UpdateUser": a.ramUpdateUser,
		"DeleteUser": a.ramDeleteUser, "ListUsers": a.ramListUsers,
		"CreateAccessKey": a.ramCreateAccessKey, "UpdateAccessKey": a.ramUpdateAccessKey,
		"DeleteAccessKey": a.ramDeleteAccessKey, "ListAccessKeys": a.ramListAccessKeys,
		"CreateGroup": a.ramCreateGroup, "DeleteGroup": a.ramDeleteGroup, "ListGroups": a.ramListGroups,
		"AddUserToGroup": a.ramAddUserToGroup, "RemoveUserFromGroup": a.ramRemoveUserFromGroup,
		"ListGroupsForUser": a.ramListGroupsForUser,
		"CreatePolicy":      a.ramCreatePolicy, "GetPolicy": a.ramGetPolicy, "DeletePolicy": a.ramDeletePolicy,
		"ListPolicies": a.ramListPolicies, "CreatePolicyVersion": a.ramCreatePolicyVersion,
		"SetDefaultPolicyVersion": a.ramSetDefaultPolicyVersion, "ListPolicyVersions": a.ramListPolicyVersions,
		"AttachPolicyToUser": a.ramAttach(store.PrincipalUser), "AttachPolicyToGroup": a.ramAttach(store.PrincipalGroup),
		"DetachPolicyFromUser": a.ramDetach(store.PrincipalUser), "DetachPolicyFromGroup": a.ramDetach(store.PrincipalGroup),
		"ListPoliciesForUser": a.ramListPoliciesFor(store.PrincipalUser), "ListPoliciesForGroup": a.ramListPoliciesFor(store.PrincipalGroup),
	}
}

// Limits as RAM's.
const (
	maxUserKeys       = 2
	maxPolicyVersions = 5
)

func ramError(code string, status int, msg string) *Error {
	return &Error{Code: code, Status: status, Message: msg}
}

func errNoEntity(kind, name string) *Error {
	return ramError("EntityNotExist."+kind, http.StatusNotFound, "The "+strings.ToLower(kind)+" "+name+" does not exist in this account.")
}

func errEntityExists(kind, name string) *Error {
	return ramError("EntityAlreadyExists."+kind, http.StatusConflict, "The "+strings.ToLower(kind)+" "+name+" already exists in this account.")
}

func ramDate(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05Z") }

var ramName = regexp.MustCompile(`^[a-zA-Z0-9.@_-]{1,64}$`)
var policyName = regexp.MustCompile(`^[a-zA-Z0-9-]{1,128}$`)

func (p params) ramName(name string, re *regexp.Regexp) (string, error) {
	v, err := p.required(name)
	if err != nil {
		return "", err
	}
	if !re.MatchString(v) {
		return "", errInvalid(name, "%q must match %s", v, re.String())
	}
	return v, nil
}

// changed tells the authorizer that RAM changed through this node.
func (a *API) changed() { a.authz.invalidate() }

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

func (a *API) user(ctx context.Context, c *call, param string) (store.RAMUser, error) {
	name, err := c.params.required(param)
	if err != nil {
		return store.RAMUser{}, err
	}
	u, err := a.store.RAMUserGet(ctx, c.accountID, name)
	if errors.Is(err, store.ErrNotFound) {
		return u, errNoEntity("User", name)
	}
	return u, err
}

func (a *API) ramCreateUser(ctx context.Context, c *call) (any, error) {
	name, err := c.params.ramName("UserName", ramName)
	if err != nil {
		return nil, err
	}
	u := store.RAMUser{AccountID: c.accountID, Name: name}
	for _, f := range []struct {
		param string
		dst   *string
		max   int
	}{{"DisplayName", &u.DisplayName, 128}, {"Email", &u.Email, 128}, {"MobilePhone", &u.Mobile, 32}, {"Comments", &u.Comments, 128}} {
		if *f.dst, err = c.params.text(f.param, f.max); err != nil {
			return nil, err
		}
	}
	if u.DisplayName == "" {
		u.DisplayName = name
	}
	if err := a.store.RAMUserCreate(ctx, &u); errors.Is(err, store.ErrConflict) {
		return nil, errEntityExists("User", name)
	} else if err != nil {
		return nil, err
	}
	a.changed()
	return struct{ User ramUserOut }{userOut(u)}, nil
}

func (a *API) ramGetUser(ctx context.Context, c *call) (any, error) {
	u, err := a.user(ctx, c, "UserName")
	if err != nil {
		return nil, err
	}
	return struct{ User ramUserOut }{userOut(u)}, nil
}

func (a *API) ramUpdateUser(ctx context.Context, c *call) (any, error) {
	u, err := a.user(ctx, c, "UserName")
	if err != nil {
		return nil, err
	}
	if c.params.has("NewUserName") {
		if u.Name, err = c.params.ramName("NewUserName", ramName); err != nil {
			return nil, err
		}
	}
	for _, f := range []struct {
		param string
		dst   *string
		max   int
	}{{"NewDisplayName", &u.DisplayName, 128}, {"NewEmail", &u.Email, 128}, {"NewMobilePhone", &u.Mobile, 32}, {"NewComments", &u.Comments, 128}} {
		if c.params.v.Has(f.param) {
			if *f.dst, err = c.params.text(f.param, f.max); err != nil {
				return nil, err
			}
		}
	}
	if err := a.store.RAMUserUpdate(ctx, &u); errors.Is(err, store.ErrConflict) {
		return nil, errEntityExists("User", u.Name)
	} else if err != nil {
		return nil, err
	}
	a.changed()
	return struct{ User ramUserOut }{userOut(u)}, nil
}

func (a *API) ramDeleteUser(ctx context.Context, c *call) (any, error) {
	u, err := a.user(ctx, c, "UserName")
	if err != nil {
		return nil, err
	}
	if err := a.store.RAMUserDelete(ctx, c.accountID, u.ID); errors.Is(err, store.ErrInUse) {
		return nil, ramError("DeleteConflict.User.AccessKey", http.StatusConflict, "The user "+u.Name+" still has access keys; delete them first.")
	} else if err != nil {
		return nil, err
	}
	a.changed()
	return struct{}{}, nil
}

// marker pages RAM lists: Marker is the last ID seen, MaxItems 1–1000 (default 100).
func (p params) marker() (after int64, max int, err error) {
	if s := p.str("Marker"); s != "" {
		if after, err = strconv.ParseInt(s, 10, 64); err != nil {
			return 0, 0, errInvalid("Marker", "use the Marker of the previous response")
		}
	}
	max = 100
	if v, ok, err := p.int64("MaxItems"); err != nil {
		return 0, 0, err
	} else if ok {
		if v < 1 || v > 1000 {
			return 0, 0, errInvalid("MaxItems", "must be between 1 and 1000")
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

func (a *API) ramListUsers(ctx context.Context, c *call) (any, error) {
	after, max, err := c.params.marker()
	if err != nil {
		return nil, err
	}
	list, err := a.store.RAMUserList(ctx, store.RAMListParams{AccountID: c.accountID, AfterID: after, Limit: max + 1})
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
func (a *API) keyOwner(ctx context.Context, c *call) (int64, error) {
	if !c.params.has("UserName") {
		return c.userID, nil
	}
	u, err := a.user(ctx, c, "UserName")
	return u.ID, err
}

func (a *API) ramCreateAccessKey(ctx context.Context, c *call) (any, error) {
	uid, err := a.keyOwner(ctx, c)
	if err != nil {
		return nil, err
	}
	id, sec := auth.NewAccessKey()
	k := store.AccessKey{ID: id, AccountID: c.accountID, UserID: uid, Status: store.AccessKeyActive, SecretEnc: a.box.Seal([]byte(sec), secret.PurposeAccessKey), Created: time.Now()}
	if err := a.store.AccessKeyCreate(ctx, k, maxUserKeys); errors.Is(err, store.ErrLimitExceeded) {
		return nil, ramError("LimitExceeded.User.AccessKey", http.StatusBadRequest, "A user may have at most 2 access keys; delete one first.")
	} else if err != nil {
		return nil, err
	}
	type keyOut struct{ AccessKeyId, AccessKeySecret, Status, CreateDate string }
	return struct{ AccessKey keyOut }{keyOut{id, sec, string(k.Status), ramDate(k.Created)}}, nil
}

func (a *API) ramUpdateAccessKey(ctx context.Context, c *call) (any, error) {
	uid, err := a.keyOwner(ctx, c)
	if err != nil {
		return nil, err
	}
	id, err := c.params.required("UserAccessKeyId")
	if err != nil {
		return nil, err
	}
	s, err := c.params.required("Status")
	if err != nil {
		return nil, err
	}
	status := store.AccessKeyStatus(s)
	if status != store.AccessKeyActive && status != store.AccessKeyInactive {
		return nil, errInvalid("Status", "must be Active or Inactive")
	}
	if err := a.store.AccessKeySetStatus(ctx, c.accountID, uid, id, status); errors.Is(err, store.ErrNotFound) {
		return nil, errNoEntity("User.AccessKey", id)
	} else if err != nil {
		return nil, err
	}
	a.keys.Delete(id) // other nodes: within keyCacheTTL
	return struct{}{}, nil
}

func (a *API) ramDeleteAccessKey(ctx context.Context, c *call) (any, error) {
	uid, err := a.keyOwner(ctx, c)
	if err != nil {
		return nil, err
	}
	id, err := c.params.required("UserAccessKeyId")
	if err != nil {
		return nil, err
	}
	if err := a.store.AccessKeyDelete(ctx, c.accountID, uid, id); errors.Is(err, store.ErrNotFound) {
		return nil, errNoEntity("User.AccessKey", id)
	} else if err != nil {
		return nil, err
	}
	a.keys.Delete(id)
	return struct{}{}, nil
}

func (a *API) ramListAccessKeys(ctx context.Context, c *call) (any, error) {
	uid, err := a.keyOwner(ctx, c)
	if err != nil {
		return nil, err
	}
	keys, err := a.store.AccessKeyList(ctx, c.accountID, uid)
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

func (a *API) group(ctx context.Context, c *call) (store.RAMGroup, error) {
	name, err := c.params.required("GroupName")
	if err != nil {
		return store.RAMGroup{}, err
	}
	g, err := a.store.RAMGroupGet(ctx, c.accountID, name)
	if errors.Is(err, store.ErrNotFound) {
		return g, errNoEntity("Group", name)
	}
	return g, err
}

func (a *API) ramCreateGroup(ctx context.Context, c *call) (any, error) {
	name, err := c.params.ramName("GroupName", ramName)
	if err != nil {
		return nil, err
	}
	g := store.RAMGroup{AccountID: c.accountID, Name: name}
	if g.Comments, err = c.params.text("Comments", 128); err != nil {
		return nil, err
	}
	if err := a.store.RAMGroupCreate(ctx, &g); errors.Is(err, store.ErrConflict) {
		return nil, errEntityExists("Group", name)
	} else if err != nil {
		return nil, err
	}
	a.changed()
	return struct{ Group ramGroupOut }{groupOut(g)}, nil
}

func (a *API) ramDeleteGroup(ctx context.Context, c *call) (any, error) {
	g, err := a.group(ctx, c)
	if err != nil {
		return nil, err
	}
	if err := a.store.RAMGroupDelete(ctx, c.accountID, g.ID); errors.Is(err, store.ErrInUse) {
		return nil, ramError("DeleteConflict.Group.User", http.StatusConflict, "The group "+g.Name+" still has members or attached policies; remove them first.")
	} else if err != nil {
		return nil, err
	}
	a.changed()
	return struct{}{}, nil
}

func (a *API) ramListGroups(ctx context.Context, c *call) (any, error) {
	after, max, err := c.params.marker()
	if err != nil {
		return nil, err
	}
	list, err := a.store.RAMGroupList(ctx, store.RAMListParams{AccountID: c.accountID, AfterID: after, Limit: max + 1})
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

func (a *API) ramAddUserToGroup(ctx context.Context, c *call) (any, error) {
	g, err := a.group(ctx, c)
	if err != nil {
		return nil, err
	}
	u, err := a.user(ctx, c, "UserName")
	if err != nil {
		return nil, err
	}
	if err := a.store.RAMGroupAddUser(ctx, c.accountID, g.ID, u.ID); errors.Is(err, store.ErrConflict) {
		return nil, errEntityExists("User.Group", u.Name+" in "+g.Name)
	} else if err != nil {
		return nil, err
	}
	a.changed()
	return struct{}{}, nil
}

func (a *API) ramRemoveUserFromGroup(ctx context.Context, c *call) (any, error) {
	g, err := a.group(ctx, c)
	if err != nil {
		return nil, err
	}
	u, err := a.user(ctx, c, "UserName")
	if err != nil {
		return nil, err
	}
	if err := a.store.RAMGroupRemoveUser(ctx, c.accountID, g.ID, u.ID); errors.Is(err, store.ErrNotFound) {
		return nil, errNoEntity("User.Group", u.Name+" in "+g.Name)
	} else if err != nil {
		return nil, err
	}
	a.changed()
	return struct{}{}, nil
}

func (a *API) ramListGroupsForUser(ctx context.Context, c *call) (any, error) {
	u, err := a.user(ctx, c, "UserName")
	if err != nil {
		return nil, err
	}
	list, err := a.store.RAMGroupsForUser(ctx, c.accountID, u.ID)
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
func policyDoc(c *call) (string, error) {
	doc, err := c.params.required("PolicyDocument")
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
func (a *API) customPolicy(ctx context.Context, c *call) (store.RAMPolicy, error) {
	name, err := c.params.required("PolicyName")
	if err != nil {
		return store.RAMPolicy{}, err
	}
	p, err := a.store.RAMPolicyGet(ctx, c.accountID, name)
	if errors.Is(err, store.ErrNotFound) {
		return p, errNoEntity("Policy", name)
	}
	return p, err
}

func (a *API) ramCreatePolicy(ctx context.Context, c *call) (any, error) {
	name, err := c.params.ramName("PolicyName", policyName)
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
	p := store.RAMPolicy{AccountID: c.accountID, Name: name}
	if p.Description, err = c.params.text("Description", 1024); err != nil {
		return nil, err
	}
	if err := a.store.RAMPolicyCreate(ctx, &p, doc); errors.Is(err, store.ErrConflict) {
		return nil, errEntityExists("Policy", name)
	} else if err != nil {
		return nil, err
	}
	a.changed()
	o := customOut(p)
	o.UpdateDate = ""
	return struct{ Policy ramPolicyOut }{o}, nil
}

// policyType reads PolicyType (System or Custom), required unless def is set.
func policyType(c *call, def string) (string, error) {
	t := c.params.str("PolicyType")
	if t == "" && def != "" {
		return def, nil
	}
	if t != store.PolicySystem && t != store.PolicyCustom {
		if t == "" {
			return "", errMissing("PolicyType")
		}
		return "", errInvalid("PolicyType", "must be System or Custom")
	}
	return t, nil
}

type versionOut struct {
	VersionId        string
	IsDefaultVersion bool
	PolicyDocument   string
	CreateDate       string
}

func (a *API) ramGetPolicy(ctx context.Context, c *call) (any, error) {
	typ, err := policyType(c, "")
	if err != nil {
		return nil, err
	}
	var o ramPolicyOut
	var v versionOut
	if typ == store.PolicySystem {
		name, err := c.params.required("PolicyName")
		if err != nil {
			return nil, err
		}
		sp, ok := systemPolicies[name]
		if !ok {
			return nil, errNoEntity("Policy", name)
		}
		o, v = systemOut(name), versionOut{"v1", true, sp.Document, ramDate(systemEpoch)}
	} else {
		p, err := a.customPolicy(ctx, c)
		if err != nil {
			return nil, err
		}
		o, v = customOut(p), versionOut{p.DefaultVersion, true, p.DefaultDocument, ramDate(p.Updated)}
	}
	n, err := a.store.RAMAttachmentCount(ctx, c.accountID, typ, o.PolicyName)
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

func (a *API) ramDeletePolicy(ctx context.Context, c *call) (any, error) {
	p, err := a.customPolicy(ctx, c)
	if err != nil {
		return nil, err
	}
	if err := a.store.RAMPolicyDelete(ctx, c.accountID, p.ID); errors.Is(err, store.ErrInUse) {
		return nil, ramError("DeleteConflict.Policy.User", http.StatusConflict, "The policy "+p.Name+" is attached to users or groups; detach it first.")
	} else if err != nil {
		return nil, err
	}
	a.changed()
	return struct{}{}, nil
}

func (a *API) ramListPolicies(ctx context.Context, c *call) (any, error) {
	after, max, err := c.params.marker()
	if err != nil {
		return nil, err
	}
	typ := c.params.str("PolicyType")
	var out []ramPolicyOut
	// System policies come first, under Marker 0 ("" for the first page).
	if (typ == "" || typ == store.PolicySystem) && after == 0 {
		for _, n := range systemPolicyNames {
			out = append(out, systemOut(n))
		}
	}
	trunc, next := false, ""
	if typ == "" || typ == store.PolicyCustom {
		list, err := a.store.RAMPolicyList(ctx, store.RAMListParams{AccountID: c.accountID, AfterID: after, Limit: max + 1})
		if err != nil {
			return nil, err
		}
		list, trunc, next = page(list, max, func(p store.RAMPolicy) int64 { return p.ID })
		for _, p := range list {
			out = append(out, customOut(p))
		}
	}
	for i := range out {
		n, err := a.store.RAMAttachmentCount(ctx, c.accountID, out[i].PolicyType, out[i].PolicyName)
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

func (a *API) ramCreatePolicyVersion(ctx context.Context, c *call) (any, error) {
	p, err := a.customPolicy(ctx, c)
	if err != nil {
		return nil, err
	}
	doc, err := policyDoc(c)
	if err != nil {
		return nil, err
	}
	setDefault, err := c.params.bool("SetAsDefault")
	if err != nil {
		return nil, err
	}
	rotate := c.params.str("RotateStrategy") == "DeleteOldestNonDefaultVersionWhenLimitExceeded"
	v, err := a.store.RAMPolicyVersionCreate(ctx, c.accountID, p.ID, doc, setDefault, rotate, maxPolicyVersions)
	if errors.Is(err, store.ErrLimitExceeded) {
		return nil, ramError("LimitExceeded.Policy.Version", http.StatusBadRequest,
			"A policy may have at most 5 versions; delete one or set RotateStrategy=DeleteOldestNonDefaultVersionWhenLimitExceeded.")
	} else if err != nil {
		return nil, err
	}
	a.changed()
	return struct{ PolicyVersion versionOut }{versionOut{v.VersionID, v.IsDefault, v.Document, ramDate(v.Created)}}, nil
}

func (a *API) ramSetDefaultPolicyVersion(ctx context.Context, c *call) (any, error) {
	p, err := a.customPolicy(ctx, c)
	if err != nil {
		return nil, err
	}
	vid, err := c.params.required("VersionId")
	if err != nil {
		return nil, err
	}
	if err := a.store.RAMPolicySetDefault(ctx, c.accountID, p.ID, vid); errors.Is(err, store.ErrNotFound) {
		return nil, errNoEntity("PolicyVersion", p.Name+" "+vid)
	} else if err != nil {
		return nil, err
	}
	a.changed()
	return struct{}{}, nil
}

func (a *API) ramListPolicyVersions(ctx context.Context, c *call) (any, error) {
	typ, err := policyType(c, "")
	if err != nil {
		return nil, err
	}
	var out []versionOut
	if typ == store.PolicySystem {
		name, err := c.params.required("PolicyName")
		if err != nil {
			return nil, err
		}
		sp, ok := systemPolicies[name]
		if !ok {
			return nil, errNoEntity("Policy", name)
		}
		out = []versionOut{{"v1", true, sp.Document, ramDate(systemEpoch)}}
	} else {
		p, err := a.customPolicy(ctx, c)
		if err != nil {
			return nil, err
		}
		vs, err := a.store.RAMPolicyVersions(ctx, c.accountID, p.ID)
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
func (a *API) attachment(ctx context.Context, c *call, principal string) (store.RAMAttachment, error) {
	at := store.RAMAttachment{AccountID: c.accountID, PrincipalType: principal}
	typ, err := policyType(c, "")
	if err != nil {
		return at, err
	}
	at.PolicyType = typ
	if typ == store.PolicySystem {
		name, err := c.params.required("PolicyName")
		if err != nil {
			return at, err
		}
		if _, ok := systemPolicies[name]; !ok {
			return at, errNoEntity("Policy", name)
		}
		at.PolicyName = name
	} else {
		p, err := a.customPolicy(ctx, c)
		if err != nil {
			return at, err
		}
		at.PolicyName = p.Name
	}
	if principal == store.PrincipalUser {
		u, err := a.user(ctx, c, "UserName")
		at.PrincipalID = u.ID
		return at, err
	}
	g, err := a.group(ctx, c)
	at.PrincipalID = g.ID
	return at, err
}

func (a *API) ramAttach(principal string) handler {
	return func(ctx context.Context, c *call) (any, error) {
		at, err := a.attachment(ctx, c, principal)
		if err != nil {
			return nil, err
		}
		if err := a.store.RAMAttach(ctx, at); errors.Is(err, store.ErrConflict) {
			return nil, errEntityExists(principal+".Policy", at.PolicyName)
		} else if err != nil {
			return nil, err
		}
		a.changed()
		return struct{}{}, nil
	}
}

func (a *API) ramDetach(principal string) handler {
	return func(ctx context.Context, c *call) (any, error) {
		at, err := a.attachment(ctx, c, principal)
		if err != nil {
			return nil, err
		}
		if err := a.store.RAMDetach(ctx, at); errors.Is(err, store.ErrNotFound) {
			return nil, errNoEntity(principal+".Policy", at.PolicyName)
		} else if err != nil {
			return nil, err
		}
		a.changed()
		return struct{}{}, nil
	}
}

func (a *API) ramListPoliciesFor(principal string) handler {
	return func(ctx context.Context, c *call) (any, error) {
		var id int64
		if principal == store.PrincipalUser {
			u, err := a.user(ctx, c, "UserName")
			if err != nil {
				return nil, err
			}
			id = u.ID
		} else {
			g, err := a.group(ctx, c)
			if err != nil {
				return nil, err
			}
			id = g.ID
		}
		ats, err := a.store.RAMAttachments(ctx, c.accountID, principal, id)
		if err != nil {
			return nil, err
		}
		type attOut struct{ PolicyName, PolicyType, Description, DefaultVersion, AttachDate string }
		out := make([]attOut, 0, len(ats))
		for _, at := range ats {
			o := attOut{PolicyName: at.PolicyName, PolicyType: at.PolicyType, DefaultVersion: "v1", AttachDate: ramDate(at.Attached)}
			if at.PolicyType == store.PolicySystem {
				o.Description = systemPolicies[at.PolicyName].Description
			} else if p, err := a.store.RAMPolicyGet(ctx, c.accountID, at.PolicyName); err == nil {
				o.Description, o.DefaultVersion = p.Description, p.DefaultVersion
			}
			out = append(out, o)
		}
		return struct{ Policies struct{ Policy []attOut } }{struct{ Policy []attOut }{out}}, nil
	}
}
