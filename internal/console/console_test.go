package console

import (
	"bytes"
	"testing"

	"github.com/lifelinehq/lifeline/internal/console/internal/bundle"
	"github.com/lifelinehq/lifeline/internal/leaktest"
)

func TestMain(m *testing.M) { leaktest.Main(m) }

// TestBundleFresh fails when dist/ is not what the sources build to: run
// `go generate ./internal/console` and commit internal/console/dist.
func TestBundleFresh(t *testing.T) {
	built, err := bundle.Build(".")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range bundle.Files {
		committed, err := dist.ReadFile("dist/" + name)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(built[name], committed) {
			t.Errorf("dist/%s is stale (%d bytes built, %d committed): run `go generate ./internal/console` and commit internal/console/dist", name, len(built[name]), len(committed))
		}
	}
}
