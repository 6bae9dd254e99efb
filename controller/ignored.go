package controller

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/metadata/metadatainformer"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/klog/v2"

	"github.com/herald-lb/herald/config/metallb"
)

// ReasonIgnoredConfiguration is the Warning Event reason on a metallb.io configuration object
// outside Herald's configuration namespace.
const ReasonIgnoredConfiguration = "IgnoredConfiguration"

// ignoredConfig reports the metallb.io configuration objects Herald ignores because they are
// outside its configuration namespace (MetalLB's pools left in metallb-system when Herald runs
// in its own namespace): while this replica leads, each gets one Warning Event, so an operator
// learns why those pools and advertisements do nothing instead of guessing. It watches object
// metadata only, cluster-wide, for the kinds the API server serves (a kind whose CRD is missing
// is skipped rather than retried in a loop).
type ignoredConfig struct {
	namespace string
	recorder  record.EventRecorder
	leading   func() bool

	mu sync.Mutex
	// objects are the ignored objects seen, by kind/namespace/name.
	objects map[string]*corev1.ObjectReference
	// reported holds the objects reported during the current leadership.
	reported map[string]bool
}

// watchIgnoredConfig starts the metadata informers and the reporting loop; the returned
// function stops the informers.
func (c *controller) watchIgnoredConfig(ctx context.Context, cfg *rest.Config) (func(), error) {
	mc, err := metadata.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("metadata client: %w", err)
	}
	ig := &ignoredConfig{namespace: c.opts.configNamespace(), recorder: c.recorder, leading: c.readiness.isLeading,
		objects: map[string]*corev1.ObjectReference{}, reported: map[string]bool{}}
	served := servedConfigResources(c.client.Discovery())
	f := metadatainformer.NewSharedInformerFactory(mc, 0)
	for _, r := range metallb.ConfigResources {
		if !served[r.Resource.String()] {
			continue
		}
		if _, err := f.ForResource(r.Resource).Informer().AddEventHandler(ig.handler(r)); err != nil {
			return nil, err
		}
	}
	f.Start(ctx.Done())
	go ig.run(ctx, time.Second)
	return f.Shutdown, nil
}

// servedConfigResources returns the configuration resources the API server serves, by
// GroupVersionResource string. A discovery error leaves a group version out; the CRD check
// and diag report missing CRDs.
func servedConfigResources(d discovery.DiscoveryInterface) map[string]bool {
	out := map[string]bool{}
	for _, r := range metallb.ConfigResources {
		gv := r.Resource.GroupVersion()
		l, err := d.ServerResourcesForGroupVersion(gv.String())
		if err != nil {
			continue
		}
		for _, ar := range l.APIResources {
			if ar.Name == r.Resource.Resource {
				out[r.Resource.String()] = true
			}
		}
	}
	return out
}

func (ig *ignoredConfig) handler(r metallb.ConfigResource) cache.ResourceEventHandler {
	set := func(obj any) {
		m, ok := obj.(*metav1.PartialObjectMetadata)
		if !ok || m.Namespace == ig.namespace {
			return
		}
		ref := &corev1.ObjectReference{Kind: r.Kind, APIVersion: r.APIVersion(), Namespace: m.Namespace, Name: m.Name, UID: m.UID}
		ig.mu.Lock()
		defer ig.mu.Unlock()
		key := r.Kind + "/" + m.Namespace + "/" + m.Name
		if old, ok := ig.objects[key]; ok && old.UID != m.UID {
			delete(ig.reported, key) // recreated: a new object to report
		}
		ig.objects[key] = ref
	}
	del := func(obj any) {
		if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
			obj = d.Obj
		}
		if m, ok := obj.(*metav1.PartialObjectMetadata); ok {
			key := r.Kind + "/" + m.Namespace + "/" + m.Name
			ig.mu.Lock()
			delete(ig.objects, key)
			delete(ig.reported, key)
			ig.mu.Unlock()
		}
	}
	return cache.ResourceEventHandlerFuncs{AddFunc: set, UpdateFunc: func(_, obj any) { set(obj) }, DeleteFunc: del}
}

// run reports, every interval while leading, the ignored objects not reported yet in this
// leadership; a replica that stops leading forgets what it reported, so the next leader (or
// this one again) reports everything once more.
func (ig *ignoredConfig) run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		ig.report(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (ig *ignoredConfig) report(ctx context.Context) {
	ig.mu.Lock()
	defer ig.mu.Unlock()
	if !ig.leading() {
		clear(ig.reported)
		return
	}
	keys := make([]string, 0, len(ig.objects))
	for k := range ig.objects {
		if !ig.reported[k] {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		ref := ig.objects[k]
		ig.recorder.Event(ref, corev1.EventTypeWarning, ReasonIgnoredConfiguration, IgnoredMessage(ref.Kind, ref.Namespace, ref.Name, ig.namespace))
		klog.FromContext(ctx).Info("Ignoring a metallb.io object outside the configuration namespace", "kind", ref.Kind, "object", klog.KRef(ref.Namespace, ref.Name), "configNamespace", ig.namespace)
		ig.reported[k] = true
	}
}

// IgnoredMessage says why a configuration object is ignored and what to do; the Event, diag
// and `herald migrate check` use the same words.
func IgnoredMessage(kind, namespace, name, configNamespace string) string {
	return fmt.Sprintf("%s %s/%s is ignored: Herald reads its metallb.io configuration from namespace %q only. "+
		"Move the object to %q, or point Herald at %q (controller --config-namespace, speaker configNamespace, chart value configNamespace)",
		kind, namespace, name, configNamespace, configNamespace, namespace)
}

// isLeading reports whether this replica leads now.
func (r *readiness) isLeading() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.leading
}
