// Package gitsource is docora's narrow wrapper around go-git: it lists a remote's refs, keeps one
// bare, shallow object cache per watched repository, fetches into it, and reads trees and blob
// streams from it. Remote access goes through the network guard (netguard) with the policy
// carried by the context; errors are classified by sentinels and scrubbed of credentials.
package gitsource

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/protocol/packp/capability"
	"github.com/go-git/go-git/v5/plumbing/transport"
	"github.com/go-git/go-git/v5/plumbing/transport/client"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
	"github.com/go-git/go-git/v5/storage/memory"

	"github.com/docora/docora/internal/gitserve"
	"github.com/docora/docora/internal/netguard"
)

// Credentials authenticate to a remote. The zero value is anonymous.
type Credentials struct {
	// Token is sent as HTTP basic auth x-access-token:<token> (GitHub's convention, accepted by
	// most hosts as "any user name, token as password").
	Token string
}

const tokenUser = "x-access-token"

func (c Credentials) auth() transport.AuthMethod {
	if c.Token == "" {
		return nil
	}
	return &githttp.BasicAuth{Username: tokenUser, Password: c.Token}
}

// Refs is what a remote advertises.
type Refs struct {
	// Head is the remote's default branch (the branch its HEAD points to), "" when the remote
	// does not say (an empty repository over git's protocol v0 advertises no HEAD).
	Head string
	// Branches maps each branch name to its commit hash.
	Branches map[string]string
}

var installOnce sync.Once

// installTransports routes go-git's http and https remotes through the network guard, and
// file:// remotes and local paths through an in-process server instead of the git binary.
// go-git only has process-wide transports, so this happens once; the guard policy of each
// call travels in its context.
func installTransports() {
	installOnce.Do(func() {
		hc := &http.Client{
			Transport: &policyTransport{public: netguard.NewTransport(), private: netguard.NewTransport()},
			// go-git adds its own checks: only the first request follows redirects and
			// credentials are stripped when a redirect leaves the origin.
			CheckRedirect: checkRedirect,
		}
		t := githttp.NewClient(hc)
		client.InstallProtocol("http", t)
		client.InstallProtocol("https", t)
		client.InstallProtocol("file", gitserve.NewTransport())
		// go-git never asks for thin packs, because a pack it stores as it comes must be
		// self-contained. Without thin-pack, git's upload-pack answers every shallow fetch
		// with the whole tree of the new commit, however little changed (it marks the trees
		// of the client's commits as known only for thin-pack clients). fetchInto parses
		// incremental fetches object by object, resolving thin deltas against the cache, so
		// thin packs are allowed. A fetch into an empty cache has no "have" lines: the
		// server cannot send it a thin pack.
		transport.UnsupportedCapabilities = slices.DeleteFunc(slices.Clone(transport.UnsupportedCapabilities),
			func(c capability.Capability) bool { return c == capability.ThinPack })
	})
}

// policyTransport keeps one connection pool per guard policy, so that a connection opened for
// a call allowed to reach private addresses is never reused by a call that is not.
type policyTransport struct {
	public, private http.RoundTripper
}

func (t *policyTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if netguard.PolicyFrom(req.Context()).AllowPrivate {
		return t.private.RoundTrip(req)
	}
	return t.public.RoundTrip(req)
}

const maxRedirects = 5

func checkRedirect(req *http.Request, via []*http.Request) error {
	if len(via) >= maxRedirects {
		return fmt.Errorf("stopped after %d redirects", maxRedirects)
	}
	if prev := via[len(via)-1]; prev.URL.Scheme == "https" && req.URL.Scheme != "https" {
		return fmt.Errorf("refusing a redirect from https to %s", req.URL.Scheme)
	}
	return nil
}

// checkURL refuses remotes that would bypass the guard: only http(s), which dials through it,
// and local repositories when the policy allows private destinations (a local path can name any
// repository on this machine, including other repositories' caches).
func checkURL(ctx context.Context, rawURL string) error {
	ep, err := transport.NewEndpoint(rawURL)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrUnsupportedURL, err)
	}
	switch ep.Protocol {
	case "http", "https":
		return nil
	case "file":
		if !netguard.PolicyFrom(ctx).AllowPrivate {
			return fmt.Errorf("%w: local repository %s", netguard.ErrForbiddenAddress, ep.Path)
		}
		return nil
	default:
		return fmt.Errorf("%w: scheme %q (use an https URL)", ErrUnsupportedURL, ep.Protocol)
	}
}

// ListRefs asks the remote for its branches and default branch: one round trip (ls-remote),
// no objects transferred. An empty remote gives empty Refs and no error.
func ListRefs(ctx context.Context, url string, cred Credentials) (Refs, error) {
	refs, err := listRefs(ctx, url, cred)
	return refs, remoteErr(ctx, "list refs of", url, cred, err)
}

func listRefs(ctx context.Context, url string, cred Credentials) (Refs, error) {
	if err := checkURL(ctx, url); err != nil {
		return Refs{}, err
	}
	installTransports()
	rem := git.NewRemote(memory.NewStorage(), &config.RemoteConfig{Name: "origin", URLs: []string{url}})
	list, err := rem.ListContext(ctx, &git.ListOptions{Auth: cred.auth(), PeelingOption: git.IgnorePeeled})
	out := Refs{Branches: map[string]string{}}
	if errors.Is(err, transport.ErrEmptyRemoteRepository) {
		return out, nil
	}
	if err != nil {
		return Refs{}, err
	}
	for _, r := range list {
		switch {
		case r.Name() == plumbing.HEAD && r.Type() == plumbing.SymbolicReference:
			out.Head = strings.TrimPrefix(r.Target().String(), "refs/heads/")
		case r.Name().IsBranch() && r.Type() == plumbing.HashReference:
			out.Branches[r.Name().Short()] = r.Hash().String()
		}
	}
	return out, nil
}

// RemoteHead returns the commit at the tip of branch on the remote, in one round trip.
// It fails with ErrEmptyRepository when the remote has no branches at all and with
// ErrBranchNotFound when it lacks this one.
func (c *Cache) RemoteHead(ctx context.Context, url, branch string, cred Credentials) (string, error) {
	refs, err := listRefs(ctx, url, cred)
	switch {
	case err != nil:
	case len(refs.Branches) == 0:
		err = ErrEmptyRepository
	case refs.Branches[branch] == "":
		err = fmt.Errorf("%w: %q", ErrBranchNotFound, branch)
	default:
		return refs.Branches[branch], nil
	}
	return "", remoteErr(ctx, "remote head of", url, cred, err)
}

// BranchLister finds a remote's default branch by listing its refs under a guard policy; it
// is the github.RefLister for remotes that are not GitHub.
type BranchLister struct{ Policy netguard.Policy }

// DefaultBranch returns the branch the remote's HEAD points to, "" when it advertises none.
func (b BranchLister) DefaultBranch(ctx context.Context, url, token string) (string, error) {
	refs, err := ListRefs(netguard.WithPolicy(ctx, b.Policy), url, Credentials{Token: token})
	if err != nil {
		return "", err
	}
	return refs.Head, nil
}
