// Package app wires Herald's roles and CLIs into cobra commands. Third parties build their own
// binary from it with extra plugins (see WithPlugin), the way kube-scheduler is extended.
package app

import (
	"github.com/spf13/cobra"
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
	cmd.AddCommand(newVersionCommand())
	cmd.AddCommand(newControllerCommand(o))
	cmd.AddCommand(newConfigCommand(o))
	cmd.AddCommand(newSpeakerCommand(o))
	cmd.AddCommand(newExplainCommand(o))
	cmd.AddCommand(newDiagCommand(o))
	return cmd
}
