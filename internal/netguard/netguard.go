// Package netguard refuses connections to non-public addresses at dial time, after DNS
// resolution, so that neither a webhook base URL nor a git remote can reach the machine's own
// network (SSRF), and DNS rebinding cannot get around the check.
package netguard

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// ErrForbiddenAddress is returned (wrapped) when a destination is not a public address.
var ErrForbiddenAddress = errors.New("destination address is not public")

// Policy says which destinations may be dialled.
type Policy struct {
	// AllowPrivate lifts the guard: loopback, private and link-local destinations are allowed,
	// and so is plain http for webhooks.
	AllowPrivate bool
}

type policyKey struct{}

// WithPolicy returns a context whose dials follow p. The policy travels in the context because
// go-git's HTTP transport is installed once per process while the policy belongs to a call.
func WithPolicy(ctx context.Context, p Policy) context.Context {
	return context.WithValue(ctx, policyKey{}, p)
}

// PolicyFrom returns the policy carried by ctx; the default refuses non-public addresses.
func PolicyFrom(ctx context.Context) Policy {
	p, _ := ctx.Value(policyKey{}).(Policy)
	return p
}

var blocked = mustPrefixes(
	"0.0.0.0/8",         // "this" network, includes 0.0.0.0
	"10.0.0.0/8",        // private
	"100.64.0.0/10",     // CGNAT
	"127.0.0.0/8",       // loopback
	"169.254.0.0/16",    // link-local, includes 169.254.169.254 (cloud metadata)
	"172.16.0.0/12",     // private
	"192.0.0.0/24",      // IETF protocol assignments
	"192.0.2.0/24",      // TEST-NET-1
	"192.168.0.0/16",    // private
	"198.18.0.0/15",     // benchmarking
	"198.51.100.0/24",   // TEST-NET-2
	"203.0.113.0/24",    // TEST-NET-3
	"224.0.0.0/4",       // multicast
	"240.0.0.0/4",       // reserved, includes broadcast
	"::/128",            // unspecified
	"::1/128",           // loopback
	"64:ff9b::/96",      // NAT64 (embeds IPv4)
	"100::/64",          // discard
	"2001:db8::/32",     // documentation
	"fc00::/7",          // unique local
	"fe80::/10",         // link-local
	"ff00::/8",          // multicast
	"fd00:ec2::254/128", // AWS metadata over IPv6 (inside fc00::/7 already; listed for clarity)
	"2002::/16",         // 6to4 (embeds IPv4)
)

func mustPrefixes(ss ...string) []netip.Prefix {
	out := make([]netip.Prefix, len(ss))
	for i, s := range ss {
		out[i] = netip.MustParsePrefix(s)
	}
	return out
}

// CheckAddr reports whether ip is a public address. IPv4-mapped IPv6 addresses are judged as the
// IPv4 address they carry.
func CheckAddr(ip netip.Addr) error {
	// Prefix.Contains never matches an address with a zone, so "fe80::1%eth0" (which the
	// dialer hands to the control function as is) would pass unless the zone is dropped.
	ip = ip.WithZone("").Unmap()
	if !ip.IsValid() {
		return fmt.Errorf("%w: invalid address", ErrForbiddenAddress)
	}
	for _, p := range blocked {
		if p.Contains(ip) {
			return fmt.Errorf("%w: %s", ErrForbiddenAddress, ip)
		}
	}
	return nil
}

// CheckHostLiteral refuses a host that is visibly not public without resolving it: an IP
// literal in a blocked range, "localhost" and names under ".localhost", ".local" and
// ".internal". It is the early, friendly check used when a URL is registered; the dial-time
// check is the one that counts.
func CheckHostLiteral(host string) error {
	h := strings.TrimSuffix(strings.ToLower(strings.Trim(host, "[]")), ".")
	if h == "" {
		return fmt.Errorf("%w: empty host", ErrForbiddenAddress)
	}
	if i := strings.IndexByte(h, '%'); i >= 0 { // IPv6 zone
		h = h[:i]
	}
	if ip, err := netip.ParseAddr(h); err == nil {
		return CheckAddr(ip)
	}
	if ip := legacyIPv4(h); ip.IsValid() {
		return CheckAddr(ip)
	}
	if h == "localhost" || strings.HasSuffix(h, ".localhost") || strings.HasSuffix(h, ".local") ||
		strings.HasSuffix(h, ".internal") || h == "metadata" {
		return fmt.Errorf("%w: %s", ErrForbiddenAddress, h)
	}
	return nil
}

// legacyIPv4 parses the forms inet_aton accepts and netip does not, which some resolvers still
// honour: one to four dot-separated parts, each decimal, octal (leading 0) or hex (0x), the last
// part filling the remaining bytes ("2130706433", "0x7f000001", "127.1", "0177.0.0.1").
func legacyIPv4(h string) netip.Addr {
	parts := strings.Split(h, ".")
	if len(parts) > 4 {
		return netip.Addr{}
	}
	var vals [4]uint64
	for i, p := range parts {
		base, digits := 10, p
		switch {
		case len(p) > 1 && (p[0:2] == "0x" || p[0:2] == "0X"):
			base, digits = 16, p[2:]
		case len(p) > 1 && p[0] == '0':
			base, digits = 8, p[1:]
		}
		// With an explicit base, ParseUint accepts neither signs nor underscores.
		v, err := strconv.ParseUint(digits, base, 32)
		if err != nil {
			return netip.Addr{}
		}
		vals[i] = v
	}
	last := len(parts) - 1
	for i := range last {
		if vals[i] > 0xff {
			return netip.Addr{}
		}
	}
	if vals[last] > 0xffffffff>>(8*last) {
		return netip.Addr{}
	}
	n := vals[last]
	for i := range last {
		n |= vals[i] << (24 - 8*i)
	}
	return netip.AddrFrom4([4]byte{byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)})
}

// CheckURL is the registration-time check of a webhook or remote URL: https only (unless the
// policy allows private networks, which also allows http) and a host that is not visibly private.
func CheckURL(p Policy, raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("invalid URL: %w", err)
	}
	if u.Host == "" {
		return fmt.Errorf("invalid URL %q: no host", raw)
	}
	if p.AllowPrivate {
		if u.Scheme != "https" && u.Scheme != "http" {
			return fmt.Errorf("URL must use https (or http with --allow-private-networks), got %q", u.Scheme)
		}
		return nil
	}
	if u.Scheme != "https" {
		return fmt.Errorf("URL must use https, got %q (use --allow-private-networks for local http receivers)", u.Scheme)
	}
	if err := CheckHostLiteral(u.Hostname()); err != nil {
		return fmt.Errorf("URL host %s: %w (use --allow-private-networks for local receivers)", u.Hostname(), err)
	}
	return nil
}

// control runs after name resolution, on the exact address about to be connected.
func control(p Policy) func(network, address string, c syscall.RawConn) error {
	return func(network, address string, _ syscall.RawConn) error {
		if p.AllowPrivate {
			return nil
		}
		ap, err := netip.ParseAddrPort(address)
		if err != nil {
			return fmt.Errorf("%w: unparsable address %q", ErrForbiddenAddress, address)
		}
		return CheckAddr(ap.Addr())
	}
}

// DialContext dials like net.Dialer.DialContext, refusing non-public addresses unless the
// context's policy allows them.
func DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	d := &net.Dialer{
		Timeout:   15 * time.Second,
		KeepAlive: 30 * time.Second,
		Control:   control(PolicyFrom(ctx)),
	}
	return d.DialContext(ctx, network, addr)
}

// NewTransport returns an http.Transport that dials through DialContext and ignores proxy
// environment variables (a proxy would move the dial, and so the check, elsewhere).
func NewTransport() *http.Transport {
	return &http.Transport{
		Proxy:                 nil,
		DialContext:           DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          100,
		MaxIdleConnsPerHost:   16,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
		ResponseHeaderTimeout: 60 * time.Second,
	}
}
