package netguard

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"testing"
	"time"
)

func TestCheckHostLiteralRefusesNonPublic(t *testing.T) {
	for _, host := range []string{
		"0.0.0.0", "::", "[::]",
		"127.0.0.1", "127.1.2.3", "::1", "[::1]",
		"10.0.0.1", "10.255.255.255",
		"172.16.0.1", "172.31.255.254",
		"192.168.1.1",
		"169.254.169.254", "169.254.0.1",
		"100.64.0.1", "100.127.255.254",
		"fc00::1", "fd00:ec2::254", "fdff::1",
		"fe80::1", "fe80::1%eth0", "[fe80::1%25eth0]",
		"::ffff:127.0.0.1", "::ffff:10.0.0.1", "::ffff:169.254.169.254", "[::ffff:7f00:1]",
		"2130706433", "0x7f000001", "0X7F000001", "017700000001", "127.1", "0177.0.0.1", "0x7f.0.0.1", "10.1",
		"224.0.0.1", "255.255.255.255", "64:ff9b::7f00:1", "2002:7f00:1::",
		"localhost", "LOCALHOST.", "a.localhost", "printer.local", "metadata.google.internal", "metadata",
	} {
		if err := CheckHostLiteral(host); !errors.Is(err, ErrForbiddenAddress) {
			t.Errorf("CheckHostLiteral(%q) = %v, want ErrForbiddenAddress", host, err)
		}
	}
}

func TestCheckHostLiteralAllowsPublic(t *testing.T) {
	for _, host := range []string{
		"8.8.8.8", "1.1.1.1", "2606:4700::1111", "[2606:4700::1111]", "::ffff:8.8.8.8",
		"172.32.0.1", "100.128.0.1", "192.169.0.1", "11.0.0.1",
		"example.com", "api.github.com", "0xcafe.example.com", "1.2.3.4.5", "08.0.0.1x", "host-127.0.0.1.example",
		"134744072", // 8.8.8.8 as one decimal number
	} {
		if err := CheckHostLiteral(host); err != nil {
			t.Errorf("CheckHostLiteral(%q) = %v, want nil", host, err)
		}
	}
}

func TestCheckAddr(t *testing.T) {
	for _, tc := range []struct {
		addr   string
		public bool
	}{
		{"0.0.0.0", false}, {"::", false}, {"127.0.0.1", false}, {"127.255.255.254", false}, {"::1", false},
		{"10.0.0.1", false}, {"172.16.0.1", false}, {"192.168.0.1", false}, {"169.254.169.254", false},
		{"100.64.0.1", false}, {"fc00::1", false}, {"fd12:3456::1", false}, {"fe80::1", false},
		{"fe80::1%eth0", false}, {"fd00::1%1", false},
		{"::ffff:127.0.0.1", false}, {"::ffff:10.0.0.1", false}, {"::ffff:0.0.0.0", false},
		{"8.8.8.8", true}, {"2606:4700::1111", true}, {"::ffff:8.8.8.8", true}, {"2a00:1450:4001::200e", true},
	} {
		err := CheckAddr(netip.MustParseAddr(tc.addr))
		if tc.public && err != nil {
			t.Errorf("CheckAddr(%s) = %v, want nil", tc.addr, err)
		}
		if !tc.public && !errors.Is(err, ErrForbiddenAddress) {
			t.Errorf("CheckAddr(%s) = %v, want ErrForbiddenAddress", tc.addr, err)
		}
	}
	if err := CheckAddr(netip.Addr{}); !errors.Is(err, ErrForbiddenAddress) {
		t.Errorf("CheckAddr(zero) = %v, want ErrForbiddenAddress", err)
	}
}

func TestLegacyIPv4(t *testing.T) {
	for in, want := range map[string]string{
		"2130706433":   "127.0.0.1",
		"0x7f000001":   "127.0.0.1",
		"017700000001": "127.0.0.1",
		"127.1":        "127.0.0.1",
		"127.0.1":      "127.0.0.1",
		"0177.0.0.1":   "127.0.0.1",
		"0x7f.1":       "127.0.0.1",
		"10.65535":     "10.0.255.255",
		"0":            "0.0.0.0",
		"4294967295":   "255.255.255.255",
	} {
		if got := legacyIPv4(in); !got.IsValid() || got.String() != want {
			t.Errorf("legacyIPv4(%q) = %v, want %s", in, got, want)
		}
	}
	for _, in := range []string{
		"", "4294967296", "0x", "0x1g", "08", "1.2.3.4.5", "256.1", "1.2.65536", "example.com", "0xcafe.example",
		"+1", "1_000", "1..2", "1.2.3.", "-1",
	} {
		if got := legacyIPv4(in); got.IsValid() {
			t.Errorf("legacyIPv4(%q) = %v, want invalid", in, got)
		}
	}
}

func TestCheckURL(t *testing.T) {
	strict, open := Policy{}, Policy{AllowPrivate: true}
	for _, tc := range []struct {
		p   Policy
		url string
		ok  bool
	}{
		{strict, "https://example.com/hooks", true},
		{strict, "http://example.com/hooks", false},
		{strict, "https://127.0.0.1:8443/", false},
		{strict, "https://localhost/", false},
		{strict, "https://[::1]/", false},
		{strict, "https://2130706433/", false},
		{strict, "ftp://example.com/", false},
		{strict, "https:///nohost", false},
		{open, "http://127.0.0.1:8080/", true},
		{open, "https://localhost/", true},
		{open, "ftp://127.0.0.1/", false},
	} {
		err := CheckURL(tc.p, tc.url)
		if (err == nil) != tc.ok {
			t.Errorf("CheckURL(%+v, %q) = %v, want ok=%v", tc.p, tc.url, err, tc.ok)
		}
	}
}

func TestPolicyFromDefaultIsStrict(t *testing.T) {
	if PolicyFrom(context.Background()).AllowPrivate {
		t.Fatal("default policy allows private networks")
	}
	ctx := WithPolicy(context.Background(), Policy{AllowPrivate: true})
	if !PolicyFrom(ctx).AllowPrivate {
		t.Fatal("policy lost in context")
	}
}

// The control function sees the resolved address exactly as the dialer passes it.
func TestControlChecksResolvedAddress(t *testing.T) {
	strict := control(Policy{})
	for _, addr := range []string{"127.0.0.1:80", "[::1]:443", "[fe80::1%eth0]:443", "[::ffff:10.0.0.1]:80", "169.254.169.254:80", "garbage"} {
		if err := strict("tcp", addr, nil); !errors.Is(err, ErrForbiddenAddress) {
			t.Errorf("control(%q) = %v, want ErrForbiddenAddress", addr, err)
		}
	}
	for _, addr := range []string{"8.8.8.8:443", "[2606:4700::1111]:443"} {
		if err := strict("tcp", addr, nil); err != nil {
			t.Errorf("control(%q) = %v, want nil", addr, err)
		}
	}
	if err := control(Policy{AllowPrivate: true})("tcp", "127.0.0.1:80", nil); err != nil {
		t.Errorf("permissive control refused loopback: %v", err)
	}
}

func TestDialContextLoopback(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	_, port, _ := net.SplitHostPort(ln.Addr().String())

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, addr := range []string{ln.Addr().String(), net.JoinHostPort("localhost", port)} {
		if c, err := DialContext(ctx, "tcp", addr); !errors.Is(err, ErrForbiddenAddress) {
			if c != nil {
				c.Close()
			}
			t.Errorf("DialContext(%s) without policy = %v, want ErrForbiddenAddress", addr, err)
		}
		c, err := DialContext(WithPolicy(ctx, Policy{AllowPrivate: true}), "tcp", addr)
		if err != nil {
			t.Errorf("DialContext(%s) with AllowPrivate: %v", addr, err)
			continue
		}
		c.Close()
	}
}

func TestNewTransportIgnoresProxyEnv(t *testing.T) {
	t.Setenv("HTTPS_PROXY", "http://127.0.0.1:1")
	t.Setenv("HTTP_PROXY", "http://127.0.0.1:1")
	tr := NewTransport()
	if tr.Proxy != nil {
		t.Fatal("transport uses a proxy")
	}
	if tr.DialContext == nil {
		t.Fatal("transport does not dial through the guard")
	}
}
