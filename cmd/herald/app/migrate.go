package app

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/go-logr/logr"
	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/herald-lb/herald/announcers"
	"github.com/herald-lb/herald/config"
	metallbclient "github.com/herald-lb/herald/config/metallb/client/clientset/versioned"
	metallbv1beta1 "github.com/herald-lb/herald/config/metallb/v1beta1"
	"github.com/herald-lb/herald/controller"
	"github.com/herald-lb/herald/diag"
	"github.com/herald-lb/herald/framework"
	"github.com/herald-lb/herald/snapshot"
	"github.com/herald-lb/herald/speaker"
)

// MigrateAPIVersion versions the JSON form of `herald migrate check`; fields are only added.
const MigrateAPIVersion = "herald.dev/migrate/v1"

// MigrationReport is what `herald migrate check -o json` prints.
type MigrationReport struct {
	APIVersion      string `json:"apiVersion"`
	Namespace       string `json:"namespace"`
	ConfigNamespace string `json:"configNamespace"`
	// Services has one entry per LoadBalancer Service, sorted by namespace/name.
	Services []ServicePlan `json:"services"`
	// Settings are the MetalLB settings Herald treats differently that this cluster uses.
	Settings []SettingNote `json:"settings"`
	Summary  struct {
		Services int `json:"services"`
		Owned    int `json:"owned"`
		// KeepIP counts owned Services with addresses that keep every one of them; Lose
		// those that would not; Pending those without an address now.
		KeepIP  int `json:"keepIP"`
		Lose    int `json:"lose"`
		Pending int `json:"pending"`
		// Unannounced counts owned Services with addresses that no node would announce.
		Unannounced int `json:"unannounced"`
	} `json:"summary"`
}

// ServicePlan is what Herald will do with one LoadBalancer Service.
type ServicePlan struct {
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	Class     string `json:"class"`
	// Owned: Herald handles the Service (its loadBalancerClass, or none with handleNoClass).
	Owned bool     `json:"owned"`
	IPs   []string `json:"ips"`
	// AnnotatedPool is the metallb.io/ip-allocated-from-pool annotation, which Herald does not
	// trust (the pool is derived from the address).
	AnnotatedPool string `json:"annotatedPool,omitempty"`
	// KeepsIP: the controller takes every current address back as it is.
	KeepsIP bool `json:"keepsIP"`
	// Pool holds the addresses; "" when no pool of the configuration namespace does.
	Pool string `json:"pool"`
	// Advertisements cover the Service's addresses ("L2/<name>", "BGP/<name>").
	Advertisements []string `json:"advertisements"`
	// Announcers are, per address, how and from where it will be announced
	// ("192.0.2.10 L2 arp from node-1"), or why nothing will announce it.
	Announcers []string `json:"announcers"`
	// Announced: every address has a node that announces it.
	Announced bool `json:"announced"`
	// Notes say what else to know (why an address is not kept, an annotation naming
	// another pool).
	Notes []string `json:"notes"`
}

// SettingNote is a MetalLB setting Herald treats differently, where this cluster uses it.
type SettingNote struct {
	Setting string   `json:"setting"`
	Found   []string `json:"found"`
	Herald  string   `json:"herald"`
}

func newMigrateCommand(o *options) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "migrate",
		Short: "Plan a move from MetalLB to Herald",
		Args:  cobra.NoArgs,
	}
	cmd.AddCommand(newMigrateCheckCommand(o))
	return cmd
}

func newMigrateCheckCommand(o *options) *cobra.Command {
	var configPath, kubeconfig, output string
	var ns namespaces
	ctrl := controller.DefaultOptions()
	cmd := &cobra.Command{
		Use:   "check",
		Short: "Say, read-only, what Herald will do with every LoadBalancer Service and every MetalLB setting it treats differently",
		Long: `Check reads the cluster (nothing is written) and reports, for every LoadBalancer Service,
whether Herald keeps its current address (the controller's own rebuild rule), which pool and
advertisement cover it, and what will announce it (the speakers' scheduling cycle, as
` + "`herald explain`" + ` runs it; a node is named only where speakers run, so run it again once
Herald is installed beside MetalLB). Then, for every MetalLB setting Herald treats differently
that the cluster uses, what happens. Give the flags and configuration file Herald is (or will
be) installed with: --namespace, --config-namespace (the chart's configNamespace), --config
(the speaker ConfigMap's config.yaml), --load-balancer-class and --handle-no-class.
docs/migration.md walks through a migration.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if output != "table" && output != "json" {
				return fmt.Errorf("--output: want table or json, got %q", output)
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), 60*time.Second)
			defer cancel()
			r, err := migrateCheck(ctx, o, configPath, kubeconfig, ns, ctrl)
			if err != nil {
				return err
			}
			if output == "json" {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(r)
			}
			printMigration(cmd.OutOrStdout(), r)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&configPath, "config", "", "the speakers' SpeakerConfiguration file (default: the default configuration)")
	f.StringVar(&kubeconfig, "kubeconfig", "", "kubeconfig file (default: in-cluster or $KUBECONFIG)")
	f.StringVarP(&output, "output", "o", "table", "output format: table or json")
	f.StringVar(&ctrl.LoadBalancerClass, "load-balancer-class", ctrl.LoadBalancerClass, "spec.loadBalancerClass Herald handles (as the controller's flag)")
	f.BoolVar(&ctrl.HandleNoClass, "handle-no-class", ctrl.HandleNoClass, "Herald also handles Services without spec.loadBalancerClass (as the controller's flag)")
	ns.addFlags(f)
	return cmd
}

func migrateCheck(ctx context.Context, o *options, configPath, kubeconfig string, nss namespaces, ctrl controller.Options) (*MigrationReport, error) {
	c, opts, err := loadSpeakerConfig(o, configPath)
	if err != nil {
		return nil, err
	}
	nss.apply(c)
	rc, err := restConfig(kubeconfig)
	if err != nil {
		return nil, err
	}
	client, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return nil, err
	}
	mlb, err := metallbclient.NewForConfig(rc)
	if err != nil {
		return nil, err
	}
	return checkMigration(ctx, c, opts.Registry, client, mlb, ctrl)
}

// checkMigration builds the report from the cluster the clients read, for the speaker
// configuration c and the controller's options ctrl.
func checkMigration(ctx context.Context, c *config.SpeakerConfiguration, reg framework.Registry, client kubernetes.Interface, mlb metallbclient.Interface, ctrl controller.Options) (*MigrationReport, error) {
	cl := diag.Gather(ctx, diag.Clients{Kube: client, MetalLB: mlb}, diag.Options{Namespace: c.Heartbeat.Namespace,
		ConfigNamespace: c.ConfigNamespace, LoadBalancerClass: ctrl.LoadBalancerClass, HandleNoClass: ctrl.HandleNoClass})
	if len(cl.Errors) > 0 {
		var msgs []string
		for _, e := range cl.Errors {
			msgs = append(msgs, e.Resource+": "+e.Err.Error())
		}
		return nil, fmt.Errorf("reading the cluster: %s", strings.Join(msgs, "; "))
	}
	b, err := speaker.ListBuilder(ctx, client, mlb, c.Heartbeat.Namespace, c.ConfigNamespace)
	if err != nil {
		return nil, err
	}
	nsLabels := map[string]map[string]string{}
	if l, err := client.CoreV1().Namespaces().List(ctx, metav1.ListOptions{}); err == nil {
		for _, n := range l.Items {
			nsLabels[n.Name] = n.Labels
		}
	}
	ctrl.ConfigNamespace = c.ConfigNamespace
	pools := make([]*metallbv1beta1.IPAddressPool, 0, len(cl.Pools))
	for i := range cl.Pools {
		pools = append(pools, &cl.Pools[i])
	}
	kept := controller.PredictKept(ctrl, pools, cl.Services, func(ns string) map[string]string { return nsLabels[ns] })
	sched, err := newScheduler(c, reg)
	if err != nil {
		return nil, err
	}
	r := &MigrationReport{APIVersion: MigrateAPIVersion, Namespace: c.Heartbeat.Namespace, ConfigNamespace: c.ConfigNamespace,
		Services: []ServicePlan{}, Settings: []SettingNote{}}
	snap := b.Snapshot(time.Now())
	for i := range cl.Services {
		svc := &cl.Services[i]
		if svc.Spec.Type != corev1.ServiceTypeLoadBalancer {
			continue
		}
		p := planService(ctx, svc, kept[svc.Namespace+"/"+svc.Name], b, snap, sched, c)
		r.Services = append(r.Services, p)
	}
	sort.Slice(r.Services, func(i, j int) bool {
		a, b := r.Services[i], r.Services[j]
		return a.Namespace+"/"+a.Name < b.Namespace+"/"+b.Name
	})
	r.Settings = settingNotes(ctx, client, cl, c, r.Services)
	summarize(r)
	return r, nil
}

// scheduler runs the speakers' cycle (without binding) for a unit with its profile.
type scheduler struct {
	c   *config.SpeakerConfiguration
	fws map[string]*framework.Framework
}

func newScheduler(c *config.SpeakerConfiguration, reg framework.Registry) (*scheduler, error) {
	specs, err := c.ProfileSpecs(reg)
	if err != nil {
		return nil, err
	}
	s := &scheduler{c: c, fws: map[string]*framework.Framework{}}
	for _, spec := range specs {
		spec.Bind = nil
		fw, err := framework.NewFramework(reg, spec, framework.NewHandle(logr.Discard()))
		if err != nil {
			return nil, err
		}
		s.fws[spec.Name] = fw
	}
	return s, nil
}

func (s *scheduler) schedule(ctx context.Context, snap *framework.Snapshot, u *framework.Unit) (*framework.Diagnosis, bool) {
	p, ok := s.c.ProfileFor(u.Class)
	if !ok {
		return nil, false
	}
	res := s.fws[p.Name].Schedule(ctx, snap, u)
	defer res.Release()
	return res.Diagnosis(), true
}

func planService(ctx context.Context, svc *corev1.Service, k controller.Kept, b *snapshot.Builder, snap *framework.Snapshot, sched *scheduler, c *config.SpeakerConfiguration) ServicePlan {
	p := ServicePlan{Namespace: svc.Namespace, Name: svc.Name, Owned: k.Owned, IPs: []string{}, Advertisements: []string{}, Announcers: []string{}, Notes: []string{},
		AnnotatedPool: svc.Annotations[controller.AnnotationAllocatedFromPool], KeepsIP: k.Kept, Pool: k.Pool}
	if svc.Spec.LoadBalancerClass != nil {
		p.Class = *svc.Spec.LoadBalancerClass
	}
	for _, ip := range k.IPs {
		p.IPs = append(p.IPs, ip.String())
	}
	switch {
	case !k.Owned:
		p.Notes = append(p.Notes, fmt.Sprintf("spec.loadBalancerClass %q is not Herald's: Herald leaves the Service alone", p.Class))
		return p
	case len(k.IPs) == 0:
		p.Notes = append(p.Notes, "no address now: the controller allocates one")
		return p
	case !k.Kept:
		p.Notes = append(p.Notes, "not kept as is: "+k.Reason)
	case k.Reason != "":
		p.Notes = append(p.Notes, "kept, and reported (condition, Event, diag) until an operator decides: "+k.Reason)
	}
	if p.AnnotatedPool != "" && k.Pool != "" && p.AnnotatedPool != k.Pool {
		p.Notes = append(p.Notes, fmt.Sprintf("annotation %s names pool %q but the address is in pool %q: Herald uses %q and rewrites the annotation",
			controller.AnnotationAllocatedFromPool, p.AnnotatedPool, k.Pool, k.Pool))
	}
	p.Announced = true
	for _, ip := range k.IPs {
		units := b.UnitsFor(ip)
		announced := false
		for _, u := range units {
			for _, a := range u.Covering() {
				if name := string(a.Mode) + "/" + a.Name; !slices.Contains(p.Advertisements, name) {
					p.Advertisements = append(p.Advertisements, name)
				}
			}
			line, ok := announceLine(ctx, ip, u, snap, sched, c)
			p.Announcers = append(p.Announcers, line)
			announced = announced || ok
		}
		if len(units) == 0 {
			p.Announcers = append(p.Announcers, ip.String()+": nothing (the speakers do not see the Service)")
		}
		p.Announced = p.Announced && announced
	}
	slices.Sort(p.Advertisements)
	return p
}

// announceLine says how ip will be announced in the unit's mode, and whether it will be.
func announceLine(ctx context.Context, ip netip.Addr, u *framework.Unit, snap *framework.Snapshot, sched *scheduler, c *config.SpeakerConfiguration) (string, bool) {
	prefix := fmt.Sprintf("%s %s", ip, u.Mode)
	if len(u.Covering()) == 0 {
		return prefix + ": nothing: no advertisement covers pool " + quoteOrNone(u.Pool), false
	}
	kind := announcers.KindBGP
	if u.Mode == framework.ModeL2 {
		kind = announcers.KindNDP
		if ip.Is4() {
			kind = announcers.KindARP
		}
	}
	if !slices.ContainsFunc(c.Announcers, func(a config.Announcer) bool { return a.Name == kind }) {
		return fmt.Sprintf("%s: nothing: the %s announcer is not in the speaker configuration's announcers", prefix, kind), false
	}
	d, ok := sched.schedule(ctx, snap, u)
	if !ok {
		return prefix + ": nothing: no profile of the speaker configuration handles class " + quoteOrNone(u.Class), false
	}
	if len(d.Selected) == 0 {
		return fmt.Sprintf("%s %s: no node now: %s", prefix, kind, d.Summary), false
	}
	return fmt.Sprintf("%s %s from %s", prefix, kind, strings.Join(d.Selected, ", ")), true
}

func quoteOrNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return fmt.Sprintf("%q", s)
}

func summarize(r *MigrationReport) {
	for _, s := range r.Services {
		r.Summary.Services++
		if !s.Owned {
			continue
		}
		r.Summary.Owned++
		switch {
		case len(s.IPs) == 0:
			r.Summary.Pending++
		case s.KeepsIP:
			r.Summary.KeepIP++
		default:
			r.Summary.Lose++
		}
		if len(s.IPs) > 0 && !s.Announced {
			r.Summary.Unannounced++
		}
	}
}

// settingNotes lists the MetalLB settings Herald treats differently that this cluster uses.
func settingNotes(ctx context.Context, client kubernetes.Interface, cl *diag.Cluster, c *config.SpeakerConfiguration, plans []ServicePlan) []SettingNote {
	var out []SettingNote
	add := func(setting, herald string, found []string) {
		if len(found) > 0 {
			out = append(out, SettingNote{Setting: setting, Found: found, Herald: herald})
		}
	}
	var ignored []string
	for _, o := range cl.Ignored {
		ignored = append(ignored, o.String())
	}
	add("metallb.io configuration outside the configuration namespace", fmt.Sprintf(
		"ignored, never merged: Herald reads its configuration from namespace %s only; each object gets a Warning Event %s and a herald diag finding config.ignored",
		c.ConfigNamespace, controller.ReasonIgnoredConfiguration), ignored)

	var annotated []string
	for _, p := range plans {
		if p.AnnotatedPool != "" && p.Pool != "" && p.AnnotatedPool != p.Pool {
			annotated = append(annotated, fmt.Sprintf("Service/%s/%s names %q, its address is in %q", p.Namespace, p.Name, p.AnnotatedPool, p.Pool))
		}
	}
	add("metallb.io/ip-allocated-from-pool annotation", "not trusted: the pool (and so the advertisement, interfaces and BGP peers) is derived from the address; the controller rewrites the annotation", annotated)

	var statuses []string
	for _, s := range cl.L2Statuses {
		if s.Namespace != c.Heartbeat.Namespace {
			statuses = append(statuses, "ServiceL2Status/"+s.Namespace+"/"+s.Name)
		}
	}
	for _, s := range cl.BGPStatuses {
		if s.Namespace != c.Heartbeat.Namespace {
			statuses = append(statuses, "ServiceBGPStatus/"+s.Namespace+"/"+s.Name)
		}
	}
	add("ServiceL2Status / ServiceBGPStatus objects", fmt.Sprintf(
		"Herald writes its own in namespace %s with MetalLB's labels (metallb.io/node, metallb.io/service-name, metallb.io/service-namespace), named l2-<namespace>.<service>; objects elsewhere are not Herald's (MetalLB's are deleted with its speaker pods)",
		c.Heartbeat.Namespace), statuses)

	var l2NoInterfaces []string
	for _, a := range cl.L2Advertisements {
		if len(a.Spec.Interfaces) == 0 {
			l2NoInterfaces = append(l2NoInterfaces, "L2Advertisement/"+a.Namespace+"/"+a.Name)
		}
	}
	add("L2Advertisement without spec.interfaces", "announced from the interfaces whose subnet contains the address (Interfaces plugin, requireSubnet: true), where MetalLB answers on every interface; set requireSubnet: false in the profile for MetalLB's behaviour", l2NoInterfaces)

	var cordoned []string
	for _, n := range cl.Nodes {
		if n.Spec.Unschedulable {
			cordoned = append(cordoned, "Node/"+n.Name)
		}
	}
	add("cordoned nodes", "do not announce (NodeReady excludeCordoned: true, chart speaker.excludeCordoned); MetalLB announces from them", cordoned)

	hasBGP := slices.ContainsFunc(c.Announcers, func(a config.Announcer) bool { return a.Name == announcers.KindBGP })
	if !hasBGP {
		var peers []string
		for _, p := range cl.BGPPeers {
			peers = append(peers, "BGPPeer/"+p.Namespace+"/"+p.Name)
		}
		add("BGPPeers without the bgp announcer", "no BGP session is opened while the speaker configuration's announcers lack bgp (chart speaker.announcers: [arp, ndp, bgp])", peers)
	}

	var legacy []string
	for _, ns := range []string{c.ConfigNamespace, "metallb-system"} {
		cm, err := client.CoreV1().ConfigMaps(ns).Get(ctx, "config", metav1.GetOptions{})
		if err == nil && cm.Data["config"] != "" && !slices.Contains(legacy, "ConfigMap/"+ns+"/config") {
			legacy = append(legacy, "ConfigMap/"+ns+"/config")
		} else if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsForbidden(err) {
			legacy = append(legacy, fmt.Sprintf("ConfigMap/%s/config (could not read: %v)", ns, err))
		}
	}
	add("MetalLB's ConfigMap configuration (before v0.13)", "not read: convert it to IPAddressPool and L2Advertisement/BGPAdvertisement objects (MetalLB's configmaptocrs tool)", legacy)

	var foreign []string
	for _, p := range plans {
		if !p.Owned {
			foreign = append(foreign, fmt.Sprintf("Service/%s/%s (class %q)", p.Namespace, p.Name, p.Class))
		}
	}
	add("Services of another loadBalancerClass", "left alone: Herald neither allocates nor announces them", foreign)
	return out
}

func printMigration(w io.Writer, r *MigrationReport) {
	fmt.Fprintf(w, "Herald migration check: namespace %s, configuration from namespace %s\n", r.Namespace, r.ConfigNamespace)
	fmt.Fprintf(w, "%d LoadBalancer Services, %d Herald's: %d keep their addresses, %d would not, %d have none yet; %d would not be announced\n\n",
		r.Summary.Services, r.Summary.Owned, r.Summary.KeepIP, r.Summary.Lose, r.Summary.Pending, r.Summary.Unannounced)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SERVICE\tIPS\tKEEPS IP\tPOOL\tADVERTISEMENTS\tANNOUNCED BY")
	for _, s := range r.Services {
		keeps := "yes"
		switch {
		case !s.Owned:
			keeps = "not Herald's"
		case len(s.IPs) == 0:
			keeps = "-"
		case !s.KeepsIP:
			keeps = "NO"
		}
		fmt.Fprintf(tw, "%s/%s\t%s\t%s\t%s\t%s\t%s\n", s.Namespace, s.Name, dashIfEmpty(strings.Join(s.IPs, ",")), keeps,
			dashIfEmpty(s.Pool), dashIfEmpty(strings.Join(s.Advertisements, ",")), dashIfEmpty(strings.Join(s.Announcers, "; ")))
	}
	_ = tw.Flush()
	for _, s := range r.Services {
		for _, n := range s.Notes {
			fmt.Fprintf(w, "  %s/%s: %s\n", s.Namespace, s.Name, n)
		}
	}
	if len(r.Settings) == 0 {
		fmt.Fprintln(w, "\nNo MetalLB setting that Herald treats differently is in use.")
		return
	}
	fmt.Fprintln(w, "\nMetalLB settings Herald treats differently:")
	for _, s := range r.Settings {
		fmt.Fprintf(w, "- %s: %s\n", s.Setting, s.Herald)
		for _, f := range s.Found {
			fmt.Fprintf(w, "    %s\n", f)
		}
	}
}

func dashIfEmpty(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
