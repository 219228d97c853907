// Command build writes internal/console/dist. Run it with
// `go generate ./internal/console` after changing internal/console/src.
package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/lifelinehq/lifeline/internal/console/internal/bundle"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func run() error {
	// go generate runs in the console directory.
	files, err := bundle.Build(".")
	if err != nil {
		return err
	}
	if err := os.MkdirAll("dist", 0o755); err != nil {
		return err
	}
	for _, name := range bundle.Files {
		out := filepath.Join("dist", name)
		if err := os.WriteFile(out, files[name], 0o644); err != nil {
			return err
		}
		fmt.Printf("wrote %s (%d bytes)\n", out, len(files[name]))
	}
	return nil
}
