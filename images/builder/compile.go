package builder

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/regmigrate/regmigrate/steps/contract"
)

// Module is the module whose step binaries the images hold.
const Module = "github.com/regmigrate/regmigrate"

// VersionVar is the -X variable the Makefile's builds set to the version.
const VersionVar = Module + "/steps/contract.Version"

// DefaultSource is the images' org.opencontainers.image.source.
const DefaultSource = "https://" + Module

// DefaultCABundle is where the build machine's CA bundle is read from.
const DefaultCABundle = "/etc/ssl/certs/ca-certificates.crt"

// Steps are the step images, in build order: one per binary in steps/cmd.
func Steps() []string {
	return []string{contract.StepExport, contract.StepMirror, contract.StepBackfill, contract.StepVerify, contract.StepSwitchMode}
}

// StepPackage is the import path of a step's main package.
func StepPackage(step string) string { return "./steps/cmd/" + step }

// DefaultPlatforms are the platforms every image is built for.
func DefaultPlatforms() []v1.Platform {
	return []v1.Platform{{OS: "linux", Architecture: "amd64"}, {OS: "linux", Architecture: "arm64"}}
}

// ParsePlatforms parses "linux/amd64,linux/arm64" (os/arch[/variant], the
// variant only for arm: v6 or v7).
func ParsePlatforms(s string) ([]v1.Platform, error) {
	var out []v1.Platform
	seen := map[string]bool{}
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		parts := strings.Split(f, "/")
		if len(parts) < 2 || len(parts) > 3 || parts[0] == "" || parts[1] == "" {
			return nil, fmt.Errorf("platform %q: want os/arch, as linux/amd64", f)
		}
		p := v1.Platform{OS: parts[0], Architecture: parts[1]}
		if len(parts) == 3 {
			p.Variant = parts[2]
		}
		if p.OS != "linux" {
			return nil, fmt.Errorf("platform %q: the step images are linux images", f)
		}
		if _, err := goEnv(p); err != nil {
			return nil, err
		}
		if seen[p.String()] {
			return nil, fmt.Errorf("platform %q given twice", f)
		}
		seen[p.String()] = true
		out = append(out, p)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no platforms")
	}
	return out, nil
}

// ParseSteps checks a comma-separated subset of Steps; empty means all.
func ParseSteps(s string) ([]string, error) {
	if strings.TrimSpace(s) == "" {
		return Steps(), nil
	}
	known := map[string]bool{}
	for _, st := range Steps() {
		known[st] = true
	}
	var out []string
	seen := map[string]bool{}
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		if !known[f] {
			return nil, fmt.Errorf("unknown step %q (steps: %s)", f, strings.Join(Steps(), ", "))
		}
		if !seen[f] {
			seen[f] = true
			out = append(out, f)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no steps")
	}
	return out, nil
}

// goEnv is the GOOS/GOARCH/... a platform compiles with. The
// microarchitecture levels are pinned to the baseline so that the binary
// runs on every node of the architecture, whatever the build machine sets.
func goEnv(p v1.Platform) ([]string, error) {
	env := []string{"GOOS=" + p.OS, "GOARCH=" + p.Architecture}
	switch p.Architecture {
	case "amd64":
		env = append(env, "GOAMD64=v1")
	case "arm64":
		if p.Variant != "" && p.Variant != "v8" {
			return nil, fmt.Errorf("platform %s: arm64 variant %q not supported (v8 or none)", p, p.Variant)
		}
		env = append(env, "GOARM64=v8.0")
	case "arm":
		switch p.Variant {
		case "v6", "v7":
			env = append(env, "GOARM="+p.Variant[1:])
		default:
			return nil, fmt.Errorf("platform %s: arm needs variant v6 or v7", p)
		}
	case "386", "ppc64le", "s390x", "riscv64":
	default:
		return nil, fmt.Errorf("platform %s: architecture %q not supported", p, p.Architecture)
	}
	if p.Variant != "" && p.Architecture != "arm" && p.Architecture != "arm64" {
		return nil, fmt.Errorf("platform %s: no variant for %s", p, p.Architecture)
	}
	return env, nil
}

// Compiler cross-compiles step binaries with the go command.
type Compiler struct {
	ModuleDir string // the module's root (go.mod); see FindModule
	Go        string // the go command; "go" when empty
	Version   string // set with -X VersionVar
	TmpDir    string // where binaries are built; a new temporary folder when empty
}

// FindModule returns the root of this module from dir (the go command's
// view: `go env GOMOD`), checking that it is regmigrate's.
func FindModule(ctx context.Context, goCmd, dir string) (string, error) {
	if goCmd == "" {
		goCmd = "go"
	}
	cmd := exec.CommandContext(ctx, goCmd, "env", "GOMOD")
	cmd.Dir = dir
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", fmt.Errorf("%s is not inside the %s module: run from its checkout", dir, Module)
	}
	b, err := os.ReadFile(gomod)
	if err != nil {
		return "", err
	}
	if !bytes.Contains(b, []byte("module "+Module+"\n")) {
		return "", fmt.Errorf("%s is not the %s module", gomod, Module)
	}
	return filepath.Dir(gomod), nil
}

// ValidVersion rejects versions that cannot travel in -ldflags or a label.
func ValidVersion(v string) error {
	if v == "" {
		return fmt.Errorf("empty version")
	}
	if strings.ContainsAny(v, " \t\r\n'\"\\") {
		return fmt.Errorf("version %q: no spaces, quotes or backslashes", v)
	}
	return nil
}

// LDFlags are the linker flags of every step binary.
func LDFlags(version string) string {
	return "-s -w -X " + VersionVar + "=" + version
}

// Compile builds a step's static binary for a platform and returns it.
func (c Compiler) Compile(ctx context.Context, step string, p v1.Platform) (Binary, error) {
	if err := ValidVersion(c.Version); err != nil {
		return Binary{}, err
	}
	env, err := goEnv(p)
	if err != nil {
		return Binary{}, err
	}
	if c.ModuleDir == "" {
		return Binary{}, errors.New("no module dir")
	}
	if _, err := os.Stat(filepath.Join(c.ModuleDir, filepath.FromSlash(StepPackage(step)))); err != nil {
		return Binary{}, fmt.Errorf("step %s: %w", step, err)
	}
	tmp := c.TmpDir
	if tmp == "" {
		if tmp, err = os.MkdirTemp("", "regmigrate-images-"); err != nil {
			return Binary{}, err
		}
		defer os.RemoveAll(tmp)
	}
	out := filepath.Join(tmp, fmt.Sprintf("%s-%s-%s%s", step, p.OS, p.Architecture, p.Variant))
	goCmd := c.Go
	if goCmd == "" {
		goCmd = "go"
	}
	cmd := exec.CommandContext(ctx, goCmd, "build", "-trimpath", "-ldflags", LDFlags(c.Version), "-o", out, StepPackage(step))
	cmd.Dir = c.ModuleDir
	cmd.Env = append(append(os.Environ(), "CGO_ENABLED=0"), env...)
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stderr, &stderr
	if err := cmd.Run(); err != nil {
		return Binary{}, fmt.Errorf("go build %s for %s: %w\n%s", StepPackage(step), p, err, strings.TrimSpace(stderr.String()))
	}
	b, err := os.ReadFile(out)
	if err != nil {
		return Binary{}, err
	}
	return Binary{Platform: p, Data: b}, nil
}

// ReadCABundle reads the CA bundle the images carry.
func ReadCABundle(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("CA bundle %s not found: install the ca-certificates package (Debian: apt-get install ca-certificates) or give --ca-bundle FILE", path)
	}
	if err != nil {
		return nil, fmt.Errorf("CA bundle: %w", err)
	}
	if !bytes.Contains(b, []byte("-----BEGIN CERTIFICATE-----")) {
		return nil, fmt.Errorf("CA bundle %s holds no PEM certificate", path)
	}
	return b, nil
}

// EpochFrom reads SOURCE_DATE_EPOCH (seconds since 1970); unset means the
// Unix epoch.
func EpochFrom(getenv func(string) string) (time.Time, error) {
	s := strings.TrimSpace(getenv("SOURCE_DATE_EPOCH"))
	if s == "" {
		return time.Unix(0, 0).UTC(), nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return time.Time{}, fmt.Errorf("SOURCE_DATE_EPOCH=%q: want seconds since 1970", s)
	}
	return time.Unix(n, 0).UTC(), nil
}
