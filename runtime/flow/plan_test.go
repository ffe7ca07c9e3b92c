package flow

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestNewPlans checks what New prepares: which names the environment
// builds, which steps it shows and whose bodies it parses, which
// compensations need their step's answer, and the order of the units.
func TestNewPlans(t *testing.T) {
	type stepWant struct {
		ID                       string
		Group, Visible, ReadBody bool
		Compensate, NeedsAnswer  bool
	}
	tests := []struct {
		name  string
		src   string
		env   envNeeds
		units [][]string
		steps []stepWant
	}{
		{
			name: "only what is named",
			src: `{"name": "f", "steps": [
			  {"id": "a", "call": "POST svc /a", "compensate": {"call": "DELETE svc /a/${{ a.body.id }}"}},
			  {"parallel": [
			    {"id": "b", "call": "GET svc /b/${{ path.order }}", "compensate": {"call": "DELETE svc /b", "headers": {"X-Flow": "${{ flow.id }}"}}},
			    {"parallel": [{"id": "c", "call": "GET svc /c"}]}
			  ]},
			  {"id": "d", "call": "GET svc /d", "when": "${{ b.ok }}"}],
			  "response": {"body": {"c": "${{ c.status }}"}}}`,
			env:   envNeeds{path: true, flow: true},
			units: [][]string{{"a"}, {"b", "c"}, {"d"}},
			steps: []stepWant{
				{ID: "a", Visible: true, ReadBody: true, Compensate: true, NeedsAnswer: true},
				{ID: "b", Group: true, Visible: true, ReadBody: true, Compensate: true},
				{ID: "c", Group: true, Visible: true, ReadBody: true},
				{ID: "d"},
			},
		},
		{
			name: "the default response reads every body",
			src: `{"name": "f", "steps": [
			  {"id": "a", "call": "POST svc /a", "body": "${{ input.body }}"},
			  {"id": "b", "call": "GET svc /b"}]}`,
			env:   envNeeds{input: true},
			units: [][]string{{"a"}, {"b"}},
			steps: []stepWant{{ID: "a", ReadBody: true}, {ID: "b", ReadBody: true}},
		},
		{
			name: "$env names everything",
			src: `{"name": "f", "steps": [{"id": "a", "call": "POST svc /a"}],
			  "response": {"body": "${{ $env[\"a\"].body }}"}}`,
			env:   envNeeds{input: true, path: true, flow: true},
			units: [][]string{{"a"}},
			steps: []stepWant{{ID: "a", Visible: true, ReadBody: true}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := New("shop", mustFlow(t, tt.src), instantCaller{}, nil)
			if r.env != tt.env {
				t.Errorf("env %+v, want %+v", r.env, tt.env)
			}
			var units [][]string
			for _, u := range r.units {
				var ids []string
				for _, p := range u {
					ids = append(ids, p.step.ID)
				}
				units = append(units, ids)
			}
			if diff := cmp.Diff(tt.units, units); diff != "" {
				t.Errorf("units (-want +got):\n%s", diff)
			}
			var steps []stepWant
			for i, p := range r.steps {
				if p.index != i {
					t.Errorf("step %s: index %d, want %d", p.step.ID, p.index, i)
				}
				steps = append(steps, stepWant{
					ID: p.step.ID, Group: p.group, Visible: p.visible, ReadBody: p.readBody,
					Compensate: p.comp != nil, NeedsAnswer: p.comp != nil && p.comp.needsAnswer,
				})
			}
			if diff := cmp.Diff(tt.steps, steps); diff != "" {
				t.Errorf("steps (-want +got):\n%s", diff)
			}
		})
	}
}
