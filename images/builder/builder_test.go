package builder

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"debug/elf"
	"encoding/binary"
	"encoding/pem"
	"errors"
	"io"
	"log"
	"math/big"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/regmigrate/regmigrate/steps/contract"
)

var (
	amd64 = v1.Platform{OS: "linux", Architecture: "amd64"}
	arm64 = v1.Platform{OS: "linux", Architecture: "arm64"}
)

// elfMachines are the ELF e_machine values of the platforms built.
var elfMachines = map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64}

// testCA is a real self-signed certificate in PEM, so that the tests do not
// depend on the machine's CA bundle.
func testCA(t *testing.T) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "regmigrate test CA"},
		NotBefore: time.Unix(0, 0), NotAfter: time.Unix(1<<32, 0), IsCA: true, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

func testMeta(t *testing.T) Meta {
	return Meta{Version: "v1.2.3-test", Source: DefaultSource, Epoch: time.Unix(1700000000, 0).UTC(), CABundle: testCA(t)}
}

// fakeELF is a tiny stand-in binary: an ELF64 little-endian header with the
// platform's e_machine, and a marker naming the step and platform.
func fakeELF(step string, p v1.Platform) []byte {
	h := make([]byte, 64)
	copy(h, "\x7fELF")
	h[elf.EI_CLASS], h[elf.EI_DATA], h[elf.EI_VERSION] = byte(elf.ELFCLASS64), byte(elf.ELFDATA2LSB), byte(elf.EV_CURRENT)
	binary.LittleEndian.PutUint16(h[16:], uint16(elf.ET_EXEC))
	binary.LittleEndian.PutUint16(h[18:], uint16(elfMachines[p.Architecture]))
	binary.LittleEndian.PutUint32(h[20:], uint32(elf.EV_CURRENT))
	return append(h, "fake "+step+" for "+p.String()...)
}

// machine reads e_machine from an ELF header, as `file` would.
func machine(t *testing.T, b []byte) elf.Machine {
	t.Helper()
	if len(b) < 20 || string(b[:4]) != "\x7fELF" {
		t.Fatalf("not an ELF file (%d bytes, starts %q)", len(b), b[:min(len(b), 4)])
	}
	if elf.Data(b[elf.EI_DATA]) != elf.ELFDATA2LSB {
		t.Fatalf("ELF data encoding %v, want little-endian", elf.Data(b[elf.EI_DATA]))
	}
	return elf.Machine(binary.LittleEndian.Uint16(b[18:20]))
}

// openLayout opens an OCI layout and returns the one index it names tag.
func openLayout(t *testing.T, dir, tag string) v1.ImageIndex {
	t.Helper()
	lp, err := layout.FromPath(dir)
	if err != nil {
		t.Fatalf("OCI layout %s: %v", dir, err)
	}
	top, err := lp.ImageIndex()
	if err != nil {
		t.Fatal(err)
	}
	im, err := top.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(im.Manifests) != 1 {
		t.Fatalf("index.json lists %d manifests, want 1", len(im.Manifests))
	}
	d := im.Manifests[0]
	if d.MediaType != types.OCIImageIndex {
		t.Fatalf("index.json lists a %s, want an OCI image index", d.MediaType)
	}
	if got := d.Annotations[AnnotationRefName]; got != tag {
		t.Fatalf("index.json names it %q, want %q", got, tag)
	}
	idx, err := top.ImageIndex(d.Digest)
	if err != nil {
		t.Fatal(err)
	}
	return idx
}

// files reads an image's filesystem: path (without the leading /) to header
// and content.
func files(t *testing.T, img v1.Image) (map[string]*tar.Header, map[string][]byte) {
	t.Helper()
	rc := mutate.Extract(img)
	defer rc.Close()
	tr := tar.NewReader(rc)
	hdrs, data := map[string]*tar.Header{}, map[string][]byte{}
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		n := strings.TrimSuffix(h.Name, "/")
		hdrs[n], data[n] = h, b
	}
	return hdrs, data
}

// checkIndex checks what a user of the step's image relies on and returns
// the binaries by architecture.
func checkIndex(t *testing.T, idx v1.ImageIndex, step string, m Meta) map[string][]byte {
	t.Helper()
	if mt, _ := idx.MediaType(); mt != types.OCIImageIndex {
		t.Errorf("index media type %s, want %s", mt, types.OCIImageIndex)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	var plats []string
	for _, d := range im.Manifests {
		if d.Platform == nil {
			t.Fatalf("child %s has no platform in the index", d.Digest)
		}
		plats = append(plats, d.Platform.String())
	}
	if want := []string{"linux/amd64", "linux/arm64"}; !slices.Equal(plats, want) {
		t.Fatalf("index platforms %v, want exactly %v", plats, want)
	}
	if im.Annotations[LabelTitle] != step || im.Annotations[LabelVersion] != m.Version {
		t.Errorf("index annotations %v", im.Annotations)
	}
	bins := map[string][]byte{}
	for _, d := range im.Manifests {
		p := *d.Platform
		img, err := idx.Image(d.Digest)
		if err != nil {
			t.Fatal(err)
		}
		if d.MediaType != types.OCIManifestSchema1 {
			t.Errorf("%s: manifest media type %s", p, d.MediaType)
		}
		man, err := img.Manifest()
		if err != nil {
			t.Fatal(err)
		}
		if man.Config.MediaType != types.OCIConfigJSON {
			t.Errorf("%s: config media type %s", p, man.Config.MediaType)
		}
		for _, l := range man.Layers {
			if l.MediaType != types.OCILayer {
				t.Errorf("%s: layer media type %s", p, l.MediaType)
			}
		}
		cf, err := img.ConfigFile()
		if err != nil {
			t.Fatal(err)
		}
		if cf.OS != p.OS || cf.Architecture != p.Architecture {
			t.Errorf("%s: config says %s/%s", p, cf.OS, cf.Architecture)
		}
		c := cf.Config
		if c.User != "65532:65532" {
			t.Errorf("%s: user %q, want 65532:65532", p, c.User)
		}
		if want := []string{"/usr/local/bin/" + step}; !slices.Equal(c.Entrypoint, want) {
			t.Errorf("%s: entrypoint %q, want %q", p, c.Entrypoint, want)
		}
		if len(c.Cmd) != 0 {
			t.Errorf("%s: cmd %q, want none", p, c.Cmd)
		}
		if c.WorkingDir != "/" || !slices.Equal(c.Env, []string{"PATH=/usr/local/bin"}) {
			t.Errorf("%s: workdir %q env %q", p, c.WorkingDir, c.Env)
		}
		wantLabels := map[string]string{LabelSource: m.Source, LabelVersion: m.Version, LabelTitle: step}
		if !reflect.DeepEqual(c.Labels, wantLabels) {
			t.Errorf("%s: labels %v, want %v", p, c.Labels, wantLabels)
		}
		if !cf.Created.Time.Equal(m.Epoch) {
			t.Errorf("%s: created %s, want %s", p, cf.Created.Time, m.Epoch)
		}
		if len(cf.History) != len(man.Layers) {
			t.Errorf("%s: %d history entries for %d layers", p, len(cf.History), len(man.Layers))
		}

		hdrs, data := files(t, img)
		for n, h := range hdrs {
			if !h.ModTime.Equal(m.Epoch) {
				t.Errorf("%s: %s has mtime %s, want %s", p, n, h.ModTime, m.Epoch)
			}
		}
		bin := "usr/local/bin/" + step
		h := hdrs[bin]
		if h == nil {
			t.Fatalf("%s: no /%s in the image", p, bin)
		}
		if h.Typeflag != tar.TypeReg || h.Mode != 0o755 || h.Uid != 0 {
			t.Errorf("%s: /%s type %c mode %o uid %d, want a root-owned 0755 file", p, bin, h.Typeflag, h.Mode, h.Uid)
		}
		if got, want := machine(t, data[bin]), elfMachines[p.Architecture]; got != want {
			t.Errorf("%s: /%s is an ELF for %v, want %v", p, bin, got, want)
		}
		if !bytes.Equal(data["etc/ssl/certs/ca-certificates.crt"], m.CABundle) {
			t.Errorf("%s: /etc/ssl/certs/ca-certificates.crt is not the CA bundle (%d bytes)", p, len(data["etc/ssl/certs/ca-certificates.crt"]))
		}
		if !strings.Contains("\n"+string(data["etc/passwd"]), "\nregmigrate:x:65532:65532:") {
			t.Errorf("%s: /etc/passwd has no regmigrate 65532:\n%s", p, data["etc/passwd"])
		}
		if !strings.Contains("\n"+string(data["etc/group"]), "\nregmigrate:x:65532:") {
			t.Errorf("%s: /etc/group has no regmigrate 65532:\n%s", p, data["etc/group"])
		}
		for _, dir := range []string{"etc", "etc/ssl/certs", "usr/local/bin"} {
			if h := hdrs[dir]; h == nil || h.Typeflag != tar.TypeDir || h.Mode != 0o755 {
				t.Errorf("%s: /%s is not a 0755 directory: %+v", p, dir, h)
			}
		}
		bins[p.Architecture] = data[bin]
	}
	return bins
}

func fakeIndex(t *testing.T, step string, m Meta) v1.ImageIndex {
	t.Helper()
	idx, err := Index(step, []Binary{{amd64, fakeELF(step, amd64)}, {arm64, fakeELF(step, arm64)}}, m)
	if err != nil {
		t.Fatal(err)
	}
	return idx
}

func digest(t *testing.T, idx v1.ImageIndex) v1.Hash {
	t.Helper()
	d, err := idx.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestStepsAreTheStepBinaries(t *testing.T) {
	t.Parallel()
	want := []string{contract.StepExport, contract.StepMirror, contract.StepBackfill, contract.StepVerify, contract.StepSwitchMode}
	if !slices.Equal(Steps(), want) {
		t.Fatalf("Steps() = %v, want %v", Steps(), want)
	}
	for _, s := range Steps() {
		main := filepath.Join("..", "..", filepath.FromSlash(StepPackage(s)), "main.go")
		if _, err := os.Stat(main); err != nil {
			t.Errorf("step %s: %v", s, err)
		}
	}
}

// The assembly, with tiny fake binaries, for the steps whose real binary
// the tests do not build.
func TestIndexWithFakeBinaries(t *testing.T) {
	t.Parallel()
	for _, step := range []string{contract.StepExport, contract.StepBackfill, contract.StepVerify} {
		t.Run(step, func(t *testing.T) {
			t.Parallel()
			m := testMeta(t)
			idx := fakeIndex(t, step, m)
			dir := filepath.Join(t.TempDir(), step)
			if _, err := WriteLayout(dir, "v1.2.3-test", idx); err != nil {
				t.Fatal(err)
			}
			got := openLayout(t, dir, "v1.2.3-test")
			if digest(t, got) != digest(t, idx) {
				t.Fatalf("layout holds %s, built %s", digest(t, got), digest(t, idx))
			}
			bins := checkIndex(t, got, step, m)
			for _, p := range []v1.Platform{amd64, arm64} {
				if !bytes.Equal(bins[p.Architecture], fakeELF(step, p)) {
					t.Errorf("%s: the image's binary is not the one built", p)
				}
			}
		})
	}
}

func TestIndexIsReproducible(t *testing.T) {
	t.Parallel()
	m := testMeta(t)
	step := contract.StepVerify
	first := digest(t, fakeIndex(t, step, m))
	if again := digest(t, fakeIndex(t, step, m)); again != first {
		t.Fatalf("same inputs, different digests: %s, %s", first, again)
	}
	// ... and the inputs matter.
	for what, change := range map[string]func(*Meta){
		"version": func(m *Meta) { m.Version = "v9" },
		"epoch":   func(m *Meta) { m.Epoch = m.Epoch.Add(time.Second) },
		"CA":      func(m *Meta) { m.CABundle = append(slices.Clone(m.CABundle), '\n') },
	} {
		m2 := m
		change(&m2)
		if digest(t, fakeIndex(t, step, m2)) == first {
			t.Errorf("another %s, same digest", what)
		}
	}
}

// Every image shares the base layer, so registries store it once.
func TestBaseLayerShared(t *testing.T) {
	t.Parallel()
	m := testMeta(t)
	bases := map[v1.Hash]bool{}
	for _, step := range []string{contract.StepExport, contract.StepMirror} {
		idx := fakeIndex(t, step, m)
		im, _ := idx.IndexManifest()
		for _, d := range im.Manifests {
			img, err := idx.Image(d.Digest)
			if err != nil {
				t.Fatal(err)
			}
			man, _ := img.Manifest()
			if len(man.Layers) != 2 {
				t.Fatalf("%d layers, want 2 (base, binary)", len(man.Layers))
			}
			bases[man.Layers[0].Digest] = true
		}
	}
	if len(bases) != 1 {
		t.Fatalf("base layers %v, want one shared", bases)
	}
}

func TestIndexRejects(t *testing.T) {
	t.Parallel()
	m := testMeta(t)
	bin := fakeELF("x", amd64)
	for what, c := range map[string]struct {
		bins []Binary
		m    Meta
	}{
		"no binaries":    {nil, m},
		"platform twice": {[]Binary{{amd64, bin}, {amd64, bin}}, m},
		"empty binary":   {[]Binary{{amd64, nil}}, m},
		"no platform":    {[]Binary{{v1.Platform{}, bin}}, m},
		"no CA bundle":   {[]Binary{{amd64, bin}}, Meta{Version: "v1"}},
	} {
		if _, err := Index("export", c.bins, c.m); err == nil {
			t.Errorf("%s: no error", what)
		}
	}
}

func TestReadCABundle(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	_, err := ReadCABundle(filepath.Join(dir, "missing.crt"))
	if err == nil || !strings.Contains(err.Error(), "missing.crt not found") || !strings.Contains(err.Error(), "ca-certificates") {
		t.Fatalf("missing bundle: %v", err)
	}
	junk := filepath.Join(dir, "junk.crt")
	if err := os.WriteFile(junk, []byte("not a certificate"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadCABundle(junk); err == nil {
		t.Fatal("a bundle without certificates was accepted")
	}
	good := filepath.Join(dir, "ca.crt")
	if err := os.WriteFile(good, testCA(t), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadCABundle(good); err != nil {
		t.Fatal(err)
	}
}

func TestParsePlatforms(t *testing.T) {
	t.Parallel()
	got, err := ParsePlatforms(" linux/amd64, linux/arm64 ")
	if err != nil || !reflect.DeepEqual(got, DefaultPlatforms()) {
		t.Fatalf("got %v, %v", got, err)
	}
	for _, bad := range []string{"", "linux", "windows/amd64", "linux/amd64,linux/amd64", "linux/arm", "linux/arm64/v7", "linux/amd64/v3", "linux/mips"} {
		if _, err := ParsePlatforms(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestParseArgs(t *testing.T) {
	t.Parallel()
	env := map[string]string{"VERSION": "v2.0.0", "SOURCE_DATE_EPOCH": "1700000000"}
	getenv := func(k string) string { return env[k] }
	c, err := ParseArgs([]string{"--out", "bin/images", "--steps", "mirror-shard,verify", "--platforms", "linux/arm64"}, getenv, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.Version != "v2.0.0" || c.Tag != "v2.0.0" || !c.Epoch.Equal(time.Unix(1700000000, 0)) ||
		!slices.Equal(c.Steps, []string{"mirror-shard", "verify"}) || !reflect.DeepEqual(c.Platforms, []v1.Platform{arm64}) ||
		c.CABundle != DefaultCABundle || c.Out != "bin/images" {
		t.Fatalf("config %+v", c)
	}
	for _, bad := range [][]string{
		{},                                 // neither --out nor --push
		{"--out", "d", "--steps", "nope"},  // unknown step
		{"--out", "d", "--tag", "a+b"},     // not a tag
		{"--out", "d", "--version", "a b"}, // not a version
		{"--push", "Bad Host/x"},           // not a reference
		{"--out", "d", "extra"},            // arguments
	} {
		if _, err := ParseArgs(bad, getenv, io.Discard); !contract.IsUsage(err) {
			t.Errorf("%q: %v, want a usage error", bad, err)
		}
	}
	if code := Main(context.Background(), nil, getenv, io.Discard, io.Discard); code != 2 {
		t.Errorf("no flags: exit %d, want 2", code)
	}
	if code := Main(context.Background(), []string{"--help"}, getenv, io.Discard, io.Discard); code != 0 {
		t.Errorf("--help: exit %d, want 0", code)
	}
	if _, err := EpochFrom(func(string) string { return "yesterday" }); err == nil {
		t.Error("SOURCE_DATE_EPOCH=yesterday accepted")
	}
	if e, err := EpochFrom(func(string) string { return "" }); err != nil || e.Unix() != 0 {
		t.Errorf("unset SOURCE_DATE_EPOCH: %s, %v", e, err)
	}
}

func TestWriteLayoutReplacesOnlyLayouts(t *testing.T) {
	t.Parallel()
	m := testMeta(t)
	dir := filepath.Join(t.TempDir(), "export")
	for range 2 { // the second write replaces the first
		if _, err := WriteLayout(dir, "t1", fakeIndex(t, "export", m)); err != nil {
			t.Fatal(err)
		}
	}
	openLayout(t, dir, "t1") // exactly one index in index.json
	other := t.TempDir()
	if err := os.WriteFile(filepath.Join(other, "keep.txt"), []byte("mine"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := WriteLayout(other, "t1", fakeIndex(t, "export", m)); err == nil {
		t.Fatal("wrote over a folder that is not an OCI layout")
	}
	if _, err := os.Stat(filepath.Join(other, "keep.txt")); err != nil {
		t.Fatal(err)
	}
}

// The real thing for one step: compile mirror-shard for both platforms,
// write the layout and push to an in-process registry (Run, as the command
// does), check the images, rebuild to check the digest is reproducible, and
// run the binary taken from the image.
func TestMirrorShardImage(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	moduleDir, err := FindModule(ctx, "", ".")
	if err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	ca := filepath.Join(tmp, "ca.crt")
	caPEM := testCA(t)
	if err := os.WriteFile(ca, caPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	s := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(s.Close)
	host := strings.TrimPrefix(s.URL, "http://")

	step := contract.StepMirror
	m := Meta{Version: "v0.0.0-test", Source: DefaultSource, Epoch: time.Unix(1700000000, 0).UTC(), CABundle: caPEM}
	cfg := Config{
		Steps: []string{step}, Platforms: DefaultPlatforms(), Version: m.Version, Epoch: m.Epoch,
		CABundle: ca, ModuleDir: moduleDir,
		Out: filepath.Join(tmp, "first"), Push: host + "/regmigrate", Insecure: true,
	}
	var stdout, progress bytes.Buffer
	start := time.Now()
	res, err := Run(ctx, cfg, &stdout, &progress)
	if err != nil {
		t.Fatalf("%v\n%s", err, progress.String())
	}
	t.Logf("built, written and pushed in %s:\n%s%s", time.Since(start).Round(time.Second), progress.String(), stdout.String())
	if len(res) != 1 || res[0].Step != step || len(res[0].Images) != 2 {
		t.Fatalf("results %+v", res)
	}
	dir := filepath.Join(cfg.Out, step)
	if res[0].Layout != dir {
		t.Errorf("layout %q, want %q", res[0].Layout, dir)
	}
	idx := openLayout(t, dir, m.Version)
	want := digest(t, idx)
	if res[0].Digest != want {
		t.Errorf("reported %s, layout holds %s", res[0].Digest, want)
	}
	bins := checkIndex(t, idx, step, m)

	t.Run("static ELF for each platform", func(t *testing.T) {
		for arch, b := range bins {
			f, err := elf.NewFile(bytes.NewReader(b))
			if err != nil {
				t.Fatalf("%s: %v", arch, err)
			}
			if f.Machine != elfMachines[arch] {
				t.Errorf("%s: ELF for %v", arch, f.Machine)
			}
			for _, p := range f.Progs {
				if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
					t.Errorf("%s: dynamically linked (%v)", arch, p.Type)
				}
			}
			if libs, _ := f.ImportedLibraries(); len(libs) > 0 {
				t.Errorf("%s: needs %v", arch, libs)
			}
			if f.Section(".symtab") != nil {
				t.Errorf("%s: not stripped (-s -w)", arch)
			}
		}
	})

	t.Run("pushed index is the layout's", func(t *testing.T) {
		ref, err := name.NewTag(host+"/regmigrate/"+step+":"+m.Version, name.Insecure)
		if err != nil {
			t.Fatal(err)
		}
		if res[0].Ref != ref.String() {
			t.Errorf("reported ref %q, want %q", res[0].Ref, ref)
		}
		pulled, err := remote.Index(ref, remote.WithContext(ctx))
		if err != nil {
			t.Fatal(err)
		}
		if got := digest(t, pulled); got != want {
			t.Fatalf("pushed %s, layout holds %s", got, want)
		}
		if !strings.Contains(stdout.String(), ref.String()+"@"+want.String()) {
			t.Errorf("stdout does not report %s@%s:\n%s", ref, want, stdout.String())
		}
		pulledBins := checkIndex(t, pulled, step, m)
		for arch := range bins {
			if !bytes.Equal(pulledBins[arch], bins[arch]) {
				t.Errorf("%s: pushed binary differs", arch)
			}
		}
	})

	t.Run("the binary runs and prints its usage", func(t *testing.T) {
		arch := runtime.GOARCH
		if runtime.GOOS != "linux" || bins[arch] == nil {
			t.Fatalf("cannot run a linux/amd64 or linux/arm64 binary on %s/%s", runtime.GOOS, runtime.GOARCH)
		}
		exe := filepath.Join(t.TempDir(), step)
		if err := os.WriteFile(exe, bins[arch], 0o755); err != nil {
			t.Fatal(err)
		}
		cmd := exec.CommandContext(ctx, exe, "--help")
		cmd.Env = []string{} // no HOME, no PATH: what a pod's minimal environment looks like
		cmd.Dir = t.TempDir()
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		err := cmd.Run()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != contract.ExitUsage {
			t.Fatalf("%s --help: %v, want exit %d\n%s", step, err, contract.ExitUsage, out.String())
		}
		for _, s := range []string{"Usage of " + step, "-shard-dir"} {
			if !strings.Contains(out.String(), s) {
				t.Errorf("%s --help does not print %q:\n%s", step, s, out.String())
			}
		}
	})

	t.Run("rebuilding gives the same digest", func(t *testing.T) {
		again := cfg
		again.Out, again.Push = filepath.Join(tmp, "second"), ""
		res2, err := Run(ctx, again, io.Discard, io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		if got := digest(t, openLayout(t, filepath.Join(again.Out, step), m.Version)); got != want || res2[0].Digest != want {
			t.Fatalf("rebuilt %s (reported %s), first build %s", got, res2[0].Digest, want)
		}
	})
}

// The Dockerfiles, for people who build with Docker, describe the same image.
func TestDockerfilesDescribeTheSameImage(t *testing.T) {
	t.Parallel()
	for _, step := range Steps() {
		b, err := os.ReadFile(filepath.Join("..", step, "Dockerfile"))
		if err != nil {
			t.Fatal(err)
		}
		df := string(b)
		for _, want := range []string{
			"./steps/cmd/" + step + " ",
			"-o /out" + BinaryPath(step) + " ",
			"-ldflags \"-s -w -X " + VersionVar + "=${VERSION}\"",
			"CGO_ENABLED=0",
			"cp /etc/ssl/certs/ca-certificates.crt /out" + CABundle,
			"printf '" + strings.ReplaceAll(Passwd, "\n", `\n`) + "' >/out" + PasswdPath,
			"printf '" + strings.ReplaceAll(Group, "\n", `\n`) + "' >/out" + GroupPath,
			"--chown=65532:65532 /out" + HomeDir + " " + HomeDir,
			"FROM scratch",
			"USER " + User + "\n",
			"WORKDIR /\n",
			"ENV PATH=" + DefaultPATH + "\n",
			`ENTRYPOINT ["` + BinaryPath(step) + `"]`,
			LabelSource + `="` + DefaultSource + `"`,
			LabelTitle + `="` + step + `"`,
			LabelVersion + `="${VERSION}"`,
		} {
			if !strings.Contains(df, want) {
				t.Errorf("images/%s/Dockerfile lacks %q", step, want)
			}
		}
	}
}
