package server

import (
	"context"
	"errors"
	"net/http"
	"runtime"
	"strings"
	"time"

	"github.com/docora/docora/internal/registry"
	"github.com/docora/docora/internal/store"
)

type healthJSON struct {
	Status  string `json:"status"`
	Mode    string `json:"mode,omitempty"`
	Version string `json:"version,omitempty"`
	Time    string `json:"time,omitempty"`
	Error   string `json:"error,omitempty"`
}

// health answers 200 when the store answers a query, 503 otherwise.
func (s *Server) health(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
	defer cancel()
	if err := s.store.Ping(ctx); err != nil {
		s.log.Warn("health check: store unreachable", "error", err)
		writeJSON(w, http.StatusServiceUnavailable, healthJSON{Status: "unavailable", Error: "store unreachable"})
		return
	}
	writeJSON(w, http.StatusOK, healthJSON{Status: "ok", Mode: s.mode, Version: s.version.Version,
		Time: registry.FormatTime(s.now())})
}

// versionJSON has the field names of `docora version --json`.
type versionJSON struct {
	Version   string `json:"version"`
	Commit    string `json:"commit"`
	BuildDate string `json:"build_date"`
	GoVersion string `json:"go_version"`
}

func (s *Server) versionInfo(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, versionJSON{Version: s.version.Version, Commit: s.version.Commit,
		BuildDate: s.version.Date, GoVersion: runtime.Version()})
}

func (s *Server) openAPI(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(s.openapi)
}

// messageJSON is the body of answers that only confirm something.
type messageJSON struct {
	Message      string `json:"message"`
	RepositoryID string `json:"repository_id,omitempty"`
}

type onboardRequest struct {
	BaseURL       string `json:"base_url"`
	AppName       string `json:"app_name"`
	Email         string `json:"email"`
	Website       string `json:"website"`
	Description   string `json:"description"`
	ClientAuthKey string `json:"client_auth_key"`
}

func (s *Server) onboard(w http.ResponseWriter, r *http.Request) error {
	if err := s.requireAdmin(r); err != nil {
		return err
	}
	var req onboardRequest
	if err := decodeJSON(r, &req, s.maxBody); err != nil {
		return err
	}
	if err := required(map[string]string{"base_url": req.BaseURL, "app_name": req.AppName, "email": req.Email,
		"client_auth_key": req.ClientAuthKey}, "base_url", "app_name", "email", "client_auth_key"); err != nil {
		return err
	}
	out, err := s.registry.Onboard(r.Context(), registry.AppInput{Name: req.AppName, Email: req.Email,
		Website: req.Website, Description: req.Description, BaseURL: req.BaseURL, ClientAuthKey: req.ClientAuthKey})
	if err != nil {
		return err
	}
	infoOf(r).appID = out.App.ID
	writeJSON(w, http.StatusCreated, registry.OnboardJSON{AppID: out.App.ID, Token: out.Token,
		CreatedAt: registry.FormatTime(out.App.CreatedAt)})
	return nil
}

// required reports the fields, in order, whose value is empty (absent, null or "").
func required(values map[string]string, order ...string) error {
	var missing []string
	for _, k := range order {
		if values[k] == "" {
			missing = append(missing, k)
		}
	}
	switch len(missing) {
	case 0:
		return nil
	case 1:
		return errorf(http.StatusUnprocessableEntity, "%s: is required", missing[0])
	}
	return errorf(http.StatusUnprocessableEntity, "missing required fields: %s", strings.Join(missing, ", "))
}

type addRepositoryRequest struct {
	GitHubURL   string `json:"github_url"`
	GitHubToken string `json:"github_token"`
	Branch      string `json:"branch"`
}

func (s *Server) addRepository(w http.ResponseWriter, r *http.Request, app store.App) error {
	var req addRepositoryRequest
	if err := decodeJSON(r, &req, s.maxBody); err != nil {
		return err
	}
	if err := required(map[string]string{"github_url": req.GitHubURL}, "github_url"); err != nil {
		return err
	}
	v, _, err := s.registry.AddRepository(r.Context(), app.ID, registry.RepoInput{URL: req.GitHubURL,
		Branch: req.Branch, Token: req.GitHubToken})
	var ve *registry.ValidationError
	if errors.As(err, &ve) && ve.Field == "" {
		return errorf(http.StatusUnprocessableEntity, "github_url: %s", ve.Msg) // the URL did not parse
	}
	if err != nil {
		return err
	}
	w.Header().Set("Location", "/api/repositories/"+v.Repo.ID)
	writeJSON(w, http.StatusCreated, registry.RegisteredView(v))
	return nil
}

func (s *Server) listRepositories(w http.ResponseWriter, r *http.Request, app store.App) error {
	links, err := s.store.ListLinks(r.Context(), store.LinkFilter{AppID: app.ID})
	if err != nil {
		return err
	}
	out := make([]registry.RepositoryJSON, len(links))
	for i, l := range links {
		out[i] = registry.RepositoryView(l)
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// link returns the calling app's link to the repository of the path, or a 404.
func (s *Server) link(r *http.Request, app store.App) (store.LinkView, error) {
	id := r.PathValue("id")
	v, err := s.store.GetLink(r.Context(), app.ID, id)
	if errors.Is(err, store.ErrNotFound) {
		return store.LinkView{}, notWatched(id)
	}
	return v, err
}

func notWatched(id string) error {
	if len(id) > 64 {
		id = id[:64] + "…"
	}
	return errorf(http.StatusNotFound, "repository %q is not watched by this app", id)
}

func (s *Server) getRepository(w http.ResponseWriter, r *http.Request, app store.App) error {
	v, err := s.link(r, app)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, registry.RepositoryView(v))
	return nil
}

func (s *Server) removeRepository(w http.ResponseWriter, r *http.Request, app store.App) error {
	id := r.PathValue("id")
	if err := s.registry.RemoveRepository(r.Context(), app.ID, id); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return notWatched(id)
		}
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

type setTokenRequest struct {
	GitHubToken string `json:"github_token"`
}

func (s *Server) setToken(w http.ResponseWriter, r *http.Request, app store.App) error {
	v, err := s.link(r, app)
	if err != nil {
		return err
	}
	var req setTokenRequest
	if err := decodeJSON(r, &req, s.maxBody); err != nil {
		return err
	}
	if err := required(map[string]string{"github_token": req.GitHubToken}, "github_token"); err != nil {
		return err
	}
	if err := s.registry.SetToken(r.Context(), app.ID, v.Repo.ID, req.GitHubToken); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return notWatched(v.Repo.ID) // unwatched meanwhile
		}
		return err
	}
	writeJSON(w, http.StatusOK, messageJSON{Message: "Token updated successfully"})
	return nil
}

func (s *Server) requestSync(w http.ResponseWriter, r *http.Request, app store.App) error {
	id := r.PathValue("id")
	if err := s.store.RequestSync(r.Context(), app.ID, id); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return notWatched(id)
		}
		return err
	}
	msg := "Sync scheduled: the worker of this server runs it now"
	if s.wake != nil {
		s.wake()
	} else {
		msg = "Sync scheduled: a docora worker (serve --mode worker/all, or sync) runs it at its next pass"
	}
	writeJSON(w, http.StatusAccepted, messageJSON{Message: msg, RepositoryID: id})
	return nil
}
