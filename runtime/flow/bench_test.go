package flow

import (
	"testing"
)

// benchFlow has two sequential steps and a parallel pair: four calls.
const benchFlow = `{"name": "place-order", "deadline": "10s", "steps": [
  {"id": "validate", "call": "POST orders /validate", "body": "${{ input.body }}", "timeout": "2s"},
  {"parallel": [
    {"id": "reserve", "call": "POST inventory /reservations", "timeout": "2s",
     "body": {"order": "${{ path.order }}", "items": "${{ input.body.items }}"},
     "compensate": {"call": "DELETE inventory /reservations/${{ reserve.body.id }}"}},
    {"id": "quote", "call": "GET cell:users /discounts/${{ input.headers[\"x-user\"] }}", "timeout": "2s",
     "optional": true, "fallback": {"percent": 0}}
  ]},
  {"id": "charge", "call": "POST payments /charges", "timeout": "2s",
   "body": {"order": "${{ path.order }}", "amount": "${{ validate.body.total * (100 - quote.body.percent) / 100 }}"}}
],
"response": {"status": 201, "headers": {"Location": "/orders/${{ path.order }}"},
  "body": {"order": "${{ path.order }}", "reservation": "${{ reserve.body.id }}", "charge": "${{ charge.body.id }}"}}}`

// BenchmarkExecute measures the engine's own cost per execution: the
// caller answers at once, on the real clock.
func BenchmarkExecute(b *testing.B) {
	r := New("shop", mustFlow(b, benchFlow), instantCaller{}, RealClock{})
	in := testInput()
	b.ReportAllocs()
	for b.Loop() {
		if res := r.Execute(b.Context(), in); res.Status != 201 {
			b.Fatalf("status %d: %s", res.Status, res.Body)
		}
	}
}

// BenchmarkExecuteJournaled is BenchmarkExecute with a journal that makes
// every record durable at once: the engine's own cost of journaling.
func BenchmarkExecuteJournaled(b *testing.B) {
	r := New("shop", mustFlow(b, benchFlow), instantCaller{}, RealClock{}, WithJournal(instantJournal{}))
	in := testInput()
	b.ReportAllocs()
	for b.Loop() {
		if res := r.Execute(b.Context(), in); res.Status != 201 {
			b.Fatalf("status %d: %s", res.Status, res.Body)
		}
	}
}

// BenchmarkExecuteParallel runs executions of one Runner at once.
func BenchmarkExecuteParallel(b *testing.B) {
	r := New("shop", mustFlow(b, benchFlow), instantCaller{}, RealClock{})
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		in := testInput()
		for pb.Next() {
			if res := r.Execute(b.Context(), in); res.Status != 201 {
				b.Errorf("status %d: %s", res.Status, res.Body)
				return
			}
		}
	})
}
