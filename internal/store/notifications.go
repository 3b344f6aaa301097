package store

import (
	"context"
	"time"
)

// NotifyStore is the part of Store that package notify uses: jobs whose end
// or rollbacks are not told yet, the once-only emit of their messages, and
// the delivery of those messages.
type NotifyStore interface {
	JobEventsDue(ctx context.Context, p JobEventsDueParams) ([]JobEvent, error)
	// NotificationEmit records an event as told and inserts its messages in
	// one transaction; ErrConflict if it was told already.
	NotificationEmit(ctx context.Context, p NotificationEmitParams) error
	// NotificationClaimDue claims due pending messages (claim token +1,
	// next attempt pushed to LeaseUntil).
	NotificationClaimDue(ctx context.Context, p NotificationClaimDueParams) ([]Notification, error)
	// NotificationFinish writes an attempt's outcome, conditional on the
	// claim token; ErrConflict if the claim is stale.
	NotificationFinish(ctx context.Context, p NotificationFinishParams) error
	// NotificationNextDue returns the earliest next attempt of pending messages.
	NotificationNextDue(ctx context.Context) (t time.Time, ok bool, err error)
	NotificationList(ctx context.Context, p NotificationListParams) ([]Notification, int64, error)
	// CertificateScan pages through every account's certificates by expiry window.
	CertificateScan(ctx context.Context, p CertificateScanParams) ([]Certificate, error)
	// CertificateDeployedBy lists the account's jobs with a worker that
	// deployed the certificate successfully (and was not rolled back).
	CertificateDeployedBy(ctx context.Context, accountID, certID int64) ([]Job, error)
}

// Notification events (package notify renders them).
const (
	EventJobSuccess      = "job_success"
	EventJobError        = "job_error"
	EventRollbackEnd     = "rollback_end"
	EventWaveHalted      = "wave_halted" // reserved for staged rollouts
	EventCertExpiring    = "cert_expiring"
	ChannelEmail         = "email"
	ChannelWebhook       = "webhook"
	JobEventKindEnd      = "end"
	JobEventKindRollback = "rollback"
	EmitKindExpiry       = "expiry"
)

// A renewal refused a trustee job (an untrusted issuer, or an uploader not
// allowed to deploy): told once, by the upload, so emitted without a guard.
const (
	EventRenewalRefused = "renewal_refused"
	EmitKindOnce        = "once"
)

// NotificationStatus is where a notification's delivery stands: pending
// (to be sent, or retried), sent, or failed (given up).
type NotificationStatus string

// Notification statuses.
const (
	NotificationPending NotificationStatus = "pending"
	NotificationSent    NotificationStatus = "sent"
	NotificationFailed  NotificationStatus = "failed"
)

// Notification is one message to one recipient channel about one event.
// Body is what the sender needs (for email, a JSON object of the plain text
// and HTML parts; for a webhook, the JSON payload); it never holds a secret.
type Notification struct {
	ID          int64
	AccountID   int64
	JobID       int64 // 0 for events that are not a job's
	CertID      int64 // the certificate of an expiry notice, else 0
	Event       string
	Channel     string // ChannelEmail | ChannelWebhook
	Target      string // email address or webhook URL
	Subject     string
	Body        string
	Status      NotificationStatus
	Attempts    int
	NextAttempt time.Time
	ClaimToken  int64
	LastError   string
	Created     time.Time
	Sent        time.Time
}

// JobEvent is a job whose end, or whose finished rollbacks, has not been
// told to its contacts yet.
type JobEvent struct {
	Job  Job
	Kind string // JobEventKindEnd | JobEventKindRollback
	// Since is the previous rollback mark: rollbacks that ended after it
	// belong to this event (zero for Kind end).
	Since time.Time
	// Mark is the job's modification time read with the event; the emit
	// records it so each rollback is told once.
	Mark time.Time
}

// JobEventsDueParams is the argument of JobEventsDue.
type JobEventsDueParams struct {
	Limit int
}

// NotificationEmitParams records that an event was told, and inserts its
// messages, in one transaction. Kind selects the once-only guard:
// JobEventKindEnd (the job's notified flag), JobEventKindRollback (the job's
// rollback mark moves from Since to Mark), EmitKindExpiry (a row of
// cert_expiry_notices for CertID and ThresholdDays; AlsoThresholds are
// recorded too, so that they are never told later).
type NotificationEmitParams struct {
	Kind           string
	JobID          int64
	Since, Mark    time.Time
	CertID         int64
	ThresholdDays  int
	AlsoThresholds []int
	Rows           []Notification
	Now            time.Time
}

// NotificationClaimDueParams is the argument of NotificationClaimDue.
type NotificationClaimDueParams struct {
	Now time.Time
	// LeaseUntil is when a claimed row becomes claimable again if its
	// sender never reports (crash).
	LeaseUntil time.Time
	Limit      int
}

// NotificationFinishParams records a delivery attempt's outcome.
type NotificationFinishParams struct {
	ID          int64
	ClaimToken  int64
	Status      NotificationStatus
	Attempts    int
	NextAttempt time.Time
	LastError   string
	Sent        time.Time
}

// NotificationListParams filters NotificationList.
type NotificationListParams struct {
	AccountID int64
	JobID     int64
	Status    NotificationStatus
	Offset    int
	Limit     int
}

// CertificateScanParams pages through every account's certificates expiring
// in [NotAfterFrom, NotAfterTo), by ID.
type CertificateScanParams struct {
	AfterID      int64
	NotAfterFrom time.Time
	NotAfterTo   time.Time
	Limit        int
}
