package serve_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docora/docora/internal/cli"
	"github.com/docora/docora/internal/command"
	"github.com/docora/docora/internal/output"
)

// lockedBuffer is written by the server while the test reads it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

func getenv(home string) func(string) string {
	return func(k string) string {
		switch k {
		case "DOCORA_HOME":
			return home
		case "DOCORA_ALLOW_PRIVATE_NETWORKS":
			return "1"
		}
		return ""
	}
}

func TestUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{"serve", "--mode", "both"},
		{"serve", "--mode", "worker", "--public-onboarding"},
		{"serve", "--addr", "8080"},
		{"serve", "--rate-limit", "-1"},
		{"serve", "--rate-burst", "0"},
		{"serve", "--concurrency", "0"},
		{"serve", "--interval", "0s"},
		{"serve", "--shutdown-timeout", "-1s"},
		{"serve", "--chunk-size", "6"},
		{"serve", "now"},
	} {
		var errOut bytes.Buffer
		ios := &output.IO{In: strings.NewReader(""), Out: io.Discard, ErrOut: &errOut}
		if code := cli.Run(context.Background(), args, ios, getenv(t.TempDir())); code != command.ExitUsage {
			t.Errorf("%q: exit %d, want %d; stderr %s", args, code, command.ExitUsage, errOut.String())
		}
	}
}

// TestServeStopsOnCancel runs `docora serve --addr 127.0.0.1:0` in-process: it prints the
// address it bound, answers, and returns 0 when its context is cancelled (SIGINT/SIGTERM).
func TestServeStopsOnCancel(t *testing.T) {
	for _, mode := range []string{"all", "api", "worker"} {
		t.Run(mode, func(t *testing.T) {
			errOut := &lockedBuffer{}
			ios := &output.IO{In: strings.NewReader(""), Out: io.Discard, ErrOut: errOut}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			done := make(chan int, 1)
			go func() {
				done <- cli.Run(ctx, []string{"serve", "--addr", "127.0.0.1:0", "--mode", mode}, ios, getenv(t.TempDir()))
			}()
			re := regexp.MustCompile(`(?m)^listening on (http://127\.0\.0\.1:[0-9]+)$`)
			var base string
			for deadline := time.Now().Add(20 * time.Second); base == ""; {
				if m := re.FindStringSubmatch(errOut.String()); m != nil {
					base = m[1]
				} else if time.Now().After(deadline) {
					t.Fatalf("no listening line; stderr:\n%s", errOut.String())
				}
				select {
				case code := <-done:
					t.Fatalf("serve exited %d; stderr:\n%s", code, errOut.String())
				case <-time.After(10 * time.Millisecond):
				}
			}
			resp, err := http.Get(base + "/health")
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || !strings.Contains(string(body), `"mode":"`+mode+`"`) {
				t.Fatalf("/health: %d %s", resp.StatusCode, body)
			}
			cancel()
			select {
			case code := <-done:
				if code != command.ExitOK {
					t.Fatalf("exit %d after a stop; stderr:\n%s", code, errOut.String())
				}
			case <-time.After(20 * time.Second):
				t.Fatal("serve did not stop")
			}
			if !strings.Contains(errOut.String(), "docora: stopped") {
				t.Errorf("stderr:\n%s", errOut.String())
			}
		})
	}
}
