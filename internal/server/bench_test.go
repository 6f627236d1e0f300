package server

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/docora/docora/internal/registry"
	"github.com/docora/docora/internal/secrets"
	"github.com/docora/docora/internal/store"
)

// BenchmarkAuthenticatedList measures GET /api/repositories through the whole handler chain
// (rate limiter off) for an app watching one repository, in a store with 1 and with 1,000
// apps, and reports the median and 99th percentile of the per-request latency. Token
// authentication is an indexed lookup, so both should be about the same.
//
//	go test ./internal/server -run '^$' -bench AuthenticatedList -benchtime 20000x
func BenchmarkAuthenticatedList(b *testing.B) {
	for _, apps := range []int{1, 1000} {
		h, token := benchServer(b, apps)
		b.Run(fmt.Sprintf("apps=%d", apps), func(b *testing.B) {
			durs := make([]time.Duration, 0, max(b.N, 1024))
			for b.Loop() {
				r := httptest.NewRequest("GET", "/api/repositories", nil)
				r.Header.Set("Authorization", "Bearer "+token)
				w := httptest.NewRecorder()
				start := time.Now()
				h.ServeHTTP(w, r)
				durs = append(durs, time.Since(start))
				if w.Code != http.StatusOK {
					b.Fatalf("status %d: %s", w.Code, w.Body.String())
				}
			}
			slices.Sort(durs)
			b.ReportMetric(float64(percentile(durs, 0.50).Nanoseconds())/1e3, "p50-µs")
			b.ReportMetric(float64(percentile(durs, 0.99).Nanoseconds())/1e3, "p99-µs")
		})
	}
}

// BenchmarkAuthenticatedListInterleaved makes the same comparison with the two stores' requests
// alternating, so that both see the same load on a shared machine, and reports each one's
// p50 and p99 and their ratios (1,000 apps over 1 app).
//
//	go test ./internal/server -run '^$' -bench AuthenticatedListInterleaved -benchtime 20000x
func BenchmarkAuthenticatedListInterleaved(b *testing.B) {
	h1, tok1 := benchServer(b, 1)
	hN, tokN := benchServer(b, 1000)
	one := func(h http.Handler, token string) time.Duration {
		r := httptest.NewRequest("GET", "/api/repositories", nil)
		r.Header.Set("Authorization", "Bearer "+token)
		w := httptest.NewRecorder()
		start := time.Now()
		h.ServeHTTP(w, r)
		d := time.Since(start)
		if w.Code != http.StatusOK {
			b.Fatalf("status %d: %s", w.Code, w.Body.String())
		}
		return d
	}
	var d1, dN []time.Duration
	i := 0
	for b.Loop() {
		if i%2 == 0 {
			d1 = append(d1, one(h1, tok1))
		} else {
			dN = append(dN, one(hN, tokN))
		}
		i++
	}
	slices.Sort(d1)
	slices.Sort(dN)
	us := func(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e3 }
	p50a, p99a, p50b, p99b := percentile(d1, 0.5), percentile(d1, 0.99), percentile(dN, 0.5), percentile(dN, 0.99)
	b.ReportMetric(us(p50a), "apps=1-p50-µs")
	b.ReportMetric(us(p99a), "apps=1-p99-µs")
	b.ReportMetric(us(p50b), "apps=1000-p50-µs")
	b.ReportMetric(us(p99b), "apps=1000-p99-µs")
	if p50a > 0 && p99a > 0 {
		b.ReportMetric(float64(p50b)/float64(p50a), "p50-ratio")
		b.ReportMetric(float64(p99b)/float64(p99a), "p99-ratio")
	}
}

func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[min(int(float64(len(sorted))*p), len(sorted)-1)]
}

// benchServer returns a server over a store with n apps, and the token of the one in the
// middle, which watches one repository.
func benchServer(b *testing.B, n int) (http.Handler, string) {
	b.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, filepath.Join(b.TempDir(), "docora.db"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	box, _ := secrets.NewBox(bytes.Repeat([]byte{9}, 32))
	if err := st.UseKey(ctx, box); err != nil {
		b.Fatal(err)
	}
	var token, appID string
	for i := range n {
		tok := secrets.NewAppToken()
		a := &store.App{ID: secrets.NewID("app_"), Name: fmt.Sprintf("App %d", i), Email: "ops@example.com",
			BaseURL: "https://hooks.example.com/", ClientAuthKey: []byte("0123456789abcdef-key"), TokenHash: secrets.HashToken(tok)}
		if err := st.CreateApp(ctx, a); err != nil {
			b.Fatal(err)
		}
		if i == n/2 {
			token, appID = tok, a.ID
		}
	}
	if _, _, err := st.RegisterLink(ctx, store.Registration{AppID: appID, Repo: store.Repository{ID: secrets.NewID("repo_"),
		URL: "https://github.com/acme/docs", URLKey: "https://github.com/acme/docs", CloneURL: "https://github.com/acme/docs.git",
		Owner: "acme", Name: "docs", Branch: "main", GitHub: true}}); err != nil {
		b.Fatal(err)
	}
	srv, err := New(Options{Store: st, Registry: &registry.Service{Store: st}, RateLimit: -1,
		Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	return srv.Handler(), token
}
