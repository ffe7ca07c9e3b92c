package gateway

import (
	goruntime "runtime"
	"testing"
)

func TestTuneProcs(t *testing.T) {
	defer goruntime.GOMAXPROCS(goruntime.GOMAXPROCS(0))
	t.Setenv("GOMAXPROCS", "")
	goruntime.GOMAXPROCS(4)
	tuneProcs(3)
	if got := goruntime.GOMAXPROCS(0); got != 3 {
		t.Errorf("procs: 3 gave GOMAXPROCS %d", got)
	}
	goruntime.GOMAXPROCS(4)
	tuneProcs(0)
	if got := goruntime.GOMAXPROCS(0); got != 4 {
		t.Errorf("procs left out changed GOMAXPROCS from 4 to %d", got)
	}
	t.Setenv("GOMAXPROCS", "5")
	goruntime.GOMAXPROCS(5)
	tuneProcs(2)
	if got := goruntime.GOMAXPROCS(0); got != 5 {
		t.Errorf("with GOMAXPROCS=5 in the environment, procs: 2 gave %d", got)
	}
}
