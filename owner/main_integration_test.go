//go:build integration

package owner

import (
	"os"
	"testing"

	"github.com/herald-lb/herald/test/kubeapi"
)

func TestMain(m *testing.M) { os.Exit(kubeapi.Main(m)) }
