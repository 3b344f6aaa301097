// Package deploy defines what a deployer is: the small contract between the
// engine and the code that puts a certificate on a target, and how a product
// describes itself (Description) so that validation, documentation, the CLI
// and ListCloudProducts come from one place. Each product lives in its own
// sub-package; deploy/registry lists them, and only internal/server builds
// that list — the engine and the API see a Catalog.
//
// It is not the engine: deployers know nothing of jobs, leases or retries.
// They do one deployment, say whether a failure is worth retrying, and hand
// back what is needed to restore the previous state.
package deploy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
)

// Target is the resource a certificate goes to, with its decoded Config and,
// when the resource names one, its credential (secret already unsealed).
type Target struct {
	// AccountID is the account owning the resource: the egress policy of
	// its connections depends on it.
	AccountID    int64
	ResourceID   int64
	CloudName    string
	CloudProduct string
	Domain       string
	// RegionID, InstanceID and ListenerPort are the resource's fields of the
	// same names (RegionId, InstanceId, ListenerPort): where a cloud product's
	// resource lives. Empty for products that do not use them.
	RegionID     string
	InstanceID   string
	ListenerPort string
	// ListenerID is the provider's listener name where it has one
	// ("lsn-…@443" for ALB/NLB), as Discovered.ListenerID.
	ListenerID string
	// Config is the resource's product-specific configuration (JSON object).
	Config json.RawMessage
	// Access is nil when the resource has no CloudAccessId.
	Access *Access
	// Scope is what the owning account may touch on the server's own
	// machine. The engine and the API always fill it from the account; the
	// zero value (unconfined) is the root account's.
	Scope Scope

	// parsed keeps what ParsedConfig made of Config (WithParsedConfig).
	parsed *parsedConfig
}

// parsedConfig is one Config's parse, made at most once.
type parsedConfig struct {
	src  json.RawMessage // the Config it parses: a Target given another one parses that
	once sync.Once
	v    any
	err  error
}

// WithParsedConfig returns t with room for ParsedConfig to keep its parse
// of t.Config, shared by every copy of the result: the engine's Targets
// are parsed once per attempt however often the deployer (its host gate,
// Deploy, verification) reads the Config.
func (t Target) WithParsedConfig() Target {
	t.parsed = &parsedConfig{src: t.Config}
	return t
}

// ParsedConfig returns parse(t.Config), parsed only once for a Target made
// by WithParsedConfig (a copy whose Config was replaced since, and every
// other Target, is parsed at each call). A deployer passes the same parse
// function every time.
func ParsedConfig[T any](t Target, parse func(json.RawMessage) (T, error)) (T, error) {
	if t.parsed == nil || !sameBytes(t.Config, t.parsed.src) {
		return parse(t.Config)
	}
	t.parsed.once.Do(func() { t.parsed.v, t.parsed.err = parse(t.Config) })
	v, ok := t.parsed.v.(T)
	if !ok { // another type's parse: not this one's to share
		return parse(t.Config)
	}
	return v, t.parsed.err
}

// sameBytes reports whether a and b are the same slice of the same array.
func sameBytes(a, b json.RawMessage) bool {
	return len(a) == len(b) && (len(a) == 0 || &a[0] == &b[0])
}

// Scope confines an account's targets on the certfleet server's machine.
type Scope struct {
	// Confined is true for every account but root: such an account writes
	// local files only inside LocalRoot.
	Confined bool
	// LocalRoot is the subdirectory of the server's --local-root a confined
	// account's local targets may write in; empty grants no local writes.
	LocalRoot string
}

// Access is a credential from CreateCloudAccess.
type Access struct {
	ID        int64
	CloudName string
	SecretID  string
	SecretKey string // plaintext; never log it
	Config    json.RawMessage
}

// Bundle is the certificate being deployed, in the forms targets want.
type Bundle struct {
	CertID int64
	Name   string
	// CertPEM is the leaf alone; ChainPEM the intermediates; FullChainPEM both.
	CertPEM      string
	ChainPEM     string
	FullChainPEM string
	KeyPEM       string // plaintext; never log it
	Sha2         string // SHA-256 of the leaf DER, upper-case hex
}

// Request is one deployment: a bundle to a target, for a job's worker.
type Request struct {
	JobID    int64
	WorkerID int64
	Target   Target
	Bundle   Bundle
}

// Deployer puts a certificate on one kind of target.
//
// Delivery is at least once. The engine may call Deploy again for a request
// it already delivered: a retry after an error, an attempt taken over from a
// node that crashed before recording the outcome. Deployers must therefore
// be idempotent: deploying the bundle a target already holds succeeds and
// leaves the target serving the same thing (rewriting the same bytes and
// reloading is allowed; Checker lets the engine skip it). A Deploy that
// returns an error may have changed the target, partly or wholly; the engine
// then tries again or rolls back with what Snapshot (or Deploy) returned.
//
// Deploy must be safe for concurrent use with different Targets; the engine
// never runs two deployments to the same resource at once.
//
// ctx carries one attempt's deadline and is cancelled when the engine shuts
// down or loses the worker's lease. When it ends, Deploy (and every method of
// the optional interfaces below) returns promptly with an error wrapping
// ctx.Err(); work already handed to the target, such as a reload running on
// a host, may complete after the call has returned.
//
// It returns previous, an opaque blob (sealed at rest by the engine) that
// Rollback can use to restore what the target served before; nil when there
// was nothing before.
//
// Errors wrapped with Permanent are not retried: a Config the deployer
// refuses, a missing key, a rejected credential or host key, a target that
// refuses the certificate. Any other error is transient (timeout, refused
// connection, 5xx) and is retried with backoff. Deploy and the optional
// methods refuse a Config that Validate refuses, with the same permanent
// error.
// No error carries the bundle's private key or the credential's secret, even
// when it quotes what the target answered.
//
// deploytest.Run checks this contract against a real target.
type Deployer interface {
	Deploy(ctx context.Context, req Request) (previous []byte, err error)
}

// Rollbacker is implemented by deployers that can restore a previous state.
// previous is what Snapshot (or else Deploy) returned, possibly nil. The
// engine sets req.Bundle to the certificate the resource held before the
// deployment being undone, or to an empty Bundle (CertID 0) when it held none.
type Rollbacker interface {
	Rollback(ctx context.Context, req Request, previous []byte) error
}

// ConfigValidator is implemented by products whose Config needs checks the
// Description cannot express (a path inside a root, a host key that parses,
// two keys naming the same file). config has already passed the
// Description's checks (Validate normalizes it first). Errors name the key.
type ConfigValidator interface {
	ValidateConfig(config json.RawMessage) error
}

// TargetValidator is implemented by products whose checks depend on more
// than the Config: the owning account's Scope. Validate calls it instead of
// ValidateConfig; t.Config has already passed the Description's checks.
type TargetValidator interface {
	ValidateTarget(t Target) error
}

// Claimer is implemented by products whose targets certfleet owns
// exclusively, such as files on its own machine. Claims returns names, unique
// across every account and product (prefix them with the product), that no
// other resource may hold at the same time; the store refuses a second claim.
// t has passed Validate.
type Claimer interface {
	Claims(t Target) ([]string, error)
}

// Hoster is implemented by deployers that can name the host a target lives
// on, for per-host concurrency limits. An empty name means no limit applies.
type Hoster interface {
	Host(t Target) string
}

// Checker is implemented by deployers that can tell whether a target already
// holds exactly this bundle; the engine then skips the deployment.
type Checker interface {
	AlreadyDeployed(ctx context.Context, req Request) (bool, error)
}

type permanentError struct{ err error }

func (e permanentError) Error() string { return e.err.Error() }
func (e permanentError) Unwrap() error { return e.err }

// Permanent marks err as not worth retrying (bad config, key rejected…).
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return permanentError{err}
}

// Permanentf is fmt.Errorf followed by Permanent.
func Permanentf(format string, a ...any) error { return Permanent(fmt.Errorf(format, a...)) }

// IsPermanent reports whether err (or an error it wraps) was marked Permanent.
func IsPermanent(err error) bool {
	var p permanentError
	return errors.As(err, &p)
}

// Snapshotter is implemented by deployers that can capture, before they
// deploy, what Rollback needs. The engine records the snapshot durably before
// calling Deploy, so a crash in the middle of a deployment still leaves a way
// back; Deploy's own previous value is then ignored.
type Snapshotter interface {
	Snapshot(ctx context.Context, req Request) (previous []byte, err error)
}
