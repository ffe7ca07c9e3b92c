package journal

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/orchestro/orchestro/runtime/flow"
)

// TestRetention checks that an End drops the oldest finished executions
// of its flow beyond Retain, with all their records and index entries,
// and keeps every unfinished one, also across a reopen with a lower
// Retain.
func TestRetention(t *testing.T) {
	path := tempPath(t)
	s := open(t, path, Options{Retain: 3})
	at := func(m int) time.Time { return t0.Add(time.Duration(m) * time.Minute) }
	ids := func(f Filter) []string {
		t.Helper()
		list, err := s.List(f)
		if err != nil {
			t.Fatal(err)
		}
		got := []string{}
		for _, sum := range list {
			got = append(got, sum.ID)
		}
		return got
	}

	// u0 is the oldest and never ends; u5 is in the middle.
	s.Begin(beginRec("u0", "a", at(0)))
	s.Intent("u0", "step")
	for i := 1; i <= 8; i++ {
		id := fmt.Sprintf("a%d", i)
		if i == 5 {
			id = "u5"
		}
		s.Begin(beginRec(id, "a", at(i)))
		s.Step(id, &flow.StepRecord{Step: "step", Body: []byte("body")})
		if id != "u5" {
			wait(t, s.End(id, endRec(flow.Succeeded, at(i))))
		}
	}
	run(t, s, "b1", "b", at(1), flow.Failed)
	run(t, s, "b2", "b", at(2), flow.Failed)

	if diff := cmp.Diff([]string{"a8", "a7", "a6", "u5", "u0"}, ids(Filter{Flow: "a"})); diff != "" {
		t.Errorf("flow a (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"b2", "b1"}, ids(Filter{Flow: "b"})); diff != "" {
		t.Errorf("flow b (-want +got):\n%s", diff)
	}
	if _, err := s.Get("a4"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get of a dropped execution: %v", err)
	}
	// Nothing of the dropped ones is indexed: records of a6 to a8 (3
	// each), of u0, u5 (2 each) and of b1, b2 (2 each).
	if frames, n := liveFrames(t, s); frames != 3*3+2*2+2*2 || n != 7 {
		t.Errorf("%d frames of %d executions kept", frames, n)
	}

	// Reopened with Retain 1: Open rebuilds the index from the segments
	// and applies the lower Retain to every flow at once.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = open(t, path, Options{Retain: 1})
	if diff := cmp.Diff([]string{"a8", "u5", "u0"}, ids(Filter{Flow: "a"})); diff != "" {
		t.Errorf("flow a after reopen (-want +got):\n%s", diff)
	}
	run(t, s, "a9", "a", at(9), flow.Succeeded)
	if diff := cmp.Diff([]string{"a9", "u5", "u0"}, ids(Filter{Flow: "a"})); diff != "" {
		t.Errorf("flow a after a9 (-want +got):\n%s", diff)
	}
	// u5 ends; it is the oldest finished one, so it goes at once.
	wait(t, s.End("u5", endRec(flow.Succeeded, at(5))))
	if diff := cmp.Diff([]string{"a9", "u0"}, ids(Filter{Flow: "a"})); diff != "" {
		t.Errorf("flow a after u5 ended (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"b2"}, ids(Filter{Flow: "b"})); diff != "" {
		t.Errorf("flow b after reopen (-want +got):\n%s", diff)
	}
	un, err := s.Unfinished()
	if err != nil {
		t.Fatal(err)
	}
	if len(un) != 1 || un[0].Begin.ID != "u0" || len(un[0].Intents) != 1 {
		t.Errorf("unfinished: %+v", un)
	}
}
