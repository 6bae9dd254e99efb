// Command herald is Herald's single binary: the controller, the speaker and the operator CLIs.
package main

import (
	"os"

	"github.com/herald-lb/herald/cmd/herald/app"
)

func main() {
	if err := app.NewHeraldCommand().Execute(); err != nil {
		os.Exit(1)
	}
}
