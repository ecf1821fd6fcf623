package stepcli

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"syscall"
	"testing"

	"github.com/regmigrate/regmigrate/steps/contract"
)

// A step stopped by SIGTERM (the Argo controller stopping the pod) or
// SIGINT exits 143 or 130, whatever its own code would have been; a step
// that finished before the signal keeps its 0.
func TestAnInterruptedStepExitsWithTheSignalsCode(t *testing.T) {
	for _, tc := range []struct {
		sig  syscall.Signal
		code int
		err  error
		want int
	}{
		{syscall.SIGTERM, contract.ExitRetryable, nil, contract.ExitTerminated},
		{syscall.SIGINT, 0, context.Canceled, contract.ExitInterrupted},
		{syscall.SIGTERM, contract.ExitOK, nil, contract.ExitOK},
	} {
		ctx, cancel := context.WithCancelCause(context.Background())
		cancel(contract.Interrupted{Signal: tc.sig})
		var stderr bytes.Buffer
		got := Main(ctx, Env{Stderr: &stderr, Stdout: &bytes.Buffer{}, Getenv: func(string) string { return "" }}, "mirror-shard",
			func(context.Context, Env, []string) (int, error) { return tc.code, tc.err }, nil)
		if got != tc.want {
			t.Errorf("%v, step returned %d, %v: exit %d, want %d", tc.sig, tc.code, tc.err, got, tc.want)
		}
		if tc.want != contract.ExitOK && !strings.Contains(stderr.String(), "interrupted by") {
			t.Errorf("%v: stderr %q does not say it was interrupted", tc.sig, stderr.String())
		}
	}
	if got := Main(context.Background(), Env{Stderr: &bytes.Buffer{}}, "x", func(context.Context, Env, []string) (int, error) { return 0, errors.New("boom") }, nil); got != contract.ExitFailed {
		t.Errorf("a plain error: exit %d, want 1", got)
	}
}
