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

// FinishSynced records a completed run: every change of commit was delivered. When the run
// holds the link's lease (WithLease), this last write also gives it up.
func (r *LinkRun) FinishSynced(ctx context.Context, commit string, files, skipped int) error {
	if err := r.Flush(ctx); err != nil {
		return fmt.Errorf("record synced run: %w", err)
	}
	err := r.exec(ctx, `UPDATE links SET status = ?, commit_sha = ?, files_delivered = ?,
		skipped_paths = ?, retry_count = 0, last_error = '', next_attempt_at = NULL, updated_at = ?,
		lease_owner = CASE WHEN lease_owner = ? THEN NULL ELSE lease_owner END,
		lease_expires_at = CASE WHEN lease_owner = ? THEN NULL ELSE lease_expires_at END
		WHERE app_id = ? AND repository_id = ? AND `+r.current(),
		StatusSynced, commit, files, skipped, formatTime(r.s.now()), r.leaseOwner, r.leaseOwner, r.appID, r.repoID)
	if err != nil {
		return fmt.Errorf("record synced run: %w", err)
	}
	return nil
}

// FinishUnchanged records a run that found the branch head still at the completed commit:
// the link is synced, scanned now (a pending sync request is served), and the lease held with
// WithLease is given up — one write.
func (r *LinkRun) FinishUnchanged(ctx context.Context, commit string) error {
	if err := r.Flush(ctx); err != nil {
		return fmt.Errorf("record unchanged run: %w", err)
	}
	now := formatTime(r.s.now())
	err := r.exec(ctx, `UPDATE links SET status = ?, commit_sha = ?, retry_count = 0, last_error = '',
		next_attempt_at = NULL, last_scanned_at = ?, sync_requested_at = NULL, updated_at = ?,
		lease_owner = CASE WHEN lease_owner = ? THEN NULL ELSE lease_owner END,
		lease_expires_at = CASE WHEN lease_owner = ? THEN NULL ELSE lease_expires_at END
		WHERE app_id = ? AND repository_id = ? AND `+r.current(),
		StatusSynced, commit, now, now, r.leaseOwner, r.leaseOwner, r.appID, r.repoID)
	if err != nil {
		return fmt.Errorf("record unchanged run: %w", err)
	}
	return nil
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
// circuit opens until now + cooldown (Opened). A circuit that is open already — another link's
// failure opened it a moment ago — is left as it is, so that watching apps hear once per
// opening; the failure of the half-open attempt (halfOpen) re-opens it.
func (s *Store) RecordGitFailure(ctx context.Context, repoID, msg string, threshold int, cooldown time.Duration, halfOpen bool) (CircuitState, error) {
	var cs CircuitState
	now := s.now()
	err := s.WithTx(ctx, func(tx *sql.Tx) error {
		var open sql.NullString
		if err := tx.QueryRowContext(ctx, `UPDATE repositories SET consecutive_failures = consecutive_failures + 1,
			last_git_error = ?, updated_at = ? WHERE repository_id = ? RETURNING consecutive_failures, circuit_open_until`,
			msg, formatTime(now), repoID).Scan(&cs.Failures, &open); err != nil {
			return err
		}
		if cs.Failures < threshold {
			return nil
		}
		if until := parseNullTime(open); until != nil && until.After(now) && !halfOpen {
			cs.Until = *until
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

// ClaimHalfOpen gives the caller the one half-open attempt of a repository whose circuit was
// open until `until` (now past): the circuit stays open for everyone else until claimUntil.
// It reports false when another run claimed the attempt first. The attempt ends with
// RecordGitSuccess (closed), RecordGitFailure with halfOpen (re-opened) or ReleaseHalfOpen.
func (s *Store) ClaimHalfOpen(ctx context.Context, repoID string, until, claimUntil time.Time) (bool, error) {
	res, err := s.db.ExecContext(ctx, `UPDATE repositories SET circuit_open_until = ?
		WHERE repository_id = ? AND circuit_open_until = ?`, formatTime(claimUntil), repoID, formatTime(until))
	if err != nil {
		return false, fmt.Errorf("claim half-open attempt: %w", err)
	}
	n, _ := res.RowsAffected()
	return n == 1, nil
}

// ReleaseHalfOpen gives back a half-open attempt that said nothing about the repository (the
// link's own credentials failed, or the run was stopped): the circuit goes back to until, so
// that another link may make the attempt.
func (s *Store) ReleaseHalfOpen(ctx context.Context, repoID string, claimUntil, until time.Time) error {
	_, err := s.db.ExecContext(ctx, `UPDATE repositories SET circuit_open_until = ?
		WHERE repository_id = ? AND circuit_open_until = ?`, formatTime(until), repoID, formatTime(claimUntil))
	if err != nil {
		return fmt.Errorf("release half-open attempt: %w", err)
	}
	return nil
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
