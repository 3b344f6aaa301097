package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/mail"
	"net/url"
	"slices"
	"strings"

	"github.com/certfleet/certfleet/internal/deploy"
	"github.com/certfleet/certfleet/internal/issuance"
	"github.com/certfleet/certfleet/internal/secret"
	"github.com/certfleet/certfleet/internal/store"
	"github.com/certfleet/certfleet/internal/verify"
)

func (a *API) createCloudAccess(ctx context.Context, c *call) (any, error) {
	cloud, err := c.params.required("CloudName")
	if err != nil {
		return nil, err
	}
	if !a.knownCloud(cloud) {
		return nil, errInvalid("CloudName", "%q is not a known cloud; known: %s", cloud, strings.Join(a.clouds(), ", "))
	}
	secretID, err := c.params.required("SecretId")
	if err != nil {
		return nil, err
	}
	if secretID, err = c.params.text("SecretId", 256); err != nil {
		return nil, err
	}
	secretKey := c.params.v.Get("SecretKey")
	if secretKey == "" {
		return nil, errMissing("SecretKey")
	}
	if len(secretKey) > 64<<10 {
		return nil, errInvalid("SecretKey", "longer than 64 KiB")
	}
	name, err := c.params.text("Name", 128)
	if err != nil {
		return nil, err
	}
	config, err := c.params.jsonObject("Config")
	if err != nil {
		return nil, err
	}
	if cloud == "rfc2136" {
		if _, err := issuance.ParseRFC2136Config(config); err != nil {
			return nil, errInvalid("Config", "%v", err)
		}
	}
	if fields := a.accessFields(cloud); len(fields) > 0 {
		// The products decode it with the same fields when they deploy:
		// refuse now what they would refuse then.
		norm, err := deploy.NormalizeFields(cloud, "CloudAccess Config", fields, json.RawMessage(config))
		if err != nil {
			return nil, errInvalid("Config", "%v", err)
		}
		config = string(norm)
	}
	if config, err = a.box.SealConfig(config, a.accessSecret(cloud)); err != nil {
		return nil, errInvalid("Config", "%v", err)
	}
	rec := store.CloudAccess{AccountID: c.accountID, CloudName: cloud, Name: name, SecretID: secretID,
		SecretKeyEnc: a.box.Seal([]byte(secretKey), secret.PurposeAccessSecret), Config: config}
	if err := a.store.AccessCreate(ctx, &rec); err != nil {
		return nil, err
	}
	return struct{ AccessId int64 }{rec.ID}, nil
}

func (a *API) deleteCloudAccess(ctx context.Context, c *call) (any, error) {
	id, err := c.params.id("AccessId")
	if err != nil {
		return nil, err
	}
	return nil, deleteErr(a.store.AccessDelete(ctx, c.accountID, id), "CloudAccess", id)
}

func deleteErr(err error, what string, id int64) error {
	switch {
	case errors.Is(err, store.ErrNotFound):
		return errNotFound(what, id)
	case errors.Is(err, store.ErrInUse):
		return errInUse(what, id)
	}
	return err
}

func (a *API) listCloudAccess(ctx context.Context, c *call) (any, error) {
	page, size, err := c.params.page(20)
	if err != nil {
		return nil, err
	}
	list, total, err := a.store.AccessList(ctx, store.AccessListParams{AccountID: c.accountID, CloudName: c.params.str("CloudName"),
		SecretID: c.params.str("SecretId"), Offset: (page - 1) * size, Limit: size})
	if err != nil {
		return nil, err
	}
	type item struct {
		AccessId      int64
		CloudName     string
		Name          string
		SecretId      string
		ServiceStatus string
		GmtCreate     string
	}
	items := make([]item, 0, len(list))
	for _, ac := range list {
		items = append(items, item{ac.ID, ac.CloudName, ac.Name, ac.SecretID, "normal", msString(ac.Created)})
	}
	return struct {
		CloudAccessList []item
		CurrentPage     int64
		ShowSize        int64
		TotalCount      int64
	}{items, int64(page), int64(size), total}, nil
}

func (a *API) knownCloud(name string) bool {
	if slices.Contains(issuance.DNSClouds, name) { // DNS credentials of ACME orders (issue 20)
		return true
	}
	for _, d := range a.products.Products() {
		if d.CloudName == name || d.Access.CloudName == name {
			return true
		}
	}
	return false
}

// accessSecret reports which keys of a CloudAccess Config of cloud are
// secret: those any product using such an access marks Secret in its
// Access.Config description.
func (a *API) accessSecret(cloud string) func(string) bool {
	keys := map[string]bool{}
	for _, f := range a.accessFields(cloud) {
		if f.Secret {
			keys[f.Name] = true
		}
	}
	return func(k string) bool { return keys[k] }
}

// accessFields lists the CloudAccess Config keys the products of cloud
// read (the first product's declaration of a key wins, but a key is secret
// when any product marks it so; the products of one cloud share them).
func (a *API) accessFields(cloud string) []deploy.Field {
	var out []deploy.Field
	at := map[string]int{}
	for _, d := range a.products.Products() {
		if d.AccessCloud() != cloud {
			continue
		}
		for _, f := range d.Access.Config {
			i, seen := at[f.Name]
			switch {
			case !seen:
				at[f.Name] = len(out)
				out = append(out, f)
			case f.Secret:
				out[i].Secret = true // secret if any product says so
			}
		}
	}
	return out
}

// secretKeys lists every Config key (resource or CloudAccess) some product
// marks Secret: the audit trail redacts them in request parameters.
func secretKeys(products deploy.Catalog) []string {
	var out []string
	for _, d := range products.Products() {
		for _, f := range append(slices.Clip(d.Config), d.Access.Config...) {
			if f.Secret && !slices.Contains(out, f.Name) {
				out = append(out, f.Name)
			}
		}
	}
	return out
}

func (a *API) clouds() []string {
	var out []string
	seen := map[string]bool{}
	for _, d := range a.products.Products() {
		if !seen[d.CloudName] {
			seen[d.CloudName] = true
			out = append(out, d.CloudName)
		}
	}
	return out
}

// listCloudProducts answers ListCloudProducts (certfleet's own): every
// product's description, and the Config keys every product accepts, so a
// client can render forms without knowing the products.
func (a *API) listCloudProducts(ctx context.Context, c *call) (any, error) {
	cloud := c.params.str("CloudName")
	products := []deploy.Description{}
	for _, d := range a.products.Products() {
		if cloud == "" || d.CloudName == cloud {
			products = append(products, d)
		}
	}
	return struct {
		Products     []deploy.Description
		CommonConfig []deploy.Field
		TotalCount   int
	}{products, verify.Fields, len(products)}, nil
}

// resourceFields reads and validates the fields of Create/UpdateCloudResource
// into r; on update only the parameters present change.
func (a *API) resourceFields(ctx context.Context, c *call, r *store.Resource) error {
	str := func(name string, max int, dst *string) error {
		if !c.params.has(name) {
			return nil
		}
		v, err := c.params.text(name, max)
		*dst = v
		return err
	}
	for _, f := range []struct {
		name string
		max  int
		dst  *string
	}{{"CloudName", 64, &r.CloudName}, {"CloudProduct", 64, &r.CloudProduct}, {"Domain", 253, &r.Domain}, {"Name", 128, &r.Name},
		{"RegionId", 64, &r.RegionID}, {"InstanceId", 128, &r.InstanceID}, {"ListenerPort", 16, &r.ListenerPort},
		{"ListenerId", 128, &r.ListenerID}} {
		if err := str(f.name, f.max, f.dst); err != nil {
			return err
		}
	}
	r.Domain = strings.ToLower(strings.TrimSuffix(r.Domain, "."))
	if r.Domain != "" && !validDomain(r.Domain) {
		return errInvalid("Domain", "%q is not a host name", r.Domain)
	}
	if c.params.has("CloudAccessId") {
		id, err := c.params.optID("CloudAccessId")
		if err != nil {
			return err
		}
		r.CloudAccessID = id
	}
	if c.params.has("Config") || r.Config == "" {
		cfg, err := c.params.jsonObject("Config")
		if err != nil {
			return err
		}
		r.Config = secret.KeepSealed(r.Config, cfg) // a secret sent back as shown ("******") stays
	}
	d, ok := a.products.Lookup(r.CloudName, r.CloudProduct)
	if !ok {
		var known []string
		for _, k := range a.products.Products() {
			known = append(known, k.Name())
		}
		return errInvalid("CloudProduct", "%s/%s is not a known product; known: %s", r.CloudName, r.CloudProduct, strings.Join(known, ", "))
	}
	if r.CloudAccessID != 0 {
		ac, err := a.store.AccessGet(ctx, c.accountID, r.CloudAccessID)
		if errors.Is(err, store.ErrNotFound) {
			return errNotFound("CloudAccess", r.CloudAccessID)
		}
		if err != nil {
			return err
		}
		if want := d.Describe().AccessCloud(); ac.CloudName != want {
			return errInvalid("CloudAccessId", "access %d is for %s, not %s", ac.ID, ac.CloudName, r.CloudName)
		}
	}
	// VerifyAddress, VerifyGraceSeconds, AutoRollback and AutoRenew are valid for every
	// product: they are checked here and the product sees the rest.
	plain, err := a.box.OpenConfig(r.Config)
	if err != nil {
		return errInvalid("Config", "%v", err)
	}
	_, productConfig, err := verify.SplitConfig(json.RawMessage(plain))
	if err != nil {
		return errInvalid("Config", "%v", err)
	}
	acct, err := a.store.AccountGet(ctx, c.accountID)
	if err != nil {
		return err
	}
	t := deploy.Target{ResourceID: r.ID, AccountID: c.accountID, CloudName: r.CloudName, CloudProduct: r.CloudProduct,
		Domain: r.Domain, RegionID: r.RegionID, InstanceID: r.InstanceID, ListenerPort: r.ListenerPort, Config: productConfig, Scope: deploy.Scope{Confined: !acct.IsRoot(), LocalRoot: acct.LocalRoot}}
	claims, err := deploy.Check(d, t, r.CloudAccessID != 0)
	if err != nil {
		return errInvalid("Config", "%v", err)
	}
	r.Claims = claims
	// Secret keys (the description's Secret fields) are stored sealed.
	desc := d.Describe()
	r.Config, err = a.box.SealConfig(r.Config, func(k string) bool { f, ok := desc.Field(k); return ok && f.Secret })
	if err != nil {
		return errInvalid("Config", "%v", err)
	}
	return nil
}

// claimErr turns a claim another resource holds into InUse. The message
// names the path the caller asked for, never the other resource or its
// account.
func claimErr(err error) error {
	if !errors.Is(err, store.ErrClaimed) {
		return err
	}
	claim := strings.TrimPrefix(err.Error(), store.ErrClaimed.Error()+": ")
	claim = strings.TrimPrefix(claim, "local:")
	return &Error{Code: "InUse", Status: http.StatusBadRequest,
		Message: "Config: " + claim + " is already written by another resource; each file belongs to one resource."}
}

func validDomain(d string) bool {
	if len(d) > 253 {
		return false
	}
	for i, label := range strings.Split(d, ".") {
		if label == "*" && i == 0 {
			continue
		}
		if label == "" || len(label) > 63 {
			return false
		}
		for _, r := range label {
			if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
				return false
			}
		}
	}
	return true
}

func (a *API) createCloudResource(ctx context.Context, c *call) (any, error) {
	for _, name := range []string{"CloudName", "CloudProduct"} {
		if _, err := c.params.required(name); err != nil {
			return nil, err
		}
	}
	r := store.Resource{AccountID: c.accountID}
	if err := a.resourceFields(ctx, c, &r); err != nil {
		return nil, err
	}
	if err := a.store.ResourceCreate(ctx, &r); err != nil {
		return nil, claimErr(err)
	}
	return struct{ Id int64 }{r.ID}, nil
}

func (a *API) updateCloudResource(ctx context.Context, c *call) (any, error) {
	id, err := c.params.id("Id")
	if err != nil {
		return nil, err
	}
	r, err := a.store.ResourceGet(ctx, c.accountID, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, errNotFound("CloudResource", id)
	}
	if err != nil {
		return nil, err
	}
	if err := a.resourceFields(ctx, c, &r); err != nil {
		return nil, err
	}
	if err := a.store.ResourceUpdate(ctx, &r); err != nil {
		return nil, deleteErr(claimErr(err), "CloudResource", id)
	}
	return nil, nil
}

func (a *API) deleteCloudResource(ctx context.Context, c *call) (any, error) {
	id, err := c.params.id("Id")
	if err != nil {
		return nil, err
	}
	return nil, deleteErr(a.store.ResourceDelete(ctx, c.accountID, id), "CloudResource", id)
}

// resourceItem is one resource as ListCloudResources and ListDeploymentJobResource show it.
type resourceItem struct {
	CertEndTime     string
	CertId          int64
	CertName        string
	CertStartTime   string
	CloudAccessId   string
	CloudName       string
	CloudProduct    string
	CloudRegion     string
	Config          string
	DefaultResource int32
	Domain          string
	EnableHttps     int32
	GmtCreate       string
	GmtModified     string
	Id              int64
	InstanceId      string
	ListenerId      string
	ListenerPort    string
	Name            string
	RegionId        string
	Status          string
	UseSsl          int32
	UserId          int64
	// certfleet's additions: what VerifyAddress served when last probed.
	ObservedSha2     string
	ObservedSubject  string
	ObservedNotAfter string
	ObservedAt       string
	ObservedError    string
	// Stale: the observed certificate is not the one last deployed.
	Stale bool
}

// certLookup fetches certificates once per request.
type certLookup struct {
	a       *API
	account int64
	cache   map[int64]*store.Certificate
	sha2    map[string]*store.Certificate
}

func (l *certLookup) get(ctx context.Context, id int64) (*store.Certificate, error) {
	if id == 0 {
		return nil, nil
	}
	if c, ok := l.cache[id]; ok {
		return c, nil
	}
	c, err := l.a.store.CertificateGet(ctx, l.account, id)
	if errors.Is(err, store.ErrNotFound) {
		l.cache[id] = nil
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	l.cache[id] = &c
	return &c, nil
}

// bySha2 returns the account's certificate with this leaf fingerprint, nil when none.
func (l *certLookup) bySha2(ctx context.Context, sha2 string) (*store.Certificate, error) {
	if c, ok := l.sha2[sha2]; ok {
		return c, nil
	}
	c, err := l.a.store.CertificateFindBySha2(ctx, l.account, sha2)
	if errors.Is(err, store.ErrNotFound) {
		l.sha2[sha2] = nil
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	l.sha2[sha2] = &c
	return &c, nil
}

func (a *API) newCertLookup(account int64) *certLookup {
	return &certLookup{a: a, account: account, cache: map[int64]*store.Certificate{}, sha2: map[string]*store.Certificate{}}
}

// observations returns the latest observations of resources, by resource ID.
func (a *API) observations(ctx context.Context, account int64, rs []store.Resource) (map[int64]store.ResourceObservation, error) {
	ids := make([]int64, len(rs))
	for i, r := range rs {
		ids[i] = r.ID
	}
	list, err := a.store.ResourceObservationGetMany(ctx, account, ids)
	if err != nil {
		return nil, err
	}
	out := make(map[int64]store.ResourceObservation, len(list))
	for _, o := range list {
		out[o.ResourceID] = o
	}
	return out, nil
}

// stale reports whether an observation shows another certificate than the
// one certfleet last deployed (cert; nil when none or deleted).
func stale(o store.ResourceObservation, cert *store.Certificate) bool {
	return o.Error == "" && o.Sha2 != "" && cert != nil && !strings.EqualFold(o.Sha2, cert.Sha2)
}

func (a *API) resourceItemOf(ctx context.Context, certs *certLookup, r store.Resource, obs map[int64]store.ResourceObservation) (resourceItem, error) {
	it := resourceItem{CloudName: r.CloudName, CloudProduct: r.CloudProduct, CloudRegion: r.RegionID, Config: secret.MaskConfig(r.Config),
		Domain: r.Domain, EnableHttps: boolInt32(r.EnableHTTPS), GmtCreate: msString(r.Created), GmtModified: msString(r.Modified), Id: r.ID,
		InstanceId: r.InstanceID, ListenerId: r.ListenerID, ListenerPort: r.ListenerPort, Name: r.Name, RegionId: r.RegionID,
		Status: string(r.Status), UseSsl: boolInt32(r.EnableHTTPS), UserId: r.AccountID,
		DefaultResource: boolInt32(r.DefaultResource || configTrue(r.Config, "DefaultResource"))}
	if r.CloudAccessID != 0 {
		it.CloudAccessId = itoa(r.CloudAccessID)
	}
	cert, err := certs.get(ctx, r.CurrentCertID)
	if err != nil {
		return it, err
	}
	if o, ok := obs[r.ID]; ok {
		it.ObservedSha2, it.ObservedSubject, it.ObservedNotAfter = o.Sha2, o.Subject, msString(o.NotAfter)
		it.ObservedAt, it.ObservedError, it.Stale = msString(o.ObservedAt), o.Error, stale(o, cert)
	}
	if cert == nil && r.BoundSha2 != "" {
		// Not deployed by certfleet yet: the certificate the provider
		// reported bound at the last sync, when certfleet holds it.
		if cert, err = certs.bySha2(ctx, r.BoundSha2); err != nil {
			return it, err
		}
		if cert == nil && !r.BoundNotAfter.IsZero() {
			it.CertEndTime = msString(r.BoundNotAfter)
		}
	}
	if cert == nil {
		return it, nil
	}
	it.CertId, it.CertName = cert.ID, cert.Name
	it.CertStartTime, it.CertEndTime = msString(cert.NotBefore), msString(cert.NotAfter)
	return it, nil
}

func boolInt32(b bool) int32 {
	if b {
		return 1
	}
	return 0
}

// configTrue reports whether a resource's stored Config sets key to true.
func configTrue(config, key string) bool {
	var m map[string]any
	if json.Unmarshal([]byte(config), &m) != nil {
		return false
	}
	switch v := m[key].(type) {
	case bool:
		return v
	case string:
		return v == "true"
	}
	return false
}

func (a *API) listCloudResources(ctx context.Context, c *call) (any, error) {
	page, size, err := c.params.page(20)
	if err != nil {
		return nil, err
	}
	certIDs, err := c.params.ids("CertIds", false)
	if err != nil {
		return nil, err
	}
	keyword, err := c.params.text("Keyword", 256)
	if err != nil {
		return nil, err
	}
	accessIDs, byAccess, err := a.accessFilter(ctx, c)
	if err != nil {
		return nil, err
	}
	list, total, err := a.store.ResourceList(ctx, store.ResourceListParams{AccountID: c.accountID, CloudName: c.params.str("CloudName"),
		CloudProduct: c.params.str("CloudProduct"), Keyword: keyword, CertIDs: certIDs, AccessIDs: accessIDs, ByAccess: byAccess,
		Offset: (page - 1) * size, Limit: size})
	if err != nil {
		return nil, err
	}
	obs, err := a.observations(ctx, c.accountID, list)
	if err != nil {
		return nil, err
	}
	lookup := a.newCertLookup(c.accountID)
	items := make([]resourceItem, 0, len(list))
	for _, r := range list {
		it, err := a.resourceItemOf(ctx, lookup, r, obs)
		if err != nil {
			return nil, err
		}
		items = append(items, it)
	}
	return struct {
		Data        []resourceItem
		CurrentPage int64
		ShowSize    int64
		Total       int64
	}{items, int64(page), int64(size), total}, nil
}

func (a *API) describeCloudResourceStatus(ctx context.Context, c *call) (any, error) {
	counts, err := a.store.ResourceCountByProduct(ctx, c.accountID)
	if err != nil {
		return nil, err
	}
	observed, err := a.store.ResourceObservationCountByProduct(ctx, store.ObservationCountParams{AccountID: c.accountID,
		ExpiringBefore: a.opts.Clock().Add(expiringWithin)})
	if err != nil {
		return nil, err
	}
	byProduct := map[[2]string]store.ObservationCount{}
	for _, oc := range observed {
		byProduct[[2]string{oc.CloudName, oc.CloudProduct}] = oc
	}
	// StaleCount and ExpiringCount are certfleet's additions, from the
	// resources' latest observations.
	type item struct {
		CloudName     string
		CloudProduct  string
		TotalCount    int64
		StaleCount    int64
		ExpiringCount int64
	}
	items := make([]item, 0, len(counts))
	for _, pc := range counts {
		oc := byProduct[[2]string{pc.CloudName, pc.CloudProduct}]
		items = append(items, item{pc.CloudName, pc.CloudProduct, pc.Count, oc.Stale, oc.Expiring})
	}
	return struct{ Data []item }{items}, nil
}

// contactFields reads Create/UpdateContact parameters into ct; on update only those present change.
func (a *API) contactFields(c *call, ct *store.Contact) error {
	var err error
	if c.params.has("Name") {
		if ct.Name, err = c.params.text("Name", 128); err != nil {
			return err
		}
	}
	if c.params.has("Email") {
		if ct.Email, err = c.params.text("Email", 254); err != nil {
			return err
		}
		if addr, perr := mail.ParseAddress(ct.Email); perr != nil || addr.Address != ct.Email {
			return errInvalid("Email", "%q is not an email address", ct.Email)
		}
	}
	if c.params.has("Mobile") {
		if ct.Mobile, err = c.params.text("Mobile", 32); err != nil {
			return err
		}
	}
	if c.params.has("Webhooks") {
		var hooks []string
		if err := json.Unmarshal([]byte(c.params.str("Webhooks")), &hooks); err != nil {
			return errInvalid("Webhooks", "must be a JSON array of URLs")
		}
		if len(hooks) > 20 {
			return errInvalid("Webhooks", "at most 20 URLs")
		}
		for _, h := range hooks {
			u, err := url.Parse(h)
			if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				return errInvalid("Webhooks", "%q is not an http(s) URL", h)
			}
		}
		ct.Webhooks = hooks
	}
	return nil
}

func (a *API) createContact(ctx context.Context, c *call) (any, error) {
	if _, err := c.params.required("Name"); err != nil {
		return nil, err
	}
	ct := store.Contact{AccountID: c.accountID}
	if err := a.contactFields(c, &ct); err != nil {
		return nil, err
	}
	if err := a.store.ContactCreate(ctx, &ct); err != nil {
		return nil, err
	}
	// Warnings is certfleet's addition: what makes the contact unreachable.
	return struct {
		ContactId int64
		Warnings  []string `json:",omitempty"`
	}{ct.ID, a.contactWarnings(ct)}, nil
}

// contactWarnings says why ct would receive no message from this node: an
// email address without an SMTP server, or no channel at all. (Mobile
// numbers are stored for compatibility; certfleet sends no SMS.)
func (a *API) contactWarnings(ct store.Contact) []string {
	if len(ct.Webhooks) > 0 || (ct.Email != "" && a.opts.EmailEnabled) {
		return nil
	}
	if ct.Email != "" {
		return []string{fmt.Sprintf("contact %d (%s) cannot be reached: it has only an email address and this server sends no email (start it with --smtp-addr), and no webhook", ct.ID, ct.Name)}
	}
	return []string{fmt.Sprintf("contact %d (%s) cannot be reached: it has no webhook and no email address", ct.ID, ct.Name)}
}

func (a *API) updateContact(ctx context.Context, c *call) (any, error) {
	id, err := c.params.id("ContactId")
	if err != nil {
		return nil, err
	}
	ct, err := a.store.ContactGet(ctx, c.accountID, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, errNotFound("Contact", id)
	}
	if err != nil {
		return nil, err
	}
	if c.params.has("Name") && c.params.str("Name") == "" {
		return nil, errInvalid("Name", "must not be empty")
	}
	if err := a.contactFields(c, &ct); err != nil {
		return nil, err
	}
	return nil, deleteErr(a.store.ContactUpdate(ctx, &ct), "Contact", id)
}

func (a *API) deleteContact(ctx context.Context, c *call) (any, error) {
	id, err := c.params.id("ContactId")
	if err != nil {
		return nil, err
	}
	return nil, deleteErr(a.store.ContactDelete(ctx, c.accountID, id), "Contact", id)
}

type contactItem struct {
	ContactId    int64
	Email        string
	EmailStatus  int32
	Mobile       string
	MobileStatus int32
	Name         string
	Webhooks     string
}

func contactItemOf(ct store.Contact) contactItem {
	hooks, _ := json.Marshal(nonNilStrings(ct.Webhooks))
	return contactItem{ContactId: ct.ID, Email: ct.Email, EmailStatus: 1, Mobile: ct.Mobile, MobileStatus: 1, Name: ct.Name, Webhooks: string(hooks)}
}

func nonNilStrings(v []string) []string {
	if v == nil {
		return []string{}
	}
	return v
}

func (a *API) listContact(ctx context.Context, c *call) (any, error) {
	page, size, err := c.params.page(20)
	if err != nil {
		return nil, err
	}
	keyword, err := c.params.text("Keyword", 256)
	if err != nil {
		return nil, err
	}
	list, total, err := a.store.ContactList(ctx, store.ContactListParams{AccountID: c.accountID, Keyword: keyword, Offset: (page - 1) * size, Limit: size})
	if err != nil {
		return nil, err
	}
	items := make([]contactItem, 0, len(list))
	for _, ct := range list {
		items = append(items, contactItemOf(ct))
	}
	return struct {
		ContactList []contactItem
		CurrentPage int64
		Keyword     string
		ShowSize    int64
		TotalCount  int64
	}{items, int64(page), keyword, int64(size), total}, nil
}
