package changes

import (
	"sort"

	"github.com/docora/docora/internal/store"
)

// Type is the kind of a change, named like its webhook endpoint.
type Type string

// Change types, in delivery order.
const (
	Delete Type = "delete"
	Create Type = "create"
	Update Type = "update"
)

// File is a delivered file of the tree with its content facts.
type File struct {
	Path   string
	Blob   string
	SHA    string
	Size   int64
	Binary bool
}

// Change is one file-level change to send.
type Change struct {
	Type        Type   `json:"type"`
	Path        string `json:"path"`
	SHA         string `json:"sha"`                    // create/update: the new content; delete: the sha the app holds
	PreviousSHA string `json:"previous_sha,omitempty"` // update: the sha the app holds
	Size        int64  `json:"size"`
	Binary      bool   `json:"binary"`
	Blob        string `json:"-"`
	// Uncertain marks a path whose previous send was interrupted: it is sent again even when
	// the recorded state already matches.
	Uncertain bool `json:"-"`
}

// Diff compares the tree's files with what the app has confirmed ("current state wins") and
// returns the changes in delivery order: deletes, creates, updates, each by path in byte order.
func Diff(files []File, state map[string]store.StateEntry) []Change {
	var out []Change
	inTree := make(map[string]struct{}, len(files))
	for _, f := range files {
		inTree[f.Path] = struct{}{}
		st, known := state[f.Path]
		c := Change{Path: f.Path, SHA: f.SHA, Size: f.Size, Binary: f.Binary, Blob: f.Blob,
			Uncertain: known && st.InFlightSHA != ""}
		switch {
		case !known || st.SHA == "":
			// Never confirmed (perhaps in flight when a run died): the app may not have it.
			c.Type = Create
		case st.SHA != f.SHA || c.Uncertain:
			c.Type, c.PreviousSHA = Update, st.SHA
		default:
			continue
		}
		out = append(out, c)
	}
	for p, st := range state {
		if _, ok := inTree[p]; ok {
			continue
		}
		sha := st.SHA
		if sha == "" {
			sha = st.InFlightSHA
		}
		if sha == "" {
			continue
		}
		out = append(out, Change{Type: Delete, Path: p, SHA: sha, Uncertain: st.InFlightSHA != ""})
	}
	Sort(out)
	return out
}

var phase = map[Type]int{Delete: 0, Create: 1, Update: 2}

// Sort orders changes for delivery: deletes, then creates, then updates; by path within each.
func Sort(cs []Change) {
	sort.Slice(cs, func(i, j int) bool {
		if pi, pj := phase[cs[i].Type], phase[cs[j].Type]; pi != pj {
			return pi < pj
		}
		return cs[i].Path < cs[j].Path
	})
}

// Counts tallies changes by type.
type Counts struct {
	Created int `json:"created"`
	Updated int `json:"updated"`
	Deleted int `json:"deleted"`
}

// Count returns the counts of cs.
func Count(cs []Change) Counts {
	var c Counts
	for _, ch := range cs {
		switch ch.Type {
		case Create:
			c.Created++
		case Update:
			c.Updated++
		case Delete:
			c.Deleted++
		}
	}
	return c
}
