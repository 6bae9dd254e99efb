package app

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"
	apiextensionsclient "k8s.io/apiextensions-apiserver/pkg/client/clientset/clientset"
	"k8s.io/client-go/kubernetes"

	metallbclient "github.com/herald-lb/herald/config/metallb/client/clientset/versioned"
	"github.com/herald-lb/herald/controller"
	"github.com/herald-lb/herald/diag"
)

// CriticalFindingsError is returned by `herald diag` when the report has critical findings,
// so the process exits non-zero after printing the whole report.
type CriticalFindingsError struct{ Count int }

func (e *CriticalFindingsError) Error() string {
	return fmt.Sprintf("%d critical finding(s)", e.Count)
}

func newDiagCommand(_ *options) *cobra.Command {
	o := diag.Options{Namespace: "herald-system", LoadBalancerClass: controller.DefaultLoadBalancerClass, HandleNoClass: true}
	var kubeconfig string
	var asJSON bool
	timeout := 60 * time.Second
	cmd := &cobra.Command{
		Use:   "diag",
		Short: "Check the health of Herald in the cluster and print findings with fixes and a score",
		Long: `Diag inspects the cluster once: metallb.io CRDs, Herald's controller and speaker pods and
heartbeats, nodes, IPAddressPools (size, used, free, exhaustion, overlap), advertisements,
BGP peers, every LoadBalancer Service, ServiceL2Status objects, and other load-balancer
implementations (kube-vip with svc_enable=true, MetalLB, foreign Services holding addresses
of Herald's pools). Each finding has a check ID, a severity, the object, a message and a fix;
the health score is 100 minus 20 per critical, 5 per warning and 1 per info finding (at most
50 with any critical finding). --json prints the stable format documented in docs/diag.md.

Exit status: 0 when no finding is critical, 1 when a finding is critical or diag could not
run (the report is printed in full first).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			cl, err := diagClients(kubeconfig)
			if err != nil {
				return err
			}
			r := diag.Run(diag.Gather(ctx, cl, o))
			if asJSON {
				err = r.WriteJSON(cmd.OutOrStdout())
			} else {
				err = r.WriteText(cmd.OutOrStdout())
			}
			if err != nil {
				return err
			}
			if r.HasCritical() {
				cmd.SilenceUsage = true
				return &CriticalFindingsError{Count: r.Summary.Critical}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVarP(&o.Namespace, "namespace", "n", o.Namespace, "Herald's namespace: its pods, heartbeat Leases and status objects")
	f.StringVar(&o.ConfigNamespace, "config-namespace", "", "namespace of the metallb.io configuration Herald reads (default: --namespace); configuration objects elsewhere are reported as ignored")
	f.StringVar(&o.LoadBalancerClass, "load-balancer-class", o.LoadBalancerClass, "spec.loadBalancerClass Herald handles (as the controller's flag)")
	f.BoolVar(&o.HandleNoClass, "handle-no-class", o.HandleNoClass, "Herald also handles Services without spec.loadBalancerClass (as the controller's flag)")
	f.BoolVar(&asJSON, "json", false, "print the report as JSON (stable format, see docs/diag.md)")
	f.StringVar(&kubeconfig, "kubeconfig", "", "kubeconfig file (default: in-cluster or $KUBECONFIG)")
	f.DurationVar(&timeout, "timeout", timeout, "give up listing after this long")
	return cmd
}

func diagClients(kubeconfig string) (diag.Clients, error) {
	rc, err := restConfig(kubeconfig)
	if err != nil {
		return diag.Clients{}, err
	}
	kube, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return diag.Clients{}, err
	}
	mlb, err := metallbclient.NewForConfig(rc)
	if err != nil {
		return diag.Clients{}, err
	}
	crds, err := apiextensionsclient.NewForConfig(rc)
	if err != nil {
		return diag.Clients{}, err
	}
	return diag.Clients{Kube: kube, MetalLB: mlb, CRDs: crds}, nil
}
