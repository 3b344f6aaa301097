package engine

import (
	"context"

	"github.com/certfleet/certfleet/internal/store"
)

// claimReads is what a claim's workers read before they deploy, read once
// for the whole claim: their resources in one statement per account, and
// each account and credential once. It is filled before the workers start
// and only read after, so they share it without a lock. A read that failed
// for the batch is made again by each worker on its own, with the error
// (and the retry) its own as before.
type claimReads struct {
	st        Store
	resources map[int64]store.Resource // by ID; missing: deleted since the job was made
	read      map[int64]bool           // accounts whose resources were read
	accounts  map[int64]store.Account
	accesses  map[[2]int64]store.CloudAccess
}

// readClaim reads what ws need.
func (e *Engine) readClaim(ctx context.Context, ws []store.Worker) *claimReads {
	rd := &claimReads{st: e.store, resources: map[int64]store.Resource{}, read: map[int64]bool{},
		accounts: map[int64]store.Account{}, accesses: map[[2]int64]store.CloudAccess{}}
	byAccount := map[int64][]int64{}
	for _, w := range ws {
		byAccount[w.AccountID] = append(byAccount[w.AccountID], w.ResourceID)
	}
	for acct, ids := range byAccount {
		rs, err := e.store.ResourceGetMany(ctx, acct, ids)
		if err != nil {
			continue
		}
		rd.read[acct] = true
		for _, r := range rs {
			rd.resources[r.ID] = r
			if r.CloudAccessID != 0 {
				k := [2]int64{acct, r.CloudAccessID}
				if _, ok := rd.accesses[k]; !ok {
					if ac, err := e.store.AccessGet(ctx, acct, r.CloudAccessID); err == nil {
						rd.accesses[k] = ac
					}
				}
			}
		}
		if a, err := e.store.AccountGet(ctx, acct); err == nil {
			rd.accounts[acct] = a
		}
	}
	return rd
}

// resource is w's resource, or ErrNotFound if it was deleted.
func (rd *claimReads) resource(ctx context.Context, w store.Worker) (store.Resource, error) {
	if !rd.read[w.AccountID] {
		return rd.st.ResourceGet(ctx, w.AccountID, w.ResourceID)
	}
	r, ok := rd.resources[w.ResourceID]
	if !ok {
		return store.Resource{}, store.ErrNotFound
	}
	return r, nil
}

// AccountGet and AccessGet make claimReads the rollout.TargetStore of its workers.
func (rd *claimReads) AccountGet(ctx context.Context, id int64) (store.Account, error) {
	if a, ok := rd.accounts[id]; ok {
		return a, nil
	}
	return rd.st.AccountGet(ctx, id)
}

func (rd *claimReads) AccessGet(ctx context.Context, accountID, id int64) (store.CloudAccess, error) {
	if ac, ok := rd.accesses[[2]int64{accountID, id}]; ok {
		return ac, nil
	}
	return rd.st.AccessGet(ctx, accountID, id)
}
