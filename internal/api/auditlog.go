package api

import (
	"context"

	"github.com/certfleet/certfleet/internal/audit"
	"github.com/certfleet/certfleet/internal/store"
)

// Audit events are appended by group commit: the events of calls answered
// together go into the chain in one transaction (store.AuditAppend), not
// one each. Every append takes the chain head's lock until it commits, so
// one transaction per event queued every changing call of every node
// behind one commit at a time (16 clients creating resources on PostgreSQL:
// about 11 of the calls in flight waiting on that lock; docs/benchmarks.md
// E17). A call still waits for its event to be committed before its answer
// is finished, as before.

// auditBatchMax bounds the events one transaction appends.
const auditBatchMax = 128

// auditLog appends audit events in batches (groupCommit).
type auditLog struct {
	st store.AuditStore
	groupCommit[*store.AuditEvent]
}

func (l *auditLog) init(st store.AuditStore) {
	l.st, l.max, l.write = st, auditBatchMax, l.append
}

// append is the batcher's write: one AuditAppend for the batch, all or none.
func (l *auditLog) append(ctx context.Context, es []*store.AuditEvent) []error {
	err := l.st.AuditAppend(ctx, es, audit.Seal)
	errs := make([]error, len(es))
	for i := range errs {
		errs[i] = err
	}
	return errs
}
