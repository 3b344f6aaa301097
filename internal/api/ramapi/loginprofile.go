package ramapi

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/certfleet/certfleet/internal/api/apierr"
	"github.com/certfleet/certfleet/internal/password"
	"github.com/certfleet/certfleet/internal/store"
)

// Login profiles: a RAM user's console password (CreateLoginProfile,
// UpdateLoginProfile, GetLoginProfile, DeleteLoginProfile). The password is
// kept only as an Argon2id hash (internal/password); changing or deleting
// it signs the user's console sessions out.

type loginProfileOut struct {
	UserName              string
	PasswordResetRequired bool
	MFABindRequired       bool
	CreateDate            string
	UpdateDate            string
}

func profileOut(name string, p store.LoginProfile) struct{ LoginProfile loginProfileOut } {
	return struct{ LoginProfile loginProfileOut }{loginProfileOut{UserName: name, PasswordResetRequired: p.PasswordResetRequired,
		MFABindRequired: p.MFABindRequired, CreateDate: ramDate(p.Created), UpdateDate: ramDate(p.Updated)}}
}

// newPassword reads a password parameter and checks the policy.
func newPassword(p Params, name string) (string, error) {
	// Leading and trailing spaces are trimmed, as of every parameter.
	pw, err := p.Required(name)
	if err != nil {
		return "", err
	}
	if err := password.Check(pw); err != nil {
		return "", ramError("InvalidParameter.Password", http.StatusBadRequest,
			"The Password does not meet the password policy: "+strings.TrimPrefix(err.Error(), password.ErrPolicy.Error()+": ")+".")
	}
	return pw, nil
}

func errNoProfile(name string) *apierr.Error {
	return ramError("EntityNotExist.User.LoginProfile", http.StatusNotFound, "The user "+name+" has no login profile; create one with CreateLoginProfile.")
}

func (s *Server) createLoginProfile(ctx context.Context, c *Call) (any, error) {
	u, err := s.user(ctx, c, "UserName")
	if err != nil {
		return nil, err
	}
	pw, err := newPassword(c.Params, "Password")
	if err != nil {
		return nil, err
	}
	now := time.Now()
	p := store.LoginProfile{AccountID: c.AccountID, UserID: u.ID, PasswordHash: password.Hash(pw), Created: now, Updated: now}
	if p.PasswordResetRequired, err = c.Params.Bool("PasswordResetRequired"); err != nil {
		return nil, err
	}
	if p.MFABindRequired, err = c.Params.Bool("MFABindRequired"); err != nil {
		return nil, err
	}
	if err := s.store.LoginProfileCreate(ctx, p); errors.Is(err, store.ErrConflict) {
		return nil, errEntityExists("User.LoginProfile", u.Name)
	} else if err != nil {
		return nil, err
	}
	return profileOut(u.Name, p), nil
}

func (s *Server) updateLoginProfile(ctx context.Context, c *Call) (any, error) {
	u, err := s.user(ctx, c, "UserName")
	if err != nil {
		return nil, err
	}
	p, err := s.store.LoginProfileGet(ctx, c.AccountID, u.ID)
	if errors.Is(err, store.ErrNotFound) {
		return nil, errNoProfile(u.Name)
	} else if err != nil {
		return nil, err
	}
	changed := false
	if c.Params.Has("Password") {
		pw, err := newPassword(c.Params, "Password")
		if err != nil {
			return nil, err
		}
		p.PasswordHash, changed = password.Hash(pw), true
	}
	for _, f := range []struct {
		param string
		dst   *bool
	}{{"PasswordResetRequired", &p.PasswordResetRequired}, {"MFABindRequired", &p.MFABindRequired}} {
		if c.Params.Has(f.param) {
			if *f.dst, err = c.Params.Bool(f.param); err != nil {
				return nil, err
			}
		}
	}
	p.Updated = time.Now()
	if err := s.store.LoginProfileUpdate(ctx, p); errors.Is(err, store.ErrNotFound) {
		return nil, errNoProfile(u.Name)
	} else if err != nil {
		return nil, err
	}
	if changed { // a new password signs every browser of the old one out
		if _, err := s.store.ConsoleSessionDeleteUser(ctx, c.AccountID, u.ID); err != nil {
			return nil, err
		}
	}
	return profileOut(u.Name, p), nil
}

func (s *Server) getLoginProfile(ctx context.Context, c *Call) (any, error) {
	u, err := s.user(ctx, c, "UserName")
	if err != nil {
		return nil, err
	}
	p, err := s.store.LoginProfileGet(ctx, c.AccountID, u.ID)
	if errors.Is(err, store.ErrNotFound) {
		return nil, errNoProfile(u.Name)
	} else if err != nil {
		return nil, err
	}
	return profileOut(u.Name, p), nil
}

func (s *Server) deleteLoginProfile(ctx context.Context, c *Call) (any, error) {
	u, err := s.user(ctx, c, "UserName")
	if err != nil {
		return nil, err
	}
	if err := s.store.LoginProfileDelete(ctx, c.AccountID, u.ID); errors.Is(err, store.ErrNotFound) {
		return nil, errNoProfile(u.Name)
	} else if err != nil {
		return nil, err
	}
	return struct{}{}, nil
}
