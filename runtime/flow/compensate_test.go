package flow

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestCompensationOrder(t *testing.T) {
	done := func(i int) endedStep { return endedStep{index: i, state: stateSucceeded, compensable: true} }
	tests := []struct {
		name  string
		ended []endedStep // in the order the steps ended
		want  []int
	}{
		{name: "nothing ended", want: nil},
		{
			name:  "sequential: last completed first",
			ended: []endedStep{done(0), done(1), done(2)},
			want:  []int{2, 1, 0},
		},
		{
			name:  "parallel members: by completion, not as written",
			ended: []endedStep{done(0), done(2), done(1), done(3)},
			want:  []int{3, 1, 2, 0},
		},
		{
			name: "failed, skipped and not started steps are left alone",
			ended: []endedStep{
				done(0),
				{index: 1, state: stateSkipped, compensable: true},
				{index: 2, state: stateFailed, reached: true, compensable: true},
			},
			want: []int{0},
		},
		{
			name:  "steps without compensate are left out",
			ended: []endedStep{done(0), {index: 1, state: stateSucceeded}, done(2)},
			want:  []int{2, 0},
		},
		{
			name: "cancelled in flight first, latest written first",
			ended: []endedStep{
				done(0),
				{index: 1, state: stateCancelled, reached: true, compensable: true},
				done(3),
				{index: 2, state: stateFailed, reached: true, compensable: true},
				{index: 4, state: stateCancelled, reached: true, compensable: true},
			},
			want: []int{4, 1, 3, 0},
		},
		{
			name: "cancelled without reaching a replica: nothing to undo",
			ended: []endedStep{
				done(0),
				{index: 1, state: stateCancelled, compensable: true},
			},
			want: []int{0},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, compensationOrder(tt.ended)); diff != "" {
				t.Errorf("compensationOrder (-want +got):\n%s", diff)
			}
		})
	}
}

func TestOutcome(t *testing.T) {
	tests := []struct {
		name  string
		end   ending
		comps []string
		want  Outcome
	}{
		{name: "succeeded", end: endSucceeded, want: Succeeded},
		{name: "failed, nothing to compensate", end: endStepFailed, want: Failed},
		{name: "deadline, nothing to compensate", end: endDeadline, want: Failed},
		{name: "all done", end: endStepFailed, comps: []string{CompensationDone, CompensationDone}, want: Compensated},
		{name: "one failed", end: endDeadline, comps: []string{CompensationDone, CompensationFailed}, want: Partial},
		{name: "one not compensated", end: endCancelled, comps: []string{NotCompensated, CompensationDone}, want: Partial},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var comps []CompensationResult
			for _, c := range tt.comps {
				comps = append(comps, CompensationResult{Outcome: c})
			}
			if got := outcome(tt.end, comps); got != tt.want {
				t.Errorf("outcome = %s, want %s", got, tt.want)
			}
		})
	}
}

func TestCompensationDone(t *testing.T) {
	for status, want := range map[int]bool{200: true, 202: true, 204: true, 299: true, 404: true, 301: false, 400: false, 409: false, 410: false, 500: false, 503: false} {
		if got := compensationDone(status); got != want {
			t.Errorf("compensationDone(%d) = %v, want %v", status, got, want)
		}
	}
}
