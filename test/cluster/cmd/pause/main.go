// Command pause is the test bed's pod sandbox: it holds a pod's namespaces and sleeps until
// it is told to stop, as registry.k8s.io/pause does, without pulling anything.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGTERM, syscall.SIGINT)
	<-ch
}
