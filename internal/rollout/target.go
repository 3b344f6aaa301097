package rollout

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/certfleet/certfleet/internal/deploy"
	"github.com/certfleet/certfleet/internal/secret"
	"github.com/certfleet/certfleet/internal/store"
	"github.com/certfleet/certfleet/internal/verify"
)

// TargetStore is what TargetOf reads.
type TargetStore interface {
	AccountGet(ctx context.Context, id int64) (store.Account, error)
	AccessGet(ctx context.Context, accountID, id int64) (store.CloudAccess, error)
}

// TargetOf builds the deploy.Target of a stored resource, as a deployer sees
// it: secrets in its Config and credential opened, the generic keys
// (VerifyAddress…) split off into the returned settings, the owning
// account's Scope filled; its Config is parsed at most once however often
// the deployer reads it (deploy.ParsedConfig). Errors about the resource's own data are
// permanent; a failing read of the store is not.
func TargetOf(ctx context.Context, st TargetStore, box *secret.Box, res store.Resource) (deploy.Target, verify.Settings, error) {
	resConfig, err := box.OpenConfig(res.Config)
	if err != nil {
		return deploy.Target{}, verify.Settings{}, deploy.Permanent(fmt.Errorf("resource %d: %w", res.ID, err))
	}
	vs, config, err := verify.SplitConfig(json.RawMessage(resConfig))
	if err != nil {
		return deploy.Target{}, vs, deploy.Permanent(fmt.Errorf("resource %d: %w", res.ID, err))
	}
	acct, err := st.AccountGet(ctx, res.AccountID)
	if err != nil {
		return deploy.Target{}, vs, fmt.Errorf("account %d of resource %d: %w", res.AccountID, res.ID, err)
	}
	t := deploy.Target{ResourceID: res.ID, AccountID: res.AccountID, CloudName: res.CloudName, CloudProduct: res.CloudProduct,
		Domain: res.Domain, RegionID: res.RegionID, InstanceID: res.InstanceID, ListenerPort: res.ListenerPort, ListenerID: res.ListenerID,
		Config: config, Scope: ScopeOf(acct)}
	if res.CloudAccessID != 0 {
		ac, err := st.AccessGet(ctx, res.AccountID, res.CloudAccessID)
		if err != nil {
			return deploy.Target{}, vs, fmt.Errorf("cloud access %d of resource %d: %w", res.CloudAccessID, res.ID, err)
		}
		if t.Access, err = OpenAccess(box, ac); err != nil {
			return deploy.Target{}, vs, err
		}
	}
	return t.WithParsedConfig(), vs, nil
}

// ScopeOf is what an account's targets may touch on the server's machine.
func ScopeOf(acct store.Account) deploy.Scope {
	return deploy.Scope{Confined: !acct.IsRoot(), LocalRoot: acct.LocalRoot}
}

// OpenAccess opens a stored credential for a deployer.
func OpenAccess(box *secret.Box, ac store.CloudAccess) (*deploy.Access, error) {
	sk, err := box.Open(ac.SecretKeyEnc, secret.PurposeAccessSecret)
	if err != nil {
		return nil, fmt.Errorf("cloud access %d: %w", ac.ID, err)
	}
	cfg, err := box.OpenConfig(ac.Config)
	if err != nil {
		return nil, fmt.Errorf("cloud access %d: %w", ac.ID, err)
	}
	return &deploy.Access{ID: ac.ID, CloudName: ac.CloudName, SecretID: ac.SecretID, SecretKey: string(sk), Config: json.RawMessage(cfg)}, nil
}
