package journal

import (
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/orchestro/orchestro/runtime/flow"
)

// commitStats gathers what OnCommit reports.
type commitStats struct {
	commits, records, nanos atomic.Int64
}

func (c *commitStats) onCommit(n int, d time.Duration) {
	c.commits.Add(1)
	c.records.Add(int64(n))
	c.nanos.Add(int64(d))
}

func (c *commitStats) report(b *testing.B, executions int) {
	n := c.commits.Load()
	b.ReportMetric(float64(n)/float64(executions), "commits/exec")
	if n > 0 {
		b.ReportMetric(float64(c.records.Load())/float64(n), "records/commit")
		b.ReportMetric(float64(c.nanos.Load())/float64(n)/1e6, "ms/commit")
	}
}

// BenchmarkJournalExecution journals executions as the engine does, 64
// at a time: Begin, then for 4 steps (the first 2 with a compensation) an
// Intent where there is a compensation and the Step with a 512-byte body,
// a Compensation and End, waiting only on the intents and the End.
func BenchmarkJournalExecution(b *testing.B) {
	var stats commitStats
	s := open(b, tempPath(b), Options{OnCommit: stats.onCommit})
	body := make([]byte, 512)
	header := http.Header{"Content-Type": {"application/json"}}
	var next atomic.Int64

	b.ResetTimer()
	var wg sync.WaitGroup
	for range 64 {
		wg.Go(func() {
			for {
				n := int(next.Add(1))
				if n > b.N {
					return
				}
				id := fmt.Sprintf("exec-%08d", n)
				started := t0.Add(time.Duration(n))
				s.Begin(beginRec(id, "place-order", started))
				for step := range 4 {
					name := fmt.Sprintf("step%d", step)
					if step < 2 {
						if err := s.Intent(id, name).Wait(); err != nil {
							b.Error(err)
							return
						}
					}
					s.Step(id, &flow.StepRecord{Step: name, State: flow.StepSucceeded, Status: 200, Header: header, Body: body, Tries: 1, Started: started, Duration: time.Millisecond})
				}
				s.Compensation(id, &flow.CompensationResult{Step: "step1", Outcome: flow.CompensationDone, Status: 200, Tries: 1})
				if err := s.End(id, endRec(flow.Compensated, started)).Wait(); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	b.StopTimer()
	stats.report(b, b.N)
}

// BenchmarkCommitLatency waits on every record, one at a time: the
// latency of one commit: one write and one fdatasync.
func BenchmarkCommitLatency(b *testing.B) {
	var stats commitStats
	s := open(b, tempPath(b), Options{OnCommit: stats.onCommit})
	wait(b, s.Begin(beginRec("a", "f", t0)))
	stats.commits.Store(0)
	stats.records.Store(0)
	stats.nanos.Store(0)
	b.ResetTimer()
	for range b.N {
		if err := s.Intent("a", "step").Wait(); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	stats.report(b, b.N)
}
