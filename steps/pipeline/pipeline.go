// Package pipeline is the per-directory API of a migration: what runs on a
// shard directory (verify a shard) and on a run directory (aggregate the
// report), the same code whether `regmigrate run` schedules it in-process
// or an Argo pod runs it through a step binary (steps/stepcli/verifycmd).
// Callers only schedule and parse flags; the files read and written are
// those of package contract.
//
// The package links no Kubernetes: the ImageStreamTag check comes in
// through TagChecker, which imagecheck.Checker implements.
package pipeline

import "errors"

// ErrMissingInput: the directory does not hold what the step reads (a wrong
// --shard-dir or --run-dir, or a step run before the one that writes it).
var ErrMissingInput = errors.New("missing input")
