package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// AcquireLease gives owner the right to process the link until ttl from now. It fails (false)
// while another owner holds an unexpired lease. A holder that dies stops renewing, so its lease
// expires after ttl.
func (s *Store) AcquireLease(ctx context.Context, appID, repoID, owner string, ttl time.Duration) (bool, error) {
	now := s.now()
	res, err := s.db.ExecContext(ctx, `UPDATE links SET lease_owner = ?, lease_expires_at = ?
		WHERE app_id = ? AND repository_id = ?
		AND (lease_owner IS NULL OR lease_owner = ? OR lease_expires_at IS NULL OR lease_expires_at < ?)`,
		owner, formatTime(now.Add(ttl)), appID, repoID, owner, formatTime(now))
	if err != nil {
		return false, fmt.Errorf("acquire lease: %w", err)
	}
	n, _ := res.RowsAffected()
	if n == 1 {
		return true, nil
	}
	if _, err := s.GetLink(ctx, appID, repoID); err != nil {
		return false, err
	}
	return false, nil
}

// ErrLeaseLost means the lease expired and another process may hold the link now.
var ErrLeaseLost = errors.New("lease lost")

// RenewLease extends owner's lease; ErrLeaseLost when owner no longer holds it.
func (s *Store) RenewLease(ctx context.Context, appID, repoID, owner string, ttl time.Duration) error {
	res, err := s.db.ExecContext(ctx, `UPDATE links SET lease_expires_at = ?
		WHERE app_id = ? AND repository_id = ? AND lease_owner = ?`,
		formatTime(s.now().Add(ttl)), appID, repoID, owner)
	if err != nil {
		return fmt.Errorf("renew lease: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrLeaseLost
	}
	return nil
}

// ReleaseLease gives up owner's lease.
func (s *Store) ReleaseLease(ctx context.Context, appID, repoID, owner string) error {
	_, err := s.db.ExecContext(ctx, `UPDATE links SET lease_owner = NULL, lease_expires_at = NULL
		WHERE app_id = ? AND repository_id = ? AND lease_owner = ?`, appID, repoID, owner)
	if err != nil {
		return fmt.Errorf("release lease: %w", err)
	}
	return nil
}

// BeginRun marks the link scanning and records the scan time; it clears a pending sync
// request.
func (s *Store) BeginRun(ctx context.Context, appID, repoID string) error {
	now := formatTime(s.now())
	res, err := s.db.ExecContext(ctx, `UPDATE links SET status = ?, last_scanned_at = ?, sync_requested_at = NULL,
		updated_at = ? WHERE app_id = ? AND repository_id = ?`, StatusScanning, now, now, appID, repoID)
	return affectedOne(res, err, "link "+appID+"/"+repoID)
}

// SetStatus puts a link back into status (an interrupted run restores what it found).
func (s *Store) SetStatus(ctx context.Context, appID, repoID, status string) error {
	_, err := s.db.ExecContext(ctx, `UPDATE links SET status = ?, updated_at = ? WHERE app_id = ? AND repository_id = ?`,
		status, formatTime(s.now()), appID, repoID)
	return err
}

// FinishSynced records a completed run: every change of commit was delivered.
func (s *Store) FinishSynced(ctx context.Context, appID, repoID, commit string, files, skipped int) error {
	now := formatTime(s.now())
	res, err := s.db.ExecContext(ctx, `UPDATE links SET status = ?, commit_sha = ?, files_delivered = ?,
		skipped_paths = ?, retry_count = 0, last_error = '', next_attempt_at = NULL, updated_at = ?
		WHERE app_id = ? AND repository_id = ?`, StatusSynced, commit, files, skipped, now, appID, repoID)
	return affectedOne(res, err, "link "+appID+"/"+repoID)
}

// RecordFailure marks the link failed with msg and the time of its next attempt, and returns
// the new count of consecutive failures.
func (s *Store) RecordFailure(ctx context.Context, appID, repoID, msg string, next func(retries int) time.Time) (int, error) {
	var retries int
	err := s.WithTx(ctx, func(tx *sql.Tx) error {
		if err := tx.QueryRowContext(ctx, `UPDATE links SET retry_count = retry_count + 1 WHERE app_id = ? AND repository_id = ?
			RETURNING retry_count`, appID, repoID).Scan(&retries); err != nil {
			if errors.Is(err, sql.ErrNoRows) {
				return fmt.Errorf("link %s/%s: %w", appID, repoID, ErrNotFound)
			}
			return err
		}
		_, err := tx.ExecContext(ctx, `UPDATE links SET status = ?, last_error = ?, next_attempt_at = ?, updated_at = ?
			WHERE app_id = ? AND repository_id = ?`,
			StatusFailed, msg, formatTime(next(retries)), formatTime(s.now()), appID, repoID)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("record failure: %w", err)
	}
	return retries, nil
}

// CircuitState is a repository's circuit breaker after a git failure.
type CircuitState struct {
	Failures int
	Opened   bool // this failure opened (or re-opened) the circuit
	Until    time.Time
}

// RecordGitFailure counts a consecutive git failure of the repository; at threshold the
// circuit opens until now + cooldown. A failure of the half-open attempt re-opens it.
func (s *Store) RecordGitFailure(ctx context.Context, repoID, msg string, threshold int, cooldown time.Duration) (CircuitState, error) {
	var cs CircuitState
	now := s.now()
	err := s.WithTx(ctx, func(tx *sql.Tx) error {
		if err := tx.QueryRowContext(ctx, `UPDATE repositories SET consecutive_failures = consecutive_failures + 1,
			last_git_error = ?, updated_at = ? WHERE repository_id = ? RETURNING consecutive_failures`,
			msg, formatTime(now), repoID).Scan(&cs.Failures); err != nil {
			return err
		}
		if cs.Failures < threshold {
			return nil
		}
		cs.Opened, cs.Until = true, now.Add(cooldown)
		_, err := tx.ExecContext(ctx, `UPDATE repositories SET circuit_open_until = ? WHERE repository_id = ?`,
			formatTime(cs.Until), repoID)
		return err
	})
	if err != nil {
		return CircuitState{}, fmt.Errorf("record git failure: %w", err)
	}
	return cs, nil
}

// RecordGitSuccess closes the repository's circuit and clears its failure count.
func (s *Store) RecordGitSuccess(ctx context.Context, repoID string) error {
	_, err := s.db.ExecContext(ctx, `UPDATE repositories SET consecutive_failures = 0, circuit_open_until = NULL,
		last_git_error = '' WHERE repository_id = ? AND (consecutive_failures > 0 OR circuit_open_until IS NOT NULL)`, repoID)
	return err
}

// RequestSync asks for an immediate run of the link (the API's sync-now).
func (s *Store) RequestSync(ctx context.Context, appID, repoID string) error {
	res, err := s.db.ExecContext(ctx, `UPDATE links SET sync_requested_at = ?, next_attempt_at = NULL
		WHERE app_id = ? AND repository_id = ?`, formatTime(s.now()), appID, repoID)
	return affectedOne(res, err, fmt.Sprintf("repository %s watched by app %s", repoID, appID))
}
