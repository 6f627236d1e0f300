package store

import (
	"context"
	"database/sql"
	"fmt"
)

// StateEntry is what an app holds of one path: the sha it confirmed ("" when it never confirmed
// one) and, when a send was started and not confirmed, the sha in flight.
type StateEntry struct {
	SHA         string
	InFlightSHA string
}

// DeliveryState returns the link's path → entry map.
func (s *Store) DeliveryState(ctx context.Context, appID, repoID string) (map[string]StateEntry, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT path, COALESCE(sha, ''), COALESCE(inflight_sha, '')
		FROM delivery_state WHERE app_id = ? AND repository_id = ?`, appID, repoID)
	if err != nil {
		return nil, fmt.Errorf("read delivery state: %w", err)
	}
	defer rows.Close()
	out := map[string]StateEntry{}
	for rows.Next() {
		var p string
		var e StateEntry
		if err := rows.Scan(&p, &e.SHA, &e.InFlightSHA); err != nil {
			return nil, fmt.Errorf("read delivery state: %w", err)
		}
		out[p] = e
	}
	return out, rows.Err()
}

// MarkInFlight records that sha is about to be sent for path. It fails with ErrNotFound when
// the link is gone (removed while the run was going): the caller stops delivering.
func (s *Store) MarkInFlight(ctx context.Context, appID, repoID, path, sha string) error {
	return s.WithTx(ctx, func(tx *sql.Tx) error {
		var one int
		if err := tx.QueryRowContext(ctx, `SELECT 1 FROM links WHERE app_id = ? AND repository_id = ?`,
			appID, repoID).Scan(&one); err != nil {
			if err == sql.ErrNoRows {
				return fmt.Errorf("link %s/%s: %w", appID, repoID, ErrNotFound)
			}
			return err
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO delivery_state (app_id, repository_id, path, inflight_sha)
			VALUES (?, ?, ?, ?) ON CONFLICT (app_id, repository_id, path) DO UPDATE SET inflight_sha = excluded.inflight_sha`,
			appID, repoID, path, sha)
		return err
	})
}

// ConfirmDelivered records that the app received sha for path.
func (s *Store) ConfirmDelivered(ctx context.Context, appID, repoID, path, sha string) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO delivery_state (app_id, repository_id, path, sha) VALUES (?, ?, ?, ?)
		ON CONFLICT (app_id, repository_id, path) DO UPDATE SET sha = excluded.sha, inflight_sha = NULL`,
		appID, repoID, path, sha)
	if err != nil {
		return fmt.Errorf("record delivery of %s: %w", path, err)
	}
	return nil
}

// ConfirmDeleted records that the app deleted path.
func (s *Store) ConfirmDeleted(ctx context.Context, appID, repoID, path string) error {
	_, err := s.db.ExecContext(ctx, `DELETE FROM delivery_state WHERE app_id = ? AND repository_id = ? AND path = ?`,
		appID, repoID, path)
	if err != nil {
		return fmt.Errorf("record delete of %s: %w", path, err)
	}
	return nil
}

// Blob is what docora knows of a git blob's content.
type Blob struct {
	SHA256 string
	Size   int64
	Binary bool
}

// Blobs returns the cached facts for the given blob ids (missing ids are absent from the map).
func (s *Store) Blobs(ctx context.Context, ids []string) (map[string]Blob, error) {
	out := make(map[string]Blob, len(ids))
	const batch = 500
	for start := 0; start < len(ids); start += batch {
		end := min(start+batch, len(ids))
		args := make([]any, 0, end-start)
		q := make([]byte, 0, 2*(end-start))
		for i, id := range ids[start:end] {
			if i > 0 {
				q = append(q, ',')
			}
			q = append(q, '?')
			args = append(args, id)
		}
		rows, err := s.db.QueryContext(ctx, `SELECT blob_id, sha256, size, binary FROM blobs WHERE blob_id IN (`+string(q)+`)`, args...)
		if err != nil {
			return nil, fmt.Errorf("read blob cache: %w", err)
		}
		for rows.Next() {
			var id string
			var b Blob
			if err := rows.Scan(&id, &b.SHA256, &b.Size, &b.Binary); err != nil {
				rows.Close()
				return nil, fmt.Errorf("read blob cache: %w", err)
			}
			out[id] = b
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return nil, fmt.Errorf("read blob cache: %w", err)
		}
	}
	return out, nil
}

// PutBlobs caches facts for blob ids, in one transaction.
func (s *Store) PutBlobs(ctx context.Context, blobs map[string]Blob) error {
	if len(blobs) == 0 {
		return nil
	}
	return s.WithTx(ctx, func(tx *sql.Tx) error {
		stmt, err := tx.PrepareContext(ctx, `INSERT OR IGNORE INTO blobs (blob_id, sha256, size, binary) VALUES (?, ?, ?, ?)`)
		if err != nil {
			return fmt.Errorf("write blob cache: %w", err)
		}
		defer stmt.Close()
		for id, b := range blobs {
			if _, err := stmt.ExecContext(ctx, id, b.SHA256, b.Size, boolInt(b.Binary)); err != nil {
				return fmt.Errorf("write blob cache: %w", err)
			}
		}
		return nil
	})
}
