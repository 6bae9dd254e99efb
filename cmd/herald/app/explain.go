package app

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/go-logr/logr"
	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	metallbclient "github.com/herald-lb/herald/config/metallb/client/clientset/versioned"
	"github.com/herald-lb/herald/controller"
	"github.com/herald-lb/herald/framework"
	"github.com/herald-lb/herald/speaker"
)

// Explanation is what `herald explain -o json` prints: one Diagnosis per unit of the Service.
type Explanation struct {
	Service string `json:"service"`
	// Message is set when the Service is not scheduled (no IP yet, another class).
	Message string `json:"message,omitempty"`
	// Reason is the controller's reason for a Service without an IP (its
	// herald.dev/AddressAllocated condition: PoolExhausted, PortConflict, …), when it gave one.
	Reason string                 `json:"reason,omitempty"`
	Units  []*framework.Diagnosis `json:"units"`
	// Filters are the profile's filters in order, per unit, so a reader can tell the filters
	// that passed from the ones that did not run.
	Filters map[string][]string `json:"filters,omitempty"`
}

func newExplainCommand(o *options) *cobra.Command {
	var configPath, kubeconfig, output string
	var ns namespaces
	cmd := &cobra.Command{
		Use:   "explain NAMESPACE/SERVICE",
		Short: "Show which node announces each IP of a Service, and why",
		Long: "Explain runs the speakers' scheduling cycle (without binding) against the live cluster with\n" +
			"the same configuration file, and prints for each IP of the Service every node with each\n" +
			"filter's verdict, each score raw and weighted, the total, the winner and the summary line.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			svcNS, name, ok := strings.Cut(args[0], "/")
			if !ok || svcNS == "" || name == "" {
				return fmt.Errorf("want NAMESPACE/SERVICE, got %q", args[0])
			}
			if output != "table" && output != "json" {
				return fmt.Errorf("--output: want table or json, got %q", output)
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), 30*time.Second)
			defer cancel()
			exp, err := explain(ctx, o, configPath, kubeconfig, ns, svcNS, name)
			if err != nil {
				return err
			}
			if output == "json" {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(exp)
			}
			printExplanation(cmd.OutOrStdout(), exp)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&configPath, "config", "", "the speakers' SpeakerConfiguration file (default: the default configuration)")
	f.StringVar(&kubeconfig, "kubeconfig", "", "kubeconfig file (default: in-cluster or $KUBECONFIG)")
	f.StringVarP(&output, "output", "o", "table", "output format: table or json")
	ns.addFlags(f)
	return cmd
}

// NewKubectlHeraldCommand returns the root command of the kubectl plugin kubectl-herald,
// which runs `kubectl herald explain NAMESPACE/SERVICE`.
func NewKubectlHeraldCommand(opts ...Option) *cobra.Command {
	o := &options{}
	for _, opt := range opts {
		opt(o)
	}
	cmd := &cobra.Command{Use: "kubectl-herald", Short: "Herald's kubectl plugin", SilenceUsage: true}
	cmd.AddCommand(newExplainCommand(o))
	cmd.AddCommand(newDiagCommand(o))
	cmd.AddCommand(newMigrateCommand(o))
	return cmd
}

func explain(ctx context.Context, o *options, configPath, kubeconfig string, nss namespaces, ns, name string) (*Explanation, error) {
	c, _, err := loadSpeakerConfig(o, configPath)
	if err != nil {
		return nil, err
	}
	nss.apply(c)
	opts, err := speakerConfigOptions(o)
	if err != nil {
		return nil, err
	}
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
	svc, err := client.CoreV1().Services(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return nil, fmt.Errorf("service %s/%s: %w", ns, name, err)
	}
	exp := &Explanation{Service: ns + "/" + name, Units: []*framework.Diagnosis{}, Filters: map[string][]string{}}
	var ips []netip.Addr
	for _, ing := range svc.Status.LoadBalancer.Ingress {
		if ip, err := netip.ParseAddr(ing.IP); err == nil {
			ips = append(ips, ip.Unmap())
		}
	}
	if len(ips) == 0 {
		exp.Message, exp.Reason = whyNoIP(svc)
		return exp, nil
	}
	b, err := speaker.ListBuilder(ctx, client, mlb, c.Heartbeat.Namespace, c.ConfigNamespace)
	if err != nil {
		return nil, err
	}
	snap := b.Snapshot(time.Now())
	specs, err := c.ProfileSpecs(opts.Registry)
	if err != nil {
		return nil, err
	}
	for _, ip := range ips {
		for _, u := range b.UnitsFor(ip) {
			p, ok := c.ProfileFor(u.Class)
			if !ok {
				exp.Message = fmt.Sprintf("spec.loadBalancerClass %q is not handled by this configuration: Herald leaves the Service alone", u.Class)
				continue
			}
			var spec framework.ProfileSpec
			for _, s := range specs {
				if s.Name == p.Name {
					spec = s
				}
			}
			spec.Bind = nil
			fw, err := framework.NewFramework(opts.Registry, spec, framework.NewHandle(logr.Discard()))
			if err != nil {
				return nil, err
			}
			res := fw.Schedule(ctx, snap, u)
			exp.Units = append(exp.Units, res.Diagnosis())
			exp.Filters[u.Key()] = spec.Filter
		}
	}
	return exp, nil
}

// whyNoIP says why a Service has no load-balancer IP, from what the controller wrote on it: its
// refusal (the herald.dev/AddressAllocated condition), or that it has not handled it.
func whyNoIP(svc *corev1.Service) (message, reason string) {
	id := svc.Namespace + "/" + svc.Name
	if svc.Spec.Type != corev1.ServiceTypeLoadBalancer {
		return fmt.Sprintf("service %s is of type %s, not LoadBalancer: it gets no load-balancer IP", id, svc.Spec.Type), ""
	}
	cond := meta.FindStatusCondition(svc.Status.Conditions, controller.ConditionAddressAllocated)
	switch {
	case cond == nil:
		return fmt.Sprintf("service %s has no load-balancer IP: the controller has not handled it yet (no %s condition; is `herald controller` running and leading, and does it own this Service's loadBalancerClass?)",
			id, controller.ConditionAddressAllocated), ""
	case cond.Status == metav1.ConditionFalse:
		return fmt.Sprintf("service %s has no load-balancer IP: the controller refused it: %s: %s", id, cond.Reason, cond.Message), cond.Reason
	default:
		return fmt.Sprintf("service %s has no load-balancer IP in its status although its %s condition is %s (%s: %s): the controller's write is still on its way",
			id, controller.ConditionAddressAllocated, cond.Status, cond.Reason, cond.Message), cond.Reason
	}
}

func printExplanation(w io.Writer, exp *Explanation) {
	fmt.Fprintf(w, "Service %s\n", exp.Service)
	if exp.Message != "" {
		fmt.Fprintln(w, exp.Message)
	}
	for _, d := range exp.Units {
		fmt.Fprintf(w, "\nIP %s (%s, profile %q)\n", d.IP, d.Mode, d.Profile)
		for _, v := range d.PreFilter {
			fmt.Fprintf(w, "  prefilter %s: %s %s\n", v.Plugin, v.Code, strings.Join(v.Reasons, ", "))
		}
		filters := exp.Filters[d.Unit]
		var scoreNames []string
		for _, n := range d.Nodes {
			if len(n.Scores) > 0 {
				for _, s := range n.Scores {
					scoreNames = append(scoreNames, fmt.Sprintf("%s(x%d)", s.Plugin, s.Weight))
				}
				break
			}
		}
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		header := append([]string{"NODE"}, filters...)
		header = append(header, scoreNames...)
		header = append(header, "TOTAL", "WINNER")
		fmt.Fprintln(tw, strings.Join(header, "\t"))
		for _, n := range d.Nodes {
			row := []string{n.Name}
			ran := true
			for _, f := range filters {
				switch {
				case skipped(d, f):
					row = append(row, "skip")
				case !ran:
					row = append(row, "-")
				case n.Rejection != nil && n.Rejection.Plugin == f:
					row = append(row, "FAIL")
					ran = false
				default:
					row = append(row, "ok")
				}
			}
			if n.Feasible && len(n.Scores) > 0 {
				for _, s := range n.Scores {
					row = append(row, fmt.Sprintf("%d→%d", s.Raw, s.Weighted))
				}
			} else {
				for range scoreNames {
					row = append(row, "-")
				}
			}
			total, winner := "-", ""
			if n.Feasible {
				total = fmt.Sprint(n.Total)
			}
			if n.Selected {
				winner = "*"
			}
			row = append(row, total, winner)
			fmt.Fprintln(tw, strings.Join(row, "\t"))
		}
		_ = tw.Flush()
		for _, n := range d.Nodes {
			if r := n.Rejection; r != nil {
				msg := strings.Join(r.Reasons, ", ")
				if r.Detail != "" {
					msg += ": " + r.Detail
				}
				fmt.Fprintf(w, "  %s: %s: %s\n", n.Name, r.Plugin, msg)
			}
		}
		if d.Error != "" {
			fmt.Fprintf(w, "error: %s\n", d.Error)
		}
		fmt.Fprintf(w, "summary: %s\n", d.Summary)
	}
}

func skipped(d *framework.Diagnosis, plugin string) bool {
	for _, v := range d.PreFilter {
		if v.Plugin == plugin && v.Code == framework.Skip.String() {
			return true
		}
	}
	return false
}
