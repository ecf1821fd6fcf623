package contract

import (
	"context"
	"errors"
	"flag"
	"fmt"
)

// ExitError is an error with the exit code it ends the process with. It
// is the one error type the step binaries and the regmigrate CLI use to
// say which code an error means.
type ExitError struct {
	Code int
	Err  error
}

func (e *ExitError) Error() string {
	if e.Err == nil {
		return fmt.Sprintf("exit status %d", e.Code)
	}
	return e.Err.Error()
}

func (e *ExitError) Unwrap() error { return e.Err }

// Usage marks a flag or input error: exit ExitUsage, fix the command or
// the file.
func Usage(err error) error { return &ExitError{Code: ExitUsage, Err: err} }

// IsUsage reports whether err is a usage error.
func IsUsage(err error) bool { return ExitCode(err) == ExitUsage }

// ExitCode is the exit code err ends a process with: its ExitError's
// code, ExitUsage for a help request, ExitRetryable for a cancelled run,
// else ExitFailed; ExitOK for nil.
func ExitCode(err error) int {
	var ee *ExitError
	switch {
	case err == nil:
		return ExitOK
	case errors.As(err, &ee):
		return ee.Code
	case errors.Is(err, flag.ErrHelp):
		return ExitUsage
	case errors.Is(err, context.Canceled):
		return ExitRetryable
	}
	return ExitFailed
}
