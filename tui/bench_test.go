package tui

import (
	"fmt"
	"testing"
	"time"

	"github.com/orchestro/orchestro/runtime/api"
)

// bigStatus is testStatus with a service of n replicas.
func bigStatus(n int) *api.ProjectStatus {
	st := testStatus()
	svc := &st.Cells[1].Services[0]
	svc.Desired, svc.Ready, svc.Replicas = n, n, nil
	for i := 1; i <= n; i++ {
		svc.Replicas = append(svc.Replicas, api.ReplicaStatus{
			Name: fmt.Sprintf("demo-shop-orders-%d", i), Replica: i, State: "running", Health: "healthy",
			Address: fmt.Sprintf("172.20.%d.%d:8080", i/250, i%250+2), InFlight: int64(i % 7), RPS: float64(i%13) + 0.5,
			Restarts: i % 3, Started: testNow.Add(-time.Duration(i) * time.Minute),
		})
	}
	return st
}

// BenchmarkView200Replicas renders a full dashboard whose selected service
// has 200 replicas, with a full log buffer and event list.
func BenchmarkView200Replicas(b *testing.B) {
	for _, size := range [][2]int{{120, 36}, {250, 80}} {
		b.Run(fmt.Sprintf("%dx%d", size[0], size[1]), func(b *testing.B) {
			m := newTestModel(b, &fakeSource{}, size[0], size[1])
			for range historySize {
				send(m, statusMsg{st: bigStatus(200)})
			}
			var logs []api.LogLine
			for i := range logsKept / len(testLogs()) {
				for _, l := range testLogs() {
					l.Time = l.Time.Add(time.Duration(i) * time.Minute)
					logs = append(logs, l)
				}
			}
			send(m, feedMsg[api.LogLine]{Gen: m.logs.gen, Items: logs})
			var events []api.Event
			for i := range eventsKept {
				e := testEvents()[i%len(testEvents())]
				e.Time = testNow.Add(time.Duration(i) * time.Second)
				events = append(events, e)
			}
			send(m, feedMsg[api.Event]{Gen: m.events.gen, Items: events})
			typeKeys(m, "tab")
			b.ReportAllocs()
			for b.Loop() {
				_ = m.View()
			}
		})
	}
}
