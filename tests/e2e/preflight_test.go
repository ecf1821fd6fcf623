package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/regmigrate/regmigrate/steps/contract"
	"github.com/regmigrate/regmigrate/steps/stepcli"
	"github.com/regmigrate/regmigrate/steps/stepcli/exportcmd"
	"github.com/regmigrate/regmigrate/steps/stepcli/mirrorcmd"
	"github.com/regmigrate/regmigrate/steps/stepcli/verifycmd"
	"github.com/regmigrate/regmigrate/tests/regtest"
)

// authFile writes a docker config.json with a user and password for each
// registry given.
func authFile(t *testing.T, creds map[string][2]string) string {
	t.Helper()
	auths := map[string]any{}
	for host, up := range creds {
		auths[host] = map[string]string{"username": up[0], "password": up[1]}
	}
	b, _ := json.Marshal(map[string]any{"auths": auths})
	return writeFile(t, filepath.Join(t.TempDir(), "config.json"), string(b))
}

// certsDir is a certs.d folder trusting the given TLS registries.
func certsDir(t *testing.T, regs ...*regtest.Registry) string {
	t.Helper()
	dir := t.TempDir()
	for _, r := range regs {
		if err := os.Symlink(filepath.Join(r.CertsDir, r.Host), filepath.Join(dir, r.Host)); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func closedAddr(t *testing.T) string {
	t.Helper()
	port, err := regtest.FreePort("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
}

// Before anything is planned, each registry is reached and authenticated
// once: a wrong password, missing credentials, an unreachable or untrusted
// registry is one line naming the registry, its side and what to do, with
// the exit code that fits (75 only when a rerun may pass), never a line per
// image; nothing is planned, and no secret is printed.
func TestPreflightFailsOnceNamingTheRegistry(t *testing.T) {
	t.Parallel()
	secured := regtest.StartDistribution(t, regtest.Options{TLS: true, Auth: true})
	seed(t, secured, regtest.Corpus{Namespaces: []string{"team"}, ReposPerNS: 2, TagsPerRepo: 2, LayerSize: 4 << 10})
	issuer := regtest.StartTokenIssuer(t, regtest.TokenOptions{})
	token := regtest.StartDistribution(t, regtest.Options{TLS: true, Version: regtest.DistributionV3Version, Token: issuer})
	plain := regtest.StartDistribution(t, regtest.Options{})
	seed(t, plain, regtest.Corpus{Namespaces: []string{"team"}, ReposPerNS: 2, TagsPerRepo: 2, LayerSize: 4 << 10})
	certs := certsDir(t, secured, token)
	const wrong = "not-the-password-4711"
	down := closedAddr(t)

	for _, tc := range []struct {
		name     string
		from, to string
		insecure string // registries marked insecure (plain HTTP)
		creds    map[string][2]string
		certs    string
		code     int
		want     []string
	}{
		{
			name: "wrong password on the source", from: secured.Host, to: plain.Host, insecure: plain.Host, certs: certs,
			creds: map[string][2]string{secured.Host: {secured.Username, wrong}},
			code:  contract.ExitFailed, want: []string{"preflight: source registry " + secured.Host + " refused the credentials of " + secured.Username, "401", "--authfile"},
		},
		{
			name: "no credentials for the source", from: secured.Host, to: plain.Host, insecure: plain.Host, certs: certs,
			code: contract.ExitFailed, want: []string{"preflight: source registry " + secured.Host + " requires credentials and none are configured for it"},
		},
		{
			name: "wrong password on a token-authenticated target", from: plain.Host, to: token.Host, insecure: plain.Host, certs: certs,
			creds: map[string][2]string{token.Host: {token.Username, wrong}},
			code:  contract.ExitFailed, want: []string{"preflight: target registry " + token.Host + " refused the credentials of " + token.Username, "token server"},
		},
		{
			name: "target unreachable", from: plain.Host, to: down, insecure: plain.Host + "," + down,
			code: contract.ExitRetryable, want: []string{"preflight: target registry " + down + " cannot be reached", "connection refused", "run again"},
		},
		{
			name: "target's certificate untrusted", from: plain.Host, to: secured.Host, insecure: plain.Host,
			creds: map[string][2]string{secured.Host: {secured.Username, secured.Password}},
			code:  contract.ExitFailed, want: []string{"preflight: target registry " + secured.Host + " failed TLS verification", "--certs-dir"},
		},
		{
			name: "source speaks plain HTTP, not marked insecure", from: plain.Host, to: token.Host, certs: certs,
			creds: map[string][2]string{token.Host: {token.Username, token.Password}},
			code:  contract.ExitFailed, want: []string{"preflight: source registry " + plain.Host + " does not speak TLS", "plain HTTP", "--insecure"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			env := map[string]string{"REGISTRY_AUTH_FILE": authFile(t, tc.creds)}
			common := []string{"--from", tc.from, "--to", tc.to, "--retries", "2"}
			if tc.certs != "" {
				common = append(common, "--certs-dir", tc.certs)
			}
			check := func(who string, code int, stderr, out string) {
				t.Helper()
				if code != tc.code {
					t.Errorf("%s: exit %d, want %d", who, code, tc.code)
				}
				for _, w := range tc.want {
					if !strings.Contains(stderr, w) {
						t.Errorf("%s: stderr lacks %q", who, w)
					}
				}
				if lines := strings.Split(strings.TrimSpace(stderr), "\n"); len(lines) != 1 || !strings.Contains(lines[0], "preflight:") {
					t.Errorf("%s: stderr has %d lines, want the one preflight line", who, len(lines))
				}
				if strings.Contains(stderr, "image failed") || strings.Contains(stderr, "app0") {
					t.Errorf("%s: a line per image; want one line for the registry", who)
				}
				if strings.Contains(stderr, wrong) || strings.Contains(stderr, secured.Password) || strings.Contains(stderr, token.Password) {
					t.Errorf("%s: a password is in the output", who)
				}
				if _, err := os.Stat(filepath.Join(out, contract.ShardsFile)); !os.IsNotExist(err) {
					t.Errorf("%s: a plan was written (%v): nothing should be planned", who, err)
				}
			}

			out := filepath.Join(t.TempDir(), "run")
			spec := preflightSpec(t, tc.from, tc.to, tc.insecure, env["REGISTRY_AUTH_FILE"], tc.certs)
			code, _, stderr := runCLI(t, nil, "run", "-f", spec, "--out", out, "--progress", "none", "--retries", "2")
			check("regmigrate run", code, stderr, out)

			// The export step (Argo's first pod) does the same.
			stepOut := t.TempDir()
			stepArgs := append([]string{"--out", stepOut, "--log-format", "text"}, common...)
			if tc.insecure != "" {
				stepArgs = append(stepArgs, "--insecure", tc.insecure)
			}
			code, stderr = runStepCapture(t, env, contract.StepExport, stepArgs...)
			check("export step", code, stderr, stepOut)
		})
	}
}

// preflightSpec writes a migration.yaml for from and to, the registries
// in insecure (comma-separated) marked insecure.
func preflightSpec(t *testing.T, from, to, insecure, authFile, certs string) string {
	t.Helper()
	marked := map[string]bool{}
	for _, h := range strings.Split(insecure, ",") {
		marked[h] = true
	}
	spec := fmt.Sprintf(`apiVersion: regmigrate.io/v1alpha1
kind: Migration
metadata:
  name: preflight
source:
  registry: %s
  insecure: %v
target:
  registry: %s
  insecure: %v
auth:
  authFile: %s
`, from, marked[from], to, marked[to], authFile)
	if certs != "" {
		spec += "  certsDir: " + certs + "\n"
	}
	return writeFile(t, filepath.Join(t.TempDir(), "migration.yaml"), spec)
}

// runStepCapture runs a step command in-process and returns its exit code
// and stderr.
func runStepCapture(t *testing.T, env map[string]string, step string, args ...string) (int, string) {
	t.Helper()
	var out, errb bytes.Buffer
	run := map[string]stepcli.RunFunc{contract.StepExport: exportcmd.Run, contract.StepMirror: mirrorcmd.Run, contract.StepVerify: verifycmd.Run}[step]
	code := stepcli.Main(context.Background(), stepcli.Env{Stdout: &out, Stderr: &errb, Getenv: func(k string) string { return env[k] }}, step, run, args)
	t.Logf("%s %s -> %d\n%s%s", step, strings.Join(args, " "), code, out.String(), errb.String())
	return code, errb.String()
}
