//go:build !lakebase_pkgconfig

package lakebase

// Link with -llakebase; add -I/-L through CGO_CFLAGS / CGO_LDFLAGS when lakebase.h and
// liblakebase.so are not in the compiler's default paths.

// #cgo LDFLAGS: -llakebase
import "C"
