// Command custom-herald is herald with the example out-of-tree Maintenance plugin compiled
// in: what a third party builds to add a plugin without forking Herald.
package main

import (
	"os"

	"github.com/herald-lb/herald/cmd/herald/app"
	"github.com/herald-lb/herald/test/outoftree/maintenance"
)

func main() {
	cmd := app.NewHeraldCommand(app.WithPlugin(maintenance.Name, maintenance.New, maintenance.NewArgs))
	if err := cmd.Execute(); err != nil {
		os.Exit(1)
	}
}
