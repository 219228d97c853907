// Package redistest starts throwaway redis-server processes on loopback
// ports for tests: single servers and a three-master Redis Cluster.
//
// Tests skip with a loud reason when redis-server is not installed, unless
// LIFELINE_REQUIRE_ALL=1, which turns the skip into a failure so CI never
// passes on skipped tests. LIFELINE_REDIS_SERVER and LIFELINE_REDIS_CLI
// override the binaries' paths.
package redistest

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// startTimeout bounds how long a server may take to answer PING.
const startTimeout = 20 * time.Second

// Option configures a server started by Server.
type Option func(*config)

type config struct {
	aof bool
}

// AOF turns on the append-only file with appendfsync always, so every write
// acknowledged by the server is on disk and survives Restart.
func AOF() Option { return func(c *config) { c.aof = true } }

// Instance is one redis-server process started for a test.
type Instance struct {
	port int
	dir  string
	cfg  config
	args []string

	mu  sync.Mutex
	cmd *exec.Cmd
}

// binary returns the path of a redis binary, or skips (fails under
// LIFELINE_REQUIRE_ALL=1) when it is missing.
func binary(t testing.TB, name, env string) string {
	t.Helper()
	p := name
	if v := os.Getenv(env); v != "" {
		p = v
	}
	p, err := exec.LookPath(p)
	if err != nil {
		msg := fmt.Sprintf("REDIS TESTS NOT RUN: %s not found in PATH (apt-get install redis-server redis-tools, or set %s): %v", name, env, err)
		if os.Getenv("LIFELINE_REQUIRE_ALL") == "1" {
			t.Fatal(msg + " [LIFELINE_REQUIRE_ALL=1]")
		}
		t.Skip(msg)
	}
	return p
}

// Server starts a dedicated redis-server on a free loopback port with its
// data directory in t.TempDir() and stops it when the test ends. Persistence
// is off unless AOF is given. Use it when the test restarts or stops the
// server; otherwise prefer Shared.
func Server(t testing.TB, opts ...Option) *Instance {
	t.Helper()
	bin := binary(t, "redis-server", "LIFELINE_REDIS_SERVER")
	var cfg config
	for _, o := range opts {
		o(&cfg)
	}
	in := &Instance{dir: t.TempDir(), cfg: cfg}
	if err := in.startFree(bin, nil); err != nil {
		t.Fatalf("redistest: %v", err)
	}
	t.Cleanup(func() { in.kill() })
	return in
}

var shared struct {
	once sync.Once
	in   *Instance
	err  error
}

// Shared returns a redis-server shared by every test of the binary,
// started on first use. Tests must isolate their keys with Prefix and must
// not restart or stop it. The process is killed when the test binary exits.
func Shared(t testing.TB) *Instance {
	t.Helper()
	bin := binary(t, "redis-server", "LIFELINE_REDIS_SERVER")
	shared.once.Do(func() {
		dir, err := os.MkdirTemp("", "redistest-shared-")
		if err != nil {
			shared.err = err
			return
		}
		in := &Instance{dir: dir}
		shared.err = in.startFree(bin, nil)
		shared.in = in
	})
	if shared.err != nil {
		t.Fatalf("redistest: shared server: %v", shared.err)
	}
	return shared.in
}

// Prefix returns a key prefix unique to this test, for isolating tests that
// share a server.
func Prefix(t testing.TB) string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	name := strings.NewReplacer("/", "_", " ", "_", "{", "_", "}", "_").Replace(t.Name())
	return "t:" + name + ":" + hex.EncodeToString(b[:]) + ":"
}

// Addr returns the server's host:port.
func (in *Instance) Addr() string { return "127.0.0.1:" + strconv.Itoa(in.port) }

// URL returns a redis:// URL for the server.
func (in *Instance) URL() string { return "redis://" + in.Addr() }

// Client returns a client for the server, closed when the test ends.
func (in *Instance) Client(t testing.TB) *redis.Client {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: in.Addr(), Protocol: 2})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// Restart kills the server with SIGKILL and starts it again on the same
// port and directory. With AOF, every acknowledged write is still there.
func (in *Instance) Restart(t testing.TB) {
	t.Helper()
	in.kill()
	bin := binary(t, "redis-server", "LIFELINE_REDIS_SERVER")
	var err error
	for range 50 { // the port may linger briefly after the kill
		if err = in.start(bin); err == nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("redistest: restart on port %d: %v", in.port, err)
}

// Stop kills the server. It may be started again with Start.
func (in *Instance) Stop(t testing.TB) {
	t.Helper()
	in.kill()
}

// Start starts a stopped server again on the same port and directory.
func (in *Instance) Start(t testing.TB) {
	t.Helper()
	bin := binary(t, "redis-server", "LIFELINE_REDIS_SERVER")
	var err error
	for range 50 {
		if err = in.start(bin); err == nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("redistest: start on port %d: %v", in.port, err)
}

// startFree picks a free port (and a free cluster bus port when extra asks
// for cluster mode) and starts the server, retrying if another process
// takes the port first.
func (in *Instance) startFree(bin string, extra []string) error {
	in.args = extra
	var err error
	for range 10 {
		in.port, err = freePort(len(extra) > 0)
		if err != nil {
			return err
		}
		if err = in.start(bin); err == nil {
			return nil
		}
	}
	return err
}

func (in *Instance) start(bin string) error {
	args := []string{
		"--port", strconv.Itoa(in.port),
		"--bind", "127.0.0.1",
		"--dir", in.dir,
		"--save", "",
		"--daemonize", "no",
		"--protected-mode", "yes",
		"--logfile", filepath.Join(in.dir, "redis.log"),
		"--loglevel", "warning",
	}
	if in.cfg.aof {
		args = append(args, "--appendonly", "yes", "--appendfsync", "always")
	}
	args = append(args, in.args...)
	cmd := exec.Command(bin, args...)
	// Kill the server if the test binary dies without cleaning up.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", bin, err)
	}
	in.mu.Lock()
	in.cmd = cmd
	in.mu.Unlock()
	if err := waitPing(in.Addr(), startTimeout); err != nil {
		in.kill()
		log, _ := os.ReadFile(filepath.Join(in.dir, "redis.log"))
		return fmt.Errorf("redis-server on port %d: %w\n%s", in.port, err, log)
	}
	return nil
}

// kill sends SIGKILL to the process this Instance started and reaps it.
func (in *Instance) kill() {
	in.mu.Lock()
	cmd := in.cmd
	in.cmd = nil
	in.mu.Unlock()
	if cmd == nil || cmd.Process == nil {
		return
	}
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
}

// freePort returns a loopback port that is free now; with bus it also
// checks port+10000, the cluster bus port.
func freePort(bus bool) (int, error) {
	for range 100 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, fmt.Errorf("find free port: %w", err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		_ = l.Close()
		if !bus {
			return port, nil
		}
		if port+10000 > 65535 {
			continue
		}
		l2, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port+10000))
		if err != nil {
			continue
		}
		_ = l2.Close()
		return port, nil
	}
	return 0, fmt.Errorf("no free port pair for a cluster node")
}

// waitPing polls addr with PING until it answers PONG.
func waitPing(addr string, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	var last error
	for time.Now().Before(deadline) {
		if last = ping(addr); last == nil {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("no PONG within %v: %w", limit, last)
}

func ping(addr string) error {
	line, err := command(addr, "PING")
	if err != nil {
		return err
	}
	if line != "+PONG" {
		return fmt.Errorf("PING answered %q", line)
	}
	return nil
}

// command sends one inline command and returns the first reply line, or for
// a bulk reply its body.
func command(addr, cmd string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := c.Write([]byte(cmd + "\r\n")); err != nil {
		return "", err
	}
	r := bufio.NewReader(c)
	line, err := r.ReadString('\n')
	if err != nil {
		return "", err
	}
	line = strings.TrimRight(line, "\r\n")
	if strings.HasPrefix(line, "$") {
		n, err := strconv.Atoi(line[1:])
		if err != nil || n < 0 {
			return "", fmt.Errorf("bad bulk reply %q", line)
		}
		buf := make([]byte, n+2)
		if _, err := io.ReadFull(r, buf); err != nil {
			return "", err
		}
		return string(buf[:n]), nil
	}
	return line, nil
}
