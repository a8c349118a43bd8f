// Package clientweb embeds the built web client (client-web/dist) so the node binary serves it
// without Node.js at build time. The build is committed; `npm run check-dist` (run by test.sh)
// fails when it is stale against src/.
package clientweb

import (
	"embed"
	"io/fs"
)

//go:embed all:dist
var dist embed.FS

// FS returns the built client rooted at dist/: index.html at the top and hashed files under
// assets/. Serve it at "/" and answer every other non-API GET path with index.html, so that
// client-side routes such as /invite/CODE load the app. Files under assets/ never change
// content under the same name and may be cached forever; index.html must not be cached.
func FS() fs.FS {
	sub, err := fs.Sub(dist, "dist")
	if err != nil {
		// fs.Sub fails only for an invalid path name, and "dist" is valid.
		panic("clientweb: " + err.Error())
	}
	return sub
}
