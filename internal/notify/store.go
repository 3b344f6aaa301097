package notify

import (
	"context"
	"time"

	"github.com/certfleet/certfleet/internal/store"
)

// Store is what a Dispatcher needs of the store: job events to tell,
// messages to deliver, and the contacts, jobs, workers, resources and
// certificates a message names. A store.Store satisfies it.
type Store interface {
	JobEventsDue(ctx context.Context, p store.JobEventsDueParams) ([]store.JobEvent, error)
	NotificationEmit(ctx context.Context, p store.NotificationEmitParams) error
	NotificationClaimDue(ctx context.Context, p store.NotificationClaimDueParams) ([]store.Notification, error)
	NotificationFinish(ctx context.Context, p store.NotificationFinishParams) error
	NotificationNextDue(ctx context.Context) (t time.Time, ok bool, err error)

	CertificateScan(ctx context.Context, p store.CertificateScanParams) ([]store.Certificate, error)
	CertificateDeployedBy(ctx context.Context, accountID, certID int64) ([]store.Job, error)
	ContactGetMany(ctx context.Context, accountID int64, ids []int64) ([]store.Contact, error)
	ResourceGetMany(ctx context.Context, accountID int64, ids []int64) ([]store.Resource, error)
	ResourceList(ctx context.Context, p store.ResourceListParams) ([]store.Resource, int64, error)
	WorkerListAfter(ctx context.Context, p store.WorkerListAfterParams) ([]store.Worker, error)
}
