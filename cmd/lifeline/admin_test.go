package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/lifelinehq/lifeline/chat"
	"github.com/lifelinehq/lifeline/internal/auth"
	"github.com/lifelinehq/lifeline/internal/client"
)

// The agent, site and visitor commands, run in-process on one data directory:
// what they print, what they refuse and why, and quiet logs unless a log
// level is asked for.
func TestAdminCommands(t *testing.T) {
	data := t.TempDir()
	env := map[string]string{}
	cli := func(stdin string, args ...string) (stdout, stderr string, err error) {
		t.Helper()
		var out, errOut bytes.Buffer
		if len(args) > 1 { // the data directory follows the subcommand
			args = append(args[:2:2], append([]string{"--data", data}, args[2:]...)...)
		}
		err = run(context.Background(), args,
			func(k string) string { return env[k] }, strings.NewReader(stdin), &out, &errOut)
		return out.String(), errOut.String(), err
	}
	ok := func(stdin string, args ...string) string {
		t.Helper()
		out, errOut, err := cli(stdin, args...)
		if err != nil {
			t.Fatalf("lifeline %s: %v\n%s", strings.Join(args, " "), err, errOut)
		}
		if errOut != "" {
			t.Errorf("lifeline %s wrote to stderr without a log level asked for:\n%s", strings.Join(args, " "), errOut)
		}
		return out
	}
	refused := func(want string, code int, stdin string, args ...string) {
		t.Helper()
		_, _, err := cli(stdin, args...)
		if err == nil || !strings.Contains(err.Error(), want) || exitCode(err) != code {
			t.Errorf("lifeline %s = %v (exit %d), want an error saying %q (exit %d)", strings.Join(args, " "), err, exitCode(err), want, code)
		}
	}

	out := ok("", "site", "add", "--key", "shop", "--origins", "shop.example.com", "--public-url", "https://chat.example.com")
	for _, want := range []string{"site shop added", "allowed origins: shop.example.com", "identity secret: ", `<script async src="https://chat.example.com/widget.js" data-site="shop"></script>`} {
		if !strings.Contains(out, want) {
			t.Errorf("site add printed:\n%s\nwant %q", out, want)
		}
	}
	if out := ok("", "site", "list"); !strings.Contains(out, "shop.example.com") {
		t.Errorf("site list:\n%s", out)
	}
	refused("must be a host like shop.example.com", 1, "", "site", "add", "--origins", "not a host!")
	refused("site needs a subcommand", 2, "", "site")

	// The prompt names the length the check enforces.
	out, _, err := cli("short\n", "agent", "add", "--email", "sam@example.com")
	if err == nil || !strings.Contains(err.Error(), "at least 10 characters") || !strings.Contains(out, "Password (10 or more characters)") {
		t.Errorf("a short password: prompt %q, error %v; want the prompt and the check to agree on 10", out, err)
	}
	refused("not an email address", 1, "long enough password\n", "agent", "add", "--email", "sam")
	refused("nothing given", 1, "", "agent", "add", "--email", "sam@example.com")
	refused("agent add needs --email", 2, "", "agent", "add")

	if out := ok("long enough password\n", "agent", "add", "--email", "Sam@Example.com", "--name", "Sam", "--role", "admin"); !strings.Contains(out, "added sam@example.com (admin)") {
		t.Errorf("agent add printed %q", out)
	}
	refused("an agent with email sam@example.com already exists", 1, "another good password\n", "agent", "add", "--email", "SAM@example.com")
	ok("", "agent", "disable", "sam@example.com")
	if out := ok("", "agent", "list"); !strings.Contains(out, "sam@example.com") || !strings.Contains(out, "disabled") {
		t.Errorf("agent list after disabling:\n%s", out)
	}
	ok("a new long password\n", "agent", "passwd", "sam@example.com")
	refused(`no agent with email "nobody@example.com"`, 1, "", "agent", "disable", "nobody@example.com")

	refused(`no visitor with ID "nosuch"`, 1, "", "visitor", "export", "nosuch")
	refused(`no visitor with ID "nosuch"`, 1, "", "visitor", "erase", "nosuch")
	if out := ok("", "visitor", "find", "--site", "shop", "--email", "nobody@example.com"); out != "" {
		t.Errorf("visitor find with no match printed %q", out)
	}

	// Asked for, the logs are there.
	env["LIFELINE_LOG_LEVEL"] = "info"
	if _, errOut, err := cli("", "site", "list"); err != nil || !strings.Contains(errOut, "bolt store open") {
		t.Errorf("site list with LIFELINE_LOG_LEVEL=info: stderr %q, %v; want the store's log lines", errOut, err)
	}
}

// The API's validation errors say what was wrong in the words a person
// needs, without the store's sentinel or record IDs around them, and the
// CLI prints them the same way.
func TestValidationErrorsSayWhatIsWrong(t *testing.T) {
	n := startNode(t, t.TempDir(), nil)
	ctx := testCtx(t)
	admin, err := client.Login(ctx, n.URL, adminEmail, testPassword)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		body         map[string]any
		status       int
		code, answer string
	}{
		{map[string]any{"email": "bad", "password": testPassword}, 400, "invalid", `"bad" is not an email address`},
		{map[string]any{"email": "z@example.com", "password": "short"}, 400, "invalid", "a password needs at least 10 characters"},
		{map[string]any{"email": "z@example.com", "password": testPassword, "role": "boss"}, 400, "invalid", `role "boss" is not admin, agent or analyst`},
		{map[string]any{"email": adminEmail, "password": testPassword}, 409, "conflict", "the record changed or already exists"},
	} {
		err := admin.Do(ctx, "POST", "/api/v1/agents", tc.body, nil)
		var se *client.StatusError
		if !errors.As(err, &se) {
			t.Fatalf("POST /api/v1/agents %v = %v, want an HTTP error", tc.body, err)
		}
		var got struct {
			Error struct{ Code, Message string }
		}
		if json.Unmarshal([]byte(se.Body), &got) != nil || se.Status != tc.status || got.Error.Code != tc.code || got.Error.Message != tc.answer {
			t.Errorf("POST /api/v1/agents %v = %d %s, want %d %s %q", tc.body, se.Status, se.Body, tc.status, tc.code, tc.answer)
		}
	}

	// The CLI's message for the same mistake.
	_, err = auth.New(nil, auth.Options{}).HashPassword("short")
	if got := chat.Problem(fmt.Errorf("lifeline agent add: %w", err)); got != "a password needs at least 10 characters" {
		t.Errorf("the CLI prints %q", got)
	}
}

// lifeline --help (and help, -h) lists the commands; serve -h lists the
// node's flags; an unknown command is a usage error with the list.
func TestHelpListsTheCommands(t *testing.T) {
	for _, args := range [][]string{{"--help"}, {"-h"}, {"help"}, {"serve", "-h"}, {"nonsense"}} {
		var out, errOut bytes.Buffer
		err := run(context.Background(), args, func(string) string { return "" }, strings.NewReader(""), &out, &errOut)
		text := out.String() + errOut.String()
		if err != nil {
			text += err.Error()
		}
		want, code := "lifeline agent add|list", 0
		switch args[0] {
		case "serve":
			want, code = "-max-conns-per-ip", 2
		case "nonsense":
			code = 2
		}
		if !strings.Contains(text, want) || (err == nil) != (code == 0) || (err != nil && exitCode(err) != code) {
			t.Errorf("lifeline %s: %v (exit %d), output:\n%s\nwant %q and exit %d", strings.Join(args, " "), err, exitCode(err), text, want, code)
		}
	}
}
