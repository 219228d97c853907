package redis_test

import (
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/lifelinehq/lifeline/internal/leaktest"
	"github.com/lifelinehq/lifeline/internal/redistest"
)

func TestMain(m *testing.M) { leaktest.Main(m) }

// backend is a Redis deployment the tests run against.
type backend struct {
	name   string
	client func(t *testing.T) redis.UniversalClient
}

// backends returns the single server and the three-master cluster, both
// shared by the test binary; tests isolate their keys with a prefix.
func backends() []backend {
	return []backend{
		{"single", func(t *testing.T) redis.UniversalClient { return redistest.Shared(t).Client(t) }},
		{"cluster", func(t *testing.T) redis.UniversalClient { return redistest.Cluster(t).Client(t) }},
	}
}

func redisZ(member string) redis.Z { return redis.Z{Score: 1, Member: member} }
