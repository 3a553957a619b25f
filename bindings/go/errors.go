package lakebase

import "errors"

// Code is a liblakebase result code (lakebase_result). Values are never reused; new ones are appended.
type Code int

// Result codes, as in include/lakebase.h.
const (
	CodeOK               Code = 0
	CodeInvalidArgument  Code = 1
	CodeInsufficientSize Code = 2
	CodeConfig           Code = 3
	CodeAuth             Code = 4
	CodeAPI              Code = 5
	CodeNetwork          Code = 6
	CodeInternal         Code = 7
)

// Sentinel errors, one per result code: errors.Is(err, lakebase.ErrAuth) tells what kind of failure
// an *Error is. Use errors.As with *Error for the code and the library's message.
var (
	ErrInvalidArgument  = errors.New("lakebase: invalid argument")
	ErrInsufficientSize = errors.New("lakebase: insufficient buffer size")
	ErrConfig           = errors.New("lakebase: configuration error")
	ErrAuth             = errors.New("lakebase: authentication error")
	ErrAPI              = errors.New("lakebase: workspace API error")
	ErrNetwork          = errors.New("lakebase: network error")
	ErrInternal         = errors.New("lakebase: internal error")
	// ErrClosed is returned by the methods of a Client after Close.
	ErrClosed = errors.New("lakebase: client is closed")
)

var sentinels = map[Code]error{
	CodeInvalidArgument:  ErrInvalidArgument,
	CodeInsufficientSize: ErrInsufficientSize,
	CodeConfig:           ErrConfig,
	CodeAuth:             ErrAuth,
	CodeAPI:              ErrAPI,
	CodeNetwork:          ErrNetwork,
	CodeInternal:         ErrInternal,
}

// Error is a failed liblakebase call: its result code and the library's detail message (which says
// which auth method failed, the HTTP status, the API's error code and what to set; never a secret).
type Error struct {
	Code    Code
	Message string
}

func (e *Error) Error() string {
	if e.Message == "" {
		return "lakebase: " + e.Code.String()
	}
	return "lakebase: " + e.Message
}

// Unwrap returns the sentinel for the code (ErrAuth, ErrConfig, ...), so errors.Is works.
// Unknown codes unwrap to ErrInternal.
func (e *Error) Unwrap() error {
	if s, ok := sentinels[e.Code]; ok {
		return s
	}
	return ErrInternal
}
