package app

import (
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/klog/v2"

	"github.com/herald-lb/herald/config"
	"github.com/herald-lb/herald/speaker"
	"github.com/herald-lb/herald/speaker/announce"
)

// speakerConfigOptions are the configuration options with the Announce bind plugin known,
// so that a profile may name it.
func speakerConfigOptions(o *options) (config.Options, error) {
	opts, err := o.ConfigOptions()
	if err != nil {
		return opts, err
	}
	if _, ok := opts.Registry[announce.Name]; !ok {
		if err := opts.Registry.Register(announce.Name, announce.PlaceholderRegistration()); err != nil {
			return opts, err
		}
	}
	return opts, nil
}

// loadSpeakerConfig loads the file, or the default configuration when path is empty.
func loadSpeakerConfig(o *options, path string) (*config.SpeakerConfiguration, config.Options, error) {
	opts, err := speakerConfigOptions(o)
	if err != nil {
		return nil, opts, err
	}
	if path == "" {
		c, err := config.Default(opts)
		return c, opts, err
	}
	c, err := config.Load(path, opts)
	return c, opts, err
}

func restConfig(kubeconfig string) (*rest.Config, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	if kubeconfig != "" {
		rules.ExplicitPath = kubeconfig
	}
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{}).ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("kubeconfig: %w", err)
	}
	return cfg, nil
}

func newSpeakerCommand(o *options) *cobra.Command {
	var (
		configPath   string
		kubeconfig   string
		nodeName     string
		holder       string
		announcerDir string
	)
	cmd := &cobra.Command{
		Use:   "speaker",
		Short: "Run the speaker: decide, for every load-balancer IP, whether this node announces it",
		Long: "The speaker runs on every node (DaemonSet, hostNetwork). It watches the cluster, runs the\n" +
			"scheduling cycle of each IP's profile, announces the IPs this node wins through the\n" +
			"announcer plugins and withdraws the others, writes ServiceL2Status, and renews the node's\n" +
			"heartbeat Lease. On SIGTERM it marks itself draining, waits (bounded) until other nodes\n" +
			"have taken its IPs, then withdraws them and exits.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, _, err := loadSpeakerConfig(o, configPath)
			if err != nil {
				return err
			}
			reg, err := o.Registry()
			if err != nil {
				return err
			}
			rc, err := restConfig(kubeconfig)
			if err != nil {
				return err
			}
			logger := klog.LoggerWithName(klog.Background(), "speaker")
			tuneMemory(logger, speakerGCPercent)
			ctx, stop := signal.NotifyContext(klog.NewContext(cmd.Context(), logger), syscall.SIGTERM, os.Interrupt)
			defer stop()
			return speaker.Run(ctx, speaker.Options{
				NodeName: nodeName, Holder: holder, Config: c, Registry: reg, KubeConfig: rc,
				AnnouncerDir: announcerDir,
			})
		},
	}
	// Logging flags (-v, --logging-format, ...) are the root command's, shared by every subcommand.
	f := cmd.Flags()
	f.StringVar(&configPath, "config", "", "the SpeakerConfiguration file (default: the default configuration)")
	f.StringVar(&kubeconfig, "kubeconfig", "", "kubeconfig file (default: in-cluster or $KUBECONFIG)")
	f.StringVar(&nodeName, "node-name", os.Getenv("NODE_NAME"), "the node this speaker runs on (default $NODE_NAME)")
	f.StringVar(&holder, "holder", os.Getenv("POD_NAME"), "the speaker's identity in its heartbeat Lease (default $POD_NAME, else the node name)")
	f.StringVar(&announcerDir, "announcer-dir", "", "directory of the herald-announcer-* executables (default: beside this executable)")
	return cmd
}
