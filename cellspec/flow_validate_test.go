package cellspec

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

// flowCellHead is a cell file up to its flows key; the flows of a test
// start on line 9.
const flowCellHead = `cell: shop
gateway: {port: 8081}
uses: [users]
services:
  orders: {image: example/orders:1, port: 8080}
  payments: {image: example/payments:1, port: 8080}
  worker: {image: example/worker:1}
flows:
`

// TestFlowProblems checks every problem the loader finds in flows, with
// its exact message and position: the key or the scalar at fault, and for
// an expression the scalar that holds it, however deep in a body.
func TestFlowProblems(t *testing.T) {
	tests := []struct {
		name  string
		flows string
		want  []string
	}{
		{
			name:  "no name",
			flows: `  - {route: POST /a, steps: [{id: a, call: GET orders /a}]}`,
			want: []string{
				`cell.yaml:9:5: flows[0].name: flow has no name (add name: <flow name>)`,
			},
		},
		{
			name:  "name not a DNS label",
			flows: `  - {name: Place_Order, route: POST /a, steps: [{id: a, call: GET orders /a}]}`,
			want: []string{
				`cell.yaml:9:12: flows[0].name: invalid flow name "Place_Order" (lower-case letters, digits and '-', at most 63, starting and ending with a letter or digit)`,
			},
		},
		{
			name: "duplicate name",
			flows: `  - {name: a, route: POST /a, steps: [{id: a, call: GET orders /a}]}
  - {name: a, route: POST /b, steps: [{id: a, call: GET orders /a}]}`,
			want: []string{
				`cell.yaml:10:12: flows[1].name: duplicate flow name "a" (flows[0] has it already)`,
			},
		},
		{
			name:  "no route",
			flows: `  - {name: a, steps: [{id: a, call: GET orders /a}]}`,
			want: []string{
				`cell.yaml:9:5: flows[0].route: flow has no route (for example POST /checkout/{order})`,
			},
		},
		{
			name:  "route without path",
			flows: `  - {name: a, route: POST, steps: [{id: a, call: GET orders /a}]}`,
			want: []string{
				`cell.yaml:9:22: flows[0].route: route "POST" must be METHOD /path, for example POST /checkout/{order}`,
			},
		},
		{
			name:  "route method lower case",
			flows: `  - {name: a, route: post /a, steps: [{id: a, call: GET orders /a}]}`,
			want: []string{
				`cell.yaml:9:22: flows[0].route: route method "post" must be an upper-case HTTP method (for example GET, POST, PUT or DELETE)`,
			},
		},
		{
			name:  "route path without slash",
			flows: `  - {name: a, route: POST a/b, steps: [{id: a, call: GET orders /a}]}`,
			want: []string{
				`cell.yaml:9:22: flows[0].route: route path "a/b" must start with / (write /a/b)`,
			},
		},
		{
			name:  "route path with a query",
			flows: `  - {name: a, route: "POST /a?b=1", steps: [{id: a, call: GET orders /a}]}`,
			want: []string{
				`cell.yaml:9:22: flows[0].route: route path "/a?b=1" must be a plain path (no query, fragment or space)`,
			},
		},
		{
			name:  "route capture with a bad name",
			flows: `  - {name: a, route: "POST /a/{order-id}", steps: [{id: a, call: GET orders /a}]}`,
			want: []string{
				`cell.yaml:9:22: flows[0].route: invalid capture name "order-id" in route (lower-case letters, digits and '_', starting with a letter: a capture is read as path.<name> in expressions)`,
			},
		},
		{
			name:  "route capture not a whole segment",
			flows: `  - {name: a, route: "POST /a/x{id}", steps: [{id: a, call: GET orders /a}]}`,
			want: []string{
				`cell.yaml:9:22: flows[0].route: route segment "x{id}" is not a {name} capture (a capture is a whole segment, as in /orders/{id})`,
			},
		},
		{
			name:  "route empty capture",
			flows: `  - {name: a, route: "POST /a/{}", steps: [{id: a, call: GET orders /a}]}`,
			want: []string{
				`cell.yaml:9:22: flows[0].route: invalid capture name "" in route (lower-case letters, digits and '_', starting with a letter: a capture is read as path.<name> in expressions)`,
			},
		},
		{
			name:  "route duplicate capture",
			flows: `  - {name: a, route: "POST /a/{id}/b/{id}", steps: [{id: a, call: GET orders /a}]}`,
			want: []string{
				`cell.yaml:9:22: flows[0].route: capture "id" appears twice in route (each capture needs its own name)`,
			},
		},
		{
			name: "route collides with a flow",
			flows: `  - {name: a, route: "POST /a/{id}", steps: [{id: a, call: GET orders /a}]}
  - {name: b, route: "POST /a/{order}", steps: [{id: a, call: GET orders /a}]}`,
			want: []string{
				`cell.yaml:10:22: flows[1].route: route "POST /a/{order}" collides with flow "a" (flows[0] answers the same requests)`,
			},
		},
		{
			name: "same path other method",
			flows: `  - {name: a, route: "POST /a/{id}", steps: [{id: a, call: GET orders /a}]}
  - {name: b, route: "GET /a/{order}", steps: [{id: a, call: GET orders /a}]}`,
			want: nil,
		},
		{
			name:  "route collides with a default route",
			flows: `  - {name: a, route: POST /orders/, steps: [{id: a, call: GET orders /a}]}`,
			want: []string{
				`cell.yaml:9:22: flows[0].route: route "POST /orders/" collides with the gateway route /orders (/orders is a default route, one per service with a port; write gateway.routes to choose them)`,
			},
		},
		{
			name:  "route under a route prefix",
			flows: `  - {name: a, route: "POST /orders/{id}/cancel", steps: [{id: a, call: GET orders /a}]}`,
			want:  nil,
		},
		{
			name:  "mode unknown",
			flows: `  - {name: a, route: POST /a, mode: asnyc, steps: [{id: a, call: GET orders /a}]}`,
			want: []string{
				`cell.yaml:9:37: flows[0].mode: mode must be sync or async, not "asnyc" (did you mean "async"?)`,
			},
		},
		{
			name:  "max_inflight zero",
			flows: `  - {name: a, route: POST /a, max_inflight: 0, steps: [{id: a, call: GET orders /a}]}`,
			want: []string{
				`cell.yaml:9:45: flows[0].max_inflight: max_inflight must be at least 1, not 0`,
			},
		},
		{
			name:  "max_body not a size",
			flows: `  - {name: a, route: POST /a, max_body: lots, steps: [{id: a, call: GET orders /a}]}`,
			want: []string{
				`cell.yaml:9:41: flows[0].max_body: invalid size "lots" (for example 1MiB or 512K)`,
			},
		},
		{
			name:  "unknown flow key",
			flows: `  - {name: a, route: POST /a, step: [], steps: [{id: a, call: GET orders /a}]}`,
			want: []string{
				`cell.yaml:9:31: flows[0].step: unknown key "step" (did you mean "steps"?)`,
			},
		},
		{
			name:  "no steps",
			flows: `  - {name: a, route: POST /a, steps: []}`,
			want: []string{
				`cell.yaml:9:38: flows[0].steps: flow has no steps (a flow makes at least one call)`,
			},
		},
		{
			name:  "steps missing",
			flows: `  - {name: a, route: POST /a}`,
			want: []string{
				`cell.yaml:9:5: flows[0].steps: flow has no steps (a flow makes at least one call)`,
			},
		},
		{
			name:  "step not a mapping",
			flows: `  - {name: a, route: POST /a, steps: [validate]}`,
			want: []string{
				`cell.yaml:9:39: flows[0].steps[0]: must be a mapping, not "validate"`,
			},
		},
		{
			name:  "step without id",
			flows: `  - {name: a, route: POST /a, steps: [{call: GET orders /a}]}`,
			want: []string{
				`cell.yaml:9:39: flows[0].steps[0].id: step has no id (add id: <name>; later steps read its answer as <name>.body)`,
			},
		},
		{
			name:  "step id with a hyphen",
			flows: `  - {name: a, route: POST /a, steps: [{id: check-stock, call: GET orders /a}]}`,
			want: []string{
				`cell.yaml:9:44: flows[0].steps[0].id: invalid step id "check-stock" (lower-case letters, digits and '_', starting with a letter: an id is a name in expressions, where '-' would read as a subtraction)`,
			},
		},
		{
			name:  "step id shadows a name",
			flows: `  - {name: a, route: POST /a, steps: [{id: path, call: GET orders /a}]}`,
			want: []string{
				`cell.yaml:9:44: flows[0].steps[0].id: step id "path" shadows the expression name path (input, path and flow are names of every expression; choose another id)`,
			},
		},
		{
			name:  "step id is an operator",
			flows: `  - {name: a, route: POST /a, steps: [{id: not, call: GET orders /a}]}`,
			want: []string{
				`cell.yaml:9:44: flows[0].steps[0].id: step id "not" is a word of the expression language (choose another id)`,
			},
		},
		{
			name: "duplicate step id in a group",
			flows: `  - name: a
    route: POST /a
    steps:
      - {id: a, call: GET orders /a}
      - parallel:
          - {id: b, call: GET orders /b}
          - {id: a, call: GET orders /c}`,
			want: []string{
				`cell.yaml:15:18: flows[0].steps[1].parallel[1].id: duplicate step id "a" (flows[0].steps[0].id has it already)`,
			},
		},
		{
			name:  "empty group",
			flows: `  - {name: a, route: POST /a, steps: [{parallel: []}]}`,
			want: []string{
				`cell.yaml:9:50: flows[0].steps[0].parallel: parallel group has no steps (list the steps that start together)`,
			},
		},
		{
			name:  "nested group",
			flows: `  - {name: a, route: POST /a, steps: [{parallel: [{id: a, call: GET orders /a, parallel: []}]}]}`,
			want: []string{
				`cell.yaml:9:80: flows[0].steps[0].parallel[0].parallel: parallel groups cannot be nested (put the steps of both in one group, or write two groups one after the other)`,
			},
		},
		{
			name:  "group with another key",
			flows: `  - {name: a, route: POST /a, steps: [{parallel: [{id: a, call: GET orders /a}], optional: true}]}`,
			want: []string{
				`cell.yaml:9:82: flows[0].steps[0].optional: key "optional" cannot sit beside parallel (a group holds only its steps; move it to one of them)`,
			},
		},
		{
			name:  "unknown step key",
			flows: `  - {name: a, route: POST /a, steps: [{id: a, call: GET orders /a, retyr: {attempts: 2}}]}`,
			want: []string{
				`cell.yaml:9:68: flows[0].steps[0].retyr: unknown key "retyr" (did you mean "retry"?)`,
			},
		},
		{
			name:  "step without call",
			flows: `  - {name: a, route: POST /a, steps: [{id: a}]}`,
			want: []string{
				`cell.yaml:9:39: flows[0].steps[0]: step has no call (for example call: POST orders /validate)`,
			},
		},
		{
			name:  "malformed call",
			flows: `  - {name: a, route: POST /a, steps: [{id: a, call: GET orders}]}`,
			want: []string{
				`cell.yaml:9:53: flows[0].steps[0].call: call "GET orders" must be METHOD TARGET PATH, for example POST orders /validate`,
			},
		},
		{
			name:  "call method lower case",
			flows: `  - {name: a, route: POST /a, steps: [{id: a, call: get orders /a}]}`,
			want: []string{
				`cell.yaml:9:53: flows[0].steps[0].call: call method "get" must be an upper-case HTTP method (for example GET, POST, PUT or DELETE)`,
			},
		},
		{
			name:  "call to an unknown service",
			flows: `  - {name: a, route: POST /a, steps: [{id: a, call: GET order /a}]}`,
			want: []string{
				`cell.yaml:9:53: flows[0].steps[0].call: call names unknown service "order" (did you mean "orders"?)`,
			},
		},
		{
			name:  "call to a service without a port",
			flows: `  - {name: a, route: POST /a, steps: [{id: a, call: GET worker /a}]}`,
			want: []string{
				`cell.yaml:9:53: flows[0].steps[0].call: call names service "worker", which has no port (give the service a port)`,
			},
		},
		{
			name:  "call to a cell not in uses",
			flows: `  - {name: a, route: POST /a, steps: [{id: a, call: GET cell:billing /a}]}`,
			want: []string{
				`cell.yaml:9:53: flows[0].steps[0].call: call names cell "billing", which is not in uses (add billing to uses)`,
			},
		},
		{
			name:  "call to cell without a name",
			flows: `  - {name: a, route: POST /a, steps: [{id: a, call: "GET cell: /a"}]}`,
			want: []string{
				`cell.yaml:9:53: flows[0].steps[0].call: call target "cell:" names no cell (write cell:<name>)`,
			},
		},
		{
			name:  "call path without slash",
			flows: `  - {name: a, route: POST /a, steps: [{id: a, call: GET orders a}]}`,
			want: []string{
				`cell.yaml:9:53: flows[0].steps[0].call: call path "a" must start with / (write /a)`,
			},
		},
		{
			name: "expression does not compile",
			flows: `  - name: a
    route: POST /a
    steps:
      - id: a
        call: GET orders /a
        body: {total: "${{ input.body.total + }}"}`,
			want: []string{
				`cell.yaml:14:23: flows[0].steps[0].body.total: expression ${{ input.body.total + }}: unexpected token EOF (column 18)`,
			},
		},
		{
			name:  "expression not closed",
			flows: `  - {name: a, route: POST /a, steps: [{id: a, call: "GET orders /a/${{ path.x"}]}`,
			want: []string{
				`cell.yaml:9:53: flows[0].steps[0].call: ${{ is not closed by }}`,
			},
		},
		{
			name:  "unknown name",
			flows: `  - {name: a, route: POST /a, steps: [{id: a, call: "GET orders /a/${{ paht.x }}"}]}`,
			want: []string{
				`cell.yaml:9:53: flows[0].steps[0].call: expression ${{ paht.x }}: unknown name "paht" (did you mean "path"?)`,
			},
		},
		{
			name: "step runs after",
			flows: `  - name: a
    route: POST /a
    steps:
      - id: reserve
        call: POST orders /reservations
        body:
          items:
            - ${{ input.body.items }}
            - ${{ charge.body.id }}
      - {id: charge, call: POST payments /charges}`,
			want: []string{
				`cell.yaml:17:15: flows[0].steps[0].body.items[1]: expression ${{ charge.body.id }}: step "charge" runs after "reserve"`,
			},
		},
		{
			name: "same parallel group",
			flows: `  - name: a
    route: POST /a
    steps:
      - parallel:
          - {id: reserve, call: POST orders /r}
          - id: quote
            call: GET orders /q
            headers: {X-Reservation: "${{ reserve.body.id }}"}`,
			want: []string{
				`cell.yaml:16:38: flows[0].steps[0].parallel[1].headers.X-Reservation: expression ${{ reserve.body.id }}: step "reserve" runs in the same parallel group as "quote"`,
			},
		},
		{
			name:  "step refers to itself",
			flows: `  - {name: a, route: POST /a, steps: [{id: a, call: "GET orders /a/${{ a.body.id }}"}]}`,
			want: []string{
				`cell.yaml:9:53: flows[0].steps[0].call: expression ${{ a.body.id }}: step "a" cannot use its own answer here; only its compensate can`,
			},
		},
		{
			name:  "fallback refers to itself",
			flows: `  - {name: a, route: POST /a, steps: [{id: a, call: GET orders /a, optional: true, fallback: "${{ a.body }}"}]}`,
			want: []string{
				`cell.yaml:9:94: flows[0].steps[0].fallback: expression ${{ a.body }}: step "a" cannot use its own answer here; only its compensate can`,
			},
		},
		{
			name: "when refers to a later step",
			flows: `  - name: a
    route: POST /a
    steps:
      - {id: a, call: GET orders /a, when: "${{ b.ok }}"}
      - {id: b, call: GET orders /b}`,
			want: []string{
				`cell.yaml:12:44: flows[0].steps[0].when: expression ${{ b.ok }}: step "b" runs after "a"`,
			},
		},
		{
			name: "compensation refers to a later step",
			flows: `  - name: a
    route: POST /a
    steps:
      - id: reserve
        call: POST orders /r
        compensate: {call: "DELETE orders /r/${{ reserve.body.id }}/${{ charge.body.id }}"}
      - {id: charge, call: POST payments /charges}`,
			want: []string{
				`cell.yaml:14:28: flows[0].steps[0].compensate.call: expression ${{ charge.body.id }}: step "charge" runs after "reserve"`,
			},
		},
		{
			name: "compensation in a group refers to a sibling",
			flows: `  - name: a
    route: POST /a
    steps:
      - parallel:
          - id: reserve
            call: POST orders /r
            compensate: {call: "DELETE orders /r/${{ quote.body.id }}"}
          - {id: quote, call: GET orders /q}`,
			want: []string{
				`cell.yaml:15:32: flows[0].steps[0].parallel[0].compensate.call: expression ${{ quote.body.id }}: step "quote" runs in the same parallel group as "reserve"`,
			},
		},
		{
			name:  "when not an expression",
			flows: `  - {name: a, route: POST /a, steps: [{id: a, call: GET orders /a, when: input.ok}]}`,
			want: []string{
				`cell.yaml:9:74: flows[0].steps[0].when: when must be true, false or a ${{ expression }}, not "input.ok" (write ${{ input.ok }})`,
			},
		},
		{
			name:  "when with text around",
			flows: `  - {name: a, route: POST /a, steps: [{id: a, call: GET orders /a, when: "x ${{ input.ok }}"}]}`,
			want: []string{
				`cell.yaml:9:74: flows[0].steps[0].when: when must be one ${{ expression }}, not "x ${{ input.ok }}" (text around ${{ }} makes it a string)`,
			},
		},
		{
			name:  "when a number",
			flows: `  - {name: a, route: POST /a, steps: [{id: a, call: GET orders /a, when: 1}]}`,
			want: []string{
				`cell.yaml:9:74: flows[0].steps[0].when: when must be true, false or a ${{ expression }}, not "1"`,
			},
		},
		{
			name:  "expect out of range",
			flows: `  - {name: a, route: POST /a, steps: [{id: a, call: GET orders /a, expect: [200, 99, 600]}]}`,
			want: []string{
				`cell.yaml:9:82: flows[0].steps[0].expect[1]: status 99 is out of range 100-599`,
				`cell.yaml:9:86: flows[0].steps[0].expect[2]: status 600 is out of range 100-599`,
			},
		},
		{
			name:  "expect not a list",
			flows: `  - {name: a, route: POST /a, steps: [{id: a, call: GET orders /a, expect: 200}]}`,
			want: []string{
				`cell.yaml:9:76: flows[0].steps[0].expect: must be a list of status codes, not "200"`,
			},
		},
		{
			name:  "on_status out of range",
			flows: `  - {name: a, route: POST /a, steps: [{id: a, call: GET orders /a, on_status: {600: {fail: {status: 502}}}}]}`,
			want: []string{
				`cell.yaml:9:80: flows[0].steps[0].on_status.600: status 600 is out of range 100-599`,
			},
		},
		{
			name:  "on_status key not a code",
			flows: `  - {name: a, route: POST /a, steps: [{id: a, call: GET orders /a, on_status: {4xx: {fail: {status: 502}}}}]}`,
			want: []string{
				`cell.yaml:9:80: flows[0].steps[0].on_status.4xx: on_status keys are status codes, not "4xx" (for example 422)`,
			},
		},
		{
			name:  "on_status without fail",
			flows: `  - {name: a, route: POST /a, steps: [{id: a, call: GET orders /a, on_status: {422: {}}}]}`,
			want: []string{
				`cell.yaml:9:80: flows[0].steps[0].on_status.422: on_status 422 says nothing to do (add fail: {status: 422})`,
			},
		},
		{
			name:  "fail status out of range",
			flows: `  - {name: a, route: POST /a, steps: [{id: a, call: GET orders /a, on_status: {422: {fail: {status: 1000}}}}]}`,
			want: []string{
				`cell.yaml:9:101: flows[0].steps[0].on_status.422.fail.status: status 1000 is out of range 100-599`,
			},
		},
		{
			name:  "fallback on a required step",
			flows: `  - {name: a, route: POST /a, steps: [{id: a, call: GET orders /a, fallback: {}}]}`,
			want: []string{
				`cell.yaml:9:78: flows[0].steps[0].fallback: fallback applies to optional steps only (add optional: true)`,
			},
		},
		{
			name:  "header value a mapping",
			flows: `  - {name: a, route: POST /a, steps: [{id: a, call: GET orders /a, headers: {X-A: {b: c}}}]}`,
			want: []string{
				`cell.yaml:9:83: flows[0].steps[0].headers.X-A: must be a string, number or boolean, not a mapping`,
			},
		},
		{
			name:  "invalid header name",
			flows: `  - {name: a, route: POST /a, steps: [{id: a, call: GET orders /a, headers: {"X A": b}}]}`,
			want: []string{
				"cell.yaml:9:78: flows[0].steps[0].headers.X A: invalid header name \"X A\" (letters, digits and !#$%&'*+-.^_`|~)",
			},
		},
		{
			name:  "attempts zero",
			flows: `  - {name: a, route: POST /a, steps: [{id: a, call: GET orders /a, retry: {attempts: 0}}]}`,
			want: []string{
				`cell.yaml:9:86: flows[0].steps[0].retry.attempts: attempts must be at least 1, not 0 (1 tries once, without retrying)`,
			},
		},
		{
			name:  "backoff over max_backoff",
			flows: `  - {name: a, route: POST /a, steps: [{id: a, call: GET orders /a, retry: {backoff: 3s}}]}`,
			want: []string{
				`cell.yaml:9:85: flows[0].steps[0].retry.backoff: backoff 3s is greater than max_backoff 2s (the wait doubles up to max_backoff)`,
			},
		},
		{
			name:  "max_backoff under backoff",
			flows: `  - {name: a, route: POST /a, steps: [{id: a, call: GET orders /a, retry: {max_backoff: 50ms}}]}`,
			want: []string{
				`cell.yaml:9:89: flows[0].steps[0].retry.max_backoff: max_backoff 50ms is less than backoff 100ms (the wait doubles up to max_backoff)`,
			},
		},
		{
			name:  "unknown retry_on entry",
			flows: `  - {name: a, route: POST /a, steps: [{id: a, call: GET orders /a, retry: {retry_on: [conect, 5xx, 600]}}]}`,
			want: []string{
				`cell.yaml:9:87: flows[0].steps[0].retry.retry_on[0]: unknown retry_on entry "conect" (did you mean "connect"?)`,
				`cell.yaml:9:95: flows[0].steps[0].retry.retry_on[1]: unknown retry_on entry "5xx" (connect, timeout or a status code such as 503)`,
				`cell.yaml:9:100: flows[0].steps[0].retry.retry_on[2]: status 600 is out of range 100-599`,
			},
		},
		{
			name: "defaults problem reported once",
			flows: `  - name: a
    route: POST /a
    defaults: {retry: {attempts: 0, backoff: 5s}}
    steps:
      - {id: a, call: GET orders /a}
      - {id: b, call: GET orders /b}`,
			want: []string{
				`cell.yaml:11:34: flows[0].defaults.retry.attempts: attempts must be at least 1, not 0 (1 tries once, without retrying)`,
				`cell.yaml:11:46: flows[0].defaults.retry.backoff: backoff 5s is greater than max_backoff 2s (the wait doubles up to max_backoff)`,
			},
		},
		{
			name:  "compensate without call",
			flows: `  - {name: a, route: POST /a, steps: [{id: a, call: GET orders /a, compensate: {timeout: 1s}}]}`,
			want: []string{
				`cell.yaml:9:80: flows[0].steps[0].compensate: compensate has no call (for example call: DELETE inventory /reservations/${{ reserve.body.id }})`,
			},
		},
		{
			name:  "compensate retry",
			flows: `  - {name: a, route: POST /a, steps: [{id: a, call: GET orders /a, compensate: {call: DELETE orders /a, retry: {attempts: 0, retry_on: [time]}}}]}`,
			want: []string{
				`cell.yaml:9:123: flows[0].steps[0].compensate.retry.attempts: attempts must be at least 1, not 0 (1 tries once, without retrying)`,
				`cell.yaml:9:137: flows[0].steps[0].compensate.retry.retry_on[0]: unknown retry_on entry "time" (did you mean "timeout"?)`,
			},
		},
		{
			name:  "response status out of range",
			flows: `  - {name: a, route: POST /a, steps: [{id: a, call: GET orders /a}], response: {status: 99}}`,
			want: []string{
				`cell.yaml:9:89: flows[0].response.status: status 99 is out of range 100-599`,
			},
		},
		{
			name: "response may use every step",
			flows: `  - name: a
    route: POST /a
    steps: [{id: a, call: GET orders /a}, {id: b, call: GET orders /b, when: false}]
    response: {body: "${{ a.body }}", headers: {X-B: "${{ b.status }}"}}`,
			want: nil,
		},
		{
			name:  "unknown name in a response",
			flows: `  - {name: a, route: POST /a, steps: [{id: a, call: GET orders /a}], response: {headers: {X-B: "${{ b.status }}"}}}`,
			want: []string{
				`cell.yaml:9:96: flows[0].response.headers.X-B: expression ${{ b.status }}: unknown name "b" (did you mean "a"?)`,
			},
		},
		{
			name: "fail answer may use every step",
			flows: `  - name: a
    route: POST /a
    steps:
      - {id: a, call: GET orders /a, on_status: {409: {fail: {body: "${{ [a.body, b.body] }}"}}}}
      - {id: b, call: GET orders /b}`,
			want: nil,
		},
		{
			name: "duplicate key in a body",
			flows: `  - name: a
    route: POST /a
    steps:
      - id: a
        call: GET orders /a
        body: {x: 1, x: 2}`,
			want: []string{
				`cell.yaml:14:22: flows[0].steps[0].body.x: duplicate key "x"`,
			},
		},
		{
			name:  "infinite number",
			flows: `  - {name: a, route: POST /a, steps: [{id: a, call: GET orders /a, body: {x: .inf}}]}`,
			want: []string{
				`cell.yaml:9:78: flows[0].steps[0].body.x: must be a finite number, not .inf (JSON has no such number)`,
			},
		},
		{
			name:  "flows not a list",
			flows: `  {name: a}`,
			want: []string{
				`cell.yaml:9:3: flows: must be a list of flows, not a mapping`,
			},
		},
		{
			name:  "on_status with an unknown key",
			flows: `  - {name: a, route: POST /a, steps: [{id: a, call: GET orders /a, on_status: {422: {fial: {}}}}]}`,
			want: []string{
				`cell.yaml:9:86: flows[0].steps[0].on_status.422.fial: unknown key "fial" (did you mean "fail"?)`,
			},
		},
		{
			name:  "unknown retry key",
			flows: `  - {name: a, route: POST /a, defaults: {retry: {attempt: 2}}, steps: [{id: a, call: GET orders /a}]}`,
			want: []string{
				`cell.yaml:9:50: flows[0].defaults.retry.attempt: unknown key "attempt" (did you mean "attempts"?)`,
			},
		},
		{
			name:  "call path with an expression and spaces",
			flows: `  - {name: a, route: "POST /a/{id}", steps: [{id: a, call: "GET  orders\t/a/${{ path.id + 'x' }}"}]}`,
			want:  nil,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := LoadCell("cell.yaml", []byte(flowCellHead+tt.flows+"\n"), MapEnv(nil))
			if tt.want == nil {
				if err != nil {
					t.Fatalf("LoadCell() error:\n%v", err)
				}
				return
			}
			if diff := cmp.Diff(tt.want, problemLines(t, err, "")); diff != "" {
				t.Errorf("problems (-want +got):\n%s", diff)
			}
		})
	}
}
