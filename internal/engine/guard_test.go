package engine

import (
	"context"
	"errors"
	"io"
	"net"
	"net/url"
	"os"
	"strings"
	"testing"

	"github.com/docora/docora/internal/delivery"
	"github.com/docora/docora/internal/netguard"
	"github.com/docora/docora/pkg/webhook"
)

// loopbackName returns a host name that resolves only to loopback addresses and does not look
// private (the machine's own host name, usually 127.0.1.1 in /etc/hosts), or skips.
func loopbackName(t *testing.T) string {
	t.Helper()
	h, err := os.Hostname()
	if err != nil || netguard.CheckHostLiteral(h) != nil {
		t.Skipf("host name %q unusable: %v", h, err)
	}
	addrs, err := net.LookupHost(h)
	if err != nil || len(addrs) == 0 {
		t.Skipf("host name %q does not resolve: %v", h, err)
	}
	for _, a := range addrs {
		if ip := net.ParseIP(a); ip == nil || !ip.IsLoopback() {
			t.Skipf("host name %q resolves to %s, not loopback", h, a)
		}
	}
	return h
}

// TestGuardAtDialTime: a base URL whose host name resolves to loopback passes the early URL
// check (only https://localhost and the like are refused there) and is refused when dialled,
// before any connection, unless private networks are allowed.
func TestGuardAtDialTime(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	f.commit(map[string]string{"a.txt": "a\n"})
	host := loopbackName(t)
	port := strings.TrimPrefix(f.rec.URL(), "http://127.0.0.1:")
	strict := netguard.Policy{}

	// Onboarding's early check refuses what visibly is local...
	if err := netguard.CheckURL(strict, "https://localhost:"+port+"/"); !errors.Is(err, netguard.ErrForbiddenAddress) {
		t.Errorf("https://localhost passed the early check: %v", err)
	}
	// ...and lets a name through that resolves to loopback: only the dial can tell.
	hooks := "https://" + host + ":" + port + "/hooks/"
	if err := netguard.CheckURL(strict, hooks); err != nil {
		t.Fatalf("early check of %s: %v", hooks, err)
	}
	app, _ := f.st.GetApp(ctx, f.appID)
	app.BaseURL = hooks
	if err := f.st.UpdateApp(ctx, &app); err != nil {
		t.Fatal(err)
	}

	// The webhook itself, under the strict policy: refused at dial time.
	err := f.eng.Client.DeliverFile(netguard.WithPolicy(ctx, strict),
		delivery.Target{BaseURL: hooks, AppID: f.appID, Key: app.ClientAuthKey},
		webhook.Repository{RepositoryID: f.repoID}, f.repo.Head(),
		delivery.FileChange{Kind: delivery.Create, Path: "a.txt", SHA: sha("a\n"), Size: 2, DeliveryID: "dlv_guard",
			Open: func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader("a\n")), nil }})
	if !errors.Is(err, netguard.ErrForbiddenAddress) || !strings.Contains(err.Error(), "--allow-private-networks") {
		t.Errorf("delivery to %s under the strict policy: %v", hooks, err)
	}
	// A whole run under the strict policy: the git remote (127.0.0.1) is refused the same way.
	f.eng.Policy = strict
	if r := f.sync(); r.Outcome != OutcomeFailed || !strings.Contains(r.Error, netguard.ErrForbiddenAddress.Error()) {
		t.Errorf("strict run: %+v", r)
	}
	if n := f.rec.conns.Load(); n != 0 {
		t.Errorf("the receiver accepted %d connections under the strict policy", n)
	}

	// --allow-private-networks: the same host name (over http, which it also allows) works.
	f.eng.Policy = netguard.Policy{AllowPrivate: true}
	app.BaseURL = "http://" + host + ":" + port + "/"
	if err := f.st.UpdateApp(ctx, &app); err != nil {
		t.Fatal(err)
	}
	if r := f.sync(); r.Outcome != OutcomeSynced || r.Delivered.Created != 1 {
		t.Fatalf("allowed run: %+v", r)
	}
	if got := f.mirrorFiles(); got["a.txt"] != "a\n" {
		t.Errorf("mirror: %v", got)
	}
	u, _ := url.Parse(f.rec.URL())
	if u.Hostname() != "127.0.0.1" {
		t.Errorf("receiver not on loopback: %s", u)
	}
}
