package e2e

import (
	"context"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-containerregistry/pkg/crane"

	"github.com/regmigrate/regmigrate/generator/runner"
	"github.com/regmigrate/regmigrate/steps/export"
	"github.com/regmigrate/regmigrate/steps/imageref"
	"github.com/regmigrate/regmigrate/steps/inputs"
	"github.com/regmigrate/regmigrate/steps/registry"
	"github.com/regmigrate/regmigrate/tests/regtest"
)

// The copy benchmarks run regmigrate's engine and a peer (crane.Copy from
// go-containerregistry, 4 repositories at a time) on the
// same corpus between real distribution registries. Compare the two in the
// same run (benchstat); absolute times on shared machines are noise.
//
//	go test -run '^$' -bench Copy -count 6 ./tests/e2e | tee new.txt

var benchCorpus = regtest.Corpus{Namespaces: []string{"n1", "n2", "n3"}, ReposPerNS: 4, TagsPerRepo: 3, LayerSize: 256 << 10, MultiArch: true}

func benchSource(b *testing.B) (*regtest.Registry, []string) {
	b.Helper()
	src := regtest.StartDistribution(b, regtest.Options{})
	s, err := regtest.Seed(context.Background(), src.Host, nil, benchCorpus)
	if err != nil {
		b.Fatal(err)
	}
	var refs []string
	for r := range s.Tags {
		refs = append(refs, r)
	}
	sort.Strings(refs)
	return src, refs
}

func regmigrateCopy(b *testing.B, src, dst string, refs []string) {
	b.Helper()
	var entries []inputs.Entry
	for _, r := range refs {
		ref, _ := imageref.Parse(r)
		entries = append(entries, inputs.Entry{Source: ref})
	}
	rep, err := runner.Run(context.Background(), runner.Options{
		Client: registry.New(registry.Options{Insecure: anyHost}),
		Export: export.Options{From: imageref.Location{Registry: src}, To: imageref.Location{Registry: dst}, Entries: entries},
		Out:    filepath.Join(b.TempDir(), "run"),
	})
	if err != nil || rep.Failed != 0 {
		b.Fatalf("regmigrate: %v (%d failed)", err, rep.Failed)
	}
}

// craneCopy copies 4 repositories at a time, the tags of one repository one
// after the other: crane uploads every layer itself, and the distribution
// registry can answer 500 when one blob is written into one repository twice
// at once.
func craneCopy(b *testing.B, src, dst string, refs []string) {
	b.Helper()
	byRepo := map[string][]string{}
	for _, r := range refs {
		repo, _, _ := strings.Cut(r, ":")
		byRepo[repo] = append(byRepo[repo], r)
	}
	sem := make(chan struct{}, 4)
	var wg sync.WaitGroup
	errs := make(chan error, len(byRepo))
	for _, tags := range byRepo {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			for _, r := range tags {
				if err := crane.Copy(src+"/"+r, dst+"/"+r, crane.Insecure); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
}

func BenchmarkCopyCold(b *testing.B) {
	src, refs := benchSource(b)
	for _, peer := range []struct {
		name string
		copy func(*testing.B, string, string, []string)
	}{{"regmigrate", regmigrateCopy}, {"crane-4repos", craneCopy}} {
		b.Run(peer.name, func(b *testing.B) {
			for b.Loop() {
				b.StopTimer()
				dst := regtest.StartDistribution(b, regtest.Options{})
				b.StartTimer()
				peer.copy(b, src.Host, dst.Host, refs)
			}
		})
	}
}

func BenchmarkCopyNoop(b *testing.B) {
	src, refs := benchSource(b)
	dst := regtest.StartDistribution(b, regtest.Options{})
	regmigrateCopy(b, src.Host, dst.Host, refs)
	for _, peer := range []struct {
		name string
		copy func(*testing.B, string, string, []string)
	}{{"regmigrate", regmigrateCopy}, {"crane-4repos", craneCopy}} {
		b.Run(peer.name, func(b *testing.B) {
			for b.Loop() {
				peer.copy(b, src.Host, dst.Host, refs)
			}
		})
	}
}
