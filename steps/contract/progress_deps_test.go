package contract_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestProgressBarsStaySmall: the step binaries link the progress bars
// (github.com/vbauerster/mpb, about 250 KB), and mpb links only what it
// needs to draw them (terminal widths, an average, ANSI stripping). A new
// dependency of mpb fails here before it reaches every step image.
func TestProgressBarsStaySmall(t *testing.T) {
	t.Parallel()
	out, err := exec.Command("go", "list", "-deps", module+"steps/progress").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	allowed := []string{
		module + "steps/progress",
		"github.com/vbauerster/mpb/v8", "github.com/vbauerster/cupwriter",
		"github.com/VividCortex/ewma", "github.com/acarl005/stripansi",
		"github.com/mattn/go-runewidth", "github.com/clipperhouse/uax29/",
		"golang.org/x/sys/",
	}
	for _, dep := range strings.Fields(string(out)) {
		if first, _, _ := strings.Cut(dep, "/"); !strings.Contains(first, ".") {
			continue // the standard library
		}
		ok := false
		for _, a := range allowed {
			ok = ok || strings.HasPrefix(dep, a)
		}
		if !ok {
			t.Errorf("steps/progress links %s: keep the progress bars' dependencies small (allowed: %v)", dep, allowed)
		}
	}
}
