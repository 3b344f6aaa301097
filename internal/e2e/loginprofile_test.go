package e2e

import (
	"testing"

	ram "github.com/alibabacloud-go/ram-20150501/v2/client"
	"github.com/alibabacloud-go/tea/tea"
)

// TestLoginProfiles: the official RAM SDK manages RAM users' console
// passwords (issue 15): create, read, update, delete, with RAM's error codes.
func TestLoginProfiles(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, engine string) {
		s := startServer(t, engine, serverOpts{})
		rc := s.ramClient(s.keyID, s.secret)
		if _, err := rc.CreateUser(&ram.CreateUserRequest{UserName: tea.String("alice")}); err != nil {
			t.Fatal(err)
		}
		if _, err := rc.GetLoginProfile(&ram.GetLoginProfileRequest{UserName: tea.String("alice")}); err == nil {
			t.Fatal("GetLoginProfile before CreateLoginProfile succeeded")
		} else if code, status := sdkErr(t, err); code != "EntityNotExist.User.LoginProfile" || status != 404 {
			t.Fatalf("GetLoginProfile before create: %s %d", code, status)
		}
		_, err := rc.CreateLoginProfile(&ram.CreateLoginProfileRequest{UserName: tea.String("alice"), Password: tea.String("short")})
		if code, status := sdkErr(t, err); code != "InvalidParameter.Password" || status != 400 {
			t.Fatalf("weak password: %s %d", code, status)
		}
		cr, err := rc.CreateLoginProfile(&ram.CreateLoginProfileRequest{UserName: tea.String("alice"), Password: tea.String("alice-pass-1"),
			PasswordResetRequired: tea.Bool(true)})
		if err != nil {
			t.Fatal(err)
		}
		if lp := cr.Body.LoginProfile; tea.StringValue(lp.UserName) != "alice" || !tea.BoolValue(lp.PasswordResetRequired) || tea.BoolValue(lp.MFABindRequired) || tea.StringValue(lp.CreateDate) == "" {
			t.Fatalf("CreateLoginProfile answered %+v", lp)
		}
		_, err = rc.CreateLoginProfile(&ram.CreateLoginProfileRequest{UserName: tea.String("alice"), Password: tea.String("alice-pass-1")})
		if code, status := sdkErr(t, err); code != "EntityAlreadyExists.User.LoginProfile" || status != 409 {
			t.Fatalf("second CreateLoginProfile: %s %d", code, status)
		}
		if _, err := rc.UpdateLoginProfile(&ram.UpdateLoginProfileRequest{UserName: tea.String("alice"), PasswordResetRequired: tea.Bool(false),
			MFABindRequired: tea.Bool(true)}); err != nil {
			t.Fatal(err)
		}
		gr, err := rc.GetLoginProfile(&ram.GetLoginProfileRequest{UserName: tea.String("alice")})
		if err != nil {
			t.Fatal(err)
		}
		if lp := gr.Body.LoginProfile; tea.BoolValue(lp.PasswordResetRequired) || !tea.BoolValue(lp.MFABindRequired) {
			t.Fatalf("GetLoginProfile after update: %+v", lp)
		}
		if _, err := rc.DeleteLoginProfile(&ram.DeleteLoginProfileRequest{UserName: tea.String("alice")}); err != nil {
			t.Fatal(err)
		}
		_, err = rc.DeleteLoginProfile(&ram.DeleteLoginProfileRequest{UserName: tea.String("alice")})
		if code, _ := sdkErr(t, err); code != "EntityNotExist.User.LoginProfile" {
			t.Fatalf("second DeleteLoginProfile: %s", code)
		}
		_, err = rc.CreateLoginProfile(&ram.CreateLoginProfileRequest{UserName: tea.String("nobody"), Password: tea.String("alice-pass-1")})
		if code, _ := sdkErr(t, err); code != "EntityNotExist.User" {
			t.Fatalf("profile of an unknown user: %s", code)
		}
	})
}
