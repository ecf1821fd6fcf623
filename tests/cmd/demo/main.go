// Command demo is `make demo`: it starts two throwaway CNCF distribution
// registries on loopback, seeds the source with a small corpus (several
// namespaces, a multi-arch index, a nested index, a signature, a Helm
// chart), runs a real `regmigrate run` between them, shows the report, runs
// it again to show that nothing is copied twice, and cleans up.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/google/go-containerregistry/pkg/v1/remote"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/regmigrate/regmigrate/tests/imageapi"
	"github.com/regmigrate/regmigrate/tests/regtest"
)

func main() {
	bin := flag.String("regmigrate", "bin/regmigrate", "the regmigrate binary")
	keep := flag.Bool("keep", false, "keep the registries' data and the run directory")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, *bin, *keep)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, bin string, keep bool) error {
	work, err := os.MkdirTemp("", "regmigrate-demo-")
	if err != nil {
		return err
	}
	if !keep {
		defer os.RemoveAll(work)
	}
	var cmds []*exec.Cmd
	defer func() {
		for _, c := range cmds {
			_ = c.Process.Signal(syscall.SIGTERM)
			_ = c.Wait()
		}
	}()
	start := func(name string) (*regtest.Registry, error) {
		r, cmd, err := regtest.StartDistributionProcess(ctx, regtest.ProcOptions{Dir: filepath.Join(work, name)})
		if err != nil {
			return nil, fmt.Errorf("starting the %s registry: %w", name, err)
		}
		cmds = append(cmds, cmd)
		return r, nil
	}
	src, err := start("legacy")
	if err != nil {
		return err
	}
	dst, err := start("new")
	if err != nil {
		return err
	}
	fmt.Printf("== legacy registry %s, new registry %s (CNCF distribution, loopback)\n", src.Host, dst.Host)

	corpus := regtest.Corpus{
		Namespaces: []string{"billing", "platform", "shop", "tools"}, ReposPerNS: 3, TagsPerRepo: 2, LayerSize: 256 << 10,
		MultiArch: true, Nested: true, Signature: true, HelmChart: true,
	}
	seeded, err := regtest.Seed(ctx, src.Host, []remote.Option{remote.WithContext(ctx)}, corpus)
	if err != nil {
		return fmt.Errorf("seeding: %w", err)
	}
	fmt.Printf("== seeded %d tags (%.1f MiB of unique blobs) over %d namespaces\n", len(seeded.Tags), float64(seeded.Bytes)/(1<<20), len(corpus.Namespaces))

	// The cluster side: the Image API test double (ACP's image.alauda.io/v1),
	// reached through a kubeconfig as a real cluster would be.
	api := imageapi.New(imageapi.Options{Group: "image.alauda.io"})
	srv, err := imageapi.Serve(api, imageapi.ServeOptions{})
	if err != nil {
		return fmt.Errorf("starting the Image API double: %w", err)
	}
	defer srv.Close()
	kubeconfig := filepath.Join(work, "kubeconfig")
	if err := writeKubeconfig(kubeconfig, srv.URL); err != nil {
		return err
	}
	fmt.Printf("== Image API (test double of image.alauda.io/v1) at %s, kubeconfig %s\n", srv.URL, kubeconfig)

	out := filepath.Join(work, "run")
	if keep {
		out = "regmigrate-demo-run"
	}
	regm := func(args ...string) error {
		fmt.Printf("\n$ regmigrate %s\n", joinArgs(args))
		c := exec.CommandContext(ctx, bin, args...)
		c.Stdout, c.Stderr = os.Stdout, os.Stderr
		return c.Run()
	}
	if err := regm("run", "--from", src.Host, "--to", dst.Host, "--insecure", "--out", out, "--dry-run"); err != nil {
		return fmt.Errorf("dry run: %w", err)
	}
	if err := regm("run", "--from", src.Host, "--to", dst.Host, "--insecure", "--out", out, "--kubeconfig", kubeconfig); err != nil {
		return fmt.Errorf("migration: %w", err)
	}
	md, err := os.ReadFile(filepath.Join(out, "report.md"))
	if err != nil {
		return err
	}
	fmt.Printf("\n== %s/report.md\n%s", out, md)
	fmt.Println("\n== ImageStreams in the cluster after the backfill:")
	for _, ns := range corpus.Namespaces {
		for _, is := range api.ImageStreams(ns) {
			for _, tag := range is.Status.Tags {
				fmt.Printf("   %s/%s:%s -> %s\n", ns, is.Name, tag.Tag, tag.Items[0].DockerImageReference)
			}
		}
	}
	if err := regm("run", "--from", src.Host, "--to", dst.Host, "--insecure", "--out", out+"-again", "--kubeconfig", kubeconfig); err != nil {
		return fmt.Errorf("second run: %w", err)
	}
	fmt.Println("\n== the second run copied nothing and applied no metadata: every image and tag was already in place")
	if keep {
		fmt.Printf("== kept %s and %s\n", work, out)
	}
	return nil
}

func joinArgs(a []string) string {
	s := ""
	for i, x := range a {
		if i > 0 {
			s += " "
		}
		s += x
	}
	return s
}

func writeKubeconfig(path, server string) error {
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["demo"] = &clientcmdapi.Cluster{Server: server}
	cfg.AuthInfos["demo"] = &clientcmdapi.AuthInfo{}
	cfg.Contexts["demo"] = &clientcmdapi.Context{Cluster: "demo", AuthInfo: "demo"}
	cfg.CurrentContext = "demo"
	return clientcmd.WriteToFile(*cfg, path)
}
