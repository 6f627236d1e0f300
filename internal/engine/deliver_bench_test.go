package engine

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/docora/docora/internal/gitsource"
	"github.com/docora/docora/internal/gittest"
	"github.com/docora/docora/internal/netguard"
	"github.com/docora/docora/internal/store"
)

// BenchmarkDeliver measures one link's delivery of 2,000 small files (and two chunked ones)
// to a receiver that answers 200 at once, with the object cache and blob facts warm: each
// iteration is a new app watching the same repository. It is the in-process twin of
// `go run ./internal/benchmark/deliverbench` (profile it with -cpuprofile).
func BenchmarkDeliver(b *testing.B) {
	f := newFixture(b)
	rnd := rand.New(rand.NewPCG(3, 4))
	dir := f.repo.Dir()
	for i := range 2000 {
		p := filepath.Join(dir, fmt.Sprintf("d%02d", i%40), fmt.Sprintf("f%04d.txt", i))
		os.MkdirAll(filepath.Dir(p), 0o755)
		content := make([]byte, 200+rnd.IntN(8000))
		for j := range content {
			content[j] = 'a' + byte(rnd.IntN(26))
		}
		os.WriteFile(p, content, 0o644)
	}
	for i := range 2 {
		big := make([]byte, 3<<20)
		for j := range big {
			big[j] = byte(rnd.UintN(256))
		}
		os.WriteFile(filepath.Join(dir, fmt.Sprintf("big%d.bin", i)), big, 0o644)
	}
	f.repo.Git("add", "-A")
	f.repo.Commit("bench")
	f.repo.Push()
	discard := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
	}))
	b.Cleanup(discard.Close)
	ctx := context.Background()
	// The first run fetches and hashes.
	if r := f.sync(); r.Outcome != OutcomeSynced {
		b.Fatalf("first sync: %+v", r)
	}
	b.ResetTimer()
	for i := range b.N {
		b.StopTimer()
		id := fmt.Sprintf("app_b%d", i)
		if err := f.st.CreateApp(ctx, &store.App{ID: id, Name: id, Email: "b@example.com", BaseURL: discard.URL + "/",
			ClientAuthKey: []byte("0123456789abcdef-bench"), TokenHash: "hash-" + id}); err != nil {
			b.Fatal(err)
		}
		f.link(id, "")
		b.StartTimer()
		r := f.eng.SyncLink(ctx, id, f.repoID)
		if r.Outcome != OutcomeSynced || r.Delivered.Created != 2002 {
			b.Fatalf("sync: %+v", r)
		}
	}
	b.ReportMetric(float64(2002*b.N)/b.Elapsed().Seconds(), "files/s")
}

// BenchmarkUnchangedPass measures a pass over 50 synced links whose heads did not move (one
// ref listing each), beside the 50 ref listings alone: the overhead docora adds per link.
func BenchmarkUnchangedPass(b *testing.B) {
	f := newFixture(b)
	ctx := context.Background()
	var urls []string
	for i := range 50 {
		name := fmt.Sprintf("acme/u%02d.git", i)
		repo := gittest.NewRepo(b, f.git, name)
		repo.WriteFile("a.txt", "a\n")
		repo.Commit("one")
		repo.Push()
		urls = append(urls, f.git.URL(name))
		if _, _, err := f.st.RegisterLink(ctx, store.Registration{AppID: f.appID, Repo: store.Repository{ID: fmt.Sprintf("repo_u%02d", i),
			URL: urls[i], URLKey: urls[i], CloneURL: urls[i], Owner: "acme", Name: name, Branch: "main"}}); err != nil {
			b.Fatal(err)
		}
	}
	if _, err := f.eng.Pass(ctx, PassOptions{Concurrency: 1}); err != nil {
		b.Fatal(err)
	}
	b.Run("listings", func(b *testing.B) {
		pctx := netguard.WithPolicy(ctx, netguard.Policy{AllowPrivate: true})
		for range b.N {
			for _, u := range urls {
				if _, err := gitsource.ListRefs(pctx, u, gitsource.Credentials{}); err != nil {
					b.Fatal(err)
				}
			}
		}
	})
	b.Run("pass", func(b *testing.B) {
		for range b.N {
			rs, err := f.eng.Pass(ctx, PassOptions{Concurrency: 1})
			if err != nil {
				b.Fatal(err)
			}
			for _, r := range rs {
				if r.Outcome != OutcomeUnchanged && r.AppID == f.appID && r.RepositoryID != f.repoID {
					b.Fatalf("%+v", r)
				}
			}
		}
	})
}
