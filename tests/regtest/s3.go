package regtest

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/regmigrate/regmigrate/tests/buildcache"
)

// S3Host is how clients reach fakes3 by default: "localhost", another host
// name than the registries' 127.0.0.1, so that a blob redirect leaves the
// registry's host (Go's http.Client, for one, drops Authorization on such a
// redirect) while staying on loopback (fakes3 then listens on 127.0.0.1).
//
// It is a name, not another loopback address such as 127.0.0.2:
// go-containerregistry (v0.22.1, as go.mod requires) refuses, as SSRF
// protection, to follow a redirect to a different host that is a loopback
// or private IP literal, and also refuses such token realms; host names
// pass.
const S3Host = "localhost"

// FakeS3 describes a running gofakes3 server (tests/cluster/fakes3, built
// once into <CacheDir>/fakes3-<source hash>/bin) with one bucket.
type FakeS3 struct {
	Host     string // host:port as clients use it, e.g. localhost:41234
	Endpoint string // http://Host
	Region   string
	Bucket   string

	// AccessKey and SecretKey are what a client signs with; gofakes3
	// checks no signature.
	AccessKey, SecretKey string

	RequestLog string // a line per request: method, auth scheme, presigned, path
	LogFile    string // the server's stdout and stderr
}

// S3Request is a request fakes3 received.
type S3Request struct {
	Method string
	// Auth is the scheme of the Authorization header (AWS4-HMAC-SHA256 for
	// the registry's own SigV4 requests, Basic or Bearer if a client
	// forwarded registry credentials), or "" if there was none.
	Auth      string
	Presigned bool   // the query carries a signature (a redirect to a presigned URL)
	Path      string // escaped
}

// Requests returns the requests fakes3 has received so far, in order.
func (s *FakeS3) Requests() ([]S3Request, error) {
	f, err := os.Open(s.RequestLog)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var reqs []S3Request
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) != 4 {
			return nil, fmt.Errorf("%s: bad line %q", s.RequestLog, sc.Text())
		}
		r := S3Request{Method: fields[0], Auth: fields[1], Presigned: fields[2] == "presigned", Path: fields[3]}
		if r.Auth == "-" {
			r.Auth = ""
		}
		reqs = append(reqs, r)
	}
	return reqs, sc.Err()
}

// LeakedCredentials returns the requests that carried an Authorization
// header with the Basic or Bearer scheme: registry credentials or tokens a
// client sent on to the storage a registry redirected it to. The
// registry's own requests (SigV4) and presigned URLs (no header) are
// fine.
func (s *FakeS3) LeakedCredentials() ([]S3Request, error) {
	all, err := s.Requests()
	if err != nil {
		return nil, err
	}
	var leaked []S3Request
	for _, r := range all {
		if strings.EqualFold(r.Auth, "Basic") || strings.EqualFold(r.Auth, "Bearer") {
			leaked = append(leaked, r)
		}
	}
	return leaked, nil
}

// StartFakeS3 starts fakes3 with a bucket until the test ends, on a free
// port of host: an IP address, or "" for S3Host.
func StartFakeS3(t testing.TB, host string) *FakeS3 {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	s, cmd, err := StartFakeS3Process(ctx, t.TempDir(), host)
	if err != nil {
		cancel()
		t.Fatalf("regtest: start fakes3: %v", err)
	}
	t.Cleanup(func() {
		cancel()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("fakes3 %s log (%s):\n%s", s.Host, s.LogFile, logHead(s.LogFile, 8<<10))
		}
	})
	return s
}

// StartFakeS3Process builds fakes3 if needed (FakeS3Binary) and starts it
// on a free port of host (an IP address, or "" or "localhost" for S3Host:
// 127.0.0.1 reached as localhost) with objects in memory (-mem: the bolt
// backend can fault under a registry's concurrent copies), its request
// log and output in dir and a bucket "regtest", and waits until it
// answers. Like StartDistributionProcess, the process lives as long as ctx
// (SIGTERM, then SIGKILL StopGrace later) and dies with the caller; the
// caller cancels ctx and calls cmd.Wait to stop it.
func StartFakeS3Process(ctx context.Context, dir, host string) (*FakeS3, *exec.Cmd, error) {
	bin, err := FakeS3Binary(ctx)
	if err != nil {
		return nil, nil, err
	}
	listen := host
	if host == "" || host == "localhost" {
		host, listen = S3Host, "127.0.0.1"
	} else if net.ParseIP(host) == nil {
		return nil, nil, fmt.Errorf("regtest: fakes3 host %q is not an IP address", host)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, nil, err
	}
	s := &FakeS3{
		Region:     "us-east-1",
		Bucket:     "regtest",
		AccessKey:  "regtest",
		SecretKey:  randomHex(16),
		RequestLog: filepath.Join(dir, "s3-requests.log"),
		LogFile:    filepath.Join(dir, "fakes3.log"),
	}
	for attempt := 0; ; attempt++ {
		port, err := FreePort(listen)
		if err != nil {
			return nil, nil, fmt.Errorf("no free port on %s: %w", listen, err)
		}
		s.Host = net.JoinHostPort(host, strconv.Itoa(port))
		s.Endpoint = "http://" + s.Host
		cmd, err := startFakeS3(ctx, bin, dir, net.JoinHostPort(listen, strconv.Itoa(port)), s)
		if err == nil {
			return s, cmd, nil
		}
		if !errors.Is(err, errAddrInUse) || attempt >= 4 {
			return nil, nil, err
		}
	}
}

func startFakeS3(ctx context.Context, bin, dir, addr string, s *FakeS3) (*exec.Cmd, error) {
	logf, err := os.Create(s.LogFile)
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	cmd := exec.CommandContext(ctx, bin, "-addr", addr, "-mem", "-bucket", s.Bucket, "-requests", s.RequestLog)
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = StopGrace
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	client := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(30 * time.Second)
	for {
		if exited(cmd.Process.Pid) {
			break
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodHead, s.Endpoint+"/"+s.Bucket, nil)
		if err != nil {
			stopNow(cmd)
			return nil, err
		}
		if resp, err := client.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK && !exited(cmd.Process.Pid) {
				return cmd, nil
			}
		}
		if ctx.Err() != nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	stopNow(cmd)
	tail := logTail(s.LogFile, 4<<10)
	if strings.Contains(tail, "address already in use") {
		return nil, fmt.Errorf("%w: %s", errAddrInUse, s.Host)
	}
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	return nil, fmt.Errorf("fakes3 on %s did not start\n--- %s:\n%s", s.Host, s.LogFile, tail)
}

// FakeS3Binary returns the path of tests/cluster/fakes3 (its own module)
// built into <CacheDir>/fakes3-<hash of its main.go, go.mod and go.sum>/bin,
// building it first if it is not there (a few seconds once its modules
// are downloaded). It must run inside regmigrate's checkout.
func FakeS3Binary(ctx context.Context) (string, error) {
	src, err := fakeS3Source()
	if err != nil {
		return "", err
	}
	h := sha256.New()
	for _, f := range []string{"main.go", "go.mod", "go.sum"} {
		b, err := os.ReadFile(filepath.Join(src, f))
		if err != nil {
			return "", err
		}
		fmt.Fprintf(h, "%s %d\n", f, len(b))
		h.Write(b)
	}
	cache, err := buildcache.Dir()
	if err != nil {
		return "", err
	}
	dir := filepath.Join(cache, "fakes3-"+hex.EncodeToString(h.Sum(nil))[:12])
	bin := filepath.Join(dir, "bin", "fakes3")
	err = buildOnce(ctx, dir, bin, func(log *os.File) error {
		tmp, err := os.MkdirTemp(dir, "bin-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		if err := goCommand(ctx, src, log, nil, "build", "-trimpath", "-o", filepath.Join(tmp, "fakes3"), "."); err != nil {
			return err
		}
		if err := os.MkdirAll(filepath.Dir(bin), 0o755); err != nil {
			return err
		}
		return os.Rename(filepath.Join(tmp, "fakes3"), bin)
	})
	if err != nil {
		return "", fmt.Errorf("%w: fakes3: %v; %s", ErrMissingTool, err, BuildHint)
	}
	return bin, nil
}

// fakeS3Source is tests/cluster/fakes3 of the checkout the working
// directory is in.
func fakeS3Source() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	gomod := strings.TrimSpace(string(out))
	if err != nil || gomod == "" || gomod == os.DevNull {
		return "", fmt.Errorf("locating tests/cluster/fakes3: not inside regmigrate's checkout (go env GOMOD: %q, %v)", gomod, err)
	}
	src := filepath.Join(filepath.Dir(gomod), "tests", "cluster", "fakes3")
	if _, err := os.Stat(filepath.Join(src, "main.go")); err != nil {
		return "", fmt.Errorf("locating tests/cluster/fakes3: %w", err)
	}
	return src, nil
}

// logHead returns at most the first max bytes of a file (a Go crash starts
// with its cause), or a note why it cannot.
func logHead(path string, max int64) string {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	defer f.Close()
	b, _ := io.ReadAll(io.LimitReader(f, max+1))
	if int64(len(b)) > max {
		return string(b[:max]) + "\n..."
	}
	return string(b)
}
