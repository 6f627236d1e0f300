package secrets

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

func TestBoxRoundTripAndBinding(t *testing.T) {
	key := bytes.Repeat([]byte{7}, 32)
	box, err := NewBox(key)
	if err != nil {
		t.Fatal(err)
	}
	sealed := box.Seal([]byte("s3cret-value"), "app:1")
	if bytes.Contains(sealed, []byte("s3cret")) {
		t.Fatal("ciphertext contains the plaintext")
	}
	got, err := box.Open(sealed, "app:1")
	if err != nil || string(got) != "s3cret-value" {
		t.Fatalf("Open = %q, %v", got, err)
	}
	if _, err := box.Open(sealed, "app:2"); !errors.Is(err, ErrWrongKey) {
		t.Fatalf("other additional data: err = %v, want ErrWrongKey", err)
	}
	other, _ := NewBox(bytes.Repeat([]byte{8}, 32))
	if _, err := other.Open(sealed, "app:1"); !errors.Is(err, ErrWrongKey) {
		t.Fatalf("other key: err = %v, want ErrWrongKey", err)
	}
	if _, err := box.Open(sealed[:5], "app:1"); !errors.Is(err, ErrWrongKey) {
		t.Fatalf("truncated: err = %v, want ErrWrongKey", err)
	}
	if _, err := NewBox([]byte("short")); !errors.Is(err, ErrBadKey) {
		t.Fatalf("short key: err = %v", err)
	}
}

func TestLoadKey(t *testing.T) {
	tests := []struct {
		name      string
		env       string
		file      string // content of an existing key file; "" = none
		mayCreate bool
		wantErr   error
		wantFile  bool
	}{
		{name: "env key", env: strings.Repeat("ab", 32), wantErr: nil},
		{name: "env key too short", env: "abcd", wantErr: ErrBadKey},
		{name: "env key not hex", env: strings.Repeat("zz", 32), wantErr: ErrBadKey},
		{name: "generate on new store", mayCreate: true, wantFile: true},
		{name: "missing on existing store", mayCreate: false, wantErr: ErrMissingKey},
		{name: "existing file", file: strings.Repeat("01", 32) + "\n", wantFile: true},
		{name: "corrupt file", file: "nonsense", wantErr: ErrBadKey},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			home := t.TempDir()
			if tt.file != "" {
				if err := os.WriteFile(filepath.Join(home, KeyFileName), []byte(tt.file), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			k, err := LoadKey(home, tt.env, tt.mayCreate)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if err != nil {
				return
			}
			if len(k) != 32 {
				t.Fatalf("key length %d", len(k))
			}
			fi, err := os.Stat(filepath.Join(home, KeyFileName))
			if tt.wantFile {
				if err != nil {
					t.Fatal(err)
				}
				if tt.file == "" && fi.Mode().Perm() != 0o600 {
					t.Fatalf("key file mode %v, want 0600", fi.Mode().Perm())
				}
				again, err := LoadKey(home, "", false)
				if err != nil || !bytes.Equal(again, k) {
					t.Fatalf("reload: %x, %v", again, err)
				}
			} else if err == nil {
				t.Fatal("key file written although the key came from the environment")
			}
		})
	}
}

func TestGeneratedValues(t *testing.T) {
	if id := NewID("app_"); !regexp.MustCompile(`^app_[0-9a-f]{24}$`).MatchString(id) {
		t.Fatalf("NewID = %q", id)
	}
	tok := NewAppToken()
	if !regexp.MustCompile(`^docora_[0-9a-f]{64}$`).MatchString(tok) {
		t.Fatalf("NewAppToken = %q", tok)
	}
	if NewAppToken() == tok {
		t.Fatal("two tokens are equal")
	}
	h := HashToken(tok)
	if h == tok || len(h) != 64 || !EqualHash(h, HashToken(tok)) || EqualHash(h, HashToken(tok+"x")) {
		t.Fatalf("HashToken/EqualHash misbehave: %q", h)
	}
	if k := NewClientAuthKey(); len(k) != 64 {
		t.Fatalf("client auth key length %d", len(k))
	}
}
