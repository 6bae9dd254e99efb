// Package app wires Herald's roles and CLIs into cobra commands. Third parties build their own
// binary from it with extra plugins (see WithPlugin), the way kube-scheduler is extended.
package app

import (
	"fmt"

	"github.com/spf13/cobra"
	logsapi "k8s.io/component-base/logs/api/v1"
	"k8s.io/klog/v2"

	// The json logging format, selectable with --logging-format=json.
	_ "k8s.io/component-base/logs/json/register"
)

// NewHeraldCommand returns the root command with every subcommand registered.
func NewHeraldCommand(opts ...Option) *cobra.Command {
	o := &options{}
	for _, opt := range opts {
		opt(o)
	}
	cmd := &cobra.Command{
		Use:           "herald",
		Short:         "Herald gives bare-metal Kubernetes clusters LoadBalancer Services",
		SilenceUsage:  true,
		SilenceErrors: false,
	}
	addLoggingFlags(cmd)
	cmd.AddCommand(newVersionCommand())
	cmd.AddCommand(newControllerCommand(o))
	cmd.AddCommand(newConfigCommand(o))
	cmd.AddCommand(newSpeakerCommand(o))
	cmd.AddCommand(newExplainCommand(o))
	cmd.AddCommand(newDiagCommand(o))
	cmd.AddCommand(newMigrateCommand(o))
	return cmd
}

// addLoggingFlags gives every subcommand the Kubernetes components' logging flags
// (--logging-format text|json, -v, --vmodule, ...) and applies them before the subcommand
// runs, so the controller, the speaker and the CLIs log alike (klog and contextual loggers
// included). Logs go to stderr: a CLI's stdout stays its output.
func addLoggingFlags(cmd *cobra.Command) {
	cfg := logsapi.NewLoggingConfiguration()
	logsapi.AddFlags(cfg, cmd.PersistentFlags())
	cmd.PersistentPreRunE = func(*cobra.Command, []string) error {
		// A process that builds the command more than once (tests, a binary embedding
		// Herald's commands) may apply the same configuration again; a different one is
		// still an error, since loggers already handed out would not follow.
		logsapi.ReapplyHandling = logsapi.ReapplyHandlingIgnoreUnchanged
		if err := logsapi.ValidateAndApply(cfg, nil); err != nil {
			return fmt.Errorf("logging flags (--logging-format, -v, --vmodule, --log-*): %w", err)
		}
		return nil
	}
	cmd.PersistentPostRun = func(*cobra.Command, []string) { klog.Flush() }
}
