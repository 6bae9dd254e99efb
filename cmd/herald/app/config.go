package app

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/herald-lb/herald/config"
)

func newConfigCommand(o *options) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "config",
		Short: "Validate the speaker's configuration file or print the default one",
	}
	cmd.AddCommand(&cobra.Command{
		Use:   "validate FILE",
		Short: "Print the fully defaulted configuration, or every error with its field path",
		Long: "Validate loads FILE as the speaker does (strict decoding, defaults, validation against\n" +
			"this binary's plugins, out-of-tree ones included). A valid file is printed with every\n" +
			"default filled in; otherwise every problem is printed with its field path and the\n" +
			"command fails.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts, err := o.ConfigOptions()
			if err != nil {
				return err
			}
			c, err := config.Load(args[0], opts)
			if err != nil {
				return fmt.Errorf("invalid configuration %w", err)
			}
			return printConfig(cmd, c)
		},
	})
	cmd.AddCommand(&cobra.Command{
		Use:   "default",
		Short: "Print the default configuration",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			opts, err := o.ConfigOptions()
			if err != nil {
				return err
			}
			c, err := config.Default(opts)
			if err != nil {
				return fmt.Errorf("default configuration: %w", err)
			}
			return printConfig(cmd, c)
		},
	})
	return cmd
}

func printConfig(cmd *cobra.Command, c *config.SpeakerConfiguration) error {
	out, err := config.Marshal(c)
	if err != nil {
		return err
	}
	_, err = cmd.OutOrStdout().Write(out)
	return err
}
