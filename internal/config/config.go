// Package config resolves docora's settings once: defaults, then DOCORA_* environment
// variables, then flags. Nothing else in docora reads the environment.
package config

import (
	"fmt"
	"net/url"
	"path/filepath"
	"strings"
)

// Config is the resolved configuration shared by every command.
type Config struct {
	Home          string // holds docora.db, caches/ and the key file
	DBPath        string
	CacheDir      string
	EncryptionKey string // hex, from DOCORA_ENCRYPTION_KEY; "" = key file in Home
	LogLevel      string
	LogFormat     string
	GitHubURL     *url.URL // base URL of the GitHub web host (DOCORA_GITHUB_URL)
	GitHubAPIURL  string   // REST API base, used as given (DOCORA_GITHUB_API_URL)
	AllowPrivate  bool     // --allow-private-networks / DOCORA_ALLOW_PRIVATE_NETWORKS=1
	AdminToken    string   // DOCORA_ADMIN_TOKEN, for the HTTP API's onboarding
	NoColor       bool
}

// Flags are the global flag values as the user gave them; an empty value means "not given".
type Flags struct {
	Home         string
	LogLevel     string
	LogFormat    string
	AllowPrivate bool
	// Set reports whether a flag was given on the command line.
	Set func(name string) bool
}

// Defaults for settings without an environment variable or flag.
const (
	DefaultGitHubURL    = "https://github.com"
	DefaultGitHubAPIURL = "https://api.github.com/"
	DefaultLogLevel     = "warn"
	DefaultLogFormat    = "text"
)

// Load resolves the configuration from getenv and the flags.
func Load(getenv func(string) string, fl Flags) (*Config, error) {
	set := fl.Set
	if set == nil {
		set = func(string) bool { return false }
	}
	c := &Config{
		LogLevel:      DefaultLogLevel,
		LogFormat:     DefaultLogFormat,
		GitHubAPIURL:  DefaultGitHubAPIURL,
		EncryptionKey: getenv("DOCORA_ENCRYPTION_KEY"),
		AdminToken:    getenv("DOCORA_ADMIN_TOKEN"),
		NoColor:       getenv("NO_COLOR") != "",
	}

	switch {
	case set("home") && fl.Home != "":
		c.Home = fl.Home
	case getenv("DOCORA_HOME") != "":
		c.Home = getenv("DOCORA_HOME")
	case getenv("XDG_DATA_HOME") != "":
		c.Home = filepath.Join(getenv("XDG_DATA_HOME"), "docora")
	case getenv("HOME") != "":
		c.Home = filepath.Join(getenv("HOME"), ".local", "share", "docora")
	}
	// No home is an error only for commands that open the store (receive and demo need none).
	var err error
	if c.Home != "" {
		if c.Home, err = filepath.Abs(c.Home); err != nil {
			return nil, fmt.Errorf("home %q: %w", c.Home, err)
		}
		c.DBPath = filepath.Join(c.Home, "docora.db")
	}
	if v := getenv("DOCORA_DB"); v != "" {
		if c.DBPath, err = filepath.Abs(v); err != nil {
			return nil, fmt.Errorf("DOCORA_DB %q: %w", v, err)
		}
	}
	if c.Home != "" {
		c.CacheDir = filepath.Join(c.Home, "cache")
	}

	if v := getenv("DOCORA_LOG_LEVEL"); v != "" {
		c.LogLevel = v
	}
	if set("log-level") {
		c.LogLevel = fl.LogLevel
	}
	if v := getenv("DOCORA_LOG_FORMAT"); v != "" {
		c.LogFormat = v
	}
	if set("log-format") {
		c.LogFormat = fl.LogFormat
	}
	c.LogLevel = strings.ToLower(c.LogLevel)
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		return nil, UsageError{fmt.Sprintf("invalid log level %q: use debug, info, warn or error", c.LogLevel)}
	}
	switch c.LogFormat {
	case "text", "json":
	default:
		return nil, UsageError{fmt.Sprintf("invalid log format %q: use text or json", c.LogFormat)}
	}

	c.AllowPrivate = truthy(getenv("DOCORA_ALLOW_PRIVATE_NETWORKS"))
	if set("allow-private-networks") {
		c.AllowPrivate = fl.AllowPrivate
	}

	gh := DefaultGitHubURL
	if v := getenv("DOCORA_GITHUB_URL"); v != "" {
		gh = v
	}
	u, err := url.Parse(strings.TrimRight(gh, "/"))
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, fmt.Errorf("DOCORA_GITHUB_URL %q: must be an http(s) base URL", gh)
	}
	c.GitHubURL = u
	if v := getenv("DOCORA_GITHUB_API_URL"); v != "" {
		c.GitHubAPIURL = v
	}
	if au, err := url.Parse(c.GitHubAPIURL); err != nil || (au.Scheme != "https" && au.Scheme != "http") || au.Host == "" {
		return nil, fmt.Errorf("DOCORA_GITHUB_API_URL %q: must be an http(s) URL", c.GitHubAPIURL)
	}
	return c, nil
}

func truthy(v string) bool {
	switch strings.ToLower(v) {
	case "1", "true", "yes", "on":
		return true
	}
	return false
}

// UsageError is a configuration problem caused by how docora was invoked (exit code 2).
type UsageError struct{ Msg string }

func (e UsageError) Error() string { return e.Msg }
