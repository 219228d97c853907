package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"os"
	"path/filepath"
	"strings"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/lifelinehq/lifeline/chat"
	"github.com/lifelinehq/lifeline/internal/assist"
	"github.com/lifelinehq/lifeline/internal/privacy"
	"github.com/lifelinehq/lifeline/internal/store/bolt"
)

// splitList splits a comma-separated flag value, dropping empty items.
func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

const visitorUsage = `Usage:
  lifeline visitor find --site SITE (--email EMAIL | --external-id ID)
  lifeline visitor export [--record-dir DIR] VISITOR_ID     (JSON on stdout)
  lifeline visitor erase [--record-dir DIR] VISITOR_ID

With the embedded store, stop the node first (it holds the file) or use the
REST API (GET /api/v1/visitors/{id}/export, DELETE /api/v1/visitors/{id}),
which also closes the visitor's open sockets.
`

func visitorCmd(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" {
		fmt.Fprint(stdout, visitorUsage)
		if len(args) == 0 {
			return usageError{errors.New("visitor needs a subcommand")}
		}
		return nil
	}
	sub, args := args[0], args[1:]
	var recordDir, site, email, ext string
	extra := func(fs *flag.FlagSet) {
		stringFlag(fs, getenv, &recordDir, "record-dir", "", "where recordings are (default DATA/recordings)")
	}
	service := func(st *state) *privacy.Service {
		return privacy.New(privacy.Options{
			Store: st.store, RecordDir: st.cfg.recordDir(recordDir),
			ConversationForgetters: []privacy.ConversationForgetter{assist.StoreForgetter{Store: st.store}},
		})
	}
	oneID := func(fs *flag.FlagSet) (string, error) {
		if fs.NArg() != 1 {
			return "", usageError{fmt.Errorf("visitor %s needs one visitor ID", sub)}
		}
		return fs.Arg(0), nil
	}
	switch sub {
	case "find":
		return withState(ctx, "lifeline visitor find", args, getenv, stderr, func(fs *flag.FlagSet) {
			fs.StringVar(&site, "site", "", "site key (required)")
			fs.StringVar(&email, "email", "", "visitor email")
			fs.StringVar(&ext, "external-id", "", "the site's user ID")
		}, func(st *state, _ *flag.FlagSet) error {
			if site == "" || (email == "" && ext == "") {
				return usageError{errors.New("visitor find needs --site and --email or --external-id")}
			}
			list, err := st.store.FindVisitors(ctx, chat.VisitorQuery{SiteKey: site, Email: email, ExternalID: ext})
			if err != nil {
				return err
			}
			for _, v := range list {
				fmt.Fprintf(stdout, "%s\t%s\t%s\n", v.ID, v.Email, v.ExternalID)
			}
			return nil
		})
	case "export":
		return withState(ctx, "lifeline visitor export", args, getenv, stderr, extra, func(st *state, fs *flag.FlagSet) error {
			id, err := oneID(fs)
			if err != nil {
				return err
			}
			exp, err := service(st).Export(ctx, id)
			if err != nil {
				return noVisitor(id, err)
			}
			enc := json.NewEncoder(stdout)
			enc.SetIndent("", "  ")
			return enc.Encode(exp)
		})
	case "erase":
		return withState(ctx, "lifeline visitor erase", args, getenv, stderr, extra, func(st *state, fs *flag.FlagSet) error {
			id, err := oneID(fs)
			if err != nil {
				return err
			}
			out, err := service(st).Erase(ctx, id, privacy.Actor{ID: "cli", Email: "lifeline visitor erase"})
			if err != nil {
				return noVisitor(id, err)
			}
			fmt.Fprintf(stdout, "erased visitor %s: %d conversations, %d messages, %d recorded sessions\n",
				id, out.Conversations, out.Messages, out.RecordingLines)
			return nil
		})
	}
	return usageError{fmt.Errorf("unknown visitor subcommand %q\n\n%s", sub, visitorUsage)}
}

// noVisitor words an unknown visitor ID for the command line.
func noVisitor(id string, err error) error {
	if errors.Is(err, chat.ErrNotFound) {
		return fmt.Errorf("no visitor with ID %q (lifeline visitor find looks one up by email or user ID)", id)
	}
	return err
}

const backupUsage = `Usage:
  lifeline backup --url URL --out FILE [--email EMAIL]   (admin password from LIFELINE_ADMIN_PASSWORD or stdin)
  lifeline restore --in FILE --data DIR [--force]        (node stopped)

backup asks a running node with the embedded store for a consistent snapshot
(GET /api/v1/backup) and writes it to FILE, checking that it opens. restore
checks FILE and puts it in place as DIR/lifeline.db; the old file is kept as
lifeline.db.before-restore.
`

func backupCmd(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := newFlagSet("lifeline backup", stderr)
	var base, out, email string
	stringFlag(fs, getenv, &base, "url", "http://127.0.0.1:8080", "the running node")
	fs.StringVar(&out, "out", "", "file to write (required)")
	fs.StringVar(&email, "email", adminEmail, "admin login")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if out == "" {
		return usageError{errors.New("backup needs --out FILE\n\n" + backupUsage)}
	}
	password := getenv("LIFELINE_ADMIN_PASSWORD")
	if password == "" {
		line, err := bufio.NewReader(stdin).ReadString('\n')
		if err != nil && line == "" {
			return errors.New("backup: give the admin password on stdin or in LIFELINE_ADMIN_PASSWORD")
		}
		password = strings.TrimRight(line, "\r\n")
	}
	jar, _ := cookiejar.New(nil)
	client := &http.Client{Jar: jar, Timeout: 30 * time.Minute}
	base = strings.TrimRight(base, "/")
	login, _ := json.Marshal(map[string]string{"email": email, "password": password})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/api/v1/login", bytes.NewReader(login))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("backup: log in: %w", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("backup: log in: %s", resp.Status)
	}
	req, err = http.NewRequestWithContext(ctx, http.MethodGet, base+"/api/v1/backup", nil)
	if err != nil {
		return err
	}
	resp, err = client.Do(req)
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("backup: %s (only a node on the embedded store serves backups; back up Redis with its own tools)", resp.Status)
	}
	tmp := out + ".partial"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	n, err := io.Copy(f, resp.Body)
	if err = errors.Join(err, f.Sync(), f.Close()); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("backup: %w", err)
	}
	if err := bolt.Check(tmp); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("backup: the snapshot is incomplete: %w", err)
	}
	if err := os.Rename(tmp, out); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "backup written to %s (%d bytes)\n", out, n)
	return nil
}

func restoreCmd(_ context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := newFlagSet("lifeline restore", stderr)
	var in, data string
	var force bool
	fs.StringVar(&in, "in", "", "backup file (required)")
	stringFlag(fs, getenv, &data, "data", "./lifeline-data", "directory of the embedded store")
	fs.BoolVar(&force, "force", false, "replace an existing store")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if in == "" {
		return usageError{errors.New("restore needs --in FILE\n\n" + backupUsage)}
	}
	if err := bolt.Check(in); err != nil {
		return fmt.Errorf("restore: %s is not a usable backup: %w", in, err)
	}
	if err := os.MkdirAll(data, 0o700); err != nil {
		return err
	}
	dst := filepath.Join(data, "lifeline.db")
	if _, err := os.Stat(dst); err == nil {
		if !force {
			return usageError{fmt.Errorf("restore: %s exists; stop the node and add --force to replace it", dst)}
		}
		// Taking the lock proves no node is running on it.
		db, err := bbolt.Open(dst, 0o600, &bbolt.Options{Timeout: time.Second})
		if err != nil {
			return fmt.Errorf("restore: %s is in use (stop the node first): %w", dst, err)
		}
		db.Close()
		// The store's message log goes aside with it: replayed into the
		// restored file it would add messages the backup never had.
		for _, name := range append([]string{dst}, bolt.WALFiles(dst)...) {
			if err := os.Rename(name, name+".before-restore"); err != nil && !errors.Is(err, os.ErrNotExist) {
				return err
			}
		}
	}
	src, err := os.Open(in)
	if err != nil {
		return err
	}
	defer src.Close()
	tmp := dst + ".restoring"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	_, err = io.Copy(f, src)
	if err = errors.Join(err, f.Sync(), f.Close()); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("restore: %w", err)
	}
	if err := os.Rename(tmp, dst); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "restored %s into %s\n", in, dst)
	return nil
}
