package chat

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"strings"
)

// Visitor tokens are "v1.<site>.<visitor>.<mac>", where mac is the first 18
// bytes of HMAC-SHA256(secret, "v1.<site>.<visitor>") in base64url. A token
// is scoped to one visitor on one site; it stops working when the visitor is
// erased because the hub also requires the visitor record to exist.

const tokenVersion = "v1"

// SignVisitorToken returns a token for visitorID on siteKey.
func SignVisitorToken(secret []byte, siteKey, visitorID string) string {
	body := tokenVersion + "." + siteKey + "." + visitorID
	return body + "." + tokenMAC(secret, body)
}

// VerifyVisitorToken returns the visitor id in token if it was signed with
// secret for siteKey.
func VerifyVisitorToken(secret []byte, siteKey, token string) (visitorID string, ok bool) {
	i := strings.LastIndexByte(token, '.')
	if i < 0 {
		return "", false
	}
	body, mac := token[:i], token[i+1:]
	parts := strings.Split(body, ".")
	if len(parts) != 3 || parts[0] != tokenVersion || parts[1] != siteKey || parts[2] == "" {
		return "", false
	}
	if !hmac.Equal([]byte(mac), []byte(tokenMAC(secret, body))) {
		return "", false
	}
	return parts[2], true
}

func tokenMAC(secret []byte, body string) string {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(body))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil)[:18])
}

// IdentityHash is what a site's backend computes for identify:
// hex(HMAC-SHA256(identity secret, user id)).
func IdentityHash(secret, userID string) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(userID))
	return hex.EncodeToString(m.Sum(nil))
}

// VerifyIdentity reports whether hash proves userID for the site's secret.
// A site without a secret verifies nobody.
func VerifyIdentity(secret, userID, hash string) bool {
	if secret == "" || hash == "" {
		return false
	}
	return hmac.Equal([]byte(strings.ToLower(hash)), []byte(IdentityHash(secret, userID)))
}
