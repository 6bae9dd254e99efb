// Command kubeapi starts a real etcd + kube-apiserver in the background for manual use
// (`make apiserver`) and stops it (`make apiserver-stop`). State, data, logs and the admin
// kubeconfig live in $HERALD_CACHE/run/apiserver.
//
//	kubeapi start   # prints the admin kubeconfig path
//	kubeapi stop
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/herald-lb/herald/test/kubeapi"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "kubeapi:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	if len(args) != 1 {
		return fmt.Errorf("usage: kubeapi start|stop")
	}
	dir, err := kubeapi.RunDir()
	if err != nil {
		return err
	}
	switch args[0] {
	case "start":
		if kubeconfig, ok := kubeapi.ReadyDir(dir); ok {
			fmt.Fprintln(os.Stderr, "kubeapi: already running")
			fmt.Println(kubeconfig)
			return nil
		}
		// Leftovers of a server that died: start from a clean directory.
		if err := kubeapi.StopDir(dir); err != nil {
			return err
		}
		s, err := kubeapi.Start(context.Background(), kubeapi.Options{Dir: dir, Detached: true})
		if err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "kubeapi: etcd + kube-apiserver ready at %s in %s (logs in %s; stop with `make apiserver-stop`)\n",
			s.Host, s.StartupTime.Round(1e6), dir)
		fmt.Println(s.Kubeconfig)
		return nil
	case "stop":
		return kubeapi.StopDir(dir)
	default:
		return fmt.Errorf("unknown command %q; usage: kubeapi start|stop", args[0])
	}
}
