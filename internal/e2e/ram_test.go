package e2e

import (
	"database/sql"
	"errors"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	cas "github.com/alibabacloud-go/cas-20200407/v3/client"
	openapi "github.com/alibabacloud-go/darabonba-openapi/v2/client"
	ram "github.com/alibabacloud-go/ram-20150501/v2/client"
	"github.com/alibabacloud-go/tea/tea"
	_ "github.com/jackc/pgx/v5/stdlib"
	_ "modernc.org/sqlite"

	"github.com/certfleet/certfleet/internal/certs/certstest"
)

// ramClient is an official RAM SDK client (version 2015-05-01) on the server.
func (s *server) ramClient(keyID, secret string) *ram.Client {
	s.t.Helper()
	c, err := ram.NewClient(&openapi.Config{AccessKeyId: tea.String(keyID), AccessKeySecret: tea.String(secret),
		Endpoint: tea.String(s.addr), Protocol: tea.String("http")})
	if err != nil {
		s.t.Fatalf("ram client: %v", err)
	}
	return c
}

// ramUser creates a user with an access key and attaches policies ("System:Name" or "Custom:Name").
func ramUser(t *testing.T, rc *ram.Client, name string, policies ...string) (keyID, secret string) {
	t.Helper()
	if _, err := rc.CreateUser(&ram.CreateUserRequest{UserName: tea.String(name), DisplayName: tea.String(name + " display")}); err != nil {
		t.Fatalf("CreateUser %s: %v", name, err)
	}
	k, err := rc.CreateAccessKey(&ram.CreateAccessKeyRequest{UserName: tea.String(name)})
	if err != nil {
		t.Fatalf("CreateAccessKey %s: %v", name, err)
	}
	for _, p := range policies {
		typ, pname, _ := strings.Cut(p, ":")
		if _, err := rc.AttachPolicyToUser(&ram.AttachPolicyToUserRequest{UserName: tea.String(name), PolicyType: tea.String(typ), PolicyName: tea.String(pname)}); err != nil {
			t.Fatalf("AttachPolicyToUser %s %s: %v", name, p, err)
		}
	}
	return tea.StringValue(k.Body.AccessKey.AccessKeyId), tea.StringValue(k.Body.AccessKey.AccessKeySecret)
}

// wantDenied asserts err is Forbidden.RAM (403) with an AccessDeniedDetail of noPermission.
func wantDenied(t *testing.T, what string, err error, action, noPermission string) {
	t.Helper()
	if err == nil {
		t.Errorf("%s: allowed, want Forbidden.RAM", what)
		return
	}
	code, status := sdkErr(t, err)
	if code != "Forbidden.RAM" || status != 403 {
		t.Errorf("%s: %s (%d), want Forbidden.RAM (403)", what, code, status)
		return
	}
	// The SDKs read the body's AccessDeniedDetail into the error they return.
	var d map[string]any
	var ce *openapi.ClientError
	var se *tea.SDKError
	switch {
	case errors.As(err, &ce):
		d = ce.AccessDeniedDetail
	case errors.As(err, &se):
		d = se.AccessDeniedDetail
	default:
		t.Fatalf("%s: %T carries no AccessDeniedDetail", what, err)
	}
	if d["AuthAction"] != action || d["NoPermissionType"] != noPermission || d["AuthPrincipalType"] != "SubUser" ||
		d["PolicyType"] != "AccountLevelIdentityBasedPolicy" || d["AuthPrincipalDisplayName"] == "" {
		t.Errorf("%s: AccessDeniedDetail = %v, want AuthAction %s, NoPermissionType %s", what, d, action, noPermission)
	}
}

func upload(c *cas.Client, name string, ch certstest.Chain) error {
	_, err := c.UploadUserCertificate(&cas.UploadUserCertificateRequest{Name: tea.String(name), Cert: tea.String(ch.CertPEM), Key: tea.String(ch.KeyPEM)})
	return err
}

func TestRAMPolicies(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, engine string) {
		s := startServer(t, engine, serverOpts{})
		root := s.client(false)
		rc := s.ramClient(s.keyID, s.secret)
		rcv := newReceiver(t)
		resID := s.webhookResource(rcv.URL, "ram.example.test")
		contactID := s.contact()

		// A custom policy allowing exactly two actions.
		doc := `{"Version":"1","Statement":[{"Effect":"Allow","Action":["yundun-cert:UploadUserCertificate","yundun-cert:CreateDeploymentJob"],"Resource":"*"}]}`
		if _, err := rc.CreatePolicy(&ram.CreatePolicyRequest{PolicyName: tea.String("UploadAndDeploy"), PolicyDocument: tea.String(doc)}); err != nil {
			t.Fatalf("CreatePolicy: %v", err)
		}
		gp, err := rc.GetPolicy(&ram.GetPolicyRequest{PolicyName: tea.String("UploadAndDeploy"), PolicyType: tea.String("Custom")})
		if err != nil || tea.StringValue(gp.Body.DefaultPolicyVersion.PolicyDocument) != doc || tea.StringValue(gp.Body.Policy.DefaultVersion) != "v1" {
			t.Fatalf("GetPolicy: %v %v", err, gp)
		}
		kid, ksec := ramUser(t, rc, "deployer", "Custom:UploadAndDeploy")
		u := s.clientWith(kid, ksec, false, nil)

		ch := certstest.New(t, certstest.Options{DNSNames: []string{"ram.example.test"}})
		up, err := u.UploadUserCertificate(&cas.UploadUserCertificateRequest{Name: tea.String("by-user"), Cert: tea.String(ch.CertPEM), Key: tea.String(ch.KeyPEM)})
		if err != nil {
			t.Fatalf("user UploadUserCertificate: %v", err)
		}
		certID := tea.Int64Value(up.Body.CertId)
		if _, err := u.CreateDeploymentJob(&cas.CreateDeploymentJobRequest{Name: tea.String("user-job"), JobType: tea.String("user"),
			CertIds: tea.String(joinIDs(certID)), ResourceIds: tea.String(joinIDs(resID)), ContactIds: tea.String(joinIDs(contactID))}); err != nil {
			t.Fatalf("user CreateDeploymentJob: %v", err)
		}
		_, err = u.ListUserCertificateOrder(&cas.ListUserCertificateOrderRequest{})
		wantDenied(t, "ListUserCertificateOrder", err, "yundun-cert:ListUserCertificateOrder", "ImplicitDeny")
		_, err = u.DeleteUserCertificate(&cas.DeleteUserCertificateRequest{CertId: tea.Int64(certID)})
		wantDenied(t, "DeleteUserCertificate", err, "yundun-cert:DeleteUserCertificate", "ImplicitDeny")
		_, err = u.DescribeDeploymentJob(&cas.DescribeDeploymentJobRequest{JobId: tea.Int64(1)})
		wantDenied(t, "DescribeDeploymentJob", err, "yundun-cert:DescribeDeployment", "ImplicitDeny")
		_, err = s.ramClient(kid, ksec).CreateUser(&ram.CreateUserRequest{UserName: tea.String("escalate")})
		wantDenied(t, "ram:CreateUser", err, "ram:CreateUser", "ImplicitDeny")

		// An explicit Deny beats the Allow, at once (same node).
		deny := `{"Version":"1","Statement":[{"Effect":"Deny","Action":"yundun-cert:Upload*","Resource":"*"}]}`
		if _, err := rc.CreatePolicy(&ram.CreatePolicyRequest{PolicyName: tea.String("NoUpload"), PolicyDocument: tea.String(deny)}); err != nil {
			t.Fatal(err)
		}
		if _, err := rc.AttachPolicyToUser(&ram.AttachPolicyToUserRequest{UserName: tea.String("deployer"), PolicyType: tea.String("Custom"), PolicyName: tea.String("NoUpload")}); err != nil {
			t.Fatal(err)
		}
		ch2 := certstest.New(t, certstest.Options{DNSNames: []string{"ram.example.test"}})
		wantDenied(t, "Upload under explicit Deny", upload(u, "denied", ch2), "yundun-cert:UploadUserCertificate", "ExplicitDeny")
		if _, err := rc.DetachPolicyFromUser(&ram.DetachPolicyFromUserRequest{UserName: tea.String("deployer"), PolicyType: tea.String("Custom"), PolicyName: tea.String("NoUpload")}); err != nil {
			t.Fatal(err)
		}
		if err := upload(u, "allowed-again", ch2); err != nil {
			t.Fatalf("Upload after Detach: %v", err)
		}

		// The read-only system policy lists but does not change.
		rid, rsec := ramUser(t, rc, "auditor", "System:AliyunYundunCertReadOnlyAccess")
		ro := s.clientWith(rid, rsec, true, nil) // V1 signatures too
		if n := certTotal(t, ro); n != 2 {
			t.Errorf("read-only user lists %d certificates, want 2", n)
		}
		ch3 := certstest.New(t, certstest.Options{DNSNames: []string{"ro.example.test"}})
		wantDenied(t, "read-only Upload", upload(ro, "ro", ch3), "yundun-cert:UploadUserCertificate", "ImplicitDeny")

		// Groups: a group's policy applies to its members.
		if _, err := rc.CreateGroup(&ram.CreateGroupRequest{GroupName: tea.String("readers")}); err != nil {
			t.Fatal(err)
		}
		if _, err := rc.AttachPolicyToGroup(&ram.AttachPolicyToGroupRequest{GroupName: tea.String("readers"), PolicyType: tea.String("System"), PolicyName: tea.String("AliyunYundunCertReadOnlyAccess")}); err != nil {
			t.Fatal(err)
		}
		if _, err := rc.AddUserToGroup(&ram.AddUserToGroupRequest{GroupName: tea.String("readers"), UserName: tea.String("deployer")}); err != nil {
			t.Fatal(err)
		}
		if _, err := u.ListUserCertificateOrder(&cas.ListUserCertificateOrderRequest{}); err != nil {
			t.Errorf("group member cannot list: %v", err)
		}
		gs, err := rc.ListGroupsForUser(&ram.ListGroupsForUserRequest{UserName: tea.String("deployer")})
		if err != nil || len(gs.Body.Groups.Group) != 1 || tea.StringValue(gs.Body.Groups.Group[0].GroupName) != "readers" {
			t.Errorf("ListGroupsForUser: %v %v", err, gs)
		}
		pu, err := rc.ListPoliciesForUser(&ram.ListPoliciesForUserRequest{UserName: tea.String("deployer")})
		if err != nil || len(pu.Body.Policies.Policy) != 1 {
			t.Errorf("ListPoliciesForUser: %v %v", err, pu)
		}

		// RAM errors as RAM names them.
		_, err = rc.GetUser(&ram.GetUserRequest{UserName: tea.String("nobody")})
		if code, status := sdkErr(t, err); code != "EntityNotExist.User" || status != 404 {
			t.Errorf("GetUser nobody: %s %d", code, status)
		}
		_, err = rc.CreateUser(&ram.CreateUserRequest{UserName: tea.String("deployer")})
		if code, status := sdkErr(t, err); code != "EntityAlreadyExists.User" || status != 409 {
			t.Errorf("CreateUser twice: %s %d", code, status)
		}
		_, err = rc.CreatePolicy(&ram.CreatePolicyRequest{PolicyName: tea.String("Bad"), PolicyDocument: tea.String(`{"Version":"1"}`)})
		if code, _ := sdkErr(t, err); code != "MalformedPolicyDocument" {
			t.Errorf("bad document: %s", code)
		}
		lu, err := rc.ListUsers(&ram.ListUsersRequest{MaxItems: tea.Int32(1)})
		if err != nil || len(lu.Body.Users.User) != 1 || !tea.BoolValue(lu.Body.IsTruncated) {
			t.Errorf("ListUsers page: %v %v", err, lu)
		}
		lp, err := rc.ListPolicies(&ram.ListPoliciesRequest{PolicyType: tea.String("System")})
		if err != nil || len(lp.Body.Policies.Policy) != 2 {
			t.Errorf("ListPolicies System: %v %v", err, lp)
		}
		pv, err := rc.CreatePolicyVersion(&ram.CreatePolicyVersionRequest{PolicyName: tea.String("UploadAndDeploy"), PolicyDocument: tea.String(doc), SetAsDefault: tea.Bool(true)})
		if err != nil || tea.StringValue(pv.Body.PolicyVersion.VersionId) != "v2" {
			t.Errorf("CreatePolicyVersion: %v %v", err, pv)
		}
		if _, err := rc.SetDefaultPolicyVersion(&ram.SetDefaultPolicyVersionRequest{PolicyName: tea.String("UploadAndDeploy"), VersionId: tea.String("v1")}); err != nil {
			t.Errorf("SetDefaultPolicyVersion: %v", err)
		}
		vs, err := rc.ListPolicyVersions(&ram.ListPolicyVersionsRequest{PolicyName: tea.String("UploadAndDeploy"), PolicyType: tea.String("Custom")})
		if err != nil || len(vs.Body.PolicyVersions.PolicyVersion) != 2 || !tea.BoolValue(vs.Body.PolicyVersions.PolicyVersion[0].IsDefaultVersion) {
			t.Errorf("ListPolicyVersions: %v %v", err, vs)
		}

		// A deactivated key is refused at once; so is a deleted one.
		if _, err := rc.UpdateAccessKey(&ram.UpdateAccessKeyRequest{UserName: tea.String("auditor"), UserAccessKeyId: tea.String(rid), Status: tea.String("Inactive")}); err != nil {
			t.Fatalf("UpdateAccessKey: %v", err)
		}
		_, err = ro.ListUserCertificateOrder(&cas.ListUserCertificateOrderRequest{})
		if code, status := sdkErr(t, err); code != "InvalidAccessKeyId.NotFound" || status != 404 {
			t.Errorf("inactive key: %s %d", code, status)
		}
		if _, err := rc.DeleteAccessKey(&ram.DeleteAccessKeyRequest{UserName: tea.String("deployer"), UserAccessKeyId: tea.String(kid)}); err != nil {
			t.Fatalf("DeleteAccessKey: %v", err)
		}
		_, err = u.ListUserCertificateOrder(&cas.ListUserCertificateOrderRequest{})
		if code, _ := sdkErr(t, err); code != "InvalidAccessKeyId.NotFound" {
			t.Errorf("deleted key: %s", code)
		}

		// Root keeps full access.
		if n := certTotal(t, root); n != 2 {
			t.Errorf("root lists %d certificates", n)
		}
	})
}

func TestAuditTrail(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, engine string) {
		s := startServer(t, engine, serverOpts{})
		rc := s.ramClient(s.keyID, s.secret)
		kid, ksec := ramUser(t, rc, "reader", "System:AliyunYundunCertReadOnlyAccess")
		u := s.clientWith(kid, ksec, false, nil)
		ch := certstest.New(t, certstest.Options{DNSNames: []string{"audit.example.test"}})
		if err := upload(s.client(false), "audited", ch); err != nil {
			t.Fatal(err)
		}
		certTotal(t, u) // a read: not recorded
		wantDenied(t, "reader upload", upload(u, "nope", ch), "yundun-cert:UploadUserCertificate", "ImplicitDeny")
		s.mustOwn("CreateCloudAccess", map[string]string{"CloudName": "webhook", "SecretId": "id", "SecretKey": "very-secret-value"})

		body := s.mustOwn("LookupAuditEvents", map[string]string{"ShowSize": "100"})
		events, _ := body["Events"].([]any)
		actions := map[string]map[string]any{}
		for _, e := range events {
			m := e.(map[string]any)
			actions[m["Action"].(string)+"/"+m["ResultCode"].(string)] = m
		}
		for _, want := range []string{"ram:CreateUser/Success", "ram:CreateAccessKey/Success", "ram:AttachPolicyToUser/Success",
			"yundun-cert:UploadUserCertificate/Success", "yundun-cert:UploadUserCertificate/Forbidden.RAM", "yundun-cert:CreateCloudAccess/Success"} {
			if actions[want] == nil {
				t.Errorf("no audit event %s in %v", want, actions)
			}
		}
		if _, ok := actions["yundun-cert:ListUserCertificateOrder/Success"]; ok {
			t.Error("a read was recorded")
		}
		if d := actions["yundun-cert:UploadUserCertificate/Forbidden.RAM"]; d != nil && d["Principal"] != "reader" {
			t.Errorf("denied call principal = %v", d["Principal"])
		}
		for _, m := range actions {
			p, _ := m["Parameters"].(string)
			if strings.Contains(p, "very-secret-value") || strings.Contains(p, "PRIVATE KEY") {
				t.Errorf("secret in audit parameters: %s", p)
			}
		}
		filtered := s.mustOwn("LookupAuditEvents", map[string]string{"EventAction": "ram:CreateUser", "Principal": "root"})
		if n := idOf(t, filtered, "TotalCount"); n != 1 {
			t.Errorf("filtered TotalCount = %d, want 1", n)
		}

		verify := func() (string, error) {
			out, err := exec.Command(certfleetBinary(t), "audit", "verify", "--data-dir", s.dataDir, "--database", s.database).CombinedOutput()
			return string(out), err
		}
		if out, err := verify(); err != nil {
			t.Fatalf("audit verify on an intact chain: %v\n%s", err, out)
		}
		// Tamper with one row: verify names it and exits non-zero.
		var db *sql.DB
		var err error
		if engine == "postgres" {
			db, err = sql.Open("pgx", s.database)
		} else {
			db, err = sql.Open("sqlite", "file:"+filepath.Join(s.dataDir, "certfleet.db")+"?_pragma=busy_timeout(10000)")
		}
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		var id int64
		if err := db.QueryRow(`SELECT MIN(id) FROM audit_events WHERE action = 'yundun-cert:UploadUserCertificate'`).Scan(&id); err != nil {
			t.Fatal(err)
		}
		q := `UPDATE audit_events SET code = 'Success', principal = 'someone-else' WHERE id = ?`
		if engine == "postgres" {
			q = strings.Replace(q, "?", "$1", 1)
		}
		if _, err := db.Exec(q, id); err != nil {
			t.Fatal(err)
		}
		out, err := verify()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() == 0 {
			t.Fatalf("audit verify on a tampered chain: %v\n%s", err, out)
		}
		if want := "row " + itoaTest(id); !strings.Contains(out, want) {
			t.Errorf("audit verify output %q does not name %s", out, want)
		}
	})
}

func itoaTest(v int64) string { return strconv.FormatInt(v, 10) }
