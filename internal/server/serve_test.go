package server

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docora/docora/internal/github"
)

// slowUpstream puts a GitHub API in front of e's fake one that holds every request until
// release is called (at the latest when the test ends); started is closed when the first
// request arrives.
func slowUpstream(t *testing.T, e *env) (started chan struct{}, release func()) {
	t.Helper()
	started, held := make(chan struct{}), make(chan struct{})
	target, _ := url.Parse(e.api.URL())
	proxy := httputil.NewSingleHostReverseProxy(target)
	var once sync.Once
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		once.Do(func() { close(started) })
		<-held
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(slow.Close)
	var releaseOnce sync.Once
	release = func() { releaseOnce.Do(func() { close(held) }) }
	t.Cleanup(release) // runs before slow.Close
	v, err := github.NewVerifier(slow.URL+"/", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	e.reg.Verifier = v
	return started, release
}

type result struct {
	status int
	err    error
}

func postRepository(base, token string) <-chan result {
	out := make(chan result, 1)
	go func() {
		r, _ := http.NewRequest("POST", base+"/api/repositories", strings.NewReader(`{"github_url":"acme/docs"}`))
		r.Header.Set("Content-Type", "application/json")
		r.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(r)
		if err != nil {
			out <- result{err: err}
			return
		}
		resp.Body.Close()
		out <- result{status: resp.StatusCode}
	}()
	return out
}

func TestGracefulShutdownFinishesInFlightRequests(t *testing.T) {
	e := newEnv(t)
	appID, tok := e.app("Docs site")
	started, release := slowUpstream(t, e)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, ln, e.h, 10*time.Second, nil) }()

	res := postRepository("http://"+addr, tok)
	select {
	case <-started:
	case <-time.After(10 * time.Second):
		t.Fatal("the request did not reach the upstream")
	}
	cancel() // SIGINT

	// New connections are refused at once, while the request in flight goes on.
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			break
		}
		c.Close()
		if time.Now().After(deadline) {
			t.Fatal("the server still accepts connections after the stop")
		}
		time.Sleep(10 * time.Millisecond)
	}
	select {
	case err := <-done:
		t.Fatalf("Serve returned with a request in flight: %v", err)
	case <-time.After(100 * time.Millisecond):
	}

	release()
	select {
	case r := <-res:
		if r.err != nil || r.status != http.StatusCreated {
			t.Fatalf("in-flight request: %d %v", r.status, r.err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the in-flight request did not finish")
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Serve: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return")
	}
	if n := len(e.links(appID)); n != 1 {
		t.Fatalf("%d links: the in-flight registration was not completed", n)
	}
}

func TestShutdownTimeout(t *testing.T) {
	e := newEnv(t)
	_, tok := e.app("Docs site")
	started, _ := slowUpstream(t, e)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, ln, e.h, 200*time.Millisecond, nil) }()
	res := postRepository("http://"+ln.Addr().String(), tok)
	<-started
	cancel()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "did not finish within 200ms") {
			t.Fatalf("Serve = %v, want a shutdown timeout", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not give up after the shutdown timeout")
	}
	if r := <-res; r.err == nil {
		t.Fatalf("the abandoned request got an answer: %d", r.status)
	}
}

func TestServeReportsListenerErrors(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln.Close()
	if err := Serve(context.Background(), ln, http.NotFoundHandler(), time.Second, nil); err == nil {
		t.Fatal("Serve on a closed listener succeeded")
	}
}
