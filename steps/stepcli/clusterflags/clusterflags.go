// Package clusterflags is the flag group of the steps that talk to a
// cluster's Image API (backfill-shard, and verify for its ImageStreamTag
// check): --kubeconfig, --context, --image-api, --qps, --burst. It is apart
// from package stepcli so that export and mirror-shard link no Kubernetes.
package clusterflags

import (
	"flag"

	"github.com/regmigrate/regmigrate/steps/contract"
	"github.com/regmigrate/regmigrate/steps/imageapi"
)

// Flags name the cluster and how to talk to it.
type Flags struct {
	Kubeconfig string // empty: in-cluster (the workflow's ServiceAccount)
	Context    string
	ImageAPI   string // GROUP/VERSION; empty: discovered
	QPS        float64
	Burst      int
}

// names are the flags Bind registers.
var names = []string{"kubeconfig", "context", "image-api", "qps", "burst"}

// Bind registers the cluster flags.
func (f *Flags) Bind(fs *flag.FlagSet) {
	fs.StringVar(&f.Kubeconfig, "kubeconfig", "", "kubeconfig of the cluster (default: in-cluster ServiceAccount)")
	fs.StringVar(&f.Context, "context", "", "kubeconfig context")
	fs.StringVar(&f.ImageAPI, "image-api", "", "GROUP/VERSION (default: discovered)")
	fs.Float64Var(&f.QPS, "qps", imageapi.DefaultQPS, "client QPS towards the apiserver")
	fs.IntVar(&f.Burst, "burst", imageapi.DefaultBurst, "client burst")
}

// Given lists the cluster flags set on the command line of a parsed fs.
func Given(fs *flag.FlagSet) []string {
	var set []string
	fs.Visit(func(fl *flag.Flag) {
		for _, n := range names {
			if fl.Name == n {
				set = append(set, "--"+n)
			}
		}
	})
	return set
}

// Client connects to the cluster's Image API. A kubeconfig that cannot be
// loaded is a usage error.
func (f *Flags) Client() (*imageapi.Client, error) {
	cfg, err := imageapi.Config(f.Kubeconfig, f.Context, float32(f.QPS), f.Burst)
	if err != nil {
		return nil, contract.Usage(err)
	}
	return imageapi.New(cfg, f.ImageAPI)
}
