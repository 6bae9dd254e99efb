package controller

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/cache"

	metallbv1beta1 "github.com/herald-lb/herald/config/metallb/v1beta1"
	"github.com/herald-lb/herald/ipam"
)

// Condition types Herald writes.
const (
	// ConditionAddressAllocated on a Service: True with the addresses and pool, or False with
	// the refusal's Reason and message.
	ConditionAddressAllocated = "herald.dev/AddressAllocated"
	// ConditionPoolUsable on an IPAddressPool: False when the pool is invalid or overlaps an
	// earlier pool.
	ConditionPoolUsable = "herald.dev/PoolUsable"
)

// Reasons for the True conditions and Normal Events.
const (
	ReasonAllocated = "Allocated"
	ReasonUsable    = "Usable"
)

var everything = labels.Everything()

// syncService reconciles one Service with the allocator and writes the outcome.
func (c *controller) syncService(ctx context.Context, key string) error {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return nil
	}
	ipamKey := ipam.ServiceKey{Namespace: ns, Name: name}
	svc, err := c.services.Services(ns).Get(name)
	if apierrors.IsNotFound(err) {
		if c.release(ipamKey) {
			c.enqueueRefused()
		}
		return nil
	}
	if err != nil {
		return err
	}
	if !c.opts.owns(svc) {
		// A Service of another class is never written: its addresses are free once its
		// status no longer shows them. One that stopped being a LoadBalancer loses what
		// Herald wrote, and its addresses are free once that write succeeded.
		held := c.unassign(ipamKey)
		if svc.Spec.Type != corev1.ServiceTypeLoadBalancer && (held || meta.FindStatusCondition(svc.Status.Conditions, ConditionAddressAllocated) != nil) {
			if err := c.clear(ctx, svc); err != nil {
				return err
			}
			c.settle(ipamKey, nil)
			return nil
		}
		c.settle(ipamKey, statusIPs(svc))
		return nil
	}
	c.mu.Lock()
	prev, held := c.alloc.Lookup(ipamKey)
	req := toIPAM(svc, c.namespaceLabels(ns))
	req.Current = statusIPs(svc)
	res, err := c.alloc.Assign(req)
	var refusal *ipam.Error
	if err != nil && !errors.As(err, &refusal) {
		refusal = &ipam.Error{Reason: ipam.ReasonInvalidService, Message: err.Error()}
	}
	if refusal != nil {
		c.usage.setPending(key, refusal.Reason)
	} else {
		c.usage.setPending(key, "") // a kept address is an address: not pending
	}
	// Most syncs confirm what the Service holds; only a change moves the pool figures.
	if held != (err == nil) || (held && !sameAssignment(prev, res)) {
		c.usage.setPools(c.alloc.Stats())
	}
	c.mu.Unlock()
	if refusal != nil {
		if err := c.writeRefusal(ctx, svc, refusal); err != nil {
			return err
		}
		c.settle(ipamKey, nil)
		return nil
	}
	if err := c.writeAllocation(ctx, svc, res); err != nil {
		return err
	}
	c.settle(ipamKey, res.IPs)
	return nil
}

// settle frees the addresses the Service gave up once its status shows only ips (the write
// that removed them succeeded), and re-checks refused Services if any was freed.
func (c *controller) settle(key ipam.ServiceKey, ips []netip.Addr) {
	c.mu.Lock()
	freed := c.alloc.Settle(key, ips)
	c.mu.Unlock()
	if freed {
		c.enqueueRefused()
	}
}

// unassign gives up the Service's addresses until settle confirms its status lost them.
func (c *controller) unassign(key ipam.ServiceKey) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.usage.setPending(key.String(), "")
	if !c.alloc.Unassign(key) {
		return false
	}
	c.usage.setPools(c.alloc.Stats())
	return true
}

// enqueueRefused re-checks the Services that were refused, after addresses were freed.
func (c *controller) enqueueRefused() {
	svcs, _ := c.services.List(everything)
	for _, s := range svcs {
		if cond := meta.FindStatusCondition(s.Status.Conditions, ConditionAddressAllocated); cond != nil && cond.Status == metav1.ConditionFalse {
			c.queue.Add(s.Namespace + "/" + s.Name)
		}
	}
}

func sameAssignment(a, b ipam.Assignment) bool {
	if a.Pool != b.Pool || len(a.IPs) != len(b.IPs) {
		return false
	}
	for i := range a.IPs {
		if a.IPs[i] != b.IPs[i] {
			return false
		}
	}
	return true
}

func (c *controller) release(key ipam.ServiceKey) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.usage.setPending(key.String(), "")
	if !c.alloc.Release(key) {
		return false
	}
	c.usage.setPools(c.alloc.Stats())
	return true
}

func describe(res ipam.Assignment) string {
	ips := make([]string, len(res.IPs))
	for i, ip := range res.IPs {
		ips[i] = ip.String()
	}
	if res.Pool == "" {
		return strings.Join(ips, ", ")
	}
	return fmt.Sprintf("%s from pool %q", strings.Join(ips, ", "), res.Pool)
}

// ReasonAddressKept is the Warning Event reason for a Service that keeps addresses the rules
// would not give it now; its condition carries the rule's own reason.
const ReasonAddressKept = "AddressKept"

func (c *controller) writeAllocation(ctx context.Context, svc *corev1.Service, res ipam.Assignment) error {
	cond := metav1.Condition{
		Type: ConditionAddressAllocated, Status: metav1.ConditionTrue,
		Reason: ReasonAllocated, Message: "assigned " + describe(res),
	}
	var warning string
	switch {
	case res.Kept != nil:
		// The address stays where the world uses it; the operator decides what happens.
		cond.Status, cond.Reason = metav1.ConditionFalse, string(res.Kept.Reason)
		cond.Message = keptMessage(res)
		warning = ReasonAddressKept
	case res.Partial != nil:
		// PreferDualStack with one family: allocated, and why not both.
		cond.Reason = string(res.Partial.Reason)
		cond.Message += "; " + res.Partial.Message
		warning = string(res.Partial.Reason)
	}
	ingress := ingressFor(res.IPs)
	newAddresses := !sameIngress(svc.Status.LoadBalancer.Ingress, ingress)
	old := meta.FindStatusCondition(svc.Status.Conditions, ConditionAddressAllocated)
	changed, err := c.writeStatus(ctx, svc, ingress, cond)
	if err != nil {
		return err
	}
	if newAddresses {
		allocationsTotal.WithLabelValues(res.Pool).Inc()
	}
	switch {
	case changed && warning != "":
		c.recorder.Event(svc, corev1.EventTypeWarning, warning, cond.Message)
	case newAddresses || (changed && (old == nil || old.Status != metav1.ConditionTrue)):
		// A pool renamed or split changes the condition's message, not the address: no
		// Event says the address moved when it did not.
		c.recorder.Eventf(svc, corev1.EventTypeNormal, ReasonAllocated, "Assigned %s", describe(res))
	}
	if res.Pool == "" {
		// Kept outside every pool: leave the annotation as it is until an operator decides.
		return nil
	}
	return c.setPoolAnnotation(ctx, svc, res.Pool)
}

func keptMessage(res ipam.Assignment) string {
	return fmt.Sprintf("keeping %s, which the Service already has, although %s; a pool change never takes an address away: "+
		"add it to a pool that allows the Service, or request another address or pool (metallb.io/loadBalancerIPs, metallb.io/address-pool) to move the Service",
		describe(res), res.Kept.Message)
}

func (c *controller) writeRefusal(ctx context.Context, svc *corev1.Service, refusal *ipam.Error) error {
	cond := metav1.Condition{
		Type: ConditionAddressAllocated, Status: metav1.ConditionFalse,
		Reason: string(refusal.Reason), Message: refusal.Message,
	}
	changed, err := c.writeStatus(ctx, svc, nil, cond)
	if err != nil {
		return err
	}
	if changed {
		allocationFailuresTotal.WithLabelValues(string(refusal.Reason)).Inc()
		c.recorder.Event(svc, corev1.EventTypeWarning, string(refusal.Reason), refusal.Message)
	}
	return c.setPoolAnnotation(ctx, svc, "")
}

// writeStatus sets the ingress and the condition, reporting whether anything changed, so Events
// are recorded once per change rather than once per resync.
func (c *controller) writeStatus(ctx context.Context, svc *corev1.Service, ingress []corev1.LoadBalancerIngress, cond metav1.Condition) (bool, error) {
	old := meta.FindStatusCondition(svc.Status.Conditions, cond.Type)
	sameCond := old != nil && old.Status == cond.Status && old.Reason == cond.Reason && old.Message == cond.Message
	if sameCond && sameIngress(svc.Status.LoadBalancer.Ingress, ingress) {
		return false, nil
	}
	cond.ObservedGeneration = svc.Generation
	if err := c.putStatus(ctx, svc, ingress, cond); err != nil {
		return false, fmt.Errorf("service %s/%s: writing status: %w", svc.Namespace, svc.Name, err)
	}
	return true, nil
}

// setPoolAnnotation writes (or, with pool "", removes) metallb.io/ip-allocated-from-pool.
func (c *controller) setPoolAnnotation(ctx context.Context, svc *corev1.Service, pool string) error {
	current, has := svc.Annotations[AnnotationAllocatedFromPool]
	if (pool == "" && !has) || (pool != "" && current == pool) {
		return nil
	}
	value := "null"
	if pool != "" {
		value = fmt.Sprintf("%q", pool)
	}
	patch := fmt.Sprintf(`{"metadata":{"annotations":{%q:%s}}}`, AnnotationAllocatedFromPool, value)
	if err := retryWrite(ctx, "services", func(ctx context.Context) error {
		_, err := c.client.CoreV1().Services(svc.Namespace).Patch(ctx, svc.Name, types.MergePatchType, []byte(patch), metav1.PatchOptions{})
		return err
	}); err != nil {
		return fmt.Errorf("service %s/%s: annotation %s: %w", svc.Namespace, svc.Name, AnnotationAllocatedFromPool, err)
	}
	return nil
}

// clear removes what Herald wrote on a Service it no longer owns.
func (c *controller) clear(ctx context.Context, svc *corev1.Service) error {
	if len(svc.Status.LoadBalancer.Ingress) > 0 || meta.FindStatusCondition(svc.Status.Conditions, ConditionAddressAllocated) != nil {
		updated := svc.DeepCopy()
		updated.Status.LoadBalancer.Ingress = nil
		meta.RemoveStatusCondition(&updated.Status.Conditions, ConditionAddressAllocated)
		if err := retryWrite(ctx, "services", func(ctx context.Context) error {
			_, err := c.client.CoreV1().Services(svc.Namespace).UpdateStatus(ctx, updated, metav1.UpdateOptions{})
			return err
		}); err != nil {
			return fmt.Errorf("service %s/%s: clearing status: %w", svc.Namespace, svc.Name, err)
		}
		c.recorder.Event(svc, corev1.EventTypeNormal, "Released", "released the load-balancer addresses: the Service is no longer of type LoadBalancer")
	}
	return c.setPoolAnnotation(ctx, svc, "")
}

// syncPools loads the pools into the allocator, reports problems on the pools and re-checks
// every Service.
func (c *controller) syncPools(ctx context.Context) {
	objs, err := c.pools.IPAddressPools(c.opts.configNamespace()).List(everything)
	if err != nil {
		return
	}
	var specs []ipam.Pool
	invalid := map[string]*ipam.Error{}
	for _, p := range objs {
		spec, err := toPool(p)
		if err != nil {
			invalid[p.Name] = &ipam.Error{Reason: ipam.ReasonInvalidPool, Pool: p.Name, Message: err.Error()}
			continue
		}
		specs = append(specs, spec)
	}
	c.mu.Lock()
	problems, _ := c.alloc.SetPools(specs)
	c.poolProblems = invalid
	for _, p := range problems {
		c.poolProblems[p.Pool] = p
	}
	c.usage.setProblems(c.poolProblems)
	c.usage.setPools(c.alloc.Stats())
	c.mu.Unlock()
	c.updatePoolStatus(ctx)
	svcs, _ := c.services.List(everything)
	for _, s := range svcs {
		c.queue.Add(s.Namespace + "/" + s.Name)
	}
}

// updatePoolStatus writes usage and the usable condition to each IPAddressPool that changed.
func (c *controller) updatePoolStatus(ctx context.Context) {
	objs, err := c.pools.IPAddressPools(c.opts.configNamespace()).List(everything)
	if err != nil {
		return
	}
	c.mu.Lock()
	stats := map[string]ipam.PoolStats{}
	for _, s := range c.alloc.Stats() {
		stats[s.Name] = s
	}
	problems := make(map[string]*ipam.Error, len(c.poolProblems))
	for k, v := range c.poolProblems {
		problems[k] = v
	}
	c.mu.Unlock()
	for _, p := range objs {
		c.writePoolStatus(ctx, p, stats[p.Name], problems[p.Name])
	}
}

func clampInt64(v uint64) int64 {
	if v > 1<<62 {
		return 1 << 62
	}
	return int64(v)
}

func (c *controller) writePoolStatus(ctx context.Context, p *metallbv1beta1.IPAddressPool, st ipam.PoolStats, problem *ipam.Error) {
	updated := p.DeepCopy()
	updated.Status.AssignedIPv4 = clampInt64(st.UsedIPv4)
	updated.Status.AssignedIPv6 = clampInt64(st.UsedIPv6)
	updated.Status.AvailableIPv4 = clampInt64(st.SizeIPv4 - st.UsedIPv4)
	updated.Status.AvailableIPv6 = clampInt64(st.SizeIPv6 - st.UsedIPv6)
	cond := metav1.Condition{Type: ConditionPoolUsable, Status: metav1.ConditionTrue, Reason: ReasonUsable, Message: "the pool is used for allocation", ObservedGeneration: p.Generation}
	if problem != nil {
		cond = metav1.Condition{Type: ConditionPoolUsable, Status: metav1.ConditionFalse, Reason: string(problem.Reason), Message: problem.Message, ObservedGeneration: p.Generation}
	}
	old := meta.FindStatusCondition(p.Status.Conditions, ConditionPoolUsable)
	condChanged := old == nil || old.Status != cond.Status || old.Reason != cond.Reason || old.Message != cond.Message || old.ObservedGeneration != cond.ObservedGeneration
	meta.SetStatusCondition(&updated.Status.Conditions, cond)
	if !condChanged && updated.Status.AssignedIPv4 == p.Status.AssignedIPv4 && updated.Status.AssignedIPv6 == p.Status.AssignedIPv6 &&
		updated.Status.AvailableIPv4 == p.Status.AvailableIPv4 && updated.Status.AvailableIPv6 == p.Status.AvailableIPv6 {
		return
	}
	if err := retryWrite(ctx, "ipaddresspools", func(ctx context.Context) error {
		_, err := c.metallb.MetallbV1beta1().IPAddressPools(p.Namespace).UpdateStatus(ctx, updated, metav1.UpdateOptions{})
		return err
	}); err != nil {
		// The next tick or pool change retries.
		return
	}
	if condChanged && problem != nil {
		c.recorder.Event(p, corev1.EventTypeWarning, string(problem.Reason), problem.Message)
	}
}
