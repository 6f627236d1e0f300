package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
)

// App is a client application that receives webhooks.
type App struct {
	ID            string
	Name          string
	Email         string
	Website       string
	Description   string
	BaseURL       string
	ClientAuthKey []byte // plaintext in memory, sealed at rest
	TokenHash     string
	CreatedAt     time.Time
	UpdatedAt     time.Time
}

func appAD(id string) string { return "app:" + id + ":client_auth_key" }

const appColumns = `app_id, name, email, website, description, base_url, client_auth_key, token_hash, created_at, updated_at`

func (s *Store) scanApp(row scanner) (App, error) {
	var a App
	var sealed []byte
	var created, updated string
	if err := row.Scan(&a.ID, &a.Name, &a.Email, &a.Website, &a.Description, &a.BaseURL, &sealed,
		&a.TokenHash, &created, &updated); err != nil {
		return App{}, err
	}
	key, err := s.open(sealed, appAD(a.ID))
	if err != nil {
		return App{}, fmt.Errorf("app %s: client auth key: %w", a.ID, err)
	}
	a.ClientAuthKey = key
	a.CreatedAt, a.UpdatedAt = parseTime(created), parseTime(updated)
	return a, nil
}

// CreateApp inserts a new app; CreatedAt and UpdatedAt are set from the store clock.
func (s *Store) CreateApp(ctx context.Context, a *App) error {
	now := s.now().UTC().Truncate(time.Millisecond)
	a.CreatedAt, a.UpdatedAt = now, now
	_, err := s.db.ExecContext(ctx, `INSERT INTO apps (`+appColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		a.ID, a.Name, a.Email, a.Website, a.Description, a.BaseURL, s.seal(a.ClientAuthKey, appAD(a.ID)),
		a.TokenHash, formatTime(now), formatTime(now))
	if err != nil {
		if isUnique(err) {
			return fmt.Errorf("create app: %w", ErrConflict)
		}
		return fmt.Errorf("create app: %w", err)
	}
	return nil
}

// GetApp returns one app.
func (s *Store) GetApp(ctx context.Context, id string) (App, error) {
	a, err := s.scanApp(s.db.QueryRowContext(ctx, `SELECT `+appColumns+` FROM apps WHERE app_id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return App{}, fmt.Errorf("app %s: %w", id, ErrNotFound)
	}
	return a, err
}

// AppByTokenHash finds the app whose token hashes to hash: an indexed lookup.
func (s *Store) AppByTokenHash(ctx context.Context, hash string) (App, error) {
	a, err := s.scanApp(s.db.QueryRowContext(ctx, `SELECT `+appColumns+` FROM apps WHERE token_hash = ?`, hash))
	if errors.Is(err, sql.ErrNoRows) {
		return App{}, fmt.Errorf("app token: %w", ErrNotFound)
	}
	return a, err
}

// ListApps returns every app, oldest first.
func (s *Store) ListApps(ctx context.Context) ([]App, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+appColumns+` FROM apps ORDER BY created_at, app_id`)
	if err != nil {
		return nil, fmt.Errorf("list apps: %w", err)
	}
	defer rows.Close()
	apps := []App{}
	for rows.Next() {
		a, err := s.scanApp(rows)
		if err != nil {
			return nil, err
		}
		apps = append(apps, a)
	}
	return apps, rows.Err()
}

// UpdateApp writes the app's editable fields (name, email, website, description, base URL).
func (s *Store) UpdateApp(ctx context.Context, a *App) error {
	a.UpdatedAt = s.now().UTC().Truncate(time.Millisecond)
	res, err := s.db.ExecContext(ctx, `UPDATE apps SET name = ?, email = ?, website = ?, description = ?,
		base_url = ?, updated_at = ? WHERE app_id = ?`,
		a.Name, a.Email, a.Website, a.Description, a.BaseURL, formatTime(a.UpdatedAt), a.ID)
	return affectedOne(res, err, "app "+a.ID)
}

// SetAppTokenHash replaces the app's token hash (token rotation).
func (s *Store) SetAppTokenHash(ctx context.Context, id, hash string) error {
	res, err := s.db.ExecContext(ctx, `UPDATE apps SET token_hash = ?, updated_at = ? WHERE app_id = ?`,
		hash, formatTime(s.now()), id)
	return affectedOne(res, err, "app "+id)
}

// DeleteApp removes the app, its links and delivery state, and every repository no longer
// watched by anyone. It returns the ids of the repositories removed, whose caches the caller
// deletes.
func (s *Store) DeleteApp(ctx context.Context, id string) ([]string, error) {
	var orphans, repoIDs []string
	err := s.WithTx(ctx, func(tx *sql.Tx) error {
		var err error
		repoIDs, err = queryStrings(ctx, tx, `SELECT repository_id FROM links WHERE app_id = ?`, id)
		if err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, `DELETE FROM apps WHERE app_id = ?`, id)
		if err := affectedOne(res, err, "app "+id); err != nil {
			return err
		}
		for _, r := range repoIDs {
			gone, err := deleteRepoIfUnwatched(ctx, tx, r)
			if err != nil {
				return err
			}
			if gone {
				orphans = append(orphans, r)
			}
		}
		return nil
	})
	if err == nil {
		for _, r := range repoIDs {
			s.removeJournal(id, r)
		}
	}
	return orphans, err
}

func deleteRepoIfUnwatched(ctx context.Context, tx *sql.Tx, repoID string) (bool, error) {
	res, err := tx.ExecContext(ctx, `DELETE FROM repositories WHERE repository_id = ?
		AND NOT EXISTS (SELECT 1 FROM links WHERE repository_id = ?)`, repoID, repoID)
	if err != nil {
		return false, fmt.Errorf("delete repository %s: %w", repoID, err)
	}
	n, _ := res.RowsAffected()
	return n == 1, nil
}

func queryStrings(ctx context.Context, q interface {
	QueryContext(context.Context, string, ...any) (*sql.Rows, error)
}, query string, args ...any) ([]string, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var v string
		if err := rows.Scan(&v); err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

func affectedOne(res sql.Result, err error, what string) error {
	if err != nil {
		if isUnique(err) {
			return fmt.Errorf("%s: %w", what, ErrConflict)
		}
		return fmt.Errorf("%s: %w", what, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if n == 0 {
		return fmt.Errorf("%s: %w", what, ErrNotFound)
	}
	return nil
}

func isUnique(err error) bool {
	return err != nil && strings.Contains(err.Error(), "UNIQUE constraint failed")
}
