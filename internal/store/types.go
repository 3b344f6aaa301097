package store

import "time"

// JobStatus is a deployment job's status, as the CAS 2020-04-07 API names it
// (docs/architecture.md, "The life of a job"); the string is what the
// database stores and the API answers.
type JobStatus string

// Job statuses.
const (
	JobEditing    JobStatus = "editing"
	JobPending    JobStatus = "pending"
	JobScheduling JobStatus = "scheduling"
	JobProcessing JobStatus = "processing"
	JobSuccess    JobStatus = "success"
	JobError      JobStatus = "error"
)

// WorkerStatus is a worker's status, as the CAS 2020-04-07 API names it
// (docs/architecture.md, "The life of a job"); the string is what the
// database stores and the API answers.
type WorkerStatus string

// Worker statuses.
const (
	WorkerEditing         WorkerStatus = "editing"
	WorkerPending         WorkerStatus = "pending"
	WorkerScheduling      WorkerStatus = "scheduling"
	WorkerProcessing      WorkerStatus = "processing"
	WorkerSuccess         WorkerStatus = "success"
	WorkerError           WorkerStatus = "error"
	WorkerRollback        WorkerStatus = "rollback"
	WorkerRollbackSuccess WorkerStatus = "rollback_success"
	WorkerRollbackError   WorkerStatus = "rollback_error"
)

// AccessKeyStatus is an access key's status, as RAM names it. Only an
// Active key signs requests.
type AccessKeyStatus string

// Access key statuses.
const (
	AccessKeyActive   AccessKeyStatus = "Active"
	AccessKeyInactive AccessKeyStatus = "Inactive"
)

// AccessKey is an API key pair. SecretEnc is the secret sealed by package secret.
type AccessKey struct {
	ID        string
	AccountID int64
	UserID    int64 // the RAM user owning the key; 0 for the account's root keys
	SecretEnc []byte
	Status    AccessKeyStatus
	Created   time.Time
}

// Certificate is an uploaded certificate with its parsed facts. KeyEnc is the
// private key sealed by package secret; CertPEM is the leaf followed by the chain.
type Certificate struct {
	ID          int64
	AccountID   int64
	Name        string
	CertPEM     string
	KeyEnc      []byte
	CommonName  string
	SANs        []string
	Issuer      string
	OrgName     string
	Country     string
	Province    string
	City        string
	Fingerprint string // SHA-1 of the leaf DER, upper-case hex
	Sha2        string // SHA-256 of the leaf DER, upper-case hex
	SerialNo    string
	Algorithm   string
	NotBefore   time.Time
	NotAfter    time.Time
	Created     time.Time
}

// CertificateListParams filters CertificateList.
type CertificateListParams struct {
	AccountID int64
	Keyword   string
	// NotAfterFrom/NotAfterTo bound the expiry (zero = unbounded).
	NotAfterFrom time.Time
	NotAfterTo   time.Time
	Offset       int
	Limit        int
}

// CloudAccess is a credential used by deployers. SecretKeyEnc is sealed.
type CloudAccess struct {
	ID           int64
	AccountID    int64
	CloudName    string
	Name         string
	SecretID     string
	SecretKeyEnc []byte
	Config       string
	Created      time.Time
}

// AccessListParams filters AccessList.
type AccessListParams struct {
	AccountID int64
	CloudName string
	SecretID  string
	Offset    int
	Limit     int
}

// Resource is a deployment target.
type Resource struct {
	ID            int64
	AccountID     int64
	CloudName     string
	CloudProduct  string
	Domain        string
	CloudAccessID int64 // 0 = none
	Name          string
	RegionID      string
	InstanceID    string
	ListenerPort  string
	// ListenerID is the provider's listener name where it has one ("lsn-…@443").
	ListenerID string
	Config     string // JSON object, product specific, no secrets
	// CurrentCertID is the certificate of the last successful deployment (0 = none).
	CurrentCertID int64
	Created       time.Time
	Modified      time.Time
	// Claims are what the resource owns exclusively across every account
	// (deploy.Claimer), such as the files of a local target. ResourceCreate
	// and ResourceUpdate write them (replacing the previous ones) in the same
	// transaction as the resource, and fail with an error wrapping ErrClaimed
	// when another resource holds one; deleting the resource releases them.
	// Reads leave it nil.
	Claims []string
	// DiscoveryKey is, for a resource SyncCloudResources created, the
	// provider's identity of it (deploy.Discovered.Key); "" for resources
	// created by hand. A sync owns the fields below; they stay zero (Status
	// "online", EnableHTTPS true) for resources created by hand.
	DiscoveryKey    string
	Status          ResourceStatus
	DefaultResource bool
	EnableHTTPS     bool
	// BoundSha2 and BoundNotAfter are the fingerprint and expiry of the
	// certificate the provider reported bound at the last sync.
	BoundSha2     string
	BoundNotAfter time.Time
}

// ResourceStatus says whether a resource still exists at its provider, as
// far as certfleet knows.
type ResourceStatus string

// Resource statuses.
const (
	ResourceOnline ResourceStatus = "online"
	// ResourceGone: a sync of its credential no longer finds it.
	ResourceGone ResourceStatus = "gone"
)

// ResourceSyncParams is the argument of ResourceSync: what one sync of one
// product of one credential found.
type ResourceSyncParams struct {
	AccountID    int64
	AccessID     int64
	CloudName    string
	CloudProduct string
	// Found are the resources the provider listed, each with DiscoveryKey
	// set and unique; their AccountID, CloudAccessID, CloudName and
	// CloudProduct are taken from the params.
	Found []Resource
}

// SyncCounts is what ResourceSync did.
type SyncCounts struct {
	Found, Created, Updated, Gone int
}

// SweepTarget is one product and credential a job deployed to, with one of
// the job's resources of that pair.
type SweepTarget struct {
	AccountID     int64
	CloudName     string
	CloudProduct  string
	CloudAccessID int64
	ResourceID    int64
}

// ResourceListParams filters ResourceList.
type ResourceListParams struct {
	AccountID    int64
	CloudName    string
	CloudProduct string
	Keyword      string
	CertIDs      []int64
	// ByAccess keeps only resources using one of AccessIDs (none when it is empty).
	ByAccess  bool
	AccessIDs []int64
	Offset    int
	Limit     int
}

// ProductCount is one row of ResourceCountByProduct.
type ProductCount struct {
	CloudName    string
	CloudProduct string
	Count        int64
}

// Contact is someone told about a job's outcome.
type Contact struct {
	ID        int64
	AccountID int64
	Name      string
	Email     string
	Mobile    string
	Webhooks  []string
	Created   time.Time
}

// ContactListParams filters ContactList.
type ContactListParams struct {
	AccountID int64
	Keyword   string
	Offset    int
	Limit     int
}

// Job is a deployment job.
type Job struct {
	ID           int64
	AccountID    int64
	Name         string
	JobType      string
	Status       JobStatus
	ScheduleTime time.Time // zero = none
	StartTime    time.Time // zero = not started
	EndTime      time.Time // zero = not ended
	Rollback     bool
	CertIDs      []int64
	ResourceIDs  []int64
	ContactIDs   []int64
	Config       string // JSON, certfleet-specific job configuration
	// Products lists the CloudProducts of the job's workers as planned at
	// create/update time, sorted (empty for jobs older than migration 0007).
	Products []string
	// Strategy is the job's staged-rollout strategy, normalised JSON ("" =
	// none: every worker is in wave 0). See waves.go.
	Strategy string
	// CurrentWave is the wave (0-based) whose workers may run; LastWave the
	// job's last wave. HaltedWave is the wave (1-based) that halted the job, 0 if none.
	CurrentWave int
	LastWave    int
	HaltedWave  int
	// Cancelled is when CancelDeploymentJob stopped the job (zero = never);
	// RetryDeploymentJob clears it.
	Cancelled time.Time
	Created   time.Time
	Modified  time.Time
}

// JobListParams filters JobList.
type JobListParams struct {
	AccountID int64
	Status    JobStatus
	JobType   string
	Offset    int
	Limit     int
}

// JobSetStatusParams is the argument of JobSetStatus.
type JobSetStatusParams struct {
	AccountID    int64
	JobID        int64
	From         []JobStatus
	To           JobStatus
	ScheduleTime time.Time // for To = pending: when to run (zero = keep)
	Now          time.Time
}

// CancelledMessage is the ErrorMessage of a worker that a cancelled job
// never started (or stopped between retries).
const CancelledMessage = "cancelled"

// JobCancelParams is the argument of JobCancel.
type JobCancelParams struct {
	AccountID int64
	JobID     int64
	Now       time.Time
}

// JobRetryParams is the argument of JobRetry.
type JobRetryParams struct {
	AccountID int64
	JobID     int64
	// WorkerIDs limits the retry to these workers (empty = every error worker).
	WorkerIDs []int64
	Now       time.Time
}

// JobRollbackParams is the argument of JobRollback.
type JobRollbackParams struct {
	AccountID int64
	JobID     int64
	Now       time.Time
}

// JobCounts summarises a job's workers.
type JobCounts struct {
	Workers         int64
	Success         int64
	Failed          int64
	Rollback        int64
	RollbackSuccess int64
	RollbackFailed  int64
	ByProduct       []ProductCount
}

// Worker deploys one certificate to one resource of a job.
type Worker struct {
	ID           int64
	AccountID    int64
	JobID        int64
	ResourceID   int64
	CertID       int64
	CloudName    string
	CloudProduct string
	Status       WorkerStatus
	Attempts     int
	NextRunAt    time.Time
	LeaseOwner   string
	LeaseToken   int64
	LeaseExpires time.Time
	LastError    string
	// ResourceCertID is the certificate the resource served before (0 = unknown/none).
	ResourceCertID int64
	// PreviousEnc is the sealed deployer state needed to restore the previous deployment.
	PreviousEnc []byte
	HasPrevious bool
	// Unchanged: the worker found the resource already serving its certificate.
	Unchanged bool
	// PreviousPending is the engine's mark that the Previous* fields (and
	// Unchanged) are known but not yet written: WorkerFinish records them.
	PreviousPending bool
	// Wave is the staged-rollout wave (0-based) the worker runs in; it is
	// claimable only once its job's CurrentWave reaches it.
	Wave     int
	Created  time.Time
	Modified time.Time
}

// WorkerListParams filters WorkerList.
type WorkerListParams struct {
	AccountID    int64
	JobID        int64
	Status       WorkerStatus
	CloudProduct string
	Offset       int
	Limit        int // 0 = all
}

// WorkerListAfterParams selects a page of a job's workers by keyset for
// WorkerListAfter: those after AfterID, in ID order.
type WorkerListAfterParams struct {
	AccountID    int64
	JobID        int64
	Status       WorkerStatus // "" = any
	CloudProduct string       // "" = any
	AfterID      int64        // 0 = from the first
	Limit        int          // must be > 0
}

// WorkerClaimDueParams is the argument of WorkerClaimDue.
type WorkerClaimDueParams struct {
	Owner      string
	Now        time.Time
	LeaseUntil time.Time
	Limit      int
}

// Lease is a worker's lease as its holder knows it: renewing it, or writing
// the worker's outcome, succeeds only while Token is the worker's current one.
type Lease struct {
	ID    int64
	Token int64
}

// WorkerRecordPreviousParams is the argument of WorkerRecordPrevious.
type WorkerRecordPreviousParams struct {
	ID             int64
	LeaseToken     int64
	ResourceCertID int64
	PreviousEnc    []byte
	// Unchanged: the resource already served the certificate; nothing was deployed.
	Unchanged bool
}

// WorkerFinishParams is the argument of WorkerFinish.
type WorkerFinishParams struct {
	ID         int64
	LeaseToken int64
	// Status is the new status; for a retry it stays processing with NextRunAt set.
	Status    WorkerStatus
	LastError string
	Attempts  int
	NextRunAt time.Time
	Now       time.Time
	// SetResourceCert, when true, records CertID as the resource's current certificate.
	SetResourceCert bool
	ResourceID      int64
	ResourceCertID  int64
	// MarkJobRollback sets the job's Rollback flag.
	MarkJobRollback bool
	// Previous, when set, records what the resource served before (only if
	// nothing was recorded yet), in the same transaction; ID and LeaseToken
	// in it are ignored.
	Previous *WorkerRecordPreviousParams
}

// ResourceObservation is what a resource's VerifyAddress served when it was
// last probed (after a deployment, by CheckCloudResource or periodically).
type ResourceObservation struct {
	AccountID  int64
	ResourceID int64
	// Sha2 is the SHA-256 of the served leaf, upper-case hex; empty when Error is set.
	Sha2     string
	Subject  string
	NotAfter time.Time
	// ObservedAt is when the probe ran.
	ObservedAt time.Time
	// Error is why no certificate was seen (empty on success).
	Error string
}

// ResourceScanParams is the argument of ResourceScan.
type ResourceScanParams struct {
	// AfterID pages by resource ID: only resources with a greater ID.
	AfterID int64
	// ConfigContains, when set, keeps resources whose Config contains it.
	ConfigContains string
	Limit          int
}

// ObservationCountParams is the argument of ResourceObservationCountByProduct.
type ObservationCountParams struct {
	AccountID int64
	// ExpiringBefore: an observed certificate expiring before it counts as expiring.
	ExpiringBefore time.Time
}

// ObservationCount is one row of ResourceObservationCountByProduct.
type ObservationCount struct {
	CloudName    string
	CloudProduct string
	// Stale counts resources whose observed certificate differs from the one
	// last deployed to them.
	Stale int64
	// Expiring counts resources whose observed certificate expires before ExpiringBefore.
	Expiring int64
}
