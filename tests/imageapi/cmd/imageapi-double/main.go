// Command imageapi-double serves the in-memory Image API test double
// (tests/imageapi) and writes a kubeconfig pointing at it.
//
//	go run ./tests/imageapi/cmd/imageapi-double --listen 127.0.0.1:0 \
//	    --group image.alauda.io --kubeconfig-out /tmp/double.kubeconfig [--registry-host HOST] [--tls]
//	kubectl --kubeconfig /tmp/double.kubeconfig get imagestreamtags -n team-a -o json
//
// It runs until SIGINT or SIGTERM. Without --tls it serves plain HTTP and
// the kubeconfig says insecure-skip-tls-verify; with --tls the kubeconfig
// carries the CA of a fresh serving certificate.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/regmigrate/regmigrate/tests/imageapi"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, nil); err != nil {
		fmt.Fprintln(os.Stderr, "imageapi-double:", err)
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		os.Exit(2)
	}
}

// run serves until ctx is done. ready, if not nil, is called once the
// double listens and the kubeconfig is written.
func run(ctx context.Context, args []string, stdout io.Writer, ready func(*imageapi.Server, *imageapi.Double)) error {
	fs := flag.NewFlagSet("imageapi-double", flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:0", "address to listen on")
	group := fs.String("group", imageapi.OpenShiftGroup, "API group: image.openshift.io or image.alauda.io")
	kubeconfig := fs.String("kubeconfig-out", "", "write a kubeconfig for the double to this file (current context set)")
	namespace := fs.String("namespace", "default", "namespace of the kubeconfig context")
	registryHost := fs.String("registry-host", "", "internal registry host: status.dockerImageRepository = HOST/<ns>/<name>")
	publicHost := fs.String("public-registry-host", "", "fills status.publicDockerImageRepository")
	useTLS := fs.Bool("tls", false, "serve HTTPS with a fresh self-signed CA")
	fs.SetOutput(stdout)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}

	d := imageapi.New(imageapi.Options{Group: *group, RegistryHost: *registryHost, PublicRegistryHost: *publicHost})
	srv, err := imageapi.Serve(d, imageapi.ServeOptions{Addr: *listen, TLS: *useTLS})
	if err != nil {
		return err
	}
	defer srv.Close()
	fmt.Fprintf(stdout, "imageapi-double serving %s at %s\n", d.GroupVersion(), srv.URL)
	if *kubeconfig != "" {
		if err := writeKubeconfig(*kubeconfig, srv, *namespace); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "kubeconfig: %s\n", *kubeconfig)
	}
	if ready != nil {
		ready(srv, d)
	}
	<-ctx.Done()
	return nil
}

func writeKubeconfig(path string, srv *imageapi.Server, namespace string) error {
	const name = "imageapi-double"
	cluster := &clientcmdapi.Cluster{Server: srv.URL}
	if srv.CAPEM != nil {
		cluster.CertificateAuthorityData = srv.CAPEM
	} else {
		cluster.InsecureSkipTLSVerify = true
	}
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters[name] = cluster
	// A token the double ignores: with no credentials at all, kubectl
	// prompts for a user name on https.
	cfg.AuthInfos[name] = &clientcmdapi.AuthInfo{Token: "imageapi-double"}
	cfg.Contexts[name] = &clientcmdapi.Context{Cluster: name, AuthInfo: name, Namespace: namespace}
	cfg.CurrentContext = name
	return clientcmd.WriteToFile(*cfg, path)
}
