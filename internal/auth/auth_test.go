package auth

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lifelinehq/lifeline/chat"
	"github.com/lifelinehq/lifeline/internal/audit"
	"github.com/lifelinehq/lifeline/internal/store/bolt"
	"golang.org/x/crypto/bcrypt"
)

const password = "correct horse battery"

func newService(t *testing.T, now func() time.Time) *Service {
	t.Helper()
	st, err := bolt.Open(filepath.Join(t.TempDir(), "auth.db"), bolt.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return New(st, Options{BcryptCost: bcrypt.MinCost, Now: now})
}

func TestAddAgentValidates(t *testing.T) {
	s := newService(t, nil)
	ctx := context.Background()
	for _, tc := range []struct {
		name, email, password string
		role                  chat.Role
	}{
		{"bad email", "not-an-email", password, chat.RoleAgent},
		{"short password", "a@example.com", "short", chat.RoleAgent},
		{"unknown role", "a@example.com", password, "root"},
	} {
		if _, err := s.AddAgent(ctx, tc.email, "A", tc.role, tc.password); !errors.Is(err, chat.ErrInvalid) {
			t.Errorf("%s: err = %v, want ErrInvalid", tc.name, err)
		}
	}
	if _, err := s.AddAgent(ctx, "Ava@Example.com", "", chat.RoleAgent, password); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AddAgent(ctx, "ava@example.com", "", chat.RoleAgent, password); !errors.Is(err, chat.ErrConflict) {
		t.Fatalf("second account with the same email: err = %v, want ErrConflict", err)
	}
}

func TestLoginSessionLogout(t *testing.T) {
	s := newService(t, nil)
	ctx := context.Background()
	if created, err := s.EnsureAdmin(ctx, "admin@example.com", password); err != nil || !created {
		t.Fatalf("EnsureAdmin = %v, %v", created, err)
	}
	if created, _ := s.EnsureAdmin(ctx, "other@example.com", password); created {
		t.Fatal("EnsureAdmin created a second admin")
	}
	if _, _, _, err := s.Login(ctx, "admin@example.com", "wrong password", "1.2.3.4"); !errors.Is(err, ErrBadCredentials) {
		t.Fatalf("wrong password: err = %v", err)
	}
	if _, _, _, err := s.Login(ctx, "nobody@example.com", password, "1.2.3.4"); !errors.Is(err, ErrBadCredentials) {
		t.Fatalf("unknown email: err = %v", err)
	}
	a, sess, token, err := s.Login(ctx, "ADMIN@example.com", password, "1.2.3.4")
	if err != nil {
		t.Fatal(err)
	}
	if sess.ID == token || sess.CSRF == "" {
		t.Fatal("the raw token is stored, or no CSRF token")
	}
	got, _, err := s.Session(ctx, token)
	if err != nil || got.ID != a.ID {
		t.Fatalf("Session = %v, %v", got.ID, err)
	}
	if err := s.SetDisabled(ctx, a.ID, true); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Session(ctx, token); !errors.Is(err, ErrNoSession) {
		t.Fatalf("a disabled agent's session still works: %v", err)
	}
	if err := s.SetDisabled(ctx, a.ID, false); err != nil {
		t.Fatal(err)
	}
	if err := s.Logout(ctx, token); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Session(ctx, token); !errors.Is(err, ErrNoSession) {
		t.Fatalf("session survives logout: %v", err)
	}
}

func TestLoginThrottled(t *testing.T) {
	now := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	s := newService(t, func() time.Time { return now })
	ctx := context.Background()
	if _, err := s.AddAgent(ctx, "a@example.com", "", chat.RoleAgent, password); err != nil {
		t.Fatal(err)
	}
	for range 10 {
		s.Login(ctx, "a@example.com", "wrong password", "1.2.3.4")
	}
	if _, _, _, err := s.Login(ctx, "a@example.com", password, "5.6.7.8"); !errors.Is(err, ErrThrottled) {
		t.Fatalf("11th try with the right password: err = %v, want ErrThrottled (per email)", err)
	}
	now = now.Add(16 * time.Minute)
	if _, _, _, err := s.Login(ctx, "a@example.com", password, "5.6.7.8"); err != nil {
		t.Fatalf("after the window: %v", err)
	}
}

func TestRequireRolesAndCSRF(t *testing.T) {
	s := newService(t, nil)
	ctx := context.Background()
	if _, err := s.AddAgent(ctx, "analyst@example.com", "", chat.RoleAnalyst, password); err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	s.Routes(mux)
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) })
	mux.Handle("POST /agents-only", s.Require(chat.RoleAdmin, chat.RoleAgent)(ok))
	mux.Handle("POST /anyone", s.Require()(ok))
	srv := httptest.NewServer(mux)
	defer srv.Close()

	do := func(method, path, body, cookie, csrf, origin string) (int, string) {
		req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
		if cookie != "" {
			req.AddCookie(&http.Cookie{Name: CookieName, Value: cookie})
		}
		if csrf != "" {
			req.Header.Set("X-CSRF-Token", csrf)
		}
		if origin != "" {
			req.Header.Set("Origin", origin)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var e struct {
			Error struct{ Code string }
			CSRF  string `json:"csrf_token"`
		}
		json.NewDecoder(resp.Body).Decode(&e)
		if resp.StatusCode == http.StatusOK {
			for _, c := range resp.Cookies() {
				if c.Name == CookieName {
					if !c.HttpOnly || c.SameSite != http.SameSiteStrictMode {
						t.Errorf("session cookie is not HttpOnly SameSite=Strict: %+v", c)
					}
					return resp.StatusCode, c.Value + " " + e.CSRF
				}
			}
		}
		return resp.StatusCode, e.Error.Code
	}

	if code, what := do("POST", "/api/v1/login", `{"email":"analyst@example.com","password":"`+password+`"}`, "", "", "https://evil.example"); code != http.StatusForbidden || what != "csrf" {
		t.Fatalf("cross-site login = %d %s, want 403 csrf", code, what)
	}
	code, both := do("POST", "/api/v1/login", `{"email":"analyst@example.com","password":"`+password+`"}`, "", "", "")
	if code != http.StatusOK {
		t.Fatalf("login = %d %s", code, both)
	}
	cookie, csrf, _ := strings.Cut(both, " ")
	for _, tc := range []struct {
		name, path, cookie, csrf, origin string
		want                             int
		code                             string
	}{
		{"no session", "/anyone", "", csrf, "", 401, "unauthenticated"},
		{"no csrf token", "/anyone", cookie, "", "", 403, "csrf"},
		{"wrong csrf token", "/anyone", cookie, "nope", "", 403, "csrf"},
		{"foreign origin", "/anyone", cookie, csrf, "https://evil.example", 403, "csrf"},
		{"analyst on agents' route", "/agents-only", cookie, csrf, "", 403, "forbidden"},
		{"allowed", "/anyone", cookie, csrf, srv.URL, 204, ""},
	} {
		if got, code := do("POST", tc.path, "", tc.cookie, tc.csrf, tc.origin); got != tc.want || code != tc.code {
			t.Errorf("%s: %d %q, want %d %q", tc.name, got, code, tc.want, tc.code)
		}
	}
}

func TestAPIKeys(t *testing.T) {
	st, err := bolt.Open(filepath.Join(t.TempDir(), "auth.db"), bolt.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	trail := audit.New(st, nil)
	s := New(st, Options{BcryptCost: bcrypt.MinCost, Audit: trail})
	ctx := context.Background()
	admin, err := s.AddAgent(ctx, "admin@example.com", "", chat.RoleAdmin, password)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	s.Routes(mux)
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a, _ := AgentFrom(r.Context())
		w.Header().Set("X-Who", a.Email)
		w.WriteHeader(http.StatusNoContent)
	})
	mux.Handle("POST /admins-only", s.Require(chat.RoleAdmin)(ok))
	mux.Handle("POST /agents", s.Require(chat.RoleAdmin, chat.RoleAgent)(ok))
	srv := httptest.NewServer(mux)
	defer srv.Close()
	call := func(method, path, bearer string) (*http.Response, string) {
		req, _ := http.NewRequest(method, srv.URL+path, nil)
		if bearer != "" {
			req.Header.Set("Authorization", "Bearer "+bearer)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp, resp.Header.Get("X-Who")
	}

	k, secret, err := s.CreateKey(ctx, "crm sync", chat.RoleAgent, admin)
	if err != nil {
		t.Fatal(err)
	}
	if resp, who := call("POST", "/agents", secret); resp.StatusCode != http.StatusNoContent || who != "key:crm sync" {
		t.Fatalf("agent-role key on an agents' route = %d as %q, want 204 as the key (no CSRF needed)", resp.StatusCode, who)
	}
	if resp, _ := call("POST", "/admins-only", secret); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("agent-role key on an admin route = %d, want 403", resp.StatusCode)
	}
	if resp, _ := call("POST", "/agents", secret+"x"); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("a wrong secret = %d, want 401", resp.StatusCode)
	}
	if resp, _ := call("GET", "/api/v1/keys", secret); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("an agent key listing keys = %d, want 403", resp.StatusCode)
	}
	// Only the digest is at rest.
	raw, err := st.Meta(ctx, keyRecord(k.ID))
	if err != nil || strings.Contains(string(raw), secret) || !strings.Contains(string(raw), digest(secret)) {
		t.Fatalf("stored key = %s, %v; want the digest and never the secret", raw, err)
	}
	if _, err := s.RevokeKey(ctx, k.ID); err != nil {
		t.Fatal(err)
	}
	if resp, _ := call("POST", "/agents", secret); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("a revoked key = %d, want 401", resp.StatusCode)
	}
	keys, err := s.Keys(ctx)
	if err != nil || len(keys) != 1 || keys[0].RevokedAt.IsZero() {
		t.Fatalf("Keys = %+v, %v; want the one key, revoked", keys, err)
	}

	// An admin key manages keys over REST, and that is audited.
	_, adminSecret, err := s.CreateKey(ctx, "ops", chat.RoleAdmin, admin)
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest("POST", srv.URL+"/api/v1/keys", strings.NewReader(`{"name":"bi export","role":"analyst"}`))
	req.Header.Set("Authorization", "Bearer "+adminSecret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var created struct {
		Key    APIKey
		Secret string
	}
	json.NewDecoder(resp.Body).Decode(&created)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated || !strings.HasPrefix(created.Secret, keyPrefix) || created.Key.Role != chat.RoleAnalyst {
		t.Fatalf("POST /api/v1/keys = %d %+v", resp.StatusCode, created)
	}
	entries, err := trail.Entries(ctx, "", 10)
	if err != nil || len(entries) != 1 || entries[0].Action != "key.create" || entries[0].AgentEmail != "key:ops" {
		t.Fatalf("audit = %+v, %v; want key.create by key:ops", entries, err)
	}
}
