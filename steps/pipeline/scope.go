package pipeline

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/regmigrate/regmigrate/steps/artifacts"
	"github.com/regmigrate/regmigrate/steps/contract"
	"github.com/regmigrate/regmigrate/steps/report"
)

// ResolveScope completes a scope definition with what identifies it: the
// content hash of every input file, the version. Paths stay as given.
func ResolveScope(s report.Scope) (report.Scope, error) {
	s.Inputs = append([]report.Input(nil), s.Inputs...)
	for i, in := range s.Inputs {
		sum, err := fileSHA256(in.Path)
		if err != nil {
			return s, contract.Usage(fmt.Errorf("%s %s: %w", in.Kind, in.Path, err))
		}
		s.Inputs[i].SHA256 = sum
	}
	s.Version = contract.Version
	return s, nil
}

func fileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil)), nil
}

// ReadScope reads a run directory's scope.json; fs.ErrNotExist when the
// directory was planned by a regmigrate that did not record it.
func ReadScope(runDir string) (report.Scope, error) {
	var s report.Scope
	err := artifacts.ReadJSON(filepath.Join(runDir, contract.ScopeFile), &s)
	return s, err
}

func writeScope(runDir string, s report.Scope) error {
	if s.PlannedAt.IsZero() {
		s.PlannedAt = time.Now().UTC()
	}
	return artifacts.WriteJSON(filepath.Join(runDir, contract.ScopeFile), s)
}

// readScopeIfAny is ReadScope that tolerates a directory without one.
func readScopeIfAny(runDir string) (*report.Scope, error) {
	s, err := ReadScope(runDir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &s, nil
}
