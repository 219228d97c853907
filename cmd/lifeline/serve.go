package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"time"

	"github.com/lifelinehq/lifeline/chat"
	"github.com/lifelinehq/lifeline/internal/assist"
	"github.com/lifelinehq/lifeline/internal/audit"
	"github.com/lifelinehq/lifeline/internal/auth"
	"github.com/lifelinehq/lifeline/internal/console"
	"github.com/lifelinehq/lifeline/internal/demo"
	"github.com/lifelinehq/lifeline/internal/gcfloor"
	"github.com/lifelinehq/lifeline/internal/idletrim"
	"github.com/lifelinehq/lifeline/internal/metrics"
	"github.com/lifelinehq/lifeline/internal/privacy"
	"github.com/lifelinehq/lifeline/internal/server"
	"github.com/lifelinehq/lifeline/internal/store/bolt"
	"github.com/lifelinehq/lifeline/internal/struggle"
	"github.com/lifelinehq/lifeline/internal/webhook"
	"github.com/lifelinehq/lifeline/widget"
)

// adminEmail is the first admin's login.
const adminEmail = "admin@lifeline.local"

// shutdownTimeout bounds a graceful stop.
const shutdownTimeout = 15 * time.Second

func serve(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	var c config
	fs := newFlagSet("lifeline serve", stderr)
	stringFlag(fs, getenv, &c.addr, "addr", "127.0.0.1:8080", "listen address")
	stringFlag(fs, getenv, &c.publicURL, "public-url", "", "URL browsers use to reach this node (default http://ADDR)")
	var maxPerIP int
	if err := intFlag(fs, getenv, &maxPerIP, "max-conns-per-ip", 50, "concurrent WebSockets allowed per client IP"); err != nil {
		return err
	}
	var recordSample, recordDir string
	stringFlag(fs, getenv, &recordSample, "record-sample", "0", "share of visits (0 to 1) recorded as JSON Lines for backtests")
	stringFlag(fs, getenv, &recordDir, "record-dir", "", "where recordings go (default DATA/recordings)")
	var gcFloorMiB int
	if err := intFlag(fs, getenv, &gcFloorMiB, "gc-floor-mib", 128, "collect garbage only once the heap reaches this many MiB while the live heap is small (0: plain GOGC pacing; ignored when GOGC is set)"); err != nil {
		return err
	}
	var idleTrim time.Duration
	if err := durationFlag(fs, getenv, &idleTrim, "idle-trim", 5*time.Second, "after this long allocating under 1 MiB a second, return the free heap to the operating system, at most once a minute (0: leave it to Go's scavenger)"); err != nil {
		return err
	}
	var webhookAllow string
	stringFlag(fs, getenv, &webhookAllow, "webhook-allow-host", "", "comma-separated hosts webhooks may reach although loopback, private or link-local (e.g. an internal receiver)")
	addStateFlags(fs, getenv, &c)
	if err := fs.Parse(args); err != nil {
		return err
	}
	sample, err := strconv.ParseFloat(recordSample, 64)
	if err != nil || sample < 0 || sample > 1 {
		return usageError{fmt.Errorf("--record-sample %q: want a number from 0 to 1", recordSample)}
	}
	recordDir = c.recordDir(recordDir)
	if fs.NArg() > 0 {
		return usageError{fmt.Errorf("serve takes no arguments, got %q", fs.Args())}
	}
	if err := c.validate(); err != nil {
		return err
	}
	if idleTrim < 0 {
		return usageError{fmt.Errorf("--idle-trim %s: want 0 or more", idleTrim)}
	}
	if gcFloorMiB < 0 {
		return usageError{fmt.Errorf("--gc-floor-mib %d: want 0 or more", gcFloorMiB)}
	}
	startPprof(getenv("LIFELINE_PPROF_ADDR"), stderr)
	log := c.logger(stderr)
	if getenv("GOGC") == "" {
		defer gcfloor.Floor(uint64(gcFloorMiB)<<20, 100)()
	}
	if idleTrim > 0 {
		trimCtx, stopTrim := context.WithCancel(ctx)
		trimDone := make(chan struct{})
		go func() {
			defer close(trimDone)
			idletrim.Run(trimCtx, idleTrim, uint64(idleTrim.Seconds()*(1<<20)), func(released uint64, took time.Duration) {
				log.Info("quiet: returned the free heap to the operating system",
					"released_mib", float64(released)/(1<<20), "took", took.Round(time.Millisecond))
			})
		}()
		defer func() { stopTrim(); <-trimDone }()
	}

	ln, err := listen(ctx, c.addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", c.addr, err)
	}
	defer ln.Close()
	public := c.publicURL
	if public == "" {
		public = "http://" + ln.Addr().String()
	}
	mode := "embedded store in " + c.data
	if c.redis != "" {
		mode = "redis " + redactURL(c.redis)
	}
	log.Info("starting lifeline", "version", version(), "addr", ln.Addr().String(), "public_url", public, "state", mode, "pid", os.Getpid())

	// Answer from the start: alive but not ready until everything below
	// is (opening the store can take a while after a crash, and Redis may
	// come up after the node).
	front := newFront("opening its store") // no paths or addresses for strangers
	srv := &http.Server{
		Handler:           front,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       120 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	defer srv.Close()

	st, err := openState(&c, log)
	if err != nil {
		return err
	}
	defer func() {
		if err := st.close(); err != nil {
			log.Error("close state", "err", err)
		}
	}()
	if c.redis != "" {
		front.setState("waiting for Redis")
		if err := waitForStore(ctx, st.store, log); err != nil {
			log.Info("stopped while waiting for redis")
			return nil
		}
	}

	secret, err := sharedSecret(ctx, st.store, "token_secret")
	if err != nil {
		return err
	}
	trail := audit.New(st.store, log.With("component", "audit"))
	authSvc := auth.New(st.store, auth.Options{Logger: log, SecureCookies: isHTTPS(public), Audit: trail})
	password := getenv("LIFELINE_ADMIN_PASSWORD")
	generated := password == ""
	if generated {
		password = auth.GeneratePassword()
	}
	created, err := authSvc.EnsureAdmin(ctx, adminEmail, password)
	if err != nil {
		return fmt.Errorf("create the first admin: %w", err)
	}
	demoSite, err := ensureDemoSite(ctx, st.store, public)
	if err != nil {
		return err
	}

	m := metrics.New()
	if b, ok := st.store.(*bolt.Store); ok {
		m.StoreGroups(func() (uint64, uint64) { s := b.Stats(); return s.Commits, s.Appends })
		b.ObserveSyncs(m.StoreSync)
	}
	var recorder *struggle.Recorder
	if sample > 0 {
		if recorder, err = struggle.NewRecorder(recordDir, sample); err != nil {
			return err
		}
	}
	allowHosts := splitList(webhookAllow)
	hooks := webhook.New(webhook.Options{
		Store: st.store, Logger: log.With("component", "webhooks"), AllowHosts: allowHosts, Registerer: m.Registry(),
	})
	detector := struggle.New(struggle.Options{
		Store: st.store, Logger: log.With("component", "detector"), Metrics: m.Detection(), Recorder: recorder, Events: hooks,
		Audit: trail,
	})
	assistant := assist.New(assist.Options{
		Store: st.store, Logger: log.With("component", "assist"), Journeys: detector, Audit: trail, BaseURL: public, AllowHosts: allowHosts,
	})
	hostname, _ := os.Hostname()
	hub, err := chat.NewHub(chat.Config{
		Store: webhook.Tap(st.store, hooks), Broker: st.broker, Secret: secret, Logger: log.With("component", "hub"),
		Metrics: m, Node: fmt.Sprintf("%s:%d", hostname, os.Getpid()), Detector: assistant.Observe(detector),
		Audit: trail,
	})
	if err != nil {
		return err
	}
	detector.Attach(hub)
	assistant.Attach(hub)
	assistCtx, stopAssist := context.WithCancel(context.WithoutCancel(ctx))
	assistDone := make(chan struct{})
	go func() { defer close(assistDone); assistant.Run(assistCtx) }()
	defer func() { stopAssist(); <-assistDone }()
	demoActions, err := assistant.ActionSecret(ctx, demoSite.Key)
	if err != nil {
		return err
	}
	detectCtx, stopDetector := context.WithCancel(context.WithoutCancel(ctx))
	detectorDone := make(chan struct{})
	go func() { defer close(detectorDone); detector.Run(detectCtx) }()
	defer func() { stopDetector(); <-detectorDone }() // flush counters and journeys before the store closes
	if err := hub.Start(ctx); err != nil {
		return err
	}
	hooks.Start(context.WithoutCancel(ctx))
	defer hooks.Stop() // before the store closes
	privacyDir := ""
	if recorder != nil {
		privacyDir = recordDir
	}
	priv := privacy.New(privacy.Options{
		Store: st.store, Logger: log.With("component", "privacy"), RecordDir: privacyDir,
		Forgetters: []privacy.Forgetter{detector, hooks}, ConversationForgetters: []privacy.ConversationForgetter{assistant}, Disconnect: hub.DisconnectVisitor, Journey: detector.JourneyOf, DropJourney: detector.DropJourney,
		Audit: trail,
	})
	sweeper := privacy.NewSweeper(priv, privacy.SweeperOptions{Registerer: m.Registry()})
	sweeper.Start(context.WithoutCancel(ctx))
	defer sweeper.Stop()
	handler := server.New(server.Config{
		Hub: hub, Store: st.store, Broker: st.broker, Auth: authSvc, Metrics: m, Logger: log.With("component", "http"),
		Struggle: detector, Assist: assistant, Secret: secret, Webhooks: hooks, Privacy: priv, Audit: trail,
		MaxConnsPerIP: maxPerIP,
		Widget:        widget.Handler(),
		Console:       console.Handler(),
		Demo:          demo.Handler(demo.Config{SiteKey: demoSite.Key, IdentitySecret: demoSite.IdentitySecret, WidgetURL: "/widget.js", ActionSecret: demoActions}),
	})
	front.serve(handler)

	fmt.Fprintf(stdout, "Lifeline is running (%s).\n  Console: %s/console\n  Demo:    %s/demo\n", mode, public, public)
	switch {
	case created && generated:
		fmt.Fprintf(stdout, "  Log in as %s with password %s\n  (shown once: save it, or set LIFELINE_ADMIN_PASSWORD before the first start)\n", adminEmail, password)
	case created:
		fmt.Fprintf(stdout, "  Log in as %s with the password in LIFELINE_ADMIN_PASSWORD\n", adminEmail)
	default:
		fmt.Fprintf(stdout, "  Log in with your agent account (lifeline agent passwd resets a password)\n")
	}

	select {
	case err := <-serveErr:
		return fmt.Errorf("serve http: %w", err)
	case <-ctx.Done():
	}
	log.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		log.Warn("http shutdown", "err", err)
	}
	if err := hub.Shutdown(sctx); err != nil {
		log.Warn("hub shutdown", "err", err)
	}
	log.Info("stopped")
	return nil
}

func isHTTPS(public string) bool {
	u, err := url.Parse(public)
	return err == nil && u.Scheme == "https"
}

// ensureDemoSite creates the demo site on first start, allowing the public
// URL's host and local development origins.
func ensureDemoSite(ctx context.Context, st chat.Store, public string) (chat.Site, error) {
	s, err := st.Site(ctx, "demo")
	if err == nil {
		return s, nil
	}
	if !errors.Is(err, chat.ErrNotFound) {
		return s, fmt.Errorf("load demo site: %w", err)
	}
	origins := []string{"127.0.0.1:*", "localhost:*"}
	if u, err := url.Parse(public); err == nil && u.Host != "" {
		origins = append(origins, u.Host)
	}
	s, err = chat.NewSite("demo", "Demo shop", origins)
	if err != nil {
		return s, err
	}
	s.CreatedAt = time.Now().UTC()
	if err := st.PutSite(ctx, s); err != nil {
		return s, fmt.Errorf("create demo site: %w", err)
	}
	return s, nil
}

// listen opens the node's TCP listener with TCP keepalive off. Go turns it
// on for every accepted connection: four setsockopt calls at accept, and a
// probe after 15 s of quiet, which on a node holding many sockets that
// ping every 25 s is a steady stream of packets. Dead peers are found
// above TCP instead: the widget and the console ping, the hub closes a
// socket quiet for its idle timeout (75 s), and HTTP connections have
// read-header and idle timeouts.
func listen(ctx context.Context, addr string) (net.Listener, error) {
	lc := net.ListenConfig{KeepAlive: -1}
	return lc.Listen(ctx, "tcp", addr)
}
