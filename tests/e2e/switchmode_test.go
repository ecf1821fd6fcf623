package e2e

import (
	"context"
	"errors"
	"testing"

	"k8s.io/client-go/dynamic"

	"github.com/regmigrate/regmigrate/steps/switchmode"
	"github.com/regmigrate/regmigrate/tests/kubeapi"
)

// TestModeRecordSwitchAndRollback: the registry mode record in a real
// kube-apiserver: dry run writes nothing, modern is refused without a
// passing verify, confirm switches, twice changes nothing, rollback restores.
func TestModeRecordSwitchAndRollback(t *testing.T) {
	t.Parallel()
	c := kubeapi.Start(t)
	dyn, err := dynamic.NewForConfig(c.RESTConfig())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	o := switchmode.ModeOptions{Client: dyn, Mode: switchmode.ModeModern, Source: "legacy.example:5000", Target: "new.example", Migration: "m1"}

	if _, _, _, err := switchmode.SetMode(ctx, o); !errors.Is(err, switchmode.ErrNotVerified) {
		t.Fatalf("switch without a passing verify: %v, want ErrNotVerified", err)
	}
	o.Verified = true
	if _, after, changed, err := switchmode.SetMode(ctx, o); err != nil || !changed || after.Mode != switchmode.ModeModern {
		t.Fatalf("dry run: %+v changed=%v err=%v", after, changed, err)
	}
	if r, _ := switchmode.GetMode(ctx, dyn, "", ""); r.Mode != switchmode.ModeLegacy {
		t.Fatalf("the dry run wrote the record: %+v", r)
	}
	o.Confirm = true
	before, after, changed, err := switchmode.SetMode(ctx, o)
	if err != nil || !changed || before.Mode != switchmode.ModeLegacy || after.PreviousMode != switchmode.ModeLegacy {
		t.Fatalf("confirm: before %+v after %+v changed=%v err=%v", before, after, changed, err)
	}
	r, _ := switchmode.GetMode(ctx, dyn, "", "")
	if r.Mode != switchmode.ModeModern || r.Source != o.Source || r.Target != o.Target || r.Migration != "m1" || r.Time == "" {
		t.Fatalf("record %+v", r)
	}
	if _, _, changed, err := switchmode.SetMode(ctx, o); err != nil || changed {
		t.Errorf("second switch: changed=%v err=%v, want nothing changed", changed, err)
	}
	o.Mode, o.Verified = switchmode.ModeLegacy, false // rollback needs no verify
	if _, after, changed, err := switchmode.SetMode(ctx, o); err != nil || !changed || after.PreviousMode != switchmode.ModeModern {
		t.Fatalf("rollback: %+v changed=%v err=%v", after, changed, err)
	}
	if r, _ := switchmode.GetMode(ctx, dyn, "", ""); r.Mode != switchmode.ModeLegacy {
		t.Errorf("after rollback: %+v", r)
	}
}
