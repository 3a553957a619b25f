//go:build lakebase_pkgconfig

package lakebase

// Build with -tags lakebase_pkgconfig to take compiler and linker flags from `pkg-config lakebase`
// (installed by `make install`; point PKG_CONFIG_PATH at its directory for other prefixes).

// #cgo pkg-config: lakebase
import "C"
