// Package logging builds the one kind of logger the step binaries and the
// regmigrate CLI use: slog, as JSON (pods, log collectors) or text
// (terminals), at a level.
package logging

import (
	"io"
	"log/slog"
)

// New logs to w as JSON, or as text when format is "text"; records below
// level are dropped.
func New(w io.Writer, format string, level slog.Level) *slog.Logger {
	o := &slog.HandlerOptions{Level: level}
	if format == "text" {
		return slog.New(slog.NewTextHandler(w, o))
	}
	return slog.New(slog.NewJSONHandler(w, o))
}

// Discard drops everything: the default of libraries given no logger.
func Discard() *slog.Logger { return slog.New(slog.DiscardHandler) }
