package app

import (
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/klog/v2"

	"github.com/herald-lb/herald/controller"
)

// newControllerCommand returns `herald controller`, the leader-elected role that allocates
// load-balancer addresses.
func newControllerCommand(_ *options) *cobra.Command {
	opts := controller.DefaultOptions()
	var kubeconfig string
	cmd := &cobra.Command{
		Use:   "controller",
		Short: "Assign addresses from IPAddressPools to LoadBalancer Services (leader-elected)",
		Long: `The controller gives every LoadBalancer Service it owns (no spec.loadBalancerClass, unless
--handle-no-class=false, or --load-balancer-class) its addresses from the metallb.io
IPAddressPools in --namespace, honouring MetalLB's annotations, and explains every refusal
with an Event and the herald.dev/AddressAllocated status condition. It serves /metrics,
/healthz and /readyz on --metrics-bind-address (docs/metrics.md lists the metrics).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
			if err != nil {
				return err
			}
			// Every line of the role names it, as the speaker's do (kube's idiom: the logger
			// travels in the context, klog.FromContext reads it).
			logger := klog.LoggerWithName(klog.Background(), "controller")
			tuneMemory(logger, 0)
			ctx, stop := signal.NotifyContext(klog.NewContext(cmd.Context(), logger), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			return controller.Run(ctx, cfg, opts)
		},
	}
	cmd.Flags().StringVar(&kubeconfig, "kubeconfig", "", "kubeconfig file; empty means in-cluster configuration")
	opts.AddFlags(cmd.Flags())
	return cmd
}
