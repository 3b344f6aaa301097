package console_test

import (
	"database/sql"

	"github.com/certfleet/certfleet/internal/store"
	"github.com/certfleet/certfleet/internal/store/sqlstore"
)

type sqlDB = sql.DB

func sqlOf(st store.Store) *sql.DB { return st.(*sqlstore.DB).SQL() }
