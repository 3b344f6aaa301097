package store

import (
	"context"
	"errors"
	"time"
)

// ErrLimitExceeded is returned when a write would pass a fixed limit (the
// number of a policy's versions, a user's access keys).
var ErrLimitExceeded = errors.New("store: limit exceeded")

// RAM principal and policy types, as the RAM API names them.
const (
	PrincipalUser  = "User"
	PrincipalGroup = "Group"
	PolicySystem   = "System"
	PolicyCustom   = "Custom"
)

// RAMUser is a user of an account (a RAM sub-user): it signs with its own
// access keys and may do what the policies attached to it and its groups allow.
type RAMUser struct {
	ID          int64
	AccountID   int64
	Name        string
	DisplayName string
	Email       string
	Mobile      string
	Comments    string
	Created     time.Time
	Updated     time.Time
}

// RAMGroup is a named set of users sharing attached policies.
type RAMGroup struct {
	ID        int64
	AccountID int64
	Name      string
	Comments  string
	Created   time.Time
	Updated   time.Time
	// Joined is set by RAMGroupsForUser: when the user joined.
	Joined time.Time
}

// RAMPolicy is a custom policy. DefaultDocument is the default version's text.
type RAMPolicy struct {
	ID              int64
	AccountID       int64
	Name            string
	Description     string
	DefaultVersion  string
	DefaultDocument string
	Created         time.Time
	Updated         time.Time
}

// RAMPolicyVersion is one version ("v1", "v2"…) of a custom policy.
type RAMPolicyVersion struct {
	VersionID string
	Document  string
	IsDefault bool
	Created   time.Time
}

// RAMAttachment attaches a policy to a user or a group.
type RAMAttachment struct {
	AccountID     int64
	PrincipalType string // PrincipalUser | PrincipalGroup
	PrincipalID   int64
	PolicyType    string // PolicySystem | PolicyCustom
	PolicyName    string
	Attached      time.Time
}

// RAMGrant is one policy that applies to a user, directly or through a group.
// Document is empty for System policies (their text is defined in code).
type RAMGrant struct {
	PolicyType string
	PolicyName string
	Document   string
}

// RAMListParams pages a list by ID: rows after AfterID, at most Limit.
type RAMListParams struct {
	AccountID int64
	AfterID   int64
	Limit     int
}

// Account is a tenant: everything else belongs to exactly one.
type Account struct {
	ID      int64
	Name    string
	Created time.Time
	AccountSettings
}

// RootAccountName is the name of the root account, the operator's own: it
// is not confined by AccountSettings.
const RootAccountName = "root"

// IsRoot reports whether a is the root account.
func (a Account) IsRoot() bool { return a.Name == RootAccountName }

// AccountSettings confine what an account's targets may reach, beyond the
// server-wide policy. Zero values grant nothing extra.
type AccountSettings struct {
	// EgressAllow lists CIDRs and host names the account's outbound
	// connections (targets, probes, contact webhooks) may reach although the
	// server-wide policy refuses them to non-root accounts.
	EgressAllow []string
	// LocalRoot is the subdirectory of the server's --local-root the
	// account's local targets may write in; empty: none (the root account
	// keeps the whole --local-root).
	LocalRoot string
}

// RAMStore keeps accounts' RAM users, groups, policies and their access keys.
// Every write of users, groups, memberships, policies or attachments bumps
// the RAM generation (RAMGeneration) in the same transaction.
//
// Errors: ErrNotFound for a name or ID not in the account, ErrConflict for a
// duplicate name or attachment, ErrInUse for a delete that would orphan
// keys, members or attachments, ErrLimitExceeded for fixed limits.
type RAMStore interface {
	// AccountCreate creates an account; ErrConflict if the name is taken.
	AccountCreate(ctx context.Context, name string) (int64, error)
	// AccountGet returns an account by ID; ErrNotFound if there is none.
	AccountGet(ctx context.Context, id int64) (Account, error)
	// AccountGetByName returns an account by name; ErrNotFound if there is none.
	AccountGetByName(ctx context.Context, name string) (Account, error)
	// AccountSetSettings replaces an account's settings (EgressAllow,
	// LocalRoot); ErrNotFound if there is no such account.
	AccountSetSettings(ctx context.Context, id int64, s AccountSettings) error

	// AccessKeyList returns the keys of a user (userID 0: the account's root keys).
	AccessKeyList(ctx context.Context, accountID, userID int64) ([]AccessKey, error)
	// AccessKeyCreate adds a user's key; ErrLimitExceeded past max keys.
	AccessKeyCreate(ctx context.Context, k AccessKey, max int) error
	AccessKeySetStatus(ctx context.Context, accountID, userID int64, id string, status AccessKeyStatus) error
	AccessKeyDelete(ctx context.Context, accountID, userID int64, id string) error

	RAMUserCreate(ctx context.Context, u *RAMUser) error
	RAMUserGet(ctx context.Context, accountID int64, name string) (RAMUser, error)
	RAMUserGetByID(ctx context.Context, accountID, id int64) (RAMUser, error)
	// RAMUserUpdate rewrites the user's fields (by ID); ErrConflict on a taken name.
	RAMUserUpdate(ctx context.Context, u *RAMUser) error
	// RAMUserDelete deletes a user without access keys (ErrInUse otherwise),
	// with its group memberships and attachments.
	RAMUserDelete(ctx context.Context, accountID, id int64) error
	RAMUserList(ctx context.Context, p RAMListParams) ([]RAMUser, error)

	RAMGroupCreate(ctx context.Context, g *RAMGroup) error
	RAMGroupGet(ctx context.Context, accountID int64, name string) (RAMGroup, error)
	// RAMGroupDelete deletes a group without members or attachments (ErrInUse otherwise).
	RAMGroupDelete(ctx context.Context, accountID, id int64) error
	RAMGroupList(ctx context.Context, p RAMListParams) ([]RAMGroup, error)
	RAMGroupAddUser(ctx context.Context, accountID, groupID, userID int64) error
	RAMGroupRemoveUser(ctx context.Context, accountID, groupID, userID int64) error
	RAMGroupsForUser(ctx context.Context, accountID, userID int64) ([]RAMGroup, error)

	// RAMPolicyCreate creates a custom policy with version v1 as default.
	RAMPolicyCreate(ctx context.Context, p *RAMPolicy, document string) error
	RAMPolicyGet(ctx context.Context, accountID int64, name string) (RAMPolicy, error)
	// RAMPolicyDelete deletes an unattached policy (ErrInUse otherwise) and its versions.
	RAMPolicyDelete(ctx context.Context, accountID, id int64) error
	RAMPolicyList(ctx context.Context, p RAMListParams) ([]RAMPolicy, error)
	// RAMPolicyVersionCreate adds the next version; past max versions it
	// deletes the oldest non-default one when rotate, else ErrLimitExceeded.
	RAMPolicyVersionCreate(ctx context.Context, accountID, policyID int64, document string, setDefault, rotate bool, max int) (RAMPolicyVersion, error)
	RAMPolicySetDefault(ctx context.Context, accountID, policyID int64, versionID string) error
	RAMPolicyVersions(ctx context.Context, accountID, policyID int64) ([]RAMPolicyVersion, error)

	RAMAttach(ctx context.Context, a RAMAttachment) error
	RAMDetach(ctx context.Context, a RAMAttachment) error
	RAMAttachments(ctx context.Context, accountID int64, principalType string, principalID int64) ([]RAMAttachment, error)
	RAMAttachmentCount(ctx context.Context, accountID int64, policyType, policyName string) (int64, error)
	// RAMGrants returns the policies attached to the user or its groups,
	// custom ones with their default document.
	RAMGrants(ctx context.Context, accountID, userID int64) ([]RAMGrant, error)
	// RAMGeneration returns a counter bumped by every RAM write (any account).
	RAMGeneration(ctx context.Context) (int64, error)
}

// AuditEvent is one row of the audit trail.
type AuditEvent struct {
	ID          int64
	Time        time.Time
	AccountID   int64
	Principal   string
	AccessKeyID string
	SourceIP    string
	Action      string
	Params      string // JSON object, secrets removed
	Code        string // "Success" or the error code
	RequestID   string
	PrevHash    string
	Hash        string
}

// AuditListParams filters AuditList. Zero values do not filter.
type AuditListParams struct {
	AccountID int64
	Action    string
	Principal string
	Start     time.Time
	End       time.Time
	Offset    int
	Limit     int
}

// AuditStore keeps the append-only, hash-chained audit trail. There is one
// chain for the whole database.
type AuditStore interface {
	// AuditAppend appends es, in order: in one transaction serialised with
	// every other append (a lock on the chain head), it sets each event's
	// PrevHash to the hash before it (the first's to the head's), its Hash
	// to seal(e) and its ID, inserts the rows and moves the head. All or
	// none are appended.
	AuditAppend(ctx context.Context, es []*AuditEvent, seal func(e *AuditEvent) string) error
	// AuditList returns an account's events, newest first, and the total.
	AuditList(ctx context.Context, p AuditListParams) ([]AuditEvent, int64, error)
	// AuditScan returns events of every account with ID > afterID, oldest first.
	AuditScan(ctx context.Context, afterID int64, limit int) ([]AuditEvent, error)
	// AuditHead returns the chain head: the last appended ID and its hash.
	AuditHead(ctx context.Context) (lastID int64, hash string, err error)
}
