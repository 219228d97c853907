package redistest

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// ClusterInstance is a three-master Redis Cluster with no replicas.
type ClusterInstance struct {
	nodes []*Instance
}

var sharedCluster struct {
	once sync.Once
	c    *ClusterInstance
	err  error
}

// Cluster returns a three-master Redis Cluster shared by every test of the
// binary, created on first use with redis-cli --cluster create and ready
// (cluster_state:ok on every node). Tests must isolate their keys with
// Prefix. The processes are killed when the test binary exits.
func Cluster(t testing.TB) *ClusterInstance {
	t.Helper()
	bin := binary(t, "redis-server", "LIFELINE_REDIS_SERVER")
	cli := binary(t, "redis-cli", "LIFELINE_REDIS_CLI")
	sharedCluster.once.Do(func() {
		sharedCluster.c, sharedCluster.err = startCluster(bin, cli)
	})
	if sharedCluster.err != nil {
		t.Fatalf("redistest: cluster: %v", sharedCluster.err)
	}
	return sharedCluster.c
}

// NewCluster starts a dedicated three-master cluster, stopped when the test
// ends. Use it for tests that reconfigure the cluster; otherwise prefer
// Cluster.
func NewCluster(t testing.TB) *ClusterInstance {
	t.Helper()
	bin := binary(t, "redis-server", "LIFELINE_REDIS_SERVER")
	cli := binary(t, "redis-cli", "LIFELINE_REDIS_CLI")
	c, err := startCluster(bin, cli)
	if err != nil {
		t.Fatalf("redistest: cluster: %v", err)
	}
	t.Cleanup(func() {
		c.kill()
		for _, n := range c.nodes {
			_ = os.RemoveAll(n.dir)
		}
	})
	return c
}

func startCluster(bin, cli string) (*ClusterInstance, error) {
	c := &ClusterInstance{}
	for range 3 {
		dir, err := os.MkdirTemp("", "redistest-cluster-")
		if err != nil {
			return nil, err
		}
		in := &Instance{dir: dir}
		if err := in.startFree(bin, []string{
			"--cluster-enabled", "yes",
			"--cluster-config-file", "nodes.conf",
			"--cluster-node-timeout", "5000",
		}); err != nil {
			c.kill()
			return nil, err
		}
		c.nodes = append(c.nodes, in)
	}
	args := append([]string{"--cluster", "create"}, c.Addrs()...)
	args = append(args, "--cluster-replicas", "0", "--cluster-yes")
	out, err := exec.Command(cli, args...).CombinedOutput()
	if err != nil {
		c.kill()
		return nil, fmt.Errorf("redis-cli --cluster create: %w\n%s", err, out)
	}
	deadline := time.Now().Add(30 * time.Second)
	for _, n := range c.nodes {
		for {
			info, err := command(n.Addr(), "CLUSTER INFO")
			if err == nil && strings.Contains(info, "cluster_state:ok") {
				break
			}
			if time.Now().After(deadline) {
				c.kill()
				return nil, fmt.Errorf("node %s never reached cluster_state:ok: %v\n%s", n.Addr(), err, info)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	return c, nil
}

func (c *ClusterInstance) kill() {
	for _, n := range c.nodes {
		n.kill()
	}
}

// Addrs returns the masters' host:port addresses.
func (c *ClusterInstance) Addrs() []string {
	out := make([]string, len(c.nodes))
	for i, n := range c.nodes {
		out[i] = n.Addr()
	}
	return out
}

// Client returns a cluster client for the cluster, closed when the test ends.
func (c *ClusterInstance) Client(t testing.TB) *redis.ClusterClient {
	t.Helper()
	cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: c.Addrs(), Protocol: 2})
	t.Cleanup(func() { _ = cc.Close() })
	return cc
}

// Nodes returns the masters as Instances, for tests that send them
// commands or stop one. Do not stop nodes of the shared Cluster.
func (c *ClusterInstance) Nodes() []*Instance { return c.nodes }
