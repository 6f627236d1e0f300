//go:build !unix

package store

import (
	"io"
	"os"
)

// writtenJournal is a journal file written record by record.
type writtenJournal struct{ f *os.File }

// createJournalFile creates (or empties) the journal at path and writes header into it.
func createJournalFile(path string, header []byte) (journalFile, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, err
	}
	w := &writtenJournal{f: f}
	if err := w.append(header); err != nil {
		_ = f.Close()
		return nil, err
	}
	return w, nil
}

func (w *writtenJournal) append(rec []byte) error {
	_, err := w.f.Write(rec)
	return err
}

func (w *writtenJournal) reset(header []byte) error {
	if err := w.f.Truncate(0); err != nil {
		return err
	}
	if _, err := w.f.Seek(0, io.SeekStart); err != nil {
		return err
	}
	return w.append(header)
}

// unlinked reports whether the path no longer names the file. (Windows refuses to delete an
// open file unless it was opened for sharing deletes: a removal then fails, and the run's
// next fold, whose generation check fails, stops it instead.)
func (w *writtenJournal) unlinked() bool {
	fi, err := w.f.Stat()
	if err != nil {
		return true
	}
	pi, err := os.Stat(w.f.Name())
	return err != nil || !os.SameFile(fi, pi)
}

func (w *writtenJournal) file() *os.File { return w.f }

func (w *writtenJournal) close() error { return w.f.Close() }
