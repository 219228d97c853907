package demo

import (
	"encoding/json"
	"io"
	"net/http"
	"time"

	"github.com/lifelinehq/lifeline/internal/webhook"
)

// assistAction is the demo shop's endpoint for agent assist's webhook
// actions ("send payment link", "pause subscription"): it checks the
// X-Lifeline-Signature as a real shop must, then answers with the sentence
// Lifeline shows the agent.
func assistAction(secret string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 64<<10))
		if err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "bad_request"})
			return
		}
		if secret == "" || !webhook.Verify(secret, r.Header.Get(webhook.HeaderTimestamp), r.Header.Get(webhook.HeaderSignature), body, time.Now(), 5*time.Minute) {
			writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "bad_signature"})
			return
		}
		var req struct {
			Action  string            `json:"action"`
			Params  map[string]string `json:"params"`
			Visitor struct {
				Attributes map[string]string `json:"attributes"`
			} `json:"visitor"`
		}
		if err := json.Unmarshal(body, &req); err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "bad_request"})
			return
		}
		switch req.Action {
		case "payment-link":
			msg := "payment link sent to " + req.Params["email"]
			if a := req.Params["amount"]; a != "" {
				msg = "payment link for €" + a + " sent to " + req.Params["email"]
			}
			writeJSON(w, http.StatusOK, map[string]string{"message": msg + " (valid 24 h)"})
		case "pause":
			until := time.Now().AddDate(0, 1, 0).Format("2 January")
			plan := req.Visitor.Attributes["plan"]
			if plan == "" {
				plan = "subscription"
			}
			writeJSON(w, http.StatusOK, map[string]string{"message": plan + " paused until " + until})
		default:
			writeJSON(w, http.StatusNotFound, map[string]string{"error": "unknown_action"})
		}
	}
}
