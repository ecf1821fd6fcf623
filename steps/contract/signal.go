package contract

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

// Exit codes of an interrupted process, as shells report a death by the
// signal (128 + its number): the work done is kept, the rest is for a
// rerun to do.
const (
	ExitInterrupted = 130 // SIGINT (Ctrl-C)
	ExitTerminated  = 143 // SIGTERM (kill, an Argo pod stopped)
)

// Interrupted is the cause of a context cancelled by a signal.
type Interrupted struct{ Signal os.Signal }

func (i Interrupted) Error() string { return fmt.Sprintf("interrupted by %v", i.Signal) }

// Code is the exit code for the signal.
func (i Interrupted) Code() int {
	if i.Signal == syscall.SIGTERM {
		return ExitTerminated
	}
	return ExitInterrupted
}

// SignalContext is ctx cancelled, with an Interrupted cause, at the first
// SIGINT or SIGTERM: work in flight winds down and what is done is
// written. A second signal ends the process at once (exit 130 or 143).
// stop releases the signals.
func SignalContext(parent context.Context) (ctx context.Context, stop func()) {
	ctx, cancel := context.WithCancelCause(parent)
	ch := make(chan os.Signal, 2)
	signal.Notify(ch, os.Interrupt, syscall.SIGTERM)
	done := make(chan struct{})
	go func() {
		select {
		case s := <-ch:
			cancel(Interrupted{Signal: s})
		case <-done:
			return
		}
		select {
		case s := <-ch:
			fmt.Fprintf(os.Stderr, "%v again: stopping now\n", s)
			os.Exit(Interrupted{Signal: s}.Code())
		case <-done:
		}
	}()
	return ctx, func() {
		signal.Stop(ch)
		close(done)
		cancel(nil)
	}
}

// InterruptedBy returns the signal that cancelled ctx, if one did.
func InterruptedBy(ctx context.Context) (Interrupted, bool) {
	var i Interrupted
	ok := errors.As(context.Cause(ctx), &i)
	return i, ok
}
