package store

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
)

// The delivery journal keeps a run's per-delivery records out of SQLite's hot path.
//
// SPEC §5 wants every confirmation (and the next change's in-flight mark) recorded before the
// next request goes out. A SQLite commit costs 30–45 µs here, as much as the request it records
// on a local receiver. A journalled run (LinkRun.WithJournal) therefore appends each record to
// <db>-runs/<link>.journal — on Unix a copy into the file mapped shared, elsewhere one write(2);
// either outlives a crash of the process, like SQLite's WAL at synchronous=NORMAL — and folds
// the journal into delivery_state in one transaction when the run ends, every
// journalFoldRecords records, and before any other write about the link. A run that dies
// leaves its journal behind; the next run of the link (which holds the lease, so nobody else
// writes it) replays it before it reads the delivery state. Replaying twice is harmless: the
// records set values, they do not add to them.
//
// The journal belongs to one generation of the link. A removal or a re-registration (delivery
// state cleared) makes its records void: folding or replaying them discards them. A reset keeps
// the delivery state, so it applies the journal before it moves the generation on.
//
// File format: a header record, then one record per call. A record is
// uint32 payload length | uint32 CRC-32C of the payload | payload (little endian). Replay stops
// at the first short, zero or corrupt record: the records after it were never written
// completely (a mapped journal is zeros after its last record).

const (
	// journalFoldRecords bounds a journal (and the work of replaying it) between folds.
	journalFoldRecords = 8192
	// journalMapSize is a new journal's size where it is mapped into memory; it doubles when
	// full (a fold empties it every journalFoldRecords records, some 1.5 MB).
	journalMapSize = 1 << 20
	// maxJournalRecord bounds one record: two paths (git caps a path at 4 KiB) and two shas.
	maxJournalRecord = 1 << 16
)

// Journal record kinds.
const (
	jHeader    byte = 'H' // appID, repoID, generation
	jInFlight  byte = 'F' // path, sha
	jConfirmed byte = 'C' // path, sha
	jNext      byte = 'N' // path, sha, next path, next sha: confirmed, and the next in flight
	jDeleted   byte = 'D' // path
)

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// journalDir is where the journals of the store at dbPath live.
func journalDir(dbPath string) string { return dbPath + "-runs" }

// journalPath names the journal of a link: a hash, since ids are not file names.
func journalPath(dir, appID, repoID string) string {
	h := sha256.Sum256([]byte(appID + "\x00" + repoID))
	return filepath.Join(dir, hex.EncodeToString(h[:12])+".journal")
}

// journalOp is one record, as replay applies it.
type journalOp struct {
	kind              byte
	path, sha         string
	nextPath, nextSHA string
}

// journalFile is an open delivery journal file (journalfile_*.go). On Unix it is mapped into
// memory: appending a record is a copy into the page cache, without a system call per
// delivery; elsewhere each record is one write.
type journalFile interface {
	append(rec []byte) error
	reset(header []byte) error // empty the journal; it starts over with header
	unlinked() bool            // the file lost its name (removal, reset, re-registration)
	file() *os.File
	close() error
}

// journal is the open journal of one run.
type journal struct {
	path    string
	jf      journalFile // nil until the first record
	buf     []byte
	ops     []journalOp // appended since the last fold
	written bool        // the file holds records (a fold or the end removes them)
}

func encodeRecord(dst []byte, kind byte, fields ...string) []byte {
	start := len(dst)
	dst = append(dst, 0, 0, 0, 0, 0, 0, 0, 0, kind)
	for _, f := range fields {
		dst = binary.AppendUvarint(dst, uint64(len(f)))
		dst = append(dst, f...)
	}
	payload := dst[start+8:]
	binary.LittleEndian.PutUint32(dst[start:], uint32(len(payload)))
	binary.LittleEndian.PutUint32(dst[start+4:], crc32.Checksum(payload, crcTable))
	return dst
}

// decodeRecords parses the records of b, stopping at the first incomplete or corrupt one.
func decodeRecords(b []byte) (kinds []byte, fields [][]string) {
	for len(b) >= 8 {
		n := int(binary.LittleEndian.Uint32(b))
		if n < 1 || n > maxJournalRecord || len(b) < 8+n {
			break
		}
		payload := b[8 : 8+n]
		if crc32.Checksum(payload, crcTable) != binary.LittleEndian.Uint32(b[4:]) {
			break
		}
		var fs []string
		rest := payload[1:]
		ok := true
		for len(rest) > 0 {
			l, k := binary.Uvarint(rest)
			if k <= 0 || uint64(len(rest)-k) < l {
				ok = false
				break
			}
			fs = append(fs, string(rest[k:k+int(l)]))
			rest = rest[k+int(l):]
		}
		if !ok {
			break
		}
		kinds, fields = append(kinds, payload[0]), append(fields, fs)
		b = b[8+n:]
	}
	return kinds, fields
}

// parseJournal reads a journal file: its header and its records. ok is false when the file
// has no valid header (nothing to replay).
func parseJournal(b []byte) (appID, repoID string, generation int64, ops []journalOp, ok bool) {
	kinds, fields := decodeRecords(b)
	if len(kinds) == 0 || kinds[0] != jHeader || len(fields[0]) != 3 {
		return "", "", 0, nil, false
	}
	gen, err := strconv.ParseInt(fields[0][2], 10, 64)
	if err != nil {
		return "", "", 0, nil, false
	}
	for i := 1; i < len(kinds); i++ {
		f := fields[i]
		op := journalOp{kind: kinds[i]}
		switch {
		case (op.kind == jInFlight || op.kind == jConfirmed) && len(f) == 2:
			op.path, op.sha = f[0], f[1]
		case op.kind == jNext && len(f) == 4:
			op.path, op.sha, op.nextPath, op.nextSHA = f[0], f[1], f[2], f[3]
		case op.kind == jDeleted && len(f) == 1:
			op.path = f[0]
		default:
			return appID, repoID, gen, ops, true // unknown record: stop there
		}
		ops = append(ops, op)
	}
	return fields[0][0], fields[0][1], gen, ops, true
}

// pathState is what a run of records does to one path's row: an optional delete, then the
// columns it sets (the others keep their value).
type pathState struct {
	deleted     bool
	setSHA      bool
	sha         string
	setInFlight bool
	inFlightSHA string // "" with setInFlight: NULL
	order       int
}

// reduce folds ops into the final effect per path, so that a fold writes each path once.
func reduce(ops []journalOp) ([]string, map[string]*pathState) {
	m := map[string]*pathState{}
	var order []string
	get := func(p string) *pathState {
		s := m[p]
		if s == nil {
			s = &pathState{order: len(order)}
			m[p] = s
			order = append(order, p)
		}
		return s
	}
	inFlight := func(p, sha string) {
		s := get(p)
		s.setInFlight, s.inFlightSHA = true, sha
	}
	confirmed := func(p, sha string) {
		s := get(p)
		s.setSHA, s.sha, s.setInFlight, s.inFlightSHA = true, sha, true, ""
	}
	for _, op := range ops {
		switch op.kind {
		case jInFlight:
			inFlight(op.path, op.sha)
		case jConfirmed:
			confirmed(op.path, op.sha)
		case jNext:
			confirmed(op.path, op.sha)
			inFlight(op.nextPath, op.nextSHA)
		case jDeleted:
			s := get(op.path)
			*s = pathState{deleted: true, order: s.order}
		}
	}
	return order, m
}

// applyOps writes the effect of ops on the link's delivery state within tx.
func applyOps(ctx context.Context, tx *sql.Tx, appID, repoID string, ops []journalOp) error {
	if len(ops) == 0 {
		return nil
	}
	order, m := reduce(ops)
	del, err := tx.PrepareContext(ctx, `DELETE FROM delivery_state WHERE app_id = ? AND repository_id = ? AND path = ?`)
	if err != nil {
		return err
	}
	defer del.Close()
	up, err := tx.PrepareContext(ctx, `INSERT INTO delivery_state (app_id, repository_id, path, sha, inflight_sha)
		VALUES (?1, ?2, ?3, CASE WHEN ?4 THEN ?5 END, NULLIF(?6, ''))
		ON CONFLICT (app_id, repository_id, path) DO UPDATE SET
			sha = CASE WHEN ?4 THEN excluded.sha ELSE delivery_state.sha END,
			inflight_sha = CASE WHEN ?7 THEN excluded.inflight_sha ELSE delivery_state.inflight_sha END`)
	if err != nil {
		return err
	}
	defer up.Close()
	for _, p := range order {
		s := m[p]
		if s.deleted {
			if _, err := del.ExecContext(ctx, appID, repoID, p); err != nil {
				return err
			}
		}
		if !s.setSHA && !s.setInFlight {
			continue
		}
		if _, err := up.ExecContext(ctx, appID, repoID, p, s.setSHA, s.sha, s.inFlightSHA, s.setInFlight); err != nil {
			return err
		}
	}
	return nil
}

// WithJournal makes r append its per-delivery records to the link's journal (see above)
// instead of writing each to the store, after replaying a journal left by a run that died.
// Call it while holding the link's lease, before reading the delivery state. A store opened
// without a file keeps writing every record to SQLite. It returns r.
func (r *LinkRun) WithJournal(ctx context.Context) (*LinkRun, error) {
	if r.s.journalDir == "" {
		return r, nil
	}
	path := journalPath(r.s.journalDir, r.appID, r.repoID)
	if err := r.s.Recover(ctx, r.appID, r.repoID); err != nil {
		return r, err
	}
	r.j = &journal{path: path}
	return r, nil
}

// Recover replays the journal a dead run of the link left behind, if any, and removes it.
// Records of another generation, or of a link that is gone, are discarded.
func (s *Store) Recover(ctx context.Context, appID, repoID string) error {
	if s.journalDir == "" {
		return nil
	}
	path := journalPath(s.journalDir, appID, repoID)
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err := s.WithTx(ctx, func(tx *sql.Tx) error { return s.replayJournal(ctx, tx, appID, repoID) }); err != nil {
		return fmt.Errorf("replay delivery journal: %w", err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove replayed delivery journal: %w", err)
	}
	return nil
}

// replayJournal applies, within tx, the records of the link's journal file when they belong
// to the link's current generation. The file stays (a live run may still own it).
func (s *Store) replayJournal(ctx context.Context, tx *sql.Tx, appID, repoID string) error {
	if s.journalDir == "" {
		return nil
	}
	b, err := os.ReadFile(journalPath(s.journalDir, appID, repoID))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read delivery journal: %w", err)
	}
	a, rp, gen, ops, ok := parseJournal(b)
	if !ok || a != appID || rp != repoID || len(ops) == 0 {
		return nil
	}
	var cur int64
	err = tx.QueryRowContext(ctx, `SELECT generation FROM links WHERE app_id = ? AND repository_id = ?`,
		appID, repoID).Scan(&cur)
	if errors.Is(err, sql.ErrNoRows) || err == nil && cur != gen {
		return nil // void: the link is gone, or its state was cleared since
	}
	if err != nil {
		return err
	}
	return applyOps(ctx, tx, appID, repoID, ops)
}

// removeJournal deletes the journal of a link that was just removed, reset or re-registered
// (after the commit): a run writing it notices at its next record and stops. Best effort: a
// run that misses it is stopped by its next fold, whose generation check fails.
func (s *Store) removeJournal(appID, repoID string) {
	if s.journalDir != "" {
		_ = os.Remove(journalPath(s.journalDir, appID, repoID))
	}
}

// journalled appends one record. It fails with ErrNotFound or ErrStale, and records nothing,
// once the link was removed, reset or re-registered: those operations unlink the link's
// journal after their commit, so a run notices at its next record by the link count of its
// open journal (one fstat, instead of a query per delivery) and then asks the store why. The
// journal is created before the store is first asked, so an operation that commits after that
// question finds the file to unlink.
func (r *LinkRun) journalled(ctx context.Context, kind byte, fields ...string) error {
	j := r.j
	if j.jf == nil {
		if err := r.openJournal(); err != nil {
			return err
		}
		if err := r.checkGeneration(ctx, r.s.db); err != nil {
			return err
		}
	} else if j.jf.unlinked() {
		if err := r.checkGeneration(ctx, r.s.db); err != nil {
			return err
		}
		// Unlinked while the link is current (removed by hand): keep what it held in the
		// store, and go on in a new file.
		if err := r.Flush(ctx); err != nil {
			return err
		}
		if err := r.openJournal(); err != nil {
			return err
		}
	}
	j.buf = encodeRecord(j.buf[:0], kind, fields...)
	if len(j.buf) > maxJournalRecord {
		return fmt.Errorf("journal record of %d bytes: too large", len(j.buf))
	}
	if err := j.jf.append(j.buf); err != nil {
		return fmt.Errorf("write delivery journal: %w", err)
	}
	j.written = true
	op := journalOp{kind: kind}
	switch kind {
	case jNext:
		op.path, op.sha, op.nextPath, op.nextSHA = fields[0], fields[1], fields[2], fields[3]
	case jDeleted:
		op.path = fields[0]
	default:
		op.path, op.sha = fields[0], fields[1]
	}
	j.ops = append(j.ops, op)
	if len(j.ops) >= journalFoldRecords {
		return r.Flush(ctx)
	}
	return nil
}

// header is the first record of the run's journal.
func (r *LinkRun) header() []byte {
	return encodeRecord(nil, jHeader, r.appID, r.repoID, strconv.FormatInt(r.generation, 10))
}

// openJournal creates the run's journal file (replacing any) with its header.
func (r *LinkRun) openJournal() error {
	j := r.j
	if j.jf != nil {
		_ = j.jf.close()
		j.jf = nil
	}
	if err := os.MkdirAll(filepath.Dir(j.path), 0o700); err != nil {
		return fmt.Errorf("create journal directory: %w", err)
	}
	jf, err := createJournalFile(j.path, r.header())
	if err != nil {
		return fmt.Errorf("create delivery journal: %w", err)
	}
	j.jf = jf
	return nil
}

// ownsPath reports whether the journal's path still names the run's open file (and not, after
// a reset, the journal of a newer run).
func (j *journal) ownsPath() bool {
	fi, err := j.jf.file().Stat()
	if err != nil {
		return false
	}
	pi, err := os.Stat(j.path)
	return err == nil && os.SameFile(fi, pi)
}

// Flush folds the journal's records into the delivery state in one transaction and empties
// the journal. When the link was removed, reset or re-registered meanwhile the records are
// discarded and Flush fails with ErrNotFound or ErrStale. Without a journal it does nothing.
func (r *LinkRun) Flush(ctx context.Context) error {
	j := r.j
	if j == nil || !j.written {
		return nil
	}
	err := r.s.WithTx(ctx, func(tx *sql.Tx) error {
		if err := r.checkGeneration(ctx, tx); err != nil {
			return err
		}
		return applyOps(ctx, tx, r.appID, r.repoID, j.ops)
	})
	if err != nil && !errors.Is(err, ErrNotFound) && !errors.Is(err, ErrStale) {
		// Kept: the next fold, or the next run's replay, applies the records.
		return fmt.Errorf("record deliveries: %w", err)
	}
	// Folded (or void): start the journal over. A crash while it is emptied leaves records
	// that are in the store already, or no header: either replays to the same state.
	j.ops = j.ops[:0]
	if rerr := j.jf.reset(r.header()); rerr != nil && err == nil {
		err = fmt.Errorf("empty delivery journal: %w", rerr)
	} else {
		j.written = false
	}
	return err
}

// closeJournal folds what is left and removes the journal file.
func (r *LinkRun) closeJournal(ctx context.Context) error {
	j := r.j
	if j == nil || j.jf == nil {
		return nil
	}
	err := r.Flush(ctx)
	if errors.Is(err, ErrNotFound) || errors.Is(err, ErrStale) {
		err = nil
	}
	if err == nil && !j.written && j.ownsPath() {
		if rerr := os.Remove(j.path); rerr != nil && !errors.Is(rerr, fs.ErrNotExist) {
			err = rerr
		}
	}
	cerr := j.jf.close()
	j.jf = nil
	return errors.Join(err, cerr)
}
