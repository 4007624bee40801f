package smuxcompat

import "runtime/debug"

// ModulePath is the import path of the library under test.
const ModulePath = "github.com/xtaci/smux"

// tagOverride may be set with
// -ldflags "-X smuxref/go-peer/internal/smuxcompat.tagOverride=vX.Y.Z"
// for builds that carry no module information. Normal builds leave it empty.
var tagOverride string

// Tag returns the exact xtaci/smux tag compiled into this binary, read from
// the module information the Go toolchain embeds (so it cannot disagree with
// the code actually linked), or "unknown".
func Tag() string {
	if tagOverride != "" {
		return tagOverride
	}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	for _, dep := range bi.Deps {
		if dep.Path != ModulePath {
			continue
		}
		if dep.Replace != nil && dep.Replace.Version != "" {
			return dep.Replace.Version
		}
		return dep.Version
	}
	return "unknown"
}
