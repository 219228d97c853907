// Command lifeline is the Lifeline live-chat assist server and its tools.
//
// Usage:
//
//	lifeline [serve] [flags]     run a node (the default)
//	lifeline agent add|list|passwd|disable
//	lifeline site add|list
//	lifeline visitor find|export|erase
//	lifeline backup --out FILE | restore --in FILE
//	lifeline replay [flags] RECORDINGS...
//	lifeline load [flags]
//	lifeline version
//
// Every flag can also be set with an environment variable LIFELINE_<FLAG>
// (upper case, dashes as underscores); flags win.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/lifelinehq/lifeline/chat"
	"github.com/lifelinehq/lifeline/internal/load"
	"github.com/lifelinehq/lifeline/internal/replay"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdin, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "lifeline:", chat.Problem(err))
		}
		os.Exit(exitCode(err))
	}
}

// usageError marks a command-line mistake (exit status 2).
type usageError struct{ error }

func exitCode(err error) int {
	var u usageError
	if errors.As(err, &u) || errors.Is(err, flag.ErrHelp) {
		return 2
	}
	return 1
}

// run is the whole program, testable in-process: args without the program
// name, and the environment as a lookup func.
func run(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	cmd := "serve"
	switch {
	case len(args) == 1 && (args[0] == "-h" || args[0] == "-help" || args[0] == "--help"):
		cmd = "help" // the commands, not serve's flags (serve -h lists those)
	case len(args) > 0 && len(args[0]) > 0 && args[0][0] != '-':
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "serve":
		return serve(ctx, args, getenv, stdout, stderr)
	case "agent":
		return agentCmd(ctx, args, getenv, stdin, stdout, stderr)
	case "site":
		return siteCmd(ctx, args, getenv, stdout, stderr)
	case "visitor":
		return visitorCmd(ctx, args, getenv, stdout, stderr)
	case "backup":
		return backupCmd(ctx, args, getenv, stdin, stdout, stderr)
	case "restore":
		return restoreCmd(ctx, args, getenv, stdout, stderr)
	case "replay":
		return replay.Main(ctx, args, stdout, stderr)
	case "load":
		return load.Main(ctx, args, getenv, stdout, stderr)
	case "version":
		fmt.Fprintln(stdout, "lifeline", version())
		return nil
	case "help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	return usageError{fmt.Errorf("unknown command %q\n\n%s", cmd, usage)}
}

const usage = `Lifeline: live chat that notices when visitors struggle.

Usage:
  lifeline [serve] [flags]          run a node (default; see lifeline serve -h)
  lifeline agent add|list|passwd|disable
  lifeline site add|list
  lifeline visitor find|export|erase   data rights: a visitor's data out, or gone
  lifeline backup --out FILE        snapshot a running node's embedded store
  lifeline restore --in FILE        put a snapshot in place (node stopped)
  lifeline replay [flags] FILES...  backtest detector rules on recordings
  lifeline load [flags]             load-test a running node
  lifeline version

Every flag can also be set as LIFELINE_<FLAG> in the environment; flags win.
`
