// Command kubectl-herald is Herald's kubectl plugin: installed on $PATH it adds
// `kubectl herald explain NAMESPACE/SERVICE`, the same explanation as `herald explain`.
package main

import (
	"os"

	"github.com/herald-lb/herald/cmd/herald/app"
)

func main() {
	if err := app.NewKubectlHeraldCommand().Execute(); err != nil {
		os.Exit(1)
	}
}
