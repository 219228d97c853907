package httpjson

import (
	"net/http/httptest"
	"testing"
)

func TestError(t *testing.T) {
	rec := httptest.NewRecorder()
	Error(rec, 418, "teapot", "short & <stout>")
	want := `{"error":{"code":"teapot","message":"short \u0026 \u003cstout\u003e"}}` + "\n"
	if rec.Code != 418 || rec.Body.String() != want {
		t.Fatalf("got %d %q, want 418 %q", rec.Code, rec.Body.String(), want)
	}
	if rec.Header().Get("Content-Type") != "application/json; charset=utf-8" || rec.Header().Get("Cache-Control") != "no-store" {
		t.Fatalf("headers %v", rec.Header())
	}
}
