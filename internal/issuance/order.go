package issuance

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/go-acme/lego/v5/acme"
	"github.com/go-acme/lego/v5/acme/api"

	"github.com/certfleet/certfleet/internal/certs"
	"github.com/certfleet/certfleet/internal/secret"
	"github.com/certfleet/certfleet/internal/store"
)

// stepTimeout bounds one step of one order.
const stepTimeout = 2 * time.Minute

// advance takes an order as far as it goes now, saving each state it
// reaches, and schedules its next look. Conflicts (a cancel meanwhile) end
// the step: the stored state wins.
func (d *Driver) advance(ctx context.Context, o store.Order) {
	ctx, cancel := context.WithTimeout(ctx, stepTimeout)
	defer cancel()
	iss, err := d.st.IssuerGetByID(ctx, o.IssuerID)
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			d.fail(ctx, &o, "the issuer "+o.ProductCode+" was deleted")
			return
		}
		d.retry(ctx, &o, err)
		return
	}
	c, err := d.core(ctx, iss)
	if err != nil {
		d.retry(ctx, &o, err)
		return
	}
	// Count this look's ACME requests into the order with each save (the
	// driver works on one order at a time).
	d.stepCore, d.stepSeen = c, c.requests.Load()
	defer func() {
		if n := c.requests.Load() - d.stepSeen; n > 0 {
			if cur, err := d.st.OrderGetByID(context.WithoutCancel(ctx), o.ID); err == nil {
				cur.ACMERequests += int(n)
				_ = d.st.OrderUpdate(context.WithoutCancel(ctx), &cur)
			}
		}
		d.stepCore = nil
	}()
	for range 8 { // a few transitions per look, then yield to other orders
		var done bool
		switch o.Status {
		case store.OrderPending:
			err = d.place(ctx, c.core, &o)
		case store.OrderVerify:
			done, err = d.verify(ctx, c.core, &o)
		case store.OrderProcess:
			done, err = d.finalize(ctx, c.core, iss, &o)
		default:
			return
		}
		if errors.Is(err, store.ErrConflict) {
			return // changed meanwhile (cancelled): the stored state wins
		}
		if err != nil {
			d.retry(ctx, &o, err)
			return
		}
		if done { // waiting: look again later
			if o.Manual && o.Status == store.OrderVerify && d.opts.Clock().Sub(o.Created) > d.opts.ManualTimeout {
				d.cleanup(ctx, &o)
				d.fail(ctx, &o, fmt.Sprintf("the answer to publish (%s) did not appear within %v; request a new certificate",
					pendingAnswers(o), d.opts.ManualTimeout))
				return
			}
			o.NextRun = d.opts.Clock().Add(d.waitFor(o))
			o.Attempts = 0
			if err := d.save(ctx, &o); err != nil && !errors.Is(err, store.ErrConflict) {
				d.log.Warn("acme: save order", "order_id", o.ID, "error", err)
			}
			return
		}
	}
}

// waitFor is how long an order waits before its next look: Poll at first,
// then a twentieth of its age (a manual order left for days is looked at
// every few minutes, not every few seconds), at most five minutes.
func (d *Driver) waitFor(o store.Order) time.Duration {
	return min(max(d.opts.Poll, d.opts.Clock().Sub(o.Created)/20), max(d.opts.Poll, 5*time.Minute))
}

// pendingAnswers names what a manual order still waits for.
func pendingAnswers(o store.Order) string {
	var out []string
	for _, ch := range o.Challenges {
		if ch.Valid || ch.Accepted {
			continue
		}
		if ch.Type == "dns-01" {
			out = append(out, "TXT "+ch.RecordName)
		} else {
			out = append(out, "http://"+ch.Domain+"/.well-known/acme-challenge/"+ch.Token)
		}
	}
	return strings.Join(out, ", ")
}

// place creates the order at the CA and records its challenges. The order
// URL is saved at once, before anything else can fail.
func (d *Driver) place(ctx context.Context, core *api.Core, o *store.Order) error {
	var eo acme.Order
	if o.OrderURL == "" {
		var opts *api.OrderOptions
		if o.RenewOf != 0 && core.GetDirectory().RenewalInfo != "" {
			if old, err := d.st.CertificateGet(ctx, o.AccountID, o.RenewOf); err == nil {
				if leaf, _, err := certs.ParseChain(old.CertPEM); err == nil {
					if id, err := api.MakeARICertID(leaf); err == nil {
						opts = &api.OrderOptions{ReplacesCertID: id}
					}
				}
			}
		}
		created, err := core.Orders.New(ctx, o.Domains, opts)
		if err != nil {
			return fmt.Errorf("new order for %s: %w", strings.Join(o.Domains, ", "), err)
		}
		o.OrderURL = created.Location
		if err := d.save(ctx, o); err != nil {
			return err
		}
		d.log.Info("acme: order placed", "order_id", o.ID, "url", o.OrderURL, "domains", o.Domains)
		eo = created.Order
	} else { // resumed after a restart: read what the CA holds
		got, err := core.Orders.Get(ctx, o.OrderURL)
		if err != nil {
			return fmt.Errorf("read order %s: %w", o.OrderURL, err)
		}
		eo = got.Order
	}
	want := "http-01"
	if o.ValidateType == "DNS" {
		want = "dns-01"
	}
	var chs []store.Challenge
	for _, authzURL := range eo.Authorizations {
		authz, err := core.Authorizations.Get(ctx, authzURL)
		if err != nil {
			return fmt.Errorf("read authorization %s: %w", authzURL, err)
		}
		ch := store.Challenge{Domain: authz.Identifier.Value, Type: want, AuthzURL: authzURL}
		if authz.Status == acme.StatusValid {
			ch.Valid = true
			chs = append(chs, ch)
			continue
		}
		var found bool
		for _, c := range authz.Challenges {
			if c.Type == want {
				ch.URL, ch.Token, found = c.URL, c.Token, true
			}
		}
		if !found {
			return permanent(fmt.Errorf("%s: the CA offers no %s challenge (wildcards need DNS)", authz.Identifier.Value, want))
		}
		if ch.KeyAuth, err = core.GetKeyAuthorization(ch.Token); err != nil {
			return err
		}
		if want == "dns-01" {
			sum := sha256.Sum256([]byte(ch.KeyAuth))
			ch.RecordName = "_acme-challenge." + authz.Identifier.Value
			ch.RecordValue = base64.RawURLEncoding.EncodeToString(sum[:])
		}
		chs = append(chs, ch)
	}
	o.Challenges, o.Status, o.Attempts = chs, store.OrderVerify, 0
	return d.save(ctx, o)
}

// verify answers (or waits for the answers to) the challenges, asks the CA
// to validate each, and moves to process once every authorization is
// valid. done: nothing more to do until the next look.
func (d *Driver) verify(ctx context.Context, core *api.Core, o *store.Order) (bool, error) {
	waiting := false
	for i := range o.Challenges {
		ch := &o.Challenges[i]
		if ch.Valid {
			continue
		}
		if !ch.Accepted {
			ready, err := d.answer(ctx, o, ch)
			if err != nil {
				return false, err
			}
			if !ready {
				waiting = true
				continue
			}
			if _, err := core.Challenges.New(ctx, ch.URL); err != nil {
				return false, fmt.Errorf("%s: %s challenge: %w", ch.Domain, ch.Type, err)
			}
			ch.Accepted = true
			if err := d.save(ctx, o); err != nil {
				return false, err
			}
		}
		authz, err := core.Authorizations.Get(ctx, ch.AuthzURL)
		if err != nil {
			return false, fmt.Errorf("%s: read authorization: %w", ch.Domain, err)
		}
		switch authz.Status {
		case acme.StatusValid:
			ch.Valid = true
		case acme.StatusPending:
			waiting = true
		default:
			msg := fmt.Sprintf("%s: the %s challenge failed (authorization %s)", ch.Domain, ch.Type, authz.Status)
			for _, c := range authz.Challenges {
				if c.Type == ch.Type && c.Error != nil {
					msg = fmt.Sprintf("%s: the %s challenge failed; the CA answered %q: %s", ch.Domain, ch.Type,
						strings.TrimPrefix(c.Error.Type, "urn:ietf:params:acme:error:"), c.Error.Detail)
				}
			}
			d.cleanup(ctx, o)
			return false, d.failNow(ctx, o, msg)
		}
	}
	if waiting {
		return true, nil
	}
	d.cleanup(ctx, o)
	o.Status, o.Attempts = store.OrderProcess, 0
	return false, d.save(ctx, o)
}

// finalize sends the CSR once the order is ready and stores the certificate
// once it is valid.
func (d *Driver) finalize(ctx context.Context, core *api.Core, iss store.Issuer, o *store.Order) (bool, error) {
	eo, err := core.Orders.Get(ctx, o.OrderURL)
	if err != nil {
		return false, fmt.Errorf("read order: %w", err)
	}
	switch eo.Status {
	case acme.StatusReady:
		block, _ := pem.Decode([]byte(o.CsrPEM))
		if block == nil {
			return false, permanent(errors.New("the order's CSR is not PEM"))
		}
		fin, err := core.Orders.UpdateForCSR(ctx, eo.Finalize, block.Bytes)
		if err != nil {
			return false, fmt.Errorf("finalize: %w", err)
		}
		if fin.Status != acme.StatusValid {
			return false, nil // look again at once
		}
		eo = fin // issued at once: no need to read the order again
	case acme.StatusProcessing, acme.StatusPending:
		return true, nil
	case acme.StatusValid:
	default:
		msg := "the CA refused to issue (order " + eo.Status + ")"
		if eo.Error != nil {
			msg += ": " + eo.Error.Detail
		}
		return false, d.failNow(ctx, o, msg)
	}
	all, err := core.Certificates.GetAll(ctx, eo.Certificate, true)
	if err != nil {
		return false, fmt.Errorf("download the certificate: %w", err)
	}
	chain := pickChain(all, eo.Certificate, iss.PreferredChain)
	return false, d.issued(ctx, o, string(chain))
}

// issued stores the certificate of an order: an ordinary certificate when
// the key is known, then the trustee redeployment of a renewal.
func (d *Driver) issued(ctx context.Context, o *store.Order, chainPEM string) error {
	o.CertPEM = chainPEM
	if len(o.KeyEnc) > 0 && o.CertID == 0 {
		keyPEM, err := d.box.Open(o.KeyEnc, secret.PurposeCertKey)
		if err != nil {
			return permanent(err)
		}
		parsed, err := certs.Policy{}.Parse(chainPEM, string(keyPEM))
		if err != nil {
			return permanent(fmt.Errorf("the issued certificate does not parse: %w", err))
		}
		info := parsed.Info
		rec := store.Certificate{
			AccountID: o.AccountID, Name: fmt.Sprintf("%s-acme-%d", o.Domains[0], o.ID), CertPEM: parsed.CertPEM,
			KeyEnc:     d.box.Seal([]byte(parsed.KeyPEM), secret.PurposeCertKey),
			CommonName: info.CommonName, SANs: info.SANs, Issuer: info.Issuer, OrgName: info.OrgName, Country: info.Country,
			Province: info.Province, City: info.City, Fingerprint: info.Fingerprint, Sha2: info.Sha2, SerialNo: info.SerialNo,
			Algorithm: info.Algorithm, NotBefore: info.NotBefore, NotAfter: info.NotAfter,
		}
		if err := d.st.CertificateCreate(ctx, &rec); err != nil {
			return err
		}
		o.CertID = rec.ID
		life := info.NotAfter.Sub(info.NotBefore)
		o.RenewAt = info.NotBefore.Add(life * 2 / 3)
	}
	o.Status, o.Message, o.Attempts, o.NextRun = store.OrderIssued, "", 0, time.Time{}
	if err := d.save(ctx, o); err != nil {
		return err
	}
	d.log.Info("acme: certificate issued", "order_id", o.ID, "cert_id", o.CertID, "domains", o.Domains,
		"seconds", d.opts.Clock().Sub(o.Created).Seconds())
	if o.RenewOf != 0 && o.CertID != 0 {
		d.renewed(ctx, o)
	}
	return nil
}

// pickChain returns the chain whose topmost issuer's CommonName is
// preferred, else the default one.
func pickChain(all map[string]*acme.RawCertificate, def, preferred string) []byte {
	if preferred != "" {
		for _, raw := range all {
			_, chain, err := certs.ParseChain(string(raw.Cert))
			if err != nil || len(chain) == 0 {
				continue
			}
			top := chain[len(chain)-1]
			if top.Issuer.CommonName == preferred || top.Subject.CommonName == preferred {
				return raw.Cert
			}
		}
	}
	return all[def].Cert
}

// retry schedules another look after a transient failure (with backoff),
// or fails the order when err is permanent or attempts ran out.
func (d *Driver) retry(ctx context.Context, o *store.Order, err error) {
	perm, after := classify(err)
	o.Attempts++
	if perm || o.Attempts >= d.opts.Attempts {
		d.cleanup(ctx, o)
		if ferr := d.failNow(ctx, o, err.Error()); ferr != nil && !errors.Is(ferr, store.ErrConflict) {
			d.log.Warn("acme: save order", "order_id", o.ID, "error", ferr)
		}
		return
	}
	delay := min(d.opts.RetryBase<<min(o.Attempts-1, 20), d.opts.RetryMax)
	delay = max(delay, after)
	o.NextRun, o.Message = d.opts.Clock().Add(delay), err.Error()
	d.log.Warn("acme: order step failed; retrying", "order_id", o.ID, "attempt", o.Attempts, "in", delay, "error", err)
	if err := d.save(ctx, o); err != nil && !errors.Is(err, store.ErrConflict) {
		d.log.Warn("acme: save order", "order_id", o.ID, "error", err)
	}
}

func (d *Driver) fail(ctx context.Context, o *store.Order, msg string) {
	if err := d.failNow(ctx, o, msg); err != nil && !errors.Is(err, store.ErrConflict) {
		d.log.Warn("acme: save order", "order_id", o.ID, "error", err)
	}
}

// failNow ends an order failed with msg and, for a renewal, schedules the
// next attempt on the certificate it renews.
func (d *Driver) failNow(ctx context.Context, o *store.Order, msg string) error {
	o.Status, o.Message, o.NextRun = store.OrderFailed, msg, time.Time{}
	if err := d.save(ctx, o); err != nil {
		return err
	}
	d.log.Warn("acme: order failed", "order_id", o.ID, "domains", o.Domains, "message", msg)
	if o.RenewOf != 0 {
		d.renewalFailed(ctx, o, msg)
	}
	return nil
}

// save writes an order the driver works on, adding the ACME requests made
// for it since the last save.
func (d *Driver) save(ctx context.Context, o *store.Order) error {
	if d.stepCore != nil {
		now := d.stepCore.requests.Load()
		o.ACMERequests += int(now - d.stepSeen)
		if err := d.st.OrderUpdate(ctx, o); err != nil {
			o.ACMERequests -= int(now - d.stepSeen)
			return err
		}
		d.stepSeen = now
		return nil
	}
	return d.st.OrderUpdate(ctx, o)
}
