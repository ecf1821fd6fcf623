package notifycmd_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/regmigrate/regmigrate/steps/stepcli"
	"github.com/regmigrate/regmigrate/steps/stepcli/notifycmd"
)

// TestTheURLComesFromTheEnvironmentOnly: the command reads the webhook's
// URL from $REGMIGRATE_WEBHOOK_URL (the Secret, in a pod), prints what it
// did without it, and without it says where it should have come from.
func TestTheURLComesFromTheEnvironmentOnly(t *testing.T) {
	var posted int
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		if r.URL.Path == "/hooks/SECRET" {
			posted++
		}
	}))
	defer srv.Close()
	args := []string{"--format=slack", "--url-from=Secret hook, key url", "--migration=m", "--workflow=m-x", "--namespace=ns", "--status=Succeeded", "--failures=null"}
	for _, tc := range []struct {
		url     string
		code    int
		stderr  string
		posts   int
		printed string
	}{
		{srv.URL + "/hooks/SECRET", 0, "", 1, "notified: m-x Succeeded (slack payload)"},
		{"", 2, "no webhook URL (Secret hook, key url is empty)", 1, ""},
	} {
		var out, errb bytes.Buffer
		env := stepcli.Env{Stdout: &out, Stderr: &errb, Getenv: func(k string) string {
			if k == notifycmd.URLEnv {
				return tc.url
			}
			return ""
		}}
		code := stepcli.Main(context.Background(), env, "verify notify", notifycmd.Run, args)
		if code != tc.code || !strings.Contains(errb.String(), tc.stderr) || posted != tc.posts || !strings.Contains(out.String(), tc.printed) {
			t.Errorf("url %q: exit %d, posted %d, stdout %q, stderr %q", tc.url, code, posted, out.String(), errb.String())
		}
		if strings.Contains(out.String()+errb.String(), "SECRET") {
			t.Errorf("the output holds the URL: %s%s", out.String(), errb.String())
		}
	}
	var errb bytes.Buffer
	if _, err := notifycmd.Parse([]string{"--format=teams", "--workflow=w", "--status=s"}, &errb); err == nil || !strings.Contains(err.Error(), `format "teams": want json or slack`) {
		t.Errorf("a bad format: %v", err)
	}
}
