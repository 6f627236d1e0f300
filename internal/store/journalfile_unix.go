//go:build unix

package store

import (
	"fmt"
	"os"
	"syscall"
)

// mappedJournal is a journal file mapped shared: records are copied into the page cache, which
// outlives a crash of the process as a write(2) does.
type mappedJournal struct {
	f   *os.File
	mem []byte // the file, mapped shared; zeros after off
	off int
}

// createJournalFile creates (or empties) the journal at path and writes header into it.
func createJournalFile(path string, header []byte) (journalFile, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, err
	}
	m := &mappedJournal{f: f}
	if err := m.remap(journalMapSize); err != nil {
		_ = f.Close()
		return nil, err
	}
	if err := m.append(header); err != nil {
		_ = m.close()
		return nil, err
	}
	return m, nil
}

// remap sizes the file to n bytes (the new bytes read as zeros) and maps all of it.
func (m *mappedJournal) remap(n int) error {
	if m.mem != nil {
		if err := syscall.Munmap(m.mem); err != nil {
			return err
		}
		m.mem = nil
	}
	if err := m.f.Truncate(int64(n)); err != nil {
		return err
	}
	mem, err := syscall.Mmap(int(m.f.Fd()), 0, n, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_SHARED)
	if err != nil {
		return fmt.Errorf("map journal: %w", err)
	}
	m.mem = mem
	return nil
}

func (m *mappedJournal) append(rec []byte) error {
	if m.off+len(rec) > len(m.mem) {
		if err := m.remap(max(2*len(m.mem), m.off+len(rec))); err != nil {
			return err
		}
	}
	copy(m.mem[m.off:], rec)
	m.off += len(rec)
	return nil
}

func (m *mappedJournal) reset(header []byte) error {
	clear(m.mem[:m.off])
	m.off = 0
	return m.append(header)
}

func (m *mappedJournal) unlinked() bool {
	fi, err := m.f.Stat()
	if err != nil {
		return true
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	return ok && st.Nlink == 0
}

func (m *mappedJournal) file() *os.File { return m.f }

func (m *mappedJournal) close() error {
	var err error
	if m.mem != nil {
		err = syscall.Munmap(m.mem)
		m.mem = nil
	}
	if cerr := m.f.Close(); err == nil {
		err = cerr
	}
	return err
}
