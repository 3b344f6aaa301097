package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"

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
			ctx := cmd.Context()
			id, err := st.AccountCreate(ctx, args[0])
			if errors.Is(err, store.ErrConflict) {
				return fmt.Errorf("account %q already exists", args[0])
			}
			if err != nil {
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
	cmd.AddCommand(create)
	return cmd
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
