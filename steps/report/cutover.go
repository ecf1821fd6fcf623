package report

import (
	"errors"
	"io/fs"
	"os"
	"time"

	"github.com/regmigrate/regmigrate/steps/artifacts"
	"github.com/regmigrate/regmigrate/steps/contract"
)

// Cutover is switch.json, the cutover record switch-mode writes, as the
// report reads it (this package links no Kubernetes client; a test in
// steps/switchmode keeps the two in step).
type Cutover struct {
	Mode      string           `json:"mode"`
	DryRun    bool             `json:"dryRun"`
	Forced    bool             `json:"forced,omitempty"`
	Time      time.Time        `json:"time"`
	Clusters  []CutoverCluster `json:"clusters"`
	Rewritten int              `json:"rewritten"`
	Restored  int              `json:"restored"`
	Pending   int              `json:"pending"`
	Unchanged int              `json:"unchanged"`
	Reported  int              `json:"reported"`
	Failed    int              `json:"failed"`
	Unproven  int              `json:"unproven"`
	// Diff is switch.diff, the readable account of what changed.
	Diff string `json:"-"`
}

// CutoverCluster is one cluster's part of the cutover.
type CutoverCluster struct {
	Cluster string          `json:"cluster"`
	Before  ModeRecord      `json:"before"`
	After   ModeRecord      `json:"after"`
	Changed bool            `json:"modeChanged"`
	Objects []CutoverObject `json:"objects"`
	Errors  []string        `json:"errors,omitempty"`
}

// ModeRecord is what the cluster's mode record said.
type ModeRecord struct {
	Mode, PreviousMode string
	Source, Target     string
	Migration          string
	Time               string
}

// CutoverObject is one workload the cutover looked at.
type CutoverObject struct {
	Kind      string `json:"kind"`
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	Action    string `json:"action"`
	Error     string `json:"error,omitempty"`
}

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
