package rollout

import (
	"fmt"

	"github.com/certfleet/certfleet/internal/certs"
	"github.com/certfleet/certfleet/internal/store"
)

// MatchError says which resource no certificate of a job covers.
type MatchError struct {
	ResourceID int64
	Domain     string
}

func (e *MatchError) Error() string {
	if e.Domain == "" {
		return fmt.Sprintf("resource %d has no Domain and the job has several certificates; give it a Domain or pass one certificate", e.ResourceID)
	}
	return fmt.Sprintf("resource %d (domain %s) is not covered by any certificate of the job", e.ResourceID, e.Domain)
}

// Match pairs each resource with the job certificate that serves it, by the
// rule of the CAS 2020-04-07 API reference certfleet follows: the one whose SANs cover the resource's Domain, exactly or
// by a one-label wildcard; among several, the one that expires last. A
// resource without a Domain takes the job's only certificate. It returns one
// worker per resource, in resource order, or a *MatchError.
func Match(cs []store.Certificate, resources []store.Resource) ([]store.Worker, error) {
	workers := make([]store.Worker, 0, len(resources))
	for _, r := range resources {
		var best *store.Certificate
		if r.Domain == "" {
			if len(cs) != 1 {
				return nil, &MatchError{ResourceID: r.ID}
			}
			best = &cs[0]
		} else {
			for i := range cs {
				c := &cs[i]
				if !certs.Covers(c.SANs, r.Domain) {
					continue
				}
				if best == nil || c.NotAfter.After(best.NotAfter) || (c.NotAfter.Equal(best.NotAfter) && c.ID > best.ID) {
					best = c
				}
			}
			if best == nil {
				return nil, &MatchError{ResourceID: r.ID, Domain: r.Domain}
			}
		}
		workers = append(workers, store.Worker{AccountID: r.AccountID, ResourceID: r.ID, CertID: best.ID,
			CloudName: r.CloudName, CloudProduct: r.CloudProduct})
	}
	return workers, nil
}
