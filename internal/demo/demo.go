// Package demo runs docora's whole main job on one machine, offline and without setup (SPEC §9):
// a sample git repository served over local smart HTTP, the reference receiver, a store with
// one app watching that repository, two syncs around a new commit, and a byte-for-byte check
// of the mirror. `docora demo` prints what it returns.
package demo

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"time"

	"github.com/docora/docora/internal/config"
	"github.com/docora/docora/internal/delivery"
	"github.com/docora/docora/internal/engine"
	"github.com/docora/docora/internal/github"
	"github.com/docora/docora/internal/gitserve"
	"github.com/docora/docora/internal/gitsource"
	"github.com/docora/docora/internal/mirror"
	"github.com/docora/docora/internal/netguard"
	"github.com/docora/docora/internal/registry"
	"github.com/docora/docora/internal/secrets"
	"github.com/docora/docora/internal/store"
	"github.com/docora/docora/pkg/webhook"
)

// Options configure Run.
type Options struct {
	// Dir holds everything the demo creates: home/ (the store, caches and key file),
	// repos/ (the sample repository) and mirror/ (the receiver's directory).
	Dir string
	// Version is sent in the webhooks' User-Agent.
	Version string
	// Logger receives docora's own log lines (default: discard).
	Logger *slog.Logger
}

// Summary is what the demo did (`docora demo --json`).
type Summary struct {
	Dir          string       `json:"dir"`
	Home         string       `json:"home"`
	Repository   Repository   `json:"repository"`
	App          App          `json:"app"`
	MirrorDir    string       `json:"mirror_dir"`
	Syncs        []Sync       `json:"syncs"`
	Verification Verification `json:"verification"`
	DurationMS   int64        `json:"duration_ms"`
}

// Repository is the sample repository as registered.
type Repository struct {
	RepositoryID string `json:"repository_id"`
	URL          string `json:"url"`
	Branch       string `json:"branch"`
}

// App is the demo's app, whose base URL is the reference receiver.
type App struct {
	AppID   string `json:"app_id"`
	Name    string `json:"name"`
	BaseURL string `json:"base_url"`
}

// Sync is one sync of the demo's link and what the receiver applied during it.
type Sync struct {
	CommitSHA  string    `json:"commit_sha"`
	Message    string    `json:"message"`
	Outcome    string    `json:"outcome"`
	Files      int       `json:"files"`
	Created    int       `json:"created"`
	Updated    int       `json:"updated"`
	Deleted    int       `json:"deleted"`
	Requests   int       `json:"requests"` // webhook requests the receiver answered, chunks included
	Changes    []Applied `json:"changes"`
	Error      string    `json:"error,omitempty"`
	DurationMS int64     `json:"duration_ms"`
}

// Applied is one change as the receiver applied it.
type Applied struct {
	Type   string `json:"type"` // create, update, delete
	Path   string `json:"path"`
	Size   int64  `json:"size,omitempty"`
	Binary bool   `json:"binary,omitempty"`
	Chunks int    `json:"chunks,omitempty"` // requests the file arrived in, when it was chunked
	Result string `json:"result"`           // the receiver's answer: applied, deleted, ...
}

// Verification compares the mirror with the tree of the last commit.
type Verification struct {
	CommitSHA   string   `json:"commit_sha"`
	Files       int      `json:"files"`
	Bytes       int64    `json:"bytes"`
	Matches     bool     `json:"matches"`
	Differences []string `json:"differences"`
}

// ErrMismatch is returned (wrapped) when the mirror differs from the repository.
var ErrMismatch = errors.New("the mirror does not match the repository")

const (
	owner, name = "acme", "handbook"
	appName     = "Demo receiver"
	appEmail    = "demo@example.com"
)

// Run runs the demo in o.Dir and returns its summary. A summary is returned whenever the syncs
// ran, also when the mirror does not match (the error then wraps ErrMismatch).
func Run(ctx context.Context, o Options) (*Summary, error) {
	start := time.Now()
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	dir, err := filepath.Abs(o.Dir)
	if err != nil {
		return nil, err
	}
	sum := &Summary{Dir: dir, Home: filepath.Join(dir, "home"), MirrorDir: filepath.Join(dir, "mirror")}
	repoDir := filepath.Join(dir, "repos", owner, name)
	// Local addresses only, and plain http: the demo's policy, never the user's configuration.
	policy := netguard.Policy{AllowPrivate: true}

	st, err := openStore(ctx, sum.Home)
	if err != nil {
		return nil, err
	}
	defer st.Close()

	src, err := newSampleRepo(repoDir)
	if err != nil {
		return nil, err
	}
	first, err := src.commit(firstCommit)
	if err != nil {
		return nil, err
	}

	gitURL, stopGit, err := serve(gitserve.NewHandler(filepath.Join(dir, "repos")), log)
	if err != nil {
		return nil, err
	}
	defer stopGit()

	key := secrets.NewClientAuthKey()
	h, err := mirror.New(mirror.Options{Dir: sum.MirrorDir, Key: []byte(key), Logger: log,
		Reassembler: webhook.ReassemblerOptions{Dir: dir}})
	if err != nil {
		return nil, err
	}
	defer h.Close()
	rec := &recorder{next: h}
	recvURL, stopRecv, err := serve(rec, log)
	if err != nil {
		return nil, err
	}
	defer stopRecv()

	caches := gitsource.Open(filepath.Join(sum.Home, "cache"))
	ghURL, _ := url.Parse(config.DefaultGitHubURL)
	verifier, err := github.NewVerifier(config.DefaultGitHubAPIURL, nil, gitsource.BranchLister{Policy: policy})
	if err != nil {
		return nil, err
	}
	reg := &registry.Service{Store: st, Verifier: verifier, Caches: caches, GitHubURL: ghURL, Policy: policy, Logger: log}
	onb, err := reg.Onboard(ctx, registry.AppInput{Name: appName, Email: appEmail, BaseURL: recvURL, ClientAuthKey: key,
		Description: "the reference receiver started by docora demo"})
	if err != nil {
		return nil, fmt.Errorf("onboard the demo app: %w", err)
	}
	sum.App = App{AppID: onb.App.ID, Name: appName, BaseURL: recvURL}
	link, _, err := reg.AddRepository(ctx, onb.App.ID, registry.RepoInput{URL: gitURL + "/" + owner + "/" + name})
	if err != nil {
		return nil, fmt.Errorf("register the sample repository: %w", err)
	}
	sum.Repository = Repository{RepositoryID: link.Repo.ID, URL: link.Repo.URL, Branch: link.Repo.Branch}

	client, err := delivery.NewClient(delivery.ClientOptions{Version: o.Version})
	if err != nil {
		return nil, err
	}
	defer client.CloseIdleConnections()
	eng := &engine.Engine{Store: st, Git: caches, Client: client, Policy: policy, Logger: log,
		Options: engine.Options{MaxAttempts: 3, BackoffBase: 100 * time.Millisecond}}

	syncOnce := func(c commitInfo) error {
		mark := rec.mark()
		r := eng.SyncLink(ctx, onb.App.ID, link.Repo.ID)
		s := Sync{CommitSHA: r.CommitSHA, Message: c.message, Outcome: r.Outcome, Files: r.Files,
			Created: r.Delivered.Created, Updated: r.Delivered.Updated, Deleted: r.Delivered.Deleted,
			Error: r.Error, DurationMS: r.DurationMS}
		s.Requests, s.Changes = rec.since(mark, sum.MirrorDir)
		sum.Syncs = append(sum.Syncs, s)
		switch {
		case r.Outcome != engine.OutcomeSynced:
			return fmt.Errorf("sync of commit %s: %s %s%s", short(c.sha), r.Outcome, r.Error, r.Reason)
		case r.CommitSHA != c.sha:
			return fmt.Errorf("sync delivered commit %s, want %s", short(r.CommitSHA), short(c.sha))
		}
		return nil
	}
	if err := syncOnce(first); err != nil {
		return sum, err
	}
	second, err := src.commit(secondCommit)
	if err != nil {
		return sum, err
	}
	if err := syncOnce(second); err != nil {
		return sum, err
	}

	sum.Verification, err = verify(src, second.sha, sum.MirrorDir)
	sum.DurationMS = time.Since(start).Milliseconds()
	if err != nil {
		return sum, err
	}
	if !sum.Verification.Matches {
		return sum, fmt.Errorf("%w: commit %s, %d differences", ErrMismatch, short(second.sha), len(sum.Verification.Differences))
	}
	return sum, nil
}

// openStore opens (creating) the demo's store with a key file in home, so that a kept demo
// can be inspected with `docora --home`.
func openStore(ctx context.Context, home string) (*store.Store, error) {
	st, err := store.Open(ctx, filepath.Join(home, "docora.db"))
	if err != nil {
		return nil, err
	}
	key, err := secrets.LoadKey(home, "", true)
	if err == nil {
		var box *secrets.Box
		if box, err = secrets.NewBox(key); err == nil {
			err = st.UseKey(ctx, box)
		}
	}
	if err != nil {
		st.Close()
		return nil, err
	}
	return st, nil
}

// serve serves h on a free loopback port and returns its base URL and a stop function.
func serve(h http.Handler, log *slog.Logger) (string, func(), error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second,
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(ln)
	}()
	stop := func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		<-done
	}
	return "http://" + ln.Addr().String(), stop, nil
}

func short(sha string) string {
	if len(sha) > 12 {
		return sha[:12]
	}
	return sha
}
