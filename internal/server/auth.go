package server

import (
	"errors"
	"net/http"
	"strings"

	"github.com/docora/docora/internal/secrets"
	"github.com/docora/docora/internal/store"
)

// maxTokenLen bounds what is hashed and looked up; real tokens are 71 characters.
const maxTokenLen = 256

// bearerToken returns the token of an "Authorization: Bearer T" header ("" when absent).
func bearerToken(r *http.Request) string {
	scheme, tok, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return ""
	}
	return strings.TrimSpace(tok)
}

// unauthorized is a 401 with the RFC 6750 challenge.
func unauthorized(msg string, invalidToken bool) *httpError {
	challenge := `Bearer realm="docora"`
	if invalidToken {
		challenge += `, error="invalid_token"`
	}
	return &httpError{status: http.StatusUnauthorized, msg: msg, header: http.Header{"WWW-Authenticate": {challenge}}}
}

// hashSecret is the value compared in constant time for the admin token.
func hashSecret(s string) string { return secrets.HashToken(s) }

// appFunc is an API handler for an authenticated app.
type appFunc func(w http.ResponseWriter, r *http.Request, app store.App) error

// requireApp authenticates the calling app by its bearer token: one indexed lookup of the
// token's hash, whatever the number of apps, then a constant-time comparison of the hashes.
func (s *Server) requireApp(h appFunc) apiFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		tok := bearerToken(r)
		if tok == "" {
			return unauthorized("missing bearer token: send the app's token as \"Authorization: Bearer <token>\"", false)
		}
		if len(tok) > maxTokenLen {
			return unauthorized("invalid token", true)
		}
		hash := secrets.HashToken(tok)
		app, err := s.store.AppByTokenHash(r.Context(), hash)
		if errors.Is(err, store.ErrNotFound) || err == nil && !secrets.EqualHash(app.TokenHash, hash) {
			return unauthorized("invalid token", true)
		}
		if err != nil {
			return err
		}
		infoOf(r).appID = app.ID
		return h(w, r, app)
	}
}

// requireAdmin checks the onboarding policy: public onboarding needs nothing; otherwise the
// admin token is required, and without one configured onboarding through the API is off.
func (s *Server) requireAdmin(r *http.Request) error {
	if s.public {
		return nil
	}
	if s.adminHash == "" {
		return errorf(http.StatusForbidden, "onboarding through the API is disabled: set DOCORA_ADMIN_TOKEN and send it as "+
			"\"Authorization: Bearer <admin token>\", or start the server with --public-onboarding "+
			"(or onboard with `docora app onboard`)")
	}
	tok := bearerToken(r)
	if tok == "" {
		return unauthorized("missing bearer token: onboarding requires the admin token (DOCORA_ADMIN_TOKEN)", false)
	}
	if !secrets.EqualHash(hashSecret(tok), s.adminHash) {
		return unauthorized("invalid admin token", true)
	}
	return nil
}
