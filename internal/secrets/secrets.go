// Package secrets encrypts client auth keys and git tokens at rest, loads or generates the
// encryption key, and generates the ids and tokens docora hands out.
package secrets

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// KeyFileName is the name of the generated key file in the docora home.
const KeyFileName = "secret.key"

var (
	// ErrWrongKey means a ciphertext does not open with the configured key.
	ErrWrongKey = errors.New("encryption key does not match this store (check DOCORA_ENCRYPTION_KEY or the key file)")
	// ErrBadKey means DOCORA_ENCRYPTION_KEY or the key file does not hold 64 hex characters.
	ErrBadKey = errors.New("encryption key must be 64 hexadecimal characters (32 bytes)")
	// ErrMissingKey means an existing store has no key available.
	ErrMissingKey = errors.New("encryption key not found: set DOCORA_ENCRYPTION_KEY or restore the key file")
)

// Box seals and opens secrets with AES-256-GCM. The additional data binds a ciphertext to the
// row it belongs to, so a ciphertext copied to another row does not open.
type Box struct {
	aead cipher.AEAD
}

// NewBox returns a Box for a 32-byte key.
func NewBox(key []byte) (*Box, error) {
	if len(key) != 32 {
		return nil, ErrBadKey
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("new cipher: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("new gcm: %w", err)
	}
	return &Box{aead: aead}, nil
}

// Seal encrypts plaintext; the result is nonce || ciphertext || tag.
func (b *Box) Seal(plaintext []byte, ad string) []byte {
	nonce := make([]byte, b.aead.NonceSize(), b.aead.NonceSize()+len(plaintext)+b.aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		panic("secrets: crypto/rand failed: " + err.Error()) // crypto/rand never fails on Linux
	}
	return b.aead.Seal(nonce, nonce, plaintext, []byte(ad))
}

// Open decrypts what Seal produced with the same additional data.
func (b *Box) Open(sealed []byte, ad string) ([]byte, error) {
	n := b.aead.NonceSize()
	if len(sealed) < n+b.aead.Overhead() {
		return nil, ErrWrongKey
	}
	pt, err := b.aead.Open(nil, sealed[:n], sealed[n:], []byte(ad))
	if err != nil {
		return nil, ErrWrongKey
	}
	return pt, nil
}

// ParseKey decodes a 64-hex-character key.
func ParseKey(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	if len(s) != 64 {
		return nil, ErrBadKey
	}
	k, err := hex.DecodeString(s)
	if err != nil {
		return nil, ErrBadKey
	}
	return k, nil
}

// LoadKey returns the encryption key: envKey when set (DOCORA_ENCRYPTION_KEY), else the key file
// in home. When the file does not exist it is generated (mode 0600) only if mayCreate is true;
// otherwise ErrMissingKey.
func LoadKey(home, envKey string, mayCreate bool) ([]byte, error) {
	if envKey != "" {
		k, err := ParseKey(envKey)
		if err != nil {
			return nil, fmt.Errorf("DOCORA_ENCRYPTION_KEY: %w", err)
		}
		return k, nil
	}
	path := filepath.Join(home, KeyFileName)
	data, err := os.ReadFile(path)
	switch {
	case err == nil:
		k, err := ParseKey(string(data))
		if err != nil {
			return nil, fmt.Errorf("key file %s: %w", path, err)
		}
		return k, nil
	case !errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("read key file: %w", err)
	case !mayCreate:
		return nil, fmt.Errorf("%w (looked for %s)", ErrMissingKey, path)
	}
	k := make([]byte, 32)
	if _, err := rand.Read(k); err != nil {
		return nil, fmt.Errorf("generate key: %w", err)
	}
	if err := os.MkdirAll(home, 0o700); err != nil {
		return nil, fmt.Errorf("create home: %w", err)
	}
	// Two processes creating a new store at once must agree on one key, and neither may read
	// a half-written file: write a temporary file, then link it into place, which fails when
	// the other process won.
	tmp, err := os.CreateTemp(home, ".secret.key-*")
	if err != nil {
		return nil, fmt.Errorf("create key file: %w", err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return nil, fmt.Errorf("create key file: %w", err)
	}
	if _, err := tmp.WriteString(hex.EncodeToString(k) + "\n"); err != nil {
		tmp.Close()
		return nil, fmt.Errorf("write key file: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return nil, fmt.Errorf("write key file: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return nil, fmt.Errorf("write key file: %w", err)
	}
	if err := os.Link(tmp.Name(), path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return LoadKey(home, "", false)
		}
		return nil, fmt.Errorf("create key file: %w", err)
	}
	return k, nil
}

func randomHex(nBytes int) string {
	b := make([]byte, nBytes)
	if _, err := rand.Read(b); err != nil {
		panic("secrets: crypto/rand failed: " + err.Error())
	}
	return hex.EncodeToString(b)
}

// NewID returns prefix + 24 lowercase hex characters, e.g. "app_" or "repo_".
func NewID(prefix string) string { return prefix + randomHex(12) }

// TokenPrefix starts every app token.
const TokenPrefix = "docora_"

// NewAppToken returns a bearer token: "docora_" + 64 hex characters.
func NewAppToken() string { return TokenPrefix + randomHex(32) }

// NewClientAuthKey returns a generated HMAC key of 64 hex characters.
func NewClientAuthKey() string { return randomHex(32) }

// HashToken returns the hex SHA-256 of an app token: what the store keeps. Tokens carry 256
// bits of entropy, so a fast hash is enough; a slow KDF would only slow every request.
func HashToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// EqualHash compares two token hashes in constant time.
func EqualHash(a, b string) bool {
	return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}
