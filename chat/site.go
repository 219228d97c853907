package chat

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net/url"
	"regexp"
	"strings"
)

var siteKeyPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{1,62}$`)

// NewSite returns a site with a fresh identity secret, checking the key and
// origins. An empty key gets a random one.
func NewSite(key, name string, origins []string) (Site, error) {
	if key == "" {
		key = "site_" + randomHex(6)
	}
	s := Site{Key: key, Name: name, Origins: origins, IdentitySecret: randomToken(24)}
	if s.Name == "" {
		s.Name = key
	}
	return s, ValidateSite(s)
}

// ValidateSite reports the first problem with a site's settings.
func ValidateSite(s Site) error {
	if !siteKeyPattern.MatchString(s.Key) {
		return fmt.Errorf("%w: site key %q must be 2 to 63 lower-case letters, digits, '-' or '_'", ErrInvalid, s.Key)
	}
	for _, o := range s.Origins {
		if err := checkOrigin(o); err != nil {
			return err
		}
	}
	if s.Theme != "" && !regexp.MustCompile(`^#[0-9a-fA-F]{6}$`).MatchString(s.Theme) {
		return fmt.Errorf("%w: theme %q must be a colour like #3355ff", ErrInvalid, s.Theme)
	}
	for k, v := range s.Strings {
		if len(k) > 64 || len(v) > 500 {
			return fmt.Errorf("%w: widget string %q is too long", ErrInvalid, truncate(k, 64))
		}
	}
	return nil
}

// checkOrigin accepts a host pattern ("shop.example.com", "*.example.com",
// "localhost:3000"); a full origin URL is reduced to its host first.
func checkOrigin(o string) error {
	host := OriginHost(o)
	if host == "" || strings.ContainsAny(host, " /?#@") {
		return fmt.Errorf("%w: allowed origin %q must be a host like shop.example.com or *.example.com", ErrInvalid, o)
	}
	return nil
}

// OriginHost reduces "https://shop.example.com" to "shop.example.com" and
// leaves a bare host pattern as it is.
func OriginHost(o string) string {
	o = strings.TrimSpace(o)
	if strings.Contains(o, "://") {
		u, err := url.Parse(o)
		if err != nil {
			return ""
		}
		return u.Host
	}
	return o
}

func randomToken(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
