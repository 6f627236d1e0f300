//go:build unix

package store

import (
	"os"
	"syscall"
)

// unlinked reports whether f's file no longer has a name (its link count is 0).
func unlinked(f *os.File) bool {
	fi, err := f.Stat()
	if err != nil {
		return true
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	return ok && st.Nlink == 0
}
