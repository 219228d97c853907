// Command build writes widget/dist/widget.js. Run it with
// `go generate ./widget` after changing widget/src.
package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/lifelinehq/lifeline/widget/internal/bundle"
)

func main() {
	// go generate runs in the widget directory.
	js, err := bundle.Build(".")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	out := filepath.Join("dist", "widget.js")
	if err := os.MkdirAll("dist", 0o755); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if err := os.WriteFile(out, js, 0o644); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Printf("wrote %s (%d bytes)\n", out, len(js))
}
