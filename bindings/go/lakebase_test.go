package lakebase_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	lakebase "github.com/liblakebase/liblakebase/bindings/go"
	"github.com/liblakebase/liblakebase/bindings/go/internal/rigtest"
)

func TestMain(m *testing.M) { rigtest.Main(m) }

func patClient(t *testing.T) *lakebase.Client {
	t.Helper()
	c, err := lakebase.NewClient(lakebase.Options{
		Host: rigtest.Env(t, "FAKE_URL"), Token: rigtest.Env(t, "RIG_PAT"), Instance: rigtest.Env(t, "RIG_INSTANCE"),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestVersion(t *testing.T) {
	if v := lakebase.Version(); !strings.HasPrefix(v, "0.") {
		t.Fatalf("version %q", v)
	}
	if got := lakebase.CodeAuth.String(); got != "LAKEBASE_AUTH_ERROR" {
		t.Fatalf("CodeAuth.String() = %q", got)
	}
}

func TestOptionsEncodeQuotesEveryValue(t *testing.T) {
	got := lakebase.Options{
		Host: "h", ConfigFile: `/it's a \dir`, HTTPTimeout: 1500 * time.Millisecond,
		Extra: map[string]string{"azure_tenant_id": "t"},
	}.Encode()
	want := `host='h' config_file='/it\'s a \\dir' http_timeout_seconds='2' azure_tenant_id='t'`
	if got != want {
		t.Fatalf("Encode() = %s\nwant       %s", got, want)
	}
	if _, err := lakebase.NewClient(lakebase.Options{Extra: map[string]string{"bad key": "x"}}); !errors.Is(err, lakebase.ErrInvalidArgument) {
		t.Fatalf("bad key: %v", err)
	}
}

func TestPATClient(t *testing.T) {
	ctx := context.Background()
	c := patClient(t)
	pw, err := c.Password(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(pw) < 500 || strings.Count(pw, ".") != 2 {
		t.Fatalf("unexpected token shape (len %d)", len(pw))
	}
	if again, _ := c.Password(ctx); again != pw {
		t.Fatal("second Password differs: not cached")
	}
	if id, err := c.Identity(ctx); err != nil || id != rigtest.Env(t, "RIG_USER") {
		t.Fatalf("Identity = %q, %v", id, err)
	}
	if at, err := c.AuthType(); err != nil || at != "pat" {
		t.Fatalf("AuthType = %q, %v", at, err)
	}
	if re, err := c.RefreshError(); err != nil || re != "" {
		t.Fatalf("RefreshError = %q, %v", re, err)
	}
	if exp, err := c.Expiry(); err != nil || time.Until(exp) < time.Minute {
		t.Fatalf("Expiry = %v, %v", exp, err)
	}
}

func TestM2MClientEndpoint(t *testing.T) {
	ctx := context.Background()
	c, err := lakebase.NewClient(lakebase.Options{
		Host: rigtest.Env(t, "FAKE_URL"), ClientID: rigtest.Env(t, "RIG_SP_CLIENT_ID"),
		ClientSecret: rigtest.Env(t, "RIG_SP_CLIENT_SECRET"), Endpoint: rigtest.Env(t, "RIG_ENDPOINT"),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if exp, _ := c.Expiry(); !exp.IsZero() {
		t.Fatalf("Expiry before the first password = %v, want zero", exp)
	}
	if _, err := c.Password(ctx); err != nil {
		t.Fatal(err)
	}
	if at, _ := c.AuthType(); at != "oauth-m2m" {
		t.Fatalf("AuthType = %q", at)
	}
	if id, _ := c.Identity(ctx); id != rigtest.Env(t, "RIG_SP_USER") {
		t.Fatalf("Identity = %q", id)
	}
}

func TestRefreshMintsANewToken(t *testing.T) {
	ctx := context.Background()
	c := patClient(t)
	before, err := c.Password(ctx)
	if err != nil {
		t.Fatal(err)
	}
	n := rigtest.Minted(t)
	if err := c.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if got := rigtest.Minted(t); got != n+1 {
		t.Fatalf("minted %d, want %d", got, n+1)
	}
	if after, _ := c.Password(ctx); after == before {
		t.Fatal("password unchanged after Refresh")
	}
}

func TestWrongPATIsAuthErrorWithoutTheToken(t *testing.T) {
	bad := "dapi" + strings.Repeat("0123456789abcdef", 2)
	c, err := lakebase.NewClient(lakebase.Options{Host: rigtest.Env(t, "FAKE_URL"), Token: bad, Instance: rigtest.Env(t, "RIG_INSTANCE")})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, err = c.Password(context.Background())
	if !errors.Is(err, lakebase.ErrAuth) {
		t.Fatalf("err = %v, want ErrAuth", err)
	}
	var le *lakebase.Error
	if !errors.As(err, &le) || le.Code != lakebase.CodeAuth {
		t.Fatalf("errors.As: %#v", err)
	}
	msg := err.Error()
	if !strings.Contains(msg, "403") || !strings.Contains(msg, "pat") || strings.Contains(msg, bad) {
		t.Fatalf("message %q: want HTTP 403 and pat, never the token", msg)
	}
}

func TestErrorKinds(t *testing.T) {
	ctx := context.Background()
	host, pat := rigtest.Env(t, "FAKE_URL"), rigtest.Env(t, "RIG_PAT")
	cases := []struct {
		name string
		opts lakebase.Options
		want error
		text string
	}{
		{"no target", lakebase.Options{Host: host, Token: pat}, lakebase.ErrConfig, "LAKEBASE_INSTANCE"},
		{"unknown instance", lakebase.Options{Host: host, Token: pat, Instance: "no-such-db"}, lakebase.ErrAPI, "RESOURCE_DOES_NOT_EXIST"},
		{"unreachable", lakebase.Options{Host: "http://127.0.0.1:1", Token: pat, Instance: "x", RetryTimeout: time.Second}, lakebase.ErrNetwork, "127.0.0.1"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := lakebase.NewClient(tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			_, err = c.Password(ctx)
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.text) {
				t.Fatalf("err = %v, want %v mentioning %q", err, tc.want, tc.text)
			}
		})
	}
	_, err := lakebase.NewClient(lakebase.Options{Host: host, Extra: map[string]string{"bogus": "1"}})
	if !errors.Is(err, lakebase.ErrInvalidArgument) || !strings.Contains(err.Error(), `unknown option "bogus"`) {
		t.Fatalf("unknown option: %v", err)
	}
}

func TestQuotedValuesReachTheLibrary(t *testing.T) {
	dir := filepath.Join(t.TempDir(), `it's a \dir`)
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "databrickscfg")
	body := "[rig]\nhost = " + rigtest.Env(t, "FAKE_URL") + "\ntoken = " + rigtest.Env(t, "RIG_PAT") + "\n"
	if err := os.WriteFile(cfg, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := lakebase.NewClient(lakebase.Options{ConfigFile: cfg, Profile: "rig", Instance: rigtest.Env(t, "RIG_INSTANCE")})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if id, err := c.Identity(context.Background()); err != nil || id != rigtest.Env(t, "RIG_USER") {
		t.Fatalf("Identity = %q, %v", id, err)
	}
}

func TestCloseAndContext(t *testing.T) {
	c := patClient(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := c.Password(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("canceled ctx: %v", err)
	}
	c.Close()
	c.Close()
	if _, err := c.Password(context.Background()); !errors.Is(err, lakebase.ErrClosed) {
		t.Fatalf("after Close: %v", err)
	}
}

func TestConcurrentPasswords(t *testing.T) {
	ctx := context.Background()
	c := patClient(t)
	want, err := c.Password(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for i := 0; i < 16; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 200; j++ {
				if pw, err := c.Password(ctx); err != nil || pw != want {
					errs <- errors.New("bad password or error")
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

// The default client reads the environment on first use; a configuration error is not remembered.
func TestDefaultClientFromEnvironment(t *testing.T) {
	ctx := context.Background()
	if _, err := lakebase.Password(ctx); !errors.Is(err, lakebase.ErrConfig) {
		t.Fatalf("without configuration: %v, want ErrConfig", err)
	}
	t.Setenv("DATABRICKS_HOST", rigtest.Env(t, "FAKE_URL"))
	t.Setenv("DATABRICKS_TOKEN", rigtest.Env(t, "RIG_PAT"))
	t.Setenv("LAKEBASE_INSTANCE", rigtest.Env(t, "RIG_INSTANCE"))
	pw, err := lakebase.Password(ctx)
	if err != nil || pw == "" {
		t.Fatalf("Password: %v", err)
	}
	d, err := lakebase.DefaultClient()
	if err != nil {
		t.Fatal(err)
	}
	d.Close() // borrowed: a no-op
	if id, err := d.Identity(ctx); err != nil || id != rigtest.Env(t, "RIG_USER") {
		t.Fatalf("Identity = %q, %v", id, err)
	}
}
