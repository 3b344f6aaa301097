package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/certfleet/certfleet/internal/password"
	"github.com/certfleet/certfleet/internal/store"
)

// newAccountPasswordCmd sets the console password of an account's root.
func newAccountPasswordCmd(h *hostFlags) *cobra.Command {
	var remove bool
	cmd := &cobra.Command{
		Use:   "password NAME [--remove]",
		Short: "Set the web console password of an account's root (read from standard input)",
		Long: `Set the password the account's root signs in to the web console with
(/console/ on the server's address; sign-in name: the account's name, e.g. root).
The password is read from the terminal without echo (twice), or as the first
line of standard input; it needs 8 to 128 characters mixing letters with digits
or symbols, and is stored as an Argon2id hash. Setting it signs every console
session of the root out and removes its authenticator (TOTP) binding.
--remove deletes it: the root can then not sign in to the console.
RAM users get their console passwords through the RAM API (CreateLoginProfile).`,
		Args: exactArgs("NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if args[0] == store.RootAccountName { // before the first serve too
				st, _, err := h.open(cmd)
				if err != nil {
					return err
				}
				_, err = st.AccountEnsure(cmd.Context(), store.RootAccountName)
				st.Close()
				if err != nil {
					return err
				}
			}
			st, a, err := h.openAccount(cmd, args[0])
			if err != nil {
				return err
			}
			defer st.Close()
			ctx := cmd.Context()
			if remove {
				if err := st.LoginProfileDelete(ctx, a.ID, 0); err != nil && !errors.Is(err, store.ErrNotFound) {
					return err
				}
				fmt.Fprintf(cmd.ErrOrStderr(), "The console password of %s's root is removed.\n", a.Name)
				return nil
			}
			pw, err := readNewPassword(cmd)
			if err != nil {
				return err
			}
			if err := password.Check(pw); err != nil {
				return usageErrorf("%v", err)
			}
			now := time.Now()
			p := store.LoginProfile{AccountID: a.ID, PasswordHash: password.Hash(pw), Created: now, Updated: now}
			err = st.LoginProfileCreate(ctx, p)
			if errors.Is(err, store.ErrConflict) {
				old, gerr := st.LoginProfileGet(ctx, a.ID, 0)
				if gerr != nil {
					return gerr
				}
				p.Created = old.Created
				if err = st.LoginProfileUpdate(ctx, p); err == nil {
					_, err = st.ConsoleSessionDeleteUser(ctx, a.ID, 0)
				}
			}
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "The console password of %s's root is set; sign in at /console/ as %s.\n", a.Name, a.Name)
			return nil
		},
	}
	cmd.Flags().BoolVar(&remove, "remove", false, "delete the root's console password")
	return cmd
}

// readNewPassword reads a new password: twice without echo on a terminal,
// else the first line of standard input.
func readNewPassword(cmd *cobra.Command) (string, error) {
	if f, ok := cmd.InOrStdin().(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		var pws [2]string
		for i, prompt := range []string{"New console password: ", "Again: "} {
			fmt.Fprint(cmd.ErrOrStderr(), prompt)
			b, err := term.ReadPassword(int(f.Fd()))
			fmt.Fprintln(cmd.ErrOrStderr())
			if err != nil {
				return "", fmt.Errorf("password: %w", err)
			}
			pws[i] = string(b)
		}
		if pws[0] != pws[1] {
			return "", usageErrorf("the two passwords differ")
		}
		return pws[0], nil
	}
	line, err := bufio.NewReader(io.LimitReader(cmd.InOrStdin(), 64<<10)).ReadString('\n')
	if err != nil && err != io.EOF {
		return "", fmt.Errorf("password: %w", err)
	}
	pw := strings.TrimRight(line, "\r\n")
	if pw == "" {
		return "", usageErrorf("no password on standard input")
	}
	return pw, nil
}
