package store

import (
	"context"
	"database/sql"
	"errors"
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
	r := s.Run(appID, repoID, anyGeneration)
	defer r.Close()
	return r.MarkInFlight(ctx, path, sha)
}

// ConfirmDelivered records that the app received sha for path.
func (s *Store) ConfirmDelivered(ctx context.Context, appID, repoID, path, sha string) error {
	r := s.Run(appID, repoID, anyGeneration)
	defer r.Close()
	return r.ConfirmDelivered(ctx, path, sha, nil)
}

// ConfirmDeleted records that the app deleted path.
func (s *Store) ConfirmDeleted(ctx context.Context, appID, repoID, path string) error {
	r := s.Run(appID, repoID, anyGeneration)
	defer r.Close()
	return r.ConfirmDeleted(ctx, path)
}

// ErrStale means the link was reset or re-registered (its generation moved on) since the run
// started: the run must stop and record nothing more, so that the reset's re-scan happens.
var ErrStale = errors.New("link was reset or re-registered during the run")

// anyGeneration makes a LinkRun record whatever the link's generation.
const anyGeneration = -1

// LinkRun records one run's progress on a link of one generation. Each method fails with
// ErrNotFound once the link is removed and with ErrStale once it is reset or re-registered,
// and then records nothing. Its statements are prepared once per run (a delivery costs one
// write on the hot path); Close releases them. It is not safe for concurrent use.
type LinkRun struct {
	s             *Store
	appID, repoID string
	generation    int64
	what          string
	leaseOwner    string // "": the run holds no lease FinishSynced should give up
	stmts         map[string]*sql.Stmt
	j             *journal // nil: each record is a store write (see WithJournal)
}

// WithLease tells r that its run holds the link's lease as owner: FinishSynced gives it up in
// the same write (one write less per run). It returns r.
func (r *LinkRun) WithLease(owner string) *LinkRun {
	r.leaseOwner = owner
	return r
}

// Run returns the recorder of a run of the link that started in generation.
func (s *Store) Run(appID, repoID string, generation int64) *LinkRun {
	return &LinkRun{s: s, appID: appID, repoID: repoID, generation: generation,
		what: "link " + appID + "/" + repoID, stmts: map[string]*sql.Stmt{}}
}

// Close folds and removes the run's journal and releases its prepared statements.
func (r *LinkRun) Close() error {
	errs := []error{r.closeJournal(context.Background())}
	for q, st := range r.stmts {
		errs = append(errs, st.Close())
		delete(r.stmts, q)
	}
	return errors.Join(errs...)
}

// exec runs query, a write conditioned on current(), with args followed by current()'s
// arguments. When it changes nothing, why() says whether the link is gone or stale.
func (r *LinkRun) exec(ctx context.Context, query string, args ...any) error {
	st, err := r.stmt(ctx, query)
	if err != nil {
		return err
	}
	args = append(args, r.appID, r.repoID)
	if r.generation != anyGeneration {
		args = append(args, r.generation)
	}
	res, err := st.ExecContext(ctx, args...)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return r.why(ctx)
	}
	return nil
}

// stmt returns query prepared, once per run.
func (r *LinkRun) stmt(ctx context.Context, query string) (*sql.Stmt, error) {
	if st, ok := r.stmts[query]; ok {
		return st, nil
	}
	st, err := r.s.db.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	r.stmts[query] = st
	return st, nil
}

// current is the SQL condition "the link exists in the run's generation".
func (r *LinkRun) current() string {
	if r.generation == anyGeneration {
		return `EXISTS (SELECT 1 FROM links WHERE app_id = ? AND repository_id = ?)`
	}
	return `EXISTS (SELECT 1 FROM links WHERE app_id = ? AND repository_id = ? AND generation = ?)`
}

// why explains why a write conditioned on current() did nothing: ErrNotFound, ErrStale, or
// nil when the link is current (the write had nothing to change).
func (r *LinkRun) why(ctx context.Context) error { return r.checkGeneration(ctx, r.s.db) }

type rowQuerier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// checkGeneration fails with ErrNotFound or ErrStale when the link was removed, reset or
// re-registered since the run started.
func (r *LinkRun) checkGeneration(ctx context.Context, q rowQuerier) error {
	var gen int64
	err := q.QueryRowContext(ctx, `SELECT generation FROM links WHERE app_id = ? AND repository_id = ?`,
		r.appID, r.repoID).Scan(&gen)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return fmt.Errorf("%s: %w", r.what, ErrNotFound)
	case err != nil:
		return err
	case r.generation != anyGeneration && gen != r.generation:
		return fmt.Errorf("%s: %w", r.what, ErrStale)
	}
	return nil
}

// Mark is a change about to be sent: its path and the sha recorded in flight (for a delete,
// the sha the app holds).
type Mark struct {
	Path, SHA string
}

// MarkInFlight records that sha is about to be sent for path.
func (r *LinkRun) MarkInFlight(ctx context.Context, path, sha string) error {
	if r.j != nil {
		return wrapRecord(r.journalled(ctx, jInFlight, path, sha), "record %s in flight", path)
	}
	err := r.exec(ctx, `INSERT INTO delivery_state (app_id, repository_id, path, inflight_sha)
		SELECT ?, ?, ?, ? WHERE `+r.current()+`
		ON CONFLICT (app_id, repository_id, path) DO UPDATE SET inflight_sha = excluded.inflight_sha`,
		r.appID, r.repoID, path, sha)
	if err != nil {
		return fmt.Errorf("record %s in flight: %w", path, err)
	}
	return nil
}

// ConfirmDelivered records that the app received sha for path and, when next is not nil,
// marks next in flight in the same statement: one write between two deliveries.
func (r *LinkRun) ConfirmDelivered(ctx context.Context, path, sha string, next *Mark) error {
	var err error
	switch {
	case r.j != nil && next == nil:
		err = r.journalled(ctx, jConfirmed, path, sha)
	case r.j != nil:
		err = r.journalled(ctx, jNext, path, sha, next.Path, next.SHA)
	case next == nil:
		err = r.exec(ctx, `INSERT INTO delivery_state (app_id, repository_id, path, sha)
			SELECT ?, ?, ?, ? WHERE `+r.current()+`
			ON CONFLICT (app_id, repository_id, path) DO UPDATE SET sha = excluded.sha, inflight_sha = NULL`,
			r.appID, r.repoID, path, sha)
	default:
		// Two rows: (sha confirmed, nothing in flight) for path, (in flight) for next.
		err = r.exec(ctx, `INSERT INTO delivery_state (app_id, repository_id, path, sha, inflight_sha)
			SELECT column1, column2, column3, column4, column5 FROM (VALUES (?, ?, ?, ?, NULL), (?, ?, ?, NULL, ?))
			WHERE `+r.current()+`
			ON CONFLICT (app_id, repository_id, path) DO UPDATE SET
				sha = CASE WHEN excluded.inflight_sha IS NULL THEN excluded.sha ELSE delivery_state.sha END,
				inflight_sha = excluded.inflight_sha`,
			r.appID, r.repoID, path, sha, r.appID, r.repoID, next.Path, next.SHA)
	}
	if err != nil {
		return fmt.Errorf("record delivery of %s: %w", path, err)
	}
	return nil
}

// ConfirmDeleted records that the app deleted path.
func (r *LinkRun) ConfirmDeleted(ctx context.Context, path string) error {
	if r.j != nil {
		return wrapRecord(r.journalled(ctx, jDeleted, path), "record delete of %s", path)
	}
	err := r.exec(ctx, `DELETE FROM delivery_state WHERE app_id = ? AND repository_id = ? AND path = ? AND `+r.current(),
		r.appID, r.repoID, path)
	if err != nil {
		return fmt.Errorf("record delete of %s: %w", path, err)
	}
	return nil
}

func wrapRecord(err error, format string, args ...any) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf(format+": %w", append(args, err)...)
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
