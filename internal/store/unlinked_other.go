//go:build !unix

package store

import "os"

// unlinked reports whether f's path no longer names f. (Windows refuses to delete an open
// file by default; the check is kept for the same semantics.)
func unlinked(f *os.File) bool {
	fi, err := f.Stat()
	if err != nil {
		return true
	}
	pi, err := os.Stat(f.Name())
	return err != nil || !os.SameFile(fi, pi)
}
