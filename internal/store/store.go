// Package store keeps docora's state in one SQLite file: apps, repositories, links, delivery
// state and the blob cache. Every CLI call is a client of the same file, so the schema is
// migrated on every open and several processes may use it at once.
package store

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/docora/docora/internal/secrets"
	_ "modernc.org/sqlite" // the "sqlite" driver
)

//go:embed migrations/*.sql
var migrationFS embed.FS

var (
	// ErrNotFound is returned when the requested row does not exist.
	ErrNotFound = errors.New("not found")
	// ErrConflict is returned when a unique value is already taken.
	ErrConflict = errors.New("already exists")
)

// Store is the SQLite store. Secrets are sealed with the Box given to UseKey before any
// method that reads or writes them is called.
type Store struct {
	db  *sql.DB
	box *secrets.Box
	now func() time.Time
	// journalDir holds the delivery journals of runs (journal.go).
	journalDir string
}

// Open opens (creating when needed) the database at path and applies pending migrations.
func Open(ctx context.Context, path string) (*Store, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("create store directory: %w", err)
	}
	dsn := "file:" + (&url.URL{Path: path}).EscapedPath() +
		"?_pragma=journal_mode(WAL)&_pragma=busy_timeout(10000)&_pragma=foreign_keys(1)" +
		"&_pragma=synchronous(NORMAL)&_txlock=immediate&_time_format=sqlite"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	db.SetMaxOpenConns(4)
	s := &Store{db: db, now: time.Now, journalDir: journalDir(path)}
	if err := s.migrate(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	_ = os.Chmod(path, 0o600)
	return s, nil
}

// Close closes the database.
func (s *Store) Close() error { return s.db.Close() }

// DB exposes the handle for packages that keep their own queries next to their types.
func (s *Store) DB() *sql.DB { return s.db }

// Ping checks that the database answers (used by /health).
func (s *Store) Ping(ctx context.Context) error {
	var one int
	return s.db.QueryRowContext(ctx, "SELECT 1").Scan(&one)
}

// SetClock replaces the clock (tests).
func (s *Store) SetClock(now func() time.Time) { s.now = now }

// WithTx runs fn in an immediate transaction, committing when fn returns nil.
func (s *Store) WithTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin transaction: %w", err)
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

func (s *Store) migrate(ctx context.Context) error {
	names, err := fs.Glob(migrationFS, "migrations/*.sql")
	if err != nil {
		return err
	}
	sort.Strings(names)
	return s.WithTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
			version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)`); err != nil {
			return fmt.Errorf("create schema_migrations: %w", err)
		}
		var current int
		if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&current); err != nil {
			return fmt.Errorf("read schema version: %w", err)
		}
		for _, name := range names {
			base := filepath.Base(name)
			v, err := strconv.Atoi(strings.SplitN(base, "_", 2)[0])
			if err != nil {
				return fmt.Errorf("migration %s: name must start with a number", base)
			}
			if v <= current {
				continue
			}
			body, err := migrationFS.ReadFile(name)
			if err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, string(body)); err != nil {
				return fmt.Errorf("migration %s: %w", base, err)
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)`,
				v, formatTime(time.Now())); err != nil {
				return fmt.Errorf("record migration %s: %w", base, err)
			}
		}
		return nil
	})
}

// SchemaVersion returns the highest applied migration.
func (s *Store) SchemaVersion(ctx context.Context) (int, error) {
	var v int
	err := s.db.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&v)
	return v, err
}

const keyCheckPlain = "docora key check v1"

// HasKey reports whether the store already has secrets sealed with some key.
func (s *Store) HasKey(ctx context.Context) (bool, error) {
	var n int
	err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM meta WHERE key = 'key_check'`).Scan(&n)
	if err != nil {
		return false, fmt.Errorf("read key check: %w", err)
	}
	return n > 0, nil
}

// UseKey makes the store seal secrets with box. The first key used is recorded; a different
// key later fails with secrets.ErrWrongKey before anything is read or written.
func (s *Store) UseKey(ctx context.Context, box *secrets.Box) error {
	err := s.WithTx(ctx, func(tx *sql.Tx) error {
		var sealed []byte
		err := tx.QueryRowContext(ctx, `SELECT value FROM meta WHERE key = 'key_check'`).Scan(&sealed)
		if errors.Is(err, sql.ErrNoRows) {
			_, err = tx.ExecContext(ctx, `INSERT INTO meta (key, value) VALUES ('key_check', ?)`,
				box.Seal([]byte(keyCheckPlain), "meta:key_check"))
			return err
		}
		if err != nil {
			return err
		}
		pt, err := box.Open(sealed, "meta:key_check")
		if err != nil || string(pt) != keyCheckPlain {
			return secrets.ErrWrongKey
		}
		return nil
	})
	if err != nil {
		if errors.Is(err, secrets.ErrWrongKey) {
			return err
		}
		return fmt.Errorf("check encryption key: %w", err)
	}
	s.box = box
	return nil
}

func (s *Store) seal(plain []byte, ad string) []byte {
	if s.box == nil {
		panic("store: secret sealed before UseKey")
	}
	return s.box.Seal(plain, ad)
}

func (s *Store) open(sealed []byte, ad string) ([]byte, error) {
	if s.box == nil {
		return nil, errors.New("store: encryption key not loaded")
	}
	return s.box.Open(sealed, ad)
}

// TimeLayout is how times are stored and shown: ISO-8601 UTC with milliseconds.
const TimeLayout = "2006-01-02T15:04:05.000Z"

func formatTime(t time.Time) string { return t.UTC().Format(TimeLayout) }

func parseTime(s string) time.Time {
	t, err := time.Parse(TimeLayout, s)
	if err != nil {
		return time.Time{}
	}
	return t
}

func parseNullTime(ns sql.NullString) *time.Time {
	if !ns.Valid || ns.String == "" {
		return nil
	}
	t := parseTime(ns.String)
	return &t
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

type scanner interface{ Scan(dest ...any) error }
