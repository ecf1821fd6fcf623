package owners_test

import (
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/regmigrate/regmigrate/steps/owners"
)

func TestOf(t *testing.T) {
	t.Parallel()
	fields := func(managers ...string) []metav1.ManagedFieldsEntry {
		var out []metav1.ManagedFieldsEntry
		for _, m := range managers {
			out = append(out, metav1.ManagedFieldsEntry{Manager: m, Operation: metav1.ManagedFieldsOperationApply,
				FieldsV1: &metav1.FieldsV1{Raw: []byte(`{"f:spec":{}}`)}})
		}
		return out
	}
	for _, tc := range []struct {
		name                  string
		labels, annotations   map[string]string
		managed               []metav1.ManagedFieldsEntry
		manager, app, ns, via string
		fieldManagers         int
	}{
		{name: "argo cd tracking id, apps in any namespace", annotations: map[string]string{owners.ArgoCDTrackingID: "team-a_shop:apps/Deployment:shop/web"},
			manager: "argocd", app: "shop", ns: "team-a", via: "annotation " + owners.ArgoCDTrackingID},
		{name: "a chart's instance label is Helm's, not Argo CD's", labels: map[string]string{owners.InstanceLabel: "shop", owners.ManagedByLabel: "Helm"},
			manager: "helm", app: "shop", ns: "shop", via: "label " + owners.ManagedByLabel + "=Helm"},
		{name: "argo cd label tracking", labels: map[string]string{owners.InstanceLabel: "shop"}, manager: "argocd", app: "shop", via: "label " + owners.InstanceLabel},
		{name: "flux helm", labels: map[string]string{owners.FluxHelmName: "web", owners.FluxHelmNS: "flux-system"}, manager: "flux-helm", app: "web", ns: "flux-system", via: "label " + owners.FluxHelmName},
		{name: "server-side apply by argo cd", managed: fields("argocd-controller", "kube-controller-manager"), manager: "argocd", via: "field manager argocd-controller", fieldManagers: 2},
		{name: "an operator only", managed: fields("platform-operator"), fieldManagers: 1},
		{name: "regmigrate's own changes are no owner", managed: fields(owners.Self)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			u := &unstructured.Unstructured{Object: map[string]any{}}
			u.SetNamespace("shop")
			u.SetLabels(tc.labels)
			u.SetAnnotations(tc.annotations)
			u.SetManagedFields(tc.managed)
			o := owners.Of(u)
			if tc.manager == "" && tc.fieldManagers == 0 {
				if o != nil {
					t.Fatalf("owner %+v, want none", o)
				}
				return
			}
			if o == nil || o.Manager != tc.manager || o.Name != tc.app || o.Namespace != tc.ns || o.Via != tc.via || len(o.FieldManagers) != tc.fieldManagers {
				t.Errorf("owner %+v, want %s %s/%s via %q, %d field managers", o, tc.manager, tc.ns, tc.app, tc.via, tc.fieldManagers)
			}
			if o.GitOps() != (tc.manager != "") {
				t.Errorf("GitOps() = %v", o.GitOps())
			}
		})
	}
}
