package gateway

import (
	goruntime "runtime"
	"testing"

	"github.com/orchestro/orchestro/cellspec"
)

func TestTuneProcs(t *testing.T) {
	defer goruntime.GOMAXPROCS(goruntime.GOMAXPROCS(0))
	t.Setenv("GOMAXPROCS", "")
	tuneProcs(3)
	if got := goruntime.GOMAXPROCS(0); got != 3 {
		t.Errorf("procs: 3 gave GOMAXPROCS %d", got)
	}
	// The default halves what Go found it may use.
	goruntime.GOMAXPROCS(4)
	tuneProcs(0)
	if got, want := goruntime.GOMAXPROCS(0), cellspec.DefaultGatewayProcs(4); got != want {
		t.Errorf("the default on 4 gave GOMAXPROCS %d, want %d", got, want)
	}
	t.Setenv("GOMAXPROCS", "5")
	goruntime.GOMAXPROCS(5)
	tuneProcs(2)
	if got := goruntime.GOMAXPROCS(0); got != 5 {
		t.Errorf("with GOMAXPROCS=5 in the environment, procs: 2 gave %d", got)
	}
}
