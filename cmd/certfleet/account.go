package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/certfleet/certfleet/internal/audit"
	"github.com/certfleet/certfleet/internal/auth"
	"github.com/certfleet/certfleet/internal/secret"
	"github.com/certfleet/certfleet/internal/server"
	"github.com/certfleet/certfleet/internal/store"
)

// hostFlags are the storage flags of commands run on the server host, as serve's.
type hostFlags struct{ cfg server.Config }

func (h *hostFlags) register(cmd *cobra.Command) {
	cmd.PersistentFlags().StringVar(&h.cfg.DataDir, "data-dir", "./certfleet-data", "the node's data directory (SQLite database, master key)")
	cmd.PersistentFlags().StringVar(&h.cfg.Database, "database", "", "empty for SQLite in --data-dir, or a postgres:// URL")
}

func (h *hostFlags) open(cmd *cobra.Command) (store.Store, *secret.Box, error) {
	if err := bindEnv(cmd.Flags()); err != nil {
		return nil, nil, err
	}
	h.cfg.MasterKey = os.Getenv("CERTFLEET_MASTER_KEY")
	return server.Open(cmd.Context(), h.cfg, slog.New(slog.NewTextHandler(os.Stderr, nil)))
}

func newAccountCmd() *cobra.Command {
	var h hostFlags
	cmd := &cobra.Command{Use: "account", Short: "Manage accounts (run on the server host)", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error { return cmd.Help() }}
	h.register(cmd)
	var settings settingsFlags
	create := &cobra.Command{
		Use:   "create NAME",
		Short: "Create an isolated account and print its root AccessKey once",
		Long: `Create an account: its certificates, resources, contacts, credentials, jobs
and RAM users are invisible to every other account. Opens the node's database
directly (--data-dir/--database, CERTFLEET_MASTER_KEY as for serve) and prints
the new account's root AccessKeyId and AccessKeySecret once, as JSON; the
secret is not shown again.`,
		Args: exactArgs("NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			st, box, err := h.open(cmd)
			if err != nil {
				return err
			}
			defer st.Close()
			set, err := settings.get(store.AccountSettings{})
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			id, err := st.AccountCreate(ctx, args[0])
			if errors.Is(err, store.ErrConflict) {
				return fmt.Errorf("account %q already exists", args[0])
			}
			if err != nil {
				return err
			}
			if err := st.AccountSetSettings(ctx, id, set); err != nil {
				return err
			}
			keyID, sec := auth.NewAccessKey()
			if err := server.PutRootKey(ctx, st, box, id, keyID, sec); err != nil {
				return err
			}
			out, _ := json.MarshalIndent(map[string]any{"AccountId": id, "AccountName": args[0], "AccessKeyId": keyID, "AccessKeySecret": sec}, "", "  ")
			fmt.Fprintln(cmd.OutOrStdout(), string(out))
			return nil
		},
	}
	settings.register(create, false)
	cmd.AddCommand(create, newAccountUpdateCmd(&h), newAccountShowCmd(&h), newAccountPasswordCmd(&h))
	return cmd
}

// settingsFlags are an account's confinement settings on the command line.
type settingsFlags struct {
	cmd        *cobra.Command
	egress     []string
	clear      bool
	localRoot  string
	noLocal    bool
	withChange bool
}

func (sf *settingsFlags) register(cmd *cobra.Command, update bool) {
	sf.cmd, sf.withChange = cmd, update
	f := cmd.Flags()
	f.StringArrayVar(&sf.egress, "egress-allow", nil, "a CIDR or host name this account's targets, probes and contact webhooks may reach beyond the server-wide policy (repeatable)")
	f.StringVar(&sf.localRoot, "local-root", "", "the subdirectory of the server's --local-root this account's local targets may write in")
	if update {
		f.BoolVar(&sf.clear, "clear-egress-allow", false, "remove every --egress-allow entry first")
		f.BoolVar(&sf.noLocal, "no-local-root", false, "take away the account's local-root subdirectory")
	}
}

// get applies the flags to cur and checks the result.
func (sf *settingsFlags) get(cur store.AccountSettings) (store.AccountSettings, error) {
	out := store.AccountSettings{EgressAllow: append([]string{}, cur.EgressAllow...), LocalRoot: cur.LocalRoot}
	if sf.clear {
		out.EgressAllow = []string{}
	}
	for _, e := range sf.egress {
		if err := checkEgressEntry(e); err != nil {
			return out, usageErrorf("--egress-allow %q: %v", e, err)
		}
		if !slices.Contains(out.EgressAllow, e) {
			out.EgressAllow = append(out.EgressAllow, e)
		}
	}
	if sf.cmd.Flags().Changed("local-root") {
		clean := filepath.Clean(sf.localRoot)
		if sf.localRoot == "" || !filepath.IsLocal(clean) {
			return out, usageErrorf("--local-root %q must be a relative subdirectory of the server's --local-root, like \"acme\"", sf.localRoot)
		}
		out.LocalRoot = clean
	}
	if sf.noLocal {
		out.LocalRoot = ""
	}
	return out, nil
}

var hostnameRE = regexp.MustCompile(`^(\*\.)?([a-z0-9]([a-z0-9-]*[a-z0-9])?\.)*[a-z0-9]([a-z0-9-]*[a-z0-9])?$`)

// checkEgressEntry accepts a CIDR, an IP address or a host name.
func checkEgressEntry(e string) error {
	if _, err := netip.ParsePrefix(e); err == nil {
		return nil
	}
	if _, err := netip.ParseAddr(e); err == nil {
		return nil
	}
	if len(e) <= 253 && hostnameRE.MatchString(strings.ToLower(e)) {
		return nil
	}
	return errors.New("not a CIDR (10.0.0.0/8), an IP address or a host name")
}

func newAccountUpdateCmd(h *hostFlags) *cobra.Command {
	var settings settingsFlags
	cmd := &cobra.Command{
		Use:   "update NAME [--egress-allow CIDR|HOST]… [--clear-egress-allow] [--local-root SUBDIR | --no-local-root]",
		Short: "Change what an account's targets may reach and where its local targets may write",
		Args:  exactArgs("NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			st, a, err := h.openAccount(cmd, args[0])
			if err != nil {
				return err
			}
			defer st.Close()
			set, err := settings.get(a.AccountSettings)
			if err != nil {
				return err
			}
			if err := st.AccountSetSettings(cmd.Context(), a.ID, set); err != nil {
				return err
			}
			a.AccountSettings = set
			return printAccount(cmd, a)
		},
	}
	settings.register(cmd, true)
	return cmd
}

func newAccountShowCmd(h *hostFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "show NAME",
		Short: "Show an account's settings, as JSON",
		Args:  exactArgs("NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			st, a, err := h.openAccount(cmd, args[0])
			if err != nil {
				return err
			}
			defer st.Close()
			return printAccount(cmd, a)
		},
	}
}

// openAccount opens the node's store and reads the account named name; the
// caller closes the store.
func (h *hostFlags) openAccount(cmd *cobra.Command, name string) (store.Store, store.Account, error) {
	st, _, err := h.open(cmd)
	if err != nil {
		return nil, store.Account{}, err
	}
	a, err := st.AccountGetByName(cmd.Context(), name)
	if err != nil {
		st.Close()
		if errors.Is(err, store.ErrNotFound) {
			return nil, a, fmt.Errorf("account %q does not exist", name)
		}
		return nil, a, err
	}
	return st, a, nil
}

func printAccount(cmd *cobra.Command, a store.Account) error {
	return printJSON(cmd.OutOrStdout(), map[string]any{"AccountId": a.ID, "AccountName": a.Name,
		"EgressAllow": a.EgressAllow, "LocalRoot": a.LocalRoot})
}

func newAuditCmd() *cobra.Command {
	var h hostFlags
	cmd := &cobra.Command{Use: "audit", Short: "Check the audit trail (run on the server host)", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error { return cmd.Help() }}
	h.register(cmd)
	verify := &cobra.Command{
		Use:   "verify",
		Short: "Verify the audit trail's hash chain",
		Long: `Walk the audit trail oldest first and check each row's hash and its link to
the row before. Exits 0 when the chain is intact, 1 naming the first bad row.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			st, _, err := h.open(cmd)
			if err != nil {
				return err
			}
			defer st.Close()
			n, err := audit.Verify(context.WithoutCancel(cmd.Context()), st)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "audit trail intact: %d rows verified\n", n)
			return nil
		},
	}
	cmd.AddCommand(verify)
	return cmd
}
