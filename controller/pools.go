package controller

import (
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	metallbv1beta1 "github.com/herald-lb/herald/config/metallb/v1beta1"
	"github.com/herald-lb/herald/ipam"
)

// toPool converts an IPAddressPool. A selector that does not parse makes the whole pool
// invalid, reported like any other pool problem.
func toPool(p *metallbv1beta1.IPAddressPool) (ipam.Pool, error) {
	out := ipam.Pool{
		Name:          p.Name,
		Created:       p.CreationTimestamp.Time,
		Addresses:     p.Spec.Addresses,
		AutoAssign:    p.Spec.AutoAssign == nil || *p.Spec.AutoAssign,
		AvoidBuggyIPs: p.Spec.AvoidBuggyIPs,
	}
	alloc := p.Spec.AllocateTo
	if alloc == nil {
		return out, nil
	}
	out.ServiceAllocation = true
	out.Priority = alloc.Priority
	out.Namespaces = alloc.Namespaces
	var err error
	if out.NamespaceSelectors, err = selectors(alloc.NamespaceSelectors, "spec.serviceAllocation.namespaceSelectors"); err != nil {
		return out, fmt.Errorf("pool %q: %w", p.Name, err)
	}
	if out.ServiceSelectors, err = selectors(alloc.ServiceSelectors, "spec.serviceAllocation.serviceSelectors"); err != nil {
		return out, fmt.Errorf("pool %q: %w", p.Name, err)
	}
	return out, nil
}

func selectors(in []metav1.LabelSelector, path string) ([]labels.Selector, error) {
	out := make([]labels.Selector, 0, len(in))
	for i := range in {
		s, err := metav1.LabelSelectorAsSelector(&in[i])
		if err != nil {
			return nil, fmt.Errorf("%s[%d]: %w", path, i, err)
		}
		out = append(out, s)
	}
	return out, nil
}
