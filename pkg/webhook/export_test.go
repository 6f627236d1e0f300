package webhook

// BufferedBytes returns the bytes r holds in memory for incomplete transfers.
func BufferedBytes(r *Reassembler) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, t := range r.transfers {
		t.mu.Lock()
		n += cap(t.buf)
		t.mu.Unlock()
	}
	return n
}
