package config

import (
	"errors"
	"testing"
)

func TestLoadPrecedence(t *testing.T) {
	tests := []struct {
		name      string
		env       map[string]string
		flags     Flags
		set       []string
		wantHome  string
		wantDB    string
		wantLevel string
		wantPriv  bool
		wantUsage bool
		wantErr   bool
	}{
		{name: "defaults from HOME", env: map[string]string{"HOME": "/h"}, wantHome: "/h/.local/share/docora",
			wantDB: "/h/.local/share/docora/docora.db", wantLevel: "warn"},
		{name: "XDG beats HOME", env: map[string]string{"HOME": "/h", "XDG_DATA_HOME": "/x"}, wantHome: "/x/docora",
			wantDB: "/x/docora/docora.db", wantLevel: "warn"},
		{name: "env beats default", env: map[string]string{"HOME": "/h", "DOCORA_HOME": "/d", "DOCORA_LOG_LEVEL": "debug",
			"DOCORA_ALLOW_PRIVATE_NETWORKS": "1"}, wantHome: "/d", wantDB: "/d/docora.db", wantLevel: "debug", wantPriv: true},
		{name: "flags beat env", env: map[string]string{"DOCORA_HOME": "/d", "DOCORA_LOG_LEVEL": "debug", "DOCORA_ALLOW_PRIVATE_NETWORKS": "1"},
			flags: Flags{Home: "/f", LogLevel: "error"}, set: []string{"home", "log-level", "allow-private-networks"},
			wantHome: "/f", wantDB: "/f/docora.db", wantLevel: "error", wantPriv: false},
		{name: "DOCORA_DB overrides the database only", env: map[string]string{"DOCORA_HOME": "/d", "DOCORA_DB": "/db/x.db"},
			wantHome: "/d", wantDB: "/db/x.db", wantLevel: "warn"},
		{name: "no home at all is not an error here", env: map[string]string{}, wantHome: "", wantDB: "", wantLevel: "warn"},
		{name: "bad log level", env: map[string]string{"HOME": "/h", "DOCORA_LOG_LEVEL": "loud"}, wantUsage: true},
		{name: "bad log format flag", env: map[string]string{"HOME": "/h"}, flags: Flags{LogFormat: "xml"}, set: []string{"log-format"}, wantUsage: true},
		{name: "bad GitHub URL", env: map[string]string{"HOME": "/h", "DOCORA_GITHUB_URL": "ftp://x"}, wantErr: true},
		{name: "bad GitHub API URL", env: map[string]string{"HOME": "/h", "DOCORA_GITHUB_API_URL": "::"}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fl := tt.flags
			fl.Set = func(name string) bool {
				for _, s := range tt.set {
					if s == name {
						return true
					}
				}
				return false
			}
			c, err := Load(func(k string) string { return tt.env[k] }, fl)
			var ue UsageError
			switch {
			case tt.wantUsage:
				if !errors.As(err, &ue) {
					t.Fatalf("err = %v, want a usage error", err)
				}
				return
			case tt.wantErr:
				if err == nil {
					t.Fatal("no error")
				}
				return
			case err != nil:
				t.Fatal(err)
			}
			if c.Home != tt.wantHome || c.DBPath != tt.wantDB || c.LogLevel != tt.wantLevel || c.AllowPrivate != tt.wantPriv {
				t.Fatalf("got home=%q db=%q level=%q private=%v", c.Home, c.DBPath, c.LogLevel, c.AllowPrivate)
			}
		})
	}
}
