//go:build !lakebase_nopkgconfig

package lakebase

// Compiler and linker flags come from `pkg-config lakebase`: installed by the liblakebase-dev
// Debian package (then `go get` is the whole set-up) and by `make install` (point PKG_CONFIG_PATH
// at $PREFIX/lib/pkgconfig for a prefix outside pkg-config's default path). Build with
// -tags lakebase_nopkgconfig to link with plain -llakebase instead.

// #cgo pkg-config: lakebase
import "C"
