package ipam

import (
	"fmt"
	"sort"
)

// SetPools replaces the pool configuration. Invalid pools, and pools overlapping an earlier
// pool (by Created, then Name), are not used and are returned as problems, one *Error per
// pool; the earlier pool keeps working. No Service loses an address, as in MetalLB: each
// address now belongs to the usable pool that contains it (a renamed or split pool keeps
// every Service where it is), and an address no usable pool contains stays held, kept for its
// Service until the Service's spec or an operator decides. repooled lists the Services whose
// pool changed, so the caller can re-check them.
func (a *Allocator) SetPools(specs []Pool) (problems []*Error, repooled []ServiceKey) {
	ordered := append([]Pool(nil), specs...)
	sort.SliceStable(ordered, func(i, j int) bool {
		if !ordered[i].Created.Equal(ordered[j].Created) {
			return ordered[i].Created.Before(ordered[j].Created)
		}
		return ordered[i].Name < ordered[j].Name
	})
	a.pools = map[string]*pool{}
	a.problems = map[string]*Error{}
	var accepted []*pool
	for _, spec := range ordered {
		if e := a.admitPool(spec, accepted); e != nil {
			a.problems[spec.Name] = e
			problems = append(problems, e)
			continue
		}
		p, _ := parsePool(spec)
		accepted = append(accepted, p)
		a.pools[spec.Name] = p
	}
	a.autoOrder = nil
	for _, p := range accepted {
		if p.spec.AutoAssign {
			a.autoOrder = append(a.autoOrder, p)
		}
	}
	sortForAutoAssign(a.autoOrder)
	return problems, a.revalidate()
}

// admitPool returns why spec cannot be used next to the already accepted pools, or nil.
func (a *Allocator) admitPool(spec Pool, accepted []*pool) *Error {
	if _, dup := a.pools[spec.Name]; dup {
		return &Error{Reason: ReasonInvalidPool, Pool: spec.Name, Message: fmt.Sprintf("pool %q is defined twice", spec.Name)}
	}
	p, err := parsePool(spec)
	if err != nil {
		return &Error{Reason: ReasonInvalidPool, Pool: spec.Name, Message: err.Error()}
	}
	for _, earlier := range accepted {
		for _, r := range p.ranges {
			for _, o := range earlier.ranges {
				if r.overlaps(o) {
					return &Error{
						Reason: ReasonPoolOverlap, Pool: spec.Name, OtherPool: earlier.spec.Name,
						Message: fmt.Sprintf("pool %q (%s) overlaps pool %q (%s), which was created earlier; pool %q is not used", spec.Name, r, earlier.spec.Name, o, spec.Name),
					}
				}
			}
		}
	}
	return nil
}

// revalidate derives every held address's pool again after a configuration change and
// recounts pool usage. It releases nothing.
func (a *Allocator) revalidate() []ServiceKey {
	for ip, use := range a.ips {
		use.pool = ""
		if p := a.usablePoolOf(ip); p != nil {
			use.pool = p.spec.Name
			p.used[familyIndex(ip)]++
		}
	}
	var repooled []ServiceKey
	for k, al := range a.allocs {
		name := ""
		p, kept := a.poolFor(al.ips)
		if p != nil {
			name, kept = p.spec.Name, checkAllowed(p, al.svc)
		}
		al.kept = kept
		if name != al.pool {
			al.pool = name
			repooled = append(repooled, k)
		}
	}
	sort.Slice(repooled, func(i, j int) bool { return repooled[i].less(repooled[j]) })
	return repooled
}
