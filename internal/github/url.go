// Package github turns what a user types as a repository into one canonical identity, and
// verifies that the repository exists and can be read: GitHub repositories through the GitHub
// REST API (go-github), any other git remote by listing its refs.
package github

import (
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// DefaultBaseURL is the GitHub web base used when none is configured (DOCORA_GITHUB_URL).
const DefaultBaseURL = "https://github.com"

// DefaultAPIURL is the GitHub REST API base used when none is configured (DOCORA_GITHUB_API_URL).
const DefaultAPIURL = "https://api.github.com/"

const (
	maxURLLen  = 2048
	maxNameLen = 100 // GitHub's limit for repository names; also applied to owners (lenient)
)

var (
	// ErrInvalidURL is returned (wrapped, with the precise reason) for a repository URL that
	// cannot be registered. Messages never repeat the input, which may carry credentials.
	ErrInvalidURL = errors.New("invalid repository URL")
	// ErrInvalidBaseURL is returned (wrapped) for an unusable GitHub base URL: a configuration
	// error, not a user-input one.
	ErrInvalidBaseURL = errors.New("invalid GitHub base URL")
)

// RepoURL is a parsed, normalised repository address.
type RepoURL struct {
	// URL is the canonical URL, stored and shown (github_url in the API). GitHub:
	// {githubBase}/{owner}/{name} without .git, in the case given until Verify reports the
	// canonical full_name. Others: the input with scheme and host lowercased, a default port
	// dropped and one trailing slash removed; the path is kept as given (a .git suffix too).
	URL string
	// CloneURL is what git fetches. GitHub: URL + ".git" (always over the base's scheme, also for
	// git@github.com:owner/name, because docora authenticates with tokens over HTTPS). Others: URL.
	CloneURL string
	// Host is the lowercased host, with a non-default port; empty for file:// URLs.
	Host string
	// Owner is the path segment before the name; the host name (without port) when there is
	// none, empty for a single-segment file:// path.
	Owner string
	// Name is the last path segment without one ".git" suffix (in any letter case).
	Name string
	// GitHub reports whether the repository is on the configured GitHub: scheme, host and port
	// match the base (for SSH forms the host name alone, as SSH uses its own port).
	GitHub bool
}

// Key identifies the repository for equality: two spellings of one repository have the same key.
// GitHub owner and name are case-insensitive, so the key is the lowercased URL; other remotes'
// paths are case-sensitive and the key is URL itself.
func (r RepoURL) Key() string {
	if r.GitHub {
		return strings.ToLower(r.URL)
	}
	return r.URL
}

// String returns the canonical URL.
func (r RepoURL) String() string { return r.URL }

// ParseGitHubBase validates and normalises a GitHub web base URL (DOCORA_GITHUB_URL), e.g.
// "https://github.com" or "http://127.0.0.1:8080": http or https, a host, no path, credentials,
// query or fragment. The result has a lowercased host and no default port.
func ParseGitHubBase(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("%w %q: %w", ErrInvalidBaseURL, raw, unwrapURLError(err))
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("%w %q: scheme must be http or https", ErrInvalidBaseURL, raw)
	}
	if u.User != nil || u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || u.Opaque != "" {
		return nil, fmt.Errorf("%w %q: must be scheme://host[:port] only", ErrInvalidBaseURL, raw)
	}
	if u.Path != "" && u.Path != "/" {
		return nil, fmt.Errorf("%w %q: must not have a path (GitHub is served at the host's root)", ErrInvalidBaseURL, raw)
	}
	host, err := normaliseHostPort(u.Scheme, u.Host)
	if err != nil {
		return nil, fmt.Errorf("%w %q: %s", ErrInvalidBaseURL, raw, err)
	}
	return &url.URL{Scheme: u.Scheme, Host: host}, nil
}

// ParseRepoURL parses what a user gave as a repository and returns its canonical form.
// githubBase is the GitHub web base (see ParseGitHubBase); nil means DefaultBaseURL.
//
// Accepted: https://github.com/owner/name (with .git and/or one trailing slash),
// github.com/owner/name, owner/name, git@github.com:owner/name.git, ssh://git@github.com/owner/name,
// and for other hosts https://, http://, ssh://, file:// URLs and scp-like user@host:path.
// Errors wrap ErrInvalidURL with the precise reason.
func ParseRepoURL(raw string, githubBase *url.URL) (RepoURL, error) {
	base, err := normaliseBase(githubBase)
	if err != nil {
		return RepoURL{}, err
	}
	if err := checkChars(raw); err != nil {
		return RepoURL{}, err
	}

	// scheme://...
	if i := strings.Index(raw, "://"); i > 0 && isSchemeToken(raw[:i]) {
		return parseURLForm(raw, base)
	}
	// github.com/owner/name: the configured GitHub host without a scheme.
	if len(raw) > len(base.Host) && strings.EqualFold(raw[:len(base.Host)], base.Host) && raw[len(base.Host)] == '/' {
		return parseURLForm(base.Scheme+"://"+raw, base)
	}

	head := raw
	if i := strings.IndexByte(raw, '/'); i >= 0 {
		head = raw[:i]
	}
	if strings.Contains(head, "@") {
		return parseSCP(raw, base)
	}
	if i := strings.IndexByte(head, ':'); i >= 0 {
		if isSchemeToken(head[:i]) {
			return RepoURL{}, invalid("unsupported scheme %q (use https://, http://, ssh://, file://, user@host:path, or owner/name for GitHub)", strings.ToLower(head[:i]))
		}
		return RepoURL{}, invalid("not a repository URL (use https://, http://, ssh://, file://, user@host:path, or owner/name for GitHub)")
	}
	if strings.HasPrefix(raw, "/") || strings.HasPrefix(raw, ".") || strings.HasPrefix(raw, "~") {
		return RepoURL{}, invalid("a local path must be given as a file:// URL (file:///absolute/path)")
	}
	return parseShorthand(raw, base)
}

// parseShorthand handles forms without a scheme, host or user: owner/name means GitHub.
func parseShorthand(raw string, base *url.URL) (RepoURL, error) {
	path := strings.TrimSuffix(raw, "/")
	segs := strings.Split(path, "/")
	switch {
	case len(segs) == 2:
		return githubRepo(base, segs)
	case len(segs) > 2 && strings.ContainsAny(segs[0], ".:"):
		return RepoURL{}, invalid("missing scheme: write https://%s (or owner/name for GitHub)", raw)
	default:
		return RepoURL{}, invalid("expected owner/name, a GitHub URL, or a git URL with a scheme")
	}
}

func parseURLForm(raw string, base *url.URL) (RepoURL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return RepoURL{}, invalid("%s", unwrapURLError(err))
	}
	switch u.Scheme {
	case "https", "http", "ssh", "file":
	default:
		return RepoURL{}, invalid("unsupported scheme %q (use https://, http://, ssh://, file://, user@host:path, or owner/name for GitHub)", u.Scheme)
	}
	if u.User != nil {
		if _, ok := u.User.Password(); ok {
			return RepoURL{}, errPassword()
		}
		if u.Scheme != "ssh" {
			return RepoURL{}, invalid("a user name in an %s:// URL is not accepted (it often is a token); credentials must come from --token-env or --token-file (github_token in the API)", u.Scheme)
		}
		if err := checkUser(u.User.Username()); err != nil {
			return RepoURL{}, err
		}
	}

	var host string
	if u.Scheme == "file" {
		if h := strings.ToLower(u.Host); h != "" && h != "localhost" {
			return RepoURL{}, invalid("a file:// URL must not name a host (use file:///absolute/path)")
		}
	} else {
		if u.Host == "" {
			return RepoURL{}, invalid("missing host")
		}
		if host, err = normaliseHostPort(u.Scheme, u.Host); err != nil {
			return RepoURL{}, invalid("%s", err)
		}
	}

	escPath := u.EscapedPath()
	rel := strings.TrimPrefix(escPath, "/")
	rel = strings.TrimSuffix(rel, "/")

	isGitHub := false
	switch u.Scheme {
	case "ssh":
		isGitHub = hostname(host) == base.Hostname()
	default:
		isGitHub = u.Scheme == base.Scheme && host == base.Host
	}
	if isGitHub {
		if rel == "" {
			return RepoURL{}, invalid("missing owner and repository name: expected %s/owner/name", base)
		}
		segs, err := decodeSegments(strings.Split(rel, "/"))
		if err != nil {
			return RepoURL{}, err
		}
		return githubRepo(base, segs)
	}

	if rel == "" {
		return RepoURL{}, invalid("missing repository path")
	}
	segs, err := decodeSegments(strings.Split(rel, "/"))
	if err != nil {
		return RepoURL{}, err
	}
	userinfo := ""
	if u.User != nil {
		userinfo = u.User.String() + "@"
	}
	canonical := u.Scheme + "://" + userinfo + host + "/" + rel
	return otherRepo(canonical, host, segs)
}

func parseSCP(raw string, base *url.URL) (RepoURL, error) {
	at := strings.IndexByte(raw, '@')
	user, rest := raw[:at], raw[at+1:]
	if strings.Contains(user, ":") {
		return RepoURL{}, invalid("user:password@ credentials (or a scheme without //) are not accepted; credentials must come from --token-env or --token-file (github_token in the API)")
	}
	if err := checkUser(user); err != nil {
		return RepoURL{}, err
	}
	var host, path string
	if strings.HasPrefix(rest, "[") {
		end := strings.IndexByte(rest, ']')
		if end < 0 || end+1 >= len(rest) || rest[end+1] != ':' {
			return RepoURL{}, invalid("scp-like address must be user@host:path")
		}
		host, path = rest[:end+1], rest[end+2:]
	} else {
		colon := strings.IndexByte(rest, ':')
		slash := strings.IndexByte(rest, '/')
		if colon < 0 || (slash >= 0 && slash < colon) {
			return RepoURL{}, invalid("scp-like address must be user@host:path (or use ssh://user@host/path)")
		}
		host, path = rest[:colon], rest[colon+1:]
	}
	if host == "" {
		return RepoURL{}, invalid("missing host")
	}
	host = strings.ToLower(host)
	if err := checkHostname(host); err != nil {
		return RepoURL{}, invalid("%s", err)
	}
	path = strings.TrimSuffix(path, "/")
	rel := strings.TrimPrefix(path, "/")
	if rel == "" {
		return RepoURL{}, invalid("missing repository path after %s:", host)
	}
	segs := strings.Split(rel, "/")
	if err := checkSegments(segs); err != nil {
		return RepoURL{}, err
	}
	if hostname(host) == base.Hostname() {
		return githubRepo(base, segs)
	}
	return otherRepo(user+"@"+host+":"+path, host, segs)
}

// githubRepo builds the canonical GitHub form from exactly [owner, name(.git)].
func githubRepo(base *url.URL, segs []string) (RepoURL, error) {
	switch {
	case len(segs) == 1 || (len(segs) == 2 && trimGitSuffix(segs[1]) == ""):
		return RepoURL{}, invalid("missing repository name: expected %s/owner/name", base)
	case len(segs) > 2:
		return RepoURL{}, invalid("extra path after owner/name (/%s): give the repository itself, e.g. %s/%s/%s",
			strings.Join(segs[2:], "/"), base, segs[0], trimGitSuffix(segs[1]))
	}
	owner, name := segs[0], trimGitSuffix(segs[1])
	if !validOwner(owner) {
		return RepoURL{}, invalid("%q is not a valid GitHub owner (letters, digits, '-' and '_', at most %d)", owner, maxNameLen)
	}
	if !validRepoName(name) {
		return RepoURL{}, invalid("%q is not a valid GitHub repository name (letters, digits, '.', '-' and '_', at most %d)", name, maxNameLen)
	}
	canonical := base.String() + "/" + owner + "/" + name
	return RepoURL{
		URL:      canonical,
		CloneURL: canonical + ".git",
		Host:     base.Host,
		Owner:    owner,
		Name:     name,
		GitHub:   true,
	}, nil
}

// otherRepo derives owner and name from decoded path segments of a non-GitHub remote.
func otherRepo(canonical, host string, segs []string) (RepoURL, error) {
	name := trimGitSuffix(segs[len(segs)-1])
	if name == "" {
		return RepoURL{}, invalid("missing repository name (the last path segment is only .git)")
	}
	owner := hostname(host)
	if len(segs) > 1 {
		owner = segs[len(segs)-2]
	}
	return RepoURL{URL: canonical, CloneURL: canonical, Host: host, Owner: owner, Name: name}, nil
}

func normaliseBase(b *url.URL) (*url.URL, error) {
	if b == nil {
		return ParseGitHubBase(DefaultBaseURL)
	}
	return ParseGitHubBase(b.String())
}

// checkChars rejects what no accepted form contains.
func checkChars(raw string) error {
	switch {
	case raw == "":
		return invalid("empty")
	case len(raw) > maxURLLen:
		return invalid("longer than %d bytes", maxURLLen)
	case !utf8.ValidString(raw):
		return invalid("not valid UTF-8")
	}
	for i, r := range raw {
		switch {
		case unicode.IsSpace(r):
			return invalid("contains whitespace at byte %d", i)
		case unicode.IsControl(r) || r == utf8.RuneError:
			return invalid("contains a control character at byte %d", i)
		case r == '?':
			return invalid("query strings are not allowed")
		case r == '#':
			return invalid("fragments (#...) are not allowed")
		case r == '\\':
			return invalid("contains a backslash at byte %d", i)
		}
	}
	return nil
}

// decodeSegments unescapes percent-encoded URL path segments and checks them.
func decodeSegments(esc []string) ([]string, error) {
	out := make([]string, len(esc))
	for i, s := range esc {
		d, err := url.PathUnescape(s)
		if err != nil {
			return nil, invalid("bad percent-encoding in path segment %q", s)
		}
		if strings.Contains(d, "/") {
			return nil, invalid("path segment %q encodes a slash", s)
		}
		if err := checkChars(d); err != nil && d != "" {
			return nil, invalid("path segment %q decodes to a forbidden character", s)
		}
		out[i] = d
	}
	return out, checkSegments(out)
}

func checkSegments(segs []string) error {
	for _, s := range segs {
		switch s {
		case "":
			return invalid("empty path segment (//)")
		case ".", "..":
			return invalid("path segments . and .. are not allowed")
		}
	}
	return nil
}

// checkUser accepts the user names SSH remotes use (git, gitlab+deploy-token-1, ...).
func checkUser(user string) error {
	if user == "" {
		return invalid("empty user name before @")
	}
	if user[0] == '-' {
		return invalid("user name must not start with '-'")
	}
	for _, r := range user {
		if !isAlnum(r) && !strings.ContainsRune("._+-~", r) {
			return invalid("user name contains %q (allowed: letters, digits, . _ + - ~)", r)
		}
	}
	return nil
}

// normaliseHostPort lowercases host[:port], validates it and drops the scheme's default port.
func normaliseHostPort(scheme, hostport string) (string, error) {
	hostport = strings.ToLower(hostport)
	host, port := hostport, ""
	if i := strings.LastIndexByte(hostport, ':'); i >= 0 && !strings.HasSuffix(hostport, "]") {
		host, port = hostport[:i], hostport[i+1:]
		n, err := strconv.Atoi(port)
		if err != nil || n < 1 || n > 65535 || port[0] == '0' {
			return "", fmt.Errorf("invalid port %q", port)
		}
	}
	if host == "" {
		return "", errors.New("missing host")
	}
	if err := checkHostname(host); err != nil {
		return "", err
	}
	if port == "" || port == defaultPorts[scheme] {
		return host, nil
	}
	return host + ":" + port, nil
}

var defaultPorts = map[string]string{"https": "443", "http": "80", "ssh": "22"}

// checkHostname accepts DNS names (ASCII; IDNs in punycode) and IP literals, IPv6 in brackets.
func checkHostname(h string) error {
	if strings.HasPrefix(h, "[") {
		if !strings.HasSuffix(h, "]") {
			return fmt.Errorf("invalid host %q", h)
		}
		a, err := netip.ParseAddr(h[1 : len(h)-1])
		if err != nil || !a.Is6() || a.Zone() != "" {
			return fmt.Errorf("invalid IPv6 host %q", h)
		}
		return nil
	}
	if len(h) > 253 {
		return errors.New("host name too long")
	}
	for _, label := range strings.Split(h, ".") {
		if label == "" || label[0] == '-' || label[len(label)-1] == '-' {
			return fmt.Errorf("invalid host %q", h)
		}
		for _, r := range label {
			if !isAlnum(r) && r != '-' && r != '_' {
				if r > unicode.MaxASCII {
					return fmt.Errorf("invalid host %q (write an internationalised name in its xn-- form)", h)
				}
				return fmt.Errorf("invalid host %q", h)
			}
		}
	}
	return nil
}

// hostname strips a port from a normalised host[:port], and the brackets of an IPv6 literal.
func hostname(hostport string) string {
	return (&url.URL{Host: hostport}).Hostname()
}

// validOwner is lenient about GitHub's owner rules (alphanumerics and hyphens, Enterprise Managed
// Users add _shortcode): the API decides existence, this keeps the request path safe.
func validOwner(s string) bool {
	if s == "" || len(s) > maxNameLen || s[0] == '-' || s[0] == '_' {
		return false
	}
	for _, r := range s {
		if !isAlnum(r) && r != '-' && r != '_' {
			return false
		}
	}
	return true
}

// validRepoName also refuses a name that still ends in .git: its canonical URL would lose the
// suffix when parsed again (GitHub does not allow such names either).
func validRepoName(s string) bool {
	if s == "" || len(s) > maxNameLen || s == "." || s == ".." || trimGitSuffix(s) != s {
		return false
	}
	for _, r := range s {
		if !isAlnum(r) && r != '-' && r != '_' && r != '.' {
			return false
		}
	}
	return true
}

// trimGitSuffix removes one ".git" suffix, in any letter case, as git hosts do.
func trimGitSuffix(s string) string {
	if len(s) >= 4 && strings.EqualFold(s[len(s)-4:], ".git") {
		return s[:len(s)-4]
	}
	return s
}

func isAlnum(r rune) bool {
	return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9'
}

// isSchemeToken reports whether s is an RFC 3986 scheme: ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ).
func isSchemeToken(s string) bool {
	if s == "" || !(s[0] >= 'a' && s[0] <= 'z' || s[0] >= 'A' && s[0] <= 'Z') {
		return false
	}
	for _, r := range s {
		if !isAlnum(r) && r != '+' && r != '-' && r != '.' {
			return false
		}
	}
	return true
}

func errPassword() error {
	return invalid("the URL contains a password; credentials must come from --token-env or --token-file (github_token in the API), never the URL")
}

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalidURL, fmt.Sprintf(format, args...))
}

// unwrapURLError drops the *url.Error wrapper, whose message repeats the whole input.
func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}
