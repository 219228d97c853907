package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"

	goredis "github.com/redis/go-redis/v9"

	"github.com/lifelinehq/lifeline/chat"
	"github.com/lifelinehq/lifeline/internal/redis"
	"github.com/lifelinehq/lifeline/internal/store/bolt"
)

// state is the store and broker a command works on, and the config it
// was opened with.
type state struct {
	cfg    *config
	store  chat.Store
	broker chat.Broker
	close  func() error
}

// openState opens the embedded store and in-process broker, or, with
// --redis, the shared Redis store and broker.
func openState(c *config, log *slog.Logger) (*state, error) {
	if c.redis == "" {
		if err := os.MkdirAll(c.data, 0o700); err != nil {
			return nil, fmt.Errorf("create data directory: %w", err)
		}
		st, err := bolt.Open(filepath.Join(c.data, "lifeline.db"), bolt.Options{Logger: log})
		if err != nil {
			return nil, fmt.Errorf("open embedded store in %s: %w", c.data, err)
		}
		br := chat.NewMemoryBroker()
		return &state{cfg: c, store: st, broker: br, close: func() error { return errors.Join(br.Close(), st.Close()) }}, nil
	}
	client, err := redisClient(c.redis)
	if err != nil {
		return nil, err
	}
	goredis.SetLogger(redisLogger{log.With("component", "redis")})
	st := redis.NewStore(client, redis.StoreOptions{Logger: log})
	br := redis.NewBroker(client, redis.BrokerOptions{Logger: log})
	return &state{cfg: c, store: st, broker: br, close: func() error {
		return errors.Join(br.Close(), st.Close(), client.Close())
	}}, nil
}

// redisLogger sends go-redis's own messages (failed dials, for one) to the
// node's log, in its format, rather than to stderr through package log.
type redisLogger struct{ log *slog.Logger }

func (l redisLogger) Printf(_ context.Context, format string, v ...any) {
	l.log.Warn(fmt.Sprintf(format, v...))
}

// redisClient returns a cluster client when the URL lists more addresses
// (redis://h1:7000?addr=h2:7001), else a single-server client.
func redisClient(raw string) (goredis.UniversalClient, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, usageError{fmt.Errorf("--redis: %w", err)}
	}
	if u.Query().Has("addr") {
		opt, err := goredis.ParseClusterURL(raw)
		if err != nil {
			return nil, usageError{fmt.Errorf("--redis: %w", err)}
		}
		return goredis.NewClusterClient(opt), nil
	}
	opt, err := goredis.ParseURL(raw)
	if err != nil {
		return nil, usageError{fmt.Errorf("--redis: %w", err)}
	}
	return goredis.NewClient(opt), nil
}

// sharedSecret returns the node-shared secret named key, creating it once.
func sharedSecret(ctx context.Context, st chat.Store, key string) ([]byte, error) {
	fresh := make([]byte, 32)
	if _, err := rand.Read(fresh); err != nil {
		return nil, err
	}
	secret, err := st.PutMetaIfAbsent(ctx, key, fresh)
	if err != nil {
		return nil, fmt.Errorf("load secret %s: %w", key, err)
	}
	return secret, nil
}
