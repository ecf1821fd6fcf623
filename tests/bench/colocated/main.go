// Command colocated sends the HEAD requests of a W2 no-op (one per tag to
// each of two registries) and nothing else, in one of two orders:
//
//	interleaved  each worker asks registry A then registry B for the same
//	             tag, so both registries are busy all the time (what
//	             regmigrate does: the right order when the registries are
//	             on different machines, since neither waits for the other)
//	phased       every tag of A first, then every tag of B, so one
//	             registry at a time is busy
//
// Run by colocated.sh, which reads the registries' CPU time and context
// switches around it. It shows how much of a distribution registry's CPU
// per request on the shared bench comes from two registries and the client
// sharing two cores, independent of what is asked.
//
// A module of its own so that the project's module does not build it.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"
)

const accept = "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, " +
	"application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.docker.distribution.manifest.v2+json"

func main() {
	list := flag.String("list", "", "file of repository:tag lines")
	a := flag.String("a", "127.0.0.1:5101", "first registry host:port (plain HTTP)")
	b := flag.String("b", "127.0.0.1:5102", "second registry host:port (plain HTTP)")
	mode := flag.String("mode", "interleaved", "interleaved|phased")
	jobs := flag.Int("c", 6, "concurrent workers")
	flag.Parse()
	refs, err := readList(*list)
	if err != nil {
		fmt.Fprintln(os.Stderr, "colocated:", err)
		os.Exit(2)
	}
	cl := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 2 * *jobs}}
	var failures sync.Map
	head := func(host, ref string) {
		i := strings.LastIndex(ref, ":")
		req, err := http.NewRequest(http.MethodHead, "http://"+host+"/v2/"+ref[:i]+"/manifests/"+ref[i+1:], nil)
		if err != nil {
			failures.Store(ref, err)
			return
		}
		req.Header.Set("Accept", accept)
		resp, err := cl.Do(req)
		if err != nil {
			failures.Store(ref, err)
			return
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			failures.Store(ref, fmt.Errorf("%s: %s", host, resp.Status))
		}
	}
	each := func(f func(ref string)) {
		ch := make(chan string)
		var wg sync.WaitGroup
		for w := 0; w < *jobs; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for r := range ch {
					f(r)
				}
			}()
		}
		for _, r := range refs {
			ch <- r
		}
		close(ch)
		wg.Wait()
	}
	t0 := time.Now()
	switch *mode {
	case "interleaved":
		each(func(r string) { head(*a, r); head(*b, r) })
	case "phased":
		each(func(r string) { head(*a, r) })
		each(func(r string) { head(*b, r) })
	default:
		fmt.Fprintf(os.Stderr, "colocated: -mode must be interleaved or phased, not %q\n", *mode)
		os.Exit(2)
	}
	n := 0
	failures.Range(func(k, v any) bool {
		if n < 3 {
			fmt.Fprintln(os.Stderr, "colocated:", k, v)
		}
		n++
		return true
	})
	fmt.Printf("%s requests=%d wall=%.2f failed=%d\n", *mode, 2*len(refs), time.Since(t0).Seconds(), n)
	if n > 0 {
		os.Exit(1)
	}
}

func readList(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var refs []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if l := strings.TrimSpace(sc.Text()); l != "" && strings.Contains(l, ":") {
			refs = append(refs, l)
		}
	}
	if len(refs) == 0 {
		return nil, fmt.Errorf("%s lists no repository:tag", path)
	}
	return refs, sc.Err()
}
