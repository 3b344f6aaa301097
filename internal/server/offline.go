package server

import (
	"context"
	"fmt"
	"log/slog"
	"os"

	"github.com/certfleet/certfleet/internal/secret"
	"github.com/certfleet/certfleet/internal/store"
	"github.com/certfleet/certfleet/internal/store/sqlstore"
)

// Open opens (and migrates) the store and loads the master key of cfg, as
// serve does, for the commands run on the server host beside it
// (account create, audit verify). The caller closes the store.
func Open(ctx context.Context, cfg Config, log *slog.Logger) (*sqlstore.DB, *secret.Box, error) {
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, nil, fmt.Errorf("data dir: %w", err)
	}
	st, _, _, err := openStore(ctx, cfg)
	if err != nil {
		return nil, nil, err
	}
	box, err := loadBox(cfg, log)
	if err != nil {
		st.Close()
		return nil, nil, err
	}
	return st, box, nil
}

// PutRootKey stores an active root access key of account (a new one, or the
// same ID again: its secret is replaced), the secret sealed with the access
// key purpose. The server's own root key and `certfleet account create` use
// it; RAM users' keys go through the API (CreateAccessKey).
func PutRootKey(ctx context.Context, st store.Store, box *secret.Box, account int64, id, sec string) error {
	return st.AccessKeyUpsert(ctx, store.AccessKey{ID: id, AccountID: account, Status: store.AccessKeyActive,
		SecretEnc: box.Seal([]byte(sec), secret.PurposeAccessKey)})
}
