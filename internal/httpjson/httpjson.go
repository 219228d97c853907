// Package httpjson writes the JSON responses of the HTTP API.
package httpjson

import (
	"encoding/json"
	"net/http"
)

// Write sends v as a JSON response with status, never cached.
func Write(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// apiError is the JSON error body of every API failure.
type apiError struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// Error sends the error body {"error":{"code":code,"message":msg}} with
// status.
func Error(w http.ResponseWriter, status int, code, msg string) {
	var e apiError
	e.Error.Code, e.Error.Message = code, msg
	Write(w, status, e)
}
