package changes_test

import (
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"testing"

	"github.com/docora/docora/internal/changes"
	"github.com/docora/docora/internal/gitsource"
)

// TestOwnTokenOnly (SPEC §3): a link is checked with its own credentials, so a link whose
// token cannot read a private repository fails even though another link's token already
// brought every object into the shared cache — also when its head has not moved.
func TestOwnTokenOnly(t *testing.T) {
	h := newHarness(t, "acme/private.git")
	h.repo.WriteFile("secret.md", "classified\n")
	h.repo.Commit("first")
	h.repo.Push()
	h.git.RequireToken("acme/private.git", "right-token-0123")

	good := h.link("right-token-0123", nil, nil)
	wrong := h.link("wrong-token-4567", nil, nil)
	anonymous := h.link("", nil, nil)
	h.step(good, create("secret.md", "classified\n"))
	packs := h.git.UploadPacks()
	h.src.counts()

	for name, app := range map[string]string{"wrong token": wrong, "no token": anonymous} {
		p, err := h.detect(app)
		if !errors.Is(err, gitsource.ErrAuthentication) {
			t.Errorf("%s: plan %+v, err %v; want an authentication error", name, p, err)
		}
		if len(p.Changes) != 0 {
			t.Errorf("%s: got changes %v", name, p.Changes)
		}
		if err != nil && strings.Contains(err.Error(), "wrong-token-4567") {
			t.Errorf("%s: error shows the token: %v", name, err)
		}
	}
	if d := h.git.UploadPacks() - packs; d != 0 {
		t.Errorf("refused links made %d upload-pack requests", d)
	}
	if reads, trees := h.src.counts(); len(reads) != 0 || trees != 0 {
		t.Errorf("refused links read %d blobs and %d trees from the cache", len(reads), trees)
	}

	// The same link, synced at the current head, loses access: the unchanged shortcut does not
	// hide it.
	h.git.RequireToken("acme/private.git", "rotated-token-89")
	if p, err := h.detect(good); !errors.Is(err, gitsource.ErrAuthentication) {
		t.Errorf("revoked token at an unchanged head: plan %+v, err %v", p, err)
	}
}

// TestErrorsScrubbed: a remote that echoes the credentials it refused (some proxies and
// servers do) never gets them into detection errors.
func TestErrorsScrubbed(t *testing.T) {
	h := newHarness(t, "acme/echo.git")
	h.repo.WriteFile("a.txt", "a\n")
	h.repo.Commit("first")
	h.repo.Push()

	const token = "ghp_leakyToken0123456789abcdef"
	target, _ := url.Parse(h.git.BaseURL())
	proxy := httputil.NewSingleHostReverseProxy(target)
	echo := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		user, pass, _ := r.BasicAuth()
		if pass != "the-right-one" {
			w.Header().Set("WWW-Authenticate", `Basic realm="echo"`)
			w.WriteHeader(http.StatusUnauthorized)
			fmt.Fprintf(w, "bad credentials %s:%s (Authorization: %s) for %s", user, pass, r.Header.Get("Authorization"), r.URL)
			return
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(echo.Close)

	app := h.link(token, nil, nil)
	l := h.view(app)
	l.Repo.CloneURL = echo.URL + "/acme/echo.git"
	_, err := (&changes.Detector{Source: h.cache, Blobs: h.st, State: h.st.DeliveryState}).Detect(h.ctx, l)
	if !errors.Is(err, gitsource.ErrAuthentication) {
		t.Fatalf("err = %v, want an authentication error", err)
	}
	basic := base64.StdEncoding.EncodeToString([]byte("x-access-token:" + token))
	for _, secret := range []string{token, basic} {
		if strings.Contains(err.Error(), secret) {
			t.Errorf("error contains %q: %v", secret, err)
		}
	}
	// The remote's message is kept (it helps the user), so the secrets were really there to scrub.
	if !strings.Contains(err.Error(), "bad credentials x-access-token:***") {
		t.Errorf("error lacks the scrubbed remote message: %v", err)
	}
}
