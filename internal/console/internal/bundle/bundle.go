// Package bundle builds the console's assets from the TypeScript and CSS
// sources with esbuild's Go API. The generator (internal/console/internal/build)
// writes the result to internal/console/dist; the console package's tests
// build again in memory and fail if the committed files are stale.
package bundle

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/evanw/esbuild/pkg/api"
)

// Files are the names of the built assets, in the order Build returns them.
var Files = []string{"index.html", "app.js", "app.css"}

// Build bundles dir/src/main.ts and dir/src/app.css (dir is the console
// directory) into one minified ES2022 script and one stylesheet, copies
// dir/src/index.html, and returns them by name.
func Build(dir string) (map[string][]byte, error) {
	res := api.Build(api.BuildOptions{
		EntryPointsAdvanced: []api.EntryPoint{
			{InputPath: filepath.Join(dir, "src", "main.ts"), OutputPath: "app"},
			{InputPath: filepath.Join(dir, "src", "app.css"), OutputPath: "app"},
		},
		Bundle:            true,
		Format:            api.FormatIIFE,
		Target:            api.ES2022,
		Platform:          api.PlatformBrowser,
		MinifyWhitespace:  true,
		MinifyIdentifiers: true,
		MinifySyntax:      true,
		Charset:           api.CharsetUTF8,
		LegalComments:     api.LegalCommentsNone,
		Write:             false,
		LogLevel:          api.LogLevelSilent,
		Outdir:            "out",
	})
	if len(res.Errors) > 0 {
		msgs := api.FormatMessages(res.Errors, api.FormatMessagesOptions{Kind: api.ErrorMessage})
		return nil, fmt.Errorf("bundle console: %s", strings.Join(msgs, "\n"))
	}
	out := make(map[string][]byte)
	for _, f := range res.OutputFiles {
		out[filepath.Base(f.Path)] = f.Contents
	}
	html, err := os.ReadFile(filepath.Join(dir, "src", "index.html"))
	if err != nil {
		return nil, fmt.Errorf("bundle console: %w", err)
	}
	out["index.html"] = html
	for _, name := range Files {
		if _, ok := out[name]; !ok {
			return nil, fmt.Errorf("bundle console: esbuild produced no %s", name)
		}
	}
	return out, nil
}
