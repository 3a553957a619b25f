package lakebase

import (
	"fmt"
	"math"
	"sort"
	"strings"
	"time"
)

// Options configure a Client. Empty fields are left to the library, which falls back to the
// DATABRICKS_* / LAKEBASE_* environment and ~/.databrickscfg exactly as the Databricks SDKs do.
// The binding does not interpret them: they become the library's options string.
type Options struct {
	Host         string // workspace URL
	Token        string // personal access token (auth type "pat")
	ClientID     string // service principal OAuth (auth type "oauth-m2m")
	ClientSecret string
	Profile      string // section of the config file
	ConfigFile   string // default ~/.databrickscfg
	AuthType     string // force one auth method
	AccountID    string
	WorkspaceID  string
	Instance     string // Lakebase Provisioned instance name
	Endpoint     string // Lakebase Autoscaling endpoint, projects/{p}/branches/{b}/endpoints/{e}
	CAFile       string // extra PEM CA bundle for the workspace

	HTTPTimeout  time.Duration // read timeout (whole seconds, rounded up); 0 = library default
	RetryTimeout time.Duration // total time for one call with retries (whole seconds, rounded up)

	// Extra holds any other option key the library knows (e.g. "azure_tenant_id").
	Extra map[string]string
}

// Encode returns the libpq-style options string liblakebase parses: key='value' pairs, every value
// single-quoted with \ and ' escaped. It contains secrets when Token or ClientSecret are set.
func (o Options) Encode() string {
	var b strings.Builder
	add := func(k, v string) {
		if v == "" {
			return
		}
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(k)
		b.WriteByte('=')
		b.WriteString(QuoteValue(v))
	}
	add("host", o.Host)
	add("token", o.Token)
	add("client_id", o.ClientID)
	add("client_secret", o.ClientSecret)
	add("profile", o.Profile)
	add("config_file", o.ConfigFile)
	add("auth_type", o.AuthType)
	add("account_id", o.AccountID)
	add("workspace_id", o.WorkspaceID)
	add("instance", o.Instance)
	add("endpoint", o.Endpoint)
	add("ca_file", o.CAFile)
	add("http_timeout_seconds", seconds(o.HTTPTimeout))
	add("retry_timeout_seconds", seconds(o.RetryTimeout))
	keys := make([]string, 0, len(o.Extra))
	for k := range o.Extra {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		add(k, o.Extra[k])
	}
	return b.String()
}

// QuoteValue quotes one value for an options string: '...' with \ and ' backslash-escaped.
func QuoteValue(v string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(v) + "'"
}

func seconds(d time.Duration) string {
	if d <= 0 {
		return ""
	}
	return fmt.Sprint(int64(math.Ceil(d.Seconds())))
}
