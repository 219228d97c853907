package demo

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/lifelinehq/lifeline/internal/leaktest"
)

func TestMain(m *testing.M) { leaktest.Main(m) }

var testCfg = Config{SiteKey: "site_demo", IdentitySecret: "s3cret"}

func do(t *testing.T, method, path, body string) *http.Response {
	t.Helper()
	r := httptest.NewRequest(method, path, strings.NewReader(body))
	w := httptest.NewRecorder()
	Handler(testCfg).ServeHTTP(w, r)
	return w.Result()
}

func TestAPI(t *testing.T) {
	tests := []struct {
		name, path, body string
		want             int
	}{
		{"declined card", "/demo/api/pay", `{"card":"4000 0000 0000 0002"}`, http.StatusPaymentRequired},
		{"good card", "/demo/api/pay", `{"card":"4242 4242 4242 4242"}`, http.StatusOK},
		{"short card", "/demo/api/pay", `{"card":"4242"}`, http.StatusBadRequest},
		{"not JSON", "/demo/api/pay", `card=1`, http.StatusBadRequest},
		{"any coupon", "/demo/api/coupon", `{"code":"WELCOME10"}`, http.StatusUnprocessableEntity},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			res := do(t, "POST", tt.path, tt.body)
			var body map[string]string
			if err := json.NewDecoder(res.Body).Decode(&body); err != nil {
				t.Fatalf("POST %s: decode: %v", tt.path, err)
			}
			if res.StatusCode != tt.want || body["message"] == "" {
				t.Errorf("POST %s %s = %d %v, want %d with a message", tt.path, tt.body, res.StatusCode, body, tt.want)
			}
		})
	}
}

func TestPages(t *testing.T) {
	for _, path := range []string{"/demo", "/demo/", "/demo/account/cancel"} {
		res := do(t, "GET", path, "")
		b, _ := io.ReadAll(res.Body)
		page := string(b)
		if res.StatusCode != 200 {
			t.Fatalf("GET %s = %d", path, res.StatusCode)
		}
		csp := res.Header.Get("Content-Security-Policy")
		if !strings.Contains(csp, "script-src 'self';") || !strings.Contains(csp, "style-src 'self';") {
			t.Errorf("GET %s: CSP = %q, want script-src and style-src 'self' only", path, csp)
		}
		if strings.Contains(page, "<script>") || strings.Contains(page, "<style") || strings.Contains(page, " style=") || strings.Contains(page, "onclick=") {
			t.Errorf("GET %s has inline script or style", path)
		}
		if !strings.Contains(page, `<script async src="/widget.js" data-site="site_demo"></script>`) {
			t.Errorf("GET %s lacks the snippet", path)
		}
	}
	if res := do(t, "GET", "/demo/nope", ""); res.StatusCode != 404 {
		t.Errorf("GET /demo/nope = %d, want 404", res.StatusCode)
	}
}

func TestBootSignsIdentity(t *testing.T) {
	res := do(t, "GET", "/demo/assets/boot.js", "")
	b, _ := io.ReadAll(res.Body)
	// HMAC-SHA256("s3cret", "demo-ava"), computed independently (Python's hmac).
	const want = "3d678fe2ffaa6acd678241d97a9daafa6979a7729d5ac6eb131a10400ef02e3a"
	if got := Sign("s3cret", Customer.ID); got != want {
		t.Fatalf("Sign(s3cret, %s) = %q, want %q", Customer.ID, got, want)
	}
	if !strings.Contains(string(b), `"hash":"`+want+`"`) || !strings.Contains(string(b), "window.lifeline=window.lifeline||") {
		t.Errorf("boot.js = %s, want the stub and identify with hash %s", b, want)
	}
	if ct := res.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/javascript") {
		t.Errorf("boot.js Content-Type = %q", ct)
	}
}

func TestPolicyAllowsACrossOriginWidget(t *testing.T) {
	p := policy("https://chat.example.com/widget.js")
	for _, want := range []string{"script-src 'self' https://chat.example.com;", "connect-src 'self' https://chat.example.com wss://chat.example.com;"} {
		if !strings.Contains(p, want) {
			t.Errorf("policy = %q, want it to contain %q", p, want)
		}
	}
}
