package storetest

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/certfleet/certfleet/internal/audit"
	"github.com/certfleet/certfleet/internal/store"
)

func (b *bundle) ramUser(t *testing.T, acct int64, name string) store.RAMUser {
	t.Helper()
	u := store.RAMUser{AccountID: acct, Name: name, DisplayName: "User " + name, Email: name + "@example.test"}
	ok(t, b.s.RAMUserCreate(b.ctx, &u), "RAMUserCreate(%s)", name)
	if u.ID == 0 {
		t.Fatalf("RAMUserCreate(%s) left ID 0", name)
	}
	return u
}

func (b *bundle) ramGroup(t *testing.T, acct int64, name string) store.RAMGroup {
	t.Helper()
	g := store.RAMGroup{AccountID: acct, Name: name, Comments: "group " + name}
	ok(t, b.s.RAMGroupCreate(b.ctx, &g), "RAMGroupCreate(%s)", name)
	if g.ID == 0 {
		t.Fatalf("RAMGroupCreate(%s) left ID 0", name)
	}
	return g
}

func (b *bundle) ramPolicy(t *testing.T, acct int64, name, doc string) store.RAMPolicy {
	t.Helper()
	p := store.RAMPolicy{AccountID: acct, Name: name, Description: "policy " + name}
	ok(t, b.s.RAMPolicyCreate(b.ctx, &p, doc), "RAMPolicyCreate(%s)", name)
	if p.ID == 0 {
		t.Fatalf("RAMPolicyCreate(%s) left ID 0", name)
	}
	return p
}

// generation returns RAMGeneration.
func (b *bundle) generation(t *testing.T) int64 {
	t.Helper()
	g, err := b.s.RAMGeneration(b.ctx)
	ok(t, err, "RAMGeneration")
	return g
}

func ramUserID(u store.RAMUser) int64     { return u.ID }
func ramGroupID(g store.RAMGroup) int64   { return g.ID }
func ramPolicyID(p store.RAMPolicy) int64 { return p.ID }

func versionIDs(vs []store.RAMPolicyVersion) (ids []string, def string) {
	for _, v := range vs {
		ids = append(ids, v.VersionID)
		if v.IsDefault {
			def = v.VersionID
		}
	}
	return ids, def
}

func testRAM(t *testing.T, setup func(t *testing.T) *bundle) {
	t.Run("accounts are created once by name", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		id, err := b.s.AccountCreate(b.ctx, "initech")
		ok(t, err, "AccountCreate")
		if id == 0 || id == b.acct || id == b.other {
			t.Fatalf("AccountCreate = %d", id)
		}
		_, err = b.s.AccountCreate(b.ctx, "initech")
		isErr(t, err, store.ErrConflict, "AccountCreate(taken)")
		again, err := b.s.AccountEnsure(b.ctx, "initech")
		ok(t, err, "AccountEnsure(initech)")
		equal(t, "AccountEnsure of a created account", again, id)
	})

	t.Run("users round-trip, page, rename and stay in their account", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		gen := b.generation(t)
		alice := b.ramUser(t, b.acct, "alice")
		if b.generation(t) <= gen {
			t.Errorf("RAMUserCreate did not bump the RAM generation")
		}
		bob := b.ramUser(t, b.acct, "bob")
		carol := b.ramUser(t, b.acct, "carol")
		b.ramUser(t, b.other, "alice") // names are per account

		dup := store.RAMUser{AccountID: b.acct, Name: "alice"}
		isErr(t, b.s.RAMUserCreate(b.ctx, &dup), store.ErrConflict, "RAMUserCreate(duplicate)")

		got, err := b.s.RAMUserGet(b.ctx, b.acct, "alice")
		ok(t, err, "RAMUserGet")
		equal(t, "RAMUserGet", got.ID, alice.ID)
		equal(t, "RAMUserGet email", got.Email, "alice@example.test")
		sameMS(t, "Created", got.Created, alice.Created)
		byID, err := b.s.RAMUserGetByID(b.ctx, b.acct, bob.ID)
		ok(t, err, "RAMUserGetByID")
		equal(t, "RAMUserGetByID", byID.Name, "bob")
		_, err = b.s.RAMUserGetByID(b.ctx, b.other, bob.ID)
		isErr(t, err, store.ErrNotFound, "RAMUserGetByID(other account)")
		_, err = b.s.RAMUserGet(b.ctx, b.acct, "nobody")
		isErr(t, err, store.ErrNotFound, "RAMUserGet(unknown)")

		page, err := b.s.RAMUserList(b.ctx, store.RAMListParams{AccountID: b.acct, Limit: 2})
		ok(t, err, "RAMUserList")
		equal(t, "first page", idsOf(page, ramUserID), sorted(alice.ID, bob.ID))
		page, err = b.s.RAMUserList(b.ctx, store.RAMListParams{AccountID: b.acct, AfterID: bob.ID, Limit: 2})
		ok(t, err, "RAMUserList(after)")
		equal(t, "second page", idsOf(page, ramUserID), []int64{carol.ID})

		bob.Name, bob.Comments = "robert", "renamed"
		ok(t, b.s.RAMUserUpdate(b.ctx, &bob), "RAMUserUpdate")
		got, err = b.s.RAMUserGet(b.ctx, b.acct, "robert")
		ok(t, err, "RAMUserGet(renamed)")
		equal(t, "renamed comments", got.Comments, "renamed")
		carol.Name = "alice"
		isErr(t, b.s.RAMUserUpdate(b.ctx, &carol), store.ErrConflict, "RAMUserUpdate(taken name)")
		ghost := store.RAMUser{AccountID: b.other, ID: alice.ID, Name: "ghost"}
		isErr(t, b.s.RAMUserUpdate(b.ctx, &ghost), store.ErrNotFound, "RAMUserUpdate(other account)")
	})

	t.Run("a user's access keys are limited, toggled and block its delete", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		u := b.ramUser(t, b.acct, "alice")
		for i := range 2 {
			k := store.AccessKey{ID: fmt.Sprintf("LTAIuser%d", i), AccountID: b.acct, UserID: u.ID, SecretEnc: []byte("s"), Status: "Active", Created: b.now}
			ok(t, b.s.AccessKeyCreate(b.ctx, k, 2), "AccessKeyCreate(%d)", i)
		}
		extra := store.AccessKey{ID: "LTAIuser9", AccountID: b.acct, UserID: u.ID, SecretEnc: []byte("s"), Status: "Active"}
		isErr(t, b.s.AccessKeyCreate(b.ctx, extra, 2), store.ErrLimitExceeded, "AccessKeyCreate past the limit")
		keys, err := b.s.AccessKeyList(b.ctx, b.acct, u.ID)
		ok(t, err, "AccessKeyList")
		if len(keys) != 2 || keys[0].UserID != u.ID {
			t.Fatalf("AccessKeyList = %+v, want the user's 2 keys", keys)
		}
		root, err := b.s.AccessKeyList(b.ctx, b.acct, 0)
		ok(t, err, "AccessKeyList(root)")
		equal(t, "root keys", len(root), 0)

		ok(t, b.s.AccessKeySetStatus(b.ctx, b.acct, u.ID, "LTAIuser0", "Inactive"), "AccessKeySetStatus")
		k, err := b.s.AccessKeyGet(b.ctx, "LTAIuser0")
		ok(t, err, "AccessKeyGet")
		equal(t, "status", k.Status, store.AccessKeyInactive)
		isErr(t, b.s.AccessKeySetStatus(b.ctx, b.other, u.ID, "LTAIuser0", "Active"), store.ErrNotFound, "AccessKeySetStatus(other account)")

		isErr(t, b.s.RAMUserDelete(b.ctx, b.acct, u.ID), store.ErrInUse, "RAMUserDelete with keys")
		for i := range 2 {
			ok(t, b.s.AccessKeyDelete(b.ctx, b.acct, u.ID, fmt.Sprintf("LTAIuser%d", i)), "AccessKeyDelete(%d)", i)
		}
		isErr(t, b.s.AccessKeyDelete(b.ctx, b.acct, u.ID, "LTAIuser0"), store.ErrNotFound, "AccessKeyDelete(again)")
		ok(t, b.s.RAMUserDelete(b.ctx, b.acct, u.ID), "RAMUserDelete")
		_, err = b.s.RAMUserGetByID(b.ctx, b.acct, u.ID)
		isErr(t, err, store.ErrNotFound, "RAMUserGetByID after delete")
		isErr(t, b.s.RAMUserDelete(b.ctx, b.acct, u.ID), store.ErrNotFound, "RAMUserDelete(again)")
	})

	t.Run("concurrent key creates never pass the limit", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		u := b.ramUser(t, b.acct, "alice")
		const max, tries = 2, 8
		var wg sync.WaitGroup
		errs := make([]error, tries)
		for i := range tries {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs[i] = b.s.AccessKeyCreate(b.ctx, store.AccessKey{ID: fmt.Sprintf("LTAIrace%d", i), AccountID: b.acct, UserID: u.ID,
					SecretEnc: []byte("s"), Status: "Active"}, max)
			}()
		}
		wg.Wait()
		created := 0
		for i, err := range errs {
			switch {
			case err == nil:
				created++
			case errors.Is(err, store.ErrLimitExceeded), errors.Is(err, store.ErrConflict):
			default:
				t.Errorf("AccessKeyCreate(%d): %v", i, err)
			}
		}
		keys, err := b.s.AccessKeyList(b.ctx, b.acct, u.ID)
		ok(t, err, "AccessKeyList")
		if len(keys) != created || created > max {
			t.Fatalf("%d keys (%d creates succeeded), limit %d", len(keys), created, max)
		}
	})

	t.Run("groups hold users and block their delete while they do", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		alice := b.ramUser(t, b.acct, "alice")
		bob := b.ramUser(t, b.acct, "bob")
		stranger := b.ramUser(t, b.other, "stranger")
		ops := b.ramGroup(t, b.acct, "ops")
		dev := b.ramGroup(t, b.acct, "dev")
		dup := store.RAMGroup{AccountID: b.acct, Name: "ops"}
		isErr(t, b.s.RAMGroupCreate(b.ctx, &dup), store.ErrConflict, "RAMGroupCreate(duplicate)")
		got, err := b.s.RAMGroupGet(b.ctx, b.acct, "ops")
		ok(t, err, "RAMGroupGet")
		equal(t, "RAMGroupGet", got.ID, ops.ID)
		equal(t, "comments", got.Comments, "group ops")
		_, err = b.s.RAMGroupGet(b.ctx, b.other, "ops")
		isErr(t, err, store.ErrNotFound, "RAMGroupGet(other account)")
		list, err := b.s.RAMGroupList(b.ctx, store.RAMListParams{AccountID: b.acct, AfterID: ops.ID})
		ok(t, err, "RAMGroupList")
		equal(t, "groups after ops", idsOf(list, ramGroupID), []int64{dev.ID})

		gen := b.generation(t)
		ok(t, b.s.RAMGroupAddUser(b.ctx, b.acct, ops.ID, alice.ID), "RAMGroupAddUser(ops, alice)")
		if b.generation(t) <= gen {
			t.Errorf("RAMGroupAddUser did not bump the RAM generation")
		}
		ok(t, b.s.RAMGroupAddUser(b.ctx, b.acct, dev.ID, alice.ID), "RAMGroupAddUser(dev, alice)")
		ok(t, b.s.RAMGroupAddUser(b.ctx, b.acct, ops.ID, bob.ID), "RAMGroupAddUser(ops, bob)")
		isErr(t, b.s.RAMGroupAddUser(b.ctx, b.acct, ops.ID, alice.ID), store.ErrConflict, "RAMGroupAddUser(again)")
		isErr(t, b.s.RAMGroupAddUser(b.ctx, b.acct, ops.ID, stranger.ID), store.ErrNotFound, "RAMGroupAddUser(user of another account)")

		groups, err := b.s.RAMGroupsForUser(b.ctx, b.acct, alice.ID)
		ok(t, err, "RAMGroupsForUser")
		equal(t, "alice's groups", idsOf(groups, ramGroupID), sorted(ops.ID, dev.ID))
		for _, g := range groups {
			if g.Joined.IsZero() {
				t.Errorf("group %s: Joined not set", g.Name)
			}
		}

		isErr(t, b.s.RAMGroupDelete(b.ctx, b.acct, ops.ID), store.ErrInUse, "RAMGroupDelete with members")
		ok(t, b.s.RAMGroupRemoveUser(b.ctx, b.acct, ops.ID, bob.ID), "RAMGroupRemoveUser")
		isErr(t, b.s.RAMGroupRemoveUser(b.ctx, b.acct, ops.ID, bob.ID), store.ErrNotFound, "RAMGroupRemoveUser(again)")

		// Deleting a user takes it out of its groups.
		ok(t, b.s.RAMUserDelete(b.ctx, b.acct, alice.ID), "RAMUserDelete(alice)")
		groups, err = b.s.RAMGroupsForUser(b.ctx, b.acct, alice.ID)
		ok(t, err, "RAMGroupsForUser(deleted user)")
		equal(t, "a deleted user's groups", len(groups), 0)
		ok(t, b.s.RAMGroupDelete(b.ctx, b.acct, ops.ID), "RAMGroupDelete(emptied)")
		_, err = b.s.RAMGroupGet(b.ctx, b.acct, "ops")
		isErr(t, err, store.ErrNotFound, "RAMGroupGet after delete")
		isErr(t, b.s.RAMGroupDelete(b.ctx, b.other, dev.ID), store.ErrNotFound, "RAMGroupDelete(other account)")
	})

	t.Run("policies keep versions up to a limit, rotating the oldest on request", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		p := b.ramPolicy(t, b.acct, "deployers", `{"v":1}`)
		equal(t, "new policy's default", p.DefaultVersion, "v1")
		dup := store.RAMPolicy{AccountID: b.acct, Name: "deployers"}
		isErr(t, b.s.RAMPolicyCreate(b.ctx, &dup, `{}`), store.ErrConflict, "RAMPolicyCreate(duplicate)")

		const max = 3
		v2, err := b.s.RAMPolicyVersionCreate(b.ctx, b.acct, p.ID, `{"v":2}`, false, false, max)
		ok(t, err, "RAMPolicyVersionCreate(v2)")
		equal(t, "second version", v2.VersionID, "v2")
		v3, err := b.s.RAMPolicyVersionCreate(b.ctx, b.acct, p.ID, `{"v":3}`, true, false, max)
		ok(t, err, "RAMPolicyVersionCreate(v3, default)")
		equal(t, "third version", v3.VersionID, "v3")
		got, err := b.s.RAMPolicyGet(b.ctx, b.acct, "deployers")
		ok(t, err, "RAMPolicyGet")
		equal(t, "default after v3", []string{got.DefaultVersion, got.DefaultDocument}, []string{"v3", `{"v":3}`})

		_, err = b.s.RAMPolicyVersionCreate(b.ctx, b.acct, p.ID, `{"v":4}`, false, false, max)
		isErr(t, err, store.ErrLimitExceeded, "RAMPolicyVersionCreate past the limit")
		// v1 is the oldest non-default version: rotation removes it.
		v4, err := b.s.RAMPolicyVersionCreate(b.ctx, b.acct, p.ID, `{"v":4}`, false, true, max)
		ok(t, err, "RAMPolicyVersionCreate(rotate)")
		equal(t, "rotated version", v4.VersionID, "v4")
		vs, err := b.s.RAMPolicyVersions(b.ctx, b.acct, p.ID)
		ok(t, err, "RAMPolicyVersions")
		ids, def := versionIDs(vs)
		equal(t, "versions after rotation", ids, []string{"v2", "v3", "v4"})
		equal(t, "default after rotation", def, "v3")

		ok(t, b.s.RAMPolicySetDefault(b.ctx, b.acct, p.ID, "v2"), "RAMPolicySetDefault(v2)")
		isErr(t, b.s.RAMPolicySetDefault(b.ctx, b.acct, p.ID, "v1"), store.ErrNotFound, "RAMPolicySetDefault(rotated away)")
		isErr(t, b.s.RAMPolicySetDefault(b.ctx, b.other, p.ID, "v3"), store.ErrNotFound, "RAMPolicySetDefault(other account)")
		got, err = b.s.RAMPolicyGet(b.ctx, b.acct, "deployers")
		ok(t, err, "RAMPolicyGet")
		equal(t, "default document", got.DefaultDocument, `{"v":2}`)
		_, err = b.s.RAMPolicyVersionCreate(b.ctx, b.other, p.ID, `{}`, false, true, max)
		isErr(t, err, store.ErrNotFound, "RAMPolicyVersionCreate(other account)")

		other := b.ramPolicy(t, b.acct, "readers", `{}`)
		list, err := b.s.RAMPolicyList(b.ctx, store.RAMListParams{AccountID: b.acct})
		ok(t, err, "RAMPolicyList")
		equal(t, "policies", idsOf(list, ramPolicyID), sorted(p.ID, other.ID))
		list, err = b.s.RAMPolicyList(b.ctx, store.RAMListParams{AccountID: b.other})
		ok(t, err, "RAMPolicyList(other account)")
		equal(t, "other account's policies", len(list), 0)
	})

	t.Run("versions are numbered past nine and rotated oldest first", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		p := b.ramPolicy(t, b.acct, "many", `{"v":1}`)
		const max = 5
		for i := 2; i <= 12; i++ {
			v, err := b.s.RAMPolicyVersionCreate(b.ctx, b.acct, p.ID, fmt.Sprintf(`{"v":%d}`, i), false, true, max)
			ok(t, err, "RAMPolicyVersionCreate(v%d)", i)
			equal(t, "version", v.VersionID, fmt.Sprintf("v%d", i))
		}
		vs, err := b.s.RAMPolicyVersions(b.ctx, b.acct, p.ID)
		ok(t, err, "RAMPolicyVersions")
		ids, def := versionIDs(vs)
		equal(t, "versions kept", ids, []string{"v1", "v9", "v10", "v11", "v12"})
		equal(t, "default", def, "v1")
	})

	t.Run("attachments grant policies to users directly and through groups", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		alice := b.ramUser(t, b.acct, "alice")
		ops := b.ramGroup(t, b.acct, "ops")
		ok(t, b.s.RAMGroupAddUser(b.ctx, b.acct, ops.ID, alice.ID), "RAMGroupAddUser")
		pol := b.ramPolicy(t, b.acct, "deployers", `{"Statement":[]}`)

		direct := store.RAMAttachment{AccountID: b.acct, PrincipalType: store.PrincipalUser, PrincipalID: alice.ID,
			PolicyType: store.PolicySystem, PolicyName: "AliyunYundunCertFullAccess"}
		viaGroup := store.RAMAttachment{AccountID: b.acct, PrincipalType: store.PrincipalGroup, PrincipalID: ops.ID,
			PolicyType: store.PolicyCustom, PolicyName: "deployers"}
		gen := b.generation(t)
		ok(t, b.s.RAMAttach(b.ctx, direct), "RAMAttach(user)")
		if b.generation(t) <= gen {
			t.Errorf("RAMAttach did not bump the RAM generation")
		}
		ok(t, b.s.RAMAttach(b.ctx, viaGroup), "RAMAttach(group)")
		isErr(t, b.s.RAMAttach(b.ctx, direct), store.ErrConflict, "RAMAttach(again)")

		as, err := b.s.RAMAttachments(b.ctx, b.acct, store.PrincipalUser, alice.ID)
		ok(t, err, "RAMAttachments(user)")
		if len(as) != 1 || as[0].PolicyName != direct.PolicyName || as[0].Attached.IsZero() {
			t.Fatalf("RAMAttachments(user) = %+v", as)
		}
		n, err := b.s.RAMAttachmentCount(b.ctx, b.acct, store.PolicyCustom, "deployers")
		ok(t, err, "RAMAttachmentCount")
		equal(t, "attachments of deployers", n, int64(1))

		grants, err := b.s.RAMGrants(b.ctx, b.acct, alice.ID)
		ok(t, err, "RAMGrants")
		byName := map[string]store.RAMGrant{}
		for _, g := range grants {
			byName[g.PolicyName] = g
		}
		equal(t, "grants", byName, map[string]store.RAMGrant{
			"AliyunYundunCertFullAccess": {PolicyType: store.PolicySystem, PolicyName: "AliyunYundunCertFullAccess"},
			"deployers":                  {PolicyType: store.PolicyCustom, PolicyName: "deployers", Document: `{"Statement":[]}`},
		})
		otherGrants, err := b.s.RAMGrants(b.ctx, b.other, alice.ID)
		ok(t, err, "RAMGrants(other account)")
		equal(t, "grants in another account", len(otherGrants), 0)

		isErr(t, b.s.RAMPolicyDelete(b.ctx, b.acct, pol.ID), store.ErrInUse, "RAMPolicyDelete while attached")
		isErr(t, b.s.RAMGroupDelete(b.ctx, b.acct, ops.ID), store.ErrInUse, "RAMGroupDelete while attached")
		ok(t, b.s.RAMDetach(b.ctx, viaGroup), "RAMDetach")
		isErr(t, b.s.RAMDetach(b.ctx, viaGroup), store.ErrNotFound, "RAMDetach(again)")
		ok(t, b.s.RAMPolicyDelete(b.ctx, b.acct, pol.ID), "RAMPolicyDelete")
		_, err = b.s.RAMPolicyGet(b.ctx, b.acct, "deployers")
		isErr(t, err, store.ErrNotFound, "RAMPolicyGet after delete")
		vs, err := b.s.RAMPolicyVersions(b.ctx, b.acct, pol.ID)
		ok(t, err, "RAMPolicyVersions after delete")
		equal(t, "versions of a deleted policy", len(vs), 0)

		// Deleting a user drops its attachments.
		ok(t, b.s.RAMGroupRemoveUser(b.ctx, b.acct, ops.ID, alice.ID), "RAMGroupRemoveUser")
		ok(t, b.s.RAMUserDelete(b.ctx, b.acct, alice.ID), "RAMUserDelete")
		n, err = b.s.RAMAttachmentCount(b.ctx, b.acct, store.PolicySystem, "AliyunYundunCertFullAccess")
		ok(t, err, "RAMAttachmentCount after the user's delete")
		equal(t, "attachments left", n, int64(0))
	})
}

func testAudit(t *testing.T, setup func(t *testing.T) *bundle) {
	t.Run("concurrent appends of batches keep one unbroken chain", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		const goroutines, each = 16, 8
		var wg sync.WaitGroup
		errs := make(chan error, goroutines*each)
		var appended atomic.Int64
		for g := range goroutines {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range each {
					acct := b.acct
					if g%2 == 1 {
						acct = b.other
					}
					batch := make([]*store.AuditEvent, 1+(g*each+i)%13) // 1 to 13 events: 13 is inserted as 8 + 4 + 1
					for k := range batch {
						batch[k] = &store.AuditEvent{Time: b.now, AccountID: acct, Principal: fmt.Sprintf("user%d", g), AccessKeyID: "AK",
							SourceIP: "192.0.2.1", Action: "CreateDeploymentJob", Params: fmt.Sprintf(`{"n":%d,"k":%d}`, i, k), Code: "Success",
							RequestID: fmt.Sprintf("req-%d-%d-%d", g, i, k)}
					}
					if err := b.s.AuditAppend(b.ctx, batch, audit.Seal); err != nil {
						errs <- fmt.Errorf("AuditAppend(%d, %d): %w", g, i, err)
						continue
					}
					appended.Add(int64(len(batch)))
					for k, e := range batch { // chained within the batch, in ID order
						if k > 0 && (e.PrevHash != batch[k-1].Hash || e.ID <= batch[k-1].ID) {
							errs <- fmt.Errorf("AuditAppend(%d, %d): event %d has PrevHash %q, ID %d after %q, %d",
								g, i, k, e.PrevHash, e.ID, batch[k-1].Hash, batch[k-1].ID)
							break // one error per batch: errs has room for that many
						}
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		n, err := audit.Verify(b.ctx, b.s)
		ok(t, err, "audit.Verify")
		equal(t, "rows in the chain", n, appended.Load())
		id, hash, err := b.s.AuditHead(b.ctx)
		ok(t, err, "AuditHead")
		ok(t, b.s.AuditAppend(b.ctx, nil, audit.Seal), "AuditAppend(no events)")
		id2, hash2, err := b.s.AuditHead(b.ctx)
		ok(t, err, "AuditHead")
		equal(t, "head after appending no events", []any{id2, hash2}, []any{id, hash})
	})

	t.Run("events list per account, newest first, filtered", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		head, hash, err := b.s.AuditHead(b.ctx)
		ok(t, err, "AuditHead(empty)")
		equal(t, "empty head", []any{head, hash}, []any{int64(0), ""})
		var ids []int64
		for i, action := range []string{"UploadUserCertificate", "CreateDeploymentJob", "UploadUserCertificate"} {
			e := store.AuditEvent{Time: b.now.Add(time.Duration(i) * time.Minute), AccountID: b.acct, Principal: "root",
				Action: action, Params: `{}`, Code: "Success", RequestID: fmt.Sprintf("r%d", i)}
			ok(t, b.s.AuditAppend(b.ctx, []*store.AuditEvent{&e}, audit.Seal), "AuditAppend(%d)", i)
			if e.Hash == "" || (i > 0 && e.PrevHash == "") {
				t.Fatalf("AuditAppend(%d) left Hash %q, PrevHash %q", i, e.Hash, e.PrevHash)
			}
			ids = append(ids, e.ID)
		}
		theirs := store.AuditEvent{Time: b.now, AccountID: b.other, Principal: "root", Action: "UploadUserCertificate", Params: `{}`, Code: "Success"}
		ok(t, b.s.AuditAppend(b.ctx, []*store.AuditEvent{&theirs}, audit.Seal), "AuditAppend(other account)")

		list, total, err := b.s.AuditList(b.ctx, store.AuditListParams{AccountID: b.acct, Limit: 10})
		ok(t, err, "AuditList")
		equal(t, "total", total, int64(3))
		equal(t, "newest first", []int64{list[0].ID, list[1].ID, list[2].ID}, []int64{ids[2], ids[1], ids[0]})
		_, total, err = b.s.AuditList(b.ctx, store.AuditListParams{AccountID: b.acct, Action: "UploadUserCertificate", Limit: 10})
		ok(t, err, "AuditList(action)")
		equal(t, "uploads", total, int64(2))
		list, total, err = b.s.AuditList(b.ctx, store.AuditListParams{AccountID: b.acct, Start: b.now.Add(time.Minute), End: b.now.Add(time.Minute), Limit: 10})
		ok(t, err, "AuditList(time range)")
		if total != 1 || list[0].ID != ids[1] {
			t.Errorf("AuditList(one minute) = %d rows, total %d; want event %d", len(list), total, ids[1])
		}

		scan, err := b.s.AuditScan(b.ctx, ids[0], 2)
		ok(t, err, "AuditScan")
		equal(t, "scan after the first", []int64{scan[0].ID, scan[1].ID}, []int64{ids[1], ids[2]})
		head, hash, err = b.s.AuditHead(b.ctx)
		ok(t, err, "AuditHead")
		equal(t, "head", []any{head, hash}, []any{theirs.ID, theirs.Hash})
	})
}
