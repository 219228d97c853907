// Package bundle builds widget.js from the TypeScript sources with esbuild's
// Go API. The generator (widget/internal/build) writes the result to
// widget/dist; the widget package's tests build again in memory and fail if
// the committed bundle is stale.
package bundle

import (
	"fmt"
	"path/filepath"
	"strings"

	"github.com/evanw/esbuild/pkg/api"
)

// Build bundles dir/src/main.ts (dir is the widget directory) into one
// minified IIFE for browsers from 2019 on, and returns it.
func Build(dir string) ([]byte, error) {
	res := api.Build(api.BuildOptions{
		EntryPoints:       []string{filepath.Join(dir, "src", "main.ts")},
		Bundle:            true,
		Format:            api.FormatIIFE,
		Target:            api.ES2019,
		Platform:          api.PlatformBrowser,
		MinifyWhitespace:  true,
		MinifyIdentifiers: true,
		MinifySyntax:      true,
		Charset:           api.CharsetUTF8,
		LegalComments:     api.LegalCommentsNone,
		// Whatever goes wrong while the bundle starts must not reach the
		// host page as an uncaught exception.
		Banner:   map[string]string{"js": "/* Lifeline widget — https://github.com/lifelinehq/lifeline */\ntry{"},
		Footer:   map[string]string{"js": "}catch(e){console.error(\"[lifeline]\",e)}"},
		Write:    false,
		LogLevel: api.LogLevelSilent,
		Outfile:  "widget.js",
	})
	if len(res.Errors) > 0 {
		var msgs []string
		for _, m := range api.FormatMessages(res.Errors, api.FormatMessagesOptions{Kind: api.ErrorMessage}) {
			msgs = append(msgs, m)
		}
		return nil, fmt.Errorf("bundle widget: %s", strings.Join(msgs, "\n"))
	}
	for _, f := range res.OutputFiles {
		if strings.HasSuffix(f.Path, ".js") {
			return f.Contents, nil
		}
	}
	return nil, fmt.Errorf("bundle widget: esbuild produced no .js output")
}
