package store

import (
	"context"
	"time"
)

// Issuer is an ACME certificate authority an account orders certificates
// from; ProductCode is the name CreateCertificateRequest gives. EabHmacEnc and
// AccountKeyEnc are sealed. AccountURL and AccountKeyEnc are the ACME account,
// registered on first use (IssuerSetAccount).
type Issuer struct {
	ID             int64
	AccountID      int64
	ProductCode    string
	DirectoryURL   string
	Email          string
	EabKeyID       string
	EabHmacEnc     []byte
	KeyType        string
	PreferredChain string
	TrustedCA      string
	AccountKeyEnc  []byte
	AccountURL     string
	Created        time.Time
}

// OrderStatus is where an ACME order stands.
type OrderStatus string

// Order statuses. Pending, Verify and Process are worked on in the
// background; the others are final (Issued until its renewal is due).
const (
	OrderPending   OrderStatus = "pending"   // not yet at the CA
	OrderVerify    OrderStatus = "verify"    // at the CA, challenges to answer
	OrderProcess   OrderStatus = "process"   // validated, being finalized
	OrderFailed    OrderStatus = "failed"    // validation or issuance failed (Message says why)
	OrderIssued    OrderStatus = "issued"    // CertID holds the certificate
	OrderCancelled OrderStatus = "cancelled" // cancelled by the user
)

// Challenge is one authorization's challenge as the order answers it.
type Challenge struct {
	Domain   string // the identifier (wildcards without "*.")
	Type     string // http-01 or dns-01
	URL      string // the challenge URL
	AuthzURL string
	Token    string
	KeyAuth  string
	// RecordName/RecordValue: the TXT record of dns-01.
	RecordName  string
	RecordValue string
	Accepted    bool      // the CA was told to validate
	Published   bool      // automatic mode put the answer in place
	Since       time.Time `json:",omitzero"` // when it was published
	Valid       bool
}

// Order is a certificate order at an ACME CA. KeyEnc is the sealed private
// key of the CSR, empty when the caller brought the CSR without its key.
type Order struct {
	ID           int64
	AccountID    int64
	IssuerID     int64
	ProductCode  string
	Domains      []string
	ValidateType string // DNS or FILE
	Manual       bool
	CsrPEM       string
	KeyEnc       []byte
	CsrID        int64
	Contact      string // Username/Email/Phone the caller gave, JSON
	Status       OrderStatus
	OrderURL     string
	Challenges   []Challenge
	Message      string
	CertID       int64
	// CertPEM is the issued chain (also kept when the key is not known).
	CertPEM string
	// RenewOf is the certificate this order renews (0: a first issuance).
	RenewOf int64
	// RenewAt is when the issued certificate is due for renewal; RenewalID
	// the order renewing it (0: none yet); RenewAttempts how many renewals
	// failed in a row.
	RenewAt       time.Time
	RenewalID     int64
	RenewAttempts int
	NextRun       time.Time
	Attempts      int
	ACMERequests  int
	Version       int64
	Created       time.Time
	Modified      time.Time
}

// Csr is a certificate signing request kept for an account; KeyEnc is the
// sealed key (empty when only the CSR was uploaded).
type Csr struct {
	ID          int64
	AccountID   int64
	Name        string
	CsrPEM      string
	KeyEnc      []byte
	CommonName  string
	SANs        []string
	Algorithm   string
	KeySize     int
	KeySha2     string
	CorpName    string
	CountryCode string
	Department  string
	Locality    string
	Province    string
	Created     time.Time
}

// CsrListParams filters CsrList.
type CsrListParams struct {
	AccountID int64
	Keyword   string
	Algorithm string
	Offset    int
	Limit     int
}

// ACMEStore is the persistence of issuers, ACME orders and CSRs.
type ACMEStore interface {
	// IssuerCreate inserts i; ErrConflict when the account has its ProductCode.
	IssuerCreate(ctx context.Context, i *Issuer) error
	IssuerGet(ctx context.Context, accountID int64, productCode string) (Issuer, error)
	IssuerGetByID(ctx context.Context, id int64) (Issuer, error)
	IssuerList(ctx context.Context, accountID int64) ([]Issuer, error)
	// IssuerDelete deletes an issuer; ErrInUse while an order of it is in progress.
	IssuerDelete(ctx context.Context, accountID int64, productCode string) error
	// IssuerSetAccount records the ACME account of an issuer that has none
	// yet; ErrConflict when another writer recorded one first.
	IssuerSetAccount(ctx context.Context, id int64, keyEnc []byte, url string) error

	// OrderCreate inserts o (Version 1) and sets its ID.
	OrderCreate(ctx context.Context, o *Order) error
	OrderGet(ctx context.Context, accountID, id int64) (Order, error)
	// OrderGetByID reads an order of any account (the background driver).
	OrderGetByID(ctx context.Context, id int64) (Order, error)
	// OrderUpdate writes o if its Version is the stored one, then increments
	// o.Version; ErrConflict otherwise (someone else changed it).
	OrderUpdate(ctx context.Context, o *Order) error
	OrderDelete(ctx context.Context, accountID, id int64) error
	// OrderDue lists orders in progress (pending, verify, process) whose
	// NextRun has come, oldest first; OrderNextDue the earliest NextRun of
	// one (false: none in progress).
	OrderDue(ctx context.Context, now time.Time, limit int) ([]Order, error)
	OrderNextDue(ctx context.Context) (time.Time, bool, error)
	// OrderRenewDue lists issued orders whose RenewAt has come and that no
	// renewal is under way for.
	OrderRenewDue(ctx context.Context, now time.Time, limit int) ([]Order, error)
	// OrderByCerts returns the orders that issued the account's certificates certIDs.
	OrderByCerts(ctx context.Context, accountID int64, certIDs []int64) ([]Order, error)
	// OrderCounts counts the account's orders of an issuer: all, and issued.
	OrderCounts(ctx context.Context, accountID int64, productCode string) (total, issued int64, err error)
	// ChallengeTokenPut publishes an http-01 answer; ChallengeTokenGet reads
	// it (ErrNotFound when none); ChallengeTokenDelete removes an order's.
	ChallengeTokenPut(ctx context.Context, orderID int64, token, keyAuth string) error
	ChallengeTokenGet(ctx context.Context, token string) (string, error)
	ChallengeTokenDelete(ctx context.Context, orderID int64) error

	CsrCreate(ctx context.Context, c *Csr) error
	CsrGet(ctx context.Context, accountID, id int64) (Csr, error)
	CsrList(ctx context.Context, p CsrListParams) ([]Csr, int64, error)
	// CsrSetKey sets the key of a CSR uploaded without one.
	CsrSetKey(ctx context.Context, accountID, id int64, keyEnc []byte) error
	CsrDelete(ctx context.Context, accountID, id int64) error
}
