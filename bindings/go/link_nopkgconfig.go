//go:build lakebase_nopkgconfig

package lakebase

// Built with -tags lakebase_nopkgconfig: plain -llakebase, for machines without pkg-config; add
// -I/-L through CGO_CFLAGS / CGO_LDFLAGS when lakebase.h and liblakebase.so are not in the
// compiler's default paths.

// #cgo LDFLAGS: -llakebase
import "C"
