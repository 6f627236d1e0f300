package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"
)

// Link statuses (SPEC §5).
const (
	StatusPendingSnapshot = "pending_snapshot"
	StatusScanning        = "scanning"
	StatusSynced          = "synced"
	StatusFailed          = "failed"
)

// Repository is a watched git source: canonical URL plus branch.
type Repository struct {
	ID                  string
	URL                 string
	URLKey              string
	CloneURL            string
	Owner               string
	Name                string
	Branch              string
	GitHub              bool
	Private             bool
	ConsecutiveFailures int
	CircuitOpenUntil    *time.Time
	LastGitError        string
	CreatedAt           time.Time
	UpdatedAt           time.Time
}

// Link is one app watching one repository.
type Link struct {
	AppID           string
	RepositoryID    string
	Status          string
	CommitSHA       string
	RetryCount      int
	LastError       string
	GitToken        string // plaintext in memory, sealed at rest; "" = anonymous
	Include         []string
	Exclude         []string
	FilesDelivered  int
	SkippedPaths    int
	LastScannedAt   *time.Time
	NextAttemptAt   *time.Time
	SyncRequestedAt *time.Time
	LeaseOwner      string
	LeaseExpiresAt  *time.Time
	Generation      int64
	CreatedAt       time.Time
	UpdatedAt       time.Time
}

// LinkView is a link together with its repository.
type LinkView struct {
	Link
	Repo Repository
}

func linkAD(appID, repoID string) string { return "link:" + appID + ":" + repoID + ":git_token" }

const repoColumns = `r.repository_id, r.url, r.url_key, r.clone_url, r.owner, r.name, r.branch, r.is_github,
	r.is_private, r.consecutive_failures, r.circuit_open_until, r.last_git_error, r.created_at, r.updated_at`

const linkColumns = `l.app_id, l.repository_id, l.status, l.commit_sha, l.retry_count, l.last_error, l.git_token,
	l.include_patterns, l.exclude_patterns, l.files_delivered, l.skipped_paths, l.last_scanned_at,
	l.next_attempt_at, l.sync_requested_at, l.lease_owner, l.lease_expires_at, l.generation,
	l.created_at, l.updated_at`

func scanRepoInto(dst []any, r *Repository) []any {
	return append(dst, &r.ID, &r.URL, &r.URLKey, &r.CloneURL, &r.Owner, &r.Name, &r.Branch, &r.GitHub,
		&r.Private, &r.ConsecutiveFailures)
}

type repoScan struct {
	circuit          sql.NullString
	created, updated string
}

func (rs *repoScan) targets(r *Repository) []any {
	return append(scanRepoInto(nil, r), &rs.circuit, &r.LastGitError, &rs.created, &rs.updated)
}

func (rs *repoScan) finish(r *Repository) {
	r.CircuitOpenUntil = parseNullTime(rs.circuit)
	r.CreatedAt, r.UpdatedAt = parseTime(rs.created), parseTime(rs.updated)
}

type linkScan struct {
	token                                       []byte
	include, exclude                            string
	scanned, next, requested, leaseOwner, until sql.NullString
	created, updated                            string
}

func (ls *linkScan) targets(l *Link) []any {
	return []any{&l.AppID, &l.RepositoryID, &l.Status, &l.CommitSHA, &l.RetryCount, &l.LastError, &ls.token,
		&ls.include, &ls.exclude, &l.FilesDelivered, &l.SkippedPaths, &ls.scanned, &ls.next, &ls.requested,
		&ls.leaseOwner, &ls.until, &l.Generation, &ls.created, &ls.updated}
}

func (s *Store) finishLink(ls *linkScan, l *Link) error {
	if len(ls.token) > 0 {
		tok, err := s.open(ls.token, linkAD(l.AppID, l.RepositoryID))
		if err != nil {
			return fmt.Errorf("link %s/%s: git token: %w", l.AppID, l.RepositoryID, err)
		}
		l.GitToken = string(tok)
	}
	l.Include, l.Exclude = decodePatterns(ls.include), decodePatterns(ls.exclude)
	l.LastScannedAt, l.NextAttemptAt, l.SyncRequestedAt = parseNullTime(ls.scanned), parseNullTime(ls.next), parseNullTime(ls.requested)
	l.LeaseOwner, l.LeaseExpiresAt = ls.leaseOwner.String, parseNullTime(ls.until)
	l.CreatedAt, l.UpdatedAt = parseTime(ls.created), parseTime(ls.updated)
	return nil
}

func decodePatterns(s string) []string {
	var p []string
	if err := json.Unmarshal([]byte(s), &p); err != nil || p == nil {
		return []string{}
	}
	return p
}

func encodePatterns(p []string) string {
	if p == nil {
		p = []string{}
	}
	b, _ := json.Marshal(p)
	return string(b)
}

// GetRepository returns one repository.
func (s *Store) GetRepository(ctx context.Context, id string) (Repository, error) {
	var r Repository
	var rs repoScan
	err := s.db.QueryRowContext(ctx, `SELECT `+repoColumns+` FROM repositories r WHERE r.repository_id = ?`, id).
		Scan(rs.targets(&r)...)
	if errors.Is(err, sql.ErrNoRows) {
		return Repository{}, fmt.Errorf("repository %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return Repository{}, fmt.Errorf("repository %s: %w", id, err)
	}
	rs.finish(&r)
	return r, nil
}

// ListRepositories returns every repository, oldest first.
func (s *Store) ListRepositories(ctx context.Context) ([]Repository, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+repoColumns+` FROM repositories r ORDER BY r.created_at, r.repository_id`)
	if err != nil {
		return nil, fmt.Errorf("list repositories: %w", err)
	}
	defer rows.Close()
	out := []Repository{}
	for rows.Next() {
		var r Repository
		var rs repoScan
		if err := rows.Scan(rs.targets(&r)...); err != nil {
			return nil, err
		}
		rs.finish(&r)
		out = append(out, r)
	}
	return out, rows.Err()
}

// LinkFilter narrows ListLinks; empty fields match everything.
type LinkFilter struct {
	AppID        string
	RepositoryID string
}

// ListLinks returns links with their repositories, oldest first.
func (s *Store) ListLinks(ctx context.Context, f LinkFilter) ([]LinkView, error) {
	q := `SELECT ` + linkColumns + `, ` + repoColumns + ` FROM links l JOIN repositories r USING (repository_id)`
	var where []string
	var args []any
	if f.AppID != "" {
		where, args = append(where, "l.app_id = ?"), append(args, f.AppID)
	}
	if f.RepositoryID != "" {
		where, args = append(where, "l.repository_id = ?"), append(args, f.RepositoryID)
	}
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	q += " ORDER BY l.created_at, l.app_id, l.repository_id"
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("list links: %w", err)
	}
	defer rows.Close()
	out := []LinkView{}
	for rows.Next() {
		v, err := s.scanLinkView(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

func (s *Store) scanLinkView(row scanner) (LinkView, error) {
	var v LinkView
	var ls linkScan
	var rs repoScan
	if err := row.Scan(append(ls.targets(&v.Link), rs.targets(&v.Repo)...)...); err != nil {
		return LinkView{}, err
	}
	rs.finish(&v.Repo)
	return v, s.finishLink(&ls, &v.Link)
}

// GetLink returns the link of app and repository.
func (s *Store) GetLink(ctx context.Context, appID, repoID string) (LinkView, error) {
	v, err := s.scanLinkView(s.db.QueryRowContext(ctx, `SELECT `+linkColumns+`, `+repoColumns+`
		FROM links l JOIN repositories r USING (repository_id) WHERE l.app_id = ? AND l.repository_id = ?`, appID, repoID))
	if errors.Is(err, sql.ErrNoRows) {
		return LinkView{}, fmt.Errorf("repository %s is not watched by app %s: %w", repoID, appID, ErrNotFound)
	}
	return v, err
}

// Registration is what RegisterLink records.
type Registration struct {
	Repo     Repository // ID used only when the repository is new
	AppID    string
	GitToken string
	Include  []string
	Exclude  []string
}

// RegisterLink records that an app watches a repository. The repository is shared: it is found
// by (URLKey, Branch) or created. When the app already watches it, the link is reset (status
// pending_snapshot, no commit, no error, delivery state cleared, generation bumped) so the next
// sync sends the whole repository again. It reports whether the link existed.
func (s *Store) RegisterLink(ctx context.Context, reg Registration) (LinkView, bool, error) {
	var existed bool
	now := formatTime(s.now())
	err := s.WithTx(ctx, func(tx *sql.Tx) error {
		r := reg.Repo
		var id string
		err := tx.QueryRowContext(ctx, `SELECT repository_id FROM repositories WHERE url_key = ? AND branch = ?`,
			r.URLKey, r.Branch).Scan(&id)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			id = r.ID
			_, err = tx.ExecContext(ctx, `INSERT INTO repositories (repository_id, url, url_key, clone_url, owner, name,
				branch, is_github, is_private, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
				id, r.URL, r.URLKey, r.CloneURL, r.Owner, r.Name, r.Branch, boolInt(r.GitHub), boolInt(r.Private), now, now)
		case err == nil:
			_, err = tx.ExecContext(ctx, `UPDATE repositories SET url = ?, clone_url = ?, owner = ?, name = ?,
				is_private = ?, updated_at = ? WHERE repository_id = ?`,
				r.URL, r.CloneURL, r.Owner, r.Name, boolInt(r.Private), now, id)
		}
		if err != nil {
			return fmt.Errorf("register repository: %w", err)
		}
		var token any
		if reg.GitToken != "" {
			token = s.seal([]byte(reg.GitToken), linkAD(reg.AppID, id))
		}
		res, err := tx.ExecContext(ctx, `UPDATE links SET status = ?, commit_sha = '', retry_count = 0, last_error = '',
			git_token = ?, include_patterns = ?, exclude_patterns = ?, files_delivered = 0, skipped_paths = 0,
			next_attempt_at = NULL, generation = generation + 1, updated_at = ?
			WHERE app_id = ? AND repository_id = ?`,
			StatusPendingSnapshot, token, encodePatterns(reg.Include), encodePatterns(reg.Exclude), now, reg.AppID, id)
		if err != nil {
			return fmt.Errorf("reset link: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 1 {
			existed = true
			_, err = tx.ExecContext(ctx, `DELETE FROM delivery_state WHERE app_id = ? AND repository_id = ?`, reg.AppID, id)
			return err
		}
		// A new link starts at a random generation: a run of a link removed and added again
		// while it was going must not take the new link for its own (its records and writes
		// are conditioned on the generation it started with).
		_, err = tx.ExecContext(ctx, `INSERT INTO links (app_id, repository_id, status, git_token, include_patterns,
			exclude_patterns, generation, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			reg.AppID, id, StatusPendingSnapshot, token, encodePatterns(reg.Include), encodePatterns(reg.Exclude),
			rand.Int64N(1<<52), now, now)
		if err != nil {
			if strings.Contains(err.Error(), "FOREIGN KEY") {
				return fmt.Errorf("app %s: %w", reg.AppID, ErrNotFound)
			}
			return fmt.Errorf("create link: %w", err)
		}
		reg.Repo.ID = id
		return nil
	})
	if err != nil {
		return LinkView{}, false, err
	}
	var id string
	if err := s.db.QueryRowContext(ctx, `SELECT repository_id FROM repositories WHERE url_key = ? AND branch = ?`,
		reg.Repo.URLKey, reg.Repo.Branch).Scan(&id); err != nil {
		return LinkView{}, false, fmt.Errorf("register repository: %w", err)
	}
	if existed {
		s.removeJournal(reg.AppID, id) // a run of the old generation stops at its next record
	}
	v, err := s.GetLink(ctx, reg.AppID, id)
	return v, existed, err
}

// DeleteLink stops an app watching a repository; its delivery state goes with it. When nobody
// watches the repository any more it is removed too, and removedRepo is true (the caller
// deletes its cache).
func (s *Store) DeleteLink(ctx context.Context, appID, repoID string) (removedRepo bool, err error) {
	err = s.WithTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM links WHERE app_id = ? AND repository_id = ?`, appID, repoID)
		if err := affectedOne(res, err, fmt.Sprintf("repository %s watched by app %s", repoID, appID)); err != nil {
			return err
		}
		removedRepo, err = deleteRepoIfUnwatched(ctx, tx, repoID)
		return err
	})
	if err == nil {
		s.removeJournal(appID, repoID)
	}
	return removedRepo, err
}

// SetLinkToken replaces the link's git token ("" = anonymous) and clears its error state and the
// repository's circuit breaker. Delivery state is kept.
func (s *Store) SetLinkToken(ctx context.Context, appID, repoID, token string) error {
	now := formatTime(s.now())
	var sealed any
	if token != "" {
		sealed = s.seal([]byte(token), linkAD(appID, repoID))
	}
	return s.WithTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE links SET git_token = ?, retry_count = 0, last_error = '',
			next_attempt_at = NULL, status = CASE WHEN status = ? THEN ? ELSE status END, updated_at = ?
			WHERE app_id = ? AND repository_id = ?`,
			sealed, StatusFailed, StatusPendingSnapshot, now, appID, repoID)
		if err := affectedOne(res, err, fmt.Sprintf("repository %s watched by app %s", repoID, appID)); err != nil {
			return err
		}
		return resetCircuit(ctx, tx, repoID, now)
	})
}

// ResetLink puts a link back to pending_snapshot with no error, no retries and no pending
// delay, and closes the repository's circuit breaker. Delivery state is kept, so the next sync
// sends only what the app does not have.
func (s *Store) ResetLink(ctx context.Context, appID, repoID string) error {
	now := formatTime(s.now())
	err := s.WithTx(ctx, func(tx *sql.Tx) error {
		// Reset keeps the delivery state, including what a running sync has journalled so
		// far: the new generation voids the journal, so its records are applied first.
		if err := s.replayJournal(ctx, tx, appID, repoID); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, `UPDATE links SET status = ?, commit_sha = '', retry_count = 0, last_error = '',
			next_attempt_at = NULL, generation = generation + 1, updated_at = ? WHERE app_id = ? AND repository_id = ?`,
			StatusPendingSnapshot, now, appID, repoID)
		if err := affectedOne(res, err, fmt.Sprintf("repository %s watched by app %s", repoID, appID)); err != nil {
			return err
		}
		return resetCircuit(ctx, tx, repoID, now)
	})
	if err == nil {
		s.removeJournal(appID, repoID) // a run of the old generation stops at its next record
	}
	return err
}

func resetCircuit(ctx context.Context, tx *sql.Tx, repoID, now string) error {
	_, err := tx.ExecContext(ctx, `UPDATE repositories SET consecutive_failures = 0, circuit_open_until = NULL,
		updated_at = ? WHERE repository_id = ?`, now, repoID)
	return err
}
