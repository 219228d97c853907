package webhook

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"syscall"
	"time"
)

// ErrBlocked means a webhook URL leads to an address Lifeline refuses to
// call: loopback, link-local (cloud metadata), private, shared, multicast or
// unspecified, unless the operator allowed the host.
var ErrBlocked = errors.New("webhook: destination address not allowed")

// extra ranges that netip has no predicate for.
var blockedPrefixes = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),         // "this network"
	netip.MustParsePrefix("100.64.0.0/10"),     // carrier-grade NAT, used by some clouds' metadata
	netip.MustParsePrefix("192.0.0.0/24"),      // IETF protocol assignments
	netip.MustParsePrefix("198.18.0.0/15"),     // benchmarking
	netip.MustParsePrefix("240.0.0.0/4"),       // reserved, broadcast
	netip.MustParsePrefix("64:ff9b::/96"),      // NAT64 may reach IPv4 private space
	netip.MustParsePrefix("fd00:ec2::254/128"), // AWS metadata over IPv6 (also ULA)
}

// Blocked reports whether ip is an address webhooks must not reach.
func Blocked(ip netip.Addr) bool {
	ip = ip.Unmap()
	if !ip.IsValid() || ip.IsLoopback() || ip.IsPrivate() || ip.IsUnspecified() ||
		ip.IsLinkLocalUnicast() || ip.IsLinkLocalMulticast() || ip.IsInterfaceLocalMulticast() || ip.IsMulticast() {
		return true
	}
	for _, p := range blockedPrefixes {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// allowList holds hosts the operator allows despite the guard.
type allowList []string

func (a allowList) allows(host string) bool {
	host = strings.ToLower(strings.Trim(host, "[]"))
	return slices.Contains(a, host)
}

func newAllowList(hosts []string) allowList {
	out := make(allowList, 0, len(hosts))
	for _, h := range hosts {
		if h = strings.ToLower(strings.Trim(strings.TrimSpace(h), "[]")); h != "" {
			out = append(out, h)
		}
	}
	return out
}

// checkURL refuses URLs that are not http(s), and literal addresses the
// guard blocks, so that a bad subscription fails when it is made. Names
// are checked when they are resolved, at delivery.
func (a allowList) checkURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("webhook URL must be an absolute http(s) URL")
	}
	if u.User != nil {
		return fmt.Errorf("webhook URL must not carry credentials")
	}
	host := u.Hostname()
	if a.allows(host) {
		return nil
	}
	if ip, err := netip.ParseAddr(host); err == nil && Blocked(ip) {
		return fmt.Errorf("%w: %s", ErrBlocked, host)
	}
	if h := strings.ToLower(host); h == "localhost" || strings.HasSuffix(h, ".localhost") {
		return fmt.Errorf("%w: %s", ErrBlocked, host)
	}
	return nil
}

// NewClient returns an HTTP client for calls to addresses that users
// configure (webhooks, playbook actions): no proxy, a guarded dialer that
// checks the address actually dialled (after DNS, on every redirect)
// unless the host named in the URL is in allowHosts, at most maxRedirects
// redirects (0: none followed, the redirect itself is the answer), and the
// timeout on the whole exchange. A refused address fails with ErrBlocked.
func NewClient(allowHosts []string, timeout time.Duration, maxRedirects int) *http.Client {
	return newClient(newAllowList(allowHosts), timeout, maxRedirects)
}

func newClient(allow allowList, timeout time.Duration, maxRedirects int) *http.Client {
	guarded := &net.Dialer{Timeout: timeout, Control: func(network, address string, _ syscall.RawConn) error {
		ap, err := netip.ParseAddrPort(address)
		if err != nil {
			return fmt.Errorf("%w: %s", ErrBlocked, address)
		}
		if Blocked(ap.Addr()) {
			return fmt.Errorf("%w: %s", ErrBlocked, ap.Addr())
		}
		return nil
	}}
	plain := &net.Dialer{Timeout: timeout}
	tr := &http.Transport{
		Proxy: nil,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			host, _, err := net.SplitHostPort(addr)
			if err != nil {
				return nil, err
			}
			if allow.allows(host) {
				return plain.DialContext(ctx, network, addr)
			}
			return guarded.DialContext(ctx, network, addr)
		},
		TLSHandshakeTimeout:   timeout,
		ResponseHeaderTimeout: timeout,
		MaxIdleConnsPerHost:   4,
		IdleConnTimeout:       90 * time.Second,
	}
	return &http.Client{
		Transport: tr,
		Timeout:   timeout,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if maxRedirects == 0 {
				return http.ErrUseLastResponse
			}
			if len(via) >= maxRedirects {
				return errors.New("webhook: too many redirects")
			}
			if req.URL.Scheme != "http" && req.URL.Scheme != "https" {
				return errors.New("webhook: redirect to a non-http URL")
			}
			return nil
		},
	}
}
