package e2e

import (
	"bytes"
	"context"
	"fmt"
	"html"
	"image"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/regmigrate/regmigrate/steps/contract"
	"github.com/regmigrate/regmigrate/tests/faultproxy"
	"github.com/regmigrate/regmigrate/tests/regtest"
)

// chromiumBinary is Debian's chromium (make deps installs it), or the
// browser $CHROMIUM names. The report is checked in a real browser: a
// missing one fails the test, it is never skipped.
func chromiumBinary(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("CHROMIUM"); p != "" {
		bin, err := exec.LookPath(p)
		if err != nil {
			t.Fatalf("$CHROMIUM=%s: %v", p, err)
		}
		return bin
	}
	for _, name := range []string{"chromium", "chromium-browser"} {
		if bin, err := exec.LookPath(name); err == nil {
			return bin
		}
	}
	t.Fatal("chromium is not installed: make deps installs Debian's chromium (apt-get install chromium), or set $CHROMIUM to a Chromium or Chrome binary")
	return ""
}

// headless runs the browser without a window on a page and returns stdout.
func headless(t *testing.T, bin string, args ...string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	home := t.TempDir()
	cmd := exec.CommandContext(ctx, bin, append([]string{
		"--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
		"--hide-scrollbars", "--user-data-dir=" + filepath.Join(home, "profile"),
	}, args...)...)
	cmd.Env = append(os.Environ(), "HOME="+home)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("chromium %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return stdout.Bytes()
}

// TestReportHTMLInChromium migrates three namespaces, one of which cannot
// be read, twice into the same run directory, and opens the report.html
// regmigrate report writes in headless Chromium: the rendered page says
// what failed, why and what to do, the totals, a row per namespace, the
// migration's identity and both runs; a screenshot shows the page (and
// its red failure bars); it prints to PDF.
func TestReportHTMLInChromium(t *testing.T) {
	t.Parallel()
	bin := chromiumBinary(t)
	src := regtest.StartDistribution(t, regtest.Options{})
	dst := regtest.StartDistribution(t, regtest.Options{})
	seed(t, src, regtest.Corpus{Namespaces: []string{"alpha", "beta", "gamma"}, ReposPerNS: 1, TagsPerRepo: 2, LayerSize: 4 << 10})
	px := faultproxy.New(t, "http://"+src.Host, faultproxy.Fault{PathRegex: regexp.MustCompile(`^/v2/beta/app0/blobs/`), Kind: faultproxy.Status500, Times: -1})
	dir := t.TempDir()
	spec := writeFile(t, filepath.Join(dir, "migration.yaml"), fmt.Sprintf(`apiVersion: regmigrate.io/v1alpha1
kind: Migration
metadata:
  name: acp-to-registry-v2
source:
  registry: %s
  insecure: true
target:
  registry: %s
  insecure: true
`, px.Host, dst.Host))
	out := filepath.Join(dir, "run")
	for range 2 { // the first run copies alpha and gamma; the rerun finds them there; beta fails both times
		if code, _, _ := runCLI(t, nil, "run", "-f", spec, "--out", out, "--retries", "1", "--progress", "none"); code != contract.ExitRetryable {
			t.Fatalf("run: exit %d, want %d (beta's blobs answer 500)", code, contract.ExitRetryable)
		}
	}
	if err := os.Remove(filepath.Join(out, contract.ReportHTML)); err != nil {
		t.Fatal(err)
	}
	code, stdout, _ := runCLI(t, nil, "report", out)
	if code != contract.ExitOK || !strings.Contains(stdout, filepath.Join(out, contract.ReportHTML)) {
		t.Fatalf("regmigrate report: exit %d\n%s", code, stdout)
	}
	page := "file://" + filepath.Join(out, contract.ReportHTML)

	dom := string(headless(t, bin, "--dump-dom", page))
	text := domText(dom)
	for _, want := range []string{
		"Migration report: acp-to-registry-v2",
		"Not complete: 2 of 6 images failed, all for reasons a rerun may fix.",
		"Name acp-to-registry-v2", "Strategy copy", "regmigrate run --file=" + spec,
		"6 images (tags) 0 copied 4 already on the target 2 failed",
		"Failures (2)",
		px.Host + "/beta/app0:v0 → " + dst.Host + "/beta/app0:v0",
		"500 Internal Server Error: UNKNOWN: faultproxy: injected Status500 (transient)",
		"A transient failure (throttling, a 5xx, a reset or a stall) outlasted the retries",
		"No cutover recorded in this run directory",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("the rendered page lacks %q:\n%s", want, text)
		}
	}
	rows := map[string]string{}
	for _, m := range regexp.MustCompile(`(?s)<tr class="namespace">(.*?)</tr>`).FindAllStringSubmatch(dom, -1) {
		cells := domText(m[1])
		name, _, _ := strings.Cut(cells, " ")
		rows[name] = cells
	}
	// namespace, images, copied, skipped, failed, moved
	for ns, want := range map[string]string{"alpha": "alpha 2 0 2 0 0 B", "beta": "beta 2 0 0 2 0 B", "gamma": "gamma 2 0 2 0 0 B"} {
		if rows[ns] != want {
			t.Errorf("namespace row %q, want %q", rows[ns], want)
		}
	}
	if len(rows) != 3 {
		t.Errorf("namespace rows %q, want alpha, beta and gamma", rows)
	}
	runs := regexp.MustCompile(`(?s)<tr class="run">(.*?)</tr>`).FindAllStringSubmatch(dom, -1)
	if len(runs) != 2 || !strings.Contains(domText(runs[0][1]), "transient failures 6 4 0 2") || !strings.Contains(domText(runs[1][1]), "transient failures 6 0 4 2") {
		t.Errorf("runs of the migration: %q, want the first run (4 copied, 2 failed) and the rerun (4 already there, 2 failed)", runs)
	}

	// What a person sees: a full page with the red failure bars.
	shot := filepath.Join(t.TempDir(), "report.png")
	headless(t, bin, "--window-size=1280,2000", "--screenshot="+shot, page)
	f, err := os.Open(shot)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("the screenshot is not a PNG: %v", err)
	}
	if b := img.Bounds(); b.Dx() != 1280 || b.Dy() != 2000 {
		t.Errorf("screenshot %dx%d, want 1280x2000", b.Dx(), b.Dy())
	}
	if st, _ := f.Stat(); st.Size() < 20<<10 {
		t.Errorf("screenshot of %d bytes: the page looks empty", st.Size())
	}
	inked, red := ink(img)
	if inked < 0.02 || red < 200 {
		t.Errorf("screenshot: %.1f%% of the pixels inked, %d failure-red ones; want a drawn page with the failure bars", 100*inked, red)
	}

	// And on paper.
	pdf := filepath.Join(t.TempDir(), "report.pdf")
	headless(t, bin, "--no-pdf-header-footer", "--print-to-pdf="+pdf, page)
	if b, err := os.ReadFile(pdf); err != nil || !bytes.HasPrefix(b, []byte("%PDF-")) || len(b) < 10<<10 {
		t.Errorf("printing to PDF: %d bytes, %v", len(b), err)
	}
}

// domText is the text of an HTML fragment: tags dropped, entities decoded,
// white space folded.
func domText(s string) string {
	s = regexp.MustCompile(`(?s)<(style|head)[^>]*>.*?</(style|head)>`).ReplaceAllString(s, " ")
	s = regexp.MustCompile(`<[^>]+>`).ReplaceAllString(s, " ")
	return strings.Join(strings.Fields(html.UnescapeString(s)), " ")
}

// ink is the share of pixels that are not white, and the number of pixels
// in the failure red (#cf222e).
func ink(img image.Image) (float64, int) {
	b := img.Bounds()
	var inked, red int
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r, g, bl, _ := img.At(x, y).RGBA()
			r, g, bl = r>>8, g>>8, bl>>8
			if r < 240 || g < 240 || bl < 240 {
				inked++
			}
			if r > 190 && r < 220 && g > 20 && g < 50 && bl > 30 && bl < 60 {
				red++
			}
		}
	}
	return float64(inked) / float64(b.Dx()*b.Dy()), red
}
