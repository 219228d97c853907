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
