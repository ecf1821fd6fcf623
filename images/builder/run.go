package builder

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/regmigrate/regmigrate/steps/contract"
)

// Config is one build-images run.
type Config struct {
	Steps     []string      // default Steps()
	Platforms []v1.Platform // default DefaultPlatforms()
	Version   string        // in the binaries (-X) and the labels
	Tag       string        // default Version
	Out       string        // write DIR/<step>/ as OCI layouts
	Push      string        // push REGISTRY[/PREFIX]/<step>:<tag>
	Insecure  bool          // plain HTTP / unverified TLS for Push
	CABundle  string        // default DefaultCABundle
	Source    string        // default DefaultSource
	Epoch     time.Time     // every timestamp in the images
	ModuleDir string        // default: the module the working folder is in
	Go        string        // default "go"
}

// ImageResult describes one platform's image.
type ImageResult struct {
	Platform v1.Platform
	Digest   v1.Hash
	Size     int64 // compressed: manifest, config and layers
}

// StepResult describes one step's index.
type StepResult struct {
	Step   string
	Digest v1.Hash
	Images []ImageResult
	Layout string // the OCI layout written, if any
	Ref    string // the reference pushed, if any
}

// ParseArgs reads build-images' flags; getenv supplies VERSION and
// SOURCE_DATE_EPOCH.
func ParseArgs(args []string, getenv func(string) string, stderr io.Writer) (Config, error) {
	fs := flag.NewFlagSet("build-images", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var c Config
	var steps, platforms string
	def := func(k, d string) string {
		if v := getenv(k); v != "" {
			return v
		}
		return d
	}
	fs.StringVar(&c.Out, "out", "", "write an OCI layout per step to `DIR`/<step>/")
	fs.StringVar(&c.Push, "push", "", "push to `REGISTRY/PREFIX`/<step>:<tag>")
	fs.BoolVar(&c.Insecure, "insecure", false, "the --push registry is plain HTTP or has an unverifiable certificate")
	fs.StringVar(&c.Version, "version", def("VERSION", "dev"), "version in the binaries and the labels; $VERSION when set")
	fs.StringVar(&c.Tag, "tag", "", "tag to push and to name in the layouts (default the version)")
	fs.StringVar(&platforms, "platforms", "linux/amd64,linux/arm64", "comma-separated platforms")
	fs.StringVar(&steps, "steps", "", "comma-separated steps (default all: "+strings.Join(Steps(), ",")+")")
	fs.StringVar(&c.CABundle, "ca-bundle", DefaultCABundle, "CA bundle to put in the images")
	fs.StringVar(&c.Source, "source", DefaultSource, "org.opencontainers.image.source label")
	fs.StringVar(&c.ModuleDir, "module", "", "regmigrate's checkout (default: the module of the working folder)")
	fs.StringVar(&c.Go, "go", def("GO", "go"), "the go command")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: build-images (--out DIR | --push REGISTRY/PREFIX) [flags]\n\nBuilds regmigrate's step images (an OCI index per step, one image per platform) without Docker.\nTimestamps come from $SOURCE_DATE_EPOCH (default 0).\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return Config{}, err
	}
	if fs.NArg() > 0 {
		return Config{}, contract.Usage(fmt.Errorf("unexpected arguments %q", fs.Args()))
	}
	var err error
	if c.Steps, err = ParseSteps(steps); err != nil {
		return Config{}, contract.Usage(err)
	}
	if c.Platforms, err = ParsePlatforms(platforms); err != nil {
		return Config{}, contract.Usage(err)
	}
	if c.Epoch, err = EpochFrom(getenv); err != nil {
		return Config{}, contract.Usage(err)
	}
	if err := c.check(); err != nil {
		return Config{}, contract.Usage(err)
	}
	return c, nil
}

// check validates and fills defaults.
func (c *Config) check() error {
	if c.Out == "" && c.Push == "" {
		return errors.New("nothing to do: give --out DIR and/or --push REGISTRY/PREFIX")
	}
	if err := ValidVersion(c.Version); err != nil {
		return err
	}
	if c.Tag == "" {
		c.Tag = c.Version
	}
	if len(c.Steps) == 0 {
		c.Steps = Steps()
	}
	if len(c.Platforms) == 0 {
		c.Platforms = DefaultPlatforms()
	}
	if c.CABundle == "" {
		c.CABundle = DefaultCABundle
	}
	if c.Source == "" {
		c.Source = DefaultSource
	}
	if c.Go == "" {
		c.Go = "go"
	}
	if _, err := Ref("example.invalid", Steps()[0], c.Tag, false); err != nil {
		return fmt.Errorf("tag %q is not a valid image tag ([A-Za-z0-9_.-], at most 128): give --tag", c.Tag)
	}
	if c.Push != "" {
		for _, s := range c.Steps {
			if _, err := Ref(c.Push, s, c.Tag, c.Insecure); err != nil {
				return err
			}
		}
	}
	return nil
}

// Run builds every step's index and writes and/or pushes it. Progress goes
// to log; one line per result (LAYOUT or REF, then @DIGEST) to out.
func Run(ctx context.Context, c Config, out, log io.Writer) ([]StepResult, error) {
	if err := c.check(); err != nil {
		return nil, contract.Usage(err)
	}
	ca, err := ReadCABundle(c.CABundle)
	if err != nil {
		return nil, err
	}
	if c.ModuleDir == "" {
		if c.ModuleDir, err = FindModule(ctx, c.Go, "."); err != nil {
			return nil, err
		}
	}
	meta := Meta{Version: c.Version, Source: c.Source, Epoch: c.Epoch, CABundle: ca}
	comp := Compiler{ModuleDir: c.ModuleDir, Go: c.Go, Version: c.Version}
	var results []StepResult
	for _, step := range c.Steps {
		r, err := buildStep(ctx, c, comp, meta, step, out, log)
		if err != nil {
			return results, err
		}
		results = append(results, r)
	}
	return results, nil
}

func buildStep(ctx context.Context, c Config, comp Compiler, meta Meta, step string, out, log io.Writer) (StepResult, error) {
	bins := make([]Binary, 0, len(c.Platforms))
	for _, p := range c.Platforms {
		start := time.Now()
		b, err := comp.Compile(ctx, step, p)
		if err != nil {
			return StepResult{}, err
		}
		fmt.Fprintf(log, "%s %s: binary %s in %s\n", step, p, MB(int64(len(b.Data))), time.Since(start).Round(100*time.Millisecond))
		bins = append(bins, b)
	}
	start := time.Now()
	idx, err := Index(step, bins, meta)
	if err != nil {
		return StepResult{}, err
	}
	r, err := Describe(step, idx)
	if err != nil {
		return StepResult{}, err
	}
	for _, im := range r.Images {
		fmt.Fprintf(log, "%s %s: image %s (%s compressed)\n", step, im.Platform, im.Digest, MB(im.Size))
	}
	if c.Out != "" {
		dir := filepath.Join(c.Out, step)
		if _, err := WriteLayout(dir, c.Tag, idx); err != nil {
			return r, err
		}
		r.Layout = dir
		fmt.Fprintf(out, "%s@%s\n", dir, r.Digest)
	}
	if c.Push != "" {
		ref, err := Ref(c.Push, step, c.Tag, c.Insecure)
		if err != nil {
			return r, err
		}
		if err := Push(ctx, ref, idx, c.Insecure); err != nil {
			return r, err
		}
		r.Ref = ref.String()
		fmt.Fprintf(out, "%s@%s\n", ref, r.Digest)
	}
	fmt.Fprintf(log, "%s: index %s, assembled and written in %s\n", step, r.Digest, time.Since(start).Round(100*time.Millisecond))
	return r, nil
}

// Describe lists an index's digest and its images' platforms, digests and
// compressed sizes.
func Describe(step string, idx v1.ImageIndex) (StepResult, error) {
	d, err := idx.Digest()
	if err != nil {
		return StepResult{}, err
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return StepResult{}, err
	}
	r := StepResult{Step: step, Digest: d}
	for _, desc := range im.Manifests {
		img, err := idx.Image(desc.Digest)
		if err != nil {
			return r, err
		}
		size, err := imageSize(img)
		if err != nil {
			return r, err
		}
		ir := ImageResult{Digest: desc.Digest, Size: size}
		if desc.Platform != nil {
			ir.Platform = *desc.Platform
		}
		r.Images = append(r.Images, ir)
	}
	return r, nil
}

func imageSize(img v1.Image) (int64, error) {
	m, err := img.Manifest()
	if err != nil {
		return 0, err
	}
	n, err := img.Size()
	if err != nil {
		return 0, err
	}
	n += m.Config.Size
	for _, l := range m.Layers {
		n += l.Size
	}
	return n, nil
}

// MB formats a size in megabytes.
func MB(n int64) string { return fmt.Sprintf("%.1f MB", float64(n)/1e6) }

// Main is build-images' command line; it returns the exit code.
func Main(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	c, err := ParseArgs(args, getenv, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "build-images: %v\n", err)
		return 2
	}
	start := time.Now()
	if _, err := Run(ctx, c, stdout, stderr); err != nil {
		fmt.Fprintf(stderr, "build-images: %v\n", err)
		return contract.ExitCode(err)
	}
	fmt.Fprintf(stderr, "build-images: done in %s\n", time.Since(start).Round(time.Second))
	return 0
}
