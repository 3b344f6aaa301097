// Package oss deploys certificates to the custom domains of Alibaba Cloud
// OSS buckets (CloudName "aliyun", CloudProduct "OSS"): the certificate is
// uploaded once to the account's certificate service (CAS) and bound to the
// bucket's CNAME (the resource's Domain) by its CertId with PutCname, then
// read back with ListCname. Calls go through
// github.com/aliyun/alibabacloud-oss-go-sdk-v2 (signature V4), over the
// shared aliyun client's egress, rate limit and credentials.
//
// It is not an OSS client: it never reads or writes objects.
package oss

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"

	sdk "github.com/aliyun/alibabacloud-oss-go-sdk-v2/oss"
	"github.com/aliyun/alibabacloud-oss-go-sdk-v2/oss/credentials"

	"github.com/certfleet/certfleet/internal/deploy"
	"github.com/certfleet/certfleet/internal/deploy/aliyun"
)

// Description is aliyun/OSS's Description.
var Description = deploy.Description{
	CloudName:    aliyun.CloudName,
	CloudProduct: "OSS",
	Summary:      "Binds the certificate, uploaded once to the account's certificate service, to a custom domain (Domain) of an OSS bucket (InstanceId, RegionId).",
	Config:       []deploy.Field{aliyun.FieldEndpoint, aliyun.FieldKeepPrevious},
	Access:       aliyun.AccessSpec,
}

// CASRegion is the region suffix of the CertId OSS binds
// ("<CAS CertId>-cn-hangzhou").
const CASRegion = "cn-hangzhou"

// Config is an OSS resource's Config.
type Config struct {
	Endpoint     string
	KeepPrevious *int
}

// Deployer binds certificates to bucket custom domains. It is safe for
// concurrent use.
type Deployer struct{ hub *aliyun.Hub }

var (
	_ deploy.Product         = (*Deployer)(nil)
	_ deploy.Rollbacker      = (*Deployer)(nil)
	_ deploy.Snapshotter     = (*Deployer)(nil)
	_ deploy.Checker         = (*Deployer)(nil)
	_ deploy.Discoverer      = (*Deployer)(nil)
	_ deploy.Sweeper         = (*Deployer)(nil)
	_ deploy.ConfigValidator = (*Deployer)(nil)
)

// New returns an OSS deployer over hub, and registers OSS bindings as CAS
// users for hub's sweeps.
func New(hub *aliyun.Hub) *Deployer {
	d := &Deployer{hub: hub}
	hub.RegisterCASUser("OSS", d.casInUse)
	return d
}

// Describe returns Description.
func (d *Deployer) Describe() deploy.Description { return Description }

// ValidateConfig checks Endpoint.
func (d *Deployer) ValidateConfig(config json.RawMessage) error {
	var cfg Config
	if err := Description.DecodeConfig(config, &cfg); err != nil {
		return err
	}
	return aliyun.ValidateEndpoint("OSS", cfg.Endpoint)
}

type target struct {
	c       *aliyun.Client
	cfg     Config
	bucket  string
	domain  string
	display string
}

func (d *Deployer) target(t deploy.Target) (*target, error) {
	var cfg Config
	if err := Description.DecodeConfig(t.Config, &cfg); err != nil {
		return nil, err
	}
	if err := aliyun.ValidateEndpoint("OSS", cfg.Endpoint); err != nil {
		return nil, err
	}
	if t.InstanceID == "" {
		return nil, deploy.Permanentf("aliyun/OSS: the resource has no InstanceId: set it to the bucket's name")
	}
	if t.Domain == "" {
		return nil, deploy.Permanentf("aliyun/OSS: the resource has no Domain: set it to the bucket's custom domain")
	}
	c, err := d.hub.Client(t, "OSS", cfg.Endpoint)
	if err != nil {
		return nil, err
	}
	return &target{c: c, cfg: cfg, bucket: t.InstanceID, domain: strings.ToLower(t.Domain),
		display: fmt.Sprintf("aliyun/OSS %s %s %s", c.Region(), t.InstanceID, t.Domain)}, nil
}

// call runs one OSS operation with a fresh SDK client (credentials may be
// an STS session), under the rate limit and the shared retries.
func call(ctx context.Context, c *aliyun.Client, op string, fn func(*sdk.Client) error) error {
	return c.Retry(ctx, func() error {
		if err := c.Wait(ctx); err != nil {
			return err
		}
		ep, err := c.Endpoint(aliyun.OSS, true)
		if err != nil {
			return deploy.Permanentf("aliyun: OSS %s: %v", op, err)
		}
		id, secret, token, err := c.Credentials(ctx)
		if err != nil {
			return err
		}
		host := ep.Hostname()
		cfg := sdk.LoadDefaultConfig().
			WithCredentialsProvider(credentials.NewStaticCredentialsProvider(id, secret, token)).
			WithRegion(c.Region()).WithEndpoint(ep.Scheme + "://" + ep.Host).
			WithUsePathStyle(net.ParseIP(host) != nil || host == "localhost").
			WithHttpClient(c.HTTPClient()).WithRetryMaxAttempts(1).
			WithSignatureVersion(sdk.SignatureVersionV4).WithUserAgent("certfleet")
		err = fn(sdk.NewClient(cfg))
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("aliyun: OSS %s: %w", op, ctx.Err())
		}
		var se *sdk.ServiceError
		if errors.As(err, &se) {
			return aliyun.NewError("OSS "+op, se.StatusCode, se.Code, se.Message, se.RequestID)
		}
		return fmt.Errorf("aliyun: OSS %s at %s: %w", op, ep.Host, err)
	})
}

func casID(certID string) int64 {
	head, _, _ := strings.Cut(certID, "-")
	n, _ := strconv.ParseInt(head, 10, 64)
	return n
}

func certID(id int64) string { return strconv.FormatInt(id, 10) + "-" + CASRegion }

type cname struct {
	Domain string
	CertID string // "" without a certificate
}

func cnames(ctx context.Context, c *aliyun.Client, bucket string) ([]cname, error) {
	var out []cname
	err := call(ctx, c, "ListCname", func(cl *sdk.Client) error {
		res, err := cl.ListCname(ctx, &sdk.ListCnameRequest{Bucket: sdk.Ptr(bucket)})
		if err != nil {
			return err
		}
		out = out[:0]
		for _, x := range res.Cnames {
			cn := cname{Domain: strings.ToLower(sdk.ToString(x.Domain))}
			if x.Certificate != nil {
				cn.CertID = sdk.ToString(x.Certificate.CertId)
			}
			out = append(out, cn)
		}
		return nil
	})
	return out, err
}

// binding is a custom domain's certificate: the snapshot Rollback restores.
type binding struct {
	CertID string `json:"CertId"`
}

func (t *target) current(ctx context.Context) (binding, error) {
	cs, err := cnames(ctx, t.c, t.bucket)
	if err != nil {
		return binding{}, fmt.Errorf("%s: %w", t.display, err)
	}
	for _, x := range cs {
		if x.Domain == t.domain {
			return binding{CertID: x.CertID}, nil
		}
	}
	return binding{}, deploy.Permanentf("%s: the bucket has no custom domain %s (bind it in the OSS console first)", t.display, t.domain)
}

// Snapshot records the CertId bound to the domain ("" for none).
func (d *Deployer) Snapshot(ctx context.Context, req deploy.Request) ([]byte, error) {
	t, err := d.target(req.Target)
	if err != nil {
		return nil, err
	}
	b, err := t.current(ctx)
	if err != nil {
		return nil, err
	}
	return json.Marshal(b)
}

// AlreadyDeployed reports whether the domain serves a CAS certificate with
// the bundle's SHA-256.
func (d *Deployer) AlreadyDeployed(ctx context.Context, req deploy.Request) (bool, error) {
	t, err := d.target(req.Target)
	if err != nil {
		return false, err
	}
	b, err := t.current(ctx)
	if err != nil || b.CertID == "" {
		return false, err
	}
	sha, err := t.c.CASSha2(ctx, casID(b.CertID))
	if err != nil {
		return false, fmt.Errorf("%s: %w", t.display, err)
	}
	return sha == aliyun.BundleSHA256(req.Bundle), nil
}

// Deploy uploads the bundle to CAS (once per fingerprint), binds it to the
// custom domain (PutCname, PreviousCertId the bound one) and reads it back.
func (d *Deployer) Deploy(ctx context.Context, req deploy.Request) ([]byte, error) {
	t, err := d.target(req.Target)
	if err != nil {
		return nil, err
	}
	before, err := t.current(ctx)
	if err != nil {
		return nil, err
	}
	previous, _ := json.Marshal(before)
	id, err := t.c.UploadCAS(ctx, req.Bundle)
	if err != nil {
		return previous, fmt.Errorf("%s: %w", t.display, err)
	}
	if before.CertID == certID(id) {
		return previous, nil
	}
	return previous, d.bind(ctx, t, before, certID(id))
}

func (d *Deployer) bind(ctx context.Context, t *target, cur binding, id string) error {
	cc := &sdk.CertificateConfiguration{}
	switch {
	case id == "":
		cc.DeleteCertificate = sdk.Ptr(true)
	case cur.CertID == "":
		cc.CertId, cc.Force = sdk.Ptr(id), sdk.Ptr(true)
	default:
		cc.CertId, cc.PreviousCertId = sdk.Ptr(id), sdk.Ptr(cur.CertID)
	}
	err := call(ctx, t.c, "PutCname", func(cl *sdk.Client) error {
		_, err := cl.PutCname(ctx, &sdk.PutCnameRequest{Bucket: sdk.Ptr(t.bucket),
			BucketCnameConfiguration: &sdk.BucketCnameConfiguration{Domain: sdk.Ptr(t.domain), CertificateConfiguration: cc}})
		return err
	})
	if err != nil {
		return fmt.Errorf("%s: %w", t.display, err)
	}
	got, err := t.current(ctx)
	if err != nil {
		return fmt.Errorf("read back: %w", err)
	}
	if got.CertID != id {
		return fmt.Errorf("%s: read back after the change: the domain binds %q, want %q", t.display, got.CertID, id)
	}
	return nil
}

// Rollback restores the recorded CertId, or unbinds the certificate when
// the domain had none; without a record it deploys req.Bundle.
func (d *Deployer) Rollback(ctx context.Context, req deploy.Request, previous []byte) error {
	t, err := d.target(req.Target)
	if err != nil {
		return err
	}
	var want binding
	recorded, err := aliyun.Previous(t.display, previous, req.Bundle, &want)
	if err != nil {
		return err
	}
	if !recorded {
		id, err := t.c.UploadCAS(ctx, req.Bundle)
		if err != nil {
			return fmt.Errorf("%s: %w", t.display, err)
		}
		want.CertID = certID(id)
	}
	cur, err := t.current(ctx)
	if err != nil {
		return err
	}
	if cur.CertID == want.CertID {
		return nil
	}
	err = d.bind(ctx, t, cur, want.CertID)
	if aliyun.Code(err) == "InvalidCertificate" && req.Bundle.CertID != 0 && want.CertID != "" {
		// The recorded certificate was deleted since: bind the engine's copy.
		t.c.ForgetCAS(aliyun.BundleSHA256(req.Bundle))
		id, uerr := t.c.UploadCAS(ctx, req.Bundle)
		if uerr != nil {
			return fmt.Errorf("%s: %w", t.display, uerr)
		}
		return d.bind(ctx, t, cur, certID(id))
	}
	return err
}

type bucket struct{ name, region string }

func buckets(ctx context.Context, c *aliyun.Client) ([]bucket, error) {
	var out []bucket
	err := call(ctx, c, "ListBuckets", func(cl *sdk.Client) error {
		out = out[:0]
		p := cl.NewListBucketsPaginator(&sdk.ListBucketsRequest{})
		for p.HasNext() {
			page, err := p.NextPage(ctx)
			if err != nil {
				return err
			}
			for _, b := range page.Buckets {
				region := sdk.ToString(b.Region)
				if region == "" {
					region = strings.TrimPrefix(sdk.ToString(b.Location), "oss-")
				}
				out = append(out, bucket{sdk.ToString(b.Name), region})
			}
		}
		return nil
	})
	return out, err
}

func (d *Deployer) casInUse(ctx context.Context, c *aliyun.Client) ([]int64, error) {
	bs, err := buckets(ctx, c)
	if err != nil {
		return nil, fmt.Errorf("OSS: %w", err)
	}
	var ids []int64
	for _, b := range bs {
		cs, err := cnames(ctx, c, b.name)
		if err != nil {
			return nil, fmt.Errorf("OSS %s: %w", b.name, err)
		}
		for _, x := range cs {
			if x.CertID != "" {
				ids = append(ids, casID(x.CertID))
			}
		}
	}
	return ids, nil
}

// Discover lists every custom domain of every bucket the credential sees.
func (d *Deployer) Discover(ctx context.Context, t deploy.Target) ([]deploy.Discovered, error) {
	c, err := d.hub.Client(t, "OSS", "")
	if err != nil {
		return nil, err
	}
	bs, err := buckets(ctx, c)
	if err != nil {
		return nil, fmt.Errorf("aliyun/OSS: discover: %w", err)
	}
	var out []deploy.Discovered
	for _, b := range bs {
		cs, err := cnames(ctx, c, b.name)
		if err != nil {
			return nil, fmt.Errorf("aliyun/OSS: discover %s: %w", b.name, err)
		}
		for _, x := range cs {
			r := deploy.Discovered{Key: b.name + "/" + x.Domain, CloudProduct: "OSS", Domain: x.Domain, RegionID: b.region,
				InstanceID: b.name, EnableHTTPS: x.CertID != ""}
			if x.CertID != "" {
				r.CertSha2, _ = c.CASSha2(ctx, casID(x.CertID))
			}
			out = append(out, r)
		}
	}
	return out, nil
}

// Sweep deletes CAS certificates certfleet uploaded that no OSS domain nor
// any other registered product binds, keeping the newest KeepPrevious.
func (d *Deployer) Sweep(ctx context.Context, t deploy.Target) error {
	var cfg Config
	if err := Description.DecodeConfig(t.Config, &cfg); err != nil {
		return err
	}
	return d.hub.SweepCASFor(ctx, t, "OSS", cfg.Endpoint, cfg.KeepPrevious)
}
