package main

import (
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/lmittmann/tint"
)

// config is what every subcommand that touches state needs.
type config struct {
	addr      string
	data      string
	redis     string
	publicURL string
	logFormat string
	logLevel  string
}

// envName is the environment variable for a flag: --public-url →
// LIFELINE_PUBLIC_URL.
func envName(flagName string) string {
	return "LIFELINE_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// newFlagSet returns a flag set whose defaults come from the environment,
// so precedence is flag, then env, then built-in default.
func newFlagSet(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

// stringFlag defines a string flag defaulting to LIFELINE_<NAME> or def.
func stringFlag(fs *flag.FlagSet, getenv func(string) string, p *string, name, def, usage string) {
	if v := getenv(envName(name)); v != "" {
		def = v
	}
	fs.StringVar(p, name, def, usage+" (env "+envName(name)+")")
}

// intFlag defines an int flag defaulting to LIFELINE_<NAME> or def.
func intFlag(fs *flag.FlagSet, getenv func(string) string, p *int, name string, def int, usage string) error {
	def, err := envDefault(getenv, name, def, strconv.Atoi, "a whole number")
	fs.IntVar(p, name, def, usage+" (env "+envName(name)+")")
	return err
}

// durationFlag defines a duration flag defaulting to LIFELINE_<NAME> or def.
func durationFlag(fs *flag.FlagSet, getenv func(string) string, p *time.Duration, name string, def time.Duration, usage string) error {
	def, err := envDefault(getenv, name, def, time.ParseDuration, "a duration (like 5s)")
	fs.DurationVar(p, name, def, usage+" (env "+envName(name)+")")
	return err
}

// envDefault returns LIFELINE_<NAME> parsed, if it is set, else def; a
// value that does not parse is a usage error saying it is not what.
func envDefault[T any](getenv func(string) string, name string, def T, parse func(string) (T, error), what string) (T, error) {
	v := getenv(envName(name))
	if v == "" {
		return def, nil
	}
	x, err := parse(v)
	if err != nil {
		return def, usageError{fmt.Errorf("%s=%q is not %s", envName(name), v, what)}
	}
	return x, nil
}

// addStateFlags registers the flags shared by serve and the admin commands.
func addStateFlags(fs *flag.FlagSet, getenv func(string) string, c *config) {
	stringFlag(fs, getenv, &c.data, "data", "./lifeline-data", "directory of the embedded store")
	stringFlag(fs, getenv, &c.redis, "redis", "", "Redis URL for many nodes (redis://host:6379/0; a cluster: redis://host1:7000?addr=host2:7001&addr=host3:7002); empty means single node, embedded")
	stringFlag(fs, getenv, &c.logFormat, "log-format", "text", "log format: text (coloured, for people) or json (for machines)")
	stringFlag(fs, getenv, &c.logLevel, "log-level", "info", "log level: debug, info, warn or error")
}

// recordDir is where recordings are: dir, from --record-dir or
// LIFELINE_RECORD_DIR, if set, else DATA/recordings.
func (c *config) recordDir(dir string) string {
	if dir != "" {
		return dir
	}
	return filepath.Join(c.data, "recordings")
}

func (c *config) validate() error {
	switch c.logFormat {
	case "text", "json":
	default:
		return usageError{fmt.Errorf("--log-format must be text or json, not %q", c.logFormat)}
	}
	var l slog.Level
	if err := l.UnmarshalText([]byte(c.logLevel)); err != nil {
		return usageError{fmt.Errorf("--log-level must be debug, info, warn or error, not %q", c.logLevel)}
	}
	if c.redis != "" {
		u, err := url.Parse(c.redis)
		if err != nil || (u.Scheme != "redis" && u.Scheme != "rediss") {
			return usageError{fmt.Errorf("--redis must be a redis:// or rediss:// URL")}
		}
	}
	if c.publicURL != "" {
		u, err := url.Parse(c.publicURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return usageError{fmt.Errorf("--public-url must be an http(s) URL like https://chat.example.com")}
		}
	}
	return nil
}

// logger builds the process logger: tint for people, JSON for machines.
func (c *config) logger(w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(c.logLevel))
	if c.logFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: level}))
	}
	return slog.New(tint.NewHandler(w, &tint.Options{Level: level, TimeFormat: time.Kitchen, NoColor: !isTerminal(w)}))
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// redactURL hides a password in a Redis URL for logs.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.User == nil {
		return s
	}
	return u.Redacted()
}

func version() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "dev"
}
