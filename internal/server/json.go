package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/docora/docora/internal/github"
	"github.com/docora/docora/internal/gitsource"
	"github.com/docora/docora/internal/netguard"
	"github.com/docora/docora/internal/registry"
	"github.com/docora/docora/internal/store"
)

// httpError is an answer other than success, with the message the client reads.
type httpError struct {
	status int
	msg    string
	header http.Header // extra headers (WWW-Authenticate, Retry-After)
}

func (e *httpError) Error() string { return e.msg }

func errorf(status int, format string, args ...any) *httpError {
	return &httpError{status: status, msg: fmt.Sprintf(format, args...)}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	body := []byte(`{"error":"internal error"}` + "\n")
	if err := enc.Encode(v); err != nil {
		status = http.StatusInternalServerError
	} else {
		body = buf.Bytes()
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write(body) // a client that went away is not the server's failure
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"error": msg})
}

// apiFunc is an API handler: it writes its success itself and returns an error otherwise.
type apiFunc func(w http.ResponseWriter, r *http.Request) error

// api adapts an apiFunc: it bounds the request's work and turns its error into the JSON
// error answer with the status the error's kind calls for.
func (s *Server) api(h apiFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), requestTimeout)
		defer cancel()
		r = r.WithContext(ctx)
		r.Body = http.MaxBytesReader(w, r.Body, s.maxBody)
		err := h(w, r)
		if err == nil {
			return
		}
		he := s.classify(r, err)
		for k, vs := range he.header {
			for _, v := range vs {
				w.Header().Add(k, v)
			}
		}
		writeError(w, he.status, he.msg)
	})
}

// classify maps an error of the registry, the verifiers or the store to an HTTP answer.
// Their messages are written for users and carry no secret, so they are passed on; anything
// unexpected is logged and answered with a bare 500.
func (s *Server) classify(r *http.Request, err error) *httpError {
	var he *httpError
	var ve *registry.ValidationError
	var rle *github.RateLimitError
	switch {
	case errors.As(err, &he):
		return he
	case errors.As(err, &ve):
		if ve.Field == "name" {
			ve = &registry.ValidationError{Field: "app_name", Msg: ve.Msg}
		}
		return errorf(http.StatusUnprocessableEntity, "%s", ve.Error())
	case errors.Is(err, registry.ErrNoBranch):
		return errorf(http.StatusUnprocessableEntity, "cannot determine the remote's default branch (it advertises none): pass \"branch\"")
	case errors.Is(err, github.ErrInvalidURL), errors.Is(err, gitsource.ErrUnsupportedURL):
		return errorf(http.StatusUnprocessableEntity, "github_url: %s", err.Error())
	case errors.Is(err, netguard.ErrForbiddenAddress):
		return errorf(http.StatusUnprocessableEntity, "github_url: %s", err.Error())
	case errors.As(err, &rle):
		// The upstream's limit, not this client's: 503 with when to come back, so clients can
		// tell it from our own 429.
		e := errorf(http.StatusServiceUnavailable, "%s", err.Error())
		if !rle.Reset.IsZero() {
			secs := int(time.Until(rle.Reset).Seconds() + 1)
			e.header = http.Header{"Retry-After": {strconv.Itoa(max(secs, 1))}}
		}
		return e
	case errors.Is(err, github.ErrRateLimited):
		return errorf(http.StatusServiceUnavailable, "%s", err.Error())
	case errors.Is(err, github.ErrUnreachable), errors.Is(err, gitsource.ErrUnreachable):
		return errorf(http.StatusBadGateway, "%s", err.Error())
	case errors.Is(err, registry.ErrTokenCannotRead), errors.Is(err, github.ErrBadCredentials):
		return errorf(http.StatusUnprocessableEntity, "github_token: %s", err.Error())
	case errors.Is(err, github.ErrNotFound), errors.Is(err, github.ErrForbidden),
		errors.Is(err, gitsource.ErrNotFound), errors.Is(err, gitsource.ErrAuthentication):
		return errorf(http.StatusNotFound, "%s", err.Error())
	case errors.Is(err, gitsource.ErrBranchNotFound):
		return errorf(http.StatusUnprocessableEntity, "branch: %s", err.Error())
	case errors.Is(err, store.ErrNotFound):
		return errorf(http.StatusNotFound, "not found")
	case errors.Is(err, context.Canceled) && r.Context().Err() != nil:
		return errorf(http.StatusServiceUnavailable, "the request was canceled") // the client has gone
	case errors.Is(err, context.DeadlineExceeded) && r.Context().Err() != nil:
		return errorf(http.StatusServiceUnavailable, "the request took too long; try again later")
	}
	s.log.Error("request failed", "method", r.Method, "route", r.Pattern, "error", err)
	return errorf(http.StatusInternalServerError, "internal error")
}

// decodeJSON reads the request's body into dst, strictly: a JSON object of dst's fields and
// nothing else. Unparseable input is 400; well-formed JSON of the wrong shape (unknown field,
// wrong type, not an object) is 422, like any other invalid input; too large is 413; another
// media type is 415.
func decodeJSON(r *http.Request, dst any, limit int64) error {
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		return errorf(http.StatusUnsupportedMediaType, "Content-Type must be application/json")
	}
	if r.ContentLength > limit {
		return tooLarge(limit)
	}
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return decodeError(err, limit)
	}
	if err := dec.Decode(new(json.RawMessage)); !errors.Is(err, io.EOF) {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return tooLarge(limit)
		}
		return errorf(http.StatusBadRequest, "malformed JSON: the body must hold a single JSON object")
	}
	return nil
}

func tooLarge(limit int64) error {
	return errorf(http.StatusRequestEntityTooLarge, "request body is larger than %d bytes", limit)
}

func decodeError(err error, limit int64) error {
	var (
		mbe *http.MaxBytesError
		se  *json.SyntaxError
		te  *json.UnmarshalTypeError
	)
	switch {
	case errors.As(err, &mbe):
		return tooLarge(limit)
	case errors.Is(err, io.EOF):
		return errorf(http.StatusBadRequest, "request body is empty: send a JSON object")
	case errors.As(err, &se):
		return errorf(http.StatusBadRequest, "malformed JSON at byte %d: %s", se.Offset, strings.TrimPrefix(se.Error(), "json: "))
	case errors.Is(err, io.ErrUnexpectedEOF):
		return errorf(http.StatusBadRequest, "malformed JSON: unexpected end of the body")
	case errors.As(err, &te):
		if te.Field == "" {
			return errorf(http.StatusUnprocessableEntity, "the body must be a JSON object, not %s", article(te.Value))
		}
		return errorf(http.StatusUnprocessableEntity, "%s: must be %s, not %s", te.Field, jsonType(te.Type.Kind().String()), article(te.Value))
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return errorf(http.StatusUnprocessableEntity, "unknown field %s", strings.TrimPrefix(err.Error(), "json: unknown field "))
	}
	return errorf(http.StatusBadRequest, "malformed JSON: %s", strings.TrimPrefix(err.Error(), "json: "))
}

func jsonType(kind string) string {
	switch kind {
	case "string":
		return "a string"
	case "bool":
		return "a boolean"
	case "slice", "array":
		return "an array"
	case "struct", "map":
		return "an object"
	}
	return "a number"
}

func article(v string) string {
	if f := strings.Fields(v); len(f) > 0 {
		v = f[0] // "number 5" → "number"
	}
	switch v {
	case "array", "object":
		return "an " + v
	case "":
		return "this value"
	}
	return "a " + v
}
