// Package rigtest connects the Go tests to the liblakebase test rig (tests/rig): a real PostgreSQL
// with TLS whose logins are checked against a fake Databricks workspace.
package rigtest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

// Repo is the liblakebase checkout this module lives in.
func Repo() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", "..", "..", ".."))
}

// Main runs the package's tests against the rig named by FAKE_URL/PGPORT/... in the environment,
// or one it starts (python3 tests/rig/rig.py up) for the package. It clears the machine's
// Databricks configuration and resets the fake before any test holds a token.
func Main(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	if os.Getenv("FAKE_URL") == "" || os.Getenv("PGPORT") == "" {
		dir, err := os.MkdirTemp("", "lakebase-go-rig-")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer os.RemoveAll(dir)
		rig := filepath.Join(Repo(), "tests", "rig", "rig.py")
		if out, err := exec.Command("python3", rig, "up", "--dir", dir).CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "starting the rig: %v\n%s", err, out)
			return 1
		}
		defer exec.Command("python3", rig, "down", "--dir", dir).Run()
		var env map[string]string
		b, err := os.ReadFile(filepath.Join(dir, "env.json"))
		if err == nil {
			err = json.Unmarshal(b, &env)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "reading the rig's env.json:", err)
			return 1
		}
		for k, v := range env {
			os.Setenv(k, v)
		}
	}
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "DATABRICKS_") || strings.HasPrefix(k, "LAKEBASE_") || k == "PGUSER" || k == "PGPASSWORD" {
			os.Unsetenv(k)
		}
	}
	home, err := os.MkdirTemp("", "lakebase-go-home-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(home)
	os.Setenv("HOME", home) // no ~/.databrickscfg
	if _, err := fake("/_fake/reset", map[string]any{}); err != nil {
		fmt.Fprintln(os.Stderr, "resetting the fake workspace:", err)
		return 1
	}
	return m.Run()
}

// Env returns a rig variable (RIG_PAT, RIG_USER, PGPORT, ...).
func Env(t testing.TB, key string) string {
	v := os.Getenv(key)
	if v == "" {
		t.Fatalf("%s not set (the rig's env.sh)", key)
	}
	return v
}

func fake(path string, body any) (map[string]any, error) {
	var res *http.Response
	var err error
	url := os.Getenv("FAKE_URL") + path
	if body == nil {
		res, err = http.Get(url)
	} else {
		b, _ := json.Marshal(body)
		res, err = http.Post(url, "application/json", bytes.NewReader(b))
	}
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	var out map[string]any
	if err := json.NewDecoder(res.Body).Decode(&out); err != nil {
		return nil, err
	}
	return out, nil
}

// Fake calls the fake workspace's control API (POST with body, GET when body is nil).
func Fake(t testing.TB, path string, body any) map[string]any {
	t.Helper()
	out, err := fake(path, body)
	if err != nil {
		t.Fatalf("fake %s: %v", path, err)
	}
	return out
}

// Minted is the number of Lakebase tokens the fake has minted.
func Minted(t testing.TB) int {
	return int(Fake(t, "/_fake/stats", nil)["lakebase_tokens_minted_total"].(float64))
}

// ShortTokens makes tokens minted from now on live 10 s, until the test ends.
func ShortTokens(t testing.TB) {
	Fake(t, "/_fake/config", map[string]any{"token_lifetime_seconds": 10})
	t.Cleanup(func() { Fake(t, "/_fake/config", map[string]any{"token_lifetime_seconds": 3600}) })
}

// ConnString is a pgx connection string for the rig's PostgreSQL as user, TLS verified.
func ConnString(t testing.TB, user string) string {
	return fmt.Sprintf("host=%s port=%s dbname=databricks_postgres user='%s' sslmode=verify-full sslrootcert='%s'",
		Env(t, "PGHOST"), Env(t, "PGPORT"), user, Env(t, "PGSSLROOTCERT"))
}

// PollUntil calls cond every interval until it returns true; fails the test after timeout.
func PollUntil(t testing.TB, timeout, interval time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(interval)
	}
}
