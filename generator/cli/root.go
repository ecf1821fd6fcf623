// Package cli is the regmigrate command line (cobra). Commands bind flags
// and call one library function; the logic lives in cobra-free packages.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/regmigrate/regmigrate/steps/contract"
	"github.com/regmigrate/regmigrate/steps/logging"
)

// Env is what the process gives the CLI: streams and environment. Tests
// pass their own.
type Env struct {
	Stdin          io.Reader // lint -
	Stdout, Stderr io.Writer
	Getenv         func(string) string
	// IsTerminal reports whether stderr is a terminal (progress bars).
	IsTerminal bool
}

// OSEnv is the real process environment.
func OSEnv() Env {
	return Env{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr, Getenv: os.Getenv, IsTerminal: term.IsTerminal(int(os.Stderr.Fd()))}
}

// ExitError carries an exit code out of a command.
type ExitError = contract.ExitError

func usageError(err error) error { return contract.Usage(err) }

// NewRoot builds the command tree.
func NewRoot(env Env) *cobra.Command {
	root := &cobra.Command{
		Use:   "regmigrate",
		Short: "Move every image of a platform from one registry to another, provably",
		Long: `regmigrate moves every container image of a platform from a legacy registry
to a new one, on this machine (run) or as an Argo Workflow (generate, submit),
verifies the result, and cuts the cluster over (cutover).`,
		Version:       contract.Version,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(env.Stdout)
	root.SetErr(env.Stderr)
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error { return usageError(err) })
	// -v is verbose in every command (as in skopeo, crane and kubectl);
	// the version is `regmigrate version` or --version.
	root.PersistentFlags().BoolP("verbose", "v", false, "log more: debug lines, every retry and image")
	root.Flags().Bool("version", false, "print regmigrate's version (as regmigrate version does)")
	root.SetVersionTemplate(versionLine() + "\n")
	root.AddCommand(newRunCmd(env), newGenerateCmd(env), newLintCmd(env), newSubmitCmd(env), newCutoverCmd(env), newReportCmd(env), newVersionCmd(env))
	setupHelp(root, env)
	return root
}

// verbose reports whether -v was given.
func verbose(c *cobra.Command) bool {
	v, _ := c.Flags().GetBool("verbose")
	return v
}

// Main runs the CLI and returns the process exit code. Errors are printed
// once, here.
func Main(ctx context.Context, env Env, args []string) int {
	root := NewRoot(env)
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return contract.ExitOK
	}
	var ee *ExitError
	if errors.As(err, &ee) && ee.Err == nil {
		return ee.Code // said already
	}
	fmt.Fprintln(env.Stderr, "regmigrate:", err)
	if i, ok := contract.InterruptedBy(ctx); ok {
		return i.Code() // stopped by a signal, whatever the command was doing
	}
	return contract.ExitCode(err)
}

func newLogger(w io.Writer, format string, verbose bool) *slog.Logger {
	lvl := slog.LevelWarn
	if verbose {
		lvl = slog.LevelDebug
	}
	if format != "json" {
		format = "text"
	}
	return logging.New(w, format, lvl)
}
