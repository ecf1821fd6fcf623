package pipeline

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"time"

	"github.com/regmigrate/regmigrate/steps/artifacts"
	"github.com/regmigrate/regmigrate/steps/registry"
)

// QuotaFile is the run directory's record of the source's pull quota, as
// the export found it before anything was copied.
const QuotaFile = "quota.json"

// QuotaCheck compares the manifest GETs a scope needs with what is left of
// a registry's pull quota (Docker Hub's ratelimit headers).
type QuotaCheck struct {
	Registry string         `json:"registry"`
	Quota    registry.Quota `json:"quota"`
	// Needed: the manifest GETs the plan needs, about: one per image (an
	// image already on the target needs none, a multi-arch image one
	// more per platform it keeps).
	Needed  int    `json:"needed"`
	Enough  bool   `json:"enough"`
	Message string `json:"message"`
}

// CheckQuota asks each source registry of the plan that check selects
// (Docker Hub's) for its pull quota with a HEAD on one of its manifests
// (Docker Hub does not count a HEAD), and says whether what is left covers
// the plan. Registries that state no quota are left out; one that cannot
// be asked is logged, not fatal. Other registries that send the quota
// headers are paced all the same, from their first answers.
func CheckQuota(ctx context.Context, c *registry.Client, items []artifacts.Item, check func(host string) bool, log *slog.Logger) []QuotaCheck {
	type first struct {
		repo, ref string
		n         int
	}
	by := map[string]*first{}
	var order []string
	for _, it := range items {
		s := it.Source
		if it.Error != "" || s.Registry == "" || c.StoreOf(s.Registry) != nil || !check(s.Registry) {
			continue
		}
		f, ok := by[s.Registry]
		if !ok {
			f = &first{repo: s.Repository, ref: s.Reference()}
			by[s.Registry] = f
			order = append(order, s.Registry)
		}
		f.n++
	}
	var out []QuotaCheck
	for _, host := range order {
		f := by[host]
		q, ok, err := c.CheckQuota(ctx, host, f.repo, f.ref)
		if err != nil {
			log.Warn("could not ask the registry for its pull quota", "registry", host, "err", err)
			continue
		}
		if !ok {
			continue
		}
		qc := QuotaCheck{Registry: host, Quota: q, Needed: f.n, Enough: q.Remaining >= f.n}
		qc.Message = qc.describe()
		log.Info("pull quota", "registry", host, "limit", q.Limit, "remaining", q.Remaining, "window", q.Window.String(), "needed", f.n, "enough", qc.Enough)
		out = append(out, qc)
	}
	return out
}

func (qc QuotaCheck) describe() string {
	q := qc.Quota
	s := fmt.Sprintf("%s pull quota: %s; the plan needs about %d manifest GETs (one per image not on the target yet, and one more per platform of a multi-arch image)",
		qc.Registry, q, qc.Needed)
	if qc.Enough {
		return s + ": enough"
	}
	short := qc.Needed - q.Remaining
	windows := 1
	if q.Limit > 0 {
		windows = (short + q.Limit - 1) / q.Limit
	}
	return s + fmt.Sprintf(": %d more than are left. The run spends what is left, then waits for the quota's window to reopen before each further pull (about %d window(s) of %s, %s); progress says when it waits, and an interrupted run resumes with the same --out",
		short, windows, q.Window, time.Duration(windows)*q.Window)
}

// WriteQuota records the checks in the run directory (nothing when none).
func WriteQuota(runDir string, checks []QuotaCheck) error {
	if len(checks) == 0 {
		return nil
	}
	return artifacts.WriteJSON(artifacts.Dir(runDir).Path(QuotaFile), checks)
}

// quotaWarnings are the report's lines of the quota checks of the run
// directory.
func quotaWarnings(dir artifacts.Dir) ([]string, error) {
	var checks []QuotaCheck
	if err := artifacts.ReadJSON(dir.Path(QuotaFile), &checks); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil
		}
		return nil, err
	}
	var out []string
	for _, qc := range checks {
		out = append(out, qc.Message)
	}
	return out, nil
}
