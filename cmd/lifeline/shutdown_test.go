package main

import (
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/lifelinehq/lifeline/chat"
	"github.com/lifelinehq/lifeline/internal/client"
)

// TestGracefulShutdown sends SIGTERM to the real binary: connected clients
// are told to reconnect elsewhere (1012), the process exits by itself, and
// what was acknowledged is there after a restart.
func TestGracefulShutdown(t *testing.T) {
	addr, data := freePort(t), t.TempDir()
	base := "http://" + addr
	p := startProc(t, addr, "--data", data)
	ctx := testCtx(t)

	v, err := client.DialVisitor(ctx, base, "demo", client.Options{Origin: base})
	if err != nil {
		t.Fatal(err)
	}
	defer v.CloseNow()
	if err := v.Send(ctx, map[string]any{"type": "hello"}); err != nil {
		t.Fatal(err)
	}
	if _, err := v.Until(ctx, "welcome", nil); err != nil {
		t.Fatal(err)
	}
	if err := v.Send(ctx, map[string]any{"type": "message", "client_id": "before-stop", "text": "still there?"}); err != nil {
		t.Fatal(err)
	}
	ack, err := v.Until(ctx, "ack", nil)
	if err != nil {
		t.Fatal(err)
	}

	if err := syscall.Kill(p.cmd.Process.Pid, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	for err == nil {
		_, err = v.Next(ctx)
	}
	if s := websocket.CloseStatus(err); s != websocket.StatusCode(chat.CloseServiceRestart) {
		t.Fatalf("socket closed with %v (%v), want 1012 service restart", s, err)
	}
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		t.Fatalf("the node did not exit after SIGTERM; logs:\n%s", p.logs.String())
	}
	if code := p.cmd.ProcessState.ExitCode(); code != 0 {
		t.Fatalf("exit status %d after SIGTERM; logs:\n%s", code, p.logs.String())
	}

	startProc(t, addr, "--data", data)
	admin, err := client.Login(ctx, base, adminEmail, testPassword)
	if err != nil {
		t.Fatal(err)
	}
	var tr struct{ Messages []chat.Message }
	if err := admin.Do(ctx, http.MethodGet, "/api/v1/conversations/"+ack.ConversationID, nil, &tr); err != nil {
		t.Fatal(err)
	}
	if len(tr.Messages) != 1 || !strings.Contains(tr.Messages[0].Text, "still there") {
		t.Fatalf("after restart the transcript is %+v, want the acknowledged message", tr.Messages)
	}
}
