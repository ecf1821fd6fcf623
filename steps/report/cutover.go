package report

import (
	"errors"
	"io/fs"
	"os"

	"github.com/regmigrate/regmigrate/steps/artifacts"
	"github.com/regmigrate/regmigrate/steps/contract"
	"github.com/regmigrate/regmigrate/steps/switchresult"
)

// Cutover is switch.json, the cutover record switch-mode writes
// (package switchresult, which links no Kubernetes client), with
// switch.diff, the readable account of what changed.
type Cutover struct {
	switchresult.Result
	Diff string `json:"-"`
}

// The cutover record's parts, as the report names them.
type (
	CutoverCluster = switchresult.ClusterResult
	ModeRecord     = switchresult.Record
	CutoverObject  = switchresult.Object
)

// ReadCutover reads switch.json and switch.diff from a run directory; nil
// when there was no cutover.
func ReadCutover(dir artifacts.Dir) (*Cutover, error) {
	var c Cutover
	err := artifacts.ReadJSON(dir.Path(contract.SwitchFile), &c)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if b, err := os.ReadFile(dir.Path(contract.SwitchDiff)); err == nil {
		c.Diff = string(b)
	}
	return &c, nil
}
