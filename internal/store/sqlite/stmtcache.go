package sqlite

import (
	"container/list"
	"context"
	"database/sql/driver"
	"strings"
)

// The driver parses a statement's SQL text on every call (sqlite3_prepare
// each time): in the engine's profile that was a fifth of the server's CPU,
// on statements whose text never changes. So each connection keeps its
// prepared statements by text and runs them again with new arguments, as a
// PostgreSQL driver keeps its own. Nothing about the results changes: a
// cached statement is reset after each use, SQLite re-prepares one whose
// schema changed, and a statement that failed is closed instead of kept.

// stmtCacheSize bounds the statements one connection keeps (its least
// recently used is closed to make room). The store's statement texts are a
// few hundred at most; texts with a variable IN list come in a few sizes.
const stmtCacheSize = 256

// stmtConnector opens connections through the driver and wraps them.
type stmtConnector struct {
	drv driver.Driver
	dsn string
}

func (c stmtConnector) Connect(context.Context) (driver.Conn, error) {
	cn, err := c.drv.Open(c.dsn)
	if err != nil {
		return nil, err
	}
	return newStmtConn(cn), nil
}

func (c stmtConnector) Driver() driver.Driver { return c.drv }

// conn is what database/sql uses of the driver's connection.
type conn interface {
	driver.Conn
	driver.ConnBeginTx
	driver.ExecerContext
	driver.QueryerContext
	driver.ConnPrepareContext
	driver.Pinger
	driver.SessionResetter
	driver.Validator
}

type stmt interface {
	driver.Stmt
	driver.StmtExecContext
	driver.StmtQueryContext
}

// stmtConn is a connection with a statement cache. database/sql never uses
// one connection from two goroutines at once, so it needs no lock; a cached
// statement whose rows are still open is busy, and the same text asked for
// meanwhile (a query inside a loop over another's rows) runs uncached.
type stmtConn struct {
	conn
	byText map[string]*list.Element // of *cachedStmt
	lru    list.List                // front: most recently used
}

type cachedStmt struct {
	text string
	s    stmt
	busy bool
}

func newStmtConn(cn driver.Conn) driver.Conn {
	c, ok := cn.(conn)
	if !ok {
		return cn // not the driver this was written for: no cache
	}
	return &stmtConn{conn: c, byText: map[string]*list.Element{}}
}

// take returns the cached statement for text, preparing and caching it if
// needed, or nil when text should run uncached.
func (c *stmtConn) take(ctx context.Context, text string) (*cachedStmt, error) {
	if el, ok := c.byText[text]; ok {
		cs := el.Value.(*cachedStmt)
		if cs.busy {
			return nil, nil
		}
		c.lru.MoveToFront(el)
		return cs, nil
	}
	if strings.Contains(strings.TrimRight(strings.TrimSpace(text), ";"), ";") {
		return nil, nil // a script (never cached): the driver runs it statement by statement
	}
	ds, err := c.conn.PrepareContext(ctx, text)
	if err != nil {
		return nil, err
	}
	s, ok := ds.(stmt)
	if !ok {
		ds.Close()
		return nil, nil
	}
	if c.lru.Len() >= stmtCacheSize {
		if old := c.lru.Back(); !old.Value.(*cachedStmt).busy {
			c.drop(old)
		}
	}
	cs := &cachedStmt{text: text, s: s}
	c.byText[text] = c.lru.PushFront(cs)
	return cs, nil
}

func (c *stmtConn) drop(el *list.Element) {
	cs := el.Value.(*cachedStmt)
	c.lru.Remove(el)
	delete(c.byText, cs.text)
	cs.s.Close()
}

// failed closes a cached statement that returned an error: its state after
// an interrupted or failed step is not worth trusting.
func (c *stmtConn) failed(cs *cachedStmt) {
	if el, ok := c.byText[cs.text]; ok && el.Value == cs {
		c.drop(el)
	}
}

func (c *stmtConn) ExecContext(ctx context.Context, text string, args []driver.NamedValue) (driver.Result, error) {
	cs, err := c.take(ctx, text)
	if err != nil {
		return nil, err
	}
	if cs == nil {
		return c.conn.ExecContext(ctx, text, args)
	}
	r, err := cs.s.ExecContext(ctx, args)
	if err != nil {
		c.failed(cs)
	}
	return r, err
}

func (c *stmtConn) QueryContext(ctx context.Context, text string, args []driver.NamedValue) (driver.Rows, error) {
	cs, err := c.take(ctx, text)
	if err != nil {
		return nil, err
	}
	if cs == nil {
		return c.conn.QueryContext(ctx, text, args)
	}
	rows, err := cs.s.QueryContext(ctx, args)
	if err != nil {
		c.failed(cs)
		return nil, err
	}
	cs.busy = true
	return &cachedRows{Rows: rows, c: c, cs: cs}, nil
}

func (c *stmtConn) Close() error {
	for c.lru.Len() > 0 {
		c.drop(c.lru.Back())
	}
	return c.conn.Close()
}

// cachedRows gives its statement back when closed.
type cachedRows struct {
	driver.Rows
	c      *stmtConn
	cs     *cachedStmt
	closed bool
}

func (r *cachedRows) Close() error {
	if r.closed {
		return nil
	}
	r.closed = true
	err := r.Rows.Close() // resets the statement for its next use
	r.cs.busy = false
	if err != nil {
		r.c.failed(r.cs)
	}
	return err
}
