package app

import (
	"github.com/spf13/pflag"

	"github.com/herald-lb/herald/config"
)

// namespaces are the command-line overrides of where Herald runs and where it reads its
// configuration, for the commands that read the cluster as a speaker would (explain,
// migrate check). Unset flags keep the speaker configuration file's values.
type namespaces struct {
	// own is Herald's namespace: heartbeat Leases and status objects.
	own string
	// config is the namespace of the metallb.io configuration; empty means own.
	config string
}

func (n *namespaces) addFlags(f *pflag.FlagSet) {
	f.StringVarP(&n.own, "namespace", "n", "", "Herald's namespace, holding the heartbeat Leases and status objects (default: the configuration file's heartbeat.namespace)")
	f.StringVar(&n.config, "config-namespace", "", "namespace of the metallb.io configuration Herald reads (default: the configuration file's configNamespace, else --namespace)")
}

// apply overrides the loaded configuration's namespaces with the flags that were set. A
// --namespace without --config-namespace moves the configuration namespace with it when
// the file left configNamespace at its default (Herald's own namespace).
func (n namespaces) apply(c *config.SpeakerConfiguration) {
	if n.own != "" {
		if c.ConfigNamespace == c.Heartbeat.Namespace {
			c.ConfigNamespace = n.own
		}
		c.Heartbeat.Namespace = n.own
	}
	if n.config != "" {
		c.ConfigNamespace = n.config
	}
}
