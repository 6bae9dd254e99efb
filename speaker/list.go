package speaker

import (
	"context"
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/kubernetes"

	metallbclient "github.com/herald-lb/herald/config/metallb/client/clientset/versioned"
	"github.com/herald-lb/herald/heartbeat"
	"github.com/herald-lb/herald/snapshot"
)

// ListBuilder lists, once, every object the speakers read and returns a builder holding them:
// `herald explain` schedules from it exactly what a speaker would from its informers.
// namespace is Herald's own (heartbeat Leases, status objects), configNamespace the one the
// metallb.io configuration is read from.
func ListBuilder(ctx context.Context, client kubernetes.Interface, mlb metallbclient.Interface, namespace, configNamespace string) (*snapshot.Builder, error) {
	leaseNamespace := namespace
	b := snapshot.NewBuilder(nil)
	all := metav1.ListOptions{}
	nodes, err := client.CoreV1().Nodes().List(ctx, all)
	if err != nil {
		return nil, fmt.Errorf("listing nodes: %w", err)
	}
	for i := range nodes.Items {
		b.SetNode(&nodes.Items[i])
	}
	leases, err := client.CoordinationV1().Leases(leaseNamespace).List(ctx, metav1.ListOptions{
		LabelSelector: labels.SelectorFromSet(labels.Set{heartbeat.LabelHeartbeat: heartbeat.LabelValueSpeaker}).String()})
	if err != nil {
		return nil, fmt.Errorf("listing heartbeat leases in %q: %w", leaseNamespace, err)
	}
	for i := range leases.Items {
		b.SetLease(&leases.Items[i])
	}
	svcs, err := client.CoreV1().Services("").List(ctx, all)
	if err != nil {
		return nil, fmt.Errorf("listing services: %w", err)
	}
	for i := range svcs.Items {
		b.SetService(&svcs.Items[i])
	}
	slices, err := client.DiscoveryV1().EndpointSlices("").List(ctx, all)
	if err != nil {
		return nil, fmt.Errorf("listing endpointslices: %w", err)
	}
	for i := range slices.Items {
		b.SetEndpointSlice(&slices.Items[i])
	}
	m := mlb.MetallbV1beta1()
	pools, err := m.IPAddressPools(configNamespace).List(ctx, all)
	if err != nil {
		return nil, fmt.Errorf("listing ipaddresspools.metallb.io: %w", err)
	}
	for i := range pools.Items {
		b.SetPool(&pools.Items[i])
	}
	l2, err := m.L2Advertisements(configNamespace).List(ctx, all)
	if err != nil {
		return nil, fmt.Errorf("listing l2advertisements.metallb.io: %w", err)
	}
	for i := range l2.Items {
		b.SetL2Advertisement(&l2.Items[i])
	}
	comms, err := m.Communities(configNamespace).List(ctx, all)
	if err != nil {
		return nil, fmt.Errorf("listing communities.metallb.io: %w", err)
	}
	for i := range comms.Items {
		b.SetCommunity(&comms.Items[i])
	}
	bgp, err := m.BGPAdvertisements(configNamespace).List(ctx, all)
	if err != nil {
		return nil, fmt.Errorf("listing bgpadvertisements.metallb.io: %w", err)
	}
	for i := range bgp.Items {
		b.SetBGPAdvertisement(&bgp.Items[i])
	}
	st, err := m.ServiceL2Statuses(namespace).List(ctx, all)
	if err != nil {
		return nil, fmt.Errorf("listing servicel2statuses.metallb.io: %w", err)
	}
	for i := range st.Items {
		b.SetL2Status(&st.Items[i])
	}
	bst, err := m.ServiceBGPStatuses(namespace).List(ctx, all)
	if err != nil {
		return nil, fmt.Errorf("listing servicebgpstatuses.metallb.io: %w", err)
	}
	for i := range bst.Items {
		b.SetBGPStatus(&bst.Items[i])
	}
	return b, nil
}
