package registry

import (
	"time"

	"github.com/docora/docora/internal/store"
)

// The JSON shapes below are shared by `--json` output and the HTTP API, so field names stay
// the same everywhere.

// AppJSON is an app as shown by `app list/show --json`. It never carries a secret.
type AppJSON struct {
	AppID       string `json:"app_id"`
	Name        string `json:"name"`
	Email       string `json:"email"`
	Website     string `json:"website"`
	Description string `json:"description"`
	BaseURL     string `json:"base_url"`
	CreatedAt   string `json:"created_at"`
	UpdatedAt   string `json:"updated_at"`
}

// AppView returns the JSON shape of a.
func AppView(a store.App) AppJSON {
	return AppJSON{AppID: a.ID, Name: a.Name, Email: a.Email, Website: a.Website, Description: a.Description,
		BaseURL: a.BaseURL, CreatedAt: FormatTime(a.CreatedAt), UpdatedAt: FormatTime(a.UpdatedAt)}
}

// OnboardJSON is the one-time result of onboarding. ClientAuthKey is present only when docora
// generated the key.
type OnboardJSON struct {
	AppID         string `json:"app_id"`
	Token         string `json:"token"`
	CreatedAt     string `json:"created_at"`
	ClientAuthKey string `json:"client_auth_key,omitempty"`
}

// RegisteredJSON is the result of registering a repository (CLI `repo add` and POST
// /api/repositories).
type RegisteredJSON struct {
	RepositoryID string `json:"repository_id"`
	GitHubURL    string `json:"github_url"`
	Owner        string `json:"owner"`
	Name         string `json:"name"`
	Branch       string `json:"branch"`
	IsPrivate    bool   `json:"is_private"`
	CreatedAt    string `json:"created_at"`
}

// RegisteredView returns the registration shape of a link.
func RegisteredView(v store.LinkView) RegisteredJSON {
	return RegisteredJSON{RepositoryID: v.Repo.ID, GitHubURL: v.Repo.URL, Owner: v.Repo.Owner, Name: v.Repo.Name,
		Branch: v.Repo.Branch, IsPrivate: v.Repo.Private, CreatedAt: FormatTime(v.Repo.CreatedAt)}
}

// RepositoryJSON is one watched repository with its sync status: the API's repository item.
type RepositoryJSON struct {
	RepositoryID     string   `json:"repository_id"`
	GitHubURL        string   `json:"github_url"`
	Owner            string   `json:"owner"`
	Name             string   `json:"name"`
	Branch           string   `json:"branch"`
	IsPrivate        bool     `json:"is_private"`
	Status           string   `json:"status"`
	CommitSHA        *string  `json:"commit_sha"`
	FilesDelivered   int      `json:"files_delivered"`
	SkippedPaths     int      `json:"skipped_paths"`
	LastScannedAt    *string  `json:"last_scanned_at"`
	RetryCount       int      `json:"retry_count"`
	LastError        *string  `json:"last_error"`
	CircuitOpenUntil *string  `json:"circuit_open_until"`
	Include          []string `json:"include"`
	Exclude          []string `json:"exclude"`
	CreatedAt        string   `json:"created_at"`
}

// StatusJSON is a repository item plus the app that watches it (`status --json`,
// `repo list --json`).
type StatusJSON struct {
	AppID string `json:"app_id"`
	RepositoryJSON
}

// RepositoryView returns the repository item of a link.
func RepositoryView(v store.LinkView) RepositoryJSON {
	return RepositoryJSON{
		RepositoryID: v.Repo.ID, GitHubURL: v.Repo.URL, Owner: v.Repo.Owner, Name: v.Repo.Name,
		Branch: v.Repo.Branch, IsPrivate: v.Repo.Private, Status: v.Status,
		CommitSHA: nullString(v.CommitSHA), FilesDelivered: v.FilesDelivered, SkippedPaths: v.SkippedPaths,
		LastScannedAt: nullTime(v.LastScannedAt), RetryCount: v.RetryCount, LastError: nullString(v.LastError),
		CircuitOpenUntil: nullTime(v.Repo.CircuitOpenUntil), Include: v.Include, Exclude: v.Exclude,
		CreatedAt: FormatTime(v.CreatedAt),
	}
}

// StatusView returns the status item of a link.
func StatusView(v store.LinkView) StatusJSON {
	return StatusJSON{AppID: v.AppID, RepositoryJSON: RepositoryView(v)}
}

// FormatTime formats a time as the API does: ISO-8601 UTC with milliseconds.
func FormatTime(t time.Time) string { return t.UTC().Format(store.TimeLayout) }

func nullTime(t *time.Time) *string {
	if t == nil || t.IsZero() {
		return nil
	}
	s := FormatTime(*t)
	return &s
}

func nullString(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}
