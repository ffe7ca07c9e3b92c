package gateway

import (
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/orchestro/orchestro/runtime/health"
)

func TestPlan(t *testing.T) {
	now := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	rep := func(svc string, n int, hash string, state ContainerState, health health.State) ObservedReplica {
		return ObservedReplica{ID: svc + "-id-" + string(rune('0'+n)), Service: svc, N: n, Hash: hash, State: state, Health: health, Created: now.Add(-time.Hour)}
	}
	orders := func(n int) DesiredService {
		return DesiredService{Name: "orders", Replicas: n, Hash: "h2", Restart: "always"}
	}
	tests := []struct {
		name     string
		desired  []DesiredService
		observed []ObservedReplica
		crash    map[string]CrashState
		want     string
	}{
		{
			name:    "nothing running",
			desired: []DesiredService{orders(2)},
			want: "create shop/orders-1: scale 0 → 2\n" +
				"create shop/orders-2: scale 0 → 2\n",
		},
		{
			name:     "converged",
			desired:  []DesiredService{orders(2)},
			observed: []ObservedReplica{rep("orders", 1, "h2", "running", "healthy"), rep("orders", 2, "h2", "running", "none")},
			want:     "",
		},
		{
			name:    "scale down drains the highest numbers first",
			desired: []DesiredService{orders(1)},
			observed: []ObservedReplica{
				rep("orders", 1, "h2", "running", "healthy"), rep("orders", 2, "h2", "running", "healthy"),
				rep("orders", 3, "h2", "running", "healthy"),
			},
			want: "drain shop/orders-3: surplus 3 > 1\n" +
				"drain shop/orders-2: surplus 3 > 1\n",
		},
		{
			name:     "scale up fills the lowest free numbers",
			desired:  []DesiredService{orders(3)},
			observed: []ObservedReplica{rep("orders", 2, "h2", "running", "healthy")},
			want: "create shop/orders-1: scale 1 → 3\n" +
				"create shop/orders-3: scale 1 → 3\n",
		},
		{
			name:     "an exited replica is removed and replaced under the same number",
			desired:  []DesiredService{orders(2)},
			observed: []ObservedReplica{rep("orders", 1, "h2", "running", "healthy"), {ID: "x", Service: "orders", N: 2, Hash: "h2", State: "exited", ExitCode: 137}},
			want: "remove shop/orders-2: exited with code 137\n" +
				"create shop/orders-2: replace exited replica\n",
		},
		{
			name:     "restart never keeps an exited replica",
			desired:  []DesiredService{{Name: "job", Replicas: 1, Hash: "h", Restart: "never"}},
			observed: []ObservedReplica{{ID: "x", Service: "job", N: 1, Hash: "h", State: "exited", ExitCode: 1}},
			want:     "",
		},
		{
			name:     "on-failure keeps a clean exit and replaces a crash",
			desired:  []DesiredService{{Name: "job", Replicas: 2, Hash: "h", Restart: "on-failure"}},
			observed: []ObservedReplica{{ID: "a", Service: "job", N: 1, Hash: "h", State: "exited", ExitCode: 0}, {ID: "b", Service: "job", N: 2, Hash: "h", State: "exited", ExitCode: 2}},
			want: "remove shop/job-2: exited with code 2\n" +
				"create shop/job-2: replace exited replica\n",
		},
		{
			name:     "crashloop waits for its backoff",
			desired:  []DesiredService{orders(1)},
			observed: []ObservedReplica{{ID: "x", Service: "orders", N: 1, Hash: "h2", State: "exited", ExitCode: 1}},
			crash:    map[string]CrashState{"orders": {Crashes: 3, NotBefore: now.Add(4 * time.Second)}},
			want: "remove shop/orders-1: exited with code 1\n" +
				"wait shop/orders: crashloop (3 recent crashes), next try in 4s\n",
		},
		{
			name:    "a failed start backs off, saying so",
			desired: []DesiredService{orders(1)},
			crash:   map[string]CrashState{"orders": {Crashes: 2, NotBefore: now.Add(time.Second), StartFailed: true}},
			want:    "wait shop/orders: start failed (2 recent failures), next try in 1s\n",
		},
		{
			name:     "a replica that never started is tried again whatever its restart policy",
			desired:  []DesiredService{{Name: "job", Replicas: 1, Hash: "h", Restart: "on-failure"}},
			observed: []ObservedReplica{{ID: "x", Service: "job", N: 1, Hash: "h", State: "created"}},
			want: "remove shop/job-1: never started\n" +
				"create shop/job-1: replace replica that never started\n",
		},
		{
			name:    "rolling update starts one new replica while the old ones serve",
			desired: []DesiredService{orders(2)},
			observed: []ObservedReplica{
				rep("orders", 1, "h1", "running", "healthy"), rep("orders", 2, "h1", "running", "healthy"),
			},
			want: "create shop/orders-3: rolling update\n",
		},
		{
			name:    "rolling update waits while the new replica starts",
			desired: []DesiredService{orders(2)},
			observed: []ObservedReplica{
				rep("orders", 1, "h1", "running", "healthy"), rep("orders", 2, "h1", "running", "healthy"),
				rep("orders", 3, "h2", "running", "starting"),
			},
			want: "",
		},
		{
			name:    "rolling update drains one old replica once a new one is ready",
			desired: []DesiredService{orders(2)},
			observed: []ObservedReplica{
				rep("orders", 1, "h1", "running", "healthy"), rep("orders", 2, "h1", "running", "healthy"),
				rep("orders", 3, "h2", "running", "healthy"),
			},
			want: "create shop/orders-4: rolling update\n" +
				"drain shop/orders-2: out of date\n",
		},
		{
			name:    "rolling restart replaces the replicas it names",
			desired: []DesiredService{{Name: "orders", Replicas: 2, Hash: "h2", Restart: "always", Restarting: map[string]bool{"orders-id-1": true}}},
			observed: []ObservedReplica{
				rep("orders", 1, "h2", "running", "healthy"), rep("orders", 2, "h2", "running", "healthy"),
			},
			want: "create shop/orders-3: rolling restart\n",
		},
		{
			// Creation times are whole seconds: a replacement created in
			// the second of the request must not count as out of date.
			name:    "rolling restart leaves its replacements alone, whenever created",
			desired: []DesiredService{{Name: "orders", Replicas: 1, Hash: "h2", Restart: "always", Restarting: map[string]bool{"orders-id-1": true}}},
			observed: []ObservedReplica{
				rep("orders", 1, "h2", "running", "healthy"),
				{ID: "orders-id-2", Service: "orders", N: 2, Hash: "h2", State: "running", Health: "healthy", Created: now},
			},
			want: "drain shop/orders-1: restart\n",
		},
		{
			name:    "an unhealthy replica is replaced first, drained after",
			desired: []DesiredService{orders(2)},
			observed: []ObservedReplica{
				rep("orders", 1, "h2", "running", "healthy"), rep("orders", 2, "h2", "running", "unhealthy"),
			},
			want: "create shop/orders-3: replace unhealthy replica\n",
		},
		{
			name:    "an unhealthy replica goes once its replacement is ready",
			desired: []DesiredService{orders(2)},
			observed: []ObservedReplica{
				rep("orders", 1, "h2", "running", "healthy"), rep("orders", 2, "h2", "running", "unhealthy"),
				rep("orders", 3, "h2", "running", "healthy"),
			},
			want: "drain shop/orders-2: unhealthy, replaced\n",
		},
		{
			name: "depends_on waits for a ready dependency",
			desired: []DesiredService{
				{Name: "api", Replicas: 1, Hash: "a", Restart: "always", DependsOn: []string{"db"}},
				{Name: "db", Replicas: 1, Hash: "d", Restart: "always"},
			},
			observed: []ObservedReplica{rep("db", 1, "d", "running", "starting")},
			want:     "wait shop/api: waiting for db to be ready\n",
		},
		{
			name: "depends_on is met by a healthy dependency",
			desired: []DesiredService{
				{Name: "api", Replicas: 1, Hash: "a", Restart: "always", DependsOn: []string{"db"}},
				{Name: "db", Replicas: 1, Hash: "d", Restart: "always"},
			},
			observed: []ObservedReplica{rep("db", 1, "d", "running", "healthy")},
			want:     "create shop/api-1: scale 0 → 1\n",
		},
		{
			name:    "replicas being removed are left alone and keep their numbers",
			desired: []DesiredService{orders(1)},
			observed: []ObservedReplica{
				{ID: "r", Service: "orders", N: 1, Hash: "h2", State: "running", Health: "healthy", Removing: true},
			},
			want: "create shop/orders-2: scale 0 → 1\n",
		},
		{
			name:    "a service removed from the spec is drained",
			desired: []DesiredService{orders(0)},
			observed: []ObservedReplica{
				rep("legacy", 1, "x", "running", "healthy"), {ID: "e", Service: "legacy", N: 2, State: "exited"},
			},
			want: "remove shop/legacy-2: service removed from the spec\n" +
				"drain shop/legacy-1: service removed from the spec\n",
		},
		{
			name:    "scale to zero during an update removes everything",
			desired: []DesiredService{orders(0)},
			observed: []ObservedReplica{
				rep("orders", 1, "h1", "running", "healthy"), rep("orders", 2, "h2", "running", "healthy"),
			},
			want: "drain shop/orders-2: surplus 1 > 0\n" +
				"drain shop/orders-1: out of date\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := plan("shop", tt.desired, tt.observed, tt.crash, now).String()
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("plan (-want +got):\n%s", diff)
			}
		})
	}
}

// TestPlanEvents checks the event each operation reports once done: the
// executor takes it from the operation's kind and cause, never from the
// text of its reason.
func TestPlanEvents(t *testing.T) {
	now := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	rep := func(n int, hash string, health health.State) ObservedReplica {
		return ObservedReplica{ID: fmt.Sprint("id-", n), Service: "orders", N: n, Hash: hash, State: ContainerRunning, Health: health, Created: now.Add(-time.Hour)}
	}
	orders := func(n int) DesiredService {
		return DesiredService{Name: "orders", Replicas: n, Hash: "h2", Restart: "always", DependsOn: []string{"db"}}
	}
	db := DesiredService{Name: "db", Replicas: 1, Hash: "d", Restart: "always"}
	dbUp := ObservedReplica{ID: "db", Service: "db", N: 1, Hash: "d", State: ContainerRunning, Health: health.StateNone}
	tests := []struct {
		name     string
		desired  []DesiredService
		observed []ObservedReplica
		want     []string
	}{
		{
			name:     "an unhealthy replica drained for its replacement is replaced",
			desired:  []DesiredService{orders(2), db},
			observed: []ObservedReplica{dbUp, rep(1, "h2", health.StateHealthy), rep(2, "h2", health.StateUnhealthy), rep(3, "h2", health.StateHealthy)},
			want:     []string{"drain orders-2 unhealthy: replaced"},
		},
		{
			name:     "out-of-date and surplus replicas are removed",
			desired:  []DesiredService{orders(1), db},
			observed: []ObservedReplica{dbUp, rep(1, "h1", health.StateHealthy), rep(2, "h2", health.StateHealthy), rep(3, "h2", health.StateHealthy)},
			want:     []string{"drain orders-3 scale: removed", "drain orders-1 out of date: removed"},
		},
		{
			name:    "exited replicas are removed, their replacements started",
			desired: []DesiredService{orders(1), db},
			observed: []ObservedReplica{dbUp, {ID: "x", Service: "orders", N: 1, Hash: "h2", State: ContainerExited, ExitCode: 1},
				{ID: "y", Service: "legacy", N: 1, State: ContainerRunning}},
			want: []string{"remove orders-1 exited: removed", "create orders-1 exited: started", "drain legacy-1 orphan: removed"},
		},
		{
			name:     "a service waiting for its dependency reports waiting",
			desired:  []DesiredService{orders(1), db},
			observed: []ObservedReplica{{ID: "db", Service: "db", N: 1, Hash: "d", State: ContainerRunning, Health: health.StateStarting}},
			want:     []string{"wait orders-0 dependency: waiting"},
		},
	}
	kinds := map[OpKind]string{OpRemove: "remove", OpCreate: "create", OpDrain: "drain", OpWait: "wait"}
	causes := map[Cause]string{CauseScale: "scale", CauseExited: "exited", CauseNeverStarted: "never started", CauseUpdate: "out of date",
		CauseRestart: "restart", CauseUnhealthy: "unhealthy", CauseOrphan: "orphan", CauseDependency: "dependency", CauseBackoff: "backoff"}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			for _, op := range plan("shop", tt.desired, tt.observed, nil, now).Ops {
				got = append(got, fmt.Sprintf("%s %s-%d %s: %s", kinds[op.Kind], op.Service, op.N, causes[op.Cause], op.Event()))
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("plan events (-want +got):\n%s", diff)
			}
		})
	}
}
