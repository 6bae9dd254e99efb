package speaker

import (
	"slices"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2/ktesting"

	"github.com/herald-lb/herald/config/metallb/client/clientset/versioned/fake"
	metallblisters "github.com/herald-lb/herald/config/metallb/client/listers/metallb/v1beta1"
	metallbv1beta1 "github.com/herald-lb/herald/config/metallb/v1beta1"
	"github.com/herald-lb/herald/framework"
)

var sweepNow = time.Unix(1_000_000, 0)

func alive(name string) *framework.NodeInfo {
	return &framework.NodeInfo{Name: name, Speaker: &framework.SpeakerInfo{RenewTime: sweepNow, LeaseDuration: 2500 * time.Millisecond}}
}

func dead(name string) *framework.NodeInfo {
	return &framework.NodeInfo{Name: name, Speaker: &framework.SpeakerInfo{RenewTime: sweepNow.Add(-time.Minute), LeaseDuration: 2500 * time.Millisecond}}
}

// TestSweeperOf: every speaker picks the same live node whatever the order, never a dead
// one, and the choice only changes when the chosen node dies.
func TestSweeperOf(t *testing.T) {
	nodes := []*framework.NodeInfo{alive("node-a"), alive("node-b"), alive("node-c"), dead("node-d"), {Name: "no-speaker"}}
	first := sweeperOf(nodes, sweepNow)
	if first == "" || first == "node-d" || first == "no-speaker" {
		t.Fatalf("sweeper %q, want a live node", first)
	}
	rev := slices.Clone(nodes)
	slices.Reverse(rev)
	if got := sweeperOf(rev, sweepNow); got != first {
		t.Errorf("order changed the sweeper: %q then %q", first, got)
	}
	for i, n := range nodes {
		if n.Name == first {
			nodes[i] = dead(first)
		}
	}
	if second := sweeperOf(nodes, sweepNow); second == "" || second == first {
		t.Errorf("with %s dead the sweeper is %q", first, second)
	}
	if got := sweeperOf([]*framework.NodeInfo{dead("x"), {Name: "y"}}, sweepNow); got != "" {
		t.Errorf("no live node: sweeper %q", got)
	}
}

// TestSweep: the sweeper deletes the status objects of nodes whose heartbeat lapsed or that
// left the cluster, in whatever namespace they are, and keeps those of live nodes and of
// nodes that never ran a Herald speaker; any other speaker deletes nothing, nor does the
// sweeper while its own view is stale.
func TestSweep(t *testing.T) {
	nodes := []*framework.NodeInfo{alive("node-a"), alive("node-b"), dead("node-dead"), {Name: "metallb-only"}}
	sweeper := sweeperOf(nodes, sweepNow)
	other := "node-a"
	if sweeper == other {
		other = "node-b"
	}
	l2 := func(ns, name, node string) *metallbv1beta1.ServiceL2Status {
		return &metallbv1beta1.ServiceL2Status{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, UID: types.UID("uid-" + name)},
			Status: metallbv1beta1.MetalLBServiceL2Status{Node: node}}
	}
	bgp := func(ns, name, node string) *metallbv1beta1.ServiceBGPStatus {
		return &metallbv1beta1.ServiceBGPStatus{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, UID: types.UID("uid-" + name)},
			Status: metallbv1beta1.MetalLBServiceBGPStatus{Node: node}}
	}
	l2s := []*metallbv1beta1.ServiceL2Status{l2("apps", "l2-live", "node-a"), l2("apps", "l2-dead", "node-dead"), l2("other", "l2-metallb", "metallb-only")}
	bgps := []*metallbv1beta1.ServiceBGPStatus{bgp("apps", "bgp-live", "node-b"), bgp("apps", "bgp-dead", "node-dead"),
		bgp("elsewhere", "bgp-gone", "node-deleted"), bgp("other", "bgp-metallb", "metallb-only")}
	for _, c := range []struct {
		name   string
		self   string
		mayAct bool
		want   []string // remaining objects
	}{
		{"sweeper", sweeper, true, []string{"bgp-live", "bgp-metallb", "l2-live", "l2-metallb"}},
		{"another speaker", other, true, []string{"bgp-dead", "bgp-gone", "bgp-live", "bgp-metallb", "l2-dead", "l2-live", "l2-metallb"}},
		{"sweeper with a stale view", sweeper, false, []string{"bgp-dead", "bgp-gone", "bgp-live", "bgp-metallb", "l2-dead", "l2-live", "l2-metallb"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			client := fake.NewSimpleClientset()
			l2Idx := cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{})
			bgpIdx := cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{})
			_, ctx := ktesting.NewTestContext(t)
			for _, o := range l2s {
				_ = l2Idx.Add(o)
				if _, err := client.MetallbV1beta1().ServiceL2Statuses(o.Namespace).Create(ctx, o, metav1.CreateOptions{}); err != nil {
					t.Fatal(err)
				}
			}
			for _, o := range bgps {
				_ = bgpIdx.Add(o)
				if _, err := client.MetallbV1beta1().ServiceBGPStatuses(o.Namespace).Create(ctx, o, metav1.CreateOptions{}); err != nil {
					t.Fatal(err)
				}
			}
			w := &staleSweeper{self: c.self, client: client.MetallbV1beta1(),
				l2: metallblisters.NewServiceL2StatusLister(l2Idx), bgp: metallblisters.NewServiceBGPStatusLister(bgpIdx),
				snapshot: func(time.Time) *framework.Snapshot { return framework.NewSnapshot(sweepNow, nodes) },
				mayAct:   func() bool { return c.mayAct }}
			if err := w.sweep(ctx); err != nil {
				t.Fatal(err)
			}
			var left []string
			l2List, _ := client.MetallbV1beta1().ServiceL2Statuses("").List(ctx, metav1.ListOptions{})
			for _, o := range l2List.Items {
				left = append(left, o.Name)
			}
			bgpList, _ := client.MetallbV1beta1().ServiceBGPStatuses("").List(ctx, metav1.ListOptions{})
			for _, o := range bgpList.Items {
				left = append(left, o.Name)
			}
			slices.Sort(left)
			if !slices.Equal(left, c.want) {
				t.Errorf("left %v, want %v", left, c.want)
			}
		})
	}
}
