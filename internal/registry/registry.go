// Package registry holds the operations on apps and repositories that the CLI and the HTTP API
// share: validation, verification of remotes, and the store writes that go with them.
package registry

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/mail"
	"net/url"
	"strings"
	"unicode/utf8"

	"github.com/docora/docora/internal/github"
	"github.com/docora/docora/internal/netguard"
	"github.com/docora/docora/internal/secrets"
	"github.com/docora/docora/internal/store"
)

// Verifier checks that a repository exists and can be read with a token.
type Verifier interface {
	Verify(ctx context.Context, u github.RepoURL, token string) (github.RepoInfo, error)
}

// CacheRemover deletes a repository's local object cache.
type CacheRemover interface {
	Remove(key string) error
}

// Service performs registry operations.
type Service struct {
	Store     *store.Store
	Verifier  Verifier
	Caches    CacheRemover
	GitHubURL *url.URL
	Policy    netguard.Policy
	Logger    *slog.Logger
}

// ValidationError is invalid input: the HTTP API answers 422, the CLI exits 1.
type ValidationError struct {
	Field string
	Msg   string
}

func (e *ValidationError) Error() string {
	if e.Field == "" {
		return e.Msg
	}
	return e.Field + ": " + e.Msg
}

func invalid(field, format string, args ...any) error {
	return &ValidationError{Field: field, Msg: fmt.Sprintf(format, args...)}
}

// Limits of app fields (SPEC §7).
const (
	MinNameLen        = 3
	MaxNameLen        = 100
	MaxDescriptionLen = 500
	MinKeyLen         = 16
	MaxKeyLen         = 500
)

// AppInput is what onboarding takes. ClientAuthKey "" means: generate one.
type AppInput struct {
	Name          string
	Email         string
	Website       string
	Description   string
	BaseURL       string
	ClientAuthKey string
}

// Onboarded is the one-time result of onboarding.
type Onboarded struct {
	App          store.App
	Token        string
	GeneratedKey string // set when docora generated the client auth key
}

func (s *Service) validateApp(name, email, website, description, baseURL string) error {
	if n := utf8.RuneCountInString(strings.TrimSpace(name)); n < MinNameLen || n > MaxNameLen {
		return invalid("name", "must be %d to %d characters, got %d", MinNameLen, MaxNameLen, n)
	}
	if addr, err := mail.ParseAddress(email); err != nil || addr.Address != email || !strings.Contains(email[strings.LastIndexByte(email, '@'):], ".") {
		return invalid("email", "%q is not a valid email address", email)
	}
	if website != "" {
		u, err := url.Parse(website)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return invalid("website", "%q is not an http(s) URL", website)
		}
	}
	if n := utf8.RuneCountInString(description); n > MaxDescriptionLen {
		return invalid("description", "must be at most %d characters, got %d", MaxDescriptionLen, n)
	}
	return s.validateBaseURL(baseURL)
}

func (s *Service) validateBaseURL(baseURL string) error {
	if baseURL == "" {
		return invalid("base_url", "is required")
	}
	u, err := url.Parse(baseURL)
	if err != nil || u.Host == "" {
		return invalid("base_url", "%q is not a valid URL", baseURL)
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return invalid("base_url", "must not contain credentials, a query or a fragment")
	}
	if err := netguard.CheckURL(s.Policy, baseURL); err != nil {
		return invalid("base_url", "%v", err)
	}
	return nil
}

// ValidateClientAuthKey checks the HMAC key's length.
func ValidateClientAuthKey(key string) error {
	if n := utf8.RuneCountInString(key); n < MinKeyLen || n > MaxKeyLen {
		return invalid("client_auth_key", "must be %d to %d characters, got %d", MinKeyLen, MaxKeyLen, n)
	}
	return nil
}

// Onboard validates and creates an app with a new token.
func (s *Service) Onboard(ctx context.Context, in AppInput) (Onboarded, error) {
	in.Name = strings.TrimSpace(in.Name)
	if err := s.validateApp(in.Name, in.Email, in.Website, in.Description, in.BaseURL); err != nil {
		return Onboarded{}, err
	}
	var out Onboarded
	key := in.ClientAuthKey
	if key == "" {
		key = secrets.NewClientAuthKey()
		out.GeneratedKey = key
	} else if err := ValidateClientAuthKey(key); err != nil {
		return Onboarded{}, err
	}
	out.Token = secrets.NewAppToken()
	out.App = store.App{
		ID: secrets.NewID("app_"), Name: in.Name, Email: in.Email, Website: in.Website,
		Description: in.Description, BaseURL: in.BaseURL, ClientAuthKey: []byte(key),
		TokenHash: secrets.HashToken(out.Token),
	}
	if err := s.Store.CreateApp(ctx, &out.App); err != nil {
		return Onboarded{}, err
	}
	s.log().Info("app onboarded", "app_id", out.App.ID, "name", out.App.Name)
	return out, nil
}

// AppUpdate lists the fields to change; nil means unchanged.
type AppUpdate struct {
	Name, Email, Website, Description, BaseURL *string
}

// UpdateApp changes an app's editable fields.
func (s *Service) UpdateApp(ctx context.Context, id string, u AppUpdate) (store.App, error) {
	a, err := s.Store.GetApp(ctx, id)
	if err != nil {
		return store.App{}, err
	}
	set := func(dst *string, v *string) {
		if v != nil {
			*dst = *v
		}
	}
	set(&a.Name, u.Name)
	set(&a.Email, u.Email)
	set(&a.Website, u.Website)
	set(&a.Description, u.Description)
	set(&a.BaseURL, u.BaseURL)
	a.Name = strings.TrimSpace(a.Name)
	if err := s.validateApp(a.Name, a.Email, a.Website, a.Description, a.BaseURL); err != nil {
		return store.App{}, err
	}
	if err := s.Store.UpdateApp(ctx, &a); err != nil {
		return store.App{}, err
	}
	return a, nil
}

// RotateToken issues a new bearer token; the old one stops working at once.
func (s *Service) RotateToken(ctx context.Context, id string) (string, error) {
	tok := secrets.NewAppToken()
	if err := s.Store.SetAppTokenHash(ctx, id, secrets.HashToken(tok)); err != nil {
		return "", err
	}
	s.log().Info("app token rotated", "app_id", id)
	return tok, nil
}

// RemoveApp deletes the app, its links and delivery state, and the repositories (and caches)
// nobody watches any more.
func (s *Service) RemoveApp(ctx context.Context, id string) error {
	orphans, err := s.Store.DeleteApp(ctx, id)
	if err != nil {
		return err
	}
	s.removeCaches(orphans...)
	s.log().Info("app removed", "app_id", id, "repositories_removed", len(orphans))
	return nil
}

func (s *Service) removeCaches(ids ...string) {
	if s.Caches == nil {
		return
	}
	for _, id := range ids {
		if err := s.Caches.Remove(id); err != nil {
			s.log().Warn("remove repository cache", "repository_id", id, "error", err)
		}
	}
}

// RepoInput is what registering a repository takes.
type RepoInput struct {
	URL     string
	Branch  string
	Token   string
	Include []string
	Exclude []string
}

// ErrNoBranch means the remote advertises no default branch and none was given.
var ErrNoBranch = errors.New("cannot determine the remote's default branch: pass --branch")

// AddRepository verifies the repository with the given token and records that the app watches
// it. Re-registering resets the link. It reports whether the link already existed.
func (s *Service) AddRepository(ctx context.Context, appID string, in RepoInput) (store.LinkView, bool, error) {
	if _, err := s.Store.GetApp(ctx, appID); err != nil {
		return store.LinkView{}, false, err
	}
	ru, err := github.ParseRepoURL(strings.TrimSpace(in.URL), s.GitHubURL)
	if err != nil {
		return store.LinkView{}, false, &ValidationError{Msg: err.Error()}
	}
	for _, p := range append(append([]string{}, in.Include...), in.Exclude...) {
		if strings.TrimSpace(p) == "" || strings.ContainsAny(p, "\x00\n\r") {
			return store.LinkView{}, false, invalid("pattern", "%q is not a valid pattern", p)
		}
	}
	if in.Branch != "" && !validBranch(in.Branch) {
		return store.LinkView{}, false, invalid("branch", "%q is not a valid branch name", in.Branch)
	}
	info, err := s.Verifier.Verify(ctx, ru, in.Token)
	if err != nil {
		return store.LinkView{}, false, err
	}
	branch := in.Branch
	if branch == "" {
		branch = info.DefaultBranch
	}
	if branch == "" {
		return store.LinkView{}, false, ErrNoBranch
	}
	key := info.URL
	if ru.GitHub {
		key = strings.ToLower(key)
	}
	v, existed, err := s.Store.RegisterLink(ctx, store.Registration{
		Repo: store.Repository{
			ID: secrets.NewID("repo_"), URL: info.URL, URLKey: key, CloneURL: info.CloneURL,
			Owner: info.Owner, Name: info.Name, Branch: branch, GitHub: ru.GitHub, Private: info.Private,
		},
		AppID: appID, GitToken: in.Token, Include: in.Include, Exclude: in.Exclude,
	})
	if err != nil {
		return store.LinkView{}, false, err
	}
	s.log().Info("repository registered", "app_id", appID, "repository_id", v.Repo.ID, "url", v.Repo.URL,
		"branch", branch, "reset", existed)
	return v, existed, nil
}

func validBranch(b string) bool {
	if strings.HasPrefix(b, "-") || strings.HasPrefix(b, "/") || strings.HasSuffix(b, "/") ||
		strings.HasSuffix(b, ".lock") || strings.Contains(b, "..") || strings.Contains(b, "//") || strings.Contains(b, "@{") {
		return false
	}
	for _, r := range b {
		if r < 0x20 || r == 0x7f || strings.ContainsRune(" ~^:?*[\\", r) {
			return false
		}
	}
	return true
}

// RemoveRepository stops the app watching the repository; an unwatched repository and its
// cache are removed.
func (s *Service) RemoveRepository(ctx context.Context, appID, repoID string) error {
	gone, err := s.Store.DeleteLink(ctx, appID, repoID)
	if err != nil {
		return err
	}
	if gone {
		s.removeCaches(repoID)
	}
	s.log().Info("repository unwatched", "app_id", appID, "repository_id", repoID, "repository_removed", gone)
	return nil
}

// ErrTokenCannotRead means a new git token was refused because it cannot read the repository.
var ErrTokenCannotRead = errors.New("the token cannot read the repository")

// SetToken replaces the link's git token after checking that the token can read the
// repository; it resets the link's error state and the repository's circuit breaker.
func (s *Service) SetToken(ctx context.Context, appID, repoID, token string) error {
	v, err := s.Store.GetLink(ctx, appID, repoID)
	if err != nil {
		return err
	}
	ru, err := github.ParseRepoURL(v.Repo.URL, s.GitHubURL)
	if err != nil {
		return fmt.Errorf("stored repository URL: %w", err)
	}
	if _, err := s.Verifier.Verify(ctx, ru, token); err != nil {
		return fmt.Errorf("%w: %w", ErrTokenCannotRead, err)
	}
	if err := s.Store.SetLinkToken(ctx, appID, repoID, token); err != nil {
		return err
	}
	s.log().Info("git token updated", "app_id", appID, "repository_id", repoID)
	return nil
}

// ResetLink clears a link's failure state so the next sync tries it at once.
func (s *Service) ResetLink(ctx context.Context, appID, repoID string) error {
	return s.Store.ResetLink(ctx, appID, repoID)
}

func (s *Service) log() *slog.Logger {
	if s.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return s.Logger.With("component", "registry")
}
