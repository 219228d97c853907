package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/lifelinehq/lifeline/chat"
	"github.com/lifelinehq/lifeline/internal/auth"
)

// withState parses the shared state flags plus extra ones, opens the state
// and runs fn.
func withState(ctx context.Context, name string, args []string, getenv func(string) string, stderr io.Writer,
	extra func(*flag.FlagSet), fn func(st *state, fs *flag.FlagSet) error) error {
	var c config
	fs := newFlagSet(name, stderr)
	addStateFlags(fs, getenv, &c)
	if extra != nil {
		extra(fs)
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := c.validate(); err != nil {
		return err
	}
	// An admin command's output is its result; the store's open and close
	// lines are there only when a log level is asked for.
	if !flagGiven(fs, "log-level") && getenv(envName("log-level")) == "" {
		c.logLevel = "warn"
	}
	st, err := openState(&c, c.logger(stderr))
	if err != nil {
		return err
	}
	defer st.close()
	return fn(st, fs)
}

const agentUsage = `Usage:
  lifeline agent add --email EMAIL [--name NAME] [--role agent|admin|analyst]   (password read from stdin)
  lifeline agent list
  lifeline agent passwd EMAIL      (new password read from stdin)
  lifeline agent disable [--enable] EMAIL
`

func agentCmd(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" {
		fmt.Fprint(stdout, agentUsage)
		if len(args) == 0 {
			return usageError{errors.New("agent needs a subcommand")}
		}
		return nil
	}
	sub, args := args[0], args[1:]
	switch sub {
	case "add":
		var email, name, role string
		return withState(ctx, "lifeline agent add", args, getenv, stderr, func(fs *flag.FlagSet) {
			fs.StringVar(&email, "email", "", "the agent's login email (required)")
			fs.StringVar(&name, "name", "", "display name shown to visitors")
			fs.StringVar(&role, "role", "agent", "agent, admin or analyst")
		}, func(st *state, fs *flag.FlagSet) error {
			if email == "" {
				return usageError{errors.New("agent add needs --email")}
			}
			password, err := readPassword(stdin, stdout)
			if err != nil {
				return err
			}
			a, err := auth.New(st.store, auth.Options{}).AddAgent(ctx, email, name, chat.Role(role), password)
			if err != nil {
				return err
			}
			fmt.Fprintf(stdout, "added %s (%s) with id %s\n", a.Email, a.Role, a.ID)
			return nil
		})
	case "list":
		return withState(ctx, "lifeline agent list", args, getenv, stderr, nil, func(st *state, _ *flag.FlagSet) error {
			agents, err := st.store.Agents(ctx)
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "EMAIL\tNAME\tROLE\tCAPACITY\tSTATE\tID")
			for _, a := range agents {
				state := "enabled"
				if a.Disabled {
					state = "disabled"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\n", a.Email, a.Name, a.Role, a.EffectiveCapacity(), state, a.ID)
			}
			return tw.Flush()
		})
	case "passwd":
		return withState(ctx, "lifeline agent passwd", args, getenv, stderr, nil, func(st *state, fs *flag.FlagSet) error {
			a, err := agentArg(ctx, st, fs)
			if err != nil {
				return err
			}
			password, err := readPassword(stdin, stdout)
			if err != nil {
				return err
			}
			if err := auth.New(st.store, auth.Options{}).SetPassword(ctx, a.ID, password); err != nil {
				return err
			}
			fmt.Fprintf(stdout, "password changed for %s\n", a.Email)
			return nil
		})
	case "disable":
		var enable bool
		return withState(ctx, "lifeline agent disable", args, getenv, stderr, func(fs *flag.FlagSet) {
			fs.BoolVar(&enable, "enable", false, "enable the agent again")
		}, func(st *state, fs *flag.FlagSet) error {
			a, err := agentArg(ctx, st, fs)
			if err != nil {
				return err
			}
			if err := auth.New(st.store, auth.Options{}).SetDisabled(ctx, a.ID, !enable); err != nil {
				return err
			}
			verb := "disabled"
			if enable {
				verb = "enabled"
			}
			fmt.Fprintf(stdout, "%s %s\n", verb, a.Email)
			return nil
		})
	}
	return usageError{fmt.Errorf("unknown agent subcommand %q\n\n%s", sub, agentUsage)}
}

// flagGiven reports whether the command line set the named flag.
func flagGiven(fs *flag.FlagSet, name string) bool {
	given := false
	fs.Visit(func(f *flag.Flag) { given = given || f.Name == name })
	return given
}

func agentArg(ctx context.Context, st *state, fs *flag.FlagSet) (chat.Agent, error) {
	if fs.NArg() != 1 {
		return chat.Agent{}, usageError{errors.New("give exactly one agent email")}
	}
	a, err := st.store.AgentByEmail(ctx, fs.Arg(0))
	if errors.Is(err, chat.ErrNotFound) {
		return a, fmt.Errorf("no agent with email %q", fs.Arg(0))
	}
	return a, err
}

// readPassword reads one line from stdin; it is never a flag, so it does not
// end up in shell history or process listings.
func readPassword(stdin io.Reader, stdout io.Writer) (string, error) {
	fmt.Fprintf(stdout, "Password (%d or more characters): ", auth.MinPasswordLen)
	line, err := bufio.NewReader(stdin).ReadString('\n')
	if err != nil && (!errors.Is(err, io.EOF) || line == "") {
		return "", errors.New("read the password from standard input: nothing given")
	}
	fmt.Fprintln(stdout)
	return strings.TrimRight(line, "\r\n"), nil
}

const siteUsage = `Usage:
  lifeline site add [--key KEY] [--name NAME] --origins HOST[,HOST...]
  lifeline site list
`

func siteCmd(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" {
		fmt.Fprint(stdout, siteUsage)
		if len(args) == 0 {
			return usageError{errors.New("site needs a subcommand")}
		}
		return nil
	}
	sub, args := args[0], args[1:]
	switch sub {
	case "add":
		var key, name, origins, public string
		return withState(ctx, "lifeline site add", args, getenv, stderr, func(fs *flag.FlagSet) {
			fs.StringVar(&key, "key", "", "site key for data-site (default: random)")
			fs.StringVar(&name, "name", "", "display name")
			fs.StringVar(&origins, "origins", "", "comma-separated allowed origins: hosts like shop.example.com or *.example.com (required)")
			stringFlag(fs, getenv, &public, "public-url", "https://chat.example.com", "this server's public URL, for the snippet")
		}, func(st *state, _ *flag.FlagSet) error {
			if origins == "" {
				return usageError{errors.New("site add needs --origins")}
			}
			s, err := chat.NewSite(key, name, splitList(origins))
			if err != nil {
				return err
			}
			if _, err := st.store.Site(ctx, s.Key); err == nil {
				return fmt.Errorf("a site with key %q exists", s.Key)
			}
			s.CreatedAt = time.Now().UTC()
			if err := st.store.PutSite(ctx, s); err != nil {
				return err
			}
			fmt.Fprintf(stdout, "site %s added\n  allowed origins: %s\n  identity secret: %s\n\nSnippet:\n%s\n",
				s.Key, strings.Join(s.Origins, ", "), s.IdentitySecret, snippet(public, s.Key))
			return nil
		})
	case "list":
		return withState(ctx, "lifeline site list", args, getenv, stderr, nil, func(st *state, _ *flag.FlagSet) error {
			sites, err := st.store.Sites(ctx)
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "KEY\tNAME\tALLOWED ORIGINS\tIDENTITY SECRET")
			for _, s := range sites {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", s.Key, s.Name, strings.Join(s.Origins, ","), s.IdentitySecret)
			}
			return tw.Flush()
		})
	}
	return usageError{fmt.Errorf("unknown site subcommand %q\n\n%s", sub, siteUsage)}
}

// snippet is the HTML a site owner pastes (DESIGN.md §2).
func snippet(public, key string) string {
	return `<script>window.lifeline=window.lifeline||function(){(lifeline.q=lifeline.q||[]).push(arguments)};</script>
<script async src="` + strings.TrimRight(public, "/") + `/widget.js" data-site="` + key + `"></script>`
}
